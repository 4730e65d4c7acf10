package form

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/intake"
)

// testNow is the fixed "today" of the validator tests: 15 June 2025 in
// Almaty. A fixed zone keeps the tests free of tzdata.
var testNow = time.Date(2025, time.June, 15, 12, 0, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60))

// testCatalog is the PRODUCT_CATALOG the validator tests run with.
var testCatalog = []string{"acquiring", "payment_links", "recurring", "payouts", "pos"}

func newTestValidator() *Validator {
	return NewValidator(testCatalog, func() time.Time { return testNow })
}

// The company's own BIN, and identifiers built from the bodies the taxid
// tests use, with the check digit computed here from the published rule.
const companyBIN = "210840004064"

var (
	testIIN        = mustCheckDigit("85041530012") // man born 1985-04-15
	farmBIN        = mustCheckDigit("07114300789") // type 4, attribute 3: peasant farm
	jointIEBIN     = mustCheckDigit("16026000555") // type 6: joint individual entrepreneurship
	nonResidentBIN = mustCheckDigit("12055000321") // type 5, head organisation
)

// mustCheckDigit appends the check digit to an 11-digit body: the sum of the
// digits weighted 1…11 modulo 11, or when that is 10 a second pass weighted
// 3…11,1,2. The weights come from a formula, not from taxid's tables, so a
// slip in either shows.
func mustCheckDigit(body string) string {
	for _, shift := range []int{0, 2} {
		sum := 0
		for i, c := range body {
			sum += ((i+shift)%11 + 1) * int(c-'0')
		}
		if k := sum % 11; k != 10 {
			return body + strconv.Itoa(k)
		}
	}
	panic("body " + body + " has no check digit; pick another serial")
}

// catalogues holds the kk, ru and en message files, key → text: every
// Problem.Key the validator returns is shown to people through them.
var catalogues = sync.OnceValues(func() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, lang := range []string{"kk", "ru", "en"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "templates", "messages", lang+".json"))
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s catalogue: %w", lang, err)
		}
		out[lang] = m
	}
	return out, nil
})

// checkCatalogue fails t unless p's key is in every catalogue and its
// arguments fill the text's verbs exactly.
func checkCatalogue(t testing.TB, p intake.Problem) {
	t.Helper()
	cats, err := catalogues()
	if err != nil {
		t.Fatalf("read message catalogues: %v", err)
	}
	for lang, m := range cats {
		text, ok := m[p.Key]
		if !ok {
			t.Errorf("key %q is not in the %s catalogue", p.Key, lang)
			continue
		}
		if len(p.Args) == 0 {
			if strings.Contains(text, "%") {
				t.Errorf("%s %q has a verb but the problem carries no argument", lang, p.Key)
			}
			continue
		}
		if s := fmt.Sprintf(text, p.Args...); strings.Contains(s, "%!") {
			t.Errorf("%s %q with args %v gives %q", lang, p.Key, p.Args, s)
		}
	}
}

