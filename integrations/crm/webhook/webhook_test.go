package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// specSecret is the example secret of the Standard Webhooks specification.
const specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// otherSecret is a valid secret with a different key.
var otherSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-key-of-32-bytes-length!!"))

func testLead() crm.Lead {
	at := time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)
	return crm.Lead{
		ID:         "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e",
		EntityType: "legal_entity",
		Name:       "Test Testov",
		Phone:      "+77010000000",
		Email:      "test@example.com",
		Products:   []string{"acquiring"},
		Lang:       "ru",
		ReceivedAt: at,
		Consent:    crm.Consent{Processing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy", GivenAt: at},
		Metadata:   crm.Metadata{IP: "203.0.113.7", Timezone: "Asia/Almaty"},
	}
}

// testBody is testLead's lead.created body, written out by hand.
const testBody = `{"type":"lead.created","timestamp":"2025-04-15T09:30:00Z","data":{` +
	`"id":"01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e","entity_type":"legal_entity","name":"Test Testov",` +
	`"phone":"+77010000000","email":"test@example.com","products":["acquiring"],"lang":"ru",` +
	`"received_at":"2025-04-15T09:30:00Z","consent":{"processing":true,"marketing":false,"policy_version":"1",` +
	`"policy_url":"https://example.com/privacy","given_at":"2025-04-15T09:30:00Z"},` +
	`"metadata":{"ip":"203.0.113.7","timezone":"Asia/Almaty"},"risk":{"score":0}}}`

// received is one request as the fake receiver saw it.
type received struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// receiver is a fake endpoint: it records every request and answers with
// respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(w, r, body)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func newClient(t *testing.T, url, secret string, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(url, secret, integrations.NewHTTPClient(timeout))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestSignSpecVector(t *testing.T) {
	t.Parallel()
	// From the Standard Webhooks specification and its reference libraries:
	// a receiver's library accepts what we send only if this matches.
	const (
		id   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts   = "1614265330"
		body = `{"test": 2432232314}`
		want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	key, err := decodeSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := "v1," + base64.StdEncoding.EncodeToString(sign(key, id, ts, []byte(body))); got != want {
		t.Errorf("signature = %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", want)
	if err := Verify(specSecret, h, []byte(body), 0, time.Unix(1614265330, 0)); err != nil {
		t.Errorf("Verify(spec vector) = %v", err)
	}
}

func TestPushKnownAnswer(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	c := newClient(t, rc.URL+"/hooks/leads?tenant=7", specSecret, 0)
	c.now = func() time.Time { return time.Unix(1700000000, 0) }

	r, err := c.Push(t.Context(), testLead())
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if want := (crm.Receipt{System: "webhook", Ref: testLead().ID}); r != want {
		t.Errorf("Receipt = %+v, want %+v", r, want)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if string(got.body) != testBody {
		t.Errorf("body =\n%s\nwant\n%s", got.body, testBody)
	}

	// The signature, computed here by hand from the published recipe.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(specSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(testLead().ID + ".1700000000." + testBody))
	wantSig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))

	for name, want := range map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "leadgate",
		"webhook-id":        testLead().ID,
		"webhook-timestamp": "1700000000",
		"webhook-signature": wantSig,
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if got.method != http.MethodPost || got.path != "/hooks/leads" || got.query != "tenant=7" {
		t.Errorf("request = %s %s?%s, want POST /hooks/leads?tenant=7", got.method, got.path, got.query)
	}
}

