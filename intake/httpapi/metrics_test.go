package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

func TestGuardMetrics(t *testing.T) {
	t.Parallel()
	const metricsToken = "metrics-token-0123456789"
	srv := NewServer(Deps{}, Options{AdminTokens: []intake.Token{
		{Role: intake.RoleSales, Name: "s", Secret: salesToken},
		{Role: intake.RoleMetrics, Name: "prometheus", Secret: metricsToken},
		{Role: intake.RoleAdmin, Name: "a", Secret: adminToken}}}, slog.New(slog.DiscardHandler), nil)
	h := srv.GuardMetrics(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("counters")) }))
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong-token-0123456789", http.StatusUnauthorized},
		{"Bearer " + salesToken, http.StatusForbidden},
		{"Bearer " + metricsToken, http.StatusOK},
		{"bearer " + metricsToken, http.StatusOK},
		{"Bearer " + adminToken, http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want || (tc.want == http.StatusOK) != (w.Body.String() == "counters") {
			t.Errorf("%q: %d %q, want %d", tc.auth, w.Code, w.Body.String(), tc.want)
		}
	}
}

// TestMetricsRoleReadsNothingElse: a metrics token is refused by every
// admin route.
func TestMetricsRoleReadsNothingElse(t *testing.T) {
	t.Parallel()
	const metricsToken = "metrics-token-0123456789"
	f := setupHTTP(t, func(o *Options) {
		o.AdminTokens = append(o.AdminTokens, intake.Token{Role: intake.RoleMetrics, Name: "prometheus", Secret: metricsToken})
	})
	for _, rt := range f.server(f.queue, Options{}, slog.New(slog.DiscardHandler)).routes() {
		if rt.auth != authBearer { // the console refuses metrics at sign-in: console_test.go
			continue
		}
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.ReplaceAll(path, "{id}", "01959a3c-8f00-7000-8000-000000000001")
		if got := adminCall(t, method, f.url+path, metricsToken, ""); got != http.StatusForbidden {
			t.Errorf("%s with a metrics token: %d, want 403", rt.pattern, got)
		}
	}
}
