package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/config"
)

// TestMetricsAddrMovesMetrics: with METRICS_ADDR, /metrics is served there
// and no longer on the public port.
func TestMetricsAddrMovesMetrics(t *testing.T) {
	t.Parallel()
	m := startMain(t, "serve", map[string]string{"METRICS_ADDR": "127.0.0.1:0"})
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("http://" + m.Addr() + "/metrics"); status != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404 once METRICS_ADDR is set", status)
	}
	if status, body := get("http://" + m.MetricsAddr() + "/metrics"); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("METRICS_ADDR /metrics: %d, want 200 with metrics", status)
	}
	if status, _ := get("http://" + m.MetricsAddr() + "/v1/admin/leads"); status != http.StatusNotFound {
		t.Errorf("METRICS_ADDR serves %d for an admin route, want 404: it serves /metrics only", status)
	}
}

// TestPublicMetrics: what the public port serves at /metrics in each setup.
func TestPublicMetrics(t *testing.T) {
	t.Parallel()
	guarded := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	guard := func(http.Handler) http.Handler { return guarded }
	serve := func(h http.Handler) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return w.Code
	}
	if h := publicMetrics(&config.Config{Production: true}, guard); h == nil || serve(h) != http.StatusUnauthorized {
		t.Error("production without METRICS_ADDR: want the guarded handler")
	}
	if h := publicMetrics(&config.Config{}, guard); h == nil || serve(h) != http.StatusOK {
		t.Error("development: want metrics open")
	}
	prod := &config.Config{Production: true}
	prod.HTTP.MetricsAddr = "127.0.0.1:9100"
	if h := publicMetrics(prod, guard); h != nil {
		t.Error("with METRICS_ADDR: want nothing on the public port")
	}
}
