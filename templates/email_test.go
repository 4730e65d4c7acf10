package templates

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

const testConfirmURL = "https://leads.example.com/v1/optin/confirm?token=tok.en&lang=ru"

func testAck(lang Lang) AckEmail {
	return AckEmail{Lang: lang, RequestID: "01HTESTLEAD0000000000000000", EntityType: "sole_proprietor",
		Products: []string{"acquiring", "pos"}, PolicyURL: testPolicyURL}
}

func testOptin(lang Lang) OptinEmail {
	return OptinEmail{Lang: lang, ConfirmURL: testConfirmURL, ValidFor: 7 * 24 * time.Hour, PolicyURL: testPolicyURL}
}

// parseEmail parses an HTML body, failing the test if it does not parse.
func parseEmail(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse HTML body: %v", err)
	}
	return doc
}

// links returns the href of every anchor under n.
func links(n *html.Node) []string {
	var hrefs []string
	for _, a := range find(n, func(n *html.Node) bool { return n.Data == "a" }) {
		h, _ := attr(a, "href")
		hrefs = append(hrefs, h)
	}
	return hrefs
}

// footerTexts are what the shared layout must say in every email.
func footerTexts(lang Lang) []string {
	return []string{DefaultCompanyName, Message(lang, "mail.footer.address"), Message(lang, "consent.policy")}
}

// checkLayout checks what every email has: the subject as the HTML title,
// the language, the footer with the operator, address and policy link
// in both bodies, and inline styles only.
func checkLayout(t *testing.T, lang Lang, e Email, doc *html.Node) {
	t.Helper()
	if got, _ := attr(find(doc, func(n *html.Node) bool { return n.Data == "html" })[0], "lang"); got != string(lang) {
		t.Errorf("html lang = %q, want %q", got, lang)
	}
	if title := find(doc, func(n *html.Node) bool { return n.Data == "title" }); len(title) != 1 || text(title[0]) != e.Subject {
		t.Errorf("the HTML title is not the subject %q", e.Subject)
	}
	body := text(doc)
	for _, want := range append(footerTexts(lang), "47/79, 1") {
		if !strings.Contains(body, want) {
			t.Errorf("HTML body lacks %q", want)
		}
		if !strings.Contains(e.Text, want) {
			t.Errorf("text body lacks %q", want)
		}
	}
	if !slices.Contains(links(doc), testPolicyURL) {
		t.Errorf("HTML body does not link the policy: %q", links(doc))
	}
	if !strings.Contains(e.Text, testPolicyURL) {
		t.Error("text body lacks the policy URL")
	}
	// Mail clients drop <style> blocks and render tables inconsistently;
	// the layout uses inline styles on simple blocks.
	for _, tag := range []string{"style", "table", "script", "img"} {
		if n := find(doc, func(n *html.Node) bool { return n.Data == tag }); len(n) != 0 {
			t.Errorf("HTML body has %d <%s> elements", len(n), tag)
		}
	}
}

// checkFromCatalogue checks that every letter a person reads in e comes
// from the catalogue of lang or from extra (values such as the request
// ID and URLs; the company's name, which is configuration), so an email
// never mixes languages or hard-codes text.
func checkFromCatalogue(t *testing.T, lang Lang, e Email, doc *html.Node, extra ...string) {
	t.Helper()
	extra = append(extra, companyTexts(lang, DefaultCompanyName)...)
	for _, s := range visibleTexts(doc) {
		if left := stripCatalogue(s, lang, extra...); left != "" {
			t.Errorf("HTML text %q is not from the %s catalogue (left: %q)", s, lang, left)
		}
	}
	if left := stripCatalogue(e.Text, lang, extra...); left != "" {
		t.Errorf("the %s text body has text not from the catalogue: %q", lang, left)
	}
}

// companyTexts are the catalogue texts of emails that name the company,
// formatted with name, and name itself.
func companyTexts(lang Lang, name string) []string {
	return []string{name, Message(lang, "mail.ack.intro", name), Message(lang, "mail.optin.subject", name),
		Message(lang, "mail.optin.intro", name), Message(lang, "mail.campaign.why", name),
		Message(lang, "mail.breach.subject", name)}
}

