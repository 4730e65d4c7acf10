package intake

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
)

// SendGrid Event Webhook limits.
const (
	// maxEventBody bounds one posted batch. SendGrid batches events into one
	// post; 4 MiB is far above what it sends and far below what would hurt.
	maxEventBody = 4 << 20
	// eventMaxAge and eventMaxAhead are the replay window of a signed post:
	// a captured post cannot be replayed later than this, and a sender's
	// clock may run a little fast.
	eventMaxAge   = 10 * time.Minute
	eventMaxAhead = 5 * time.Minute
	// eventSeenTTL is how long a handled sg_event_id is remembered.
	// SendGrid retries a failed post for up to 24 hours; a week covers that
	// with room to spare and keeps the set small.
	eventSeenTTL = 7 * 24 * time.Hour
	// keyEventSeenPfx + Keys.Index("sg-event", sg_event_id): a string, set once
	// the event's action is done.
	keyEventSeenPfx = "lg:sgevent:"
)

// sendgridEvents counts the events posted to the webhook by SendGrid event
// name and what became of them. The event label is one of sendgridEventNames
// or "other", so a sender cannot grow the label set.
var sendgridEvents = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadgate_sendgrid_events_total",
	Help: "SendGrid Event Webhook events by event and outcome (processed, ignored, duplicate, skipped, failed).",
}, []string{"event", "outcome"})

// sendgridEventNames are the event names SendGrid documents; anything else
// is counted as "other".
var sendgridEventNames = map[string]bool{
	"processed": true, "dropped": true, "delivered": true, "deferred": true, "bounce": true,
	"open": true, "click": true, "spamreport": true, "unsubscribe": true,
	"group_unsubscribe": true, "group_resubscribe": true,
}

func eventLabel(name string) string {
	if sendgridEventNames[name] {
		return name
	}
	return "other"
}

// sgEvent is the part of a SendGrid event that leadgate acts on. The rest
// (sg_message_id, reason, asm_group_id, custom args …) is not decoded: a
// bounce reason often quotes the address, and nothing here needs it.
type sgEvent struct {
	Email     string  `json:"email"`
	Timestamp float64 `json:"timestamp"` // Unix seconds; a float so an odd sender is not a 400
	Event     string  `json:"event"`
	ID        string  `json:"sg_event_id"`
	Type      string  `json:"type"`      // bounce: "bounce" (permanent) or "blocked" (a temporary refusal)
	IP        string  `json:"ip"`        // where the person acted, when SendGrid knows it
	UserAgent string  `json:"useragent"` // the same
}

// eventAction is what an event asks of the store.
type eventAction int

const (
	actNone     eventAction = iota // counted, nothing changes
	actSuppress                    // Store.Suppress with the event name as reason
	actWithdraw                    // Store.Withdraw
)

// action decides what an event does. A resubscribe does nothing: marketing
// consent comes back only through a fresh double opt-in.
func (e sgEvent) action() eventAction {
	switch e.Event {
	case "bounce":
		if e.Type == "blocked" { // the receiving server refused for now; the address may be fine
			return actNone
		}
		return actSuppress // "bounce", or an older payload without a type
	case "dropped", "spamreport":
		return actSuppress
	case "unsubscribe", "group_unsubscribe":
		return actWithdraw
	}
	return actNone
}

// errNoSendGridKey is why the webhook refuses posts when no key is set.
var errNoSendGridKey = errors.New("SENDGRID_WEBHOOK_PUBLIC_KEY is not set")

// ParseSendGridKey reads the webhook's public key (base64 of its DER
// SubjectPublicKeyInfo, as SendGrid shows it). The key type is checked
// first because eventwebhook.ConvertPublicKeyBase64ToECDSA panics on a
// valid key that is not ECDSA.
func ParseSendGridKey(b64 string) (*ecdsa.PublicKey, error) {
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return nil, errNoSendGridKey
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY is not base64: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key: %w", err)
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY is a %T, not an ECDSA key", pub)
	}
	key, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(b64)
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY: %w", err)
	}
	return key, nil
}

// sendgridWebhook returns the handler of SendGrid's Event Webhook, with the
// public key parsed once, here. Without a usable key every post is 503 (and
// SendGrid keeps it for a retry): events are never taken unsigned.
func (s *Server) sendgridWebhook() http.Handler {
	key, keyErr := ParseSendGridKey(s.opts.SendGridKey)
	if keyErr != nil && !errors.Is(keyErr, errNoSendGridKey) {
		s.log.Error("SendGrid event webhook will refuse every post", "reason", keyErr)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if keyErr != nil {
			s.log.Warn("SendGrid event post refused", "reason", keyErr)
			hookError(w, &Error{Code: EUnavailable, Message: "event webhook not configured"})
			return
		}
		s.sendgridEvents(w, r, key)
	})
}

