package jobs_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
)

// recovery is the production Recovery over e, its hook on e's client as
// the worker installs it, run until the test ends.
func (e *redisEnv) recovery(t *testing.T) *jobs.Recovery {
	t.Helper()
	r := &jobs.Recovery{Redis: e.rdb, Orphans: e.ops.Workers, Sweeper: e.sweeper(), Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	e.rdb.AddHook(r.Hook())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// orphan makes the lead's queued route task look like the task of a worker
// that died holding it: active, under a lease that ended ago, as asynq's
// dequeue leaves it (internal/rdb dequeueCmd).
func (e *redisEnv) orphan(t *testing.T, id string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	taskID := "lead:route:" + id
	const p = "asynq:{" + jobs.QueueLeads + "}:"
	if n := e.rdb.LRem(ctx, p+"pending", 0, taskID).Val(); n != 1 {
		t.Fatalf("task not pending (%d)", n)
	}
	e.rdb.LPush(ctx, p+"active", taskID)
	e.rdb.HSet(ctx, p+"t:"+taskID, "state", "active")
	if err := e.rdb.ZAdd(ctx, p+"lease", redis.Z{Score: float64(time.Now().Add(-ago).Unix()), Member: taskID}).Err(); err != nil {
		t.Fatal(err)
	}
}

// countingCRM records every push per lead; block, when set, is called
// inside the push of a lead before it is answered.
type countingCRM struct {
	mu     sync.Mutex
	pushes map[string]int
	block  func(id string)
}

func (c *countingCRM) Push(_ context.Context, l crm.Lead) (crm.Receipt, error) {
	if c.block != nil {
		c.block(l.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pushes[l.ID]++
	return crm.Receipt{System: "webhook", Ref: l.ID}, nil
}

func (c *countingCRM) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushes[id]
}

// After Redis was killed and restarted on its append-only file, every lead
// is routed within seconds, each pushed once: one whose push was under way
// when Redis died (its outcome waits for Redis, not for a retry), one a
// dead worker left active (requeued once its lease ended, not after asynq's
// minute), and one left Received without a task (swept as Redis returns,
// not after the clock's two minutes).
func TestRecoveryAfterRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.StartPersistent(t)
	e := setupRedisOn(t, srv, time.Now)
	ctx := context.Background()

	stranded := e.accept(t, 1) // stored, never queued
	orphaned := e.accept(t, 2)
	if err := e.queue.EnqueueLead(ctx, orphaned); err != nil {
		t.Fatal(err)
	}
	e.orphan(t, orphaned, 10*time.Second)
	inFlight := e.accept(t, 3)
	if err := e.queue.EnqueueLead(ctx, inFlight); err != nil {
		t.Fatal(err)
	}

	pushing := make(chan struct{})
	killed := make(chan struct{})
	c := &countingCRM{pushes: map[string]int{}, block: func(id string) {
		if id == inFlight {
			close(pushing)
			<-killed
		}
	}}
	r := e.router(c)
	e.serveHandlers(t, jobs.Handlers{Router: r, Recovery: e.recovery(t)})

	select {
	case <-pushing:
	case <-time.After(20 * time.Second):
		t.Fatal("the in-flight lead was never pushed")
	}
	srv.Stop()
	close(killed)
	time.Sleep(1500 * time.Millisecond) // the push ends while Redis is down
	srv.Restart(t)
	back := time.Now()

	for name, id := range map[string]string{"in flight": inFlight, "orphaned": orphaned, "stranded": stranded} {
		waitUpTo(t, 20*time.Second, "the "+name+" lead routed after Redis returned", func() bool {
			l, err := e.store.Leads.Get(ctx, id)
			return err == nil && l.State == intake.Routed
		})
	}
	took := time.Since(back)
	t.Logf("all three leads routed %v after Redis returned", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("leads routed %v after Redis returned, want well within 30 s", took)
	}
	for _, id := range []string{inFlight, orphaned, stranded} {
		if n := c.count(id); n != 1 {
			t.Errorf("lead pushed %d times, want once", n)
		}
	}
	// What is left in the queue settles too: a task whose lease ran out
	// while its record waited for Redis is requeued by the orphan sweep
	// only 2 s after its 30 s lease ends, and then finds its lead routed.
	waitUpTo(t, 45*time.Second, "tasks done", func() bool {
		info, err := e.insp.GetQueueInfo(jobs.QueueLeads)
		return err == nil && info.Active == 0 && info.Pending == 0 && info.Retry == 0
	})
}

// A task whose lease ended is put back in line by Run; one whose lease is
// still running (its worker alive) is left alone.
func TestRecoveryRequeuesOnlyOrphans(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	ctx := context.Background()
	dead, alive := e.accept(t, 1), e.accept(t, 2)
	for _, id := range []string{dead, alive} {
		if err := e.queue.EnqueueLead(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.orphan(t, dead, 5*time.Second)
	e.orphan(t, alive, -30*time.Second) // a lease ending in 30 s
	e.recovery(t)
	waitUpTo(t, 10*time.Second, "the orphan requeued", func() bool {
		info, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+dead)
		return err == nil && info.State == asynq.TaskStatePending
	})
	if info, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+alive); err != nil || info.State != asynq.TaskStateActive {
		t.Errorf("live task = %+v, %v; want it left active", info, err)
	}
}

// pingCounter counts the PINGs sent through a client.
// pingCounter counts pings, and answers ECHO as a Redis still loading its
// data would.
type pingCounter struct{ n atomic.Int64 }

func (p *pingCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *pingCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		switch cmd.Name() {
		case "ping":
			p.n.Add(1)
		case "echo":
			return redisReply("LOADING Redis is loading the dataset in memory")
		}
		return next(ctx, cmd)
	}
}
func (p *pingCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A task that ends just after Redis answered one of its commands is not
// held for a ping; one that ends after a silence is, and so is one whose
// last command went unanswered, until Redis answers again. The freshness of
// an answer is read from a clock the test moves, so a slow machine cannot
// age it.
func TestAwaitPingsOnlyWithoutAFreshAnswer(t *testing.T) {
	t.Parallel()
	srv := redistest.StartPersistent(t)
	e := setupRedisOn(t, srv, time.Now)
	r := &jobs.Recovery{Redis: e.rdb, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	var clock atomic.Int64
	clock.Store(int64(time.Hour))
	r.SetAnswerClock(func() time.Duration { return time.Duration(clock.Load()) })
	e.rdb.AddHook(r.Hook())
	pings := &pingCounter{}
	e.rdb.AddHook(pings)
	ctx := context.Background()
	get := r.Await(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		err := e.rdb.Get(ctx, "test-missing").Err() // a nil reply is an answer
		// The task ends just inside the window.
		clock.Add(int64(jobs.AnsweredFresh - time.Millisecond))
		return err
	}))
	idle := r.Await(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }))
	task := asynq.NewTask("test", nil)

	get.ProcessTask(ctx, task)
	if n := pings.n.Load(); n != 0 {
		t.Errorf("%d pings after a task whose command was just answered, want 0", n)
	}
	clock.Add(int64(jobs.AnsweredFresh)) // a silence: the answer is now older than the window
	if err := idle.ProcessTask(ctx, task); err != nil || pings.n.Load() != 1 {
		t.Errorf("after a silence: err %v, %d pings, want nil and 1", err, pings.n.Load())
	}
	// A reply that says Redis cannot serve for now is no answer.
	loading := r.Await(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		return e.rdb.Echo(ctx, "test").Err()
	}))
	loading.ProcessTask(ctx, task)
	if n := pings.n.Load(); n != 2 {
		t.Errorf("%d pings in all after a task whose command got LOADING, want 2", n)
	}

	srv.Stop()
	const down = time.Second
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(down)
		srv.Restart(t)
	}()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	err := get.ProcessTask(tctx, task) // its GET fails: held until Redis answers
	<-restarted
	if held := time.Since(start); held < down {
		t.Errorf("the task ended after %v (%v), while Redis was down", held, err)
	}
	if err == nil {
		t.Error("the task that failed while Redis was down ended without an error")
	}
}

// orphanCount counts RequeueOrphans calls: each is a tick on which Recovery
// found Redis answering.
type orphanCount struct{ calls atomic.Int64 }

func (o *orphanCount) RequeueOrphans(context.Context, string, string, string, string, time.Time, int) (int, error) {
	o.calls.Add(1)
	return 0, nil
}

// The development setup's embedded Redis refuses INFO's server section:
// Recovery still finds it answering and looks for orphaned tasks, where it
// took the refusal for an outage that never ended.
func TestRecoveryOnTheEmbeddedRedis(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	orphans := &orphanCount{}
	r := &jobs.Recovery{Redis: rdb, Orphans: orphans, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitUpTo(t, 5*time.Second, "orphans looked for", func() bool { return orphans.calls.Load() > 0 })
}
