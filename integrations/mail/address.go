package mail

import (
	"errors"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// What can be mailed: the one rule that intake (intake/form, when a request
// arrives) and the mailer (Validate, just before a send) both apply, so that
// nothing accepted is refused later. Lengths are judged on the address as it
// travels: the domain in its ASCII (A-label, "xn--…") form, since that is what
// SMTP and SendGrid count, and an address of 254 characters with a Cyrillic
// domain can be far longer than 254 bytes once encoded.
const (
	MaxAddressBytes = 254 // RFC 5321's forward path, less its angle brackets, in A-label form
	MaxLocalBytes   = 64  // RFC 5321's local part
	MaxLabelBytes   = 63  // RFC 1035's domain label, in A-label form
	MaxNameRunes    = 256 // a display name; longer is certainly a mistake and crowds the header line
)

// maxRawAddress bounds the input looked at, before any decoding work: no
// address this long can shrink to MaxAddressBytes.
const maxRawAddress = 4 * MaxAddressBytes

// Problems CheckAddress and CheckName report. Each names the rule broken,
// never the value, so it may be logged and recorded.
var (
	ErrAddressSyntax    = errors.New("not one plain address")
	ErrAddressTooLong   = errors.New("address longer than 254 bytes with its domain in ASCII form")
	ErrLocalPartTooLong = errors.New("local part longer than 64 bytes")
	ErrLabelTooLong     = errors.New("domain label longer than 63 bytes in ASCII form")
	ErrNameLineBreak    = errors.New("display name has a line break or a line or paragraph separator")
	ErrNameControl      = errors.New("display name has a control character or is not UTF-8")
	ErrNameTooLong      = errors.New("display name longer than 256 characters")
)

// CheckAddress reports whether s can be mailed: one plain address (no
// display name, angle brackets, comments, quoting or white space), a local
// part of at most 64 bytes, and a domain that converts to ASCII under IDNA
// with every label at most 63 bytes, the whole at most 254 bytes. The error
// is one of the ErrAddress… values (or ErrLocalPartTooLong, ErrLabelTooLong).
func CheckAddress(s string) error {
	_, err := ASCIIAddress(s)
	return err
}

// ASCIIAddress returns s with its domain in A-label form ("тест@пример.kz" →
// "тест@xn--e1afmkfd.kz"), the form drivers hand to the provider, after
// CheckAddress's rule. The local part is kept as written: only its owner's
// server interprets it.
func ASCIIAddress(s string) (string, error) {
	if s == "" || len(s) > maxRawAddress {
		if s == "" {
			return "", ErrAddressSyntax
		}
		return "", ErrAddressTooLong
	}
	if !utf8.ValidString(s) {
		return "", ErrAddressSyntax
	}
	for _, r := range s {
		// White space includes U+0085, U+2028 and U+2029, which net/mail
		// lets through; Cf are invisible (zero-width space, bidi controls).
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || r == '"' {
			return "", ErrAddressSyntax
		}
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.Count(s, "@") != 1 {
		return "", ErrAddressSyntax
	}
	at := strings.IndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if local == "" || domain == "" {
		return "", ErrAddressSyntax
	}
	if len(local) > MaxLocalBytes {
		return "", ErrLocalPartTooLong
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || ascii == "" {
		return "", ErrAddressSyntax
	}
	for label := range strings.SplitSeq(ascii, ".") {
		if label == "" {
			return "", ErrAddressSyntax
		}
		if len(label) > MaxLabelBytes {
			return "", ErrLabelTooLong
		}
	}
	out := local + "@" + ascii
	if len(out) > MaxAddressBytes {
		return "", ErrAddressTooLong
	}
	return out, nil
}

// CheckName reports whether s can be a recipient's display name: valid
// UTF-8, at most MaxNameRunes characters, and nothing that breaks a header
// line — no CR or LF, no Unicode line or paragraph separator (U+2028,
// U+2029), no other control character (NUL, U+0085 …). Anything else,
// quotes, backslashes and text that looks like an RFC 2047 encoded word
// included, is the driver's to encode so that it shows as written.
func CheckName(s string) error {
	if !utf8.ValidString(s) {
		return ErrNameControl
	}
	n := 0
	for _, r := range s {
		switch {
		case r == '\r', r == '\n', r == '\u2028', r == '\u2029':
			return ErrNameLineBreak
		case unicode.IsControl(r):
			return ErrNameControl
		}
		n++
	}
	if n > MaxNameRunes {
		return ErrNameTooLong
	}
	return nil
}
