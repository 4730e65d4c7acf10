package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
)

// auditEvents returns the whole audit log, newest first.
func auditEvents(t *testing.T, s *ops.Records) []intake.AuditEvent {
	t.Helper()
	events, next, err := s.Audit.List(context.Background(), time.Time{}, "", 500)
	if err != nil || next != "" {
		t.Fatalf("audit log: %v (next %q)", err, next)
	}
	return events
}

// adminCall makes one admin call with an optional JSON body.
func adminCall(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAuditRecordsAllowedAndRefusedCalls(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	id := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	before := time.Now().Add(-time.Second)
	for _, c := range []struct {
		token  string
		status int
	}{{salesToken, 200}, {marketingToken, 403}, {"sales-token-0123456788", 401}, {"", 401}} {
		if got := adminCall(t, "GET", f.url+"/v1/admin/leads/"+id, c.token, ""); got != c.status {
			t.Fatalf("token %q: status %d, want %d", c.token, got, c.status)
		}
	}
	if got := adminCall(t, "POST", f.url+"/v1/admin/leads/"+id+"/redrive", salesToken, ""); got != 409 {
		t.Fatalf("redrive of a received lead = %d, want 409", got)
	}
	events := auditEvents(t, f.ops)
	get := "GET /v1/admin/leads/{id}"
	want := []intake.AuditEvent{ // newest first
		{Role: "sales", Name: "s", Action: "POST /v1/admin/leads/{id}/redrive", Target: id, Status: 409},
		{Role: "", Name: "unauthenticated", Action: get, Target: id, Status: 401},
		{Role: "", Name: "unauthenticated", Action: get, Target: id, Status: 401},
		{Role: "marketing", Name: "m", Action: get, Target: id, Status: 403},
		{Role: "sales", Name: "s", Action: get, Target: id, Status: 200},
	}
	if len(events) != len(want) {
		t.Fatalf("audit log = %+v, want %d events", events, len(want))
	}
	for i, ev := range events {
		if ev.At.Before(before) || ev.At.After(time.Now().Add(time.Second)) || ev.ID == "" {
			t.Errorf("event %d: id %q at %v, want an id and the time of the call", i, ev.ID, ev.At)
		}
		ev.ID, ev.At = "", time.Time{}
		if ev != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, ev, want[i])
		}
	}
}

