// Package openapitest checks real HTTP exchanges against leadgate's OpenAPI
// document (intake/httpapi/openapi), so the document cannot drift from what
// the server does: the tests of intake/httpapi and cmd/leadgate route their
// requests through Transport, and an answer the document does not describe
// fails the request with the validator's message.
//
// It is imported by tests only; the validator never reaches the binary.
package openapitest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"

	"github.com/paymtech/leadgate/intake/httpapi/openapi"
)

// Checker validates exchanges against the document.
type Checker struct {
	mu sync.Mutex // the validator's caches are not documented as safe for concurrent use
	v  validator.Validator
}

// New builds a Checker over the document, after checking that the
// document is valid OpenAPI 3.1.
func New() (*Checker, error) {
	doc, err := libopenapi.NewDocument(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi.json: %w", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("openapi.json is not valid OpenAPI: %s", describe(verrs))
	}
	return &Checker{v: v}, nil
}

// Check validates one exchange whose bodies have been read (req's and
// resp's Body must be readable again: Check reads them from the given
// copies). What it checks, and why:
//   - an exchange on a path or method the document does not have is not
//     checked: HTML pages, the console and other servers (fake CRMs, mail
//     providers) share the tests' transport. That every JSON route is in
//     the document is the route-table test's job (TestOpenAPICoversRoutes);
//   - an HTML answer is a browser's form post answered with a page, which
//     the document leaves out; a plain-text 404 or 405 is net/http's
//     ServeMux finding no route, not an answer of any route;
//   - every other answer must be documented: its status, its content type
//     and its body's schema;
//   - the request must match the document when it was accepted (2xx): the
//     tests send malformed requests on purpose to see them refused, and a
//     refused request is by definition outside what the document allows.
func (c *Checker) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "text/html" {
		return nil
	}
	if ct == "text/plain" && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
		return nil // net/http's ServeMux: no route here (a metrics-only listener, say), so no answer of leadgate's
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	resp2 := *resp
	resp2.Body = io.NopCloser(bytes.NewReader(respBody))
	c.mu.Lock()
	_, errs := c.v.ValidateHttpResponse(req, &resp2)
	if !undocumented(errs) && len(errs) == 0 && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		_, errs = c.v.ValidateHttpRequestSync(req)
	}
	c.mu.Unlock()
	if len(errs) == 0 || undocumented(errs) {
		return nil
	}
	return fmt.Errorf("openapi: %s %s answered %d: %s", req.Method, req.URL.Path, resp.StatusCode, describe(errs))
}

// undocumented says whether errs only say the path or method is not in the
// document.
func undocumented(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.IsPathMissingError() || e.IsOperationMissingError() {
			return true
		}
	}
	return false
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error()) // with its schema failures, field by field
	}
	return b.String()
}

// Transport returns a RoundTripper that sends through next and checks
// every exchange; a mismatch is the round trip's error, so the test's
// request fails with the validator's message.
func (c *Checker) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper{c: c, next: next}
}

type roundTripper struct {
	c    *Checker
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err := rt.c.Check(req, reqBody, resp, respBody); err != nil {
		return nil, err
	}
	return resp, nil
}
