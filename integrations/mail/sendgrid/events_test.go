package sendgrid_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations/mail/sendgrid"
)

// The Event Webhook's signed posts carry two headers: the timestamp (Unix
// seconds, as a string) and the signature, base64 of an ASN.1 DER ECDSA
// signature over SHA-256 of timestamp + raw body, made with the key whose
// public half the account shows as base64 DER SubjectPublicKeyInfo.
const (
	headerTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
	headerSignature = "X-Twilio-Email-Event-Webhook-Signature"
)

// testEmail is the personal data in the test bodies: no error may quote it.
const testEmail = "test.testov@example.com"

// newSigningKey returns a P-256 key and its public half as SendGrid shows it.
func newSigningKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key, publicB64(t, &key.PublicKey)
}

// publicB64 is pub as base64 DER SubjectPublicKeyInfo.
func publicB64(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// sign signs as SendGrid does (eventwebhook.VerifySignature is the
// reference): ECDSA over SHA-256 of timestamp + raw body, ASN.1 DER, base64.
func sign(t testing.TB, key *ecdsa.PrivateKey, ts, body string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestParseEventKey(t *testing.T) {
	t.Parallel()
	signer, pub := newSigningKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		noKey   bool   // ErrNoEventKey
		want    string // the whole error text, or its start when prefix
		prefix  bool
		wantKey bool
	}{
		{name: "P-256 key", in: pub, wantKey: true},
		{name: "pasted with a newline", in: "  " + pub + "\n", wantKey: true},
		{name: "empty", in: "", noKey: true, want: "SENDGRID_WEBHOOK_PUBLIC_KEY is not set"},
		{name: "only space", in: " \t\n", noKey: true, want: "SENDGRID_WEBHOOK_PUBLIC_KEY is not set"},
		{name: "not base64", in: "not a key!", want: "SENDGRID_WEBHOOK_PUBLIC_KEY is not base64: ", prefix: true},
		{name: "URL-safe base64", in: strings.NewReplacer("+", "-", "/", "_").Replace(pub) + "-_",
			want: "SENDGRID_WEBHOOK_PUBLIC_KEY is not base64: ", prefix: true},
		{name: "not a key", in: base64.StdEncoding.EncodeToString([]byte("just bytes")),
			want: "SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key: ", prefix: true},
		{name: "private key", in: base64.StdEncoding.EncodeToString(mustPKCS8(t, signer)),
			want: "SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key: ", prefix: true},
		// eventwebhook.ConvertPublicKeyBase64ToECDSA panics on these.
		{name: "RSA key", in: publicB64(t, &rsaKey.PublicKey),
			want: "SENDGRID_WEBHOOK_PUBLIC_KEY is a *rsa.PublicKey, not an ECDSA key"},
		{name: "Ed25519 key", in: publicB64(t, edPub),
			want: "SENDGRID_WEBHOOK_PUBLIC_KEY is a ed25519.PublicKey, not an ECDSA key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := sendgrid.ParseEventKey(tt.in)
			if tt.wantKey {
				if err != nil || !key.Equal(&signer.PublicKey) {
					t.Fatalf("ParseEventKey = %v, %v; want the signer's public key", key, err)
				}
				return
			}
			if key != nil || err == nil {
				t.Fatalf("ParseEventKey = %v, %v; want an error", key, err)
			}
			if errors.Is(err, sendgrid.ErrNoEventKey) != tt.noKey {
				t.Errorf("errors.Is(%v, ErrNoEventKey) = %v, want %v", err, !tt.noKey, tt.noKey)
			}
			if got := err.Error(); got != tt.want && !(tt.prefix && strings.HasPrefix(got, tt.want)) {
				t.Errorf("error %q, want %q", got, tt.want)
			}
			if s := strings.TrimSpace(tt.in); s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

func mustPKCS8(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerifyEvents(t *testing.T) {
	t.Parallel()
	key, pub := newSigningKey(t)
	other, _ := newSigningKey(t)
	trusted, err := sendgrid.ParseEventKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)
	body := `[{"email":"` + testEmail + `","timestamp":1744709400,"event":"bounce","sg_event_id":"ev-1","type":"bounce"}]`
	unix := func(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }
	// signed is a post signed with k at ts over signedBody.
	signed := func(k *ecdsa.PrivateKey, ts, signedBody string) http.Header {
		h := http.Header{}
		h.Set(headerTimestamp, ts)
		h.Set(headerSignature, sign(t, k, ts, signedBody))
		return h
	}
	at := func(when time.Time) http.Header { return signed(key, unix(when), body) }
	with := func(h http.Header, name, value string) http.Header {
		h = h.Clone()
		if value == "" {
			h.Del(name)
		} else {
			h.Set(name, value)
		}
		return h
	}
	const (
		missing   = "signature or timestamp header missing"
		notUnix   = "timestamp is not Unix seconds"
		outside   = "timestamp outside the replay window"
		forged    = "signature does not verify"
		notSigned = "SENDGRID_WEBHOOK_PUBLIC_KEY is not set"
	)
	tests := []struct {
		name   string
		header http.Header
		body   string // the body posted; "" means body
		noKey  bool   // verify with a nil key
		want   string // "" means verified
	}{
		{name: "signed now", header: at(now)},
		{name: "a slow delivery", header: at(now.Add(-sendgrid.EventMaxAge + time.Minute))},
		{name: "as old as allowed", header: at(now.Add(-sendgrid.EventMaxAge))},
		// SendGrid retries for up to 24 hours, perhaps under the first
		// attempt's signature: every retry of that window is taken.
		{name: "a retry signed 10 minutes ago", header: at(now.Add(-10*time.Minute - time.Second))},
		{name: "a retry signed 23 hours ago", header: at(now.Add(-23 * time.Hour))},
		{name: "the last retry, signed a day ago", header: at(now.Add(-24 * time.Hour))},
		{name: "the last retry, signed a day and 29 minutes ago", header: at(now.Add(-24*time.Hour - 29*time.Minute))},
		{name: "a fast clock", header: at(now.Add(sendgrid.EventMaxAhead - time.Minute))},
		{name: "as far ahead as allowed", header: at(now.Add(sendgrid.EventMaxAhead))},
		{name: "empty batch", header: signed(key, unix(now), "[]"), body: "[]"},

		{name: "stale", header: at(now.Add(-sendgrid.EventMaxAge - time.Second)), want: outside},
		{name: "signed 25 hours ago", header: at(now.Add(-25 * time.Hour)), want: outside},
		{name: "a week old", header: at(now.Add(-7 * 24 * time.Hour)), want: outside},
		{name: "from the future", header: at(now.Add(sendgrid.EventMaxAhead + time.Second)), want: outside},
		{name: "the largest int64", header: signed(key, "9223372036854775807", body), want: outside},
		{name: "before 1970", header: signed(key, "-1", body), want: outside},

		{name: "no headers", header: http.Header{}, want: missing},
		{name: "no signature", header: with(at(now), headerSignature, ""), want: missing},
		{name: "no timestamp", header: with(at(now), headerTimestamp, ""), want: missing},

		{name: "timestamp as a float", header: signed(key, unix(now)+".0", body), want: notUnix},
		{name: "timestamp as a date", header: signed(key, now.Format(http.TimeFormat), body), want: notUnix},
		{name: "timestamp with a space", header: signed(key, " "+unix(now), body), want: notUnix},
		{name: "timestamp past int64", header: signed(key, "9223372036854775808", body), want: notUnix},

		{name: "tampered body", header: at(now), body: strings.Replace(body, `"bounce"`, `"delivered"`, 1), want: forged},
		{name: "body with a byte added", header: at(now), body: body + "\n", want: forged},
		{name: "tampered timestamp", header: with(at(now), headerTimestamp, unix(now.Add(-time.Second))), want: forged},
		{name: "timestamp written differently", header: with(at(now), headerTimestamp, "0"+unix(now)), want: forged},
		{name: "other key", header: signed(other, unix(now), body), want: forged},
		{name: "signature not base64", header: with(at(now), headerSignature, "%%%"), want: forged},
		{name: "signature not ASN.1", header: with(at(now), headerSignature, base64.StdEncoding.EncodeToString([]byte("not a signature"))), want: forged},
		{name: "another post's signature", header: with(at(now), headerSignature, sign(t, key, unix(now), "[]")), want: forged},

		{name: "no key", header: at(now), noKey: true, want: notSigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := trusted
			if tt.noKey {
				k = nil
			}
			posted := body
			if tt.body != "" {
				posted = tt.body
			}
			err := sendgrid.VerifyEvents(tt.header, []byte(posted), k, now)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("VerifyEvents = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("VerifyEvents = %v, want %q", err, tt.want)
			}
			if errors.Is(err, sendgrid.ErrNoEventKey) != tt.noKey {
				t.Errorf("errors.Is(%v, ErrNoEventKey) = %v, want %v", err, !tt.noKey, tt.noKey)
			}
			if strings.Contains(err.Error(), testEmail) {
				t.Errorf("error %q quotes the body", err)
			}
		})
	}
}

func TestParseEvents(t *testing.T) {
	t.Parallel()
	// A batch as SendGrid posts it, with the members leadgate does not
	// decode (reason quotes the address).
	const batch = `[
	  {"email":"Test.Testov@Example.com","timestamp":1744709400,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>",
	   "event":"bounce","category":["campaign"],"sg_event_id":"ev-1","sg_message_id":"msg.filter0001",
	   "reason":"550 5.1.1 <test.testov@example.com>: unknown user","status":"5.1.1","type":"bounce","bounce_classification":"Invalid Address"},
	  {"email":"test.testov@example.com","timestamp":1744709401.5,"event":"group_unsubscribe","sg_event_id":"ev-2",
	   "asm_group_id":42,"ip":"198.51.100.7","useragent":"test-agent/1.0","ref":"c-1"},
	  {"email":"test.testov@example.com","event":"open"}
	]`
	got, err := sendgrid.ParseEvents([]byte(batch))
	if err != nil {
		t.Fatalf("ParseEvents = %v", err)
	}
	want := []sendgrid.Event{
		{Email: "Test.Testov@Example.com", Timestamp: 1744709400, Event: "bounce", ID: "ev-1", Type: "bounce"},
		{Email: testEmail, Timestamp: 1744709401.5, Event: "group_unsubscribe", ID: "ev-2", IP: "198.51.100.7", UserAgent: "test-agent/1.0"},
		{Email: testEmail, Event: "open"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseEvents =\n%+v\nwant\n%+v", got, want)
	}

	for _, tt := range []struct {
		body string
		n    int
	}{{"[]", 0}, {" [ ] \n", 0}, {"null", 0}, {`[{}]`, 1}} {
		got, err := sendgrid.ParseEvents([]byte(tt.body))
		if err != nil || len(got) != tt.n {
			t.Errorf("ParseEvents(%q) = %+v, %v; want %d events", tt.body, got, err, tt.n)
		}
	}
}

func TestParseEventsMalformed(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"empty":                 ``,
		"truncated":             `[{"event":"bounce","email":"` + testEmail,
		"object":                `{"event":"bounce","email":"` + testEmail + `"}`,
		"email not a string":    `[{"event":"bounce","email":5}]`,
		"timestamp as a string": `[{"event":"bounce","email":"` + testEmail + `","timestamp":"1744709400"}]`,
		"array of strings":      `["` + testEmail + `"]`,
		"not JSON":              `event=bounce&email=` + testEmail,
		"trailing garbage":      `[{"event":"bounce","email":"` + testEmail + `"}]x`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := sendgrid.ParseEvents([]byte(body))
			if err == nil || got != nil {
				t.Fatalf("ParseEvents = %+v, %v; want no events and an error", got, err)
			}
			if want := "malformed JSON: want an array of events"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestEventAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		event, typ string
		want       sendgrid.Action
	}{
		{"bounce", "bounce", sendgrid.ActionSuppress},
		{"bounce", "", sendgrid.ActionSuppress}, // an older payload without a type
		{"bounce", "blocked", sendgrid.ActionNone},
		{"bounce", "something_new", sendgrid.ActionSuppress},
		{"dropped", "", sendgrid.ActionSuppress},
		{"dropped", "blocked", sendgrid.ActionSuppress}, // type qualifies bounces only
		{"spamreport", "", sendgrid.ActionSuppress},
		{"unsubscribe", "", sendgrid.ActionWithdraw},
		{"group_unsubscribe", "", sendgrid.ActionWithdraw},
		{"group_resubscribe", "", sendgrid.ActionNone}, // consent comes back only by a fresh double opt-in
		{"processed", "", sendgrid.ActionNone},
		{"deferred", "", sendgrid.ActionNone},
		{"delivered", "", sendgrid.ActionNone},
		{"open", "", sendgrid.ActionNone},
		{"click", "", sendgrid.ActionNone},
		{"made_up_event", "", sendgrid.ActionNone},
		{"", "", sendgrid.ActionNone},
		{"Bounce", "bounce", sendgrid.ActionNone}, // names are exact
		{"UNSUBSCRIBE", "", sendgrid.ActionNone},
	}
	for _, tt := range tests {
		e := sendgrid.Event{Email: testEmail, Event: tt.event, Type: tt.typ, ID: "ev-1"}
		if got := e.Action(); got != tt.want {
			t.Errorf("Event{Event: %q, Type: %q}.Action() = %d, want %d", tt.event, tt.typ, got, tt.want)
		}
	}
}

func TestEventLabel(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"processed", "dropped", "delivered", "deferred", "bounce", "open", "click",
		"spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe"} {
		if got := sendgrid.EventLabel(name); got != name {
			t.Errorf("EventLabel(%q) = %q, want the name itself", name, got)
		}
	}
	for _, name := range []string{"", "x-anything", "Bounce", "bounce ", testEmail} {
		if got := sendgrid.EventLabel(name); got != "other" {
			t.Errorf("EventLabel(%q) = %q, want other", name, got)
		}
	}
}
