package templates

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
)

const testPolicyURL = "https://example.com/privacy-policy/"

// testProducts is the default product catalogue with labels in lang.
func testProducts(lang Lang, checked ...string) []Product {
	var ps []Product
	for _, code := range []string{"acquiring", "payment_links", "recurring", "payouts", "pos"} {
		ps = append(ps, Product{Code: code, Label: ProductLabel(lang, code), Checked: slices.Contains(checked, code)})
	}
	return ps
}

func basePage(lang Lang) FormPage {
	return FormPage{
		Lang:          lang,
		Action:        "/v1/leads",
		Path:          "/",
		Products:      testProducts(lang),
		PolicyURL:     testPolicyURL,
		PolicyVersion: "7",
	}
}

func renderForm(t *testing.T, p FormPage) (string, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderForm(&buf, p); err != nil {
		t.Fatalf("RenderForm: %v", err)
	}
	out := buf.String()
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatalf("parse rendered form: %v", err)
	}
	return out, doc
}

// find returns the elements under n for which match is true, in document order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var found []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			found = append(found, d)
		}
	}
	return found
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func byID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	found := find(doc, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
	if len(found) != 1 {
		t.Fatalf("%d elements with id %q, want 1", len(found), id)
	}
	return found[0]
}

func named(doc *html.Node, name string) []*html.Node {
	return find(doc, func(n *html.Node) bool { v, ok := attr(n, "name"); return ok && v == name })
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func hasAttr(n *html.Node, name string) bool {
	_, ok := attr(n, name)
	return ok
}

func TestRenderFormEscapesValues(t *testing.T) {
	t.Parallel()
	p := basePage(EN)
	p.Values = map[string]string{
		"name":    `<script>alert("name")</script>`,
		"email":   `"><script>alert(1)</script>`,
		"message": `</textarea><script>alert("message")</script>`,
	}
	p.Errors = map[string]string{"phone": `<b>error</b>`}
	p.Notice = `<i>notice</i>`
	out, doc := renderForm(t, p)
	for _, raw := range []string{`<script>alert`, `<b>error`, `<i>notice`} {
		if strings.Contains(out, raw) {
			t.Errorf("output contains unescaped %q", raw)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Error("escaped &lt;script&gt; not found")
	}
	// The only script is the page's own.
	if scripts := find(doc, func(n *html.Node) bool { return n.Data == "script" }); len(scripts) != 1 {
		t.Errorf("%d script elements, want the page's own 1", len(scripts))
	}
	// Escaped values still round-trip as the person typed them.
	if v, _ := attr(byID(t, doc, "name"), "value"); v != p.Values["name"] {
		t.Errorf("name value = %q, want %q", v, p.Values["name"])
	}
	if got := text(byID(t, doc, "message")); got != p.Values["message"] {
		t.Errorf("message text = %q, want %q", got, p.Values["message"])
	}
}

func TestRenderFormKeepsValues(t *testing.T) {
	t.Parallel()
	p := basePage(RU)
	p.Values = map[string]string{
		"entity_type": "sole_proprietor",
		"name":        "Test Testov",
		"phone":       "+7 701 000 00 00",
		"email":       "test@example.com",
		"tax_id":      "000000000000",
		"message":     "Нужен эквайринг\nдля сайта",
	}
	_, doc := renderForm(t, p)
	for _, field := range []string{"name", "phone", "email", "tax_id"} {
		if v, _ := attr(byID(t, doc, field), "value"); v != p.Values[field] {
			t.Errorf("%s value = %q, want %q", field, v, p.Values[field])
		}
	}
	if got := text(byID(t, doc, "message")); got != p.Values["message"] {
		t.Errorf("message = %q, want %q", got, p.Values["message"])
	}
	if !hasAttr(byID(t, doc, "entity_type-sole_proprietor"), "checked") {
		t.Error("sole_proprietor radio is not checked")
	}
	if hasAttr(byID(t, doc, "entity_type-legal_entity"), "checked") {
		t.Error("legal_entity radio is checked")
	}
	// The honeypot is never re-filled, whatever came back.
	p.Values["website"] = "http://spam.example"
	_, doc = renderForm(t, p)
	if v, _ := attr(byID(t, doc, "website"), "value"); v != "" {
		t.Errorf("honeypot re-filled with %q", v)
	}
}

func TestRenderFormCheckboxes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  bool
	}{
		{"", false},
		{"true", true},
		{"on", true},
		{"1", true},
		{"TRUE", true},
		{"false", false},
		{"0", false},
		{"yes", false},
	}
	for _, field := range []string{"consent_marketing", "consent_processing"} {
		for _, tt := range tests {
			t.Run(field+"="+tt.value, func(t *testing.T) {
				t.Parallel()
				p := basePage(EN)
				if tt.value != "" {
					p.Values = map[string]string{field: tt.value}
				}
				_, doc := renderForm(t, p)
				if got := hasAttr(byID(t, doc, field), "checked"); got != tt.want {
					t.Errorf("checked = %v, want %v", got, tt.want)
				}
			})
		}
	}
}

