package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/jobs"
)

// deliveries times what a sink received: the first and the last of them.
type deliveries struct {
	mu          sync.Mutex
	n           int
	first, last time.Time
}

func (d *deliveries) add() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if d.n == 0 {
		d.first = now
	}
	d.n++
	d.last = now
}

// round is what one side of a paired round measured.
type round struct {
	rate    float64 // leads (tasks) a second
	peakRSS int64   // of the worker process; 0 when not read
	redis   redisCost
}

// done waits until all n were delivered and the queue holds no task of
// theirs any more (pending, running, scheduled or retrying: a routed lead's
// mail tasks count), then returns the rate from the first delivery to
// then. While it waits it samples the RSS of process pid (0: none).
func (d *deliveries) done(ctx context.Context, rdb *redis.Client, n, pid int) (rate float64, peakRSS int64, err error) {
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if pid != 0 {
			if rss, err := readRSS(pid); err == nil {
				peakRSS = max(peakRSS, rss)
			}
		}
		d.mu.Lock()
		got, first := d.n, d.first
		d.mu.Unlock()
		if got >= n {
			left, err := queued(ctx, rdb)
			if err != nil {
				return 0, 0, err
			}
			if left == 0 {
				return float64(n-1) / time.Since(first).Seconds(), peakRSS, nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%d of %d delivered", got, n)
		}
	}
}

// queued is how many tasks the leads queue holds: pending, running,
// scheduled or waiting for a retry (asynq's own keys, read in one round trip).
func queued(ctx context.Context, rdb *redis.Client) (int64, error) {
	const q = "asynq:{leads}:"
	var lens [4]*redis.IntCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		lens = [4]*redis.IntCmd{p.LLen(ctx, q+"pending"), p.LLen(ctx, q+"active"), p.ZCard(ctx, q+"scheduled"), p.ZCard(ctx, q+"retry")}
		return nil
	})
	var sum int64
	for _, l := range lens {
		sum += l.Val()
	}
	return sum, err
}

// benchWorkerCmd compares routing with a no-op asynq handler: leadgate's
// worker routes leads accepted by leadgate web to a webhook receiver that
// answers at once; the no-op handler takes as many tasks from the same
// queue with leadgate's worker configuration. Each is timed from its first
// delivery (process start-up is left out) until its queue is empty: a
// routed lead's acknowledgement and opt-in tasks, which the same worker
// runs, are part of routing it. Each round also reports what Redis did per
// lead and per no-op task, and the worker's peak RSS.
func benchWorkerCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-worker", flag.ExitOnError)
	bin := fs.String("leadgate", "", "the leadgate binary")
	rounds := fs.Int("rounds", 3, "paired rounds")
	n := fs.Int("n", 2000, "leads (tasks) a round")
	fs.Parse(args)
	if *bin == "" {
		return errors.New("-leadgate: the leadgate binary is required")
	}
	e, err := newEnv()
	if err != nil {
		return err
	}
	defer e.close()
	sink := &deliveries{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	crm := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sink.add()
		w.WriteHeader(http.StatusNoContent)
	})}
	go crm.Serve(ln)
	defer crm.Close()
	crmEnv := []string{"CRM_DRIVER=webhook", "CRM_WEBHOOK_URL=http://" + ln.Addr().String() + "/hook",
		"CRM_WEBHOOK_SECRET=whsec_" + base64.StdEncoding.EncodeToString([]byte("loadgen-webhook-key-of-32-bytes!"))}
	web, err := e.startLeadgate(*bin, crmEnv...)
	if err != nil {
		return err
	}
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	fmt.Printf("routing: %d paired rounds of %d leads, a webhook receiver answering 204 at once\n", *rounds, *n)
	var lgRates, noopRates, ratios []float64
	for i := range *rounds {
		if err := fill(ctx, web.url, *n); err != nil {
			return err
		}
		lg, err := workerRound(ctx, e, rdb, sink, *bin, crmEnv, *n)
		if err != nil {
			return err
		}
		noop, err := noopRound(ctx, rdb, *n)
		if err != nil {
			return err
		}
		fmt.Printf("round %d leadgate %8.0f leads/s  no-op %8.0f tasks/s  ratio %.2f  (worker peak RSS %s)\n",
			i+1, lg.rate, noop.rate, lg.rate/noop.rate, mib(lg.peakRSS))
		fmt.Printf("  redis per lead: %v\n  redis per no-op task: %v\n", lg.redis, noop.redis)
		lgRates, noopRates, ratios = append(lgRates, lg.rate), append(noopRates, noop.rate), append(ratios, lg.rate/noop.rate)
	}
	ratio := median(ratios)
	fmt.Printf("medians: leadgate %.0f leads/s, no-op %.0f tasks/s, ratio %.2f (target >= 0.5: %s)\n",
		median(lgRates), median(noopRates), ratio, map[bool]string{true: "holds", false: "NOT MET"}[ratio >= 0.5])
	return nil
}

