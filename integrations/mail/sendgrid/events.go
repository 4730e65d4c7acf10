package sendgrid

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
)

// The replay window of a signed Event Webhook post, which VerifyEvents
// enforces.
//
// SendGrid retries a post that did not get a 2xx "at increasing intervals
// for up to 24 hours after the event occurs" (Event Webhook troubleshooting,
// docs.sendgrid.com/for-developers/tracking-events/troubleshooting). Its
// documentation does not say whether a retry is signed again with a fresh
// X-Twilio-Email-Event-Webhook-Timestamp, so a retry may carry the
// timestamp of the first attempt. The window therefore takes a validly
// signed post for the whole retry period: refusing it would lose a bounce or
// an unsubscribe that SendGrid then drops for good. What keeps a captured
// post from doing harm when replayed inside the window is TLS on the way in,
// and the sg_event_id of each event, remembered for longer than the window
// (People.RememberEvent), with the actions themselves idempotent.
const (
	// EventRetryWindow is how long SendGrid retries a failed post, counted
	// from the event, which is no later than the first attempt's signing.
	EventRetryWindow = 24 * time.Hour
	// EventMaxAge is how long after it was signed a post is taken:
	// SendGrid's retry window, plus half an hour for a late last retry and
	// for its clock and ours disagreeing. A captured post cannot be
	// replayed later than this.
	EventMaxAge = EventRetryWindow + 30*time.Minute
	// EventMaxAhead is how far in the future a post's timestamp may be: a
	// sender's clock may run a little fast.
	EventMaxAhead = 5 * time.Minute
)

// ErrNoEventKey is what ParseEventKey returns for an empty key, and
// VerifyEvents for a nil one: the webhook is not configured, which a caller
// may want to tell apart from a key that is set but unusable.
var ErrNoEventKey = errors.New("SENDGRID_WEBHOOK_PUBLIC_KEY is not set")

// Why VerifyEvents refuses a post. The texts are fixed: none quotes a header
// or the body.
var (
	errNoSignature = errors.New("signature or timestamp header missing")
	errTimestamp   = errors.New("timestamp is not Unix seconds")
	errStale       = errors.New("timestamp outside the replay window")
	errSignature   = errors.New("signature does not verify")
)

// errMalformed is ParseEvents' one error: the JSON decoder's own message
// would quote a character of the body.
var errMalformed = errors.New("malformed JSON: want an array of events")

// ParseEventKey reads the Event Webhook's verification key: the base64 of its
// DER SubjectPublicKeyInfo, as SendGrid shows it, surrounding space ignored.
// An empty key is ErrNoEventKey. Errors name the variable
// SENDGRID_WEBHOOK_PUBLIC_KEY, never the value.
//
// The key is parsed here rather than with
// eventwebhook.ConvertPublicKeyBase64ToECDSA, which panics on a valid key
// that is not ECDSA (an RSA key pasted by mistake); its type is checked
// instead.
func ParseEventKey(b64 string) (*ecdsa.PublicKey, error) {
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return nil, ErrNoEventKey
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY is not base64: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY is a %T, not an ECDSA key", pub)
	}
	return key, nil
}

// VerifyEvents checks one Event Webhook post, given its headers and raw
// body: both the signature and the timestamp headers are present, the
// timestamp is Unix seconds within the replay window (EventMaxAge before now
// to EventMaxAhead after it), and the signature verifies under key. It
// returns nil for a good post, ErrNoEventKey for a nil key, or an error
// saying which check failed, in a fixed text fit for a log line.
func VerifyEvents(h http.Header, body []byte, key *ecdsa.PublicKey, now time.Time) error {
	if key == nil {
		return ErrNoEventKey
	}
	sig, ts := h.Get(eventwebhook.VerificationHTTPHeader), h.Get(eventwebhook.TimestampHTTPHeader)
	if sig == "" || ts == "" {
		return errNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errTimestamp
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > EventMaxAge || age < -EventMaxAhead {
		return errStale
	}
	// The signature covers the timestamp header as sent, then the raw body.
	if ok, err := eventwebhook.VerifySignature(key, body, sig, ts); err != nil || !ok {
		return errSignature
	}
	return nil
}

// Event is the part of an Event Webhook event that leadgate acts on. The rest
// (sg_message_id, reason, asm_group_id, custom args …) is not decoded: a
// bounce reason often quotes the address, and nothing here needs it.
//
// Email, IP and UserAgent are personal data.
type Event struct {
	Email     string  `json:"email"`       // the recipient's address, as SendGrid has it
	Timestamp float64 `json:"timestamp"`   // Unix seconds; a float so an odd sender is not a malformed post
	Event     string  `json:"event"`       // the event name: "bounce", "unsubscribe" … (see EventLabel)
	ID        string  `json:"sg_event_id"` // SendGrid's id of the event, the same when a post is retried; may be empty
	Type      string  `json:"type"`        // bounce: "bounce" (permanent) or "blocked" (a temporary refusal)
	IP        string  `json:"ip"`          // where the person acted, when SendGrid knows it
	UserAgent string  `json:"useragent"`   // the same
}

// ParseEvents decodes a verified post's body, a JSON array of events, in
// the order SendGrid sent them. A JSON null is no events. The error, for
// anything else that is not an array of events, never quotes the body.
func ParseEvents(body []byte) ([]Event, error) {
	var events []Event
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, errMalformed
	}
	return events, nil
}

// Action is what an event asks leadgate to do about its address.
type Action int

const (
	// ActionNone changes nothing: delivered, open, a temporary refusal …
	ActionNone Action = iota
	// ActionSuppress puts the address on the suppression list, with the
	// event name as the reason: it is never mailed again.
	ActionSuppress
	// ActionWithdraw withdraws the person's marketing consent.
	ActionWithdraw
)

// Action decides what e asks for: a bounce (unless only "blocked"), a
// dropped message or a spam report suppresses the address; an unsubscribe,
// global or from a group, withdraws marketing consent. A resubscribe does
// nothing: marketing consent comes back only through a fresh double opt-in.
func (e Event) Action() Action {
	switch e.Event {
	case "bounce":
		if e.Type == "blocked" { // the receiving server refused for now; the address may be fine
			return ActionNone
		}
		return ActionSuppress // "bounce", or an older payload without a type
	case "dropped", "spamreport":
		return ActionSuppress
	case "unsubscribe", "group_unsubscribe":
		return ActionWithdraw
	}
	return ActionNone
}

// eventNames are the event names SendGrid documents.
var eventNames = map[string]bool{
	"processed": true, "dropped": true, "delivered": true, "deferred": true, "bounce": true,
	"open": true, "click": true, "spamreport": true, "unsubscribe": true,
	"group_unsubscribe": true, "group_resubscribe": true,
}

// EventLabel returns name when it is an event name SendGrid documents, and
// "other" for anything else, so that a metric label set cannot be grown by
// whoever posts events.
func EventLabel(name string) string {
	if eventNames[name] {
		return name
	}
	return "other"
}
