package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake/form"
)

// TestPeopleAreValidAndUnique: every body passes leadgate's own validator,
// and no two people share a mailbox, a BIN or a client address, so that
// neither a rate limit nor deduplication answers instead of intake.
func TestPeopleAreValidAndUnique(t *testing.T) {
	t.Parallel()
	v := form.NewValidator([]string{"acquiring"}, time.Now)
	p := newPeople()
	emails, bins, addrs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for n := range uint64(20000) {
		var f form.Form
		if err := json.Unmarshal(p.body(n*499), &f); err != nil { // a stride, to reach every digit of the serials
			t.Fatal(err)
		}
		if _, errs := v.Validate(f); len(errs) > 0 {
			t.Fatalf("person %d refused: %v", n*499, errs)
		}
		if emails[f.Email] || bins[f.TaxID] || addrs[clientAddr(n*499)] {
			t.Fatalf("person %d repeats an earlier mailbox, BIN or address", n*499)
		}
		emails[f.Email], bins[f.TaxID], addrs[clientAddr(n*499)] = true, true, true
	}
}

// TestRunAgainstBaseline drives the baseline briefly, as bench does: every
// request accepted and queued, latencies ordered, the target's RSS and
// goroutines read.
func TestRunAgainstBaseline(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	bare := baseline(asynq.NewClientFromRedisClient(rdb))
	var notBrowserLike atomic.Int64 // requests without a browser's headers: the load must pay what a form post does
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != browserHeaders["Accept-Encoding"] || !strings.HasPrefix(r.UserAgent(), "Mozilla/5.0") {
			notBrowserLike.Add(1)
		}
		bare.ServeHTTP(w, r)
	}))
	t.Cleanup(target.Close)
	l := &load{URL: target.URL, Conns: 4, Rate: 200, Length: time.Second, PID: os.Getpid()}
	res, err := l.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 200 a second for a second; a busy machine may fall behind, not ahead.
	if res.Requests < 20 || res.Requests > 202 {
		t.Errorf("%d requests measured, want about 200", res.Requests)
	}
	if len(res.Errors) > 0 {
		t.Errorf("errors %v, want none", res.Errors)
	}
	if n := notBrowserLike.Load(); n > 0 {
		t.Errorf("%d requests without a browser's Accept-Encoding and User-Agent", n)
	}
	if p50, p99 := res.quantile(.5), res.quantile(.99); p50 <= 0 || p99 < p50 {
		t.Errorf("p50 %v, p99 %v: want 0 < p50 <= p99", p50, p99)
	}
	if res.Start.RSS <= 0 || res.PeakRSS <= 0 {
		t.Errorf("RSS at start %d, peak %d: want both read from /proc", res.Start.RSS, res.PeakRSS)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo(baselineQueue)
	if err != nil {
		t.Fatal(err)
	}
	// Requests cut off by the end of the run are not counted but may be queued.
	if info.Pending < res.Requests {
		t.Errorf("%d tasks queued for %d accepted requests", info.Pending, res.Requests)
	}
}