// Marketing consent must be an opt-in: not ticked by anything but its own
// value, not even by the processing consent or a full form.
func TestRenderFormMarketingUntickedByDefault(t *testing.T) {
	t.Parallel()
	p := basePage(KK)
	p.Values = map[string]string{"consent_processing": "true", "entity_type": "legal_entity", "email": "test@example.com"}
	_, doc := renderForm(t, p)
	m := byID(t, doc, "consent_marketing")
	if hasAttr(m, "checked") || hasAttr(m, "required") {
		t.Error("marketing consent is ticked or required")
	}
	if !hasAttr(byID(t, doc, "consent_processing"), "checked") {
		t.Error("processing consent lost its tick")
	}
}

func TestRenderFormProducts(t *testing.T) {
	t.Parallel()
	p := basePage(KK)
	p.Products = append(testProducts(KK, "payouts", "pos"), Product{Code: "new_product", Label: ProductLabel(KK, "new_product")})
	_, doc := renderForm(t, p)
	boxes := named(doc, "products")
	if len(boxes) != len(p.Products) {
		t.Fatalf("%d product checkboxes, want %d", len(boxes), len(p.Products))
	}
	for i, box := range boxes {
		want := p.Products[i]
		if typ, _ := attr(box, "type"); typ != "checkbox" {
			t.Errorf("product %s is a %q input", want.Code, typ)
		}
		if v, _ := attr(box, "value"); v != want.Code {
			t.Errorf("product %d value = %q, want %q", i, v, want.Code)
		}
		if got := hasAttr(box, "checked"); got != want.Checked {
			t.Errorf("product %s checked = %v, want %v", want.Code, got, want.Checked)
		}
		id, _ := attr(box, "id")
		label := labelFor(doc, id)
		if label == nil || strings.TrimSpace(text(label)) != want.Label {
			t.Errorf("product %s has no label %q", want.Code, want.Label)
		}
	}
	if l := text(labelFor(doc, "product-payouts")); l != "Қаражат аудару" {
		t.Errorf("payouts label = %q, want the Kazakh label", l)
	}
}

func labelFor(doc *html.Node, id string) *html.Node {
	labels := find(doc, func(n *html.Node) bool { v, _ := attr(n, "for"); return n.Data == "label" && v == id })
	if len(labels) != 1 {
		return nil
	}
	return labels[0]
}

