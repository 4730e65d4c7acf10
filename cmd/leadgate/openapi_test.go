package main

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/paymtech/leadgate/intake/httpapi/openapitest"
)

// TestMain checks every exchange of this package's end-to-end tests with
// leadgate against the OpenAPI document (intake/httpapi/openapi): they
// reach it through http.DefaultTransport (http.Get, http.Post,
// http.DefaultClient), so an answer of the running binary's server that the
// document does not describe fails the test's request with the validator's
// message. Calls leadgate itself makes to fake CRMs and mail providers go
// to paths the document does not have and are not checked.
func TestMain(m *testing.M) {
	c, err := openapitest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.DefaultTransport = c.Transport(http.DefaultTransport)
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
