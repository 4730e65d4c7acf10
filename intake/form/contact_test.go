package form

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // E.164; empty: the number must be refused
	}{
		// Mobile operators, as people type them with the trunk prefix 8.
		{name: "Kcell 701", in: "8 701 000 00 00", want: "+77010000000"},
		{name: "Activ 702", in: "8 702 000 00 00", want: "+77020000000"},
		{name: "Tele2 705", in: "8 705 000 00 00", want: "+77050000000"},
		{name: "Tele2 707", in: "8 707 000 00 00", want: "+77070000000"},
		{name: "Tele2 747", in: "8 747 000 00 00", want: "+77470000000"},
		{name: "Beeline 771", in: "8 771 000 00 00", want: "+77710000000"},
		{name: "Kcell 775", in: "8 775 000 00 00", want: "+77750000000"},
		{name: "Beeline 776", in: "8 776 000 00 00", want: "+77760000000"},
		{name: "Beeline 777", in: "8 777 000 00 00", want: "+77770000000"},
		{name: "Kcell 778", in: "8 778 000 00 00", want: "+77780000000"},
		// Other spellings of one mobile number.
		{name: "international with brackets and hyphens", in: "+7 (701) 000-00-00", want: "+77010000000"},
		{name: "trunk prefix, no separators", in: "87010000000", want: "+77010000000"},
		{name: "no prefix, spaced", in: "701 000 00 00", want: "+77010000000"},
		{name: "no prefix, no separators", in: "7010000000", want: "+77010000000"},
		{name: "country code without plus", in: "77010000000", want: "+77010000000"},
		{name: "already E.164", in: "+77010000000", want: "+77010000000"},
		{name: "no-break spaces from a paste", in: "+7\u00a0701\u00a0000\u00a000\u00a000", want: "+77010000000"},
		{name: "hyphens after trunk prefix", in: "8-701-000-00-00", want: "+77010000000"},
		// Landlines.
		{name: "Almaty landline", in: "+7 727 200 00 00", want: "+77272000000"},
		{name: "Almaty landline with trunk prefix", in: "8 (727) 300-00-00", want: "+77273000000"},
		{name: "Astana landline", in: "8 (7172) 50-00-00", want: "+77172500000"},
		{name: "Astana landline, another exchange", in: "8 (7172) 00-00-00", want: "+77172000000"},
		// Foreign numbers need their country code.
		{name: "Russian mobile", in: "+7 916 000 00 00", want: "+79160000000"},
		{name: "Moscow landline", in: "+7 495 000 00 00", want: "+74950000000"},
		{name: "London landline", in: "+44 20 7946 0000", want: "+442079460000"},
		// Refused.
		{name: "empty", in: ""},
		{name: "too short", in: "8 701 000"},
		{name: "one digit short", in: "+7 701 000 00 0"},
		{name: "one digit too many", in: "+7 701 000 00 000"},
		{name: "words", in: "call me"},
		{name: "only letters", in: "abcdefghij"},
		{name: "no such Kazakhstan range", in: "+7 000 000 00 00"},
		{name: "Almaty exchange that does not exist", in: "+7 727 000 00 00"},
		{name: "leading zero instead of 8", in: "0 701 000 00 00"},
		{name: "word after the number", in: "+7 701 000 00 00 garbage"},
		{name: "extension that is not digits", in: "+7 701 000 00 00 ext abc"},
		{name: "Russian extension word with garbage", in: "+7 701 000 00 00 доб. 12abc"},
		{name: "hash after the number", in: "+7 701 000 00 00 #"},
		{name: "two numbers", in: "+7 701 000-00-00 +7 701 000-00-01"},
		{name: "NUL byte", in: "+7 701 000 00 00\x00"},
		// libphonenumber reads three or more letters as a phone keypad
		// (ABC → 222, O → 6), a convention nobody uses in Kazakhstan: a typo
		// would store someone else's number.
		{name: "letters among the digits", in: "8 701 ABC 00 00"},
		{name: "letter O typed for zero", in: "+7 701 OOO OO OO"},
		{name: "one letter after the number", in: "87010000000a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NormalizePhone(%q) = %q, want an error", tt.in, got)
				}
				if got != "" {
					t.Errorf("NormalizePhone(%q) returned %q with its error", tt.in, got)
				}
				if d := strings.Trim(tt.in, " +"); len(d) > 4 && strings.Contains(err.Error(), d) {
					t.Errorf("error %q repeats the number", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePhone(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizePhone(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{name: "plain", in: "test@example.com", want: "test@example.com"},
		{name: "case folded", in: "Test.User@Example.COM", want: "test.user@example.com"},
		{name: "plus addressing kept", in: "Test+Leads@example.com", want: "test+leads@example.com"},
		{name: "IDN domain", in: "test@пример.kz", want: "test@xn--e1afmkfd.kz"},
		{name: "IDN domain in capitals", in: "Test@ПРИМЕР.KZ", want: "test@xn--e1afmkfd.kz"},
		{name: "punycode domain", in: "test@xn--e1afmkfd.kz", want: "test@xn--e1afmkfd.kz"},
		{name: "Kazakh IDN top-level domain", in: "test@пример.қаз", want: "test@xn--e1afmkfd.xn--80ao21a"},
		{name: "Cyrillic local part lowercased", in: "Тест@example.kz", want: "тест@example.kz"},
		{name: "local part of 64", in: strings.Repeat("t", 64) + "@example.com", want: strings.Repeat("t", 64) + "@example.com"},
		{name: "digits in the domain", in: "test@123.kz", want: "test@123.kz"},

		{name: "empty", in: "", wantErr: ErrEmailInvalid},
		{name: "leading space (the caller trims)", in: " test@example.com", wantErr: ErrEmailInvalid},
		{name: "trailing space (the caller trims)", in: "test@example.com ", wantErr: ErrEmailInvalid},
		{name: "trailing newline", in: "test@example.com\n", wantErr: ErrEmailInvalid},
		{name: "display name", in: "Test Testov <test@example.com>", wantErr: ErrEmailInvalid},
		{name: "display name without a space", in: "Test<test@example.com>", wantErr: ErrEmailInvalid},
		{name: "angle brackets", in: "<test@example.com>", wantErr: ErrEmailInvalid},
		{name: "NUL", in: "test\x00@example.com", wantErr: ErrEmailInvalid},
		{name: "DEL", in: "test@exa\x7fmple.com", wantErr: ErrEmailInvalid},
		{name: "C1 control", in: "test\u0085@example.com", wantErr: ErrEmailInvalid},
		{name: "no dot in the domain", in: "test@localhost", wantErr: ErrEmailInvalid},
		{name: "local part of 65", in: strings.Repeat("t", 65) + "@example.com", wantErr: ErrEmailInvalid},
		{name: "empty local part", in: "@example.com", wantErr: ErrEmailInvalid},
		{name: "empty domain", in: "test@", wantErr: ErrEmailInvalid},
		{name: "no at sign", in: "test.example.com", wantErr: ErrEmailInvalid},
		{name: "two at signs", in: "a@b@c.kz", wantErr: ErrEmailInvalid},
		{name: "two dots in a row", in: "test..user@example.com", wantErr: ErrEmailInvalid},
		{name: "empty domain label", in: "test@example..com", wantErr: ErrEmailInvalid},
		{name: "domain label starting with a hyphen", in: "test@-example.com", wantErr: ErrEmailInvalid},
		{name: "underscore in the domain", in: "test@exam_ple.com", wantErr: ErrEmailInvalid},
		{name: "address literal", in: "test@[127.0.0.1]", wantErr: ErrEmailInvalid},
		{name: "comment", in: "test(comment)@example.com", wantErr: ErrEmailInvalid},

		{name: "two with a comma", in: "test@example.com,test2@example.com", wantErr: ErrEmailMultiple},
		{name: "two with a comma and space", in: "test@example.com, test2@example.com", wantErr: ErrEmailMultiple},
		{name: "two with a semicolon", in: "test@example.com;test2@example.com", wantErr: ErrEmailMultiple},
		{name: "two with a space", in: "test@example.com test2@example.com", wantErr: ErrEmailMultiple},
		{name: "two with a tab", in: "test@example.com\ttest2@example.com", wantErr: ErrEmailMultiple},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeEmail(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want %v", tt.in, got, err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("NormalizeEmail(%q) returned %q with its error", tt.in, got)
				}
				if tt.in != "" && strings.Contains(err.Error(), "example") {
					t.Errorf("error %q repeats the address", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again, err := NormalizeEmail(got); err != nil || again != got {
				t.Errorf("NormalizeEmail(%q) = %q, %v: the key must normalise to itself", got, again, err)
			}
		})
	}
}

// TestNormalizeEmailSamePerson checks the contract's "who is the same
// person": spellings of one address give one key, and different addresses
// do not.
func TestNormalizeEmailSamePerson(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{a: "test@пример.kz", b: "test@xn--e1afmkfd.kz", same: true},
		{a: "Test@Пример.KZ", b: "test@XN--E1AFMKFD.kz", same: true},
		{a: "TEST.USER@EXAMPLE.COM", b: "test.user@example.com", same: true},
		{a: "test+a@example.com", b: "test+b@example.com", same: false},
		{a: "test@пример.kz", b: "test@пример.рф", same: false},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			t.Parallel()
			ka, err := NormalizeEmail(tt.a)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): %v", tt.a, err)
			}
			kb, err := NormalizeEmail(tt.b)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): %v", tt.b, err)
			}
			if (ka == kb) != tt.same {
				t.Errorf("keys %q and %q: same = %v, want %v", ka, kb, ka == kb, tt.same)
			}
		})
	}
}