func TestRenderAck(t *testing.T) {
	t.Parallel()
	seen := map[string]Lang{}
	for _, l := range languages {
		e, err := RenderAck(testAck(l))
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if e.Subject != Message(l, "mail.ack.subject") {
			t.Errorf("%s: subject = %q", l, e.Subject)
		}
		if other, dup := seen[e.Subject]; dup {
			t.Errorf("%s subject reads the same as %s", l, other)
		}
		seen[e.Subject] = l
		doc := parseEmail(t, e.HTML)
		checkLayout(t, l, e, doc)
		rights := Message(l, "mail.ack.rights", DefaultCompanyName, Message(l, "mail.footer.address"))
		wants := []string{
			Message(l, "mail.ack.intro", DefaultCompanyName), Message(l, "mail.ack.request_id"), "01HTESTLEAD0000000000000000",
			Message(l, "entity.sole_proprietor"), ProductLabel(l, "acquiring") + ", " + ProductLabel(l, "pos"),
			rights, Message(l, "mail.ack.not_you"),
		}
		for _, want := range wants {
			if !strings.Contains(text(doc), want) {
				t.Errorf("%s: HTML body lacks %q", l, want)
			}
			if !strings.Contains(e.Text, want) {
				t.Errorf("%s: text body lacks %q", l, want)
			}
		}
		// Transactional: the policy is the only link, and nothing speaks
		// of subscribing or unsubscribing.
		if got := links(doc); !slices.Equal(got, []string{testPolicyURL}) {
			t.Errorf("%s: links = %q, want the policy only", l, got)
		}
		for _, key := range []string{"mail.optin.unsubscribe", "consent.marketing", "confirm.done"} {
			if strings.Contains(e.Text, Message(l, key)) {
				t.Errorf("%s: the acknowledgement says %s", l, key)
			}
		}
		checkFromCatalogue(t, l, e, doc, "01HTESTLEAD0000000000000000", rights, testPolicyURL)
	}
	e, err := RenderAck(testAck(RU))
	if err != nil || e.Subject != "Мы получили вашу заявку" {
		t.Errorf("ru subject = %q, %v", e.Subject, err)
	}
	// The withdrawal route of policy section 9: a written request to the
	// company's address, or a reply.
	for _, want := range []string{"г. Алматы, пр. Аль-Фараби, 47/79, 1", "ответьте на это письмо", "раздел 9"} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("ru acknowledgement lacks %q", want)
		}
	}
}

func TestRenderAckWithoutProducts(t *testing.T) {
	t.Parallel()
	a := testAck(EN)
	a.Products = nil
	a.EntityType = "legal_entity"
	e, err := RenderAck(a)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Text, Message(EN, "mail.ack.products")) || strings.Contains(e.HTML, Message(EN, "mail.ack.products")) {
		t.Error("an empty product list is still labelled")
	}
	if !strings.Contains(e.Text, Message(EN, "entity.legal_entity")) {
		t.Error("the entity type is missing")
	}
}

func TestRenderAckRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*AckEmail)
	}{
		{"no language", func(a *AckEmail) { a.Lang = "" }},
		{"unknown language", func(a *AckEmail) { a.Lang = "de" }},
		{"unknown entity type", func(a *AckEmail) { a.EntityType = "individual" }},
		{"no entity type", func(a *AckEmail) { a.EntityType = "" }},
		{"no request ID", func(a *AckEmail) { a.RequestID = " \r\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := testAck(RU)
			tt.edit(&a)
			if e, err := RenderAck(a); err == nil || e != (Email{}) {
				t.Errorf("RenderAck = %+v, %v; want an error and no email", e, err)
			}
		})
	}
}

