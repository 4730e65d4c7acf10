// Package webhook is the CRM driver that posts each lead to a URL of the
// customer's choosing as a signed Standard Webhooks (standardwebhooks.com)
// event, so any receiver with a Standard Webhooks library can verify it.
//
// Each lead is one POST with Content-Type application/json and the body
//
//	{"type":"lead.created","timestamp":"<received_at, RFC 3339 UTC>","data":<lead>}
//
// where <lead> is the crm.Lead document. The body depends only on the lead,
// so a retry sends the same bytes; the headers are
//
//	webhook-id:        the lead id (the same on every retry: receivers dedupe on it)
//	webhook-timestamp: Unix seconds when this attempt was signed
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// with key the base64-decoded part of the "whsec_…" secret. Any 2xx answer
// means delivered; 410 Gone is a Permanent failure (the receiver asks us to
// stop); other failures follow package integrations.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// EventLeadCreated is the event type of a new lead.
const EventLeadCreated = "lead.created"

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock when Verify is given no tolerance (the Standard Webhooks
// recommendation).
const DefaultTolerance = 5 * time.Minute

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
	key    []byte
	client *http.Client
	now    func() time.Time // the signing clock; tests fix it
}

// New returns a Client posting to rawURL (http or https) signed with secret
// ("whsec_<base64 key>"). A nil client means integrations.NewHTTPClient(0).
// Errors never quote the URL or the secret: both may hold credentials.
func New(rawURL, secret string, client *http.Client) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: URL must be an absolute http or https URL")
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = integrations.NewHTTPClient(0)
	}
	return &Client{url: rawURL, key: key, client: client, now: time.Now}, nil
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

// event is the envelope of every webhook body.
type event struct {
	Type      string   `json:"type"`
	Timestamp string   `json:"timestamp"`
	Data      crm.Lead `json:"data"`
}

// Push posts l as a lead.created event and returns Receipt{System: "webhook",
// Ref: l.ID} on any 2xx. Failures are *integrations.Error values with System
// "webhook" and Op "push"; a lead that cannot be sent at all (no id, a time
// JSON cannot encode) is Permanent.
func (c *Client) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	if l.ID == "" {
		return crm.Receipt{}, &integrations.Error{System: System, Op: "push", Code: "lead without id", Kind: integrations.Permanent}
	}
	body, err := leadCreated(l)
	if err != nil {
		return crm.Receipt{}, &integrations.Error{System: System, Op: "push", Code: "unencodable lead", Kind: integrations.Permanent, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		// The URL parsed in New, so only a nil context gets here; the
		// cause is left out because net/http quotes the URL in it.
		return crm.Receipt{}, &integrations.Error{System: System, Op: "push", Code: "invalid request", Kind: integrations.Permanent}
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "leadgate")
	req.Header.Set("webhook-id", l.ID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(sign(c.key, l.ID, ts, body)))

	resp, err := c.client.Do(req)
	if err != nil {
		return crm.Receipt{}, integrations.Transport(System, "push", err)
	}
	defer func() {
		// Drain a little so the connection can be reused; what the receiver
		// says is not ours to log.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if err := integrations.Check(System, "push", resp); err != nil {
		return crm.Receipt{}, err
	}
	return crm.Receipt{System: System, Ref: l.ID}, nil
}

// leadCreated is the body of l's lead.created event. Times are put in UTC
// first so that the same lead gives the same bytes however it was loaded.
func leadCreated(l crm.Lead) ([]byte, error) {
	l.ReceivedAt = l.ReceivedAt.UTC()
	l.Consent.GivenAt = l.Consent.GivenAt.UTC()
	body, err := json.Marshal(event{Type: EventLeadCreated, Timestamp: l.ReceivedAt.Format(time.RFC3339), Data: l})
	if err != nil {
		return nil, fmt.Errorf("encode lead.created: %w", err)
	}
	return body, nil
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