func TestPushVerifiedByReceiver(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if err := Verify(specSecret, r.Header, body, time.Minute, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(t, rc.URL, specSecret, 0)

	// A retry of the same lead, loaded with its times in another zone, must
	// still send the same bytes under the same webhook-id.
	almaty := time.FixedZone("Asia/Almaty", 5*3600)
	again := testLead()
	again.ReceivedAt = again.ReceivedAt.In(almaty)
	again.Consent.GivenAt = again.Consent.GivenAt.In(almaty)
	for _, l := range []crm.Lead{testLead(), again} {
		if _, err := c.Push(t.Context(), l); err != nil {
			t.Fatalf("Push: %v", err)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	if string(reqs[0].body) != string(reqs[1].body) {
		t.Errorf("bodies differ across retries:\n%s\n%s", reqs[0].body, reqs[1].body)
	}
	if string(reqs[0].body) != testBody {
		t.Errorf("body =\n%s\nwant\n%s", reqs[0].body, testBody)
	}
	if a, b := reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"); a != b || a != testLead().ID {
		t.Errorf("webhook-id = %q then %q, want %q both times", a, b, testLead().ID)
	}

	// The receiver refuses a sender with the wrong key.
	wrong := newClient(t, rc.URL, otherSecret, 0)
	_, err := wrong.Push(t.Context(), testLead())
	if e, ok := errors.AsType[*integrations.Error](err); !ok || e.Status != http.StatusUnauthorized {
		t.Errorf("Push with the wrong key = %v, want HTTP 401", err)
	}
}

// ops are the three calls of the driver, each on testLead.
var ops = []struct {
	name string
	call func(ctx context.Context, c *Client) error
}{
	{"push", func(ctx context.Context, c *Client) error {
		r, err := c.Push(ctx, testLead())
		if err == nil && (r != crm.Receipt{System: "webhook", Ref: testLead().ID}) {
			return fmt.Errorf("receipt %+v", r)
		}
		return err
	}},
	{"update", func(ctx context.Context, c *Client) error { return c.Update(ctx, testLead(), testLead().ID) }},
	{"erase", func(ctx context.Context, c *Client) error { return c.Erase(ctx, testLead().ID, testLead().ID) }},
}

func TestStatus(t *testing.T) {
	t.Parallel()
	inAMinute := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	tests := []struct {
		status     int
		retryAfter string
		kind       integrations.Kind // 0: delivered
		code       string
		minWait    time.Duration
		maxWait    time.Duration
	}{
		{status: 200},
		{status: 201},
		{status: 202},
		{status: 204},
		{status: 400, kind: integrations.Permanent},
		{status: 401, kind: integrations.Permanent},
		{status: 404, kind: integrations.Permanent},
		{status: 410, kind: integrations.Permanent, code: integrations.CodeGone},
		{status: 410, retryAfter: "60", kind: integrations.Permanent, code: integrations.CodeGone, minWait: time.Minute, maxWait: time.Minute},
		{status: 413, kind: integrations.Permanent},
		{status: 422, kind: integrations.Permanent},
		{status: 408, kind: integrations.Temporary},
		{status: 429, kind: integrations.RateLimited},
		{status: 429, retryAfter: "12", kind: integrations.RateLimited, minWait: 12 * time.Second, maxWait: 12 * time.Second},
		{status: 500, kind: integrations.Temporary},
		{status: 502, kind: integrations.Temporary},
		{status: 502, retryAfter: "20", kind: integrations.RateLimited, minWait: 20 * time.Second, maxWait: 20 * time.Second},
		{status: 502, retryAfter: "0", kind: integrations.Temporary},     // no wait asked for: nothing to honour
		{status: 502, retryAfter: "later", kind: integrations.Temporary}, // unreadable
		{status: 503, kind: integrations.Temporary},
		{status: 503, retryAfter: "30", kind: integrations.RateLimited, minWait: 30 * time.Second, maxWait: 30 * time.Second},
		{status: 504, kind: integrations.Temporary},
		{status: 504, retryAfter: "45", kind: integrations.RateLimited, minWait: 45 * time.Second, maxWait: 45 * time.Second},
		{status: 504, retryAfter: inAMinute, kind: integrations.RateLimited, minWait: 50 * time.Second, maxWait: time.Minute},
	}
	for _, op := range ops {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %d %s", op.name, tt.status, tt.retryAfter), func(t *testing.T) {
				t.Parallel()
				rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					w.WriteHeader(tt.status)
					// Bodies echo what was sent; none of it may reach the error.
					_, _ = w.Write(body)
				})
				c := newClient(t, rc.URL+"/in?token=s3cr3tT0kenXYZ", specSecret, 0)
				err := op.call(t.Context(), c)
				if tt.kind == 0 {
					if err != nil {
						t.Fatalf("%s = %v, want delivered", op.name, err)
					}
					return
				}
				e, ok := errors.AsType[*integrations.Error](err)
				if !ok {
					t.Fatalf("%s = %v on HTTP %d, want an *integrations.Error", op.name, err, tt.status)
				}
				if e.Kind != tt.kind || e.Code != tt.code || e.Status != tt.status || e.System != "webhook" || e.Op != op.name {
					t.Errorf("error = %+v, want {System: webhook, Op: %s, Status: %d, Code: %q, Kind: %v}", e, op.name, tt.status, tt.code, tt.kind)
				}
				if e.RetryAfter < tt.minWait || e.RetryAfter > tt.maxWait {
					t.Errorf("RetryAfter = %v, want %v to %v", e.RetryAfter, tt.minWait, tt.maxWait)
				}
				if gone := tt.status == http.StatusGone; integrations.IsGone(err) != gone {
					t.Errorf("IsGone = %v on HTTP %d, want %v", !gone, tt.status, gone)
				}
				assertClean(t, err, rc.URL)
			})
		}
	}
}

