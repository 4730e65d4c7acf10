package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
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
	rate    float64       // leads (tasks) a second
	peakRSS int64         // of the worker process; 0 when not read
	cpu     time.Duration // of the worker's (the no-op's) process while timed, per lead (task)
	redis   redisCost
}

// cost is the CPU a lead (task) took of the two cores: the worker's
// process and redis-server's. Unlike the rates, it hardly depends on what
// else the machine runs.
func (r round) cost() time.Duration { return r.cpu + time.Duration(r.redis.cpu*float64(time.Second)) }

// done waits until all n were delivered and the queue holds no task of
// theirs any more (pending, running, scheduled or retrying: a routed lead's
// mail tasks count), then returns the rate from the first delivery to
// then, and the CPU time process pid (the worker) used in that time. While
// it waits it samples pid's RSS.
func (d *deliveries) done(ctx context.Context, rdb *redis.Client, n, pid int) (rate float64, cpu time.Duration, peakRSS int64, err error) {
	var cpuFirst time.Duration
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if rss, err := readRSS(pid); err == nil {
			peakRSS = max(peakRSS, rss)
		}
		d.mu.Lock()
		got, first := d.n, d.first
		d.mu.Unlock()
		if got > 0 && cpuFirst == 0 {
			if cpuFirst, err = readCPU(pid); err != nil {
				return 0, 0, 0, err
			}
		}
		if got >= n {
			left, err := queued(ctx, rdb)
			if err != nil {
				return 0, 0, 0, err
			}
			if left == 0 {
				cpuLast, err := readCPU(pid)
				return float64(n-1) / time.Since(first).Seconds(), cpuLast - cpuFirst, peakRSS, err
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("%d of %d delivered", got, n)
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
// routed lead's acknowledgement, which the routing task sends, is part of
// routing it. Then the bare router (bareRouter) routes as
// many leads of its own, timed the same way: what routing costs at the
// least, so the round shows how much of the gap to the no-op is any
// router's. Each round also reports what Redis did per lead and per no-op
// task, and the worker's peak RSS.
func benchWorkerCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-worker", flag.ExitOnError)
	bin := fs.String("leadgate", "", "the leadgate binary")
	rounds := fs.Int("rounds", 3, "paired rounds")
	n := fs.Int("n", 2000, "leads (tasks) a round")
	fs.Parse(args)
	e, err := newEnv(*bin)
	if err != nil {
		return err
	}
	defer e.close()
	sink := &deliveries{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The CRM's webhook and SendGrid, both answering at once: mail goes out
	// as in production (the file driver's fsync per .eml in one directory
	// of thousands was a third of the worker's CPU: a development cost).
	var mails atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, _ *http.Request) {
		sink.add()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v3/mail/send", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mails.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})
	crm := &http.Server{Handler: mux}
	go crm.Serve(ln)
	defer crm.Close()
	crmEnv := []string{"CRM_DRIVER=webhook", "CRM_WEBHOOK_URL=http://" + ln.Addr().String() + "/hook",
		"CRM_WEBHOOK_SECRET=whsec_" + base64.StdEncoding.EncodeToString([]byte("loadgen-webhook-key-of-32-bytes!")),
		"MAIL_DRIVER=sendgrid", "SENDGRID_API_KEY=SG.loadgen-test-key", "SENDGRID_API_HOST=http://" + ln.Addr().String()}
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
	fmt.Printf("routing: %d paired rounds of %d leads, a webhook receiver and a SendGrid answering at once\n", *rounds, *n)
	var lgRates, noopRates, bareRates, ratios, cpuRatios, bareRatios, ofBare []float64
	for i := range *rounds {
		if err := fill(ctx, web.url, *n); err != nil {
			return err
		}
		mails.Store(0)
		lg, err := workerRound(ctx, e, rdb, sink, *bin, crmEnv, *n)
		if err != nil {
			return err
		}
		if m := mails.Load(); m != int64(*n) { // an acknowledgement each; none asks for an opt-in link
			return fmt.Errorf("round %d: %d acknowledgements mailed for %d leads routed", i+1, m, *n)
		}
		noop, err := noopRound(ctx, rdb, *n)
		if err != nil {
			return err
		}
		bare, err := bareRound(ctx, e, rdb, sink, "http://"+ln.Addr().String(), *n, i)
		if err != nil {
			return err
		}
		cpuRatio := float64(noop.cost()) / float64(lg.cost())
		fmt.Printf("round %d leadgate %8.0f leads/s  no-op %8.0f tasks/s  ratio %.2f  (worker peak RSS %s)\n",
			i+1, lg.rate, noop.rate, lg.rate/noop.rate, mib(lg.peakRSS))
		fmt.Printf("        bare router %6.0f leads/s: %.2f of the no-op; leadgate %.2f of it\n",
			bare.rate, bare.rate/noop.rate, lg.rate/bare.rate)
		fmt.Printf("  CPU per lead: worker %.0f µs + redis-server %.0f µs; per no-op task: %.0f µs + %.0f µs; CPU ratio %.2f\n",
			µs(lg.cpu), lg.redis.cpu*1e6, µs(noop.cpu), noop.redis.cpu*1e6, cpuRatio)
		fmt.Printf("  CPU per bare-routed lead: %.0f µs + redis-server %.0f µs\n", µs(bare.cpu), bare.redis.cpu*1e6)
		fmt.Printf("  redis per lead: %v\n  redis per no-op task: %v\n  redis per bare-routed lead: %v\n", lg.redis, noop.redis, bare.redis)
		lgRates, noopRates, bareRates = append(lgRates, lg.rate), append(noopRates, noop.rate), append(bareRates, bare.rate)
		ratios, cpuRatios = append(ratios, lg.rate/noop.rate), append(cpuRatios, cpuRatio)
		bareRatios, ofBare = append(bareRatios, bare.rate/noop.rate), append(ofBare, lg.rate/bare.rate)
	}
	ratio := median(ratios)
	fmt.Printf("medians: leadgate %.0f leads/s, no-op %.0f tasks/s, ratio %.2f (target >= 0.5: %s); CPU ratio %.2f\n",
		median(lgRates), median(noopRates), ratio, map[bool]string{true: "holds", false: "NOT MET"}[ratio >= 0.5], median(cpuRatios))
	fmt.Printf("         bare router %.0f leads/s, %.2f of the no-op; leadgate %.2f of the bare router\n",
		median(bareRates), median(bareRatios), median(ofBare))
	return nil
}

func µs(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

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
	if r.rate, r.cpu, r.peakRSS, err = sink.done(ctx, rdb, n, worker.Process.Pid); err != nil {
		return round{}, fmt.Errorf("leadgate worker: %w (see %s)", err, filepath.Join(e.dir, "worker.log"))
	}
	r.cpu /= time.Duration(n)
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
	if r.rate, r.cpu, _, err = sink.done(ctx, rdb, n, os.Getpid()); err != nil { // the server runs in this process
		return round{}, err
	}
	r.cpu /= time.Duration(n)
	after, err := readRedisCost(ctx, rdb)
	r.redis = before.per(after, n)
	return r, err
}