func TestRenderOptin(t *testing.T) {
	t.Parallel()
	seen := map[string]Lang{}
	for _, l := range languages {
		e, err := RenderOptin(testOptin(l))
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if e.Subject != Message(l, "mail.optin.subject", DefaultCompanyName) {
			t.Errorf("%s: subject = %q", l, e.Subject)
		}
		if other, dup := seen[e.Subject]; dup {
			t.Errorf("%s subject reads the same as %s", l, other)
		}
		seen[e.Subject] = l
		doc := parseEmail(t, e.HTML)
		checkLayout(t, l, e, doc)
		days, err := validFor(l, 7*24*time.Hour) // its wording is TestValidFor's
		if err != nil {
			t.Fatal(err)
		}
		valid := Message(l, "mail.optin.valid_for", days)
		for _, want := range []string{Message(l, "mail.optin.intro", DefaultCompanyName), valid, Message(l, "mail.optin.ignore"),
			Message(l, "mail.optin.unsubscribe")} {
			if !strings.Contains(text(doc), want) {
				t.Errorf("%s: HTML body lacks %q", l, want)
			}
			if !strings.Contains(e.Text, want) {
				t.Errorf("%s: text body lacks %q", l, want)
			}
		}
		// The button is a link to ConfirmURL labelled with the action.
		var button bool
		for _, a := range find(doc, func(n *html.Node) bool { return n.Data == "a" }) {
			if h, _ := attr(a, "href"); h == testConfirmURL && text(a) == Message(l, "mail.optin.button") {
				button = true
			}
		}
		if !button {
			t.Errorf("%s: no button linking the confirmation URL; links %q", l, links(doc))
		}
		if !strings.Contains(e.Text, "\n"+testConfirmURL+"\n") {
			t.Errorf("%s: the text body lacks the confirmation URL on its own line", l)
		}
		checkFromCatalogue(t, l, e, doc, valid, testConfirmURL, testPolicyURL)
	}
	e, err := RenderOptin(testOptin(RU))
	if err != nil || e.Subject != "Подтвердите подписку на новости PaymTech LLP" {
		t.Errorf("ru subject = %q, %v", e.Subject, err)
	}
	for _, want := range []string{"Ссылка действует 7 дней.", "подписка не будет оформлена"} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("ru opt-in lacks %q", want)
		}
	}
}

func TestRenderOptinRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*OptinEmail)
	}{
		{"unknown language", func(o *OptinEmail) { o.Lang = "KK" }},
		{"javascript link", func(o *OptinEmail) { o.ConfirmURL = "javascript:alert(1)//tok.en" }},
		{"mailto link", func(o *OptinEmail) { o.ConfirmURL = "mailto:test@example.com?tok.en" }},
		{"relative link", func(o *OptinEmail) { o.ConfirmURL = "/v1/optin/confirm?token=tok.en" }},
		{"no link", func(o *OptinEmail) { o.ConfirmURL = "" }},
		{"under an hour", func(o *OptinEmail) { o.ValidFor = 59 * time.Minute }},
		{"no validity", func(o *OptinEmail) { o.ValidFor = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := testOptin(EN)
			tt.edit(&o)
			e, err := RenderOptin(o)
			if err == nil || e != (Email{}) {
				t.Fatalf("RenderOptin = %+v, %v; want an error and no email", e, err)
			}
			// The link carries a token: it must not reach the logs.
			if strings.Contains(err.Error(), "tok.en") {
				t.Errorf("the error shows the link: %v", err)
			}
		})
	}
}

func TestValidFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d          time.Duration
		kk, ru, en string
	}{
		{7 * 24 * time.Hour, "7 күн", "7 дней", "7 days"},
		{48 * time.Hour, "2 күн", "2 дня", "2 days"},
		{36 * time.Hour, "36 сағат", "36 часов", "36 hours"},
		{24 * time.Hour, "1 күн", "1 день", "1 day"},
		{21 * 24 * time.Hour, "21 күн", "21 день", "21 days"},
		{22 * 24 * time.Hour, "22 күн", "22 дня", "22 days"},
		{11 * 24 * time.Hour, "11 күн", "11 дней", "11 days"},
		{time.Hour, "1 сағат", "1 час", "1 hour"},
		{2 * time.Hour, "2 сағат", "2 часа", "2 hours"},
		{25 * time.Hour, "25 сағат", "25 часов", "25 hours"},
		{90 * time.Minute, "1 сағат", "1 час", "1 hour"},                 // never more than the link has
		{48*time.Hour + time.Minute, "48 сағат", "48 часов", "48 hours"}, // not whole days
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			t.Parallel()
			for l, want := range map[Lang]string{KK: tt.kk, RU: tt.ru, EN: tt.en} {
				got, err := validFor(l, tt.d)
				if err != nil || got != want {
					t.Errorf("validFor(%s, %v) = %q, %v; want %q", l, tt.d, got, err, want)
				}
			}
		})
	}
	for _, d := range []time.Duration{0, -time.Hour, 59 * time.Minute} {
		if got, err := validFor(RU, d); err == nil {
			t.Errorf("validFor(%v) = %q, want an error", d, got)
		}
	}
}

func TestPluralForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lang Lang
		n    int
		want string
	}{
		{RU, 1, "one"}, {RU, 21, "one"}, {RU, 101, "one"}, {RU, 11, "many"}, {RU, 111, "many"},
		{RU, 2, "few"}, {RU, 4, "few"}, {RU, 23, "few"}, {RU, 12, "many"}, {RU, 14, "many"},
		{RU, 5, "many"}, {RU, 0, "many"}, {RU, 20, "many"},
		{EN, 1, "one"}, {EN, 2, "many"}, {EN, 21, "many"}, {EN, 0, "many"},
		{KK, 1, "one"}, {KK, 7, "one"},
	}
	for _, tt := range tests {
		if got := pluralForm(tt.lang, tt.n); got != tt.want {
			t.Errorf("pluralForm(%s, %d) = %q, want %q", tt.lang, tt.n, got, tt.want)
		}
	}
}

func TestEmailEscaping(t *testing.T) {
	t.Parallel()
	a := testAck(EN)
	a.RequestID = `<script>alert("id")</script>`
	a.Products = []string{`<img src=x onerror=alert(1)>`, "pos"} // unknown codes show as written
	e, err := RenderAck(a)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseEmail(t, e.HTML)
	for _, tag := range []string{"script", "img"} {
		if n := find(doc, func(n *html.Node) bool { return n.Data == tag }); len(n) != 0 {
			t.Errorf("an input became a <%s> element", tag)
		}
	}
	if !strings.Contains(e.HTML, "&lt;script&gt;") || !strings.Contains(text(doc), `<img src=x onerror=alert(1)>`) {
		t.Error("the inputs are not shown escaped")
	}

	o := testOptin(EN)
	o.ConfirmURL = `https://leads.example.com/c?t=a"onmouseover="alert(1)&x=<b>`
	e, err = RenderOptin(o)
	if err != nil {
		t.Fatal(err)
	}
	doc = parseEmail(t, e.HTML)
	for n := range doc.Descendants() {
		if hasAttr(n, "onmouseover") {
			t.Errorf("the link broke out of its attribute: <%s %v>", n.Data, n.Attr)
		}
	}
	if find(doc, func(n *html.Node) bool { return n.Data == "b" }) != nil {
		t.Error("the link added a <b> element")
	}
}

// Only absolute http(s) links are put in an email; anything else is left
// out, never linked.
func TestEmailPolicyURLNeutralised(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"javascript:alert(1)", "JavaScript:alert(1)", "mailto:test@example.com",
		"data:text/html,<b>x</b>", "/privacy-policy/", "//example.com/privacy", "https://paymtech.kz@example.com/",
		"https://example.com/a b", `https:\\example.com`, "vbscript:x"} {
		t.Run(bad, func(t *testing.T) {
			t.Parallel()
			a := testAck(EN)
			a.PolicyURL = bad
			ack, err := RenderAck(a)
			if err != nil {
				t.Fatal(err)
			}
			o := testOptin(EN)
			o.PolicyURL = bad
			optin, err := RenderOptin(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []Email{ack, optin} {
				for _, h := range links(parseEmail(t, e.HTML)) {
					if h != testConfirmURL {
						t.Errorf("linked %q", h)
					}
				}
				if strings.Contains(e.Text, bad) {
					t.Error("the text body shows the unsafe URL")
				}
				if !strings.Contains(e.Text, Message(EN, "mail.footer.address")) {
					t.Error("the footer went missing with the link")
				}
			}
		})
	}
}

