package taxid

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// almaty is Kazakhstan time; a fixed zone keeps the tests free of tzdata.
var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

// testNow is the fixed "today" of every test: 15 June 2025 in Almaty.
var testNow = time.Date(2025, time.June, 15, 12, 0, 0, 0, almaty)

// refPass returns the weighted sum modulo 11 of an 11-digit body. Weights
// come from a formula (shift 0: 1…11, shift 2: 3…11,1,2) rather than the
// literal tables of the production code, so a slip in either one shows.
func refPass(body string, shift int) int {
	sum := 0
	for i, c := range body {
		sum += ((i+shift)%11 + 1) * int(c-'0')
	}
	return sum % 11
}

// withCheck appends the check digit to an 11-digit body.
func withCheck(t *testing.T, body string) string {
	t.Helper()
	for _, shift := range []int{0, 2} {
		if k := refPass(body, shift); k != 10 {
			return body + strconv.Itoa(k)
		}
	}
	t.Fatalf("body %s has no check digit; pick another serial", body)
	return ""
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string // normalised; empty means the same as in
		kind    Kind
		binType int
		binAttr int
	}{
		{name: "IIN man born 1985-04-15", in: withCheck(t, "85041530012"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN woman born 2001-12-31", in: withCheck(t, "01123160034"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN man born 1899-07-01", in: withCheck(t, "99070110056"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN woman born 1899-07-01", in: withCheck(t, "99070120057"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN born 2000-02-29, a leap year", in: withCheck(t, "00022950011"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN born 2024-02-29, a leap year", in: withCheck(t, "24022960022"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN born today", in: withCheck(t, "25061550001"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN foreign citizen, century unknown", in: withCheck(t, "90010100078"), kind: IIN, binType: -1, binAttr: -1},
		{name: "IIN century unknown, 29 Feb of year 00 exists in 2000", in: withCheck(t, "00022900013"), kind: IIN, binType: -1, binAttr: -1},
		{name: "BIN of the company", in: "210840004064", kind: BIN, binType: 4, binAttr: 0},
		{name: "BIN branch", in: withCheck(t, "15084100123"), kind: BIN, binType: 4, binAttr: 1},
		{name: "BIN non-resident representative office", in: withCheck(t, "19035200456"), kind: BIN, binType: 5, binAttr: 2},
		{name: "BIN peasant farm", in: withCheck(t, "07114300789"), kind: BIN, binType: 4, binAttr: 3},
		{name: "BIN non-resident head organisation", in: withCheck(t, "12055000321"), kind: BIN, binType: 5, binAttr: 0},
		{name: "BIN joint individual entrepreneurship", in: withCheck(t, "16026000555"), kind: BIN, binType: 6, binAttr: 0},
		{name: "spaces between groups", in: "2108 4000 4064", want: "210840004064", kind: BIN, binType: 4, binAttr: 0},
		{name: "hyphens between groups", in: "2108-4000-4064", want: "210840004064", kind: BIN, binType: 4, binAttr: 0},
		{name: "no-break spaces", in: "2108\u00a04000\u00a04064", want: "210840004064", kind: BIN, binType: 4, binAttr: 0},
		{name: "narrow no-break space", in: "210840\u202f004064", want: "210840004064", kind: BIN, binType: 4, binAttr: 0},
		{name: "leading and trailing spaces", in: "  210840004064 ", want: "210840004064", kind: BIN, binType: 4, binAttr: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := Parse(tt.in, testNow)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if got := id.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			if got := id.Kind(); got != tt.kind {
				t.Errorf("Kind() = %v, want %v", got, tt.kind)
			}
			if got := id.BINType(); got != tt.binType {
				t.Errorf("BINType() = %d, want %d", got, tt.binType)
			}
			if got := id.BINAttribute(); got != tt.binAttr {
				t.Errorf("BINAttribute() = %d, want %d", got, tt.binAttr)
			}
		})
	}
}

func TestParseSecondPassCheckDigit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantCode string // empty: valid
	}{
		{name: "IIN valid through the second pass", in: "850415300302"},
		{name: "BIN valid through the second pass", in: "210840000200"},
		{name: "IIN with the first-pass digit instead", in: "850415300300", wantCode: CodeChecksum},
		{name: "both passes give ten, last digit zero", in: "850415300340", wantCode: CodeChecksum},
		{name: "both passes give ten, last digit nine", in: "850415300349", wantCode: CodeChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Without this the case could silently stop testing the second pass.
			if got := refPass(tt.in[:11], 0); got != 10 {
				t.Fatalf("first pass of %s gives %d; the case needs 10", tt.in, got)
			}
			_, err := Parse(tt.in, testNow)
			assertCode(t, err, tt.wantCode)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		code string
	}{
		{name: "empty", in: "", code: CodeLength},
		{name: "only separators", in: " - \u00a0", code: CodeLength},
		{name: "eleven digits", in: "21084000406", code: CodeLength},
		{name: "thirteen digits", in: "2108400040640", code: CodeLength},
		{name: "many digits", in: strings.Repeat("1", 1000), code: CodeLength},
		{name: "letter", in: "21084000406x", code: CodeDigits},
		{name: "letters only", in: "abc", code: CodeDigits},
		{name: "plus sign", in: "+210840004064", code: CodeDigits},
		{name: "trailing newline", in: "210840004064\n", code: CodeDigits},
		{name: "fullwidth digit", in: "２10840004064", code: CodeDigits},
		{name: "Arabic-Indic digit", in: "٢10840004064", code: CodeDigits},
		{name: "invalid UTF-8", in: "\xff210840004064", code: CodeDigits},
		{name: "wrong check digit", in: "210840004065", code: CodeChecksum},
		{name: "two digits swapped", in: "210840040064", code: CodeChecksum},
		{name: "5th digit seven", in: withCheck(t, "85047530012"), code: CodeKind},
		{name: "5th digit nine", in: withCheck(t, "21089000123"), code: CodeKind},
		{name: "century digit seven", in: withCheck(t, "85041570012"), code: CodeCentury},
		{name: "century digit nine", in: withCheck(t, "85041590012"), code: CodeCentury},
		{name: "IIN month 13", in: withCheck(t, "85131530012"), code: CodeDate},
		{name: "IIN month 00", in: withCheck(t, "85001530012"), code: CodeDate},
		{name: "IIN day 00", in: withCheck(t, "85040030012"), code: CodeDate},
		{name: "IIN day 32", in: withCheck(t, "85013230012"), code: CodeDate},
		{name: "IIN 31 April", in: withCheck(t, "85043130012"), code: CodeDate},
		{name: "IIN 29 Feb 1900, not a leap year", in: withCheck(t, "00022930012"), code: CodeDate},
		{name: "IIN 29 Feb 2023, not a leap year", in: withCheck(t, "23022950012"), code: CodeDate},
		{name: "IIN 30 Feb 2024", in: withCheck(t, "24023050012"), code: CodeDate},
		{name: "IIN born tomorrow", in: withCheck(t, "25061650012"), code: CodeDate},
		{name: "IIN born in 2030", in: withCheck(t, "30010160012"), code: CodeDate},
		{name: "IIN century unknown, 29 Feb of year 99 exists in no century", in: withCheck(t, "99022900012"), code: CodeDate},
		{name: "BIN month 00", in: withCheck(t, "21004000123"), code: CodeDate},
		{name: "BIN month 13", in: withCheck(t, "21134000123"), code: CodeDate},
		{name: "BIN attribute 4", in: withCheck(t, "21084400123"), code: CodeBINAttribute},
		{name: "BIN attribute 9", in: withCheck(t, "21085900123"), code: CodeBINAttribute},
		{name: "joint IE BIN attribute 7", in: withCheck(t, "16026700555"), code: CodeBINAttribute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := Parse(tt.in, testNow)
			assertCode(t, err, tt.code)
			if id != (ID{}) {
				t.Errorf("Parse returned %q with an error; want the zero ID", id)
			}
		})
	}
}

// TestParseUsesCallersCalendarDay pins down that "future" is judged by the
// day in now's location: at 01:00 in Almaty it is still yesterday in UTC.
func TestParseUsesCallersCalendarDay(t *testing.T) {
	t.Parallel()
	instant := time.Date(2025, time.June, 14, 20, 0, 0, 0, time.UTC)
	bornOn15th := withCheck(t, "25061550001")
	tests := []struct {
		name     string
		now      time.Time
		wantCode string
	}{
		{name: "15 June in Almaty", now: instant.In(almaty)},
		{name: "14 June in UTC", now: instant, wantCode: CodeDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(bornOn15th, tt.now)
			assertCode(t, err, tt.wantCode)
		})
	}
}

