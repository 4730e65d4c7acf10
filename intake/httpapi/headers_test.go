package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/templates"
)

// pagesHandler is the routes over no store: enough for the pages, the
// static files and a refused form post, which touch none. opts edit the
// fixture's options.
func pagesHandler(t *testing.T, edit ...func(*Options)) http.Handler {
	t.Helper()
	opts := Options{
		PublicOrigin: "https://leads.example.kz", AllowedOrigins: []string{"https://www.example.kz"},
		DefaultLang: templates.RU, Products: []string{"acquiring", "pos"}, PolicyVersion: "1",
		PolicyURL: "https://example.kz/privacy",
	}
	for _, e := range edit {
		e(&opts)
	}
	now := func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) }
	mux := http.NewServeMux()
	NewServer(Deps{Keys: testKeys(t), People: askingPeople{}}, opts, slog.New(slog.DiscardHandler), now).Register(mux)
	return mux
}

// serve answers one request to h.
func serve(h http.Handler, method, target string, header map[string]string, body string) *http.Response {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestStaticFiles: the stylesheet and the script are served with their
// types; the versioned URL a page links to is cached for a year, any other
// is revalidated; a cached copy is confirmed with 304; nothing else is
// served from /static/.
func TestStaticFiles(t *testing.T) {
	t.Parallel()
	h := pagesHandler(t)
	for _, name := range []string{"leadgate.css", "leadgate.js"} {
		a, _ := templates.StaticAsset(name)
		u, err := templates.StaticURL(name)
		if err != nil {
			t.Fatal(err)
		}
		resp := serve(h, http.MethodGet, u, nil, "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, a.Content) {
			t.Fatalf("GET %s = %d, %d bytes; want 200 and the file", u, resp.StatusCode, len(body))
		}
		for k, want := range map[string]string{
			"Content-Type":           a.ContentType,
			"Cache-Control":          "public, max-age=31536000, immutable",
			"ETag":                   `"` + a.Version + `"`,
			"X-Content-Type-Options": "nosniff",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", u, k, got, want)
			}
		}
		for _, other := range []string{"/static/" + name, "/static/" + name + "?v=0000000000000000"} {
			resp := serve(h, http.MethodGet, other, nil, "")
			if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusOK || cc != "no-cache" {
				t.Errorf("GET %s = %d, Cache-Control %q; want 200, no-cache", other, resp.StatusCode, cc)
			}
		}
		resp = serve(h, http.MethodGet, u, map[string]string{"If-None-Match": `"` + a.Version + `"`}, "")
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag = %d, want 304", u, resp.StatusCode)
		}
		resp = serve(h, http.MethodHead, u, nil, "")
		if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != a.ContentType {
			t.Errorf("HEAD %s = %d, %d bytes, %q", u, resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/static/missing.css", "/static/", "/static/..%2fpages%2flayout.html", "/static/pages.go"} {
		if resp := serve(h, http.MethodGet, path, nil, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	if resp := serve(h, http.MethodPost, "/static/leadgate.css", nil, ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST a static file = %d, want 405", resp.StatusCode)
	}
}

// The policies the tests expect, written out rather than built the way
// headers.go builds them.
const (
	formCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self' https://leads.example.kz https://www.example.kz; base-uri 'none'; " +
		"frame-ancestors 'self' https://www.example.kz https://*.partner.kz"
	formCSPNoFramers = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self' https://leads.example.kz https://www.example.kz; base-uri 'none'; frame-ancestors 'self'"
	oneButtonCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	notPageCSP = "default-src 'none'; frame-ancestors 'none'"
)

// directive is the value of one directive of a Content-Security-Policy.
func directive(csp, name string) []string {
	for d := range strings.SplitSeq(csp, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == name {
			return f[1:]
		}
	}
	return nil
}

// TestSecurityHeadersPerPageKind: each kind of page carries its policy —
// the form (also when a post is refused and it comes back), the thanks
// page, the confirm and unsubscribe pages (asking, and answering a post) —
// and the other answers the strict one; every answer nosniff and the
// referrer policy.
func TestSecurityHeadersPerPageKind(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	optin := url.QueryEscape(keys.OptinToken("p1", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
	unsub := url.QueryEscape(keys.UnsubscribeToken("p1"))
	browser := map[string]string{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}
	invalid := url.Values{"entity_type": {"legal_entity"}, "phone": {"12"}, "email": {"x@example.com"}}.Encode()
	cases := []struct {
		name, method, target string
		header               map[string]string
		body                 string
		status               int
		html                 bool
		csp, frameOptions    string
	}{
		{"form", "GET", "/?lang=kk", nil, "", 200, true, formCSP, ""},
		{"thanks", "GET", "/thanks?lang=en", nil, "", 200, true, formCSP, ""},
		{"form again, 422", "POST", "/v1/leads", browser, invalid, 422, true, formCSP, ""},
		{"form again, 400", "POST", "/v1/leads", browser, "a=%zz", 400, true, formCSP, ""},
		{"form again, 403 origin", "POST", "/v1/leads", map[string]string{"Accept": "text/html", "Origin": "https://evil.example",
			"Content-Type": "application/x-www-form-urlencoded"}, invalid, 403, true, formCSP, ""},
		{"confirm", "GET", "/v1/optin/confirm?token=" + optin, nil, "", 200, true, oneButtonCSP, "DENY"},
		{"confirm, bad link", "GET", "/v1/optin/confirm?token=x", nil, "", 400, true, oneButtonCSP, "DENY"},
		{"confirm, post of a bad link", "POST", "/v1/optin/confirm?token=x", nil, "", 400, true, oneButtonCSP, "DENY"},
		{"unsubscribe", "GET", "/v1/unsubscribe?token=" + unsub, nil, "", 200, true, oneButtonCSP, "DENY"},
		{"unsubscribe, bad link", "POST", "/v1/unsubscribe?token=x", nil, "", 400, true, oneButtonCSP, "DENY"},
		{"JSON 422", "POST", "/v1/leads", map[string]string{"Content-Type": "application/json"}, `{"phone":"12"}`, 422, false, formCSP, ""},
		{"static", "GET", "/static/leadgate.css", nil, "", 200, false, notPageCSP, "DENY"},
		{"static 404", "GET", "/static/x.css", nil, "", 404, false, notPageCSP, "DENY"},
		{"preflight", "OPTIONS", "/v1/leads", map[string]string{"Origin": "https://www.example.kz"}, "", 204, false, notPageCSP, "DENY"},
		{"webhook", "POST", "/v1/webhooks/sendgrid", nil, "[]", 503, false, notPageCSP, "DENY"},
	}
	h := pagesHandler(t, func(o *Options) {
		o.FrameAncestors = []string{"https://www.example.kz", "https://*.partner.kz"}
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := serve(h, c.method, c.target, c.header, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("%s %s = %d, want %d", c.method, c.target, resp.StatusCode, c.status)
			}
			if isHTML := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"); isHTML != c.html {
				t.Fatalf("Content-Type %q, want HTML %v", resp.Header.Get("Content-Type"), c.html)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": c.csp,
				"X-Frame-Options":         c.frameOptions,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
			} {
				if got := resp.Header.Values(k); len(got) != 1 && want != "" || len(got) > 0 && got[0] != want || want == "" && len(got) != 0 {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}

	// Without FRAME_ANCESTORS only the service frames the form, and old
	// browsers, which know X-Frame-Options alone, are told so.
	h = pagesHandler(t)
	for _, target := range []string{"/", "/thanks"} {
		resp := serve(h, "GET", target, nil, "")
		if csp, xfo := resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Frame-Options"); csp != formCSPNoFramers || xfo != "SAMEORIGIN" {
			t.Errorf("GET %s without FRAME_ANCESTORS: CSP %q, X-Frame-Options %q; want %q, SAMEORIGIN", target, csp, xfo, formCSPNoFramers)
		}
	}
}

// TestFormActionAllowsEveryRedirect: a browser's successful post is
// redirected to /thanks or to a redirect_url on the service's own origin
// or an allowed one, and CSP form-action applies to a form's redirects, so
// the form page's form-action must name every origin a redirect_url may
// have; and no other.
func TestFormActionAllowsEveryRedirect(t *testing.T) {
	t.Parallel()
	allowed := []string{"https://www.example.kz", "https://shop.example.kz:8443", "http://localhost:3000"}
	h := pagesHandler(t, func(o *Options) { o.AllowedOrigins = allowed })
	got := directive(serve(h, "GET", "/", nil, "").Header.Get("Content-Security-Policy"), "form-action")
	want := append([]string{"'self'", "https://leads.example.kz"}, allowed...)
	if !slices.Equal(got, want) {
		t.Fatalf("form-action %q, want %q", got, want)
	}
	// The own origin listed as allowed too is named once.
	h2 := pagesHandler(t, func(o *Options) { o.AllowedOrigins = []string{"https://www.example.kz", "https://leads.example.kz"} })
	if got := directive(serve(h2, "GET", "/", nil, "").Header.Get("Content-Security-Policy"), "form-action"); !slices.Equal(got,
		[]string{"'self'", "https://leads.example.kz", "https://www.example.kz"}) {
		t.Errorf("form-action %q names an origin twice", got)
	}
	p := originPolicy{own: "https://leads.example.kz", allowed: allowed}
	for _, target := range []string{"/thanks", "https://leads.example.kz/done", "https://www.example.kz/thanks?x=1",
		"https://shop.example.kz:8443/ok", "http://localhost:3000/"} {
		u, _ := url.Parse(target)
		origin := "'self'"
		if u.Host != "" {
			origin = u.Scheme + "://" + u.Host
		}
		if !p.allowsRedirect(target) || !slices.Contains(got, origin) {
			t.Errorf("redirect to %s: allowed %v, its origin in form-action %v", target, p.allowsRedirect(target), slices.Contains(got, origin))
		}
	}
}

// TestCSPSourcesLeaveOutWhatIsNotAnOrigin: a configured value that is not
// scheme://host[:port] never reaches the header, where a space or ';'
// would add sources or directives; the variable is named in a warning.
func TestCSPSourcesLeaveOutWhatIsNotAnOrigin(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	got := cspSources(log, "FRAME_ANCESTORS", []string{
		"https://www.example.kz", "HTTPS://WWW.Example.KZ", "https://*.example.kz", "http://[::1]:8080", "http://127.0.0.1:3000",
		"", "https://a.kz; script-src *", "https://a.kz https://b.kz", "https://a.kz/", "https://a.kz/path", "https://a.kz?",
		"https://a.kz#x", "https://u@a.kz", "javascript:alert(1)", "*", "'unsafe-inline'", "data:", "ftp://a.kz", "https://",
		"https://a'b.kz",
	})
	want := []string{"https://www.example.kz", "https://*.example.kz", "http://[::1]:8080", "http://127.0.0.1:3000"}
	if !slices.Equal(got, want) {
		t.Errorf("sources %q, want %q", got, want)
	}
	if n := strings.Count(logged.String(), "variable=FRAME_ANCESTORS"); n != 14 {
		t.Errorf("%d warnings naming FRAME_ANCESTORS, want 14:\n%s", n, logged.String())
	}
	if strings.Contains(logged.String(), "a.kz") {
		t.Errorf("a warning repeats the value:\n%s", logged.String())
	}
}

// TestEveryRouteAnswersWithSecurityHeaders calls every route of the table,
// admin ones without a token too, and finds on each answer nosniff, the
// referrer policy and a Content-Security-Policy refusing frames to all but
// the form and thanks pages.
func TestEveryRouteAnswersWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	srv := f.server(&fakeQueue{}, Options{}, slog.New(slog.DiscardHandler))
	framable := []string{"GET /{$}", "GET /thanks", "POST /v1/leads"}
	for _, rt := range srv.routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.NewReplacer("{$}", "", "{id}", "x", "{file}", "leadgate.css").Replace(path)
		req, _ := http.NewRequest(method, f.url+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		frames := directive(h.Get("Content-Security-Policy"), "frame-ancestors")
		wantFrames := []string{"'none'"}
		if slices.Contains(framable, rt.pattern) {
			wantFrames = []string{"'self'"}
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" || !slices.Equal(frames, wantFrames) {
			t.Errorf("%s (%d): nosniff %q, Referrer-Policy %q, frame-ancestors %q (want %q)", rt.pattern, resp.StatusCode,
				h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"), frames, wantFrames)
		}
	}
}
