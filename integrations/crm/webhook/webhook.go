// Package webhook is the CRM driver that posts lead events to a URL of the
// customer's choosing as signed Standard Webhooks (standardwebhooks.com,
// spec/standard-webhooks.md) events, so any receiver with a Standard Webhooks
// library can verify them.
//
// # Events
//
// Each event is one POST with Content-Type application/json and one of the
// bodies
//
//	{"type":"lead.created","timestamp":"<received_at>","data":<lead>}
//	{"type":"lead.updated","timestamp":"<when sent>","data":<lead>}
//	{"type":"lead.erased","timestamp":"<when sent>","data":{"id":"<lead id>"}}
//
// where <lead> is the crm.Lead document (assignment left out when the lead
// has none, risk always present) and timestamps are RFC 3339 in UTC.
// lead.created follows Push, lead.updated a rectification (the whole document
// as it now is: the receiver overwrites its copy), lead.erased the person's
// request for erasure (the receiver deletes everything it holds on the lead).
// lead.created depends only on the lead, so its retries send the same bytes;
// the others carry the time they were sent, because the caller does not
// pass the time of the change.
//
// # Headers
//
//	webhook-id:        the event's id, the same on every retry of that event: receivers dedupe on it
//	webhook-timestamp: Unix seconds when this attempt was signed
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// with key the base64-decoded part of the "whsec_…" secret. The webhook-id
// of lead.created is the lead id. That of lead.updated and lead.erased is
//
//	<lead id>_updated_<h>    <lead id>_erased_<h>
//
// with h the hex of the first 16 bytes of an HMAC-SHA256 of the event's data
// object, under a key derived from the secret (keyed, so the id cannot be
// used to test guesses about the personal data in it). A retried update
// therefore keeps its id and a different update gets a new one. Two
// consequences a receiver should know: a lead changed back to an earlier
// state repeats that state's id, so a receiver that still remembers the id
// drops the change; and a new secret gives new ids, so an update retried
// across a rotation may arrive twice (harmless: it is an overwrite).
//
// Every webhook-id is made of ASCII letters, digits, '_' and '-' only
// (IDChars). The signed content is id.timestamp.body, and the spec asks that
// an id never hold a '.', which would let bytes move between the id and the
// timestamp; keeping to this smaller set also lets any receiver store and
// compare ids as they are. Lead ids are UUIDs, so they fit; a lead whose id
// does not is refused (Permanent) rather than sent under another id.
//
// # Answers
//
// Any 2xx means delivered. Failures are *integrations.Error values with
// System "webhook" and Op "push", "update" or "erase", classified as package
// integrations does with the spec's status handling on top: 410 Gone is
// Permanent with Code integrations.CodeGone (the receiver wants no more
// events: disable the endpoint); 502 and 504 with a Retry-After asking for a
// wait are RateLimited like 429 (the receiver is under load: throttle),
// without one they stay Temporary.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// System is the name this driver gives its Receipts and errors; it is what
// a lead's disclosure log records as the recipient.
const System = "webhook"

// The event types this driver sends.
const (
	// EventLeadCreated is a new lead (Push).
	EventLeadCreated = "lead.created"
	// EventLeadUpdated is a lead whose person's data was rectified (Update).
	EventLeadUpdated = "lead.updated"
	// EventLeadErased is a lead whose person asked for erasure (Erase).
	EventLeadErased = "lead.erased"
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock when Verify is given no tolerance (the Standard Webhooks
// recommendation).
const DefaultTolerance = 5 * time.Minute

// IDChars are the characters of every webhook-id this driver sends: ASCII
// letters, digits, '_' and '-', never '.' (see the package comment).
const IDChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

// maxLeadIDLen bounds a lead id used in a webhook-id: a UUID is 36
// characters, and a receiver's dedupe store should not meet kilobytes.
const maxLeadIDLen = 128

// minKeyLen is the shortest key accepted: the Standard Webhooks spec asks
// for keys of 24 to 64 bytes.
const minKeyLen = 24

// Errors Verify and New report; test them with errors.Is.
var (
	// ErrSecret means the secret is not "whsec_" followed by the base64 of
	// a key of at least 24 bytes. The message never includes the secret.
	ErrSecret = errors.New("webhook: secret must be whsec_ followed by a base64 key of at least 24 bytes")
	// ErrMissingHeader means webhook-id, webhook-timestamp or
	// webhook-signature is absent.
	ErrMissingHeader = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	// ErrTimestamp means webhook-timestamp is not Unix seconds within the
	// tolerance of the receiver's clock (a replay or a skewed clock).
	ErrTimestamp = errors.New("webhook: timestamp unreadable or outside tolerance")
	// ErrSignature means no v1 signature matched the message.
	ErrSignature = errors.New("webhook: no matching signature")
)

// Client posts leads to one endpoint. It is safe for concurrent use.
type Client struct {
	url    string
	key    []byte // signs every attempt
	idKey  []byte // derived from key; hashes event data into webhook-ids
	client *http.Client
	now    func() time.Time // the signing clock and lead.updated/lead.erased timestamps; tests fix it
}

// New returns a Client posting to rawURL (http or https) signed with secret
// ("whsec_<base64 key>"). A nil client means integrations.NewHTTPClient(0);
// redirects are never followed, whatever client is given
// (integrations.NoRedirects), since Standard Webhooks counts a 3xx as a
// failed delivery. Errors never quote the URL or the secret: both may hold
// credentials.
func New(rawURL, secret string, client *http.Client) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: URL must be an absolute http or https URL")
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return nil, err
	}
	client = integrations.NoRedirects(client)
	return &Client{url: rawURL, key: key, idKey: deriveIDKey(key), client: client, now: time.Now}, nil
}