func TestFold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		cyrillic string // the all-Cyrillic spelling that must fold the same; empty: none
		want     string
	}{
		{name: "Latin capital schwa", in: "Əлия", cyrillic: "Әлия", want: "әлия"},
		{name: "Latin small schwa", in: "Қəсен", cyrillic: "Қәсен", want: "қәсен"},
		{name: "Latin i in a Kazakh word", in: "Шәкiрт", cyrillic: "Шәкірт", want: "шәкірт"},
		{name: "Latin h in a Kazakh word", in: "Жаhан", cyrillic: "Жаһан", want: "жаһан"},
		{name: "Latin H for Cyrillic En", in: "Hұрлан", cyrillic: "Нұрлан", want: "нұрлан"},
		{name: "Latin a and A in Almaty", in: "Aлмaты", cyrillic: "Алматы", want: "алматы"},
		{name: "Latin look-alikes in a Russian word", in: "ТОО Coкoл", cyrillic: "ТОО Сокол", want: "тоо сокол"},
		// A word without a Cyrillic letter is taken for Latin, even when every
		// letter has a Cyrillic look-alike: an English name must stay English.
		{name: "all-look-alike word stays Latin", in: "TOO Сокол", want: "too сокол"},
		{name: "capitals", in: "ҚАЗАҚСТАН", cyrillic: "қазақстан", want: "қазақстан"},
		{name: "composed and decomposed short i", in: "Жаи\u0306лау", cyrillic: "Жайлау", want: "жайлау"},
		{name: "English company name keeps its Latin letters", in: "PaymTech Coffee LLP", want: "paymtech coffee llp"},
		{name: "Latin word beside a Cyrillic one", in: "ТОО «Alma Coffee»", want: "тоо «alma coffee»"},
		{name: "whitespace collapses", in: "  Әлия \t Testova\n\nTest  ", cyrillic: "Әлия Testova Test", want: "әлия testova test"},
		{name: "no-break space collapses", in: "Әлия\u00a0Testova", cyrillic: "Әлия Testova", want: "әлия testova"},
		{name: "empty", in: "", want: ""},
		{name: "only spaces", in: " \t\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Fold(tt.in)
			if got != tt.want {
				t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.cyrillic != "" {
				if c := Fold(tt.cyrillic); c != got {
					t.Errorf("Fold(%q) = %q, but the Cyrillic spelling folds to %q", tt.in, got, c)
				}
			}
			if again := Fold(got); again != got {
				t.Errorf("Fold(%q) = %q: a folded value must fold to itself", got, again)
			}
		})
	}
}

