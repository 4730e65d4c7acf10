package httpapi

// The security headers of every answer are set here and nowhere else:
// secure, applied to every route in Register, gives each answer the headers
// of an answer that is not a page; page, around the handler of a route that
// answers with HTML, gives it those of its kind of page.

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// static serves the pages' stylesheet and script (templates.StaticAsset) at
// GET /static/{file}. A request for the current version (the ?v= that
// templates.StaticURL writes) may be cached for a year: that URL never
// names other content. Any other request — no version, or another one, as
// when a page from a newer instance asks an older one during a rolling
// deploy — must be revalidated, so no cache keeps the wrong file under a
// URL for a year.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	a, ok := templates.StaticAsset(r.PathValue("file"))
	if !ok {
		s.writeError(w, "static", &intake.Error{Code: intake.ENotFound, Message: "no such static file"}, nil, "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Add("Vary", "Accept-Encoding")
	content, etag := a.Content, `"`+a.Version+`"`
	if acceptsGzip(r) {
		// The gzipped bytes are another representation, with an ETag of
		// their own; ranges then apply to them, as HTTP has it.
		content, etag = a.Gzip, `"`+a.Version+`-gzip"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if r.URL.Query().Get("v") == a.Version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	// ServeContent answers HEAD, ranges and If-None-Match with the ETag.
	http.ServeContent(w, r, a.Name, time.Time{}, bytes.NewReader(content))
}

// pageKind is what kind of HTML page a route answers with, which decides
// who may frame it and where its forms may go.
type pageKind int

const (
	// notPage is JSON, a redirect, a webhook's answer or a static file:
	// nothing to run, style or frame.
	notPage pageKind = iota
	// embeddable pages are the form and the thanks page (and the form
	// again after a refused post): the company site may frame them
	// (FRAME_ANCESTORS), and the form may go to the service's own origin
	// and to CORS_ALLOWED_ORIGINS, where a redirect_url may send it.
	embeddable
	// standalone pages are the one-button confirm and unsubscribe pages:
	// never framed, so no site can lay one under its own and trick a
	// person into clicking; their button only posts back to them.
	standalone
	// consolePage is the back office (/admin/): never framed, forms post
	// only to itself, scripts may fetch from it alone (connect-src), and
	// nothing is cached — its pages show personal data, which must not
	// stay on a shared computer's disk.
	consolePage
	pageKinds
)

// securityHeaders are the header values of each pageKind, made once.
type securityHeaders struct {
	csp          [pageKinds]string
	frameOptions [pageKinds]string // X-Frame-Options, "" for none
}

// referrerPolicy sends the full address only to the service itself, which
// falls back to the Referer for page_url when the page's script did not
// run. Other sites get nothing: the confirm and unsubscribe pages' URLs
// hold a token, and a redirect_url on the company site then reads as a
// visit of its own rather than one referred by leadgate.
const referrerPolicy = "same-origin"

// newSecurityHeaders makes the headers of each kind of answer from the
// configured origins. Scripts and styles come only from the service's own
// files (templates.StaticURL), never inline, so an injected <script> or
// style="" does nothing.
func newSecurityHeaders(opts Options, log *slog.Logger) securityHeaders {
	formAction := []string{"'self'"}
	for _, src := range append(cspSources(log, "PUBLIC_BASE_URL", []string{opts.PublicOrigin}),
		cspSources(log, "CORS_ALLOWED_ORIGINS", opts.AllowedOrigins)...) {
		if !slices.Contains(formAction, src) { // the own origin may be listed as allowed too
			formAction = append(formAction, src)
		}
	}
	framers := cspSources(log, "FRAME_ANCESTORS", opts.FrameAncestors)
	page := func(formAction, frameAncestors []string) string {
		return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action " +
			strings.Join(formAction, " ") + "; base-uri 'none'; frame-ancestors " + strings.Join(frameAncestors, " ")
	}
	var h securityHeaders
	h.csp[notPage] = "default-src 'none'; frame-ancestors 'none'"
	h.frameOptions[notPage] = "DENY"
	h.csp[embeddable] = page(formAction, append([]string{"'self'"}, framers...))
	if len(framers) == 0 {
		// X-Frame-Options has no list of origins: old browsers that know only
		// it get SAMEORIGIN when no other site may frame the page, and
		// nothing when one may (they would refuse the company site too).
		h.frameOptions[embeddable] = "SAMEORIGIN"
	}
	h.csp[standalone] = page([]string{"'self'"}, []string{"'none'"})
	h.frameOptions[standalone] = "DENY"
	h.csp[consolePage] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	h.frameOptions[consolePage] = "DENY"
	return h
}

// cspSources are the origins as Content-Security-Policy source expressions
// ("https://www.example.kz", a leading "*." allowed). The configuration
// normalises them; one that is not an origin all the same — a path, a
// space, a ';' that would end the directive — is left out, with a warning
// naming the variable, rather than let into the header.
func cspSources(log *slog.Logger, variable string, origins []string) []string {
	var out []string
	for _, o := range origins {
		src, ok := cspSource(o)
		if !ok {
			if o != "" {
				log.Warn("not an origin; left out of the Content-Security-Policy", "variable", variable)
			}
			continue
		}
		if !slices.Contains(out, src) {
			out = append(out, src)
		}
	}
	return out
}

// cspSource is origin, lower-cased, when it is exactly scheme://host[:port]
// with an http(s) scheme.
func cspSource(origin string) (string, bool) {
	origin = strings.ToLower(origin)
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Scheme+"://"+u.Host != origin {
		return "", false
	}
	host := strings.TrimPrefix(u.Host, "*.")
	if host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune(".-:[]", r))
	}) {
		return "", false
	}
	return origin, true
}

// secure gives every answer of next the headers of an answer that is not a
// page: nothing may be sniffed into another type, run, styled or framed.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", referrerPolicy)
		s.headers.set(h, notPage)
		next.ServeHTTP(w, r)
	})
}

// page marks a route whose answers are HTML pages of kind: they get the
// kind's policy instead of secure's.
func (s *Server) page(kind pageKind, next http.HandlerFunc) http.HandlerFunc {
	if kind == embeddable { // the form and thanks pages; see gzip.go for why only these
		next = gzipped(next)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		s.headers.set(w.Header(), kind)
		next(w, r)
	}
}

// set puts the policy and framing headers of kind into h.
func (sh *securityHeaders) set(h http.Header, kind pageKind) {
	h.Set("Content-Security-Policy", sh.csp[kind])
	if kind == consolePage {
		h.Set("Cache-Control", "no-store")
	}
	if xfo := sh.frameOptions[kind]; xfo != "" {
		h.Set("X-Frame-Options", xfo)
	} else {
		h.Del("X-Frame-Options")
	}
}
