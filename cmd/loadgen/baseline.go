package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake/form"
)

// baselineQueue is where the baseline's tasks go: a queue no leadgate
// worker reads, so they only cost what queueing costs.
const baselineQueue = "loadgen-baseline"

// baseline is the bare intake leadgate is measured against: decode the
// JSON, the same field checks with the same validator (intake/form), one
// asynq Enqueue of a task carrying an id, answer 202. What it leaves out is
// what leadgate's intake costs: origin and rate-limit checks, sealing, the
// accept script (storage, indexes, dedupe, idempotency), the risk counters.
func baseline(client *asynq.Client) http.Handler {
	products := strings.Split("acquiring,payment_links,recurring,payouts,pos", ",") // PRODUCT_CATALOG's default
	v := form.NewValidator(products, time.Now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/leads" {
			http.NotFound(w, r)
			return
		}
		var f form.Form
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&f); err != nil {
			http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
			return
		}
		if _, errs := v.Validate(f); len(errs) > 0 {
			http.Error(w, `{"error":"validation_failed"}`, http.StatusUnprocessableEntity)
			return
		}
		id := uuid.NewString()
		payload, _ := json.Marshal(map[string]string{"lead_id": id})
		if _, err := client.EnqueueContext(r.Context(), asynq.NewTask("baseline:lead", payload), asynq.Queue(baselineQueue)); err != nil {
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"id": id, "status": "accepted"})
	})
}