func TestNormalizeEmailRefusesInvisibleCharacters(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"test@ex\u200bample.com", "te\u00adst@example.com", "test@example.com\ufeff"} {
		if _, err := NormalizeEmail(s); err == nil {
			t.Errorf("NormalizeEmail(%q) accepted an invisible character", s)
		}
	}
}

// phoneShapes are the ways people type a Kazakhstan number whose national
// digits are n (7XXXXXXXXX), as kazakhPhone must read them.
func phoneShapes(n string) []string {
	a, b, c, d := n[:3], n[3:6], n[6:8], n[8:]
	return []string{
		"+7" + n, "8" + n, "7" + n, n,
		"+7 " + a + " " + b + " " + c + " " + d, "8 " + a + " " + b + " " + c + " " + d,
		"+7 (" + a + ") " + b + "-" + c + "-" + d, "8 (" + a + ") " + b + "-" + c + "-" + d,
		"8-" + a + "-" + b + "-" + c + "-" + d, a + " " + b + " " + c + d, "7 " + a + " " + b + c + d,
		"+7(" + a + ")" + b + c + d, "8 (" + n[:4] + ") " + n[4:6] + "-" + n[6:8] + "-" + d,
	}
}

// TestKazakhPhoneAgrees holds the fast path to libphonenumber: every
// national range's number, in every common shape, reads the same both ways,
// and a valid one is read by the fast path (else it would save nothing).
func TestKazakhPhoneAgrees(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(14, 7))
	check := func(in string) {
		fast, ok := kazakhPhone(in)
		slow, err := parsePhone(in)
		switch {
		case ok && (err != nil || slow != fast):
			t.Errorf("%q: fast path %q, libphonenumber %q (%v)", in, fast, slow, err)
		case !ok && err == nil:
			t.Errorf("%q: valid (%s) but not read by the fast path", in, slow)
		}
	}
	// Every five-digit prefix decides a Kazakhstan number's range (mobile
	// 7XX, landline 7XXXX): each with a random rest, in one of the shapes.
	for p := 70000; p <= 79999; p++ {
		n := fmt.Sprintf("%d%05d", p, rnd.IntN(100000))
		shapes := phoneShapes(n)
		check(shapes[p%len(shapes)])
	}
	// Each mobile operator's range in every shape.
	for _, op := range []string{"700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778"} {
		for _, in := range phoneShapes(fmt.Sprintf("%s%07d", op, rnd.IntN(10000000))) {
			check(in)
		}
	}
}

