package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// The form a visitor can trust (issue 12): what the server renders into it
// and records with the lead.

// getPage GETs path with the given headers and returns the status and body.
func getPage(t *testing.T, base, path string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// hiddenPageURL is the value of the page_url field the page renders.
func hiddenPageURL(t *testing.T, page string) string {
	t.Helper()
	const marker = `name="page_url" value="`
	_, rest, ok := strings.Cut(page, marker)
	if !ok {
		t.Fatal("the page has no page_url field")
	}
	v, _, _ := strings.Cut(rest, `"`)
	return html.UnescapeString(v)
}

// TestPageURLKeptThroughRerender: the form records the page the visitor
// came from — the Referer of GET / — in its hidden page_url, and a post
// that fails brings the form back with it kept; the re-post's Referer, the
// post address /v1/leads, is never taken for it.
func TestPageURLKeptThroughRerender(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	const landing = "https://www.example.kz/connect?from=ad"
	_, page := getPage(t, f.url, "/?lang=kk", map[string]string{"Referer": landing})
	if got := hiddenPageURL(t, page); got != landing {
		t.Fatalf("GET / with Referer %s renders page_url %q", landing, got)
	}
	if _, page := getPage(t, f.url, "/", map[string]string{"Referer": "javascript:alert(1)"}); hiddenPageURL(t, page) != "" {
		t.Fatal("a javascript: Referer went into page_url")
	}

	// A failed post (no consent) with what the page rendered comes back
	// with it, whatever the Referer.
	v := strictForm("rerender@example.com")
	v.Del("consent_processing")
	v.Set("page_url", landing)
	browser := map[string]string{"Accept": "text/html", "Referer": f.url + "/v1/leads"}
	resp := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), browser)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnprocessableEntity || hiddenPageURL(t, string(b)) != landing {
		t.Fatalf("failed post: %d with page_url %q, want 422 with %q", resp.StatusCode, hiddenPageURL(t, string(b)), landing)
	}
	if !strings.Contains(string(b), "data-rerender") {
		t.Error("the form shown again is not marked data-rerender: its script would take /v1/leads for the page")
	}

	// Without a page_url, the re-render takes the post's Referer when it is
	// a page (the form's) and not when it is /v1/leads.
	v.Del("page_url")
	for ref, want := range map[string]string{f.url + "/?lang=ru": f.url + "/?lang=ru", f.url + "/v1/leads": ""} {
		resp := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), map[string]string{"Accept": "text/html", "Referer": ref})
		b, _ := io.ReadAll(resp.Body)
		if got := hiddenPageURL(t, string(b)); got != want {
			t.Errorf("failed post from %s: page_url %q, want %q", ref, got, want)
		}
	}

	// A post accepted from the re-rendered form with no page_url records
	// no page rather than /v1/leads.
	ok := strictForm("rerender.ok@example.com")
	resp = post(t, f.url, "application/x-www-form-urlencoded", ok.Encode(), map[string]string{"Referer": f.url + "/v1/leads"})
	body := decode(t, resp)
	l, err := f.store.Leads.Get(context.Background(), body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if l.Meta.PageURL != "" || l.Consent.PageURL != "" {
		t.Errorf("a post from /v1/leads recorded page %q / %q, want none", l.Meta.PageURL, l.Consent.PageURL)
	}
}

// TestPolicyURLPerLanguage: the form links to the policy of its language
// (saying, for screen readers, that it opens a new tab), and the consent
// proof records the policy of the language the request came in; a
// language without its own uses POLICY_URL.
func TestPolicyURLPerLanguage(t *testing.T) {
	t.Parallel()
	const kkPolicy = "https://example.kz/kk/privacy"
	f := setupHTTP(t, func(o *Options) { o.PolicyURLs = map[templates.Lang]string{templates.KK: kkPolicy} })
	for lang, want := range map[string]string{"kk": kkPolicy, "en": "https://example.kz/privacy"} {
		_, page := getPage(t, f.url, "/?lang="+lang, nil)
		newTab := templates.Message(templates.Lang(lang), "link.new_tab")
		if !strings.Contains(page, `<a href="`+want+`" target="_blank" rel="noopener">`) || !strings.Contains(page, newTab) {
			t.Errorf("the %s form does not link to %s in a new tab saying %q", lang, want, newTab)
		}
		v := strictForm("policy." + lang + "@example.com")
		v.Set("lang", lang)
		body := decode(t, post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), nil))
		l, err := f.store.Leads.Get(context.Background(), body["id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if l.Consent.PolicyURL != want {
			t.Errorf("a consent given in %s records policy %q, want %q", lang, l.Consent.PolicyURL, want)
		}
	}
}

