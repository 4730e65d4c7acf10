package form

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"

	"github.com/paymtech/leadgate/integrations/mail"
)

// NormalizePhone parses a phone number as a person in Kazakhstan types it —
// "8 701 000 00 00", "701 000 0000", "+7 (727) 000-00-00", or any number with
// its country code — and returns it in E.164.
func NormalizePhone(s string) (string, error) {
	if p, ok := kazakhPhone(s); ok {
		return p, nil
	}
	return parsePhone(s)
}

// parsePhone is NormalizePhone by libphonenumber alone: the authority that
// kazakhPhone must agree with.
func parsePhone(s string) (string, error) {
	// libphonenumber reads letters as keypad digits ("8 701 ABC…"); on a form
	// they are typos, and a number must be what the person meant.
	if strings.IndexFunc(s, unicode.IsLetter) >= 0 {
		return "", errors.New("not a valid phone number")
	}
	n, err := phonenumbers.Parse(s, "KZ")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", errors.New("not a valid phone number")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// kazakhPhone reads the shapes nearly every form gets — a Kazakhstan number
// (national 7XXXXXXXXX) with +7, 8, 7 or nothing before it, spaced by
// blanks, hyphens or brackets — without libphonenumber's parser, which costs
// two thirds of a phone's validation (regular expressions over the whole
// input). Whether the number exists is still libphonenumber's answer. It
// reports ok only for a valid number; anything else, even a shape it reads,
// goes to parsePhone, so it can only agree with it (FuzzKazakhPhone and
// TestKazakhPhoneAgrees hold it to that).
func kazakhPhone(s string) (string, bool) {
	if len(s) > 32 {
		return "", false
	}
	var digits [11]byte
	n, plus := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if n == len(digits) {
				return "", false
			}
			digits[n] = c
			n++
		case c == '+' && i == 0:
			plus = true
		case c == ' ' || c == '-' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	d := digits[:n]
	switch {
	case n == 11 && d[1] == '7' && (d[0] == '7' || d[0] == '8' && !plus):
		d = d[1:] // country code 7, or the trunk prefix 8
	case n == 10 && d[0] == '7' && !plus:
	default:
		return "", false
	}
	national, _ := strconv.ParseUint(string(d), 10, 64)
	if !kazakhRangeValid(national) {
		return "", false
	}
	return "+7" + string(d), true
}

// kazakhRanges holds libphonenumber's IsValidNumber by a Kazakhstan
// number's first five national digits (7XXXX, index XXXX), learnt from the
// first number seen in each: 0 not yet asked, 1 valid, 2 not. Five digits
// decide a range — a mobile operator's 7XX or a landline exchange's 7XXXX,
// then any digits — as TestKazakhRangesDecideValidity checks for every one
// against the metadata in use; asking once saves a third of a phone's cost.
var kazakhRanges [10000]atomic.Uint32

// kazakhRangeValid reports whether national (7XXXXXXXXX) is a valid number.
func kazakhRangeValid(national uint64) bool {
	r := &kazakhRanges[national/100000%10000]
	switch r.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	num := &phonenumbers.PhoneNumber{CountryCode: proto.Int32(7), NationalNumber: proto.Uint64(national)}
	if !phonenumbers.IsValidNumber(num) {
		r.Store(2)
		return false
	}
	r.Store(1)
	return true
}

// Problems NormalizeEmail reports, so a form can say which. An address the
// mailer would refuse is ErrEmailInvalid with the mailable rule's reason
// (mail.ErrLocalPartTooLong, mail.ErrLabelTooLong, mail.ErrAddressTooLong …)
// also in its chain.
var (
	ErrEmailMultiple = errors.New("more than one email address")
	ErrEmailInvalid  = errors.New("not a valid email address")
)

// NormalizeEmail checks that s is one bare address that can be mailed (the
// rule intake and the mailer share, mail.ASCIIAddress: lengths judged with
// the domain in A-label form) and has a dot in its domain, and returns the
// form that identifies the person: lowercase, with the domain in IDNA ASCII
// form, so "Test@Пример.kz" and "test@xn--e1afmkfd.kz" are the same person.
func NormalizeEmail(s string) (string, error) {
	if strings.ContainsAny(s, ",;") || strings.Count(s, "@") > 1 && strings.ContainsAny(s, " \t") {
		return "", ErrEmailMultiple
	}
	ascii, err := mail.ASCIIAddress(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrEmailInvalid, err)
	}
	at := strings.LastIndexByte(ascii, '@')
	local, domain := ascii[:at], ascii[at+1:]
	if !strings.Contains(domain, ".") {
		return "", ErrEmailInvalid
	}
	return strings.ToLower(local) + "@" + strings.ToLower(domain), nil
}

// lookalikes maps Latin letters that people (and keyboard layouts, and some
// documents — the privacy policy itself writes ə for ә) put into Kazakh and
// Russian words to the Cyrillic letters they stand for.
var lookalikes = map[rune]rune{
	'ə': 'ә', 'Ə': 'Ә', 'i': 'і', 'I': 'І', 'h': 'һ', 'H': 'Н',
	'a': 'а', 'A': 'А', 'B': 'В', 'c': 'с', 'C': 'С', 'e': 'е', 'E': 'Е',
	'K': 'К', 'k': 'к', 'M': 'М', 'o': 'о', 'O': 'О', 'p': 'р', 'P': 'Р',
	'T': 'Т', 'x': 'х', 'X': 'Х', 'y': 'у', 'Y': 'У',
}

// Fold returns the form of s used for matching only — never for display or
// storage, which keep what the person typed: NFC, Latin look-alikes inside
// Cyrillic words replaced by their Cyrillic letters, lowercase, single spaces.
func Fold(s string) string {
	words := strings.Fields(norm.NFC.String(s))
	for i, w := range words {
		if !strings.ContainsFunc(w, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }) {
			words[i] = strings.ToLower(w)
			continue
		}
		words[i] = strings.ToLower(strings.Map(func(r rune) rune {
			if c, ok := lookalikes[r]; ok {
				return c
			}
			return r
		}, w))
	}
	return strings.Join(words, " ")
}
