// Command loadgen drives a leadgate with form submissions and measures it:
// a developers' tool, not part of the product (cmd/leadgate is).
//
//	loadgen run -url http://127.0.0.1:8080 [-c 64] [-rate 0] [-d 10s] [-warmup 0] [-pid N] [-metrics URL]
//	loadgen bench -leadgate bin/leadgate [-rounds 3] [-c 64] [-d 10s]
//	loadgen bench-worker -leadgate bin/leadgate [-rounds 3] [-n 2000]
//	loadgen bench-fanout -test bin/jobs.test [-rounds 3]
//	loadgen soak -leadgate bin/leadgate [-d 10m] [-c 64]
//	loadgen baseline -addr 127.0.0.1:8081 -redis redis://…
//
// run posts valid leads, each of its own fake person from its own client
// address (X-Forwarded-For: the target needs TRUSTED_PROXIES=127.0.0.1/32)
// with the headers a browser's fetch sends, and reports requests/s,
// latency percentiles, errors by status or kind, and the target's RSS
// (/proc, given -pid) and goroutines (go_goroutines, given -metrics) at
// start, after the warm-up and at the end.
//
// bench starts a private redis-server, `leadgate web` and the baseline (the
// bare intake: decode, the same validator, one asynq Enqueue) on it, and
// loads them in alternating rounds, each run from an emptied Redis (unless
// -accumulate): per-round figures, medians, the ratio.
//
// bench-worker compares leadgate's worker routing leads to an instant
// webhook receiver (and mailing their acknowledgements to an instant
// SendGrid) with a no-op asynq handler on the same queue, and with the bare
// router: the least any router that hands a lead over and acknowledges it
// does (read, post, record, mail, record: one task a lead).
//
// bench-fanout runs BenchmarkCampaignFanOut (package jobs, compiled with
// go test -c) once a round: a campaign through leadgate and the bare loop
// posting the same bodies, alternating which goes first.
//
// soak measures leadgate's capacity, then loads a fresh `leadgate web` at
// half of it for -d, and fails unless every request was accepted and RSS
// and goroutines at the end are within 10 % of their values after the
// warm-up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen run|bench|bench-worker|bench-fanout|soak|baseline [flags] (loadgen <command> -h for its flags)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{"run": runCmd, "bench": benchCmd, "bench-worker": benchWorkerCmd, "bench-fanout": benchFanOutCmd, "soak": soakCmd, "baseline": baselineCmd, "bare-router": bareRouterCmd}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "loadgen: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(ctx, os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func loadFlags(fs *flag.FlagSet, l *load, length time.Duration) {
	fs.IntVar(&l.Conns, "c", 64, "connections (requests in flight at most)")
	fs.DurationVar(&l.Length, "d", length, "measured duration")
	fs.DurationVar(&l.Warmup, "warmup", 0, "load before measuring")
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	l := &load{}
	fs.StringVar(&l.URL, "url", "http://127.0.0.1:8080", "base URL of the leadgate to load")
	loadFlags(fs, l, 10*time.Second)
	fs.Float64Var(&l.Rate, "rate", 0, "requests per second (0: as fast as -c connections allow)")
	fs.IntVar(&l.PID, "pid", 0, "the target's process id, for its RSS")
	fs.StringVar(&l.Metrics, "metrics", "", "the target's /metrics URL, for go_goroutines")
	fs.Parse(args)
	res, err := l.run(ctx)
	if err != nil {
		return err
	}
	res.print(os.Stdout, "leadgate")
	res.printSnapshots(os.Stdout)
	return nil
}

func baselineCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	redisURL := fs.String("redis", "", "Redis URL (redis:// or unix://)")
	fs.Parse(args)
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	mux := http.NewServeMux()
	mux.Handle("/v1/leads", baseline(asynq.NewClientFromRedisClient(rdb)))
	mux.Handle("GET /metrics", promhttp.Handler()) // go_goroutines, like leadgate's
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func benchCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	bin := fs.String("leadgate", "", "the leadgate binary")
	rounds := fs.Int("rounds", 3, "paired rounds")
	accumulate := fs.Bool("accumulate", false, "keep every run's keys in Redis (as before 2026-12-07): each run then works on a keyspace all earlier runs, of both sides, grew")
	l := &load{}
	loadFlags(fs, l, 10*time.Second)
	fs.Parse(args)
	if l.Warmup == 0 {
		l.Warmup = 2 * time.Second // each round: connections and caches warm before measuring
	}
	e, err := newEnv(*bin)
	if err != nil {
		return err
	}
	defer e.close()
	lg, err := e.startLeadgate(*bin)
	if err != nil {
		return err
	}
	base, err := e.startBaseline()
	if err != nil {
		return err
	}
	fmt.Printf("intake: %d paired rounds of %s (after %s warm-up) at %d connections, one private redis-server\n",
		*rounds, l.Length, l.Warmup, l.Conns)
	var lgs, bases []*result
	for i := range *rounds {
		// Alternate which goes first, so neither always gets the cooler machine.
		order := []*target{lg, base}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			// Each run from an empty Redis, so that neither side works on
			// the keys of the runs before it: with them kept, leadgate's
			// Redis cost a request rose with the rounds run before (and
			// not from the keyspace's size alone: BENCHMARKS.md, Intake),
			// so the ratio depended on how many rounds were asked.
			if !*accumulate {
				if err := e.flush(ctx); err != nil {
					return fmt.Errorf("flush redis: %w", err)
				}
			}
			r := *l
			r.URL, r.PID, r.Metrics, r.Redis = t.url, t.pid(), t.metrics, e.redisPID
			res, err := r.run(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Printf("round %d ", i+1)
			res.print(os.Stdout, t.name)
			if t == lg {
				lgs = append(lgs, res)
			} else {
				bases = append(bases, res)
			}
		}
	}
	ratios := make([]float64, len(lgs))
	var cpuRatios []float64
	for i := range lgs {
		ratios[i] = lgs[i].rate() / bases[i].rate()
		if lg, base := lgs[i].cpuPerRequest().total(), bases[i].cpuPerRequest().total(); lg > 0 && base > 0 {
			cpuRatios = append(cpuRatios, float64(base)/float64(lg))
		}
	}
	lgm, basem := summarize(lgs), summarize(bases)
	fmt.Println("medians:")
	lgm.print(os.Stdout, "leadgate")
	basem.print(os.Stdout, "baseline")
	ratio := median(ratios)
	fmt.Printf("ratio (median of paired rounds): %.2f of the baseline's requests/s\n", ratio)
	// What a request costs all three processes together. On cores that
	// everything shares, the rate ratio is about this times
	// (1 - leadgate's idle share) / (1 - the baseline's).
	fmt.Printf("by CPU a request (target, redis-server and load tool together): %.2f of the baseline's\n", median(cpuRatios))
	verdict := func(ok bool) string {
		if ok {
			return "holds"
		}
		return "NOT MET"
	}
	fmt.Printf("target ratio >= 0.6: %s; p99 <= 20 ms: %s; zero errors: %s\n", verdict(ratio >= 0.6),
		verdict(lgm.p99 <= 20*time.Millisecond), verdict(lgm.errors == 0))
	return nil
}

func soakCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	bin := fs.String("leadgate", "", "the leadgate binary")
	l := &load{}
	loadFlags(fs, l, 10*time.Minute)
	fs.Parse(args)
	if l.Warmup == 0 {
		l.Warmup = 10 * time.Second
	}
	e, err := newEnv(*bin)
	if err != nil {
		return err
	}
	defer e.close()
	lg, err := e.startLeadgate(*bin)
	if err != nil {
		return err
	}
	probe := load{URL: lg.url, Conns: l.Conns, Warmup: 2 * time.Second, Length: 10 * time.Second, PID: lg.pid(), Redis: e.redisPID}
	capacity, err := probe.run(ctx)
	if err != nil {
		return err
	}
	capacity.print(os.Stdout, "capacity")
	// A fresh process for the soak itself: the capacity run's peak would
	// otherwise hide growth below it.
	lg.stop()
	if lg, err = e.startLeadgate(*bin); err != nil {
		return err
	}
	l.URL, l.PID, l.Metrics, l.Redis, l.Rate = lg.url, lg.pid(), lg.metrics, e.redisPID, capacity.rate()/2
	fmt.Printf("soak: %.0f req/s (half the capacity) for %s after %s warm-up, %d connections at most\n",
		l.Rate, l.Length, l.Warmup, l.Conns)
	res, err := l.run(ctx)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.print(os.Stdout, "soak")
	res.printSnapshots(os.Stdout)
	var failed []string
	if n := res.errorCount(); n > 0 {
		failed = append(failed, fmt.Sprintf("%d errors", n))
	}
	if res.End.RSS > res.Warm.RSS*11/10 {
		failed = append(failed, fmt.Sprintf("RSS grew from %s to %s", mib(res.Warm.RSS), mib(res.End.RSS)))
	}
	// Goroutines are counted once the load's connections are closed (run
	// closes them): each open connection holds one in the web, and the
	// client opens more (up to -c) when the web stalls, so a count taken
	// with them open follows the stalls. Closed, the count must be back
	// near the fresh process's before the load: goroutinesSlack for what
	// starts with the first requests (pools, timers).
	closed := settledGoroutines(l.Metrics)
	fmt.Printf("  goroutines with the load's connections closed: %d\n", closed)
	if closed == 0 {
		failed = append(failed, "goroutines with the connections closed not read")
	} else if closed > res.Start.Goroutines+goroutinesSlack {
		failed = append(failed, fmt.Sprintf("goroutines outlive their connections: %d with the load's connections closed, %d before the load",
			closed, res.Start.Goroutines))
	}
	if len(failed) > 0 {
		return fmt.Errorf("soak failed: %v", failed)
	}
	fmt.Printf("soak passed: zero errors; RSS at the end within 10 %% of its value after the warm-up; goroutines with the connections closed at most %d above their count before the load\n", goroutinesSlack)
	return nil
}

// goroutinesSlack is how many goroutines more than before the load the
// soak allows once the load's connections are closed.
const goroutinesSlack = 5

// summary is the medians of rounds (of one, a round's own figures).
type summary struct {
	rate           float64
	p50, p99, p999 time.Duration
	errors         int
	errorsBy       map[string]int
	peakRSS        int64
	cpu            cpu     // per request
	idle           float64 // the machine's idle share; 0 when not read
}

func summarize(rs []*result) summary {
	s := summary{errorsBy: map[string]int{}}
	var rates []float64
	var p50, p99, p999, target, redis, self []time.Duration
	var idle []float64
	for _, r := range rs {
		rates = append(rates, r.rate())
		idle = append(idle, r.Warm.Machine.idleShare(r.End.Machine))
		c := r.cpuPerRequest()
		target, redis, self = append(target, c.Target), append(redis, c.Redis), append(self, c.Self)
		p50, p99, p999 = append(p50, r.quantile(.5)), append(p99, r.quantile(.99)), append(p999, r.quantile(.999))
		s.errors += r.errorCount()
		for k, n := range r.Errors {
			s.errorsBy[k] += n
		}
		s.peakRSS = max(s.peakRSS, r.PeakRSS)
	}
	s.rate = median(rates)
	s.p50, s.p99, s.p999 = median(p50), median(p99), median(p999)
	s.cpu = cpu{median(target), median(redis), median(self)}
	s.idle = median(idle)
	return s
}

func (s summary) print(w io.Writer, name string) {
	fmt.Fprintf(w, "%-10s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  p999 %6.2f ms  errors %d %v  peak RSS %s",
		name, s.rate, ms(s.p50), ms(s.p99), ms(s.p999), s.errors, s.errorsBy, mib(s.peakRSS))
	if s.cpu.Target > 0 {
		fmt.Fprintf(w, "  CPU/request %s: %3.0f µs", name, us(s.cpu.Target))
		if s.cpu.Redis > 0 { // `run` knows no redis-server
			fmt.Fprintf(w, ", redis-server %3.0f µs", us(s.cpu.Redis))
		}
		fmt.Fprintf(w, ", load tool %3.0f µs", us(s.cpu.Self))
	}
	if s.idle > 0 {
		fmt.Fprintf(w, "  machine idle %2.0f %%", 100*s.idle)
	}
	fmt.Fprintln(w)
}

func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	ys := slices.Clone(xs)
	slices.Sort(ys)
	if len(ys)%2 == 1 {
		return ys[len(ys)/2]
	}
	return (ys[len(ys)/2-1] + ys[len(ys)/2]) / 2
}
