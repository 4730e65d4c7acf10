package templates

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// inlineCode names what in an element would need the Content-Security-
// Policy to allow inline code — which it does not, so the browser would
// refuse it and the page would lose its looks or behaviour: a <style>
// element, a <script> with a body or without src, a style="" or on…=""
// attribute, a javascript: URL, or a <base> (base-uri 'none').
func inlineCode(tag string, attrs []html.Attribute, body string) []string {
	var found []string
	switch tag {
	case "style", "base":
		found = append(found, "<"+tag+">")
	case "script":
		src := false
		for _, a := range attrs {
			src = src || a.Key == "src"
		}
		if !src || strings.TrimSpace(body) != "" {
			found = append(found, "an inline <script>")
		}
	}
	for _, a := range attrs {
		key := strings.ToLower(a.Key)
		switch {
		case key == "style":
			found = append(found, "<"+tag+" style=…>")
		case strings.HasPrefix(key, "on"):
			found = append(found, "<"+tag+" "+key+"=…>")
		case strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
			found = append(found, "<"+tag+" "+key+"=javascript:…>")
		}
	}
	return found
}

// TestPageTemplatesHaveNoInlineCode reads every page template as written —
// so a branch that no test renders is checked as well — and finds none of
// what inlineCode names.
func TestPageTemplatesHaveNoInlineCode(t *testing.T) {
	t.Parallel()
	var files []string
	err := fs.WalkDir(pageFiles, "pages", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) < 4 {
		t.Fatalf("page templates %v, %v", files, err)
	}
	for _, file := range files {
		src, err := fs.ReadFile(pageFiles, file)
		if err != nil {
			t.Fatal(err)
		}
		z := html.NewTokenizer(bytes.NewReader(src))
		var open string // the script or style element being read
		var attrs []html.Attribute
		var body strings.Builder
		for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
			tok := z.Token()
			switch {
			case tt == html.StartTagToken && (tok.Data == "script" || tok.Data == "style"):
				open, attrs = tok.Data, tok.Attr
				body.Reset()
			case tt == html.TextToken && open != "":
				body.WriteString(tok.Data)
			case tt == html.EndTagToken && tok.Data == open:
				for _, f := range inlineCode(open, attrs, body.String()) {
					t.Errorf("%s: %s", file, f)
				}
				open = ""
			case tt == html.StartTagToken || tt == html.SelfClosingTagToken:
				for _, f := range inlineCode(tok.Data, tok.Attr, "") {
					t.Errorf("%s: %s", file, f)
				}
			}
		}
	}
}

// TestRenderedPagesHaveNoInlineCode renders every page kind, in every
// language and state, and checks the documents a browser gets: no inline
// code, and the stylesheet linked from each.
func TestRenderedPagesHaveNoInlineCode(t *testing.T) {
	t.Parallel()
	cssURL, err := StaticURL("leadgate.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range languages {
		withErrors := basePage(l)
		withErrors.Errors = map[string]string{"phone": "bad", "redirect_url": "not allowed"}
		withErrors.Values = map[string]string{"name": `" style="color:red" onmouseover="alert(1)`}
		pages := map[string]func(*bytes.Buffer) error{
			"form":       func(b *bytes.Buffer) error { return RenderForm(b, basePage(l)) },
			"form (422)": func(b *bytes.Buffer) error { return RenderForm(b, withErrors) },
			"thanks":     func(b *bytes.Buffer) error { return RenderThanks(b, ThanksPage{Lang: l}) },
			"unsubscribe": func(b *bytes.Buffer) error {
				return RenderConfirm(b, ConfirmPage{Lang: l, Purpose: PurposeUnsubscribe, Action: testConfirmAction, State: ConfirmAsk})
			},
		}
		for _, st := range []string{ConfirmAsk, ConfirmDone, ConfirmInvalid} {
			pages["confirm "+st] = func(b *bytes.Buffer) error {
				return RenderConfirm(b, ConfirmPage{Lang: l, Action: testConfirmAction, State: st})
			}
		}
		for name, render := range pages {
			var buf bytes.Buffer
			if err := render(&buf); err != nil {
				t.Fatalf("%s %s: %v", l, name, err)
			}
			doc, err := html.Parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			sheets := 0
			for n := range doc.Descendants() {
				if n.Type != html.ElementNode {
					continue
				}
				body := ""
				if n.FirstChild != nil {
					body = n.FirstChild.Data
				}
				for _, f := range inlineCode(n.Data, n.Attr, body) {
					t.Errorf("%s %s: %s", l, name, f)
				}
				if href, _ := attr(n, "href"); n.Data == "link" && href == cssURL {
					sheets++
				}
			}
			if sheets != 1 {
				t.Errorf("%s %s links the stylesheet %d times, want once", l, name, sheets)
			}
		}
	}
}

// TestStaticAssets: each file is there with its type, and its URL carries
// a version that changes with its content.
func TestStaticAssets(t *testing.T) {
	t.Parallel()
	for name, ctype := range map[string]string{
		"leadgate.css": "text/css; charset=utf-8",
		"leadgate.js":  "text/javascript; charset=utf-8",
		"favicon.svg":  "image/svg+xml",
	} {
		a, ok := StaticAsset(name)
		if !ok || len(a.Content) == 0 || a.ContentType != ctype || len(a.Version) != 16 {
			t.Errorf("StaticAsset(%q) = %q %q version %q, %d bytes, want %q", name, a.Name, a.ContentType, a.Version, len(a.Content), ctype)
			continue
		}
		if u, err := StaticURL(name); err != nil || u != "/static/"+name+"?v="+a.Version {
			t.Errorf("StaticURL(%q) = %q, %v", name, u, err)
		}
	}
	for _, name := range []string{"", "missing.css", "../pages/layout.html", "static/leadgate.css"} {
		if _, ok := StaticAsset(name); ok {
			t.Errorf("StaticAsset(%q) found something", name)
		}
		if u, err := StaticURL(name); err == nil {
			t.Errorf("StaticURL(%q) = %q, want an error", name, u)
		}
	}
	css, _ := StaticAsset("leadgate.css")
	js, _ := StaticAsset("leadgate.js")
	if css.Version == js.Version {
		t.Error("two files have the same version")
	}
}