// TestPaceStopsAtEnd: the schedule ends at end even when ctx ends later, as
// it does when the deadline's timer fires late on a busy machine (CI once
// measured 203 requests in a 200-request second that way).
func TestPaceStopsAtEnd(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	due := make(chan time.Time, 100)
	pace(context.Background(), begin, begin.Add(50*time.Millisecond), 200, due)
	n := 0
	for at := range due {
		if at.Before(begin) || !at.Before(begin.Add(50*time.Millisecond)) {
			t.Errorf("tick at %v, outside [begin, end)", at.Sub(begin))
		}
		n++
	}
	if n != 10 {
		t.Errorf("%d ticks in 50 ms at 200 a second, want 10", n)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestNoopRound: the routing baseline takes every task it queued and
// reports a rate from its first to its last, and what Redis did for it.
func TestNoopRound(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket})
	t.Cleanup(func() { rdb.Close() })
	r, err := noopRound(context.Background(), rdb, 50)
	if err != nil {
		t.Fatal(err)
	}
	if r.rate <= 0 {
		t.Errorf("rate %v, want a positive number of tasks a second", r.rate)
	}
	// Each task is at least dequeued (a script) and marked done (another).
	if r.redis.reads < 2 || r.redis.calls["evalsha"] < 2 {
		t.Errorf("redis per task %v, want at least two round trips and two scripts", r.redis)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo("leads")
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != 0 {
		t.Errorf("%d tasks left pending, want all 50 taken", info.Pending)
	}
}

// readCPU reads a process's CPU time from /proc: this one's grows while it
// works (in ticks of 10 ms, so it spins until one passes).
func TestReadCPU(t *testing.T) {
	before, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		after, err := readCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU stayed at %v over 10 s of work", before)
		}
	}
	if _, err := readCPU(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// TestMachineIdle: the cpu line of /proc/stat is read as idle and iowait
// out of user to steal, and the idle share is the idle part of the time
// that passed.
func TestMachineIdle(t *testing.T) {
	m, err := parseMachine("cpu  10 20 30 40 50 60 70 80 90 100")
	if err != nil || m != (machine{Idle: 40 + 50, Total: 10 + 20 + 30 + 40 + 50 + 60 + 70 + 80}) {
		t.Errorf("parsed %+v, %v; want idle 90 of 360 (guest time is in user already)", m, err)
	}
	for _, bad := range []string{"", "intr 1 2 3 4 5 6", "cpu 1 2 x 4 5"} {
		if _, err := parseMachine(bad); err == nil {
			t.Errorf("parseMachine(%q): no error", bad)
		}
	}
	if m, err := readMachine(); err != nil || m.Total <= 0 || m.Idle > m.Total {
		t.Errorf("this machine: %+v, %v", m, err)
	}
	for _, c := range []struct {
		from, to machine
		want     float64
	}{
		{machine{Idle: 10, Total: 100}, machine{Idle: 30, Total: 200}, 0.2},
		{machine{Idle: 10, Total: 100}, machine{Idle: 10, Total: 100}, 0}, // no time passed
		{machine{}, machine{Idle: 30, Total: 200}, 0},                     // the start not read: not since boot
	} {
		if got := c.from.idleShare(c.to); got != c.want {
			t.Errorf("idle share %+v → %+v = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

// TestSettledGoroutines: the count is read until two reads agree, as the
// goroutines of connections just closed end; a failed read in between
// keeps the last count, and none read gives 0.
func TestSettledGoroutines(t *testing.T) {
	t.Parallel()
	var reads atomic.Int64
	counts := []int{20, 15, -1, 12, 12, 9} // -1: the endpoint fails once
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := counts[min(int(reads.Add(1))-1, len(counts)-1)]
		if n < 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", n)
	}))
	t.Cleanup(metrics.Close)
	if got, n := settledGoroutines(metrics.URL), reads.Load(); got != 12 || n != 5 {
		t.Errorf("settled at %d goroutines after %d reads, want 12 after 5", got, n)
	}
	if got := settledGoroutines("http://127.0.0.1:1/metrics"); got != 0 {
		t.Errorf("an endpoint that does not answer gave %d, want 0", got)
	}
}

// TestBareRouter: the routing floor does what it claims, once a lead: the
// lead to the webhook, its acknowledgement to SendGrid's address, and both
// recorded on the lead; a lead that is not there is not retried.
func TestBareRouter(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket})
	t.Cleanup(func() { rdb.Close() })
	var mu sync.Mutex
	got := map[string]string{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = string(body)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(sink.Close)
	ctx := context.Background()
	key := bareLeadKey(0, 1)
	rdb.HSet(ctx, key, "state", "received", "email", "load-bare-0-1@example.com", "name", "Loadgen Bare Person 1")
	h := bareRouter(rdb, sink.URL)
	if err := h.ProcessTask(ctx, asynq.NewTask(bareRouteTask, []byte(key))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got["/hook"], `"state":"received"`) || !strings.Contains(got["/v3/mail/send"], "load-bare-0-1@example.com") {
		t.Errorf("posted %q, want the lead to /hook and its acknowledgement to /v3/mail/send", got)
	}
	lead := rdb.HGetAll(ctx, key).Val()
	if lead["state"] != "routed" || lead["routed_at"] == "" || lead["mailed_at"] == "" {
		t.Errorf("lead after routing %v, want it routed and mailed", lead)
	}
	err := h.ProcessTask(ctx, asynq.NewTask(bareRouteTask, []byte(bareLeadKey(0, 2))))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("routing a missing lead: %v, want SkipRetry", err)
	}
}

// TestEnvFlushEmptiesItsOwnRedis: bench empties the redis-server it started
// before each run, and that one only.
func TestEnvFlushEmptiesItsOwnRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	other := redistest.Start(t).Client(t)
	if err := other.Set(ctx, "lg:test:other", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e, err := newEnv("bin/leadgate") // named only: nothing is started from it here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	own := redis.NewClient(opts)
	t.Cleanup(func() { own.Close() })
	if err := own.Set(ctx, "lg:test:run", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := own.DBSize(ctx).Val(); n != 0 {
		t.Errorf("%d keys left in the tool's own Redis after flush, want 0", n)
	}
	if v := other.Get(ctx, "lg:test:other").Val(); v != "kept" {
		t.Errorf("another server's key = %q after flush, want it kept", v)
	}
}