// validForm returns a complete legal-entity request. Each call builds a new
// Products slice, so parallel tests never share one.
func validForm() Form {
	return Form{
		EntityType:        "legal_entity",
		Name:              "ТОО «Test Testov»",
		Phone:             "+7 701 000 00 00",
		Email:             "test@example.com",
		TaxID:             companyBIN,
		Products:          []string{"acquiring", "pos"},
		Message:           "Сәлеметсіз бе!\nWe need acquiring.",
		Lang:              "kk",
		ConsentProcessing: true,
		ConsentMarketing:  true,
		PageURL:           "https://paymtech.example/kk/connect",
		Timezone:          "Asia/Almaty",
		UTMSource:         "google",
		UTMMedium:         "cpc",
		UTMCampaign:       "spring-2025",
		RedirectURL:       "https://paymtech.example/thanks",
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	full := intake.Submission{
		EntityType:       "legal_entity",
		Name:             "ТОО «Test Testov»",
		Phone:            "+77010000000",
		Email:            "test@example.com",
		EmailKey:         "test@example.com",
		TaxID:            companyBIN,
		Products:         []string{"acquiring", "pos"},
		Message:          "Сәлеметсіз бе!\nWe need acquiring.",
		Lang:             "kk",
		ConsentMarketing: true,
		PageURL:          "https://paymtech.example/kk/connect",
		Timezone:         "Asia/Almaty",
		UTMSource:        "google",
		UTMMedium:        "cpc",
		UTMCampaign:      "spring-2025",
		RedirectURL:      "https://paymtech.example/thanks",
	}
	tests := []struct {
		name   string
		edit   func(*Form)
		change func(*intake.Submission) // how the Submission differs from full
	}{
		{name: "complete legal entity with the company's BIN", edit: func(*Form) {}, change: func(*intake.Submission) {}},
		{name: "non-resident legal entity BIN",
			edit:   func(f *Form) { f.TaxID = nonResidentBIN },
			change: func(s *intake.Submission) { s.TaxID = nonResidentBIN }},
		{name: "sole proprietor with an IIN",
			edit:   func(f *Form) { f.EntityType, f.TaxID = "sole_proprietor", testIIN },
			change: func(s *intake.Submission) { s.EntityType, s.TaxID = "sole_proprietor", testIIN }},
		{name: "sole proprietor with a peasant farm BIN",
			edit:   func(f *Form) { f.EntityType, f.TaxID = "sole_proprietor", farmBIN },
			change: func(s *intake.Submission) { s.EntityType, s.TaxID = "sole_proprietor", farmBIN }},
		{name: "sole proprietor with a joint IE BIN",
			edit:   func(f *Form) { f.EntityType, f.TaxID = "sole_proprietor", jointIEBIN },
			change: func(s *intake.Submission) { s.EntityType, s.TaxID = "sole_proprietor", jointIEBIN }},
		{name: "only the required fields",
			edit: func(f *Form) {
				*f = Form{EntityType: "legal_entity", Phone: "87010000000", Email: "test@example.com", ConsentProcessing: true}
			},
			change: func(s *intake.Submission) {
				*s = intake.Submission{EntityType: "legal_entity", Phone: "+77010000000", Email: "test@example.com", EmailKey: "test@example.com"}
			}},
		{name: "surrounding spaces trimmed, entity type and lang in capitals",
			edit: func(f *Form) {
				f.EntityType, f.Name, f.Phone, f.Email = " LEGAL_ENTITY ", "  ТОО «Test Testov»\t", " +7 701 000 00 00 ", " test@example.com\n"
				f.TaxID, f.Message, f.Lang = " 2108 4000 4064 ", "\n Сәлеметсіз бе!\nWe need acquiring. \n", " KK "
				f.Products = []string{" acquiring ", "pos\t"}
				f.PageURL, f.Timezone = " https://paymtech.example/kk/connect ", " Asia/Almaty "
				f.UTMSource, f.UTMMedium, f.UTMCampaign = " google ", " cpc ", " spring-2025 "
				f.RedirectURL = " https://paymtech.example/thanks "
			},
			change: func(*intake.Submission) {}},
		{name: "duplicate products kept once each in the order given",
			edit:   func(f *Form) { f.Products = []string{"pos", "acquiring", "pos", " acquiring", "payouts"} },
			change: func(s *intake.Submission) { s.Products = []string{"pos", "acquiring", "payouts"} }},
		{name: "phone as typed in Kazakhstan becomes E.164",
			edit:   func(f *Form) { f.Phone = "8 (7172) 50-00-00" },
			change: func(s *intake.Submission) { s.Phone = "+77172500000" }},
		{name: "email kept as typed, its key normalised",
			edit: func(f *Form) { f.Email = "Test.User+leads@Пример.KZ" },
			change: func(s *intake.Submission) {
				s.Email, s.EmailKey = "Test.User+leads@Пример.KZ", "test.user+leads@xn--e1afmkfd.kz"
			}},
		{name: "name of 200 Kazakh letters: length is characters, not bytes",
			edit:   func(f *Form) { f.Name = strings.Repeat("Ә", 200) },
			change: func(s *intake.Submission) { s.Name = strings.Repeat("Ә", 200) }},
		{name: "message of 2000 Kazakh letters",
			edit:   func(f *Form) { f.Message = strings.Repeat("Қ", 2000) },
			change: func(s *intake.Submission) { s.Message = strings.Repeat("Қ", 2000) }},
		{name: "message with tabs and Windows line breaks",
			edit:   func(f *Form) { f.Message = "Line one\r\n\tLine two" },
			change: func(s *intake.Submission) { s.Message = "Line one\r\n\tLine two" }},
		{name: "email of 254 characters",
			edit:   func(f *Form) { f.Email = emailOfLength(254) },
			change: func(s *intake.Submission) { s.Email, s.EmailKey = emailOfLength(254), emailOfLength(254) }},
		{name: "no lang", edit: func(f *Form) { f.Lang = "" }, change: func(s *intake.Submission) { s.Lang = "" }},
		{name: "no marketing consent",
			edit:   func(f *Form) { f.ConsentMarketing = false },
			change: func(s *intake.Submission) { s.ConsentMarketing = false }},
		{name: "filled honeypot is the caller's business",
			edit: func(f *Form) { f.Website = "http://spam.example" }, change: func(*intake.Submission) {}},
	}
	v := newTestValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := validForm()
			tt.edit(&f)
			want := full
			want.Products = []string{"acquiring", "pos"}
			tt.change(&want)
			got, fields := v.Validate(f)
			if fields != nil {
				t.Fatalf("Validate rejected the form: %v", fields)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Validate =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

// emailOfLength builds a valid address of exactly n characters (n ≥ 70): a
// 64-character local part and a domain of labels no longer than 63.
func emailOfLength(n int) string {
	local := strings.Repeat("t", 64)
	rest := n - len(local) - len("@") - len(".kz")
	var labels []string
	for rest > 0 {
		l := min(rest, 63)
		if rest-l == 1 { // a lone dot would be left over
			l--
		}
		labels = append(labels, strings.Repeat("e", l))
		rest -= l + 1
	}
	email := local + "@" + strings.Join(labels, ".") + ".kz"
	if len(email) != n {
		panic(fmt.Sprintf("emailOfLength(%d) built %d characters", n, len(email)))
	}
	return email
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Form)
		field string
		want  intake.Problem
	}{
		{name: "entity type missing", edit: func(f *Form) { f.EntityType = "" },
			field: "entity_type", want: intake.Problem{Key: "field.required"}},
		{name: "entity type only spaces", edit: func(f *Form) { f.EntityType = "   " },
			field: "entity_type", want: intake.Problem{Key: "field.required"}},
		{name: "entity type other", edit: func(f *Form) { f.EntityType = "individual" },
			field: "entity_type", want: intake.Problem{Key: "entity_type.invalid"}},
		{name: "name of 201 characters", edit: func(f *Form) { f.Name = strings.Repeat("Ә", 201) },
			field: "name", want: intake.Problem{Key: "field.too_long", Args: []any{200}}},
		{name: "name with a control character", edit: func(f *Form) { f.Name = "Test\x07Testov" },
			field: "name", want: intake.Problem{Key: "name.invalid"}},
		{name: "name with a NUL", edit: func(f *Form) { f.Name = "Test\x00Testov" },
			field: "name", want: intake.Problem{Key: "name.invalid"}},
		{name: "name with a C1 control", edit: func(f *Form) { f.Name = "Test\u0085Testov" },
			field: "name", want: intake.Problem{Key: "name.invalid"}},
		{name: "name not UTF-8", edit: func(f *Form) { f.Name = "Test \xd0 Testov" },
			field: "name", want: intake.Problem{Key: "name.invalid"}},
		{name: "phone missing", edit: func(f *Form) { f.Phone = "" },
			field: "phone", want: intake.Problem{Key: "field.required"}},
		{name: "phone invalid", edit: func(f *Form) { f.Phone = "+7 000 000 00 00" },
			field: "phone", want: intake.Problem{Key: "phone.invalid"}},
		{name: "phone too short", edit: func(f *Form) { f.Phone = "8 701 000" },
			field: "phone", want: intake.Problem{Key: "phone.invalid"}},
		{name: "phone of 41 characters", edit: func(f *Form) { f.Phone = "+7 701 000 00 00" + strings.Repeat(" ", 24) + "0" },
			field: "phone", want: intake.Problem{Key: "phone.too_long"}},
		{name: "email missing", edit: func(f *Form) { f.Email = "" },
			field: "email", want: intake.Problem{Key: "field.required"}},
		{name: "email invalid", edit: func(f *Form) { f.Email = "test@localhost" },
			field: "email", want: intake.Problem{Key: "email.invalid"}},
		{name: "email with a display name", edit: func(f *Form) { f.Email = "Test Testov <test@example.com>" },
			field: "email", want: intake.Problem{Key: "email.invalid"}},
		{name: "two emails with a comma", edit: func(f *Form) { f.Email = "test@example.com, test2@example.com" },
			field: "email", want: intake.Problem{Key: "email.multiple"}},
		{name: "two emails with a space", edit: func(f *Form) { f.Email = "test@example.com test2@example.com" },
			field: "email", want: intake.Problem{Key: "email.multiple"}},
		{name: "email of 255 characters", edit: func(f *Form) { f.Email = emailOfLength(255) },
			field: "email", want: intake.Problem{Key: "email.too_long"}},
		{name: "tax id of 11 digits", edit: func(f *Form) { f.TaxID = "21084000406" },
			field: "tax_id", want: intake.Problem{Key: "taxid.length"}},
		{name: "tax id with a letter", edit: func(f *Form) { f.TaxID = "21084000406O" },
			field: "tax_id", want: intake.Problem{Key: "taxid.digits"}},
		{name: "tax id with a typo", edit: func(f *Form) { f.TaxID = "210840004065" },
			field: "tax_id", want: intake.Problem{Key: "taxid.checksum"}},
		{name: "IIN birth month 13", edit: func(f *Form) { f.TaxID = mustCheckDigit("85131530012") },
			field: "tax_id", want: intake.Problem{Key: "taxid.date"}},
		{name: "IIN born tomorrow by the validator's clock", edit: func(f *Form) { f.TaxID = mustCheckDigit("25061650012") },
			field: "tax_id", want: intake.Problem{Key: "taxid.date"}},
		{name: "IIN century digit 7", edit: func(f *Form) { f.TaxID = mustCheckDigit("85041570012") },
			field: "tax_id", want: intake.Problem{Key: "taxid.century"}},
		{name: "5th digit 7: neither IIN nor BIN", edit: func(f *Form) { f.TaxID = mustCheckDigit("85047530012") },
			field: "tax_id", want: intake.Problem{Key: "taxid.kind"}},
		{name: "BIN attribute 4", edit: func(f *Form) { f.TaxID = mustCheckDigit("21084400123") },
			field: "tax_id", want: intake.Problem{Key: "taxid.bin_attribute"}},
		{name: "legal entity gives an IIN", edit: func(f *Form) { f.TaxID = testIIN },
			field: "tax_id", want: intake.Problem{Key: "taxid.not_bin"}},
		{name: "legal entity gives a joint IE BIN", edit: func(f *Form) { f.TaxID = jointIEBIN },
			field: "tax_id", want: intake.Problem{Key: "taxid.joint_ie_bin"}},
		{name: "sole proprietor gives a legal entity's BIN",
			edit:  func(f *Form) { f.EntityType, f.TaxID = "sole_proprietor", companyBIN },
			field: "tax_id", want: intake.Problem{Key: "taxid.not_sole_proprietor"}},
		{name: "tax id of 21 characters", edit: func(f *Form) { f.TaxID = "2108 4000 4064 0000 0" },
			field: "tax_id", want: intake.Problem{Key: "field.too_long", Args: []any{20}}},
		{name: "unknown product", edit: func(f *Form) { f.Products = []string{"acquiring", "crypto"} },
			field: "products", want: intake.Problem{Key: "products.unknown"}},
		{name: "product in capitals", edit: func(f *Form) { f.Products = []string{"ACQUIRING"} },
			field: "products", want: intake.Problem{Key: "products.unknown"}},
		{name: "empty product", edit: func(f *Form) { f.Products = []string{""} },
			field: "products", want: intake.Problem{Key: "products.unknown"}},
		{name: "21 products", edit: func(f *Form) { f.Products = strings.Fields(strings.Repeat("pos ", 21)) },
			field: "products", want: intake.Problem{Key: "products.unknown"}},
		{name: "lang de", edit: func(f *Form) { f.Lang = "de" },
			field: "lang", want: intake.Problem{Key: "lang.invalid"}},
		{name: "no consent to processing", edit: func(f *Form) { f.ConsentProcessing = false },
			field: "consent_processing", want: intake.Problem{Key: "consent_processing.required"}},
		{name: "message of 2001 characters", edit: func(f *Form) { f.Message = strings.Repeat("Қ", 2001) },
			field: "message", want: intake.Problem{Key: "field.too_long", Args: []any{2000}}},
		{name: "message with a NUL", edit: func(f *Form) { f.Message = "Hello\x00" },
			field: "message", want: intake.Problem{Key: "field.invalid"}},
		{name: "page url with an escape", edit: func(f *Form) { f.PageURL = "https://paymtech.example/\x1b[2J" },
			field: "page_url", want: intake.Problem{Key: "field.invalid"}},
		{name: "page url of 2001 characters", edit: func(f *Form) { f.PageURL = "https://paymtech.example/" + strings.Repeat("a", 1976) },
			field: "page_url", want: intake.Problem{Key: "field.too_long", Args: []any{2000}}},
		{name: "timezone of 65 characters", edit: func(f *Form) { f.Timezone = strings.Repeat("A", 65) },
			field: "timezone", want: intake.Problem{Key: "field.too_long", Args: []any{64}}},
		{name: "utm source of 201 characters", edit: func(f *Form) { f.UTMSource = strings.Repeat("g", 201) },
			field: "utm_source", want: intake.Problem{Key: "field.too_long", Args: []any{200}}},
		{name: "utm medium with a control character", edit: func(f *Form) { f.UTMMedium = "c\x08pc" },
			field: "utm_medium", want: intake.Problem{Key: "field.invalid"}},
		{name: "utm campaign of 201 characters", edit: func(f *Form) { f.UTMCampaign = strings.Repeat("s", 201) },
			field: "utm_campaign", want: intake.Problem{Key: "field.too_long", Args: []any{200}}},
		{name: "redirect url of 2001 characters", edit: func(f *Form) { f.RedirectURL = "https://paymtech.example/" + strings.Repeat("a", 1976) },
			field: "redirect_url", want: intake.Problem{Key: "field.too_long", Args: []any{2000}}},
	}
	v := newTestValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := validForm()
			tt.edit(&f)
			sub, fields := v.Validate(f)
			if sub != nil {
				t.Errorf("Validate returned a Submission with the errors")
			}
			want := intake.FieldErrors{tt.field: tt.want}
			if !reflect.DeepEqual(fields, want) {
				t.Errorf("Validate errors = %#v, want %#v", fields, want)
			}
			for _, p := range fields {
				checkCatalogue(t, p)
			}
		})
	}
}

