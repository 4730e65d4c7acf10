package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/config/redistest"
)

// BenchmarkIntake compares POST /v1/leads (validate, seal, then one Redis
// call that rate-limits, dedupes, stores, indexes and admits the lead to
// the workers' stream) with a bare handler that only decodes the JSON and
// enqueues an asynq task, side by side on one private redis-server: the
// ratio is what intake costs over the queue itself. No worker runs, as in
// a web process: admitted leads stay in the stream.
//
//	make bench   (or: go test -run '^$' -bench Intake -count 6 ./cmd/leadgate)
func BenchmarkIntake(b *testing.B) {
	srv := redistest.Start(b)
	m := startMain(b, "web", map[string]string{"REDIS_URL": srv.URL,
		"INTAKE_RATE_LIMIT": "100000000/h", "INTAKE_RATE_LIMIT_EMAIL": "100000000/h"})
	var seq atomic.Int64
	body := func() []byte {
		n := seq.Add(1)
		return fmt.Appendf(nil, `{"entity_type":"legal_entity","name":"Бенчмарк %d","phone":"8 701 %03d %02d %02d",`+
			`"email":"bench%d@example.com","tax_id":"210840004064","products":["acquiring"],"consent_processing":true}`,
			n, n/10000%1000, n/100%100, n%100, n)
	}

	b.Run("leadgate", func(b *testing.B) {
		benchPost(b, m.http.Handler, body)
	})
	b.Run("leadgate-loopback-http", func(b *testing.B) {
		// The same through the real listener and a keep-alive client: what
		// the website would see, HTTP parsing and the loopback included.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		url := "http://" + m.Addr() + "/v1/leads"
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body()))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	})
	b.Run("bare-enqueue", func(b *testing.B) {
		client := asynq.NewClientFromRedisClient(srv.Client(b))
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var v map[string]any
			if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			payload, _ := json.Marshal(v)
			if _, err := client.EnqueueContext(r.Context(), asynq.NewTask("bare", payload)); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		benchPost(b, bare, body)
	})
}

func benchPost(b *testing.B, h http.Handler, body func() []byte) {
	b.ReportAllocs()
	b.SetParallelism(4) // several requests in flight per core, as behind a real listener
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/leads", bytes.NewReader(body()))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