// redirects are the 3xx answers a receiver (or something in front of it)
// may give; none may be followed or taken for a delivery.
var redirects = []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
	http.StatusTemporaryRedirect, http.StatusPermanentRedirect}

func TestRedirectIsNotDelivered(t *testing.T) {
	t.Parallel()
	// Built with NewHTTPClient, or handed the httptest client, which follows
	// redirects as net/http does by default: New must not let it.
	clients := map[string]func(rc *receiver) *http.Client{
		"NewHTTPClient": func(*receiver) *http.Client { return integrations.NewHTTPClient(0) },
		"a follower":    func(rc *receiver) *http.Client { return rc.Client() },
	}
	for _, op := range ops {
		for _, status := range redirects {
			for name, hc := range clients {
				t.Run(fmt.Sprintf("%s %d %s", op.name, status, name), func(t *testing.T) {
					t.Parallel()
					// The old address redirects to a new one that takes
					// anything: what a followed redirect would report as
					// delivered (a 301/302/303 as a GET without the event).
					rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
						if r.URL.Path == "/in" {
							http.Redirect(w, r, "/moved", status)
						}
					})
					c, err := New(rc.URL+"/in", specSecret, hc(rc))
					if err != nil {
						t.Fatal(err)
					}
					err = op.call(t.Context(), c)
					e, ok := errors.AsType[*integrations.Error](err)
					if !ok {
						t.Fatalf("%s = %v on HTTP %d, want an *integrations.Error", op.name, err, status)
					}
					if e.Kind != integrations.Temporary || e.Status != status || e.Code != integrations.CodeRedirect || integrations.IsGone(err) {
						t.Errorf("error = %+v, want {Status: %d, Code: redirect, Kind: temporary}", e, status)
					}
					reqs := rc.requests()
					if len(reqs) != 1 || reqs[0].method != http.MethodPost || reqs[0].path != "/in" {
						var seen []string
						for _, r := range reqs {
							seen = append(seen, r.method+" "+r.path)
						}
						t.Errorf("receiver got %q, want the one POST /in: the redirect was followed", seen)
					}
					assertClean(t, err, rc.URL)
				})
			}
		}
	}
}

// assertClean fails when err's message holds the URL, the secret or any
// personal data of testLead.
func assertClean(t *testing.T, err error, serverURL string) {
	t.Helper()
	msg := err.Error()
	for _, s := range []string{serverURL, "s3cr3tT0kenXYZ", strings.TrimPrefix(specSecret, "whsec_"),
		"Test Testov", "test@example.com", "+77010000000", "203.0.113.7"} {
		if strings.Contains(msg, s) {
			t.Errorf("error %q contains %q", msg, s)
		}
	}
}

func TestPushTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		select { // slower than the client will wait
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server closes

	c := newClient(t, rc.URL+"/in?token=s3cr3tT0kenXYZ", specSecret, 100*time.Millisecond)
	start := time.Now()
	_, err := c.Push(t.Context(), testLead())
	if err == nil {
		t.Fatal("Push succeeded against a server that never answers")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Push took %v; the client timeout is 100ms", elapsed)
	}
	if got := integrations.KindOf(err); got != integrations.Temporary {
		t.Errorf("KindOf = %v, want temporary", got)
	}
	if got, want := err.Error(), "webhook push: timeout (temporary)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	assertClean(t, err, rc.URL)
}