// sendgridEvents verifies and applies one posted batch of events.
func (s *Server) sendgridEvents(w http.ResponseWriter, r *http.Request, key *ecdsa.PublicKey) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			hookError(w, &Error{Code: ETooLarge, Message: "body over 4 MiB"})
			return
		}
		hookError(w, &Error{Code: EBadRequest, Message: "could not read the body"})
		return
	}
	if reason := s.verifyEventPost(r.Header, body, key); reason != "" {
		s.log.Warn("SendGrid event post refused", "reason", reason)
		hookError(w, &Error{Code: EUnauthorized, Message: "signature missing, invalid or stale"})
		return
	}
	var events []sgEvent
	if err := json.Unmarshal(body, &events); err != nil {
		hookError(w, &Error{Code: EBadRequest, Message: "malformed JSON: want an array of events"})
		return
	}
	n, err := s.applyEvents(r.Context(), events)
	if err != nil {
		// Nothing is lost: SendGrid posts the batch again, the events done
		// already are remembered, and the rest are idempotent.
		s.log.Error("SendGrid events not all applied", "processed", n.processed, "ignored", n.ignored, "err", err)
		hookError(w, &Error{Code: EUnavailable, Message: "try again later"})
		return
	}
	s.log.Info("SendGrid events applied", "processed", n.processed, "ignored", n.ignored,
		"duplicates", n.duplicates, "skipped", n.skipped)
	writeJSON(w, http.StatusOK, map[string]int{"processed": n.processed, "ignored": n.ignored})
}

// verifyEventPost checks the signature and the replay window of a post. It
// returns why the post is refused, for the log, or "" when it is good.
func (s *Server) verifyEventPost(h http.Header, body []byte, key *ecdsa.PublicKey) string {
	sig, ts := h.Get(eventwebhook.VerificationHTTPHeader), h.Get(eventwebhook.TimestampHTTPHeader)
	if sig == "" || ts == "" {
		return "signature or timestamp header missing"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "timestamp is not Unix seconds"
	}
	age := s.now().Sub(time.Unix(sec, 0))
	if age > eventMaxAge || age < -eventMaxAhead {
		return "timestamp outside the replay window"
	}
	// The signature covers the timestamp header as sent, then the raw body.
	if ok, err := eventwebhook.VerifySignature(key, body, sig, ts); err != nil || !ok {
		return "signature does not verify"
	}
	return ""
}

// eventCounts is what became of a batch's events. ignored includes the
// duplicates and the skipped.
type eventCounts struct {
	processed, ignored, duplicates, skipped int
}

// applyEvents applies events in order and stops at the first Redis failure.
//
// Idempotence: an event with an sg_event_id is looked up before its action
// and remembered (SET NX, eventSeenTTL) only after the action succeeded.
// Marking first would lose a bounce or an unsubscribe if the process died
// between mark and action; marking after can at worst repeat an action on
// SendGrid's retry, and Suppress and Withdraw are idempotent. Events that
// change nothing (delivered, open …) are neither looked up nor remembered.
// An event without an sg_event_id is applied and cannot be deduplicated.
func (s *Server) applyEvents(ctx context.Context, events []sgEvent) (eventCounts, error) {
	var n eventCounts
	for _, e := range events {
		label := eventLabel(e.Event)
		act := e.action()
		if act == actNone {
			n.ignored++
			sendgridEvents.WithLabelValues(label, "ignored").Inc()
			continue
		}
		person, ok := s.store.PersonOf(e.Email)
		if !ok {
			n.ignored++
			n.skipped++
			sendgridEvents.WithLabelValues(label, "skipped").Inc()
			continue
		}
		var seenKey string
		if e.ID != "" {
			seenKey = keyEventSeenPfx + s.store.keys.Index("sg-event", e.ID)
			seen, err := s.store.rdb.Exists(ctx, seenKey).Result()
			if err != nil {
				sendgridEvents.WithLabelValues(label, "failed").Inc()
				return n, unavailable("look up SendGrid event", err)
			}
			if seen > 0 {
				n.ignored++
				n.duplicates++
				sendgridEvents.WithLabelValues(label, "duplicate").Inc()
				continue
			}
		}
		if err := s.applyEvent(ctx, person, act, e); err != nil {
			sendgridEvents.WithLabelValues(label, "failed").Inc()
			return n, err
		}
		if seenKey != "" {
			if err := s.store.rdb.SetNX(ctx, seenKey, "1", eventSeenTTL).Err(); err != nil {
				sendgridEvents.WithLabelValues(label, "failed").Inc()
				return n, unavailable("remember SendGrid event", err)
			}
		}
		n.processed++
		sendgridEvents.WithLabelValues(label, "processed").Inc()
	}
	return n, nil
}

// applyEvent suppresses or withdraws person as e asks. Addresses we do not
// hold are suppressed too: the list exists so that a later import or
// submission cannot mail them without a fresh confirmed opt-in.
func (s *Server) applyEvent(ctx context.Context, person string, act eventAction, e sgEvent) error {
	p := Proof{At: s.now().UTC(), Source: "sendgrid:" + e.Event, UserAgent: truncate(e.UserAgent, 512)}
	if e.Timestamp > 0 {
		p.At = time.Unix(int64(e.Timestamp), 0).UTC()
	}
	if ip, err := netip.ParseAddr(e.IP); err == nil {
		p.IP = ip.String()
	}
	switch act {
	case actSuppress:
		if err := s.store.Suppress(ctx, person, e.Event, p); err != nil {
			return fmt.Errorf("suppress after a SendGrid %s: %w", e.Event, err)
		}
	case actWithdraw:
		if _, err := s.store.Withdraw(ctx, person, p); err != nil {
			return fmt.Errorf("withdraw after a SendGrid %s: %w", e.Event, err)
		}
	}
	return nil
}

// hookError answers a webhook post with a fixed message: SendGrid reads only
// the status, and a refused post learns nothing about why.
func hookError(w http.ResponseWriter, e *Error) {
	writeJSON(w, statusOf(e.Code), map[string]string{"error": string(e.Code), "message": e.Message})
}