// TestKazakhRangesDecideValidity proves what kazakhRanges assumes: for
// every five-digit start of a Kazakhstan number, libphonenumber finds all
// numbers valid or none (the lowest, the highest and random ones asked).
func TestKazakhRangesDecideValidity(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(5, 14))
	valid := func(national uint64) bool {
		return phonenumbers.IsValidNumber(&phonenumbers.PhoneNumber{CountryCode: proto.Int32(7), NationalNumber: proto.Uint64(national)})
	}
	ranges := 0
	for p := uint64(70000); p <= 79999; p++ {
		want := valid(p * 100000)
		for _, rest := range []uint64{99999, rnd.Uint64N(100000), rnd.Uint64N(100000)} {
			if got := valid(p*100000 + rest); got != want {
				t.Fatalf("+7 %d%05d valid=%v, but +7 %d00000 valid=%v: five digits do not decide", p, rest, got, p, want)
			}
		}
		if want {
			ranges++
		}
	}
	if ranges < 1000 { // the mobile ranges alone are 16 × 100 prefixes
		t.Fatalf("only %d valid five-digit ranges: the metadata looks wrong", ranges)
	}
}

// FuzzKazakhPhone: whatever the input, a number the fast path reads is the
// number libphonenumber reads.
func FuzzKazakhPhone(f *testing.F) {
	for _, in := range phoneShapes("7010000000") {
		f.Add(in)
	}
	for _, in := range []string{"+7 916 000 00 00", "77273000000", "8 (7172) 50-00-00", "((8))7010000000", "+7--701", "7-7010000000-",
		"8 701 000 00 00 #", "+ 7 701 000 00 00", "(+7) 701 000 00 00", "8 (0701) 000 00 00", "8 8 701 000 00 00"} {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fast, ok := kazakhPhone(in)
		if !ok {
			return
		}
		if slow, err := parsePhone(in); err != nil || slow != fast {
			t.Fatalf("%q: fast path %q, libphonenumber %q (%v)", in, fast, slow, err)
		}
	})
}
