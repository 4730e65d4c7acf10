package intake

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzContactBinary: every contact comes back from its binary form as it
// was, and no input, however damaged, makes the decoder panic or accept
// trailing bytes.
func FuzzContactBinary(f *testing.F) {
	f.Add("test@example.com", "Test Testov")
	f.Add("тест@пример.kz", "")
	f.Add("", "Тест Тестов\x00")
	f.Fuzz(func(t *testing.T, email, name string) {
		want := Contact{Email: email, Name: name}
		b, _ := want.MarshalBinary()
		var got Contact
		if err := got.UnmarshalBinary(b); err != nil || got != want {
			t.Fatalf("round trip of %+v: %+v, %v", want, got, err)
		}
		if err := got.UnmarshalBinary(append(b, 0)); err == nil {
			t.Fatal("a trailing byte was accepted")
		}
		for n := range len(b) {
			_ = got.UnmarshalBinary(b[:n]) // truncated: an error, never a panic
		}
	})
}

// TestContactFromJSON: contacts sealed before the binary form are JSON,
// and decode the same; anything else is refused.
func TestContactFromJSON(t *testing.T) {
	t.Parallel()
	want := Contact{Email: "test@example.com", Name: "Test Testov"}
	old, _ := json.Marshal(want)
	got := Contact{Name: "left over"}
	if err := got.UnmarshalBinary(old); err != nil || got != want {
		t.Errorf("JSON %s: %+v, %v", old, got, err)
	}
	if err := got.UnmarshalBinary([]byte(`{"email":"test@example.com"}`)); err != nil || got != (Contact{Email: "test@example.com"}) {
		t.Errorf("JSON without a name: %+v, %v", got, err)
	}
	b, _ := want.MarshalBinary()
	if bytes.Equal(b, old) || len(b) >= len(old) {
		t.Errorf("binary form %q is not the shorter one", b)
	}
	for _, bad := range [][]byte{nil, {}, {2, 0, 0}, []byte("[]")} {
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
