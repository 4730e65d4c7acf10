package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestBearerSchemeAnyCase: the scheme name is case-insensitive (RFC 7235);
// another scheme, or no token, is 401.
func TestBearerSchemeAnyCase(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	call := func(header string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/admin/leads", nil)
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, h := range []string{"Bearer " + salesToken, "bearer " + salesToken, "BEARER " + salesToken,
		"bEaReR " + salesToken, "Bearer  " + salesToken} {
		if got := call(h); got != http.StatusOK {
			t.Errorf("%q = %d, want 200", strings.Replace(h, salesToken, "<token>", 1), got)
		}
	}
	for _, h := range []string{"Basic " + salesToken, "Token " + salesToken, "Bearer" + salesToken, "Bearer",
		"Bearer ", salesToken, "Bearer " + salesToken + "x", "Bearer\t" + salesToken, "Bearers " + salesToken} {
		if got := call(h); got != http.StatusUnauthorized {
			t.Errorf("%q = %d, want 401", strings.Replace(h, salesToken, "<token>", 1), got)
		}
	}
}