// TestValidateReportsEveryField checks that the problems of all fields come
// back at once, so the person corrects the form in one go.
func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		form Form
		want intake.FieldErrors
	}{
		{name: "empty form", form: Form{}, want: intake.FieldErrors{
			"entity_type":        {Key: "field.required"},
			"phone":              {Key: "field.required"},
			"email":              {Key: "field.required"},
			"consent_processing": {Key: "consent_processing.required"},
		}},
		{name: "several mistakes", form: Form{EntityType: "legal_entity", Phone: "call me", Email: "a@b@c.kz",
			TaxID: testIIN, Products: []string{"pos", "crypto", "loans"}, Lang: "de", ConsentProcessing: true},
			want: intake.FieldErrors{
				"phone":    {Key: "phone.invalid"},
				"email":    {Key: "email.invalid"},
				"tax_id":   {Key: "taxid.not_bin"},
				"products": {Key: "products.unknown"},
				"lang":     {Key: "lang.invalid"},
			}},
	}
	v := newTestValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub, fields := v.Validate(tt.form)
			if sub != nil {
				t.Errorf("Validate returned a Submission with the errors")
			}
			if !reflect.DeepEqual(fields, tt.want) {
				t.Errorf("Validate errors = %#v, want %#v", fields, tt.want)
			}
			for _, p := range fields {
				checkCatalogue(t, p)
			}
		})
	}
}