func TestUnsendable(t *testing.T) {
	t.Parallel()
	noID := testLead()
	noID.ID = ""
	farFuture := testLead()
	farFuture.ReceivedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // JSON cannot encode it
	withID := func(id string) crm.Lead {
		l := testLead()
		l.ID = id
		return l
	}

	tests := []struct {
		name string
		lead crm.Lead
	}{
		{"no id", noID},
		{"unencodable time", farFuture},
		// A webhook-id may not hold a '.' (the signed content is
		// id.timestamp.body); only letters, digits, '_' and '-' are sent.
		{"id with a dot", withID("01964c2e.7b1a")},
		{"id with a space", withID("01964c2e 7b1a")},
		{"id with a slash", withID("01964c2e/7b1a")},
		{"id with a non-ASCII letter", withID("01964c2e-ө")},
		{"id too long", withID(strings.Repeat("a", maxLeadIDLen+1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			c := newClient(t, rc.URL, specSecret, 0)
			_, pushErr := c.Push(t.Context(), tt.lead)
			updateErr := c.Update(t.Context(), tt.lead, tt.lead.ID)
			errs := map[string]error{"Push": pushErr, "Update": updateErr}
			if tt.lead.ID != farFuture.ID {
				errs["Erase"] = c.Erase(t.Context(), tt.lead.ID, tt.lead.ID)
			}
			for name, err := range errs {
				if got := integrations.KindOf(err); got != integrations.Permanent {
					t.Errorf("%s = %v (kind %v), want a permanent error", name, err, got)
				}
				if err != nil {
					assertClean(t, err, rc.URL)
				}
			}
			if n := len(rc.requests()); n != 0 {
				t.Errorf("receiver got %d requests, want 0", n)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	key32 := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name, url, secret string
		wantErr           error // nil: valid; ErrSecret; errBadURL for any URL error
	}{
		{"valid", "https://crm.example.com/hooks", specSecret, nil},
		{"plain http", "http://127.0.0.1:8081/in", specSecret, nil},
		{"padded key", "https://crm.example.com/", "whsec_" + base64.StdEncoding.EncodeToString(key32), nil},
		{"unpadded key", "https://crm.example.com/", "whsec_" + base64.RawStdEncoding.EncodeToString(key32), nil},
		{"empty secret", "https://crm.example.com/", "", ErrSecret},
		{"prefix only", "https://crm.example.com/", "whsec_", ErrSecret},
		{"no prefix", "https://crm.example.com/", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ErrSecret},
		{"wrong prefix", "https://crm.example.com/", "whsek_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ErrSecret},
		{"not base64", "https://crm.example.com/", "whsec_MfKQ9r8GKYqr!wjUPD8ILPZIo2LaLaSw", ErrSecret},
		{"url-safe alphabet", "https://crm.example.com/", "whsec_" + base64.URLEncoding.EncodeToString([]byte("\xfb\xff\xfe0123456789abcdef0123456")), ErrSecret},
		{"key too short", "https://crm.example.com/", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short-key")), ErrSecret},
		{"empty url", "", specSecret, errBadURL},
		{"relative url", "/hooks", specSecret, errBadURL},
		{"no host", "https:///hooks", specSecret, errBadURL},
		{"other scheme", "ftp://crm.example.com/s3cr3tT0kenXYZ", specSecret, errBadURL},
		{"unparsable", "http://crm.example.com/%zz?s3cr3tT0kenXYZ", specSecret, errBadURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.url, tt.secret, nil)
			switch {
			case tt.wantErr == nil:
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v; want a client", c, err)
				}
				if c.client == nil || c.client == http.DefaultClient || c.client.Timeout == 0 {
					t.Errorf("nil client became %+v, want one with a timeout", c.client)
				}
				return
			case err == nil:
				t.Fatal("New accepted it")
			case tt.wantErr == ErrSecret && !errors.Is(err, ErrSecret):
				t.Errorf("New = %v, want ErrSecret", err)
			case tt.wantErr == errBadURL && errors.Is(err, ErrSecret):
				t.Errorf("New = %v, want a URL error", err)
			}
			if b64 := strings.TrimPrefix(tt.secret, "whsec_"); b64 != "" && strings.Contains(err.Error(), b64) {
				t.Errorf("error %q quotes the secret", err)
			}
			if strings.Contains(err.Error(), "s3cr3tT0kenXYZ") {
				t.Errorf("error %q quotes the URL", err)
			}
		})
	}
}

// errBadURL marks the cases of TestNew where the URL is at fault.
var errBadURL = errors.New("bad URL")

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	body := []byte(testBody)
	key, err := decodeSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	sig := func(ts int64, b []byte) string {
		return "v1," + base64.StdEncoding.EncodeToString(sign(key, "msg_1", strconv.FormatInt(ts, 10), b))
	}
	header := func(id string, ts int64, sigs string) http.Header {
		h := http.Header{}
		if id != "" {
			h.Set("webhook-id", id)
		}
		if ts != 0 {
			h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		}
		if sigs != "" {
			h.Set("webhook-signature", sigs)
		}
		return h
	}
	t0 := now.Unix()
	tests := []struct {
		name      string
		secret    string
		header    http.Header
		body      []byte
		tolerance time.Duration
		want      error
	}{
		{"valid", specSecret, header("msg_1", t0, sig(t0, body)), body, time.Minute, nil},
		{"valid among several", specSecret, header("msg_1", t0, "v1,bm9wZQ== v1a,xyz v2,"+sig(t0, body)[3:]+" "+sig(t0, body)), body, time.Minute, nil},
		{"only another version", specSecret, header("msg_1", t0, "v2,"+sig(t0, body)[3:]), body, time.Minute, ErrSignature},
		{"malformed entries", specSecret, header("msg_1", t0, "v1 v1,!!! ,"), body, time.Minute, ErrSignature},
		{"tampered body", specSecret, header("msg_1", t0, sig(t0, body)), []byte(strings.Replace(testBody, "ru", "en", 1)), time.Minute, ErrSignature},
		{"other id", specSecret, header("msg_2", t0, sig(t0, body)), body, time.Minute, ErrSignature},
		{"wrong key", otherSecret, header("msg_1", t0, sig(t0, body)), body, time.Minute, ErrSignature},
		{"signature for another timestamp", specSecret, header("msg_1", t0, sig(t0-1, body)), body, time.Minute, ErrSignature},
		{"just inside tolerance", specSecret, header("msg_1", t0-60, sig(t0-60, body)), body, time.Minute, nil},
		{"too old", specSecret, header("msg_1", t0-61, sig(t0-61, body)), body, time.Minute, ErrTimestamp},
		{"too new", specSecret, header("msg_1", t0+61, sig(t0+61, body)), body, time.Minute, ErrTimestamp},
		{"default tolerance keeps 4m", specSecret, header("msg_1", t0-240, sig(t0-240, body)), body, 0, nil},
		{"default tolerance drops 6m", specSecret, header("msg_1", t0-360, sig(t0-360, body)), body, 0, ErrTimestamp},
		{"no id", specSecret, header("", t0, sig(t0, body)), body, time.Minute, ErrMissingHeader},
		{"no timestamp", specSecret, header("msg_1", 0, sig(t0, body)), body, time.Minute, ErrMissingHeader},
		{"no signature", specSecret, header("msg_1", t0, ""), body, time.Minute, ErrMissingHeader},
		{"bad secret", "whsec_", header("msg_1", t0, sig(t0, body)), body, time.Minute, ErrSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tt.secret, tt.header, tt.body, tt.tolerance, now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("unreadable timestamp", func(t *testing.T) {
		t.Parallel()
		h := header("msg_1", t0, sig(t0, body))
		h.Set("webhook-timestamp", "2023-11-14T22:13:20Z")
		if err := Verify(specSecret, h, body, time.Minute, now); !errors.Is(err, ErrTimestamp) {
			t.Errorf("Verify = %v, want ErrTimestamp", err)
		}
	})
}

func TestLeadDocumentFormat(t *testing.T) {
	t.Parallel()
	routed := testLead()
	routed.Assignment = &crm.Assignment{Rule: "kz-smb", Team: "SMB", Owner: "Test Managerov", CRMUserID: "17"}
	routed.Risk = crm.Risk{Score: 40, Signals: []string{"disposable_email", "many_requests"}}
	noUser := testLead()
	noUser.Assignment = &crm.Assignment{Rule: "default", Team: "Sales", Owner: "Test Managerov"}

	const head = `{"id":"01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e","entity_type":"legal_entity","name":"Test Testov",` +
		`"phone":"+77010000000","email":"test@example.com","products":["acquiring"],"lang":"ru",` +
		`"received_at":"2025-04-15T09:30:00Z","consent":{"processing":true,"marketing":false,"policy_version":"1",` +
		`"policy_url":"https://example.com/privacy","given_at":"2025-04-15T09:30:00Z"},` +
		`"metadata":{"ip":"203.0.113.7","timezone":"Asia/Almaty"},`
	tests := []struct {
		name string
		lead crm.Lead
		want string
	}{
		{"no assignment, risk 0", testLead(), head + `"risk":{"score":0}}`},
		{"assigned, with risk signals", routed, head +
			`"assignment":{"rule":"kz-smb","team":"SMB","owner":"Test Managerov","crm_user_id":"17"},` +
			`"risk":{"score":40,"signals":["disposable_email","many_requests"]}}`},
		{"assigned, no CRM user", noUser, head +
			`"assignment":{"rule":"default","team":"Sales","owner":"Test Managerov"},"risk":{"score":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			c := newClient(t, rc.URL, specSecret, 0)
			if _, err := c.Push(t.Context(), tt.lead); err != nil {
				t.Fatalf("Push: %v", err)
			}
			if err := c.Update(t.Context(), tt.lead, tt.lead.ID); err != nil {
				t.Fatalf("Update: %v", err)
			}
			reqs := rc.requests()
			if len(reqs) != 2 {
				t.Fatalf("receiver got %d requests, want 2", len(reqs))
			}
			for i, prefix := range []string{
				`{"type":"lead.created","timestamp":"2025-04-15T09:30:00Z","data":`,
				`{"type":"lead.updated","timestamp":"`,
			} {
				body := string(reqs[i].body)
				if !strings.HasPrefix(body, prefix) || !strings.HasSuffix(body, `"data":`+tt.want+`}`) {
					t.Errorf("body =\n%s\nwant %s…\"data\":%s}", body, prefix, tt.want)
				}
			}
		})
	}
}

// fixedClock is the time the Update and Erase known-answer tests send at.
var fixedClock = time.Unix(1700000000, 0)

// wantEventID computes a webhook-id of an update or erasure by the recipe in
// the package comment, independently of eventID.
func wantEventID(t *testing.T, secret, leadID, what, data string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	derive := hmac.New(sha256.New, key)
	derive.Write([]byte("leadgate webhook-id v1"))
	m := hmac.New(sha256.New, derive.Sum(nil))
	m.Write([]byte(data))
	return leadID + "_" + what + "_" + fmt.Sprintf("%x", m.Sum(nil)[:16])
}

func TestUpdateAndEraseKnownAnswer(t *testing.T) {
	t.Parallel()
	lead := testLead()
	doc := strings.TrimSuffix(strings.TrimPrefix(testBody, `{"type":"lead.created","timestamp":"2025-04-15T09:30:00Z","data":`), "}")
	erased := `{"id":"` + lead.ID + `"}`
	tests := []struct {
		name, body, id string
		call           func(ctx context.Context, c *Client) error
	}{
		{
			name: "update",
			call: func(ctx context.Context, c *Client) error { return c.Update(ctx, lead, lead.ID) },
			body: `{"type":"lead.updated","timestamp":"2023-11-14T22:13:20Z","data":` + doc + `}`,
			id:   wantEventID(t, specSecret, lead.ID, "updated", doc),
		},
		{
			name: "erase",
			call: func(ctx context.Context, c *Client) error { return c.Erase(ctx, lead.ID, lead.ID) },
			body: `{"type":"lead.erased","timestamp":"2023-11-14T22:13:20Z","data":` + erased + `}`,
			id:   wantEventID(t, specSecret, lead.ID, "erased", erased),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			c := newClient(t, rc.URL+"/hooks/leads", specSecret, 0)
			c.now = func() time.Time { return fixedClock }
			if err := tt.call(t.Context(), c); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if string(got.body) != tt.body {
				t.Errorf("body =\n%s\nwant\n%s", got.body, tt.body)
			}
			if v := got.header.Get("webhook-id"); v != tt.id {
				t.Errorf("webhook-id = %q, want %q", v, tt.id)
			}
			if v := got.header.Get("webhook-timestamp"); v != "1700000000" {
				t.Errorf("webhook-timestamp = %q, want 1700000000", v)
			}
			if err := Verify(specSecret, got.header, got.body, time.Minute, fixedClock); err != nil {
				t.Errorf("Verify = %v", err)
			}
			if got.method != http.MethodPost || got.path != "/hooks/leads" || got.header.Get("Content-Type") != "application/json" {
				t.Errorf("request = %s %s (%s), want POST /hooks/leads (application/json)", got.method, got.path, got.header.Get("Content-Type"))
			}
		})
	}
}

func TestEraseCarriesNoPersonalData(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	c := newClient(t, rc.URL, specSecret, 0)
	if err := c.Erase(t.Context(), testLead().ID, testLead().ID); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	for _, s := range []string{"Test Testov", "test@example.com", "+77010000000", "203.0.113.7"} {
		if strings.Contains(string(reqs[0].body), s) || strings.Contains(fmt.Sprint(reqs[0].header), s) {
			t.Errorf("lead.erased request contains %q", s)
		}
	}
}

func TestEventIDs(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	c := newClient(t, rc.URL, specSecret, 0)
	rotated := newClient(t, rc.URL, otherSecret, 0)

	lead := testLead()
	almaty := time.FixedZone("Asia/Almaty", 5*3600)
	sameInAlmaty := testLead()
	sameInAlmaty.ReceivedAt = sameInAlmaty.ReceivedAt.In(almaty)
	sameInAlmaty.Consent.GivenAt = sameInAlmaty.Consent.GivenAt.In(almaty)
	newPhone := testLead()
	newPhone.Phone = "+77010000001"
	other := testLead()
	other.ID = "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6f"

	// Each send is made at a different time, as retries are.
	clock := fixedClock
	send := func(c *Client, f func(c *Client) error) string {
		t.Helper()
		clock = clock.Add(time.Hour)
		at := clock
		c.now = func() time.Time { return at }
		if err := f(c); err != nil {
			t.Fatal(err)
		}
		reqs := rc.requests()
		return reqs[len(reqs)-1].header.Get("webhook-id")
	}
	update := func(l crm.Lead) func(c *Client) error {
		return func(c *Client) error { return c.Update(t.Context(), l, l.ID) }
	}
	erase := func(id string) func(c *Client) error {
		return func(c *Client) error { return c.Erase(t.Context(), id, id) }
	}

	first := send(c, update(lead))
	if ok, _ := regexp.MatchString(`^`+regexp.QuoteMeta(lead.ID)+`_updated_[0-9a-f]{32}$`, first); !ok {
		t.Errorf("update webhook-id = %q, want <lead id>_updated_<32 hex>", first)
	}
	if again := send(c, update(lead)); again != first {
		t.Errorf("a retried update got webhook-id %q, first %q: receivers would apply it twice", again, first)
	}
	if again := send(c, update(sameInAlmaty)); again != first {
		t.Errorf("the same update loaded in another zone got webhook-id %q, want %q", again, first)
	}
	erased := send(c, erase(lead.ID))
	if again := send(c, erase(lead.ID)); again != erased {
		t.Errorf("a retried erasure got webhook-id %q, first %q", again, erased)
	}
	if ok, _ := regexp.MatchString(`^`+regexp.QuoteMeta(lead.ID)+`_erased_[0-9a-f]{32}$`, erased); !ok {
		t.Errorf("erase webhook-id = %q, want <lead id>_erased_<32 hex>", erased)
	}

	seen := map[string]string{first: "update", erased: "erase"}
	for name, id := range map[string]string{
		"a different update":          send(c, update(newPhone)),
		"another lead's update":       send(c, update(other)),
		"another lead's erasure":      send(c, erase(other.ID)),
		"the update after a rotation": send(rotated, update(lead)),
		"the lead.created":            lead.ID,
	} {
		if prev, dup := seen[id]; dup {
			t.Errorf("%s got webhook-id %q, already used by %s", name, id, prev)
		}
		seen[id] = name
	}
}

// idPattern is what the Standard Webhooks signed content (id.timestamp.body)
// allows of an id, narrowed to what this driver promises: no '.', only
// letters, digits, '_' and '-'.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestEveryIDFitsTheSpec(t *testing.T) {
	t.Parallel()
	if !idPattern.MatchString(IDChars) {
		t.Fatalf("IDChars %q holds a character the pattern refuses", IDChars)
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			// Three attempts, the first two failing, each signed at another
			// time: every one carries the same id, and it fits the spec.
			var attempt atomic.Int32
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				if attempt.Add(1) < 3 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			})
			c := newClient(t, rc.URL, specSecret, 0)
			clock := fixedClock
			for range 3 {
				clock = clock.Add(37 * time.Minute)
				at := clock
				c.now = func() time.Time { return at }
				_ = op.call(t.Context(), c)
			}
			reqs := rc.requests()
			if len(reqs) != 3 {
				t.Fatalf("receiver got %d requests, want 3", len(reqs))
			}
			id := reqs[0].header.Get("webhook-id")
			if !idPattern.MatchString(id) {
				t.Errorf("webhook-id %q does not match %s", id, idPattern)
			}
			for i, r := range reqs {
				if got := r.header.Get("webhook-id"); got != id {
					t.Errorf("attempt %d: webhook-id %q, first %q: a receiver would apply the event twice", i+1, got, id)
				}
				if err := Verify(specSecret, r.header, r.body, time.Minute, clock.Add(time.Duration(i-2)*37*time.Minute)); err != nil {
					t.Errorf("attempt %d does not verify: %v", i+1, err)
				}
			}
		})
	}
}

