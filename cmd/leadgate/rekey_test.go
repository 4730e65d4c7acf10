package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config"
	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
	"github.com/paymtech/leadgate/intake/seal"
)

// TestRekeyCommand rotates the data key as an operator would: leads taken
// under the old key, then `leadgate rekey` with the new key and the old one
// in LEADGATE_OLD_DATA_KEYS; afterwards the old key is not needed.
func TestRekeyCommand(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	env := map[string]string{"REDIS_URL": srv.URL, "LEADGATE_INDEX_KEY": key('i'), "LEADGATE_DATA_KEY": key('o')}
	web := startMain(t, "web", env)
	b, _ := json.Marshal(applicant)
	resp, err := http.Post("http://"+web.Addr()+"/v1/leads", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("submit = %d", resp.StatusCode)
	}

	run := func() string {
		full := maps.Clone(env)
		full["LEADGATE_DATA_KEY"], full["LEADGATE_OLD_DATA_KEYS"], full["LEADGATE_VAR_DIR"] = key('n'), key('o'), t.TempDir()
		cfg, err := config.Load(func(k string) string { return full[k] })
		if err != nil {
			t.Fatal(err)
		}
		m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler)}
		defer m.Close()
		var out bytes.Buffer
		if err := m.rekey(context.Background(), &out); err != nil {
			t.Fatalf("rekey: %v\n%s", err, out.String())
		}
		return out.String()
	}
	out := run()
	// One lead, its person's contact, and the opt-in consent event.
	for _, want := range []string{"lead: seen=1 rekeyed=1", "contact: seen=1 rekeyed=1", "consent: seen=1 rekeyed=1",
		"total: seen=3 rekeyed=3 changed=0 unreadable=0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, v := range []string{applicant["email"].(string), "Зулейха", "210840004064"} {
		if strings.Contains(out, v) {
			t.Errorf("output holds %q", v)
		}
	}
	if again := run(); !strings.Contains(again, "total: seen=3 rekeyed=0 changed=0 unreadable=0") {
		t.Errorf("second run:\n%s", again)
	}

	rdb := srv.Client(t)
	keys, err := seal.NewKeys(bytes.Repeat([]byte{'n'}, 32), nil, bytes.Repeat([]byte{'i'}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store := redisstore.New(rdb, keys, time.Now)
	if l, err := store.Leads.Get(context.Background(), accepted.ID); err != nil || l.Email != applicant["email"] {
		t.Fatalf("lead with only the new key: %v", err)
	}
	events, _, err := ops.New(rdb, time.Now).Audit.List(context.Background(), time.Time{}, "", 10)
	if err != nil || len(events) != 2 || events[0].Role != "system" || events[0].Name != "rekey" ||
		events[0].Status != 200 || events[0].Detail != "seen=3 rekeyed=0 changed=0 unreadable=0" {
		t.Fatalf("audit log = %+v, %v; want one event per run", events, err)
	}
}
