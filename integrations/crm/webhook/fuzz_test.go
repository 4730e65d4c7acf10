package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzVerify: whatever headers and body arrive, Verify never panics, fails
// only with one of its documented errors, and accepts a message only when
// it carries a v1 signature made with the key — so a fuzzed message is
// accepted exactly when it was signed, and any change to a signed message
// is refused.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1614265330, 0)
	key, err := decodeSecret(specSecret)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ id, ts, sigs, body string }{
		{"msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", `{"test": 2432232314}`},
		{"msg_1", "1614265330", "v2,abc v1,!!!", "{}"},
		{"", "", "", ""},
		{"x", "-9223372036854775808", "v1,", "\x00"},
		{"x", "99999999999999999999", "v1 v1,,", "[]"},
	} {
		f.Add(seed.id, seed.ts, seed.sigs, seed.body)
	}
	f.Fuzz(func(t *testing.T, id, ts, sigs, body string) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sigs)
		err := Verify(specSecret, h, []byte(body), time.Minute, now)
		if err != nil && !errors.Is(err, ErrMissingHeader) && !errors.Is(err, ErrTimestamp) && !errors.Is(err, ErrSignature) {
			t.Fatalf("Verify = %v: not one of the documented errors", err)
		}
		if err == nil {
			// Accepted: the timestamp is within the tolerance.
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if d := now.Sub(time.Unix(sec, 0)); perr != nil || d > time.Minute || d < -time.Minute {
				t.Fatalf("accepted timestamp %q outside the tolerance", ts)
			}
		}
		// The same message signed properly is accepted, and a changed body is not.
		if id == "" || ts == "" {
			return
		}
		good := http.Header{}
		good.Set("webhook-id", id)
		good.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		good.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(sign(key, id, good.Get("webhook-timestamp"), []byte(body))))
		if err := Verify(specSecret, good, []byte(body), time.Minute, now); err != nil {
			t.Fatalf("a properly signed message was refused: %v", err)
		}
		if err := Verify(specSecret, good, []byte(body+"x"), time.Minute, now); !errors.Is(err, ErrSignature) {
			t.Fatalf("a changed body = %v, want ErrSignature", err)
		}
	})
}
