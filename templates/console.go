package templates

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/url"
)

// consoleFiles are the back office's pages: a layout of their own (the
// console's navigation and sign-out), parts several pages show (parts.html)
// and one file per page, each defining "title" and "content" like the
// public pages.
//
//go:embed console/*.html
var consoleFiles embed.FS

// ConsolePages are the names RenderConsole takes.
var ConsolePages = []string{"login", "home", "leads", "lead", "error",
	"subjects", "person", "person_erase", // privacy console
	// campaigns: marketing's pages
	"campaigns", "campaign", "campaign_new",
	// end campaigns
	// admin's pages
	"notices", "notice", "notice_new", "audit", "queues",
}

// consoleTemplates are parsed once, like the public pages.
var consoleTemplates = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range ConsolePages {
		m[name] = template.Must(template.New("layout.html").Funcs(template.FuncMap{"static": StaticURL}).
			ParseFS(consoleFiles, "console/layout.html", "console/parts.html", "console/"+name+".html"))
	}
	return m
}()

// ConsoleNav is one entry of the console's navigation.
type ConsoleNav struct {
	Href    string
	Label   string
	Current bool
}

// ConsolePage is what every console page needs. Its texts (Notice, the
// labels in Nav and Data) are shown as given, so they must already be in
// Lang.
type ConsolePage struct {
	Lang Lang
	// Path is the page's own path; the language links point there with
	// Query, whose lang they replace (a list keeps its filters).
	Path  string
	Query url.Values
	// Holder is the signed-in token holder's name; empty on pages shown
	// before sign-in, which then have no navigation or sign-out.
	Holder string
	// CSRF is the session's token, posted back by every form that changes
	// something (sign-out included).
	CSRF   string
	Nav    []ConsoleNav
	Notice string
	// Data is the page's own content (console handlers' types).
	Data any
}

// consoleView adapts a ConsolePage to the templates.
type consoleView struct {
	page
	Holder string
	CSRF   string
	Nav    []ConsoleNav
	Notice string
	Data   any
}

// LangQuery is "?lang=<the page's language>", for links and form actions,
// so that a person who chose a language keeps it after a post.
func (v consoleView) LangQuery() string { return "?lang=" + string(v.Lang) }

// LangValue is the page's language, for a GET form's hidden lang field.
func (v consoleView) LangValue() string { return string(v.Lang) }

// YesNo is the catalogue's yes or no.
func (v consoleView) YesNo(b bool) string {
	if b {
		return v.T("console.yes")
	}
	return v.T("console.no")
}

// RenderConsole writes the console page called name (one of ConsolePages).
// Nothing is written when rendering fails.
func RenderConsole(w io.Writer, name string, p ConsolePage) error {
	t, ok := consoleTemplates[name]
	if !ok {
		return fmt.Errorf("templates: no console page %q", name)
	}
	if !p.Lang.valid() {
		return fmt.Errorf("templates: render console %s: unsupported language %q", name, p.Lang)
	}
	v := consoleView{page: page{Lang: p.Lang, Path: p.Path, query: p.Query},
		Holder: p.Holder, CSRF: p.CSRF, Nav: p.Nav, Notice: p.Notice, Data: p.Data}
	return render(w, "console "+name, t, v)
}
