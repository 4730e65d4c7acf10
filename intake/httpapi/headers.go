package httpapi

import (
	"bytes"
	"net/http"
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
	h.Set("ETag", `"`+a.Version+`"`)
	if r.URL.Query().Get("v") == a.Version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	// ServeContent answers HEAD, ranges and If-None-Match with the ETag.
	http.ServeContent(w, r, a.Name, time.Time{}, bytes.NewReader(a.Content))
}