// workerRound starts a `leadgate worker`, times it routing the n leads
// waiting for it (and running the tasks it queues for them), and stops it.
func workerRound(ctx context.Context, e *env, rdb *redis.Client, sink *deliveries, bin string, crmEnv []string, n int) (round, error) {
	sink.reset()
	before, err := readRedisCost(ctx, rdb)
	if err != nil {
		return round{}, err
	}
	worker := exec.Command(bin, "worker")
	worker.Env = append(os.Environ(), append(crmEnv, "LEADGATE_ENV=development", "REDIS_URL="+e.redisURL,
		"LEADGATE_VAR_DIR="+filepath.Join(e.dir, "var"))...)
	if err := e.start(worker, "worker.log"); err != nil {
		return round{}, err
	}
	defer (&target{cmd: worker}).stop()
	r := round{}
	if r.rate, r.peakRSS, err = sink.done(ctx, rdb, n, worker.Process.Pid); err != nil {
		return round{}, fmt.Errorf("leadgate worker: %w (see %s)", err, filepath.Join(e.dir, "worker.log"))
	}
	after, err := readRedisCost(ctx, rdb)
	r.redis = before.per(after, n)
	return r, err
}

func (d *deliveries) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n = 0
}

// fill submits n leads to web, 16 at a time.
func fill(ctx context.Context, url string, n int) error {
	l := &load{URL: url}
	client := &http.Client{Timeout: 10 * time.Second}
	people := newPeople()
	var next atomic.Uint64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= uint64(n) && ctx.Err() == nil; i = next.Add(1) {
				if l.post(ctx, client, people.body(i), clientAddr(i)) != "" {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 || ctx.Err() != nil {
		return fmt.Errorf("filling: %d of %d leads not accepted", f, n)
	}
	return nil
}

// noopRound queues n tasks on the leads queue and times an asynq server
// whose handler does nothing, configured as leadgate's worker is
// (jobs.ServerConfig: its concurrency and its three weighted queues, so
// that each dequeue looks at the same queues).
func noopRound(ctx context.Context, rdb *redis.Client, n int) (round, error) {
	client := asynq.NewClientFromRedisClient(rdb)
	for range n {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("loadgen:noop", nil), asynq.Queue("leads")); err != nil {
			return round{}, err
		}
	}
	before, err := readRedisCost(ctx, rdb)
	if err != nil {
		return round{}, err
	}
	sink := &deliveries{}
	srv := asynq.NewServerFromRedisClient(rdb, jobs.ServerConfig(5*time.Second, slog.New(slog.DiscardHandler)))
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { sink.add(); return nil })); err != nil {
		return round{}, err
	}
	defer srv.Shutdown()
	r := round{}
	if r.rate, _, err = sink.done(ctx, rdb, n, 0); err != nil {
		return round{}, err
	}
	after, err := readRedisCost(ctx, rdb)
	r.redis = before.per(after, n)
	return r, err
}
