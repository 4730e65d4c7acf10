package httpapi

import (
	"net/http"

	"github.com/paymtech/leadgate/intake/httpapi/openapi"
)

// openAPI answers GET /openapi.json: the hand-written OpenAPI 3.1 document
// of every JSON route (intake/httpapi/openapi/openapi.json). It holds no
// secret and no personal data, so it is public; integrators read it to
// build clients, and the tests check every answer against it.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openapi.Document())
}