func TestCheckEntity(t *testing.T) {
	t.Parallel()
	iin := withCheck(t, "85041530012")
	tests := []struct {
		name       string
		id         string
		entityType string
		wantCode   string
	}{
		{name: "legal entity, resident BIN", id: "210840004064", entityType: "legal_entity"},
		{name: "legal entity, non-resident representative office", id: withCheck(t, "19035200456"), entityType: "legal_entity"},
		{name: "legal entity, branch", id: withCheck(t, "15084100123"), entityType: "legal_entity"},
		{name: "legal entity, farm BIN of type 4", id: withCheck(t, "07114300789"), entityType: "legal_entity"},
		{name: "legal entity, IIN", id: iin, entityType: "legal_entity", wantCode: CodeNotBIN},
		{name: "legal entity, joint IE BIN", id: withCheck(t, "16026000555"), entityType: "legal_entity", wantCode: CodeJointIEBIN},
		{name: "sole proprietor, IIN", id: iin, entityType: "sole_proprietor"},
		{name: "sole proprietor, joint IE BIN", id: withCheck(t, "16026000555"), entityType: "sole_proprietor"},
		{name: "sole proprietor, peasant farm BIN", id: withCheck(t, "07114300789"), entityType: "sole_proprietor"},
		{name: "sole proprietor, resident company BIN", id: "210840004064", entityType: "sole_proprietor", wantCode: CodeNotSoleProprietor},
		{name: "sole proprietor, non-resident branch BIN", id: withCheck(t, "19035100456"), entityType: "sole_proprietor", wantCode: CodeNotSoleProprietor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := Parse(tt.id, testNow)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.id, err)
			}
			assertCode(t, CheckEntity(id, tt.entityType), tt.wantCode)
		})
	}
}

