package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
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

// wait returns the rate from the first to the last of n deliveries, once
// all n arrived.
func (d *deliveries) wait(ctx context.Context, n int) (float64, error) {
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		d.mu.Lock()
		got, first, last := d.n, d.first, d.last
		d.mu.Unlock()
		if got >= n {
			return float64(n-1) / last.Sub(first).Seconds(), nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d delivered", got, n)
		}
	}
}

// benchWorkerCmd compares routing with a no-op asynq handler: leadgate's
// worker routes leads accepted by leadgate web to a webhook receiver that
// answers at once; the no-op handler takes as many tasks from the same
// queue with asynq's defaults and leadgate's concurrency. Each is timed
// from its first delivery to its last, so process start-up is left out.
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
		sink.reset()
		worker := exec.Command(*bin, "worker")
		worker.Env = append(os.Environ(), append(crmEnv, "LEADGATE_ENV=development", "REDIS_URL="+e.redisURL,
			"LEADGATE_VAR_DIR="+filepath.Join(e.dir, "var"))...)
		if err := e.start(worker, "worker.log"); err != nil {
			return err
		}
		lg, err := sink.wait(ctx, *n)
		(&target{cmd: worker}).stop()
		if err != nil {
			return fmt.Errorf("leadgate worker: %w (see %s)", err, filepath.Join(e.dir, "worker.log"))
		}
		noop, err := noopRound(ctx, rdb, *n)
		if err != nil {
			return err
		}
		fmt.Printf("round %d leadgate %8.0f leads/s  no-op %8.0f tasks/s  ratio %.2f\n", i+1, lg, noop, lg/noop)
		lgRates, noopRates, ratios = append(lgRates, lg), append(noopRates, noop), append(ratios, lg/noop)
	}
	ratio := median(ratios)
	fmt.Printf("medians: leadgate %.0f leads/s, no-op %.0f tasks/s, ratio %.2f (target >= 0.5: %s)\n",
		median(lgRates), median(noopRates), ratio, map[bool]string{true: "holds", false: "NOT MET"}[ratio >= 0.5])
	return nil
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
// with leadgate's concurrency whose handler does nothing.
func noopRound(ctx context.Context, rdb *redis.Client, n int) (float64, error) {
	client := asynq.NewClientFromRedisClient(rdb)
	for range n {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("loadgen:noop", nil), asynq.Queue("leads")); err != nil {
			return 0, err
		}
	}
	sink := &deliveries{}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 20, Queues: map[string]int{"leads": 1},
		LogLevel: asynq.ErrorLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { sink.add(); return nil })); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	return sink.wait(ctx, n)
}