func TestAuditTargetSetByHandler(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	srv := f.server(f.queue, Options{AdminTokens: []intake.Token{{Role: "privacy", Name: "p", Secret: privacyToken}}},
		slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	mux.Handle("POST /v1/admin/test/{id}", srv.admin("privacy", func(w http.ResponseWriter, r *http.Request) {
		auditTarget(r, "ref-0001")
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.Handle("POST /v1/admin/silent", srv.admin("privacy", func(http.ResponseWriter, *http.Request) {}))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	if got := adminCall(t, "POST", ts.URL+"/v1/admin/test/lead-1", privacyToken, ""); got != 202 {
		t.Fatalf("status %d", got)
	}
	if got := adminCall(t, "POST", ts.URL+"/v1/admin/silent", privacyToken, ""); got != 200 {
		t.Fatalf("status %d", got)
	}
	events := auditEvents(t, f.ops)
	if len(events) != 2 || events[1].Target != "ref-0001" || events[1].Status != 202 ||
		events[1].Action != "POST /v1/admin/test/{id}" || events[1].Name != "p" || events[1].Role != "privacy" {
		t.Fatalf("audit log = %+v, want the handler's target (not the path's id) and its status", events)
	}
	if events[0].Status != 200 || events[0].Target != "" {
		t.Fatalf("a handler that wrote nothing: %+v, want status 200 and no target", events[0])
	}
}

// TestAuditHoldsNoPersonalData posts a person's values to the admin routes
// and then finds none of them anywhere in the audit stream.
func TestAuditHoldsNoPersonalData(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	id := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	email := `"email":"test@example.com"`
	for _, c := range []struct{ path, body string }{
		{"/v1/admin/subjects/export", "{" + email + "}"},
		{"/v1/admin/subjects/export", `{"phone":"+77010000001"}`},
		{"/v1/admin/subjects/rectify", "{" + email + `,"changes":{"name":"Тест Тестович","phone":"+77010000002"}}`},
		{"/v1/admin/subjects/block", "{" + email + "}"},
		{"/v1/admin/subjects/unblock", "{" + email + "}"},
		{"/v1/admin/subjects/withdraw", "{" + email + `,"scope":"marketing"}`},
		{"/v1/admin/breach-notices", `{"emails":["test@example.com"],"message":{"ru":"Тест"}}`},
		{"/v1/admin/subjects/erase", "{" + email + "}"},
	} {
		adminCall(t, "POST", f.url+c.path, privacyToken, c.body)
		adminCall(t, "POST", f.url+c.path, salesToken, c.body) // refused calls are recorded too
	}
	adminCall(t, "GET", f.url+"/v1/admin/leads/"+id, salesToken, "")
	// A path id anyone can type: recorded as a keyed hash, not in clear.
	for _, token := range []string{"", salesToken} {
		adminCall(t, "GET", f.url+"/v1/admin/leads/test@example.com", token, "")
	}
	if evs := auditEvents(t, f.ops); evs[0].Target != evs[1].Target || !strings.HasPrefix(evs[0].Target, "hash:") {
		t.Errorf("targets of a typed path id = %q, %q; want one keyed hash", evs[0].Target, evs[1].Target)
	}

	var seen []string
	for _, ev := range auditEvents(t, f.ops) {
		seen = append(seen, ev.Action)
	}
	for _, action := range []string{"POST /v1/admin/subjects/export", "POST /v1/admin/subjects/erase", "GET /v1/admin/leads/{id}"} {
		if !strings.Contains(strings.Join(seen, "\n"), action) {
			t.Errorf("no audit event for %s (is the route registered?); events: %q", action, seen)
		}
	}
	msgs, err := f.rdb.XRange(context.Background(), keyAudit, "-", "+").Result()
	if err != nil || len(msgs) == 0 {
		t.Fatalf("audit stream: %d entries, %v", len(msgs), err)
	}
	dump := strings.ToLower(fmt.Sprint(msgs))
	for _, v := range []string{"test@example.com", "77010000001", "701 000 00 01", "77010000002", "тест тестович",
		"тоо «тест»", "210840004064", "127.0.0.1"} {
		if strings.Contains(dump, v) {
			t.Errorf("the audit stream holds %q in clear", v)
		}
	}
}

func TestAuditListing(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	ctx := context.Background()
	for i := range 7 {
		if err := f.ops.Audit.Append(ctx, intake.AuditEvent{Role: "system", Name: "purge", Action: "purge",
			Target: fmt.Sprint("batch-", i), Status: 200, Detail: "leads=0"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	list := func(query string) (int, []intake.AuditEvent, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", f.url+"/v1/admin/audit"+query, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Events []intake.AuditEvent `json:"events"`
			Next   string              `json:"next_cursor"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Events, body.Next
	}
	var targets []string
	cursor := ""
	for page := 0; ; page++ {
		status, events, next := list("?limit=3&since=2000-01-01&cursor=" + cursor)
		if status != 200 || page > 5 {
			t.Fatalf("page %d: status %d", page, status)
		}
		for _, ev := range events {
			if ev.Action == "purge" {
				targets = append(targets, ev.Target)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	// The listing calls are audited too (3 pages, then 1 below), but each
	// after its answer: paging back from the first cursor sees only purges.
	if got := strings.Join(targets, ","); got != "batch-6,batch-5,batch-4,batch-3,batch-2,batch-1,batch-0" {
		t.Fatalf("paged targets = %s, want every purge event once, newest first", got)
	}
	status, events, _ := list("?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if status != 200 || len(events) != 0 {
		t.Fatalf("since an hour ahead: %d %+v, want nothing", status, events)
	}
	status, events, next := list("")
	if status != 200 || len(events) != 11 || next != "" || events[0].Action != "GET /v1/admin/audit" ||
		events[0].Name != "a" || events[10].Target != "batch-0" || events[10].Detail != "leads=0" || events[10].Role != "system" {
		t.Fatalf("default listing: %d, %d events, next %q, first %+v", status, len(events), next, events)
	}
	for _, bad := range []string{"?limit=0", "?limit=501", "?since=yesterday", "?cursor=x", "?cursor=1-2-3"} {
		if status, _, _ := list(bad); status != 400 {
			t.Errorf("%s = %d, want 400", bad, status)
		}
	}
	if got := adminCall(t, "GET", f.url+"/v1/admin/audit", salesToken, ""); got != 403 {
		t.Fatalf("audit log read by sales = %d, want 403", got)
	}
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuditFailureKeepsTheAnswer: the admin's action happened, so a failed
// audit write answers as the handler did, and is logged as an error.
func TestAuditFailureKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	sf := setupStore(t)
	var logs syncBuffer
	srv := sf.server(&fakeQueue{}, Options{AdminTokens: []intake.Token{{Role: "sales", Name: "s", Secret: salesToken}}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	mux := http.NewServeMux()
	srv.Register(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	sf.rdb.Set(context.Background(), keyAudit, "not a stream", 0) // every XADD now fails
	if got := adminCall(t, "GET", ts.URL+"/v1/admin/leads", salesToken, ""); got != 200 {
		t.Fatalf("status %d, want the handler's 200", got)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "audit") ||
		!strings.Contains(l, "GET /v1/admin/leads") {
		t.Fatalf("log = %q, want an error naming the unrecorded call", l)
	}
}

func TestAuditCapsUnauthenticatedCalls(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	for range intake.MaxRefusedPerMinute + 5 {
		adminCall(t, "GET", f.url+"/v1/admin/leads", "", "")
	}
	adminCall(t, "GET", f.url+"/v1/admin/leads", marketingToken, "") // a token holder is never capped
	events := auditEvents(t, f.ops)
	if len(events) != intake.MaxRefusedPerMinute+1 || events[0].Name != "m" || events[0].Status != 403 {
		t.Fatalf("%d events (newest %+v), want %d unauthenticated and the 403", len(events), events[0], intake.MaxRefusedPerMinute)
	}
	f.clock.Add(time.Minute) // a new minute records again
	adminCall(t, "GET", f.url+"/v1/admin/leads", "", "")
	if events := auditEvents(t, f.ops); len(events) != intake.MaxRefusedPerMinute+2 || events[0].Name != unauthenticated {
		t.Fatalf("next minute: %d events, want one more unauthenticated", len(events))
	}
}

func TestAuditRetention(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, func(o *Options) { o.AuditRetention = time.Hour })
	// Stream ids are Redis's clock: the store's must agree with it here.
	f.clock.Add(time.Since(f.clock.Now()))
	ctx := context.Background()
	old := f.clock.Now().Add(-3 * time.Hour).UnixMilli()
	for i := range 250 { // events from three hours ago
		f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyAudit, ID: fmt.Sprint(old+int64(i), "-0"),
			Values: []any{"role", "system", "name", "purge", "action", "purge", "status", 200}})
	}
	if err := f.ops.Audit.Append(ctx, intake.AuditEvent{Role: "system", Name: "rekey", Action: "rekey", Status: 200}, 0); err != nil {
		t.Fatal(err)
	}
	if n := f.rdb.XLen(ctx, keyAudit).Val(); n != 251 {
		t.Fatalf("%d events, want 251: Store.Audit does not trim", n)
	}
	// An admin call's XADD drops what is past retention, whole stream
	// nodes (100 events) at a time, and keeps what is fresh.
	adminCall(t, "GET", f.url+"/v1/admin/leads", salesToken, "")
	if n := f.rdb.XLen(ctx, keyAudit).Val(); n >= 100 {
		t.Fatalf("%d events after a call, want the stream nodes past retention dropped", n)
	}
	if events := auditEvents(t, f.ops); len(events) < 2 || events[0].Action != "GET /v1/admin/leads" || events[1].Action != "rekey" {
		t.Fatalf("newest events %+v, want the fresh ones kept", events[:min(2, len(events))])
	}
	// The purge's trim, two hours later, drops the rest.
	f.clock.Add(2 * time.Hour)
	if err := f.ops.Audit.Trim(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := f.rdb.XLen(ctx, keyAudit).Val(); n != 0 {
		t.Fatalf("%d events after TrimAudit past retention, want none", n)
	}
}