func TestRefMismatch(t *testing.T) {
	t.Parallel()
	noID := testLead()
	noID.ID = ""
	tests := []struct {
		name string
		call func(ctx context.Context, c *Client) error
	}{
		{"update, another driver's ref", func(ctx context.Context, c *Client) error { return c.Update(ctx, testLead(), "4711") }},
		{"update, empty ref", func(ctx context.Context, c *Client) error { return c.Update(ctx, testLead(), "") }},
		{"update, no lead id", func(ctx context.Context, c *Client) error { return c.Update(ctx, noID, "") }},
		{"erase, another lead's ref", func(ctx context.Context, c *Client) error {
			return c.Erase(ctx, testLead().ID, "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6f")
		}},
		{"erase, no lead id", func(ctx context.Context, c *Client) error { return c.Erase(ctx, "", "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			c := newClient(t, rc.URL, specSecret, 0)
			err := tt.call(t.Context(), c)
			if got := integrations.KindOf(err); got != integrations.Permanent {
				t.Errorf("= %v (kind %v), want a permanent error", err, got)
			}
			if n := len(rc.requests()); n != 0 {
				t.Errorf("receiver got %d requests, want 0", n)
			}
		})
	}
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			c := newClient(t, rc.URL+"/in?token=s3cr3tT0kenXYZ", specSecret, 0)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := op.call(ctx, c)
			if !errors.Is(err, context.Canceled) || integrations.KindOf(err) != integrations.Temporary {
				t.Errorf("%s with a cancelled context = %v, want a temporary error wrapping context.Canceled", op.name, err)
			}
			if n := len(rc.requests()); n != 0 {
				t.Errorf("receiver got %d requests, want 0", n)
			}
			assertClean(t, err, rc.URL)
		})
	}
}