func TestRenderFormMarksErrors(t *testing.T) {
	t.Parallel()
	fields := []string{"entity_type", "name", "phone", "email", "tax_id", "products", "message", "consent_processing"}
	for _, field := range fields {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			p := basePage(EN)
			msg := Message(EN, "field.invalid") + " (" + field + ")"
			p.Errors = map[string]string{field: msg}
			_, doc := renderForm(t, p)
			errEl := byID(t, doc, field+"-error")
			if got := text(errEl); got != msg {
				t.Errorf("error text = %q, want %q", got, msg)
			}
			inputs := named(doc, field)
			if len(inputs) == 0 {
				t.Fatal("no input")
			}
			for _, in := range inputs {
				if v, _ := attr(in, "aria-invalid"); v != "true" {
					t.Errorf("input %v lacks aria-invalid", in.Attr)
				}
				if d, _ := attr(in, "aria-describedby"); !slices.Contains(strings.Fields(d), field+"-error") {
					t.Errorf("input aria-describedby = %q, want it to name %s-error", d, field)
				}
			}
			// Only the field in error is marked.
			if invalid := find(doc, func(n *html.Node) bool { return hasAttr(n, "aria-invalid") }); len(invalid) != len(inputs) {
				t.Errorf("%d inputs marked invalid, want %d", len(invalid), len(inputs))
			}
			notice := find(doc, func(n *html.Node) bool { v, _ := attr(n, "role"); return v == "alert" })
			if len(notice) != 1 || !strings.Contains(text(notice[0]), Message(EN, "form.has_errors")) {
				t.Error("no form.has_errors summary above the form")
			}
		})
	}
}

