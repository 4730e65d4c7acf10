package sendgrid_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"

	"github.com/paymtech/leadgate/integrations/mail/sendgrid"
)

// FuzzParseEvents: whatever a sender posts, ParseEvents never panics; it
// either fails with its one fixed message (which quotes nothing of the
// body) or returns events whose Action is one of the three.
func FuzzParseEvents(f *testing.F) {
	for _, seed := range []string{
		`[{"email":"test.testov@example.com","timestamp":1764000000,"event":"bounce","type":"bounce","sg_event_id":"ev-1"}]`,
		`[{"email":"a@example.com","event":"unsubscribe"},{"event":"open"}]`,
		`[]`, `{}`, `null`, `[null]`, `[{"timestamp":"x"}]`, `[{"timestamp":1e400}]`, ``, `[`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := sendgrid.ParseEvents(body)
		if err != nil {
			if err.Error() != "malformed JSON: want an array of events" || events != nil {
				t.Fatalf("ParseEvents = %v, %v: want the fixed error alone", events, err)
			}
			return
		}
		for _, e := range events {
			if a := e.Action(); a != sendgrid.ActionNone && a != sendgrid.ActionSuppress && a != sendgrid.ActionWithdraw {
				t.Fatalf("event %q: action %d", e.Event, a)
			}
			if l := sendgrid.EventLabel(e.Event); l != e.Event && l != "other" {
				t.Fatalf("label %q of event %q", l, e.Event)
			}
		}
	})
}

// FuzzVerifyEvents: fuzzed headers and bodies never panic the check, and
// never pass it: only a post signed with the private key does, within the
// replay window.
func FuzzVerifyEvents(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_764_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := `[{"email":"test.testov@example.com","event":"bounce"}]`
	good := sign(f, priv, ts, body)
	f.Add(good, ts, body)
	f.Add(good, ts, body+" ")
	f.Add("", "", "")
	f.Add("MEUCIQ==", "-1", "[]")
	f.Add(good, "99999999999999999999", body)
	f.Fuzz(func(t *testing.T, sig, stamp, payload string) {
		h := http.Header{}
		h.Set(eventwebhook.VerificationHTTPHeader, sig)
		h.Set(eventwebhook.TimestampHTTPHeader, stamp)
		err := sendgrid.VerifyEvents(h, []byte(payload), &priv.PublicKey, now)
		if err == nil && !(sig == good && stamp == ts && payload == body) {
			// Only the one signed post may pass; ECDSA signatures are
			// randomised, so another valid signature cannot be guessed.
			t.Fatalf("a post that was not signed passed: %q %q %q", sig, stamp, payload)
		}
	})
}