// TestCompanyOnPages: COMPANY_NAME and COMPANY_CONTACT are in the footer of
// the form, thanks, confirm and unsubscribe pages, and the name in the
// form's consent texts.
func TestCompanyOnPages(t *testing.T) {
	t.Parallel()
	company := templates.Company{Name: "Example Operator LLP", Contact: "Almaty, +7 727 000 00 00"}
	f := setupHTTP(t, func(o *Options) { o.Company = company })
	for _, path := range []string{"/?lang=ru", "/thanks?lang=kk", "/v1/optin/confirm?token=x", "/v1/unsubscribe?token=x"} {
		_, page := getPage(t, f.url, path, nil)
		_, footer, _ := strings.Cut(page, "<footer>")
		footer, _, _ = strings.Cut(html.UnescapeString(footer), "</footer>")
		if !strings.Contains(footer, company.Name) || !strings.Contains(footer, company.Contact) {
			t.Errorf("%s: the footer %q does not name the company and its contact", path, footer)
		}
	}
	_, page := getPage(t, f.url, "/?lang=en", nil)
	for _, key := range []string{"consent.withdraw", "consent.marketing"} {
		if want := html.EscapeString(templates.Message(templates.EN, key, company.Name)); !strings.Contains(page, want) {
			t.Errorf("the form lacks %s naming the company: %q", key, want)
		}
	}
}

// TestThanksReference: the thanks page shows a reference only when it is a
// UUID — a crafted link cannot make it say anything else — and always links
// back to the form in its language.
func TestThanksReference(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	const id = "01937a6c-7d2e-7c3a-9b1e-0123456789ab"
	_, page := getPage(t, f.url, "/thanks?lang=kk&ref="+id, nil)
	if !strings.Contains(page, `<strong class="reference">`+id+`</strong>`) || !strings.Contains(page, `href="/?lang=kk"`) {
		t.Errorf("thanks page with ref %s lacks the reference or the link back", id)
	}
	if !strings.Contains(page, `href="?lang=ru&amp;ref=`+id+`"`) {
		t.Error("the language links drop the reference")
	}
	_, page = getPage(t, f.url, "/thanks?lang=kk&ref="+url.QueryEscape("Call +7 700 000 00 00"), nil)
	if strings.Contains(page, `class="reference"`) || strings.Contains(page, "Call") {
		t.Error("a ref that is not a UUID is shown")
	}
}

