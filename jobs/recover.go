package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Recovery brings a worker's tasks back within seconds of a Redis outage,
// working around what asynq v0.26 does then (processor.go, syncer.go,
// recoverer.go). A handler that ends while Redis is down leaves asynq unable
// to record the outcome (Done, Retry, Archive); asynq hands that write to its
// syncer with a context it has already cancelled, so every later attempt
// fails too, and the task stays "active" under a lease nobody renews. Only
// asynq's recoverer puts it back, once a minute and only for leases that
// ended 30 s before: one to two minutes after the outage, whatever its
// length. A worker that dies mid-task leaves the same kind of orphan.
//
// Recovery does three things about it:
//   - Await, a middleware around every handler, holds a task's end until
//     Redis answers again (bounded by the task's context, which asynq
//     cancels when the lease ends), so asynq records the outcome itself;
//     the error then says Redis was unavailable, and RetryDelay retries it
//     within a second, without counting a failure. Where Hook is installed
//     on the client, a task ending moments after Redis answered a command
//     (and none failed since) is not held for a ping of its own.
//   - Run requeues, every second, the tasks whose lease ended more than
//     leaseSlack ago (what Await could not hold: an outage longer than the
//     30 s lease, an answer lost as Redis died, a dead worker), the same step
//     asynq's Requeue does.
//   - When Run sees Redis answer again after failing, or answer as another
//     server (its run_id changed: it restarted between two looks), it sweeps
//     at once the leads left Received, instead of leaving them to the
//     clock's sweeper and its two-minute grace.
type Recovery struct {
	Redis   redis.UniversalClient
	Orphans Orphans
	Sweeper *Sweeper
	Now     func() time.Time
	Log     *slog.Logger

	seen answers // what Hook saw; zero (never answered) when it is not installed
}

// Orphans are asynq's tasks whose lease ended (ops.Workers).
type Orphans interface {
	RequeueOrphans(ctx context.Context, lease, active, pending, taskKeyPrefix string, cutoff time.Time, batch int) (int, error)
}

// recoveryTick is how often Run asks Redis whether it answers and looks
// for orphaned tasks; awaitTick how often a held task asks.
const (
	recoveryTick = time.Second
	awaitTick    = 200 * time.Millisecond
)

// leaseSlack is how long after its lease ended a task is taken for an
// orphan: asynq stores lease ends in whole seconds, rounded down, and the
// worker that holds the lease may run on a host whose clock differs a
// little (keep the hosts on NTP).
const leaseSlack = 2 * time.Second

// answeredFresh is how recent a command's answer (with no failure since)
// stands for a ping. On a busy worker some command is answered every
// millisecond; the ping it spares was a round trip per task — three per
// routed lead, an eighth of its round trips (BENCHMARKS.md). Redis dying
// within this window after the last answer is the same race a ping has
// (Redis may die just after it): asynq cannot record the outcome, and Run
// requeues the task once its lease ends.
const answeredFresh = 100 * time.Millisecond

// orphanBatch is how many orphans of a queue one Redis call puts back.
const orphanBatch = 500

// errRedisDown is joined to the error of a task that ended while Redis did
// not answer (Await): the failure was Redis's, which is back by the time
// asynq sees the error.
var errRedisDown = errors.New("redis was unavailable")

// Await is the middleware that holds a task's end until Redis answers, so
// that asynq can record the outcome (see Recovery).
func (r *Recovery) Await(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		err := next.ProcessTask(ctx, t)
		if r.seen.recent() || r.ping(ctx) == nil {
			return err
		}
		awaitRedis(ctx, r.ping)
		if err == nil {
			return nil
		}
		return fmt.Errorf("%w (%w)", err, errRedisDown)
	})
}

// Hook is the hook to add to the worker's Redis client (the one asynq
// uses), before the worker starts: it notes each command's outcome, which
// spares Await most of its pings.
func (r *Recovery) Hook() redis.Hook { return &r.seen }

// answers records when Redis last answered a command of the client and
// when a command last went unanswered, as monotonic times since epoch.
type answers struct {
	answered, failed atomic.Int64
	clock            func() time.Duration // time since epoch; nil means the monotonic clock (tests set one)
}