// consumer is a fake CRM behind a Standard Webhooks endpoint, doing what the
// spec asks of a receiver: verify the signature, skip a webhook-id already
// processed, then apply the event to its leads.
type consumer struct {
	mu      sync.Mutex
	seen    map[string]bool
	leads   map[string]crm.Lead
	applied int // events acted on, duplicates not counted
}

func (cs *consumer) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	if err := Verify(specSecret, r.Header, body, time.Minute, time.Now()); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	var l crm.Lead
	if json.Unmarshal(body, &ev) != nil || json.Unmarshal(ev.Data, &l) != nil || l.ID == "" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	id := r.Header.Get("webhook-id")
	if cs.seen[id] {
		w.WriteHeader(http.StatusNoContent) // already done: acknowledge, do nothing
		return
	}
	cs.seen[id] = true
	switch ev.Type {
	case EventLeadCreated, EventLeadUpdated:
		cs.leads[l.ID] = l
	case EventLeadErased:
		delete(cs.leads, l.ID)
	default:
		http.Error(w, "unknown event", http.StatusBadRequest)
		return
	}
	cs.applied++
	w.WriteHeader(http.StatusNoContent)
}

func (cs *consumer) state() (map[string]crm.Lead, int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return maps.Clone(cs.leads), cs.applied
}

