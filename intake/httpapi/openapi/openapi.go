// Package openapi holds leadgate's OpenAPI 3.1 document: every JSON route
// of the public contract (docs: /work/shared/CONTRACT.md, README "Admin
// API"), written by hand so that it says what integrators may rely on, not
// whatever the code happens to emit. It is a leaf package, so the server
// can serve it and the tests' validator (openapitest) can read it without
// either importing the other.
package openapi

import _ "embed"

//go:embed openapi.json
var document []byte

// Document is the OpenAPI document as served at GET /openapi.json. The
// caller must not modify it.
func Document() []byte { return document }