// now is the time since epoch.
func (a *answers) now() time.Duration {
	if a.clock != nil {
		return a.clock()
	}
	return time.Since(epoch)
}

// epoch is the origin of the times answers keeps (monotonic, so a clock
// step changes nothing).
var epoch = time.Now()

// recent reports whether Redis answered within answeredFresh, and nothing
// went unanswered since.
func (a *answers) recent() bool {
	answered := a.answered.Load()
	return answered > a.failed.Load() && a.now()-time.Duration(answered) < answeredFresh
}

// note records a command's outcome: a reply, even an error reply or a nil
// (both are redis.Error), is an answer — but not one that says Redis cannot
// serve for now (LOADING after a restart, say: unavailableReplies), nor
// anything else (a dial or read error, a timeout, a cancelled context).
func (a *answers) note(err error) {
	now := int64(a.now())
	var reply redis.Error
	if err == nil || errors.As(err, &reply) && !unavailableReply(reply) {
		a.answered.Store(now)
	} else {
		a.failed.Store(now)
	}
}

func (a *answers) DialHook(next redis.DialHook) redis.DialHook { return next }

func (a *answers) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		a.note(err)
		return err
	}
}

func (a *answers) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		a.note(err)
		return err
	}
}

// awaitRedis returns once ping succeeds or ctx ends.
func awaitRedis(ctx context.Context, ping func(context.Context) error) {
	t := time.NewTicker(awaitTick)
	defer t.Stop()
	for ping(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Run watches Redis until ctx ends: it requeues orphaned tasks every
// second and sweeps the leads an outage may have stranded as soon as Redis
// answers again.
func (r *Recovery) Run(ctx context.Context) {
	t := time.NewTicker(recoveryTick)
	defer t.Stop()
	var downSince time.Time
	server := "" // the run_id Redis last answered with
	for {
		id, err := r.runID(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if downSince.IsZero() {
				downSince = r.Now()
				r.Log.Warn("Redis does not answer; tasks ending now wait for it", "err", err)
			}
		case !downSince.IsZero() || server != "" && id != server:
			r.Log.Info("Redis answers again; sweeping the leads left received", "restarted", id != server)
			if serr := r.Sweeper.Sweep(ctx, r.Now()); serr != nil {
				r.Log.Warn("sweep after the outage failed; the clock's sweeper tries again", "err", serr)
			}
			downSince = time.Time{}
		}
		if err == nil {
			server = id
			r.requeue(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Recovery) ping(ctx context.Context) error { return r.Redis.Ping(ctx).Err() }

// runID is the run_id of the Redis server answering: a new one after every
// restart, which an outage shorter than a tick would otherwise hide. It is
// "" where INFO does not give one: the development setup's embedded Redis
// refuses the section, and a PING then says whether it answers (taking the
// refusal for an outage left its orphaned tasks where they were).
func (r *Recovery) runID(ctx context.Context) (string, error) {
	info, err := r.Redis.Info(ctx, "server").Result()
	if refused := redis.Error(nil); errors.As(err, &refused) {
		return "", r.ping(ctx)
	}
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if id, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(id), nil
		}
	}
	return "", nil
}

// requeue puts back in line every queue's tasks whose lease ended more than
// leaseSlack ago.
func (r *Recovery) requeue(ctx context.Context) {
	cutoff := r.Now().Add(-leaseSlack)
	for _, q := range Queues {
		p := asynqPrefix(q)
		for {
			n, err := r.Orphans.RequeueOrphans(ctx, p+"lease", p+"active", p+"pending", p+"t:", cutoff, orphanBatch)
			if err != nil {
				r.Log.Warn("could not requeue orphaned tasks", "queue", q, "err", err)
				return
			}
			if n > 0 {
				r.Log.Warn("requeued tasks no worker held (a worker died, or Redis was down when they ended)", "queue", q, "tasks", n)
			}
			if n < orphanBatch {
				break
			}
		}
	}
}

// asynqPrefix is the prefix of asynq's keys of queue q (asynq's internal
// base.QueueKeyPrefix), for the steps leadgate takes on asynq's data that its
// Inspector does not offer.
func asynqPrefix(q string) string { return "asynq:{" + q + "}:" }
