package templates

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/paymtech/leadgate/intake/taxid"
)

// requiredKeys are the keys other packages use by name (field errors, tax ID
// codes, answers, products, entity types). Renaming one breaks them.
var requiredKeys = []string{
	"field.required", "field.too_long", "field.invalid", "entity_type.invalid",
	"name.invalid", "phone.invalid", "phone.too_long", "email.invalid",
	"email.too_long", "email.multiple", "products.unknown", "lang.invalid",
	"consent_processing.required", "redirect_url.forbidden", "website.filled",
	"idempotency.reused",
	"taxid.length", "taxid.digits", "taxid.checksum", "taxid.date",
	"taxid.century", "taxid.kind", "taxid.bin_type", "taxid.bin_attribute",
	"taxid.not_bin", "taxid.joint_ie_bin", "taxid.not_sole_proprietor",
	"error.bad_request", "error.too_large", "error.unsupported_type",
	"error.rate_limited", "error.unavailable", "error.forbidden_origin",
	"form.has_errors",
	"product.acquiring", "product.payment_links", "product.recurring",
	"product.payouts", "product.pos",
	"entity.legal_entity", "entity.sole_proprietor",
}

// sameEverywhere are the keys whose text is legitimately identical in all
// languages; any other identical text is an untranslated copy.
var sameEverywhere = map[string]bool{
	"switcher.kk": true, "switcher.ru": true, "switcher.en": true,
	"form.phone_placeholder": true,
	"form.phone":             true, // "Телефон" in kk and ru
	"product.acquiring":      true, // "Интернет-эквайринг" in kk and ru
}

// readCatalogueFile decodes a catalogue file token by token, because
// json.Unmarshal silently keeps the last of two equal keys.
func readCatalogueFile(t *testing.T, l Lang) map[string]string {
	t.Helper()
	raw, err := messageFiles.ReadFile("messages/" + string(l) + ".json")
	if err != nil {
		t.Fatalf("read %s: %v", l, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s.json: not an object: %v %v", l, tok, err)
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s.json: %v", l, err)
		}
		key := tok.(string)
		var value string
		if err := dec.Decode(&value); err != nil {
			t.Fatalf("%s.json: key %q: value is not a string: %v", l, key, err)
		}
		if _, dup := m[key]; dup {
			t.Errorf("%s.json: key %q appears twice", l, key)
		}
		m[key] = value
	}
	return m
}

func TestCatalogueFilesParity(t *testing.T) {
	t.Parallel()
	files := map[Lang]map[string]string{}
	for _, l := range languages {
		files[l] = readCatalogueFile(t, l)
		if len(files[l]) == 0 {
			t.Fatalf("%s.json is empty", l)
		}
	}
	for _, l := range languages {
		for key, text := range files[l] {
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s: %q is empty", l, key)
			}
			for _, other := range languages {
				if _, ok := files[other][key]; !ok {
					t.Errorf("%q is in %s.json but not in %s.json", key, l, other)
				}
			}
		}
	}
}

func TestRequiredKeysInEveryLanguage(t *testing.T) {
	t.Parallel()
	for _, l := range languages {
		for _, key := range requiredKeys {
			if _, ok := messages[l][key]; !ok {
				t.Errorf("%s: required key %q is missing", l, key)
			}
		}
	}
}

// Every code the taxid package can report must have a text, since intake
// shows them as "taxid.<code>".
func TestTaxIDCodesHaveMessages(t *testing.T) {
	t.Parallel()
	codes := []string{
		taxid.CodeLength, taxid.CodeDigits, taxid.CodeChecksum, taxid.CodeDate,
		taxid.CodeCentury, taxid.CodeKind, taxid.CodeBINAttribute,
		taxid.CodeNotBIN, taxid.CodeJointIEBIN, taxid.CodeNotSoleProprietor,
	}
	for _, l := range languages {
		for _, c := range codes {
			if _, ok := messages[l]["taxid."+c]; !ok {
				t.Errorf("%s: no message for taxid code %q", l, c)
			}
		}
	}
}

