package seal

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func fuzzKeys(t testing.TB) *Keys {
	k, err := NewKeys([]byte(strings.Repeat("d", 32)), nil, []byte(strings.Repeat("i", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzOptinPerson: a token from a link never panics the parser, and it
// names a person only when it is exactly the token the key makes for that
// person and expiry — anything else a stranger types is refused.
func FuzzOptinPerson(f *testing.F) {
	k := fuzzKeys(f)
	now := time.Unix(1_800_000_000, 0)
	person := k.Index("email", "test.testov@example.com")
	for _, seed := range []string{
		k.OptinToken(person, now.Add(time.Hour)), k.OptinToken(person, now.Add(-time.Hour)),
		"", ".", "..", "a.b.c", person + ".1.", person + ".-1.x", person + "." + strings.Repeat("9", 30) + ".x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, valid := k.OptinPerson(token, now)
		if got == "" {
			if valid {
				t.Fatalf("token %q valid without a person", token)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 || parts[0] != got {
			t.Fatalf("token %q named %q", token, got)
		}
		sec, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			t.Fatalf("token %q accepted with expiry %q", token, parts[1])
		}
		if want := k.OptinToken(got, time.Unix(sec, 0)); want != token {
			t.Fatalf("token %q accepted but the key makes %q for that person and expiry", token, want)
		}
		if valid != (now.Unix() <= sec) {
			t.Fatalf("token %q: valid = %v at %d, expiry %d", token, valid, now.Unix(), sec)
		}
	})
}

// FuzzUnsubscribePerson: an unsubscribe token never panics the parser and
// names a person only when it is exactly the key's token for that person.
func FuzzUnsubscribePerson(f *testing.F) {
	k := fuzzKeys(f)
	person := k.Index("email", "test.testov@example.com")
	for _, seed := range []string{k.UnsubscribeToken(person), "", ".", "x.", "." + person, person, person + "." + person} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, ok := k.UnsubscribePerson(token)
		if !ok {
			if got != "" {
				t.Fatalf("refused token %q still named %q", token, got)
			}
			return
		}
		if got == "" || k.UnsubscribeToken(got) != token {
			t.Fatalf("token %q accepted for %q, but the key makes %q", token, got, k.UnsubscribeToken(got))
		}
	})
}