// TestValidateKeepsWhatWasTyped checks that matching forms (Fold, the email
// key) never replace what the person typed: the CRM and the emails show the
// name and address as written.
func TestValidateKeepsWhatWasTyped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, typedName, typedEmail string
		wantName, wantEmail         string
	}{
		{name: "Latin schwa and double space", typedName: "  Əлия  Testova ", typedEmail: " Test@Example.COM ",
			wantName: "Əлия  Testova", wantEmail: "Test@Example.COM"},
		{name: "Latin look-alikes in a Cyrillic word", typedName: "ТОО Aлмaты Test", typedEmail: "test@Пример.kz",
			wantName: "ТОО Aлмaты Test", wantEmail: "test@Пример.kz"},
	}
	v := newTestValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := validForm()
			f.Name, f.Email = tt.typedName, tt.typedEmail
			sub, fields := v.Validate(f)
			if fields != nil {
				t.Fatalf("Validate rejected the form: %v", fields)
			}
			if sub.Name != tt.wantName {
				t.Errorf("Name = %q, want %q as typed", sub.Name, tt.wantName)
			}
			if sub.Email != tt.wantEmail {
				t.Errorf("Email = %q, want %q as typed", sub.Email, tt.wantEmail)
			}
			if sub.Name == Fold(sub.Name) {
				t.Errorf("case is broken: Name %q already equals its folded form", sub.Name)
			}
		})
	}
}