// verbPattern matches a fmt verb with its flags, width and precision.
var verbPattern = regexp.MustCompile(`%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]`)

// verbs lists the fmt verbs of a text, "%%" excluded.
func verbs(text string) []string {
	var vs []string
	for _, v := range verbPattern.FindAllString(text, -1) {
		if v != "%%" {
			vs = append(vs, v)
		}
	}
	return vs
}

// A key is formatted with the same arguments whatever the language, so its
// verbs must agree; a text without verbs is returned unformatted, so it must
// not contain a '%' that would show as written.
func TestCatalogueVerbsAgree(t *testing.T) {
	t.Parallel()
	for key, ruText := range messages[RU] {
		want := verbs(ruText)
		for _, l := range languages {
			text := messages[l][key]
			got := verbs(text)
			if !slices.Equal(got, want) {
				t.Errorf("%s %q has verbs %q, ru has %q", l, key, got, want)
			}
			if len(got) == 0 && strings.Contains(text, "%") {
				t.Errorf("%s %q has a %% but no verbs: it would show as written", l, key)
			}
		}
	}
}

func TestCatalogueTranslated(t *testing.T) {
	t.Parallel()
	for key, ruText := range messages[RU] {
		for _, l := range []Lang{KK, EN} {
			if messages[l][key] == ruText && !sameEverywhere[key] {
				t.Errorf("%s %q is the same as ru: untranslated?", l, key)
			}
		}
	}
}

// mixedScriptWords returns the words of s that mix Cyrillic and Latin
// letters — "əкімшілігі" with a Latin schwa, "кoд" with a Latin o — and any
// Latin schwa, which Kazakh in Cyrillic never uses (the right letter is
// U+04D9 ә).
func mixedScriptWords(s string) []string {
	var bad []string
	words := strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r)
	})
	for _, w := range words {
		var cyrillic, latin bool
		for _, r := range w {
			cyrillic = cyrillic || unicode.Is(unicode.Cyrillic, r)
			latin = latin || unicode.Is(unicode.Latin, r)
		}
		if cyrillic && latin || strings.ContainsAny(w, "əƏ") {
			bad = append(bad, w)
		}
	}
	return bad
}

func TestMixedScriptWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"Сайт əкімшілігі", []string{"əкімшілігі"}}, // Latin schwa U+0259, as in the policy
		{"Сайт әкімшілігі", nil},                    // Cyrillic schwa U+04D9
		{"мəлімет", []string{"мəлімет"}},            // schwa inside a word
		{"Бiздiң", []string{"Бiздiң"}},              // Latin i for Cyrillic і
		{"Біздің", nil},                             // Cyrillic і U+0456
		{"кoд", []string{"кoд"}},                    // Latin o
		{"«PaymTech» ЖШС-ке, IP-мекенжай", nil},     // Latin and Cyrillic words side by side
		{"cookies-тен POS-терминалдар", nil},        // hyphen separates the scripts
		{"Ə", []string{"Ə"}},                        // a lone capital schwa
		{"English, Русский, Қазақша", nil},          // whole words in one script each
		{"ҚҰПИЯЛЫЛЫҚ ҮӨҢҒҺІ", nil},                  // all the Kazakh capitals
		{"кaзақ", []string{"кaзақ"}},                // Latin a
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := mixedScriptWords(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("mixedScriptWords(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// The privacy policy is typed with Latin look-alikes (ə for ә); copying from
// it must not bring them into the catalogue. Russian gets the same check
// because Latin a/c/e/o/p inside Russian words are just as invisible.
func TestCatalogueNoLatinLookalikes(t *testing.T) {
	t.Parallel()
	for _, l := range []Lang{KK, RU} {
		for key, text := range messages[l] {
			if bad := mixedScriptWords(text); len(bad) > 0 {
				t.Errorf("%s %q: words mixing Latin and Cyrillic letters: %q", l, key, bad)
			}
		}
	}
}

// Kazakh texts must use the Kazakh letters; a kk text that reads as Russian
// is caught by TestCatalogueTranslated only when it equals the ru one.
func TestKazakhUsesKazakhLetters(t *testing.T) {
	t.Parallel()
	var withKazakh int
	for _, text := range messages[KK] {
		if strings.ContainsAny(text, "әғқңөұүһіӘҒҚҢӨҰҮҺІ") {
			withKazakh++
		}
	}
	// Short texts such as "Телефон" need none, but most sentences do.
	if n := len(messages[KK]); withKazakh*4 < n*3 {
		t.Errorf("only %d of %d kk texts use a Kazakh letter", withKazakh, n)
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	c := catalogue{
		KK: {"both": "kk both", "kk.only": "тек kk"},
		RU: {"both": "ru both", "ru.en": "ru %d", "ru.only": "только ru"},
		EN: {"both": "en both", "ru.en": "en %d", "en.only": "en only %s", "percent": "100%"},
	}
	tests := []struct {
		name string
		lang Lang
		key  string
		args []any
		want string
	}{
		{"own language", KK, "both", nil, "kk both"},
		{"missing in kk falls back to ru", KK, "ru.en", []any{7}, "ru 7"},
		{"missing in kk and ru falls back to en", KK, "en.only", []any{"x"}, "en only x"},
		{"missing everywhere returns the key", EN, "no.such.key", nil, "no.such.key"},
		{"other language's key is not used", EN, "kk.only", nil, "kk.only"},
		{"unknown language falls back to ru", Lang("de"), "both", nil, "ru both"},
		{"empty language falls back to ru", "", "ru.only", nil, "только ru"},
		{"no args returns the text as written", EN, "percent", nil, "100%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.message(tt.lang, tt.key, tt.args...); got != tt.want {
				t.Errorf("message(%q, %q) = %q, want %q", tt.lang, tt.key, got, tt.want)
			}
		})
	}
}

func TestMessageFormatsTooLong(t *testing.T) {
	t.Parallel()
	for _, l := range languages {
		got := Message(l, "field.too_long", 200)
		if !strings.Contains(got, "200") || strings.Contains(got, "%") {
			t.Errorf("%s: field.too_long with 200 = %q", l, got)
		}
	}
}

func TestProductLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lang Lang
		code string
		want string
	}{
		{EN, "acquiring", "Internet acquiring"},
		{RU, "pos", "POS-терминалы"},
		{KK, "payment_links", "Төлем сілтемелері"},
		{KK, "new_product", "new_product"}, // configured without a label
		{EN, "", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.lang)+"/"+tt.code, func(t *testing.T) {
			t.Parallel()
			if got := ProductLabel(tt.lang, tt.code); got != tt.want {
				t.Errorf("ProductLabel(%q, %q) = %q, want %q", tt.lang, tt.code, got, tt.want)
			}
		})
	}
}

// templateKey matches a catalogue lookup in a page template: {{.T "key"}}
// or {{$.T "key" …}}.
var templateKey = regexp.MustCompile(`\.T\s+"([^"]+)"`)