// TestUsedLinksSayAlreadyDone: the confirmation link of a confirmed
// subscriber with nothing waiting, and the unsubscribe link of someone
// unsubscribed, show "already done" pages with no button, instead of asking
// again; a pending opt-in's link still asks.
func TestUsedLinksSayAlreadyDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	already := func(purpose string) string { return templates.Message(templates.EN, purpose+".already_title") }
	check := func(t *testing.T, link, wantTitle string, wantButton bool) {
		t.Helper()
		status, page := getPage(t, link, "", nil)
		if status != http.StatusOK || !strings.Contains(page, "<h1>"+html.EscapeString(wantTitle)+"</h1>") ||
			strings.Contains(page, `method="post"`) != wantButton {
			_, h1, _ := strings.Cut(page, "<h1>")
			h1, _, _ = strings.Cut(h1, "</h1>")
			t.Errorf("GET of the link: %d %q, want the page titled %q (a button: %v)", status, h1, wantTitle, wantButton)
		}
	}
	withMarketing := strings.Replace(validJSON, `"consent_processing":true`, `"consent_processing":true,"consent_marketing":true`, 1)

	// Double opt-in: pending, the link asks.
	f := setupHTTP(t, func(o *Options) { o.DoubleOptIn = true })
	if resp := post(t, f.url, "application/json", withMarketing, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	person, _ := f.store.People.PersonOf("test@example.com")
	confirm := f.url + "/v1/optin/confirm?lang=en&token=" + url.QueryEscape(f.keys.OptinToken(person, f.clock.Now().Add(time.Hour)))
	check(t, confirm, templates.Message(templates.EN, "confirm.title", templates.DefaultCompanyName), true)

	// Confirmed at once (no double opt-in): the link was, in effect, used.
	f = setupHTTP(t, func(o *Options) { o.DoubleOptIn = false })
	if resp := post(t, f.url, "application/json", withMarketing, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	person, _ = f.store.People.PersonOf("test@example.com")
	if state, _ := f.store.People.Marketing(ctx, person); state != intake.MarketingActive {
		t.Fatalf("consent %q, want active", state)
	}
	confirm = f.url + "/v1/optin/confirm?lang=en&token=" + url.QueryEscape(f.keys.OptinToken(person, f.clock.Now().Add(time.Hour)))
	check(t, confirm, already("confirm"), false)

	unsubscribe := f.url + "/v1/unsubscribe?lang=en&token=" + url.QueryEscape(f.store.Campaigns.UnsubscribeToken(person))
	check(t, unsubscribe, templates.Message(templates.EN, "unsubscribe.title", templates.DefaultCompanyName), true)
	resp, err := http.Post(unsubscribe, "application/x-www-form-urlencoded", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if state, _ := f.store.People.Marketing(ctx, person); state != intake.MarketingWithdrawn {
		t.Fatalf("consent %q after unsubscribing, want withdrawn", state)
	}
	check(t, unsubscribe, already("unsubscribe"), false)
}

// TestFavicon: the pages link the embedded SVG favicon, served as
// image/svg+xml under /static.
func TestFavicon(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	icon, err := templates.StaticURL("favicon.svg")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/?lang=kk", "/thanks", "/v1/unsubscribe?token=x"} {
		if _, page := getPage(t, f.url, path, nil); !strings.Contains(page, `<link rel="icon" href="`+html.EscapeString(icon)+`"`) {
			t.Errorf("%s does not link the favicon %s", path, icon)
		}
	}
	resp, err := http.Get(f.url + icon)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET %s: %d %q", icon, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// askingPeople are People for page tests without a store: every link's
// person has an opt-in waiting, so the confirm and unsubscribe pages ask.
// Any other method is unused there (and would panic on the nil interface).
type askingPeople struct{ People }

func (askingPeople) MarketingDone(context.Context, string) (string, bool, error) {
	return intake.MarketingPending, true, nil
}

// TestGzipPublicPagesOnly: the form, thanks page and static files go gzipped
// to a client that accepts it; the confirm, unsubscribe and console pages
// never do (BREACH: a secret next to text a request chooses), and a client
// that does not accept gzip gets plain bytes.
func TestGzipPublicPagesOnly(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	css, _ := templates.StaticURL("leadgate.css")
	for path, want := range map[string]bool{"/?lang=kk": true, "/thanks": true, css: true,
		"/v1/unsubscribe?token=x": false, "/v1/optin/confirm?token=x": false, "/admin/login": false} {
		for _, accept := range []string{"gzip, deflate, br", "identity"} {
			req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
			req.Header.Set("Accept-Encoding", accept) // set by hand: the client then does not decompress
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			gz := resp.Header.Get("Content-Encoding") == "gzip"
			if gz != (want && accept != "identity") {
				t.Errorf("GET %s accepting %q: gzip %v", path, accept, gz)
				continue
			}
			if gz {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				if plain, err := io.ReadAll(zr); err != nil || len(plain) <= len(body) {
					t.Errorf("GET %s: gunzip %d bytes to %d, %v", path, len(body), len(plain), err)
				}
			}
		}
	}
}

// TestSmallAnswersGoPlain: an answer under 1 KiB — the 202 of a lead, posted
// by a page whose browser accepts gzip — goes as it is: compressing it
// would make it bigger, and a compressor made for each cost ~800 KiB of
// garbage a request.
func TestSmallAnswersGoPlain(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	resp := post(t, f.url, "application/json", validJSON, map[string]string{"Accept-Encoding": "gzip"})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if m := decode(t, resp); m["status"] != "accepted" {
		t.Errorf("answer %v", m)
	}
}
