package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/integrations/crm"
)

// TestWebAdmitsAndSeparateWorkersRoute: `leadgate web` answers 202 after
// its one Redis call, with no worker running: the leads wait in the
// admission stream. Two workers started later drain it between them, and
// every lead reaches the CRM once.
func TestWebAdmitsAndSeparateWorkersRoute(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	recv := &receiver{deliveries: map[string][]crm.Lead{}}
	crmServer := httptest.NewServer(recv)
	t.Cleanup(crmServer.Close)
	env := map[string]string{"REDIS_URL": srv.URL, "CRM_DRIVER": "webhook", "CRM_WEBHOOK_URL": crmServer.URL + "/hooks",
		"CRM_WEBHOOK_SECRET": webhookSecret, "RETRY_BASE_DELAY": "50ms",
		// One deployment's keys: each process would otherwise make its own.
		"LEADGATE_DATA_KEY":  base64.StdEncoding.EncodeToString([]byte("test-data-key-of-32-bytes-long!!")),
		"LEADGATE_INDEX_KEY": base64.StdEncoding.EncodeToString([]byte("test-index-key-of-32-bytes-long!"))}
	web := startMain(t, "web", env)
	e := &e2e{main: web, base: "http://" + web.Addr(), sales: salesToken}
	var ids []string
	for i := range 4 { // more from one IP with Go's User-Agent would be held for review
		person := maps.Clone(applicant)
		person["email"] = fmt.Sprintf("test.testov%d@example.com", i)
		status, body := e.submit(t, person)
		if status != http.StatusAccepted {
			t.Fatalf("submit = %d %v", status, body)
		}
		ids = append(ids, body["id"].(string))
	}
	rdb := srv.Client(t)
	if n, err := rdb.XLen(context.Background(), redisstore.AdmissionStream).Result(); err != nil || n != int64(len(ids)) {
		t.Fatalf("admission stream holds %d, %v; want the %d accepted leads waiting for a worker", n, err, len(ids))
	}
	startMain(t, "worker", env)
	startMain(t, "worker", env)
	for _, id := range ids {
		eventually(t, "lead "+id+" to be routed", func() bool { return e.lead(t, id)["state"] == "routed" })
	}
	time.Sleep(300 * time.Millisecond) // a second delivery, if any, would arrive in this time
	for _, id := range ids {
		if got, bad := recv.delivered(id); len(got) != 1 || bad != 0 {
			t.Errorf("lead %s delivered %d times (%d bad signatures), want once", id, len(got), bad)
		}
	}
	if n, err := rdb.XLen(context.Background(), redisstore.AdmissionStream).Result(); err != nil || n != 0 {
		t.Errorf("admission stream holds %d, %v after the drain; want 0", n, err)
	}
}
