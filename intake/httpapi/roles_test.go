package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

const privacyToken = "privacy-token-0123456789"

// withPrivacy adds a privacy officer's token to setupHTTP's tokens.
func withPrivacy(o *Options) {
	o.AdminTokens = append(o.AdminTokens, intake.Token{Role: "privacy", Name: "p", Secret: privacyToken})
}

// adminRoutes is the admin table of the contract (../shared/CONTRACT.md):
// every route and the role it belongs to. {lead} and {campaign} are filled
// in by the test; body is a plausible request for the route, naming nobody
// real.
var adminRoutes = []struct {
	method, path, role, body string
}{
	{"GET", "/v1/admin/leads", "sales", ""},
	{"GET", "/v1/admin/leads/{lead}", "sales", ""},
	{"POST", "/v1/admin/leads/{lead}/redrive", "sales", ""},
	{"POST", "/v1/admin/campaigns", "marketing", `{"name":"roles test","subject":{"ru":"Тест"},"html":{"ru":"<p>Тест</p>"},` +
		`"text":{"ru":"Тест"},"segment":{"lang":"ru"},"test_to":"test.testov@example.com"}`},
	{"GET", "/v1/admin/campaigns/{campaign}", "marketing", ""},
	{"POST", "/v1/admin/campaigns/{campaign}/cancel", "marketing", ""},
	{"POST", "/v1/admin/subjects/export", "privacy", `{"email":"nobody.testov@example.com"}`},
	{"POST", "/v1/admin/subjects/rectify", "privacy", `{"email":"nobody.testov@example.com","changes":{"lang":"kk"}}`},
	{"POST", "/v1/admin/subjects/block", "privacy", `{"email":"nobody.testov@example.com"}`},
	{"POST", "/v1/admin/subjects/unblock", "privacy", `{"email":"nobody.testov@example.com"}`},
	{"POST", "/v1/admin/subjects/erase", "privacy", `{"email":"nobody.testov@example.com"}`},
	{"POST", "/v1/admin/subjects/withdraw", "privacy", `{"email":"nobody.testov@example.com","scope":"marketing"}`},
	{"GET", "/v1/admin/subjects/requests", "privacy", ""},
	{"POST", "/v1/admin/breach-notices", "admin", `{"emails":["nobody.testov@example.com"],"message":{"ru":"Тест"}}`},
	{"GET", "/v1/admin/audit", "admin", ""},
}

// TestAdminRoles calls every admin route of the contract as every kind of
// caller: no token and an unknown token are 401, another role 403, the
// route's own role and admin get through. A route not registered (the mux's
// own 404 or 405) fails, as does a route that answers an allowed call with a
// server error. Every call, allowed or refused, must leave one audit event.
func TestAdminRoles(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	lead := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	campaign := "0196a000-0000-7000-8000-000000000000" // no such campaign: its routes answer 404 from the handler
	callers := []struct{ name, role, token string }{
		{"no token", "", ""},
		{"wrong token", "", "admin-token-0123456788"},
		{"sales", "sales", salesToken},
		{"marketing", "marketing", marketingToken},
		{"privacy", "privacy", privacyToken},
		{"admin", "admin", adminToken},
	}
	calls := 0
	for _, rt := range adminRoutes {
		path := strings.NewReplacer("{lead}", lead, "{campaign}", campaign).Replace(rt.path)
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			for _, c := range callers {
				var body io.Reader
				if rt.body != "" {
					body = strings.NewReader(rt.body)
				}
				req, _ := http.NewRequest(rt.method, f.url+path, body)
				if rt.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				isJSON := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")
				if (resp.StatusCode == 404 || resp.StatusCode == 405) && !isJSON {
					t.Fatalf("%s: %d from the mux: the route is not registered", c.name, resp.StatusCode)
				}
				calls++
				switch {
				case c.role == "":
					if resp.StatusCode != 401 {
						t.Errorf("%s: status %d, want 401", c.name, resp.StatusCode)
					}
				case c.role == rt.role || c.role == "admin":
					if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode >= 500 {
						t.Errorf("%s: status %d, want the route's answer (not 401, 403 or a server error)", c.name, resp.StatusCode)
					}
				default:
					if resp.StatusCode != 403 {
						t.Errorf("%s: status %d, want 403", c.name, resp.StatusCode)
					}
				}
			}
		})
	}
	events, _, err := f.ops.Audit.List(context.Background(), time.Time{}, "", 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != calls {
		t.Errorf("%d audit events for %d admin calls, want one each", len(events), calls)
	}
}
