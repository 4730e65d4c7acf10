// Package seal protects personal data at rest: AES-256-GCM sealing bound to a
// record, keyed hashes for lookups that must work without decrypting, and
// the signed tokens of the form, the opt-in link and the unsubscribe link —
// none of which carries a personal value.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Keys protects personal data at rest: AES-256-GCM for the values, and an
// HMAC for the lookups (by email, phone, IP) that must work without
// decrypting anything.
type Keys struct {
	current cipher.AEAD
	id      [4]byte
	byID    map[[4]byte]cipher.AEAD
	index   []byte
	macs    sync.Pool // of *indexScratch
}

// NewKeys takes the current data key, older data keys that must still
// decrypt (rotation), and the index key. All keys are 32 bytes.
func NewKeys(data []byte, old [][]byte, index []byte) (*Keys, error) {
	if len(index) != 32 {
		return nil, errors.New("index key must be 32 bytes")
	}
	k := &Keys{byID: map[[4]byte]cipher.AEAD{}, index: index}
	for i, key := range append([][]byte{data}, old...) {
		if len(key) != 32 {
			return nil, errors.New("data keys must be 32 bytes")
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := keyID(key)
		if i == 0 {
			k.current, k.id = aead, id
		}
		if _, dup := k.byID[id]; !dup {
			k.byID[id] = aead
		}
	}
	return k, nil
}

// keyID names a key in the ciphertext without revealing it, so rotation can
// find the key that sealed a value.
func keyID(key []byte) [4]byte {
	sum := sha256.Sum256(append([]byte("leadgate key id\x00"), key...))
	return [4]byte(sum[:4])
}

// Seal encrypts plaintext bound to context (a record id, say): a sealed value
// moved to another record does not open there. The key id, the nonce and
// the ciphertext go in one allocation (a campaign seals nothing, but intake
// seals three values a lead).
func (k *Keys) Seal(plaintext []byte, context string) []byte {
	head := len(k.id) + k.current.NonceSize()
	out := make([]byte, head, head+len(plaintext)+k.current.Overhead())
	copy(out, k.id[:])
	nonce := out[len(k.id):head]
	rand.Read(nonce)
	return k.current.Seal(out, nonce, plaintext, []byte(context))
}

// Open decrypts a value sealed by Seal with any known key. It takes the
// value as Redis answers it, a string, and opens one copy of it in place:
// a campaign opens a contact a recipient.
func (k *Keys) Open(sealed string, context string) ([]byte, error) {
	if len(sealed) < 4+12+16 {
		return nil, errors.New("sealed value too short")
	}
	aead, ok := k.byID[[4]byte([]byte(sealed[:4]))]
	if !ok {
		return nil, errors.New("sealed with an unknown data key (is LEADGATE_OLD_DATA_KEYS missing one?)")
	}
	buf := []byte(sealed)
	head := 4 + aead.NonceSize()
	ciphertext := buf[head:]
	plain, err := aead.Open(ciphertext[:0], buf[4:head], ciphertext, []byte(context))
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	return plain, nil
}

// Index returns the keyed hash of a value of a kind ("email", "phone", …):
// stable for as long as the index key, and useless without it.
func (k *Keys) Index(kind string, parts ...string) string {
	// Intake computes about ten of these per lead and a campaign one per
	// recipient: the hash state, the message and the digest live in one
	// pooled scratch, so an index costs one allocation (its string).
	x, _ := k.macs.Get().(*indexScratch)
	if x == nil {
		x = &indexScratch{mac: hmac.New(sha256.New, k.index)}
	}
	defer k.putScratch(x)
	msg := append(x.msg[:0], kind...)
	for _, p := range parts { // length-prefixed: no two part lists hash alike
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(p)))
		msg = append(msg, p...)
	}
	x.msg = msg
	x.mac.Reset()
	x.mac.Write(msg)
	hex.Encode(x.hex[:], x.mac.Sum(x.sum[:0])[:20])
	return string(x.hex[:])
}

// indexScratch is Index's reusable state: a keyed HMAC-SHA256 and buffers.
type indexScratch struct {
	mac hash.Hash
	msg []byte
	sum [sha256.Size]byte
	hex [40]byte
}

// putScratch returns x to the pool unless an unusually long value grew its
// buffer: the pool should not pin that memory. The message is an address
// or a phone in clear: it is wiped, not left in the pool.
func (k *Keys) putScratch(x *indexScratch) {
	clear(x.msg)
	if cap(x.msg) <= 4096 {
		k.macs.Put(x)
	}
}

// formTokenMaxAge is how old a form page may be when posted; older tokens
// count as invalid (a replayed page, or a bot reusing one token).
const formTokenMaxAge = 24 * time.Hour

// FormToken stamps a form page with its render time, signed so a bot cannot
// make its own: "<unix ms>.<mac>".
func (k *Keys) FormToken(now time.Time) string {
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	return ms + "." + k.Index("form-token", ms)
}

// FormTokenAge returns how long ago a token's page was rendered, or invalid
// when it is forged, from the future or older than formTokenMaxAge.
func (k *Keys) FormTokenAge(token string, now time.Time) (age time.Duration, invalid bool) {
	ms, mac, _ := strings.Cut(token, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || !hmac.Equal([]byte(mac), []byte(k.Index("form-token", ms))) {
		return 0, true
	}
	age = now.Sub(time.UnixMilli(n))
	if age < 0 || age > formTokenMaxAge {
		return 0, true
	}
	return max(age, time.Millisecond), false // 0 means "no token"
}

// OptinToken signs a link that confirms person's marketing opt-in until
// expires: "<person hash>.<unix seconds>.<mac>" — no personal data, and
// useless without the index key.
func (k *Keys) OptinToken(person string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return person + "." + exp + "." + k.Index("optin-token", person, exp)
}

// OptinPerson checks a token from OptinToken and returns its person hash.
func (k *Keys) OptinPerson(token string, now time.Time) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !hmac.Equal([]byte(parts[2]), []byte(k.Index("optin-token", parts[0], parts[1]))) {
		return "", false
	}
	return parts[0], now.Unix() <= exp
}

// UnsubscribeToken signs the link that withdraws person's marketing consent:
// "<person hash>.<mac>" — no personal data, and no expiry, since an
// unsubscribe link must work in a mail read years later.
func (k *Keys) UnsubscribeToken(person string) string {
	return person + "." + k.Index("unsubscribe-token", person)
}

// UnsubscribePerson checks a token from UnsubscribeToken and returns its
// person hash.
func (k *Keys) UnsubscribePerson(token string) (string, bool) {
	person, mac, ok := strings.Cut(token, ".")
	if !ok || person == "" || !hmac.Equal([]byte(mac), []byte(k.Index("unsubscribe-token", person))) {
		return "", false
	}
	return person, true
}

// SealedUnderCurrent reports whether a sealed value names the current data
// key, so rotation can skip it without decrypting.
func (k *Keys) SealedUnderCurrent(sealed string) bool {
	return len(sealed) >= 4 && sealed[:4] == string(k.id[:])
}