// TestValidateLeavesCallersFormAlone: Validate takes the Form by value, so
// the caller's Form — re-shown on the page, or shared between goroutines —
// must come back as it was. Trimming Products in place once broke this, as
// the slice shares its array with the caller's.
func TestValidateLeavesCallersFormAlone(t *testing.T) {
	t.Parallel()
	f := validForm()
	f.Products = []string{" acquiring ", "pos "}
	newTestValidator().Validate(f)
	if want := []string{" acquiring ", "pos "}; !reflect.DeepEqual(f.Products, want) {
		t.Errorf("caller's Products = %q after Validate, want %q", f.Products, want)
	}
}

func TestFlagUnmarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json    string
		want    Flag
		wantErr bool
	}{
		{json: `true`, want: true},
		{json: `false`, want: false},
		{json: `"on"`, want: true},
		{json: `"ON"`, want: true},
		{json: `"true"`, want: true},
		{json: `"1"`, want: true},
		{json: `" on "`, want: true},
		{json: `1`, want: true},
		{json: `1.0`, want: true},
		{json: `0`, want: false},
		{json: `2`, want: false},
		{json: `null`, want: false},
		{json: `"no"`, want: false},
		{json: `"off"`, want: false},
		{json: `"false"`, want: false},
		{json: `""`, want: false},
		{json: `{"checked":true}`, wantErr: true},
		{json: `[true]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			t.Parallel()
			var f Form
			err := json.Unmarshal([]byte(`{"consent_processing":`+tt.json+`,"email":"test@example.com"}`), &f)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal accepted %s as %v", tt.json, f.ConsentProcessing)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if f.ConsentProcessing != tt.want {
				t.Errorf("consent_processing %s = %v, want %v", tt.json, f.ConsentProcessing, tt.want)
			}
			if f.Email != "test@example.com" {
				t.Errorf("the field after the flag was lost: email = %q", f.Email)
			}
		})
	}
}

// TestFlagNullClears pins that null switches a flag off rather than leaving
// the value before it: a later null must not keep an earlier true.
func TestFlagNullClears(t *testing.T) {
	t.Parallel()
	f := Flag(true)
	if err := f.UnmarshalJSON([]byte("null")); err != nil {
		t.Fatalf("UnmarshalJSON(null): %v", err)
	}
	if f {
		t.Errorf("null left the flag true")
	}
}

func TestParseFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Flag
	}{
		{in: "on", want: true},
		{in: "On", want: true},
		{in: "true", want: true},
		{in: "TRUE", want: true},
		{in: "1", want: true},
		{in: " on\n", want: true},
		{in: "", want: false},
		{in: "0", want: false},
		{in: "off", want: false},
		{in: "false", want: false},
		{in: "no", want: false},
		{in: "yes", want: false}, // the contract lists on|true|1 only
		{in: "11", want: false},
		{in: "checked", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := ParseFlag(tt.in); got != tt.want {
				t.Errorf("ParseFlag(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		a, b     func(*Form)
		wantSame bool
	}{
		{name: "Latin schwa and Kazakh schwa in the name", wantSame: true,
			a: func(f *Form) { f.Name = "Əлия Testova" }, b: func(f *Form) { f.Name = "Әлия Testova" }},
		{name: "Latin look-alikes and spacing in the name", wantSame: true,
			a: func(f *Form) { f.Name = "ТОО  Aлмaты" }, b: func(f *Form) { f.Name = "тоо алматы" }},
		{name: "two spellings of one phone", wantSame: true,
			a: func(f *Form) { f.Phone = "8 701 000 00 00" }, b: func(f *Form) { f.Phone = "+7 (701) 000-00-00" }},
		{name: "two spellings of one email", wantSame: true,
			a: func(f *Form) { f.Email = "Test@Пример.KZ" }, b: func(f *Form) { f.Email = "test@xn--e1afmkfd.kz" }},
		{name: "tax id with and without spaces", wantSame: true,
			a: func(f *Form) { f.TaxID = "2108 4000 4064" }, b: func(f *Form) { f.TaxID = companyBIN }},
		{name: "a product listed twice", wantSame: true,
			a: func(f *Form) { f.Products = []string{"acquiring", "pos", "pos"} }, b: func(f *Form) { f.Products = []string{"acquiring", "pos"} }},
		{name: "page metadata is not the request", wantSame: true,
			a: func(f *Form) { f.UTMSource, f.PageURL = "google", "https://paymtech.example/a" },
			b: func(f *Form) { f.UTMSource, f.PageURL = "facebook", "https://paymtech.example/b" }},
		{name: "a product more",
			a: func(f *Form) { f.Products = []string{"acquiring", "pos"} }, b: func(f *Form) { f.Products = []string{"acquiring", "pos", "payouts"} }},
		{name: "another product",
			a: func(f *Form) { f.Products = []string{"acquiring"} }, b: func(f *Form) { f.Products = []string{"payouts"} }},
		{name: "marketing consent differs",
			a: func(f *Form) { f.ConsentMarketing = true }, b: func(f *Form) { f.ConsentMarketing = false }},
		{name: "another phone",
			a: func(f *Form) { f.Phone = "+77010000000" }, b: func(f *Form) { f.Phone = "+77010000001" }},
		{name: "another name",
			a: func(f *Form) { f.Name = "Әлия" }, b: func(f *Form) { f.Name = "Әлима" }},
		{name: "another entity type",
			a: func(f *Form) { f.EntityType, f.TaxID = "legal_entity", farmBIN }, b: func(f *Form) { f.EntityType, f.TaxID = "sole_proprietor", farmBIN }},
		{name: "another message",
			a: func(f *Form) { f.Message = "acquiring" }, b: func(f *Form) { f.Message = "payouts" }},
		{name: "another lang",
			a: func(f *Form) { f.Lang = "kk" }, b: func(f *Form) { f.Lang = "ru" }},
		{name: "text moved between name and message",
			a: func(f *Form) { f.Name, f.Message = "Test Testov", "" }, b: func(f *Form) { f.Name, f.Message = "Test", "Testov" }},
	}
	v := newTestValidator()
	fingerprint := func(t *testing.T, edit func(*Form)) string {
		t.Helper()
		f := validForm()
		edit(&f)
		sub, fields := v.Validate(f)
		if fields != nil {
			t.Fatalf("Validate rejected the form: %v", fields)
		}
		return Fingerprint(sub)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := fingerprint(t, tt.a), fingerprint(t, tt.b)
			if (a == b) != tt.wantSame {
				t.Errorf("fingerprints %q and %q: same = %v, want %v", a, b, a == b, tt.wantSame)
			}
		})
	}
}

// formFields are the names a FieldErrors key may take: the Form's JSON names.
var formFields = func() map[string]bool {
	m := map[string]bool{}
	ft := reflect.TypeFor[Form]()
	for i := range ft.NumField() {
		m[ft.Field(i).Tag.Get("json")] = true
	}
	return m
}()

// FuzzValidate checks that Validate never panics, that it answers with a
// Submission or with problems the catalogue can show, and that an accepted
// Submission holds values in their stored forms.
func FuzzValidate(f *testing.F) {
	type seed struct {
		entity, name, phone, email, taxID, product, message, lang string
		consent, marketing                                        bool
	}
	for _, s := range []seed{
		{"legal_entity", "ТОО «Test Testov»", "+7 701 000 00 00", "test@example.com", companyBIN, "acquiring", "Сәлем", "kk", true, true},
		{"sole_proprietor", "Əлия Testova", "8 701 000 00 00", "Test@Пример.KZ", testIIN, "pos", "", "ru", true, false},
		{"sole_proprietor", "", "87172500000", "test+leads@example.com", farmBIN, "", "", "", true, false},
		{"Legal_Entity", " Test ", " 7010000000 ", " test@example.com ", " 2108 4000 4064 ", " payouts ", "\r\n", "EN", true, false},
		{"legal_entity", "Test\x00", "+7 000 000 00 00", "a@b.kz, c@d.kz", jointIEBIN, "crypto", "\xff", "de", false, false},
		{"", "", "", "", "", "", "", "", false, false},
		{"legal_entity", "Test", "+44 20 7946 0000", "a@b@c.kz", "21084000406O", "pos", "hi", "en", true, false},
		{"legal_entity", "Test", "+7 701 OOO OO OO", "test@localhost", "000000000000", "pos", "hi", "en", true, false},
	} {
		f.Add(s.entity, s.name, s.phone, s.email, s.taxID, s.product, s.message, s.lang, s.consent, s.marketing)
	}
	v := newTestValidator()
	f.Fuzz(func(t *testing.T, entity, name, phone, email, taxID, product, message, lang string, consent, marketing bool) {
		form := Form{EntityType: entity, Name: name, Phone: phone, Email: email, TaxID: taxID,
			Message: message, Lang: lang, ConsentProcessing: Flag(consent), ConsentMarketing: Flag(marketing)}
		if product != "" {
			form.Products = []string{product}
		}
		sub, fields := v.Validate(form)
		if (sub == nil) == (fields == nil) {
			t.Fatalf("Validate = %v, %v: want exactly one of a Submission and problems", sub, fields)
		}
		if fields != nil {
			for name, p := range fields {
				if !formFields[name] {
					t.Errorf("problem reported for %q, not a form field", name)
				}
				checkCatalogue(t, p)
			}
			return
		}
		if !strings.HasPrefix(sub.Phone, "+") || strings.Trim(sub.Phone[1:], "0123456789") != "" || len(sub.Phone) > 16 {
			t.Errorf("accepted phone %q is not E.164", sub.Phone)
		}
		if again, err := NormalizePhone(sub.Phone); err != nil || again != sub.Phone {
			t.Errorf("NormalizePhone(%q) = %q, %v: E.164 must normalise to itself", sub.Phone, again, err)
		}
		if sub.EmailKey == "" {
			t.Errorf("accepted email %q has an empty key", sub.Email)
		}
		if sub.TaxID != "" && (len(sub.TaxID) != 12 || strings.Trim(sub.TaxID, "0123456789") != "") {
			t.Errorf("accepted tax id %q is not 12 digits", sub.TaxID)
		}
		if sub.EntityType != intake.LegalEntity && sub.EntityType != intake.SoleProprietor {
			t.Errorf("accepted entity type %q", sub.EntityType)
		}
		if n := utf8.RuneCountInString(sub.Name); n > 200 || !utf8.ValidString(sub.Name) {
			t.Errorf("accepted name of %d characters, valid UTF-8 %v", n, utf8.ValidString(sub.Name))
		}
		if !consent {
			t.Errorf("accepted without consent to processing")
		}
		_ = Fingerprint(sub) // must not panic
	})
}

// One-line fields refuse line breaks (they end up in CRM titles and headers);
// the message keeps them.
func TestValidateLineBreaks(t *testing.T) {
	t.Parallel()
	v := newTestValidator()
	f := validForm()
	f.Name = "Тест\nТестов"
	if _, fields := v.Validate(f); fields["name"].Key != "name.line_break" {
		t.Fatalf("name with a line break: %v, want name.line_break", fields)
	}
	f = validForm()
	f.UTMSource = "a\rb"
	if _, fields := v.Validate(f); fields["utm_source"].Key != "field.invalid" {
		t.Fatalf("utm_source with a line break: %v, want field.invalid", fields)
	}
	f = validForm()
	f.Message = "первая строка\nвторая\tстрока"
	if _, fields := v.Validate(f); fields != nil {
		t.Fatalf("multi-line message refused: %v", fields)
	}
}

func TestFingerprintIgnoresProductOrder(t *testing.T) {
	t.Parallel()
	a, b := &intake.Submission{Products: []string{"pos", "acquiring"}}, &intake.Submission{Products: []string{"acquiring", "pos"}}
	if Fingerprint(a) != Fingerprint(b) {
		t.Fatal("the same products in another order give another fingerprint")
	}
	if a.Products[0] != "pos" {
		t.Fatal("fingerprint reordered the submission's products")
	}
}

// TestValidateRefusesWhatTheMailerRefuses: the name is every email's display
// name and the address where they go, so intake refuses, with a message
// that says what to fix, whatever the mailable rule (mail.CheckName,
// mail.CheckAddress) would refuse at send time — and lets through ordinary
// Kazakh and Russian names and IDN addresses that fit.
func TestValidateRefusesWhatTheMailerRefuses(t *testing.T) {
	t.Parallel()
	ya := func(n int) string { return strings.Repeat("я", n) } // 57 are 63 bytes in A-label form, 58 are 64
	tests := []struct {
		name  string
		edit  func(*Form)
		field string // "" when the form is valid
		key   string
	}{
		{"name with a line separator", func(f *Form) { f.Name = "Тест\u2028Тестов" }, "name", "name.line_break"},
		{"name with a paragraph separator", func(f *Form) { f.Name = "Тест\u2029Тестов" }, "name", "name.line_break"},
		{"name with CR", func(f *Form) { f.Name = "Тест\rТестов" }, "name", "name.line_break"},
		{"name with LF", func(f *Form) { f.Name = "Тест\nТестов" }, "name", "name.line_break"},
		{"name with NUL", func(f *Form) { f.Name = "Тест\x00Тестов" }, "name", "name.invalid"},
		{"name with an escape", func(f *Form) { f.Name = "Тест\x1bТестов" }, "name", "name.invalid"},
		{"name with a C1 control", func(f *Form) { f.Name = "Тест\u0085Тестов" }, "name", "name.invalid"},
		{"local part of 65", func(f *Form) { f.Email = strings.Repeat("t", 65) + "@example.com" }, "email", "email.local_too_long"},
		{"Cyrillic local part of 33 letters (66 bytes)", func(f *Form) { f.Email = strings.Repeat("т", 33) + "@example.kz" }, "email", "email.local_too_long"},
		{"domain label of 64", func(f *Form) { f.Email = "test@" + strings.Repeat("a", 64) + ".kz" }, "email", "email.label_too_long"},
		{"IDN label of 58 letters, 64 in A-label form", func(f *Form) { f.Email = "test@" + ya(58) + ".kz" }, "email", "email.label_too_long"},
		{"IDN address of 236 characters, 260 bytes in A-label form", func(f *Form) {
			f.Email = "test@" + strings.Join([]string{ya(57), ya(57), ya(57), ya(57)}, ".")
		}, "email", "email.too_long_encoded"},
		{"IDN address of 255 bytes in A-label form, 198 characters", func(f *Form) {
			f.Email = strings.Repeat("t", 60) + "@" + strings.Join([]string{ya(57), ya(57), ya(57)}, ".") + ".kz"
		}, "email", "email.too_long_encoded"},

		{"Kazakh name", func(f *Form) { f.Name = "Әлия Нұрланқызы, ЖШС «Сынақ»" }, "", ""},
		{"Russian name", func(f *Form) { f.Name = "ТОО «Тест Тестов»" }, "", ""},
		{"name of quotes and encoded-word look-alikes", func(f *Form) { f.Name = `=?utf-8?q?Test?= "Тест" \Тестов\` }, "", ""},
		{"local part of 64", func(f *Form) { f.Email = strings.Repeat("t", 64) + "@example.com" }, "", ""},
		{"domain label of 63", func(f *Form) { f.Email = "test@" + strings.Repeat("a", 63) + ".kz" }, "", ""},
		{"IDN label of 63 bytes in A-label form", func(f *Form) { f.Email = "test@" + ya(57) + ".kz" }, "", ""},
		{"IDN address of 254 bytes in A-label form", func(f *Form) {
			f.Email = strings.Repeat("t", 59) + "@" + strings.Join([]string{ya(57), ya(57), ya(57)}, ".") + ".kz" // 59+1+3*63+2+3
		}, "", ""},
	}
	v := newTestValidator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := validForm()
			tt.edit(&f)
			sub, fields := v.Validate(f)
			if tt.field == "" {
				if fields != nil || sub == nil {
					t.Fatalf("Validate refused: %v", fields)
				}
				if sub.Name != f.Name {
					t.Errorf("name stored as %q, want it as typed", sub.Name)
				}
				return
			}
			want := intake.FieldErrors{tt.field: {Key: tt.key}}
			if !reflect.DeepEqual(fields, want) {
				t.Fatalf("Validate errors = %#v, want %#v", fields, want)
			}
			checkCatalogue(t, fields[tt.field])
		})
	}
}

// The new messages say what to fix in every language, and each differs from
// the general one it refines.
func TestMailableMessagesAreSpecific(t *testing.T) {
	t.Parallel()
	cats, err := catalogues()
	if err != nil {
		t.Fatal(err)
	}
	refines := map[string]string{"name.line_break": "name.invalid", "email.local_too_long": "email.invalid",
		"email.label_too_long": "email.invalid", "email.too_long_encoded": "email.too_long"}
	for key, general := range refines {
		for lang, m := range cats {
			if m[key] == "" || m[key] == m[general] {
				t.Errorf("%s %q is %q: missing, or no more specific than %q", lang, key, m[key], general)
			}
		}
	}
	for _, key := range []string{"email.local_too_long", "email.label_too_long", "email.too_long_encoded"} {
		for lang, m := range cats {
			n := map[string]string{"email.local_too_long": "64", "email.label_too_long": "63", "email.too_long_encoded": "254"}[key]
			if !strings.Contains(m[key], n) {
				t.Errorf("%s %q does not name the limit %s", lang, key, n)
			}
		}
	}
}
