package templates

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// pageFiles holds the shared layout and one file per page — each page file
// defines the "title" and "content" templates the layout calls — and the
// email templates under mail/.
//
//go:embed pages/*.html mail/*
var pageFiles embed.FS

// staticFiles are the pages' stylesheet, script and favicon, served under
// /static/.
// They are files rather than inline <style> and <script> so that the
// Content-Security-Policy allows only 'self' for both: an injected inline
// script or style attribute would then never run.
//
//go:embed static
var staticFiles embed.FS

// The page templates are parsed once; like the catalogue they are compiled
// in, so a parse error is a build defect that the package tests catch.
var (
	formTemplate    = parsePage("pages/form.html")
	thanksTemplate  = parsePage("pages/thanks.html")
	confirmTemplate = parsePage("pages/confirm.html")
)

// parsePage parses the layout with one page file.
func parsePage(file string) *template.Template {
	return template.Must(template.New("layout.html").Funcs(template.FuncMap{"static": StaticURL}).
		ParseFS(pageFiles, "pages/layout.html", file))
}

// StaticPrefix is the path the static files are served under.
const StaticPrefix = "/static/"

// Asset is one embedded static file.
type Asset struct {
	Name        string // the file name, e.g. "leadgate.css"
	ContentType string // what it is served as; with nosniff the browser trusts only this
	Content     []byte
	// Version is a digest of Content. StaticURL puts it in the query, so
	// a URL names one content for ever and may be cached for a year: a
	// changed file gets a new URL rather than a stale cached copy.
	Version string
	// Gzip is Content gzip-compressed once, for clients that accept it.
	Gzip []byte
}

// staticTypes are the content types of the file kinds static/ may hold;
// a file of another kind fails the package's loading, so none is served
// with a guessed type.
var staticTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	// The favicon: an SVG with no script (served, like every static file,
	// under default-src 'none', which would stop one anyway).
	".svg": "image/svg+xml",
}

