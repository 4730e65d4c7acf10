package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

// fakeKey returns a fake 32-byte key filled with b, so each test names the
// keys it holds by one letter.
func fakeKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustKeys(t *testing.T, data []byte, old [][]byte, index []byte) *Keys {
	t.Helper()
	k, err := NewKeys(data, old, index)
	if err != nil {
		t.Fatalf("NewKeys: %v", err)
	}
	return k
}

func TestKeysSealOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		plaintext []byte
		context   string
	}{
		{name: "phone", plaintext: []byte("+77010000000"), context: "lead:0190c6a0-0000-7000-8000-000000000001"},
		{name: "Kazakh name", plaintext: []byte("Әлия Testova"), context: "lead:1"},
		{name: "empty value", plaintext: []byte{}, context: "lead:1"},
		{name: "empty context", plaintext: []byte("test@example.com"), context: ""},
		{name: "large record", plaintext: bytes.Repeat([]byte("Қ"), 64<<10), context: "lead:1"},
	}
	k := mustKeys(t, fakeKey('a'), nil, fakeKey('i'))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sealed := k.Seal(tt.plaintext, tt.context)
			if len(tt.plaintext) > 4 && bytes.Contains(sealed, tt.plaintext) {
				t.Fatalf("sealed value holds the plaintext")
			}
			got, err := k.Open(string(sealed), tt.context)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
			if _, err := k.Open(string(sealed), tt.context+"x"); err == nil {
				t.Errorf("Open with another context succeeded")
			}
		})
	}
}

// TestKeysOpenFails covers values that must not open, each with the words
// an operator needs to see in the error.
func TestKeysOpenFails(t *testing.T) {
	t.Parallel()
	plaintext := []byte("test@example.com")
	current := mustKeys(t, fakeKey('a'), nil, fakeKey('i'))
	sealed := string(current.Seal(plaintext, "lead:1"))
	tests := []struct {
		name    string
		keys    *Keys
		sealed  string
		context string
		wantMsg string
	}{
		{name: "another record's context", keys: current, sealed: sealed, context: "lead:2",
			wantMsg: "open sealed value"},
		{name: "sealed with a key that is not configured", keys: mustKeys(t, fakeKey('b'), nil, fakeKey('i')),
			sealed: sealed, context: "lead:1", wantMsg: "unknown data key (is LEADGATE_OLD_DATA_KEYS missing one?)"},
		{name: "the old key was dropped after rotation", keys: mustKeys(t, fakeKey('b'), [][]byte{fakeKey('c')}, fakeKey('i')),
			sealed: sealed, context: "lead:1", wantMsg: "unknown data key"},
		{name: "empty", keys: current, sealed: "", context: "lead:1", wantMsg: "too short"},
		{name: "key id and nonce only", keys: current, sealed: sealed[:16], context: "lead:1", wantMsg: "too short"},
		{name: "tag cut short", keys: current, sealed: sealed[:len(sealed)-1], context: "lead:1", wantMsg: "open sealed value"},
		{name: "a byte appended", keys: current, sealed: sealed + "\x00", context: "lead:1", wantMsg: "open sealed value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.keys.Open(tt.sealed, tt.context)
			if err == nil {
				t.Fatalf("Open succeeded with %q", got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open error %q, want it to say %q", err, tt.wantMsg)
			}
			if got != nil {
				t.Errorf("Open returned %q with its error", got)
			}
		})
	}
}

// TestKeysTamper flips one bit in each byte of a sealed value in turn:
// the key id, the nonce, the ciphertext and the tag are all protected.
func TestKeysTamper(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, fakeKey('a'), nil, fakeKey('i'))
	sealed := k.Seal([]byte("+77010000000"), "lead:1")
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if got, err := k.Open(string(tampered), "lead:1"); err == nil {
			t.Errorf("byte %d of %d flipped: Open succeeded with %q", i, len(sealed), got)
		}
	}
}

func TestKeysRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey, idx := fakeKey('o'), fakeKey('n'), fakeKey('i')
	before := mustKeys(t, oldKey, nil, idx)
	after := mustKeys(t, newKey, [][]byte{oldKey}, idx)

	sealedBefore := string(before.Seal([]byte("Test Testov"), "lead:1"))
	got, err := after.Open(sealedBefore, "lead:1")
	if err != nil {
		t.Fatalf("a value sealed before rotation does not open after it: %v", err)
	}
	if string(got) != "Test Testov" {
		t.Errorf("Open = %q, want %q", got, "Test Testov")
	}

	// New values use the new key: the deployment that still runs with only
	// the old key cannot open them.
	sealedAfter := string(after.Seal([]byte("Test Testov"), "lead:2"))
	if _, err := before.Open(sealedAfter, "lead:2"); err == nil {
		t.Errorf("a value sealed after rotation opened with the old key alone")
	}
	if _, err := after.Open(sealedAfter, "lead:2"); err != nil {
		t.Errorf("a value sealed after rotation does not open: %v", err)
	}

	// Listing the current key among the old ones too changes nothing.
	dup := mustKeys(t, newKey, [][]byte{newKey, oldKey}, idx)
	if _, err := dup.Open(sealedBefore, "lead:1"); err != nil {
		t.Errorf("with the current key repeated among the old: %v", err)
	}
	if _, err := dup.Open(sealedAfter, "lead:2"); err != nil {
		t.Errorf("with the current key repeated among the old: %v", err)
	}
}

