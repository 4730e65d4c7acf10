package mail_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/paymtech/leadgate/integrations/mail"
)

// asciiDomain returns a domain of exactly n bytes: labels of a's of at
// most 63, ending in ".kz".
func asciiDomain(n int) string {
	var labels []string
	n -= len(".kz")
	for n > 0 {
		l := min(n, 63)
		if n-l == 1 { // a lone dot left over: shorten this label so the next one has a letter
			l--
		}
		labels = append(labels, strings.Repeat("a", l))
		n -= l + 1 // the label and its dot
	}
	return strings.Join(labels, ".") + ".kz"
}

// ya is a Cyrillic label of n letters "я": 57 of them are 63 bytes in
// A-label form ("xn--41a" and 56 a's), 58 are 64.
func ya(n int) string { return strings.Repeat("я", n) }

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	local64 := strings.Repeat("t", 64)
	cases := []struct {
		name  string
		in    string
		ascii string // the A-label form when valid
		err   error
	}{
		{"plain", "test.testov@example.com", "test.testov@example.com", nil},
		{"plus tag", "test+news@example.com", "test+news@example.com", nil},
		{"IDN domain", "test@пример.kz", "test@xn--e1afmkfd.kz", nil},
		{"Kazakh TLD", "тест@пример.қаз", "тест@xn--e1afmkfd.xn--80ao21a", nil},
		{"IDN domain in capitals is lowered", "test@ПРИМЕР.KZ", "test@xn--e1afmkfd.kz", nil},
		{"punycode domain as given", "test@xn--e1afmkfd.kz", "test@xn--e1afmkfd.kz", nil},
		{"no dot in the domain is still mailable", "test@localhost", "test@localhost", nil},

		// Lengths, judged in A-label form.
		{"ASCII address of 254 bytes", local64 + "@" + asciiDomain(189), local64 + "@" + asciiDomain(189), nil},
		{"ASCII address of 255 bytes", local64 + "@" + asciiDomain(190), "", mail.ErrAddressTooLong},
		{"local part of 64", local64 + "@example.com", local64 + "@example.com", nil},
		{"local part of 65", local64 + "t@example.com", "", mail.ErrLocalPartTooLong},
		{"Cyrillic local part of 33 letters is 66 bytes", strings.Repeat("т", 33) + "@example.com", "", mail.ErrLocalPartTooLong},
		{"ASCII label of 63", "test@" + strings.Repeat("a", 63) + ".kz", "test@" + strings.Repeat("a", 63) + ".kz", nil},
		{"ASCII label of 64", "test@" + strings.Repeat("a", 64) + ".kz", "", mail.ErrLabelTooLong},
		{"IDN label of 63 bytes in A-label form", "test@" + ya(57) + ".kz", "test@xn--41a" + strings.Repeat("a", 56) + ".kz", nil},
		{"IDN label of 58 letters, 64 bytes in A-label form", "test@" + ya(58) + ".kz", "", mail.ErrLabelTooLong},
		{"IDN address of 236 characters, 260 bytes in A-label form",
			"test@" + strings.Join([]string{ya(57), ya(57), ya(57), ya(57)}, "."), "", mail.ErrAddressTooLong},

		// Not one plain address.
		{"empty", "", "", mail.ErrAddressSyntax},
		{"display name", "Test Testov <test@example.com>", "", mail.ErrAddressSyntax},
		{"angle brackets", "<test@example.com>", "", mail.ErrAddressSyntax},
		{"comment", "test(x)@example.com", "", mail.ErrAddressSyntax},
		{"quoted local part", `"test"@example.com`, "", mail.ErrAddressSyntax},
		{"quoted at sign", `"a@b"@example.com`, "", mail.ErrAddressSyntax},
		{"two addresses", "test@example.com, test2@example.com", "", mail.ErrAddressSyntax},
		{"no at sign", "test.example.com", "", mail.ErrAddressSyntax},
		{"two at signs", "a@b@example.com", "", mail.ErrAddressSyntax},
		{"empty local part", "@example.com", "", mail.ErrAddressSyntax},
		{"empty domain", "test@", "", mail.ErrAddressSyntax},
		{"two dots", "test@example..com", "", mail.ErrAddressSyntax},
		{"trailing dot", "test@example.com.", "", mail.ErrAddressSyntax},
		{"underscore in the domain", "test@exam_ple.com", "", mail.ErrAddressSyntax},
		{"address literal", "test@[192.0.2.1]", "", mail.ErrAddressSyntax},
		{"CR LF and a header", "test@example.com\r\nBcc: test2@example.com", "", mail.ErrAddressSyntax},
		{"line separator in the domain", "test@exa\u2028mple.com", "", mail.ErrAddressSyntax},
		{"paragraph separator in the local part", "te\u2029st@example.com", "", mail.ErrAddressSyntax},
		{"NUL", "test\x00@example.com", "", mail.ErrAddressSyntax},
		{"zero-width space", "test@ex\u200bample.com", "", mail.ErrAddressSyntax},
		{"not UTF-8", "te\xffst@example.com", "", mail.ErrAddressSyntax},
		{"enormous", strings.Repeat("a", 5000) + "@example.com", "", mail.ErrAddressTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := mail.ASCIIAddress(tc.in)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("ASCIIAddress = %q, %v; want %v", got, err, tc.err)
			}
			if got != tc.ascii {
				t.Errorf("ASCIIAddress = %q, want %q", got, tc.ascii)
			}
			if err := mail.CheckAddress(tc.in); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("CheckAddress = %v, want %v", err, tc.err)
			}
			if err != nil && tc.in != "" && strings.Contains(err.Error(), "example") {
				t.Errorf("error %q quotes the address", err)
			}
		})
	}
}