// The subjects come from the catalogue alone: whatever the inputs hold,
// a subject is one line and the same.
func TestSubjectsOneLine(t *testing.T) {
	t.Parallel()
	for _, l := range languages {
		a := testAck(l)
		a.RequestID = "id\r\nBcc: test@example.com"
		a.Products = []string{"x\r\nSubject: spam"}
		ack, err := RenderAck(a)
		if err != nil {
			t.Fatal(err)
		}
		optin, err := RenderOptin(testOptin(l))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []Email{ack, optin} {
			if strings.ContainsAny(e.Subject, "\r\n\u2028\u2029\u0085") || e.Subject == "" || strings.Contains(e.Subject, "Bcc") {
				t.Errorf("%s: subject %q", l, e.Subject)
			}
		}
		// A value is shown on one line in the text body too.
		if strings.Contains(ack.Text, "\nBcc:") || strings.Contains(ack.Text, "\nSubject:") {
			t.Errorf("%s: an input added lines to the text body", l)
		}
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Мы получили вашу заявку", "Мы получили вашу заявку"},
		{"a\r\nb", "a b"},
		{"  a \t b\n\n", "a b"},
		{"a\u2028b\u2029c\u0085d", "a b c d"},
		{"\r\n", ""},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURLChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw           string
		absolute, any bool
	}{
		{"https://paymtech.kz/kz/privacy-policy/", true, true},
		{"http://localhost:8080/v1/optin/confirm?token=a.b&lang=kk", true, true},
		{"HTTPS://PAYMTECH.KZ/", true, true},
		{"/v1/optin/confirm?token=a.b", false, true},
		{"/", false, true},
		{"", false, false},
		{"v1/optin/confirm", false, false},
		{"//example.com/x", false, false},
		{"/\\example.com/x", false, false},
		{"https://paymtech.kz@example.com/", false, false},
		{"https:///path", false, false},
		{"javascript:alert(1)", false, false},
		{"mailto:test@example.com", false, false},
		{"ftp://example.com/", false, false},
		{"https://example.com/\nx", false, false},
		{"/a b", false, false},
	}
	for _, tt := range tests {
		if _, got := absoluteHTTPURL(tt.raw); got != tt.absolute {
			t.Errorf("absoluteHTTPURL(%q) = %v, want %v", tt.raw, got, tt.absolute)
		}
		if _, got := localOrHTTPURL(tt.raw); got != tt.any {
			t.Errorf("localOrHTTPURL(%q) = %v, want %v", tt.raw, got, tt.any)
		}
	}
}

// personalField matches field names that would hold personal data.
var personalField = regexp.MustCompile(`(?i)name|mail|phone|tax|iin|bin|person|contact|message|address|ip|agent`)

// The emails and the confirmation page take no personal data: they say
// what was asked and where to click, never who asked. A field added to
// them must be added here on purpose.
func TestNoPersonalDataFields(t *testing.T) {
	t.Parallel()
	inputs := []struct {
		v    any
		want []string
	}{
		// Company is the operator (COMPANY_NAME, COMPANY_CONTACT), no person.
		{AckEmail{}, []string{"Lang", "RequestID", "EntityType", "Products", "PolicyURL", "Company"}},
		{OptinEmail{}, []string{"Lang", "ConfirmURL", "ValidFor", "PolicyURL", "Company"}},
		{ConfirmPage{}, []string{"Lang", "Purpose", "Action", "State", "Company"}},
		{Email{}, []string{"Subject", "Text", "HTML"}},
	}
	for _, in := range inputs {
		typ := reflect.TypeOf(in.v)
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, in.want) {
			t.Errorf("%s has fields %q, want %q", typ.Name(), got, in.want)
		}
	}
	// The views the templates see, embedded structs included.
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for f := range typ.Fields() {
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			if personalField.MatchString(f.Name) {
				t.Errorf("%s.%s looks like personal data", typ.Name(), f.Name)
			}
		}
	}
	for _, v := range []any{AckEmail{}, OptinEmail{}, ConfirmPage{}, ackView{}, optinView{}, confirmView{}} {
		walk(reflect.TypeOf(v))
	}
}
