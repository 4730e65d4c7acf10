package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paymtech/leadgate/config"
)

// pinger is what readiness needs to know.
type pinger interface {
	Ping(ctx context.Context) error
}

// registerOps adds the operator endpoints: liveness, readiness (Redis
// answers, and the process is not draining for a shutdown), and Prometheus
// metrics when metrics is not nil (publicMetrics).
func registerOps(mux *http.ServeMux, redis pinger, draining *atomic.Bool, metrics http.Handler) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, map[string]string{"redis": "ok"}
		if err := redis.Ping(ctx); err != nil {
			status, body["redis"] = http.StatusServiceUnavailable, "unreachable"
		}
		if draining.Load() {
			status, body["shutdown"] = http.StatusServiceUnavailable, "draining"
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
}

// publicMetrics is what the public port serves at /metrics: nothing when
// METRICS_ADDR gives metrics a listener of their own; in production,
// metrics behind a bearer token of role metrics or admin (guard); in
// development, metrics.
func publicMetrics(cfg *config.Config, metrics http.Handler, guard func(http.Handler) http.Handler) http.Handler {
	switch {
	case cfg.HTTP.MetricsAddr != "":
		return nil
	case cfg.Production:
		return guard(metrics)
	}
	return metrics
}

// metricsHandler serves the process's own counters and, in web and serve,
// the gauges read from Redis (m.registry).
func (m *Main) metricsHandler() http.Handler {
	gatherers := prometheus.Gatherers{prometheus.DefaultGatherer}
	if m.registry != nil {
		gatherers = append(gatherers, m.registry)
	}
	return promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn)})
}

// serveMetrics listens on METRICS_ADDR and serves only /metrics there, for
// any role: the worker and the clock have no other port.
func (m *Main) serveMetrics() error {
	ln, err := net.Listen("tcp", m.Config.HTTP.MetricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: listen on %s: %w", m.Config.HTTP.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.metricsHandler())
	m.metricsListener = ln
	m.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn)}
	go func() {
		if err := m.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// MetricsAddr is the address of the METRICS_ADDR listener, once Run has
// returned; "" without one.
func (m *Main) MetricsAddr() string {
	if m.metricsListener == nil {
		return ""
	}
	return displayAddr(m.metricsListener.Addr())
}

// sensitiveKeys are log attribute names whose values are masked whatever
// code logs them: personal data never reaches a log line.
var sensitiveKeys = []string{"email", "phone", "name", "tax_id", "iin", "bin", "message", "ip", "user_agent", "token", "authorization"}

// newLogger logs to b, in JSON in production, else as text; a warning or
// an error is written at once, with every line before it.
func newLogger(b *lineBuffer, production bool) *slog.Logger {
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if slices.Contains(sensitiveKeys, a.Key) {
			return slog.String(a.Key, "[masked]")
		}
		return a
	}}
	var h slog.Handler = slog.NewTextHandler(b, opts)
	if production {
		h = slog.NewJSONHandler(b, opts)
	}
	return slog.New(flushing{h, b})
}

// httpRequests and httpDuration are the intake rate, error ratio and
// latency the alerts and the dashboard read, by route pattern: never by raw
// path or query, which carry tokens and would make a series per visitor.
var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadgate_http_requests_total",
		Help: "HTTP requests answered, by route pattern (unmatched for none) and status code.",
	}, []string{"route", "code"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "leadgate_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by route pattern (unmatched for none).",
		// Around the intake target (p99 <= 20 ms) finely, then up to the
		// write timeout.
		Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
)

// withAccessLog logs and counts each request by route pattern, never by raw
// path or query (tokens travel in queries), with its status and duration.
func withAccessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		// The baseline for what httpapi does not serve (healthz, readyz,
		// metrics, the mux's own 404 and 405); httpapi's routes set their
		// headers in intake/httpapi/headers.go, this value included.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		httpRequests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		httpDuration.WithLabelValues(route).Observe(took.Seconds())
		log.LogAttrs(r.Context(), slog.LevelInfo, "http", slog.String("method", r.Method), slog.String("route", r.Pattern),
			slog.Int("status", rec.status), slog.Int64("ms", took.Milliseconds()))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
