package taxid

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every failure is an *Error
// whose text holds no digit, and that an accepted value is the input's
// digits, consistent in its accessors, and parses again to itself.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"210840004064", "2108 4000 4064", "2108-4000-4064", "2108\u00a04000\u00a04064",
		"850415300302", "850415300340", "", "abc", "２10840004064", "\xff",
		"000229000130", "990229000120", "1602670055 5",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s, testNow)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			if strings.ContainsAny(err.Error(), "0123456789") {
				t.Fatalf("error text %q contains a digit", err.Error())
			}
			if id != (ID{}) {
				t.Fatalf("Parse returned %q with an error", id)
			}
			return
		}
		stripped := strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' || r == '\u00a0' || r == '\u202f' {
				return -1
			}
			return r
		}, s)
		if id.String() != stripped {
			t.Fatalf("String() = %q, want the input's digits %q", id.String(), stripped)
		}
		switch id.Kind() {
		case IIN:
			if id.BINType() != -1 || id.BINAttribute() != -1 {
				t.Fatalf("IIN %q has BIN type %d attribute %d", id, id.BINType(), id.BINAttribute())
			}
		case BIN:
			if bt, ba := id.BINType(), id.BINAttribute(); bt < 4 || bt > 6 || ba < 0 || ba > 3 {
				t.Fatalf("BIN %q has type %d attribute %d", id, bt, ba)
			}
		default:
			t.Fatalf("accepted %q has kind %v", id, id.Kind())
		}
		again, err := Parse(id.String(), testNow)
		if err != nil || again != id {
			t.Fatalf("re-Parse(%q) = %q, %v", id, again, err)
		}
	})
}
