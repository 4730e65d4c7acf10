package httpapi

import (
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
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

// gzipped serves next gzip-encoded when the request accepts it and the
// answer is worth it. gzhttp keeps its compressors in a pool and sends an
// answer under 1 KiB as it is: the 202 of every lead posted from a browser
// is such an answer, and the gzip.Writer made for each before cost 820 KiB
// of garbage a request (BenchmarkIntake/leadgate-loopback-http: 838 → 19
// KiB allocated and ~450 → ~150 µs a request). zstd stays off: gzip is what
// every browser takes, and one encoding is one less to test.
func gzipped(next http.HandlerFunc) http.HandlerFunc { return gzipWrap(next) }

var gzipWrap = func() func(http.Handler) http.HandlerFunc {
	wrap, err := gzhttp.NewWrapper(gzhttp.EnableZstd(false))
	if err != nil {
		panic(err) // the options are constants
	}
	return wrap
}()