// referencedKeys collects the catalogue keys the package's own code and
// templates name literally, plus those it builds from lists (entity types,
// languages).
func referencedKeys(t *testing.T) map[string]string {
	t.Helper()
	keys := map[string]string{} // key → where it was found
	fset := token.NewFileSet()
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literal := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	for _, name := range sources {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var arg ast.Expr
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "Message" && len(call.Args) > 1 {
					arg = call.Args[1]
				}
			case *ast.SelectorExpr:
				if fn.Sel.Name == "T" && len(call.Args) > 0 {
					arg = call.Args[0]
				}
			}
			if arg == nil {
				return true
			}
			if key, ok := literal(arg); ok {
				keys[key] = fset.Position(call.Pos()).String()
			}
			return true
		})
	}
	pages, err := fs.Glob(pageFiles, "pages/*.html")
	if err != nil {
		t.Fatal(err)
	}
	consolePages, err := fs.Glob(consoleFiles, "console/*.html")
	if err != nil {
		t.Fatal(err)
	}
	mails, err := fs.Glob(pageFiles, "mail/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(pages, mails...) {
		raw, err := pageFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range templateKey.FindAllStringSubmatch(string(raw), -1) {
			keys[m[1]] = name
		}
	}
	for _, name := range consolePages {
		raw, err := consoleFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range templateKey.FindAllStringSubmatch(string(raw), -1) {
			keys[m[1]] = name
		}
	}
	// The console's handlers (intake/httpapi/console) build these from the
	// lead states and the statuses of its error pages.
	for _, st := range []string{"received", "routed", "review", "failed", "blocked"} {
		keys["console.state."+st] = "console states"
	}
	for _, k := range []string{"console.leads.bad_state", "console.leads.bad_since", "console.login.wrong", "console.lead.unnamed",
		"console.home.review", "console.home.failed", "console.lead.release", "console.lead.redrive",
		"console.notice.released", "console.notice.redriven", "console.nav.home", "console.nav.leads",
		"console.error.csrf.body", "console.error.origin.body", "console.error.metrics.body"} {
		keys[k] = "intake/httpapi/console"
	}
	// campaigns: marketing's pages (intake/httpapi/console/campaigns.go)
	// build these from campaign states, fail reasons, notices and languages.
	for _, st := range []string{"queued", "sending", "done", "cancelled"} {
		keys["console.campaign.state."+st] = "campaign states"
	}
	for _, r := range []string{"invalid_address", "invalid_name", "unreadable", "refused", "invalid_message", "unknown_outcome", "gave_up"} {
		keys["console.campaign.reason."+r] = "campaign fail reasons"
	}
	for _, k := range []string{"console.campaign.notice.queued", "console.campaign.notice.test", "console.campaign.notice.cancelled",
		"console.campaign.lang_kk", "console.campaign.lang_ru", "console.campaign.lang_en", "console.campaign.any",
		"console.campaign.everyone", "console.campaign.invalid", "console.nav.campaigns", "console.error.campaign_409.body"} {
		keys[k] = "intake/httpapi/console"
	}
	// end campaigns
	for _, code := range []string{"400", "403", "404", "409", "429", "500"} {
		keys["console.error."+code+".title"] = "console error pages"
		keys["console.error."+code+".body"] = "console error pages"
	}
	for _, e := range entityTypes {
		keys["entity."+e] = "entityTypes"
	}
	for _, l := range languages {
		keys["switcher."+string(l)] = "languages"
	}
	for _, unit := range []string{"days", "hours"} {
		for _, form := range []string{"one", "few", "many"} {
			keys["duration."+unit+"."+form] = "validFor"
		}
	}
	for _, purpose := range []string{PurposeOptin, PurposeUnsubscribe} {
		for _, k := range []string{"title", "ask", "button", "done_title", "done", "invalid_title", "invalid"} {
			keys[purpose+"."+k] = "confirmView.K"
		}
	}
	return keys
}

func TestReferencedKeysExist(t *testing.T) {
	t.Parallel()
	keys := referencedKeys(t)
	// The scan must see the keys we know are used, or it proves nothing.
	for _, known := range []string{"form.has_errors", "page.title", "consent.processing", "thanks.body", "entity.legal_entity",
		"mail.ack.subject", "mail.optin.button", "mail.footer.address", "confirm.invalid"} {
		if _, ok := keys[known]; !ok {
			t.Errorf("the scan did not find %q: it is broken", known)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		for _, l := range languages {
			if _, ok := messages[l][key]; !ok {
				t.Errorf("%s: key %q used at %s is missing", l, key, keys[key])
			}
		}
	}
}
