package templates

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

const testConfirmAction = "/v1/optin/confirm?token=tok.en&lang=ru"

func renderConfirm(t *testing.T, p ConfirmPage) *html.Node {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderConfirm(&buf, p); err != nil {
		t.Fatalf("RenderConfirm(%s, %s): %v", p.Lang, p.State, err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatalf("parse confirm page: %v", err)
	}
	return doc
}

// languageLinks returns the hrefs of the language switcher.
func languageLinks(doc *html.Node) []string {
	var hrefs []string
	for _, a := range find(doc, func(n *html.Node) bool { return n.Data == "a" && hasAttr(n, "hreflang") }) {
		h, _ := attr(a, "href")
		hrefs = append(hrefs, h)
	}
	return hrefs
}

func TestRenderConfirmStates(t *testing.T) {
	t.Parallel()
	// The ask and done texts name the operator; a name other than the
	// default shows that COMPANY_NAME reaches them.
	const company = "Test Operator LLP"
	tests := []struct {
		state             string
		title, body       string
		titleArg, bodyArg bool // the text takes the company name
		form, switcher    bool
	}{
		{ConfirmAsk, "confirm.title", "confirm.ask", true, true, true, true},
		{ConfirmDone, "confirm.done_title", "confirm.done", false, true, false, false},
		{ConfirmInvalid, "confirm.invalid_title", "confirm.invalid", false, false, false, true},
	}
	named := func(on bool) []any {
		if on {
			return []any{company}
		}
		return nil
	}
	for _, tt := range tests {
		for _, l := range languages {
			t.Run(tt.state+"/"+string(l), func(t *testing.T) {
				t.Parallel()
				doc := renderConfirm(t, ConfirmPage{Lang: l, Action: testConfirmAction, State: tt.state, Company: Company{Name: company}})
				if got, _ := attr(find(doc, func(n *html.Node) bool { return n.Data == "html" })[0], "lang"); got != string(l) {
					t.Errorf("html lang = %q", got)
				}
				title := find(doc, func(n *html.Node) bool { return n.Data == "title" })
				h1 := find(doc, func(n *html.Node) bool { return n.Data == "h1" })
				want := Message(l, tt.title, named(tt.titleArg)...)
				if len(title) != 1 || len(h1) != 1 || text(title[0]) != want || text(h1[0]) != want {
					t.Errorf("title and heading are not %s", tt.title)
				}
				if !strings.Contains(text(doc), Message(l, tt.body, named(tt.bodyArg)...)) {
					t.Errorf("the page lacks %s", tt.body)
				}
				forms := find(doc, func(n *html.Node) bool { return n.Data == "form" })
				if (len(forms) == 1) != tt.form || len(forms) > 1 {
					t.Errorf("%d forms, want a form: %v", len(forms), tt.form)
				}
				if got := len(languageLinks(doc)) == len(languages); got != tt.switcher {
					t.Errorf("language links %q, want them: %v", languageLinks(doc), tt.switcher)
				}
				for _, s := range visibleTexts(doc) {
					if left := stripCatalogue(s, l, company, Message(l, tt.title, named(tt.titleArg)...), Message(l, tt.body, named(tt.bodyArg)...)); left != "" {
						t.Errorf("text %q is not from the %s catalogue (left: %q)", s, l, left)
					}
				}
			})
		}
	}
}

// A link scanner that fetches the page must not confirm anything: the page
// only offers a button that posts, and has nothing that could press it.
func TestRenderConfirmAskIsOnlyAButton(t *testing.T) {
	t.Parallel()
	doc := renderConfirm(t, ConfirmPage{Lang: RU, Action: testConfirmAction, State: ConfirmAsk})
	forms := find(doc, func(n *html.Node) bool { return n.Data == "form" })
	if len(forms) != 1 {
		t.Fatalf("%d forms, want 1", len(forms))
	}
	form := forms[0]
	if m, _ := attr(form, "method"); !strings.EqualFold(m, "post") {
		t.Errorf("form method = %q, want post", m)
	}
	if a, _ := attr(form, "action"); a != testConfirmAction {
		t.Errorf("form action = %q, want %q", a, testConfirmAction)
	}
	buttons := find(form, func(n *html.Node) bool { return n.Data == "button" || n.Data == "input" })
	if len(buttons) != 1 || buttons[0].Data != "button" || text(buttons[0]) != Message(RU, "confirm.button") {
		t.Fatalf("the form holds %d controls, want the one button", len(buttons))
	}
	if typ, _ := attr(buttons[0], "type"); typ != "submit" {
		t.Errorf("button type = %q", typ)
	}
	if s := find(doc, func(n *html.Node) bool { return n.Data == "script" }); len(s) != 0 {
		t.Errorf("%d script elements, want none", len(s))
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") || a.Key == "autofocus" || a.Key == "http-equiv" {
				t.Errorf("<%s %s=%q> could act without the person", n.Data, a.Key, a.Val)
			}
		}
	}
}

func TestRenderConfirmLanguageLinksKeepToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action string
		want   []string
	}{
		{testConfirmAction, []string{
			"/v1/optin/confirm?lang=kk&token=tok.en",
			"/v1/optin/confirm?lang=ru&token=tok.en",
			"/v1/optin/confirm?lang=en&token=tok.en",
		}},
		{"https://leads.example.com/v1/optin/confirm?token=a%2Bb#top", []string{
			"https://leads.example.com/v1/optin/confirm?lang=kk&token=a%2Bb",
			"https://leads.example.com/v1/optin/confirm?lang=ru&token=a%2Bb",
			"https://leads.example.com/v1/optin/confirm?lang=en&token=a%2Bb",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			t.Parallel()
			doc := renderConfirm(t, ConfirmPage{Lang: EN, Action: tt.action, State: ConfirmAsk})
			if got := languageLinks(doc); !slices.Equal(got, tt.want) {
				t.Errorf("language links = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderConfirmUnsafeAction(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"", "javascript:alert('tok.en')", "//example.com/confirm?token=tok.en",
		"/\\example.com/?token=tok.en", "data:text/html,tok.en", "confirm?token=tok.en"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			err := RenderConfirm(&buf, ConfirmPage{Lang: KK, Action: action, State: ConfirmAsk})
			if err == nil || buf.Len() != 0 {
				t.Fatalf("asking with action %q: err %v, %d bytes written", action, err, buf.Len())
			}
			if strings.Contains(err.Error(), "tok.en") {
				t.Errorf("the error shows the token: %v", err)
			}
			// The invalid page needs no action; an unsafe one is dropped.
			doc := renderConfirm(t, ConfirmPage{Lang: KK, Action: action, State: ConfirmInvalid})
			if l := languageLinks(doc); len(l) != 0 {
				t.Errorf("language links %q built from an unsafe action", l)
			}
			if strings.Contains(text(doc), "tok.en") {
				t.Error("the token is shown")
			}
		})
	}
}

func TestRenderConfirmRejects(t *testing.T) {
	t.Parallel()
	for _, p := range []ConfirmPage{
		{Lang: "de", Action: testConfirmAction, State: ConfirmAsk},
		{Lang: "", Action: testConfirmAction, State: ConfirmDone},
		{Lang: RU, Action: testConfirmAction, State: ""},
		{Lang: RU, Action: testConfirmAction, State: "confirmed"},
	} {
		var buf bytes.Buffer
		if err := RenderConfirm(&buf, p); err == nil || buf.Len() != 0 {
			t.Errorf("RenderConfirm(%+v): err %v, %d bytes written", p, err, buf.Len())
		}
	}
	if err := RenderConfirm(failingWriter{}, ConfirmPage{Lang: EN, State: ConfirmDone}); !errors.Is(err, errWrite) {
		t.Errorf("error = %v, want it to wrap the write error", err)
	}
}

func TestRenderConfirmEscapesAction(t *testing.T) {
	t.Parallel()
	action := `/v1/optin/confirm?token="><script>alert(1)</script>`
	var buf bytes.Buffer
	if err := RenderConfirm(&buf, ConfirmPage{Lang: EN, Action: action, State: ConfirmAsk}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>") {
		t.Error("the action broke out of its attribute")
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if forms := find(doc, func(n *html.Node) bool { return n.Data == "form" }); len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
}