// The cases above stand on facts about lengths; check the facts, so the
// table cannot pass by testing something else.
func TestCheckAddressPremises(t *testing.T) {
	t.Parallel()
	ascii := func(s string) string {
		a, err := idna.Lookup.ToASCII(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if n := len(ascii(ya(57))); n != 63 {
		t.Errorf("57 я are %d bytes in A-label form, want 63", n)
	}
	if n := len(ascii(ya(58))); n != 64 {
		t.Errorf("58 я are %d bytes in A-label form, want 64", n)
	}
	long := "test@" + strings.Join([]string{ya(57), ya(57), ya(57), ya(57)}, ".")
	if c, b := utf8.RuneCountInString(long), len("test@")+len(ascii(long[len("test@"):])); c > 254 || b <= 254 {
		t.Errorf("the long IDN address is %d characters and %d bytes in A-label form; want ≤ 254 and > 254", c, b)
	}
	for _, n := range []int{189, 190} {
		if d := asciiDomain(n); len(d) != n {
			t.Errorf("asciiDomain(%d) is %d bytes", n, len(d))
		}
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		err  error
	}{
		{"empty", "", nil},
		{"Latin", "Test Testov", nil},
		{"Russian", "Тест Тестов", nil},
		{"Kazakh", "Әлия Нұрланқызы Сәрсенбаева", nil},
		{"organisation with guillemets", "ТОО «Сынақ», ЖШС", nil},
		{"quotes, backslashes and encoded-word look-alikes", `=?utf-8?q?Bcc=3A_x?= "Test" \Testov\ =?koi8-r?b?x?=`, nil},
		{"zero-width non-joiner", "Тест\u200cТестов", nil},
		{"256 characters", strings.Repeat("ә", 256), nil},

		{"line separator", "Тест\u2028Тестов", mail.ErrNameLineBreak},
		{"paragraph separator", "Тест\u2029Тестов", mail.ErrNameLineBreak},
		{"CR", "Test\rTestov", mail.ErrNameLineBreak},
		{"LF", "Test\nTestov", mail.ErrNameLineBreak},
		{"CR LF and a header", "Test\r\nBcc: test@example.com", mail.ErrNameLineBreak},
		{"NUL", "Test\x00Testov", mail.ErrNameControl},
		{"bell", "Test\x07Testov", mail.ErrNameControl},
		{"escape", "Test\x1b[2JTestov", mail.ErrNameControl},
		{"tab", "Test\tTestov", mail.ErrNameControl},
		{"DEL", "Test\x7fTestov", mail.ErrNameControl},
		{"C1 next line", "Test\u0085Testov", mail.ErrNameControl},
		{"not UTF-8", "Test \xd0 Testov", mail.ErrNameControl},
		{"257 characters", strings.Repeat("ә", 257), mail.ErrNameTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := mail.CheckName(tc.in)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("CheckName = %v, want %v", err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "Test") {
				t.Errorf("error %q quotes the name", err)
			}
		})
	}
}

// Validate applies the same rule: what CheckAddress refuses, a Message
// refuses, and the error says why without the value.
func TestValidateUsesTheRule(t *testing.T) {
	t.Parallel()
	m := valid()
	m.To[0].Email = "test@" + ya(58) + ".kz"
	if err := m.Validate(); !errors.Is(err, mail.ErrInvalid) || !errors.Is(err, mail.ErrLabelTooLong) {
		t.Errorf("Validate = %v, want ErrInvalid and ErrLabelTooLong", err)
	}
	m = valid()
	m.To[1].Name = "Тест\u2028Тестов"
	if err := m.Validate(); !errors.Is(err, mail.ErrNameLineBreak) || strings.Contains(err.Error(), "Тест") {
		t.Errorf("Validate = %v, want ErrNameLineBreak without the name", err)
	}
}
