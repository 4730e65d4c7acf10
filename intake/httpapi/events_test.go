package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/mail/sendgrid"
)

// hookFixture is an HTTP fixture whose server trusts the public half of key
// for the SendGrid Event Webhook.
type hookFixture struct {
	httpFixture
	key *ecdsa.PrivateKey
}

func newSigningKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

func setupHook(t *testing.T) hookFixture {
	t.Helper()
	key, pub := newSigningKey(t)
	return hookFixture{httpFixture: setupHTTP(t, func(o *Options) { o.SendGridKey = pub }), key: key}
}

// sign signs as SendGrid does (eventwebhook.VerifySignature is the
// reference): ECDSA over SHA-256 of timestamp + raw body, ASN.1 DER, base64.
func sign(t *testing.T, key *ecdsa.PrivateKey, ts, body string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// postEvents posts body to the webhook with the given headers; nil headers
// mean a correct signature made now.
func (f hookFixture) postEvents(t *testing.T, body string, header map[string]string) *http.Response {
	t.Helper()
	if header == nil {
		ts := strconv.FormatInt(f.clock.Now().Unix(), 10)
		header = map[string]string{
			"X-Twilio-Email-Event-Webhook-Timestamp": ts,
			"X-Twilio-Email-Event-Webhook-Signature": sign(t, f.key, ts, body),
		}
	}
	return postHook(t, f.url, body, header)
}

func postHook(t *testing.T, url, body string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/webhooks/sendgrid", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// subscribe stores a lead for email with active marketing consent (single
// opt-in) and returns the person.
func (f hookFixture) subscribe(t *testing.T, email string) string {
	t.Helper()
	ctx := context.Background()
	sub := fakePerson()
	sub.Email, sub.EmailKey = email, strings.ToLower(email)
	a := application(sub)
	a.Submission.ConsentMarketing, a.DoubleOptIn = true, false
	adm, err := f.store.Leads.Accept(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.store.Leads.Get(ctx, adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := f.store.People.PersonOf(email); !ok || p != l.Person {
		t.Fatalf("PersonOf(%q) does not name the stored person", email)
	}
	if state, _ := f.store.People.Marketing(ctx, l.Person); state != intake.MarketingActive {
		t.Fatalf("set-up consent is %q, want active", state)
	}
	return l.Person
}

// event is one SendGrid event as JSON; extra is raw JSON members to add.
func event(email, name, id string, ts time.Time, extra string) string {
	s := fmt.Sprintf(`{"email":%q,"timestamp":%d,"event":%q,"sg_event_id":%q,"sg_message_id":"msg.filter0001","ref":"c-1"`,
		email, ts.Unix(), name, id)
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func batch(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// wantCounts checks a 200 answer's counts.
func wantCounts(t *testing.T, resp *http.Response, processed, ignored int) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	body := decode(t, resp)
	if body["processed"] != float64(processed) || body["ignored"] != float64(ignored) {
		t.Fatalf("answer %v, want processed %d, ignored %d", body, processed, ignored)
	}
}

func (f hookFixture) state(t *testing.T, person string) (marketing, suppressed string) {
	t.Helper()
	ctx := context.Background()
	m, err := f.store.People.Marketing(ctx, person)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.store.People.Suppressed(ctx, person)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestSendGridSignature(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	person := f.subscribe(t, "test.testov@example.com")
	body := batch(event("test.testov@example.com", "bounce", "ev-sig", f.clock.Now(), `"type":"bounce"`))
	other, _ := newSigningKey(t)
	signedAt := func(at time.Time, key *ecdsa.PrivateKey, signed string) map[string]string {
		ts := strconv.FormatInt(at.Unix(), 10)
		return map[string]string{"X-Twilio-Email-Event-Webhook-Timestamp": ts,
			"X-Twilio-Email-Event-Webhook-Signature": sign(t, key, ts, signed)}
	}
	now := f.clock.Now()
	refused := []struct {
		name   string
		header map[string]string
	}{
		{"no headers", map[string]string{}},
		{"no signature", map[string]string{"X-Twilio-Email-Event-Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10)}},
		{"no timestamp", map[string]string{"X-Twilio-Email-Event-Webhook-Signature": signedAt(now, f.key, body)["X-Twilio-Email-Event-Webhook-Signature"]}},
		{"tampered body", signedAt(now, f.key, strings.Replace(body, "bounce", "delivered", 1))},
		{"other key", signedAt(now, other, body)},
		{"signature not base64", map[string]string{"X-Twilio-Email-Event-Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10),
			"X-Twilio-Email-Event-Webhook-Signature": "%%%"}},
		{"stale", signedAt(now.Add(-sendgrid.EventMaxAge-time.Second), f.key, body)},
		{"from the future", signedAt(now.Add(sendgrid.EventMaxAhead+time.Second), f.key, body)},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			resp := f.postEvents(t, body, c.header)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if got := decode(t, resp); got["message"] != "signature missing, invalid or stale" {
				t.Fatalf("answer %v, want the fixed message", got)
			}
			if m, s := f.state(t, person); m != intake.MarketingActive || s != "" {
				t.Fatalf("a refused post changed the person: marketing %q, suppressed %q", m, s)
			}
		})
	}
	// A timestamp differing from the one signed is a tampered post too.
	h := signedAt(now, f.key, body)
	h["X-Twilio-Email-Event-Webhook-Timestamp"] = strconv.FormatInt(now.Unix()-1, 10)
	if resp := f.postEvents(t, body, h); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a changed timestamp: status %d, want 401", resp.StatusCode)
	}
	if m, s := f.state(t, person); m != intake.MarketingActive || s != "" {
		t.Fatalf("a refused post changed the person: marketing %q, suppressed %q", m, s)
	}

	// Inside the window (a slow delivery, a fast clock) the post is taken.
	wantCounts(t, f.postEvents(t, body, signedAt(now.Add(-sendgrid.EventMaxAge+time.Minute), f.key, body)), 1, 0)
	if m, s := f.state(t, person); m != intake.MarketingWithdrawn || s != "bounce" {
		t.Fatalf("after a signed bounce: marketing %q, suppressed %q", m, s)
	}
	body2 := batch(event("test.testov@example.com", "spamreport", "ev-sig-2", now, ""))
	wantCounts(t, f.postEvents(t, body2, signedAt(now.Add(sendgrid.EventMaxAhead-time.Minute), f.key, body2)), 1, 0)
}

// TestSendGridRetryWindow: SendGrid retries a failed post for up to 24
// hours and need not sign a retry again, so a post signed a day ago is a
// retry to take, and only a post older than the whole window is refused.
func TestSendGridRetryWindow(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	person := f.subscribe(t, "test.testov@example.com")
	now := f.clock.Now()
	signedAt := func(at time.Time, body string) map[string]string {
		ts := strconv.FormatInt(at.Unix(), 10)
		return map[string]string{"X-Twilio-Email-Event-Webhook-Timestamp": ts,
			"X-Twilio-Email-Event-Webhook-Signature": sign(t, f.key, ts, body)}
	}

	late := batch(event("test.testov@example.com", "unsubscribe", "ev-late", now.Add(-25*time.Hour-time.Minute), ""))
	if resp := f.postEvents(t, late, signedAt(now.Add(-25*time.Hour), late)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a post signed 25 h ago: status %d, want 401", resp.StatusCode)
	}
	if m, _ := f.state(t, person); m != intake.MarketingActive {
		t.Fatalf("a post older than the retry window changed the person (%q)", m)
	}

	retry := batch(event("test.testov@example.com", "unsubscribe", "ev-retry", now.Add(-23*time.Hour-time.Minute), ""))
	wantCounts(t, f.postEvents(t, retry, signedAt(now.Add(-23*time.Hour), retry)), 1, 0)
	if m, _ := f.state(t, person); m != intake.MarketingWithdrawn {
		t.Fatalf("a retry signed 23 h ago was not applied (%q)", m)
	}
}

// TestSendGridEventIDsOutlastTheWindow: a post may be taken until
// EventMaxAge after it was signed, and a retry signed afresh may come up to
// EventRetryWindow after the event, so an event id must be remembered at
// least that long, or a replay inside the window applies it again.
func TestSendGridEventIDsOutlastTheWindow(t *testing.T) {
	t.Parallel()
	if need := sendgrid.EventRetryWindow + sendgrid.EventMaxAge + sendgrid.EventMaxAhead; eventSeenTTL < need {
		t.Fatalf("event ids are remembered %v, want at least %v", eventSeenTTL, need)
	}
}

func TestSendGridWithoutKeyRefusesEverything(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	signer, _ := newSigningKey(t)
	for name, key := range map[string]string{
		"empty":      "",
		"not base64": "not a key!",
		"not a key":  base64.StdEncoding.EncodeToString([]byte("just bytes")),
		"RSA key":    base64.StdEncoding.EncodeToString(rsaDER), // eventwebhook would panic on it
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := hookFixture{httpFixture: setupHTTP(t, func(o *Options) { o.SendGridKey = key }), key: signer}
			person := f.subscribe(t, "test.testov@example.com")
			resp := f.postEvents(t, batch(event("test.testov@example.com", "unsubscribe", "ev-nokey", f.clock.Now(), "")), nil)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", resp.StatusCode)
			}
			if m, _ := f.state(t, person); m != intake.MarketingActive {
				t.Fatalf("an unverifiable post changed consent to %q", m)
			}
		})
	}
}

func TestSendGridBounce(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	person := f.subscribe(t, "test.testov@example.com")
	blockedPerson := f.subscribe(t, "test.blocked@example.com")
	stranger, _ := f.store.People.PersonOf("Test.Stranger@Example.com")
	at := f.clock.Now().Add(-time.Minute)
	resp := f.postEvents(t, batch(
		event("Test.Testov@Example.com", "bounce", "ev-1", at, `"type":"bounce","reason":"550 5.1.1 unknown user","asm_group_id":7`),
		event("test.blocked@example.com", "bounce", "ev-2", at, `"type":"blocked","reason":"421 try later"`),
		event("test.stranger@example.com", "bounce", "ev-3", at, `"type":"bounce"`),
	), nil)
	wantCounts(t, resp, 2, 1)
	if m, s := f.state(t, person); m != intake.MarketingWithdrawn || s != "bounce" {
		t.Fatalf("bounced person: marketing %q, suppressed %q; want withdrawn, bounce", m, s)
	}
	if m, s := f.state(t, blockedPerson); m != intake.MarketingActive || s != "" {
		t.Fatalf("a blocked (temporary) bounce changed the person: marketing %q, suppressed %q", m, s)
	}
	if _, s := f.state(t, stranger); s != "bounce" {
		t.Fatalf("an address we do not hold is suppressed as %q, want bounce", s)
	}
	// The withdrawal is in the history with the event's own time.
	events, _ := f.rdb.LRange(context.Background(), keyPersonPfx+person+keyConsents, 0, -1).Result()
	plain, err := testKeys(t).Open(strings.TrimPrefix(events[len(events)-1], "- "), person)
	if err != nil || !strings.Contains(string(plain), `"source":"sendgrid:bounce"`) ||
		!strings.Contains(string(plain), at.UTC().Format(time.RFC3339)) {
		t.Fatalf("last consent event = %s, %v", plain, err)
	}
}

func TestSendGridDroppedAndSpamReport(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	spam := f.subscribe(t, "test.testov@example.com")
	dropped := f.subscribe(t, "test.dropped@example.com")
	resp := f.postEvents(t, batch(
		event("test.testov@example.com", "spamreport", "ev-spam", f.clock.Now(), ""),
		event("test.dropped@example.com", "dropped", "ev-drop", f.clock.Now(), `"reason":"Bounced Address"`),
	), nil)
	wantCounts(t, resp, 2, 0)
	if m, s := f.state(t, spam); m != intake.MarketingWithdrawn || s != "spamreport" {
		t.Fatalf("spam report: marketing %q, suppressed %q", m, s)
	}
	if m, s := f.state(t, dropped); m != intake.MarketingWithdrawn || s != "dropped" {
		t.Fatalf("dropped: marketing %q, suppressed %q", m, s)
	}
}

func TestSendGridUnsubscribe(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	ctx := context.Background()
	for _, name := range []string{"unsubscribe", "group_unsubscribe"} {
		t.Run(name, func(t *testing.T) {
			email := "test." + name + "@example.com"
			person := f.subscribe(t, email)
			at := f.clock.Now().Add(-2 * time.Minute)
			resp := f.postEvents(t, batch(event(email, name, "ev-"+name, at,
				`"asm_group_id":42,"ip":"198.51.100.7","useragent":"test-agent/1.0"`)), nil)
			wantCounts(t, resp, 1, 0)
			if m, s := f.state(t, person); m != intake.MarketingWithdrawn || s != "" {
				t.Fatalf("marketing %q, suppressed %q; want withdrawn, not suppressed", m, s)
			}
			if n, _ := f.rdb.ZScore(ctx, keyMarketing, person).Result(); n != 0 {
				t.Fatal("still on the marketing list")
			}
			events, _ := f.rdb.LRange(ctx, keyPersonPfx+person+keyConsents, 0, -1).Result()
			if len(events) < 2 {
				t.Fatalf("consent history has %d entries, want the opt-in and the withdrawal", len(events))
			}
			plain, err := testKeys(t).Open(strings.TrimPrefix(events[len(events)-1], "- "), person)
			for _, want := range []string{`"kind":"marketing_withdrawn"`, `"source":"sendgrid:` + name + `"`,
				`"ip":"198.51.100.7"`, `"user_agent":"test-agent/1.0"`, at.UTC().Format(time.RFC3339)} {
				if err != nil || !strings.Contains(string(plain), want) {
					t.Fatalf("withdrawal event = %s, %v; want %s in it", plain, err, want)
				}
			}
		})
	}
}

func TestSendGridIgnoredEvents(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	ctx := context.Background()
	person := f.subscribe(t, "test.testov@example.com")
	withdrawn := f.subscribe(t, "test.withdrawn@example.com")
	if _, err := f.store.People.Withdraw(ctx, withdrawn, intake.Proof{At: f.clock.Now(), Source: "unsubscribe_link"}); err != nil {
		t.Fatal(err)
	}
	var evs []string
	for i, name := range []string{"processed", "delivered", "open", "click", "deferred", "made_up_event"} {
		evs = append(evs, event("test.testov@example.com", name, fmt.Sprint("ev-", i), f.clock.Now(), ""))
	}
	evs = append(evs,
		event("test.withdrawn@example.com", "group_resubscribe", "ev-resub", f.clock.Now(), ""),
		event("not an address", "bounce", "ev-bad", f.clock.Now(), ""),
		`{"event":"spamreport","timestamp":1}`, // no email at all
	)
	wantCounts(t, f.postEvents(t, batch(evs...), nil), 0, len(evs))
	if m, s := f.state(t, person); m != intake.MarketingActive || s != "" {
		t.Fatalf("ignored events changed the person: marketing %q, suppressed %q", m, s)
	}
	if m, _ := f.state(t, withdrawn); m != intake.MarketingWithdrawn {
		t.Fatalf("a resubscribe event restored consent (%q): that needs a fresh double opt-in", m)
	}
	if keys, _ := f.rdb.Keys(ctx, keyEventSeenPfx+"*").Result(); len(keys) != 0 {
		t.Fatalf("ignored events were remembered: %d keys", len(keys))
	}
}

func TestSendGridEventOnce(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	ctx := context.Background()
	person := f.subscribe(t, "test.testov@example.com")
	unsub := event("test.testov@example.com", "unsubscribe", "ev-once", f.clock.Now(), "")
	// The same event twice in one batch: applied once.
	wantCounts(t, f.postEvents(t, batch(unsub, unsub), nil), 1, 1)
	history := func() int64 {
		n, err := f.rdb.LLen(ctx, keyPersonPfx+person+keyConsents).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := history()
	// The person opts in afresh; SendGrid then redelivers the old batch.
	f.rdb.HSet(ctx, keyPersonPfx+person, "marketing", intake.MarketingPending)
	if ok, err := f.store.People.ConfirmMarketing(ctx, person, intake.Proof{At: f.clock.Now()}); !ok || err != nil {
		t.Fatalf("ConfirmMarketing = %v, %v", ok, err)
	}
	wantCounts(t, f.postEvents(t, batch(unsub), nil), 0, 1)
	if m, _ := f.state(t, person); m != intake.MarketingActive {
		t.Fatalf("a redelivered unsubscribe withdrew the fresh consent (%q)", m)
	}
	if got := history(); got != before+1 { // only the confirmation
		t.Fatalf("consent history grew by %d, want 1", got-before)
	}
	keys, _ := f.rdb.Keys(ctx, keyEventSeenPfx+"*").Result()
	if len(keys) != 1 || strings.Contains(keys[0], "ev-once") {
		t.Fatalf("remembered keys %v, want one keyed hash", keys)
	}
	if ttl, _ := f.rdb.TTL(ctx, keys[0]).Result(); ttl <= eventSeenTTL-time.Minute || ttl > eventSeenTTL {
		t.Fatalf("TTL %v, want %v", ttl, eventSeenTTL)
	}
	// Without an sg_event_id an event is applied every time.
	noID := `[{"email":"test.testov@example.com","event":"unsubscribe","timestamp":` + strconv.FormatInt(f.clock.Now().Unix(), 10) + `}]`
	wantCounts(t, f.postEvents(t, noID, nil), 1, 0)
	if m, _ := f.state(t, person); m != intake.MarketingWithdrawn {
		t.Fatalf("an event without an id was not applied (%q)", m)
	}
}

func TestSendGridBadBodies(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	for name, body := range map[string]string{
		"truncated":  `[{"event":"bounce","email":`,
		"object":     `{"event":"bounce"}`,
		"wrong type": `[{"event":"bounce","email":5}]`,
		"not JSON":   `event=bounce`,
	} {
		t.Run(name, func(t *testing.T) {
			resp := f.postEvents(t, body, nil)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if got := decode(t, resp); got["error"] != "bad_request" {
				t.Fatalf("answer %v", got)
			}
		})
	}
	big := "[" + strings.Repeat(" ", maxEventBody) + "]"
	if resp := f.postEvents(t, big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over 4 MiB: status %d, want 413", resp.StatusCode)
	}
	wantCounts(t, f.postEvents(t, "[]", nil), 0, 0)
}

func TestSendGridRedisDown(t *testing.T) {
	t.Parallel()
	f := setupHook(t)
	f.srv.Stop()
	resp := f.postEvents(t, batch(event("test.testov@example.com", "bounce", "ev-down", f.clock.Now(), "")), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 so SendGrid redelivers", resp.StatusCode)
	}
	// Events that change nothing need no Redis.
	wantCounts(t, f.postEvents(t, batch(event("test.testov@example.com", "delivered", "ev-d", f.clock.Now(), "")), nil), 0, 1)
}

func TestSendGridEventLabels(t *testing.T) {
	t.Parallel()
	// Which names are labels is sendgrid.EventLabel's (tested there); the
	// handler counts by it.
	const series = `leadgate_sendgrid_events_total{event="spamreport",outcome="processed"} `
	before := scrape(t, series)
	f := setupHook(t)
	wantCounts(t, f.postEvents(t, batch(event("test.testov@example.com", "spamreport", "ev-m", f.clock.Now(), "")), nil), 1, 0)
	if got := scrape(t, series); got < before+1 {
		t.Fatalf("counter %v, want at least %v", got, before+1)
	}
}

// scrape reads one series from /metrics as Prometheus would (0 when absent).
func scrape(t *testing.T, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("series %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}