func TestConsumerSeesEachEventOnce(t *testing.T) {
	t.Parallel()
	cs := &consumer{seen: map[string]bool{}, leads: map[string]crm.Lead{}}
	rc := newReceiver(t, cs.handle)
	c := newClient(t, rc.URL, specSecret, 0)
	ctx := t.Context()
	lead := testLead()

	check := func(step string, wantLeads, wantApplied int) {
		t.Helper()
		leads, applied := cs.state()
		if len(leads) != wantLeads || applied != wantApplied {
			t.Errorf("after %s: %d leads, %d events applied; want %d and %d", step, len(leads), applied, wantLeads, wantApplied)
		}
	}

	// A crash between "the CRM accepted it" and "we recorded it": the task
	// runs again and pushes the same lead a second time.
	r1, err := c.Push(ctx, lead)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	r2, err := c.Push(ctx, lead)
	if err != nil {
		t.Fatalf("Push again: %v", err)
	}
	if r1 != r2 || r1.Ref != lead.ID {
		t.Errorf("receipts %+v and %+v, want the same, with Ref %q", r1, r2, lead.ID)
	}
	check("a push and its retry", 1, 1)

	fixed := lead
	fixed.Name = "Test Testova"
	c.now = func() time.Time { return time.Now() }
	if err := c.Update(ctx, fixed, r1.Ref); err != nil {
		t.Fatalf("Update: %v", err)
	}
	c.now = func() time.Time { return time.Now().Add(30 * time.Second) } // the retry comes later
	if err := c.Update(ctx, fixed, r1.Ref); err != nil {
		t.Fatalf("Update again: %v", err)
	}
	check("an update and its retry", 1, 2)
	if leads, _ := cs.state(); leads[lead.ID].Name != "Test Testova" {
		t.Errorf("name in the CRM = %q, want the rectified one", leads[lead.ID].Name)
	}

	fixed.Email = "test.testova@example.com"
	if err := c.Update(ctx, fixed, r1.Ref); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	check("a second, different update", 1, 3)

	for range 2 {
		if err := c.Erase(ctx, lead.ID, r1.Ref); err != nil {
			t.Fatalf("Erase: %v", err)
		}
	}
	check("an erasure and its retry", 0, 4)
}
