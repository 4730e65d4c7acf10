package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paymtech/leadgate/config"
	"github.com/paymtech/leadgate/config/redistest"
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
	// serve is web too: the gauges read from the (embedded) Redis are there.
	if leads := scrape(t, "http://"+m.MetricsAddr()+"/metrics", "leadgate_leads{"); len(leads) != 5 {
		t.Errorf("lead gauges %v, want one per state", leads)
	}
	if tasks := scrape(t, "http://"+m.MetricsAddr()+"/metrics", "leadgate_queue_tasks{"); len(tasks) != 18 {
		t.Errorf("%d queue gauges, want 3 queues × 6 states", len(tasks))
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
	if h := publicMetrics(&config.Config{Production: true}, promhttp.Handler(), guard); h == nil || serve(h) != http.StatusUnauthorized {
		t.Error("production without METRICS_ADDR: want the guarded handler")
	}
	if h := publicMetrics(&config.Config{}, promhttp.Handler(), guard); h == nil || serve(h) != http.StatusOK {
		t.Error("development: want metrics open")
	}
	prod := &config.Config{Production: true}
	prod.HTTP.MetricsAddr = "127.0.0.1:9100"
	if h := publicMetrics(prod, promhttp.Handler(), guard); h != nil {
		t.Error("with METRICS_ADDR: want nothing on the public port")
	}
}

// scrape returns the lines of url's metrics that start with prefix.
func scrape(t *testing.T, url, prefix string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// TestWebShowsALeadFailedByAWorker is the Procfile deployment: web and a
// separate worker on one Redis, the CRM refusing the lead for good. The
// worker fails it; web's /metrics shows it, read from Redis at scrape, and
// the queue gauges, the request and the worker's error are there.
func TestWebShowsALeadFailedByAWorker(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // permanent: the lead fails at once
	}))
	t.Cleanup(refusing.Close)
	// One var/ for both, as one deployment shares its keys: with a data key
	// each, the worker could not open the lead and would fail it for that.
	env := map[string]string{"REDIS_URL": srv.URL, "CRM_DRIVER": "webhook", "CRM_WEBHOOK_URL": refusing.URL + "/hooks",
		"CRM_WEBHOOK_SECRET": webhookSecret, "LEADGATE_VAR_DIR": t.TempDir()}
	web := startMain(t, "web", env)
	startMain(t, "worker", env)
	e := &e2e{main: web, base: "http://" + web.Addr()}
	if status, body := e.submit(t, applicant); status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	eventually(t, "the worker to fail the lead, seen on web's /metrics", func() bool {
		return slices.Contains(scrape(t, e.base+"/metrics", "leadgate_leads{"), `leadgate_leads{state="failed"} 1`)
	})
	if tasks := scrape(t, e.base+"/metrics", `leadgate_queue_tasks{queue="leads"`); len(tasks) != 6 {
		t.Errorf("queue gauges of the leads queue: %v, want one per state", tasks)
	}
	// The counters are the process's own; web and worker share one here, so
	// one scrape shows both. Other tests count too: present, not exact. The
	// worker counts its error once the task has returned, after the lead
	// failed, so that one may take a moment.
	for _, prefix := range []string{
		`leadgate_http_requests_total{code="202",route="POST /v1/leads"} `,
		`leadgate_http_request_duration_seconds_count{route="POST /v1/leads"} `,
		`leadgate_task_errors_total{kind="permanent",system="webhook",task="lead:route"} `,
	} {
		eventually(t, prefix+"on /metrics", func() bool { return len(scrape(t, e.base+"/metrics", prefix)) == 1 })
	}
}

// TestRedisUpGauge: web's /metrics says whether Redis answers, so that an
// alert fires on a Redis the processes cannot reach; the gauges it cannot
// read are left out rather than reported as zeros.
func TestRedisUpGauge(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	web := startMain(t, "web", map[string]string{"REDIS_URL": srv.URL})
	url := "http://" + web.Addr() + "/metrics"
	if up := scrape(t, url, "leadgate_redis_up "); !slices.Equal(up, []string{"leadgate_redis_up 1"}) {
		t.Errorf("with Redis running: %q, want leadgate_redis_up 1", up)
	}
	srv.Stop()
	if up := scrape(t, url, "leadgate_redis_up "); !slices.Equal(up, []string{"leadgate_redis_up 0"}) {
		t.Errorf("with Redis stopped: %q, want leadgate_redis_up 0", up)
	}
	if leads := scrape(t, url, "leadgate_leads{"); len(leads) != 0 {
		t.Errorf("with Redis stopped the lead gauges say %q, want them left out", leads)
	}
}