// deriveIDKey returns the key for webhook-id hashes. It is not the signing
// key itself so that no value computed for an id can ever serve as, or
// reveal anything about, a signature.
func deriveIDKey(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("leadgate webhook-id v1"))
	return m.Sum(nil)
}

// decodeSecret returns the key of a "whsec_…" secret. Padding is optional,
// since some generators drop it.
func decodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil || len(key) < minKeyLen {
		return nil, ErrSecret
	}
	return key, nil
}

// event is the envelope of every webhook body. Data is encoded first, on its
// own, because the webhook-id of an update or erasure is a hash of it.
type event struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Push posts l as a lead.created event and returns Receipt{System: "webhook",
// Ref: l.ID} on any 2xx. Its webhook-id is l.ID, so a retry after a crash
// between "delivered" and "recorded" is dropped by the receiver as a
// duplicate instead of creating a second lead. A lead that cannot be sent at
// all (no id, an id unfit for a webhook-id, a time JSON cannot encode) is
// a Permanent error.
func (c *Client) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	const op = "push"
	if err := checkID(op, l.ID); err != nil {
		return crm.Receipt{}, err
	}
	data, err := leadDocument(l)
	if err != nil {
		return crm.Receipt{}, &integrations.Error{System: System, Op: op, Code: "unencodable lead", Kind: integrations.Permanent, Err: err}
	}
	// The timestamp is when the lead arrived, not now: the body then
	// depends only on the lead and every retry sends the same bytes.
	if err := c.send(ctx, op, l.ID, EventLeadCreated, l.ReceivedAt, data); err != nil {
		return crm.Receipt{}, err
	}
	return crm.Receipt{System: System, Ref: l.ID}, nil
}

// Update posts l as a lead.updated event: the whole document as it now is,
// which the receiver puts in place of its copy. ref is the Receipt.Ref that
// Push returned, which for this driver is always the lead id; any other ref
// (a lead pushed through another driver, a caller's mix-up) is a Permanent
// error and nothing is sent, since the receiver knows the lead only by its id.
func (c *Client) Update(ctx context.Context, l crm.Lead, ref string) error {
	const op = "update"
	if err := checkRef(op, l.ID, ref); err != nil {
		return err
	}
	data, err := leadDocument(l)
	if err != nil {
		return &integrations.Error{System: System, Op: op, Code: "unencodable lead", Kind: integrations.Permanent, Err: err}
	}
	return c.send(ctx, op, c.eventID(l.ID, "updated", data), EventLeadUpdated, c.now(), data)
}

// Erase posts a lead.erased event for the lead leadID, whose Receipt.Ref
// was ref (the lead id, as for Update). The event carries the id and nothing
// else: the person's data is exactly what must not travel any more.
func (c *Client) Erase(ctx context.Context, leadID, ref string) error {
	const op = "erase"
	if err := checkRef(op, leadID, ref); err != nil {
		return err
	}
	data, err := json.Marshal(struct {
		ID string `json:"id"`
	}{leadID})
	if err != nil {
		return &integrations.Error{System: System, Op: op, Code: "unencodable lead", Kind: integrations.Permanent, Err: err}
	}
	return c.send(ctx, op, c.eventID(leadID, "erased", data), EventLeadErased, c.now(), data)
}