func TestRenderFormNotice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		notice  string
		errors  map[string]string
		want    []string // texts in the alert, in order
		noAlert bool
	}{
		{name: "nothing to say", noAlert: true},
		{name: "explicit notice", notice: Message(RU, "error.rate_limited"), want: []string{Message(RU, "error.rate_limited")}},
		{name: "errors default to the summary", errors: map[string]string{"phone": "x"}, want: []string{Message(RU, "form.has_errors")}},
		{
			name:   "errors without a field are listed",
			errors: map[string]string{"redirect_url": Message(RU, "redirect_url.forbidden"), "lang": Message(RU, "lang.invalid"), "email": "x"},
			want:   []string{Message(RU, "form.has_errors"), Message(RU, "lang.invalid"), Message(RU, "redirect_url.forbidden")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := basePage(RU)
			p.Notice, p.Errors = tt.notice, tt.errors
			_, doc := renderForm(t, p)
			alerts := find(doc, func(n *html.Node) bool { v, _ := attr(n, "role"); return v == "alert" })
			if tt.noAlert {
				if len(alerts) != 0 {
					t.Errorf("unexpected alert %q", text(alerts[0]))
				}
				return
			}
			if len(alerts) != 1 {
				t.Fatalf("%d alerts, want 1", len(alerts))
			}
			var got []string
			for _, n := range find(alerts[0], func(n *html.Node) bool { return n.Data == "p" || n.Data == "li" }) {
				got = append(got, text(n))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("alert texts = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderFormStructure(t *testing.T) {
	t.Parallel()
	_, doc := renderForm(t, basePage(EN))

	if got, _ := attr(find(doc, func(n *html.Node) bool { return n.Data == "html" })[0], "lang"); got != "en" {
		t.Errorf("html lang = %q", got)
	}
	forms := find(doc, func(n *html.Node) bool { return n.Data == "form" })
	if len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
	if m, _ := attr(forms[0], "method"); m != "post" {
		t.Errorf("form method = %q", m)
	}
	if a, _ := attr(forms[0], "action"); a != "/v1/leads" {
		t.Errorf("form action = %q", a)
	}

	// Every visible control has its own label.
	controls := find(forms[0], func(n *html.Node) bool {
		typ, _ := attr(n, "type")
		return (n.Data == "input" && typ != "hidden") || n.Data == "textarea" || n.Data == "select"
	})
	for _, c := range controls {
		id, _ := attr(c, "id")
		if id == "" || labelFor(doc, id) == nil {
			t.Errorf("control %v has no <label for>", c.Attr)
		}
	}

	wantAttrs := []struct {
		id    string
		attrs map[string]string // "" means present with any value
	}{
		{"entity_type-legal_entity", map[string]string{"type": "radio", "name": "entity_type", "value": "legal_entity", "required": ""}},
		{"entity_type-sole_proprietor", map[string]string{"type": "radio", "name": "entity_type", "value": "sole_proprietor", "required": ""}},
		{"name", map[string]string{"maxlength": "200"}},
		{"phone", map[string]string{"type": "tel", "required": "", "placeholder": "+7 701 000 00 00"}},
		{"email", map[string]string{"type": "email", "required": "", "maxlength": "254"}},
		{"tax_id", map[string]string{"inputmode": "numeric"}},
		{"message", map[string]string{"maxlength": "2000"}},
		{"consent_processing", map[string]string{"type": "checkbox", "required": ""}},
		{"consent_marketing", map[string]string{"type": "checkbox"}},
		{"website", map[string]string{"tabindex": "-1", "autocomplete": "off", "value": ""}},
	}
	for _, w := range wantAttrs {
		n := byID(t, doc, w.id)
		for k, want := range w.attrs {
			got, ok := attr(n, k)
			if !ok || want != "" && got != want {
				t.Errorf("#%s %s = %q (present %v), want %q", w.id, k, got, ok, want)
			}
		}
	}
	for _, opt := range []string{"name", "tax_id", "message", "consent_marketing"} {
		if hasAttr(byID(t, doc, opt), "required") {
			t.Errorf("optional field %s is required", opt)
		}
	}

	// The honeypot is hidden from people: inside an aria-hidden container
	// whose class the page's stylesheet moves off-screen.
	hp := byID(t, doc, "website").Parent
	if v, _ := attr(hp, "aria-hidden"); v != "true" {
		t.Error("honeypot container is not aria-hidden")
	}
	css, _ := StaticAsset("leadgate.css")
	if class, _ := attr(hp, "class"); class != "hp" || !strings.Contains(string(css.Content), ".hp { position: absolute; left: -10000px;") {
		t.Error("honeypot is not moved off-screen by CSS")
	}

	// In a frame on the company site the post opens the thanks page or
	// redirect_url in the whole window.
	if target, _ := attr(forms[0], "target"); target != "_top" {
		t.Errorf("form target = %q, want _top", target)
	}

	hidden := map[string]string{"lang": "en", "page_url": "", "timezone": "", "form_token": ""}
	for name, want := range hidden {
		ins := named(doc, name)
		if len(ins) != 1 {
			t.Errorf("%d inputs named %s", len(ins), name)
			continue
		}
		typ, _ := attr(ins[0], "type")
		v, _ := attr(ins[0], "value")
		if typ != "hidden" || v != want {
			t.Errorf("%s: type %q value %q, want hidden %q", name, typ, v, want)
		}
	}

	// Consent to processing links to the policy and names its version.
	policy := byID(t, doc, "consent_processing-policy")
	links := find(policy, func(n *html.Node) bool { return n.Data == "a" })
	if len(links) != 1 {
		t.Fatalf("%d policy links", len(links))
	}
	if href, _ := attr(links[0], "href"); href != testPolicyURL {
		t.Errorf("policy link = %q", href)
	}
	if !strings.Contains(text(policy), Message(EN, "consent.policy_version", "7")) {
		t.Errorf("policy version missing from %q", text(policy))
	}
	if d, _ := attr(byID(t, doc, "consent_processing"), "aria-describedby"); d != "consent_processing-policy" {
		t.Errorf("consent aria-describedby = %q", d)
	}

	// Language switcher.
	var hrefs []string
	for _, a := range find(doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr(n, "hreflang") }) {
		h, _ := attr(a, "href")
		hrefs = append(hrefs, h)
		if _, cur := attr(a, "aria-current"); cur != (text(a) == "English") {
			t.Errorf("aria-current on %q is %v", text(a), cur)
		}
	}
	if want := []string{"/?lang=kk", "/?lang=ru", "/?lang=en"}; !slices.Equal(hrefs, want) {
		t.Errorf("language links = %q, want %q", hrefs, want)
	}

	// No assets but the site's own stylesheet, favicon and script, and no
	// script needed to post: the script only fills optional hidden fields
	// and checks what the server checks again.
	cssURL, _ := StaticURL("leadgate.css")
	iconURL, _ := StaticURL("favicon.svg")
	jsURL, _ := StaticURL("leadgate.js")
	var assets []string
	for _, n := range find(doc, func(n *html.Node) bool { return true }) {
		switch href, _ := attr(n, "href"); {
		case n.Data == "link":
			if rel, _ := attr(n, "rel"); (rel != "stylesheet" || href != cssURL) && (rel != "icon" || href != iconURL) {
				t.Errorf("<link %v>, want only the stylesheet %s and the icon %s", n.Attr, cssURL, iconURL)
			}
			assets = append(assets, href)
		case n.Data == "script":
			if src, _ := attr(n, "src"); src != jsURL || len(n.Attr) != 1 {
				t.Errorf("<script %v>, want only src=%s", n.Attr, jsURL)
			}
			assets = append(assets, jsURL)
		case n.Data == "img" || n.Data == "iframe" || hasAttr(n, "src"):
			t.Errorf("external asset or embed: <%s %v>", n.Data, n.Attr)
		}
	}
	if want := []string{cssURL, iconURL, jsURL}; !slices.Equal(assets, want) {
		t.Errorf("assets %q, want %q", assets, want)
	}
	for _, a := range []string{"leadgate.css", "leadgate.js"} {
		if c, _ := StaticAsset(a); strings.Contains(string(c.Content), "@import") || strings.Contains(string(c.Content), "url(") ||
			strings.Contains(string(c.Content), "http") {
			t.Errorf("%s loads something", a)
		}
	}
}

func TestRenderFormRelativeLanguageLinks(t *testing.T) {
	t.Parallel()
	p := basePage(KK)
	p.Path = ""
	_, doc := renderForm(t, p)
	var hrefs []string
	for _, a := range find(doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr(n, "hreflang") }) {
		h, _ := attr(a, "href")
		hrefs = append(hrefs, h)
	}
	if want := []string{"?lang=kk", "?lang=ru", "?lang=en"}; !slices.Equal(hrefs, want) {
		t.Errorf("language links = %q, want %q", hrefs, want)
	}
}

func TestRenderFormUnsafePolicyURL(t *testing.T) {
	t.Parallel()
	p := basePage(EN)
	p.PolicyURL = "javascript:alert(1)"
	p.PolicyVersion = ""
	_, doc := renderForm(t, p)
	policy := byID(t, doc, "consent_processing-policy")
	for _, a := range find(policy, func(n *html.Node) bool { return n.Data == "a" }) {
		if href, _ := attr(a, "href"); strings.HasPrefix(href, "javascript:") {
			t.Errorf("unsafe policy link rendered: %q", href)
		}
	}
	if strings.Contains(text(policy), "version") {
		t.Errorf("empty version still shown: %q", text(policy))
	}
}

func TestRenderFormWithoutPolicyURL(t *testing.T) {
	t.Parallel()
	p := basePage(RU)
	p.PolicyURL = ""
	_, doc := renderForm(t, p)
	policy := byID(t, doc, "consent_processing-policy")
	if links := find(policy, func(n *html.Node) bool { return n.Data == "a" }); len(links) != 0 {
		t.Error("link rendered without a URL")
	}
	if !strings.Contains(text(policy), Message(RU, "consent.policy")) {
		t.Error("policy name missing")
	}
}

// visibleTexts returns what a person reads on the page: text outside
// script and style, and the placeholder and aria-label attributes.
func visibleTexts(doc *html.Node) []string {
	var texts []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style") {
			return
		}
		if n.Type == html.TextNode && strings.TrimSpace(n.Data) != "" {
			texts = append(texts, n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "placeholder" || a.Key == "aria-label" {
				texts = append(texts, a.Val)
			}
		}
		for c := range n.ChildNodes() {
			walk(c)
		}
	}
	walk(doc)
	return texts
}

// stripCatalogue removes every catalogue text of lang from s, longest first
// so that a text is not broken by a shorter one inside it, and reports any
// letters left: text that did not come from the catalogue.
func stripCatalogue(s string, lang Lang, formatted ...string) string {
	texts := slices.Collect(func(yield func(string) bool) {
		for _, m := range messages[lang] {
			if !yield(m) {
				return
			}
		}
	})
	texts = append(texts, formatted...)
	slices.SortFunc(texts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range texts {
		s = strings.ReplaceAll(s, m, " ")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return r
		}
		return -1
	}, s)
}

