package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/admission"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
)

// countingQueue records how often each lead's tasks were queued; fail, when
// set, is asked first and may refuse.
type countingQueue struct {
	mu     sync.Mutex
	routes map[string]int
	optins map[string]int
	fail   func() error
}

func newCountingQueue() *countingQueue {
	return &countingQueue{routes: map[string]int{}, optins: map[string]int{}}
}

func (q *countingQueue) EnqueueLead(_ context.Context, id string) error  { return q.add(q.routes, id) }
func (q *countingQueue) EnqueueOptin(_ context.Context, id string) error { return q.add(q.optins, id) }

func (q *countingQueue) add(m map[string]int, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		if err := q.fail(); err != nil {
			return err
		}
	}
	m[id]++
	return nil
}

// missing lists the leads of ids whose routing was never queued.
func (q *countingQueue) missing(ids []string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, id := range ids {
		if q.routes[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// admit appends n routing entries to the admission stream, as the accept
// script does, and returns their lead ids.
func admit(t *testing.T, rdb redis.UniversalClient, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d", prefix, i)
		if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: redisstore.AdmissionStream,
			Values: []any{"route", ids[i]}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// startDrain runs a drain reading as consumer until the test ends, or until
// the returned stop is called.
func startDrain(t *testing.T, rdb redis.UniversalClient, consumer string, q *countingQueue, takeOver time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d := &jobs.Drain{Stream: admission.New(rdb, consumer), Queue: q, Log: slog.New(slog.DiscardHandler),
		Block: 100 * time.Millisecond, TakeOver: takeOver}
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// waitDrained waits until every lead of ids is queued and the stream holds
// nothing, read or unread; a busy machine gets 20 s.
func waitDrained(t *testing.T, rdb redis.UniversalClient, q *countingQueue, ids []string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		left, _ := rdb.XLen(ctx, redisstore.AdmissionStream).Result()
		missing := q.missing(ids)
		if left == 0 && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d entries left in the stream, %d of %d leads never queued", left, len(missing), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDrainSharesTheStreamAmongWorkers(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	q := newCountingQueue()
	for i := range 3 {
		startDrain(t, rdb, fmt.Sprintf("worker-%d", i), q, 0)
	}
	ids := admit(t, rdb, "lead", 600)
	waitDrained(t, rdb, q, ids)
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.routes) != len(ids) {
		t.Errorf("queued %d leads, want %d", len(q.routes), len(ids))
	}
	for id, n := range q.routes {
		if n != 1 {
			t.Errorf("lead %s queued %d times; with every worker alive, once", id, n)
		}
	}
}

// A worker that read entries and died before queuing them leaves them to
// the others, who take them over once they have been idle long enough.
func TestDrainTakesOverADeadWorkersEntries(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	dead := admission.New(rdb, "dead-worker")
	if err := dead.Join(ctx); err != nil {
		t.Fatal(err)
	}
	ids := admit(t, rdb, "orphan", 150)
	if held, err := dead.Read(ctx, false, 1000, time.Millisecond); err != nil || len(held) != len(ids) {
		t.Fatalf("the dead worker read %d entries, %v", len(held), err)
	}
	q := newCountingQueue()
	startDrain(t, rdb, "live-worker", q, 300*time.Millisecond)
	waitDrained(t, rdb, q, ids)
	if pending, err := rdb.XPending(ctx, redisstore.AdmissionStream, admission.Group).Result(); err != nil || pending.Count != 0 {
		t.Fatalf("pending after the take-over: %+v, %v", pending, err)
	}
}

// A failing queue stops nothing for good: what could not be queued stays
// with the worker and is queued once the queue answers again.
func TestDrainRetriesWhatItCouldNotQueue(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	q := newCountingQueue()
	var failures int
	q.fail = func() error {
		if failures < 5 {
			failures++
			return errors.New("asynq unavailable")
		}
		return nil
	}
	startDrain(t, rdb, "worker", q, time.Minute) // no take-over: the worker itself must resume
	ids := admit(t, rdb, "lead", 50)
	waitDrained(t, rdb, q, ids)
}

// Redis restarted mid-drain — here empty, as one without persistence comes
// back — stops the drain only while it is away: the group is made again and
// what is admitted afterwards is drained within seconds.
func TestDrainResumesAfterRedisRestarts(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	q := newCountingQueue()
	startDrain(t, rdb, "worker", q, 0)
	waitDrained(t, rdb, q, admit(t, rdb, "before", 100))
	srv.Stop()
	time.Sleep(300 * time.Millisecond) // the drain meets the outage
	srv.Restart(t)
	back := time.Now()
	waitDrained(t, rdb, q, admit(t, rdb, "after", 100))
	if took := time.Since(back); took > 10*time.Second {
		t.Errorf("drained %v after Redis returned; the pause between tries is at most 1 s", took)
	}
}

// The router acts on the lead's state, not on the task: a lead whose
// routing is queued again after it was routed (a repeat of a lead still
// received re-appends it; a taken-over entry is queued twice) reaches the
// CRM once.
func TestAdmittedTwiceIsRoutedOnce(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	var mu sync.Mutex
	pushes := map[string]int{}
	e.startWorker(t, &fakeCRM{PushFn: func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
		mu.Lock()
		defer mu.Unlock()
		pushes[l.ID]++
		return crm.Receipt{System: "webhook", Ref: l.ID}, nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	drain := &jobs.Drain{Stream: admission.New(e.rdb, "worker"), Queue: e.queue, Log: slog.New(slog.DiscardHandler)}
	go drain.Run(ctx)
	id := e.accept(t, 1) // the accept script admits it
	waitRouted := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for e.get(t, id).State != "routed" {
			if time.Now().After(deadline) {
				t.Fatalf("lead still %s after 20 s", e.get(t, id).State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRouted()
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: redisstore.AdmissionStream, Values: []any{"route", id}}).Err(); err != nil {
		t.Fatal(err)
	}
	// Both tasks have run once the queue is empty and asynq counts two
	// processed today (the worker runs nothing else).
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := e.insp.GetQueueInfo(jobs.QueueLeads)
		if err == nil && info.Size == 0 && info.Processed >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second routing did not run in 20 s: %+v, %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if pushes[id] != 1 {
		t.Fatalf("CRM got %d pushes of the lead, want 1", pushes[id])
	}
}