// checkRef refuses an event that cannot name its lead: an id checkID
// refuses, or a ref that is not the id this driver's Push returned as the
// Receipt.Ref.
func checkRef(op, leadID, ref string) error {
	if err := checkID(op, leadID); err != nil {
		return err
	}
	if ref != leadID {
		return &integrations.Error{System: System, Op: op, Code: "ref is not the lead id", Kind: integrations.Permanent}
	}
	return nil
}

// checkID refuses a lead id that cannot be, or begin, a webhook-id: empty,
// too long, or with a character outside IDChars. The id itself is never
// quoted in the error.
func checkID(op, leadID string) error {
	switch {
	case leadID == "":
		return &integrations.Error{System: System, Op: op, Code: "lead without id", Kind: integrations.Permanent}
	case len(leadID) > maxLeadIDLen || strings.Trim(leadID, IDChars) != "":
		return &integrations.Error{System: System, Op: op, Code: "lead id unfit for webhook-id", Kind: integrations.Permanent}
	}
	return nil
}

// leadDocument is l's crm.Lead document. Times are put in UTC first so that
// the same lead gives the same bytes however it was loaded: lead.created
// retries depend on it, and so do the webhook-ids of updates.
func leadDocument(l crm.Lead) ([]byte, error) {
	l.ReceivedAt = l.ReceivedAt.UTC()
	l.Consent.GivenAt = l.Consent.GivenAt.UTC()
	data, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode lead: %w", err)
	}
	return data, nil
}

// eventID is the webhook-id of an update or erasure of lead leadID:
// "<leadID>_<what>_<hex of 16 bytes of HMAC-SHA256(idKey, data)>" (see the
// package comment for why). '_' joins the parts because a UUID never holds
// one, and '.' may not appear in a webhook-id at all.
func (c *Client) eventID(leadID, what string, data []byte) string {
	m := hmac.New(sha256.New, c.idKey)
	m.Write(data)
	return leadID + "_" + what + "_" + hex.EncodeToString(m.Sum(nil)[:16])
}

// send posts one signed event: the envelope of typ, at and data, under
// webhook-id id. Failures are *integrations.Error values for op.
func (c *Client) send(ctx context.Context, op, id, typ string, at time.Time, data []byte) error {
	body, err := json.Marshal(event{Type: typ, Timestamp: at.UTC().Format(time.RFC3339), Data: data})
	if err != nil {
		// data came from json.Marshal and the timestamp is a string, so
		// this does not happen; it is reported rather than ignored.
		return &integrations.Error{System: System, Op: op, Code: "unencodable event", Kind: integrations.Permanent, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		// The URL parsed in New, so only a nil context gets here; the
		// cause is left out because net/http quotes the URL in it.
		return &integrations.Error{System: System, Op: op, Code: "invalid request", Kind: integrations.Permanent}
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "leadgate")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(sign(c.key, id, ts, body)))

	resp, err := c.client.Do(req)
	if err != nil {
		return integrations.Transport(System, op, err)
	}
	defer func() {
		// Drain a little so the connection can be reused; what the receiver
		// says is not ours to log.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	return classify(integrations.Check(System, op, resp))
}

// classify adds the Standard Webhooks status handling to what Check made of
// a failed answer: 410 Gone means "stop sending" (integrations.CodeGone),
// and a 502 or 504 that says how long to wait means "throttle" rather than
// "failed".
// A Retry-After asking for no wait at all (0, a date in the past) leaves a
// 502 or 504 Temporary: there is nothing to honour.
func classify(err error) error {
	e, ok := errors.AsType[*integrations.Error](err)
	if !ok {
		return err
	}
	switch {
	case e.Status == http.StatusGone:
		e.Code = integrations.CodeGone
	case (e.Status == http.StatusBadGateway || e.Status == http.StatusGatewayTimeout) && e.RetryAfter > 0:
		e.Kind = integrations.RateLimited
	}
	return e
}

// sign is the Standard Webhooks v1 signature: HMAC-SHA256 over
// id.timestamp.body.
func sign(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received webhook as a Standard Webhooks receiver does:
// the three headers are present, webhook-timestamp is within tolerance of
// now either way (zero tolerance means DefaultTolerance), and at least one of
// the space-separated signatures in webhook-signature is a v1 signature of
// id.timestamp.body under secret's key. Signatures of other versions are
// skipped, so a sender may add new schemes or sign with an old and a new key
// while a secret is rotated.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeader
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := sign(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, _ := strings.Cut(s, ",")
		if version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