func TestCheckEntityRejectsUnusableInput(t *testing.T) {
	t.Parallel()
	company, err := Parse("210840004064", testNow)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         ID
		entityType string
		wantCode   string // empty: a plain error outside the catalogue
	}{
		{name: "unknown entity type", id: company, entityType: "government"},
		{name: "entity type in other case", id: company, entityType: "Legal_Entity"},
		{name: "zero ID as legal entity", id: ID{}, entityType: "legal_entity", wantCode: CodeNotBIN},
		{name: "zero ID as sole proprietor", id: ID{}, entityType: "sole_proprietor", wantCode: CodeNotSoleProprietor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckEntity(tt.id, tt.entityType)
			if tt.wantCode != "" {
				assertCode(t, err, tt.wantCode)
				return
			}
			var e *Error
			if err == nil || errors.As(err, &e) {
				t.Fatalf("CheckEntity = %v; want a plain error that is not *Error", err)
			}
		})
	}
}

func TestZeroID(t *testing.T) {
	t.Parallel()
	var id ID
	if id.String() != "" || id.Kind() != 0 || id.BINType() != -1 || id.BINAttribute() != -1 {
		t.Errorf("zero ID = (%q, %v, %d, %d); want (\"\", unknown, -1, -1)",
			id.String(), id.Kind(), id.BINType(), id.BINAttribute())
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind Kind
		want string
	}{
		{IIN, "IIN"},
		{BIN, "BIN"},
		{0, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestErrorText checks every catalogue code has its own English text and
// that no text carries a digit, so none can echo part of an identifier.
func TestErrorText(t *testing.T) {
	t.Parallel()
	codes := []string{
		CodeLength, CodeDigits, CodeChecksum, CodeDate, CodeCentury, CodeKind,
		CodeBINAttribute, CodeNotBIN, CodeJointIEBIN, CodeNotSoleProprietor,
	}
	seen := map[string]string{}
	for _, code := range codes {
		msg := (&Error{Code: code}).Error()
		if strings.ContainsAny(msg, "0123456789") {
			t.Errorf("code %s: text %q contains a digit", code, msg)
		}
		if strings.Contains(msg, "("+code+")") {
			t.Errorf("code %s: falls back to the generic text %q", code, msg)
		}
		if other, dup := seen[msg]; dup {
			t.Errorf("codes %s and %s share the text %q", code, other, msg)
		}
		seen[msg] = code
	}
	if msg := (&Error{Code: "unlisted"}).Error(); !strings.Contains(msg, "unlisted") {
		t.Errorf("unlisted code text %q does not name the code", msg)
	}
}

// assertCode fails unless err is an *Error with the wanted code, or nil when
// want is empty.
func assertCode(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error with code %s", err, err, want)
	}
	if e.Code != want {
		t.Errorf("code %s, want %s", e.Code, want)
	}
	if strings.ContainsAny(err.Error(), "0123456789") {
		t.Errorf("error text %q contains a digit", err.Error())
	}
}