// assets are the static files by name, read once.
var assets = func() map[string]Asset {
	entries, err := fs.ReadDir(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	m := map[string]Asset{}
	for _, e := range entries {
		ctype, ok := staticTypes[path.Ext(e.Name())]
		if e.IsDir() || !ok {
			panic(fmt.Sprintf("templates: static/%s is not a .css, .js or .svg file", e.Name()))
		}
		b, err := fs.ReadFile(staticFiles, "static/"+e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // a valid level: no error
		if _, err := zw.Write(b); err != nil {
			panic(err)
		}
		if err := zw.Close(); err != nil {
			panic(err)
		}
		m[e.Name()] = Asset{Name: e.Name(), ContentType: ctype, Content: b, Version: hex.EncodeToString(sum[:8]), Gzip: gz.Bytes()}
	}
	return m
}()

// StaticAsset returns the static file called name.
func StaticAsset(name string) (Asset, bool) {
	a, ok := assets[name]
	return a, ok
}

// StaticURL is the path of the static file called name, with its version:
// what a page links to. An unknown name is an error, so a page naming a
// file that does not exist fails to render (and the package tests fail)
// instead of linking to a 404.
func StaticURL(name string) (string, error) {
	a, ok := assets[name]
	if !ok {
		return "", fmt.Errorf("templates: no static file %q", name)
	}
	return StaticPrefix + a.Name + "?v=" + a.Version, nil
}

// Product is one catalogue entry as the form shows it.
type Product struct {
	Code    string // the value posted in "products"
	Label   string // what the person reads; see ProductLabel
	Checked bool   // ticked, e.g. when the form comes back with errors
}

// FormPage is everything the connection-request form needs. The texts in
// Errors and Notice are shown as given, so they must already be in Lang
// (see Message).
type FormPage struct {
	Lang Lang
	// Action is where the form posts, normally "/v1/leads".
	Action string
	// Path is the form page's own path ("/"). The language links point
	// there, which matters when the form is the answer to a failed post and
	// the browser's address is Action; empty keeps them relative ("?lang=kk").
	Path string
	// Values re-fill the form after an error, by field name: entity_type,
	// name, phone, email, tax_id, message, consent_processing and
	// consent_marketing ("true", "on" or "1" when ticked); and the hidden
	// page_url and TagFields, on a fresh form too.
	Values map[string]string
	// Products are the catalogue entries in the order to show them.
	Products []Product
	// Errors maps a field name to its message, shown next to the field.
	// Messages for names that have no field on the page (lang,
	// redirect_url, …) are listed above the form so none is lost.
	Errors map[string]string
	// Notice is a general message above the form. When it is empty and
	// there are Errors, the form.has_errors summary is shown.
	Notice string
	// PolicyURL and PolicyVersion identify the privacy policy the
	// processing consent refers to.
	PolicyURL     string
	PolicyVersion string
	// FormToken is an opaque signed stamp of when the page was rendered,
	// posted back as form_token: the anti-fraud check of submission speed.
	FormToken string
	// Rerender marks the form as the answer to a post that failed: its
	// address is then the post's, so the page script must not take it for
	// the page the person came from (page_url).
	Rerender bool
	// Company is named in the footer and the consent texts.
	Company Company
}

// DefaultCompanyName is COMPANY_NAME's default: the operator of the site
// and the data, named on every page and in the consent texts.
const DefaultCompanyName = "PaymTech LLP"

// Company is the operator named in every public page's footer and in the
// consent texts (COMPANY_NAME and COMPANY_CONTACT).
type Company struct {
	Name    string // "" means DefaultCompanyName
	Contact string // a contact line (address, phone); "" shows none
}

// ThanksPage is the page shown after a request was accepted.
type ThanksPage struct {
	Lang    Lang
	Company Company
	// Reference is the request's reference — the lead id the post's 202
	// gave — shown so that a person can quote it; "" shows none. It is
	// shown only when it is a UUID, so a crafted link cannot make the page
	// say something else.
	Reference string
}

// thanksView adapts a ThanksPage to the template.
type thanksView struct {
	page
	Reference string
}

// page is what the layout needs from every page.
type page struct {
	Lang Lang
	Path string
	// query holds the parameters besides lang that the language links must
	// keep — the confirmation token, without which the page could not be
	// shown again in another language; the form's campaign tags.
	query url.Values
	// noLanguages leaves the switcher out of a page that cannot be asked
	// for again, such as the answer to a POST.
	noLanguages bool
	// Company is named in the footer and the consent texts.
	Company Company
}

// CompanyName is the operator's name, DefaultCompanyName when none is set.
func (p page) CompanyName() string { return p.Company.name() }

// name is the operator's name, DefaultCompanyName when none is set. It is
// folded to one line because emails put it in their subject.
func (c Company) name() string {
	if n := oneLine(c.Name); n != "" {
		return n
	}
	return DefaultCompanyName
}

// T returns the catalogue text for key in the page language.
func (p page) T(key string, args ...any) string {
	return Message(p.Lang, key, args...)
}

// langLink is one entry of the language switcher.
type langLink struct {
	Lang    Lang
	Label   string
	Href    string
	Current bool
}

// Languages lists the switcher links. Each language is named in itself, so
// a person who cannot read the current page still finds their own.
func (p page) Languages() []langLink {
	if p.noLanguages {
		return nil
	}
	links := make([]langLink, 0, len(languages))
	for _, l := range languages {
		q := maps.Clone(p.query)
		if q == nil {
			q = url.Values{}
		}
		q.Set("lang", string(l))
		links = append(links, langLink{
			Lang:    l,
			Label:   Message(l, "switcher."+string(l)),
			Href:    p.Path + "?" + q.Encode(),
			Current: l == p.Lang,
		})
	}
	return links
}

// fieldNames are the fields that show their own error next to them.
var fieldNames = []string{
	"entity_type", "name", "phone", "email", "tax_id", "products", "message",
	"consent_processing", "consent_marketing",
}

// entityTypes are the values of the entity_type radio buttons; each has the
// catalogue label "entity.<value>".
var entityTypes = []string{"legal_entity", "sole_proprietor"}

// formView adapts a FormPage to the template.
type formView struct {
	page
	Form FormPage
}

// Value returns the re-filled value of a field.
func (v formView) Value(name string) string {
	return v.Form.Values[name]
}

// Checked reports whether a checkbox was ticked, accepting the same booleans
// as the intake ("true", "on", "1").
func (v formView) Checked(name string) bool {
	switch strings.ToLower(v.Form.Values[name]) {
	case "true", "on", "1":
		return true
	}
	return false
}

// Error returns the message for a field, or "".
func (v formView) Error(name string) string {
	return v.Form.Errors[name]
}

// entityOption is one entity_type radio button.
type entityOption struct {
	Value   string
	Label   string
	Checked bool
}

// EntityOptions lists the entity_type radio buttons with their state.
func (v formView) EntityOptions() []entityOption {
	opts := make([]entityOption, 0, len(entityTypes))
	for _, t := range entityTypes {
		opts = append(opts, entityOption{
			Value:   t,
			Label:   v.T("entity." + t),
			Checked: v.Form.Values["entity_type"] == t,
		})
	}
	return opts
}

// Notice is the message above the form.
func (v formView) Notice() string {
	if v.Form.Notice == "" && len(v.Form.Errors) > 0 {
		return v.T("form.has_errors")
	}
	return v.Form.Notice
}

// OtherErrors are the error messages for names without a field on the page,
// in a stable order.
func (v formView) OtherErrors() []string {
	var keys []string
	for k := range v.Form.Errors {
		if !slices.Contains(fieldNames, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	msgs := make([]string, 0, len(keys))
	for _, k := range keys {
		msgs = append(msgs, v.Form.Errors[k])
	}
	return msgs
}

// TagFields are the campaign tags the form carries in hidden fields when
// FormPage.Values holds them: marketing's labels, not personal data, so
// the language links keep them in their URLs too.
var TagFields = []string{"utm_source", "utm_medium", "utm_campaign"}

// tagField is one hidden campaign tag of the form.
type tagField struct{ Name, Value string }

// Tags are the campaign tags the form carries, in TagFields order.
func (v formView) Tags() []tagField {
	var tags []tagField
	for _, name := range TagFields {
		if val := v.Form.Values[name]; val != "" {
			tags = append(tags, tagField{Name: name, Value: val})
		}
	}
	return tags
}

// RenderForm writes the connection-request form. Nothing is written when
// rendering fails, so the caller can still answer with an error page.
func RenderForm(w io.Writer, p FormPage) error {
	if !p.Lang.valid() {
		return fmt.Errorf("templates: render form: unsupported language %q", p.Lang)
	}
	v := formView{page: page{Lang: p.Lang, Path: p.Path, Company: p.Company}, Form: p}
	for _, t := range v.Tags() {
		if v.query == nil {
			v.query = url.Values{}
		}
		v.query.Set(t.Name, t.Value)
	}
	return render(w, "form", formTemplate, v)
}

// RenderThanks writes the thank-you page.
func RenderThanks(w io.Writer, p ThanksPage) error {
	if !p.Lang.valid() {
		return fmt.Errorf("templates: render thanks: unsupported language %q", p.Lang)
	}
	v := thanksView{page: page{Lang: p.Lang, Company: p.Company}}
	if id, err := uuid.Parse(p.Reference); err == nil {
		v.Reference = id.String()
		// The language links keep the reference.
		v.query = url.Values{"ref": {v.Reference}}
	}
	return render(w, "thanks", thanksTemplate, v)
}

// render executes t into a buffer first so that a failure half-way never
// sends half a page.
func render(w io.Writer, name string, t *template.Template, data any) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("templates: execute %s: %w", name, err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("templates: write %s: %w", name, err)
	}
	return nil
}

// The purposes of a one-button confirmation page: each has its own texts
// (catalogue keys "<purpose>.title", ".ask", ".button", ".done_title",
// ".done", ".invalid_title", ".invalid", ".already_title", ".already").
const (
	PurposeOptin       = "confirm"     // confirm a product-news opt-in
	PurposeUnsubscribe = "unsubscribe" // withdraw it (RFC 8058's page for people)
)

// The states of a confirmation page.
const (
	ConfirmAsk     = "ask"     // the GET: a button to confirm
	ConfirmDone    = "done"    // after the POST confirmed
	ConfirmInvalid = "invalid" // the token is wrong, expired or used up
	ConfirmAlready = "already" // the GET of a link already used: nothing to do
)

// ConfirmPage is the page behind the link of the opt-in email. Its GET
// only shows a one-button form that POSTs back, because mail link scanners
// prefetch every link and must not confirm anyone; the page has no script
// that could submit the form by itself.
type ConfirmPage struct {
	Lang Lang
	// Purpose is PurposeOptin (the zero value means it) or
	// PurposeUnsubscribe.
	Purpose string
	// Action is where the button posts: the confirmation URL itself, a
	// path on this site or an absolute http(s) URL. It is required when
	// asking. The language links point to it as well, with lang replaced,
	// so that switching language keeps the token; without it (and once
	// confirmed) there are no language links.
	Action string
	// State is ConfirmAsk, ConfirmDone or ConfirmInvalid.
	State string
	// Company is named in the footer.
	Company Company
}

// confirmView adapts a ConfirmPage to the template.
type confirmView struct {
	page
	purpose string
	State   string
	Action  string
}

// K is the text of key for the page's purpose, formatted with args (the
// title, ask and done texts of both purposes name the operator).
func (v confirmView) K(key string, args ...any) string { return v.T(v.purpose+"."+key, args...) }

// RenderConfirm writes the opt-in confirmation page.
func RenderConfirm(w io.Writer, p ConfirmPage) error {
	if !p.Lang.valid() {
		return fmt.Errorf("templates: render confirm: unsupported language %q", p.Lang)
	}
	if p.State != ConfirmAsk && p.State != ConfirmDone && p.State != ConfirmInvalid && p.State != ConfirmAlready {
		return fmt.Errorf("templates: render confirm: unknown state %q", p.State)
	}
	switch p.Purpose {
	case "":
		p.Purpose = PurposeOptin
	case PurposeOptin, PurposeUnsubscribe:
	default:
		return fmt.Errorf("templates: render confirm: unknown purpose %q", p.Purpose)
	}
	v := confirmView{page: page{Lang: p.Lang, noLanguages: true, Company: p.Company}, purpose: p.Purpose, State: p.State}
	u, ok := localOrHTTPURL(p.Action)
	if !ok && p.State == ConfirmAsk {
		// The action carries the token, so it stays out of the error.
		return errors.New("templates: render confirm: the form action is neither a path nor an http(s) URL")
	}
	if ok && p.State != ConfirmDone && p.State != ConfirmAlready {
		v.Action = p.Action
		// The language links lead back to this very URL; Languages
		// replaces its lang.
		q := u.Query()
		u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
		v.page = page{Lang: p.Lang, Path: u.String(), query: q, Company: p.Company}
	}
	return render(w, "confirm", confirmTemplate, v)
}