// All visible text comes from the catalogue of the page's language, so a
// Russian page has no English left in it and the other way round.
func TestPagesTextFromCatalogue(t *testing.T) {
	t.Parallel()
	for _, l := range languages {
		t.Run(string(l), func(t *testing.T) {
			t.Parallel()
			_, doc := renderForm(t, basePage(l))
			// The texts naming the company (COMPANY_NAME, configuration)
			// as they are formatted.
			company := []string{DefaultCompanyName, Message(l, "consent.processing", DefaultCompanyName, DefaultCompanyName),
				Message(l, "consent.withdraw", DefaultCompanyName), Message(l, "consent.marketing", DefaultCompanyName)}
			for _, s := range visibleTexts(doc) {
				if left := stripCatalogue(s, l, append(company, Message(l, "consent.policy_version", "7"))...); left != "" {
					t.Errorf("form text %q is not from the %s catalogue (left: %q)", s, l, left)
				}
			}
			var buf bytes.Buffer
			if err := RenderThanks(&buf, ThanksPage{Lang: l}); err != nil {
				t.Fatal(err)
			}
			thanks, err := html.Parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range visibleTexts(thanks) {
				if left := stripCatalogue(s, l, DefaultCompanyName); left != "" {
					t.Errorf("thanks text %q is not from the %s catalogue (left: %q)", s, l, left)
				}
			}
		})
	}
}

