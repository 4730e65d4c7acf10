package httpapi

import (
	"compress/gzip"
	"net/http"
	"strings"
)

// The public pages and static files go gzipped to browsers that accept it
// (issue 12): the form is most of a phone's download on a slow line. The
// console's pages are never compressed, nor are the confirm and
// unsubscribe pages: they hold a secret (the session's csrf token, the
// link's token) next to text a request can choose, which is what BREACH
// needs to read a secret from compressed sizes. The form and thanks pages
// hold no secret (the form token is a signed timestamp anyone can get).

// acceptsGzip reports whether the request accepts a gzip-encoded answer.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// gzipWriter compresses what a handler writes.
type gzipWriter struct {
	http.ResponseWriter
	gz          *gzip.Writer
	wroteHeader bool
}

func (g *gzipWriter) WriteHeader(status int) {
	if g.wroteHeader {
		return
	}
	g.wroteHeader = true
	h := g.Header()
	h.Add("Vary", "Accept-Encoding")
	// A redirect or an empty answer has no body worth encoding.
	if status != http.StatusNoContent && status != http.StatusNotModified && (status < 300 || status >= 400) {
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length")
		g.gz = gzip.NewWriter(g.ResponseWriter)
	}
	g.ResponseWriter.WriteHeader(status)
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.gz == nil {
		return g.ResponseWriter.Write(b)
	}
	return g.gz.Write(b)
}

// gzipped serves next gzip-encoded when the request accepts it.
func gzipped(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !acceptsGzip(r) {
			w.Header().Add("Vary", "Accept-Encoding")
			next(w, r)
			return
		}
		g := &gzipWriter{ResponseWriter: w}
		next(g, r)
		if g.gz != nil {
			_ = g.gz.Close() // the client went away if this fails; nothing to tell it
		}
	}
}
