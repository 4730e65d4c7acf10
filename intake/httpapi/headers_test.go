package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
	NewServer(Deps{Keys: testKeys(t)}, opts, slog.New(slog.DiscardHandler), now).Register(mux)
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
			"Content-Type":  a.ContentType,
			"Cache-Control": "public, max-age=31536000, immutable",
			"ETag":          `"` + a.Version + `"`,
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