func TestKeysSealIsRandomised(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, fakeKey('a'), nil, fakeKey('i'))
	a := k.Seal([]byte("+77010000000"), "lead:1")
	b := k.Seal([]byte("+77010000000"), "lead:1")
	if bytes.Equal(a, b) {
		t.Fatalf("two Seals of one value are equal: the nonce is not random")
	}
	// Same key id, different nonce.
	if !bytes.Equal(a[:4], b[:4]) {
		t.Errorf("key ids differ: %x, %x", a[:4], b[:4])
	}
	if bytes.Equal(a[4:16], b[4:16]) {
		t.Errorf("nonces are equal: %x", a[4:16])
	}
}

func TestKeysIndex(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, fakeKey('a'), nil, fakeKey('i'))
	base := k.Index("email", "test@example.com")
	if len(base) != 40 {
		t.Errorf("Index length %d, want 40 hex digits", len(base))
	}
	if _, err := hex.DecodeString(base); err != nil {
		t.Errorf("Index %q is not hex: %v", base, err)
	}
	if strings.Contains(base, "test") {
		t.Errorf("Index %q holds the value", base)
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "deterministic", same: true,
			a: k.Index("email", "test@example.com"), b: k.Index("email", "test@example.com")},
		{name: "another Keys with the same index key", same: true,
			a: base, b: mustKeys(t, fakeKey('a'), nil, fakeKey('i')).Index("email", "test@example.com")},
		{name: "rotating the data key keeps lookups working", same: true,
			a: base, b: mustKeys(t, fakeKey('b'), [][]byte{fakeKey('a')}, fakeKey('i')).Index("email", "test@example.com")},
		{name: "another kind",
			a: k.Index("email", "77010000000"), b: k.Index("phone", "77010000000")},
		{name: "another index key",
			a: base, b: mustKeys(t, fakeKey('a'), nil, fakeKey('j')).Index("email", "test@example.com")},
		{name: "another value",
			a: base, b: k.Index("email", "test2@example.com")},
		{name: "part boundaries",
			a: k.Index("k", "ab", "c"), b: k.Index("k", "a", "bc")},
		{name: "an empty part counts",
			a: k.Index("k", "a"), b: k.Index("k", "a", "")},
		{name: "kind and part boundary",
			a: k.Index("ka", "b"), b: k.Index("k", "ab")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if (tt.a == tt.b) != tt.same {
				t.Errorf("Index %q and %q: same = %v, want %v", tt.a, tt.b, tt.a == tt.b, tt.same)
			}
		})
	}
}

func TestNewKeysRejectsWrongSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		data  []byte
		old   [][]byte
		index []byte
	}{
		{name: "data key missing", data: nil, index: fakeKey('i')},
		{name: "AES-128 data key", data: make([]byte, 16), index: fakeKey('i')},
		{name: "data key one byte short", data: make([]byte, 31), index: fakeKey('i')},
		{name: "data key one byte long", data: make([]byte, 33), index: fakeKey('i')},
		{name: "old key of 16 bytes", data: fakeKey('a'), old: [][]byte{make([]byte, 16)}, index: fakeKey('i')},
		{name: "second old key empty", data: fakeKey('a'), old: [][]byte{fakeKey('o'), {}}, index: fakeKey('i')},
		{name: "index key missing", data: fakeKey('a'), index: nil},
		{name: "index key of 16 bytes", data: fakeKey('a'), index: make([]byte, 16)},
		{name: "index key of 64 bytes", data: fakeKey('a'), index: make([]byte, 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := NewKeys(tt.data, tt.old, tt.index)
			if err == nil {
				t.Fatalf("NewKeys accepted the keys")
			}
			if k != nil {
				t.Errorf("NewKeys returned Keys with its error")
			}
			if !strings.Contains(err.Error(), "32 bytes") {
				t.Errorf("error %q does not say the size wanted", err)
			}
		})
	}
}

func TestKeysIndexPartsAreUnambiguous(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, fakeKey(1), nil, fakeKey(2))
	if k.Index("k", "a\x00b") == k.Index("k", "a", "b") {
		t.Fatal("a NUL inside a part hashes like a part boundary")
	}
}

// TestKeysIndexConstruction pins Index to its construction, HMAC-SHA256 of
// the kind and each part behind its 32-bit big-endian length, cut to 20
// bytes: stored lookups (by email, phone, tax id …) depend on every index
// staying what it was, whatever Index does to be cheap. The long part runs
// past the scratch buffer the pool keeps.
func TestKeysIndexConstruction(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, fakeKey('a'), nil, fakeKey('i'))
	want := func(kind string, parts ...string) string {
		m := hmac.New(sha256.New, fakeKey('i'))
		m.Write([]byte(kind))
		for _, p := range parts {
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(p)))
			m.Write(n[:])
			m.Write([]byte(p))
		}
		return hex.EncodeToString(m.Sum(nil)[:20])
	}
	vectors := [][]string{
		{"email", "test@example.com"},
		{"phone", "+77010000000"},
		{"dedupe", "test@example.com", "+77010000000", "legal_entity"},
		{"k", ""},
		{"k"},
		{"", ""},
		{"idempotency", strings.Repeat("x", 5000)},
		{"email", "test@example.com"}, // again, after the long one
	}
	for _, v := range vectors {
		if got, w := k.Index(v[0], v[1:]...), want(v[0], v[1:]...); got != w {
			t.Errorf("Index(%q, %d parts) = %s, want %s", v[0], len(v)-1, got, w)
		}
	}
}
