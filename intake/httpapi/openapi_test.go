package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake/httpapi/openapi"
	"github.com/paymtech/leadgate/intake/httpapi/openapitest"
)

// TestMain checks every exchange of this package's HTTP tests against the
// OpenAPI document: they all go through http.DefaultTransport (directly
// or through http.DefaultClient), so an answer the document does not
// describe fails the test's request with the validator's message.
func TestMain(m *testing.M) {
	c, err := openapitest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.DefaultTransport = c.Transport(http.DefaultTransport)
	os.Exit(m.Run())
}

// htmlPages are the public routes that answer pages, not JSON: the
// document leaves them out, as it does the console (everything under
// /admin/).
var htmlPages = []string{
	"GET /{$}", "GET /thanks", "GET /static/{file}",
	"GET /v1/optin/confirm", "POST /v1/optin/confirm",
	"GET /v1/unsubscribe", "POST /v1/unsubscribe",
}

// opsRoutes are described in the document but served by cmd/leadgate's
// own mux, not the route table.
var opsRoutes = []string{"GET /healthz", "GET /readyz"}

// TestOpenAPICoversRoutes: every JSON route of the route table has its
// path and method in the document, and the document describes no route
// leadgate does not serve — so a route added without a description, or
// one removed with its description left behind, fails here.
func TestOpenAPICoversRoutes(t *testing.T) {
	if _, err := openapitest.New(); err != nil { // valid OpenAPI 3.1
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	served := map[string]bool{}
	s := setupStore(t).server(&fakeQueue{}, Options{}, slog.New(slog.DiscardHandler))
	for _, rt := range s.routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		if rt.auth == authSession || strings.HasPrefix(path, "/admin/") || slices.Contains(htmlPages, rt.pattern) {
			continue
		}
		served[rt.pattern] = true
		if !documented[method+" "+path] {
			t.Errorf("%s is in the route table but not in openapi.json", rt.pattern)
		}
	}
	for _, r := range opsRoutes {
		served[r] = true
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.json describes %s, which is not a JSON route of the route table", r)
		}
	}
}

// TestOpenAPIServed: GET /openapi.json answers the document, public, as JSON.
func TestOpenAPIServed(t *testing.T) {
	f := setupHTTP(t)
	resp, err := http.Get(f.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || doc["openapi"] != "3.1.0" {
		t.Errorf("GET /openapi.json = %d %q, openapi %v", resp.StatusCode, resp.Header.Get("Content-Type"), doc["openapi"])
	}
}