func TestRenderThanks(t *testing.T) {
	t.Parallel()
	seen := map[string]Lang{}
	for _, l := range languages {
		var buf bytes.Buffer
		if err := RenderThanks(&buf, ThanksPage{Lang: l}); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		doc, err := html.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := attr(find(doc, func(n *html.Node) bool { return n.Data == "html" })[0], "lang"); got != string(l) {
			t.Errorf("%s: html lang = %q", l, got)
		}
		title := find(doc, func(n *html.Node) bool { return n.Data == "title" })
		if len(title) != 1 || text(title[0]) != Message(l, "thanks.title") {
			t.Errorf("%s: title is not thanks.title", l)
		}
		body := text(doc)
		if !strings.Contains(body, Message(l, "thanks.body")) {
			t.Errorf("%s: thanks.body missing", l)
		}
		if other, dup := seen[Message(l, "thanks.body")]; dup {
			t.Errorf("%s thanks page reads the same as %s", l, other)
		}
		seen[Message(l, "thanks.body")] = l
		if len(find(doc, func(n *html.Node) bool { return n.Data == "form" })) != 0 {
			t.Errorf("%s: thanks page has a form", l)
		}
	}
}

func TestRenderRejectsUnknownLanguage(t *testing.T) {
	t.Parallel()
	for _, l := range []Lang{"", "de", "KK"} {
		var buf bytes.Buffer
		if err := RenderForm(&buf, FormPage{Lang: l, Action: "/v1/leads"}); err == nil {
			t.Errorf("RenderForm(%q) succeeded", l)
		}
		if err := RenderThanks(&buf, ThanksPage{Lang: l}); err == nil {
			t.Errorf("RenderThanks(%q) succeeded", l)
		}
		if buf.Len() != 0 {
			t.Errorf("%q: wrote %d bytes on failure", l, buf.Len())
		}
	}
}

type failingWriter struct{}

var errWrite = errors.New("connection closed")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestRenderReportsWriteErrors(t *testing.T) {
	t.Parallel()
	if err := RenderForm(failingWriter{}, basePage(EN)); !errors.Is(err, errWrite) {
		t.Errorf("RenderForm error = %v, want it to wrap the write error", err)
	}
	if err := RenderThanks(failingWriter{}, ThanksPage{Lang: EN}); !errors.Is(err, errWrite) {
		t.Errorf("RenderThanks error = %v, want it to wrap the write error", err)
	}
}
