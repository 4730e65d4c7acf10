package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// load is one run of the driver against a target.
type load struct {
	URL     string        // base URL of the target, e.g. http://127.0.0.1:8080
	Conns   int           // connections (and requests in flight at most)
	Rate    float64       // requests per second; 0: as fast as Conns allow
	Warmup  time.Duration // load before measuring
	Length  time.Duration // measured load after Warmup
	PID     int           // the target's process, for RSS and CPU; 0: not read
	Metrics string        // the target's /metrics URL, for go_goroutines; "": not read
	Redis   int           // the redis-server's process, for its CPU; 0: not read
}

// snapshot is the target's state at one moment.
type snapshot struct {
	RSS        int64 // bytes; 0 when not read
	Goroutines int64 // 0 when not read
	CPU        cpu   // used so far by each process
	Machine    machine
}

// machine is the time all cores have spent so far, and how much of it idle
// (idle and iowait of /proc/stat's cpu line), in USER_HZ ticks. The idle
// share of a run is of the whole machine: time no process used, whoever
// else runs there (BENCHMARKS.md, intake: What limits it).
type machine struct{ Idle, Total int64 }

// idleShare is the fraction of the cores left idle from m to later; 0 when
// either was not read.
func (m machine) idleShare(later machine) float64 {
	if m.Total == 0 || later.Total <= m.Total {
		return 0
	}
	return float64(later.Idle-m.Idle) / float64(later.Total-m.Total)
}

// cpu is the processor time used so far by the target, the redis-server and
// this tool: per request, it is what a rate on a shared machine hides (a
// process that waited for a core spent no CPU meanwhile).
type cpu struct{ Target, Redis, Self time.Duration }

func (c cpu) sub(d cpu) cpu { return cpu{c.Target - d.Target, c.Redis - d.Redis, c.Self - d.Self} }

func (c cpu) total() time.Duration { return c.Target + c.Redis + c.Self }

// result is what a run measured; latencies and errors are of the measured
// part only.
type result struct {
	Requests  int
	Seconds   float64
	Latencies []time.Duration // sorted
	Errors    map[string]int  // by status ("status 503") or kind ("timeout", "connection")
	Start     snapshot        // before any load
	Warm      snapshot        // after Warmup
	End       snapshot        // after the load
	PeakRSS   int64           // the highest RSS sampled during the run
}

func (r *result) rate() float64 { return float64(r.Requests) / r.Seconds }

// cpuPerRequest is the CPU each process spent per measured request, from
// the end of the warm-up to the end of the load.
func (r *result) cpuPerRequest() cpu {
	if r.Requests == 0 {
		return cpu{}
	}
	d, n := r.End.CPU.sub(r.Warm.CPU), time.Duration(r.Requests)
	return cpu{d.Target / n, d.Redis / n, d.Self / n}
}

// quantile returns the q-quantile of the latencies (nearest rank).
func (r *result) quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

func (r *result) errorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// run drives the target and measures it. In rate mode each request's
// latency counts from when it was due, not from when a connection was
// free, so a stalled target shows up in the percentiles instead of only
// slowing the load down.
func (l *load) run(ctx context.Context) (*result, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: l.Conns, MaxConnsPerHost: l.Conns, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}}
	defer client.CloseIdleConnections()
	res := &result{Errors: map[string]int{}}
	var err error
	if res.Start, err = l.snapshot(); err != nil {
		return nil, err
	}
	people := newPeople()
	var seq atomic.Uint64
	begin := time.Now()
	measureFrom, end := begin.Add(l.Warmup), begin.Add(l.Warmup+l.Length)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() { // RSS while loaded, and the snapshot after warm-up
		defer close(sampled)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		warm := time.NewTimer(l.Warmup)
		defer warm.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-warm.C:
				res.Warm, _ = l.snapshot()
			case <-tick.C:
				if rss, err := readRSS(l.PID); err == nil && rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}
	}()

	due := make(chan time.Time, l.Conns)
	if l.Rate > 0 {
		go pace(ctx, begin, end, l.Rate, due)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range l.Conns {
		wg.Go(func() {
			var lat []time.Duration
			errs := map[string]int{}
			for {
				var start time.Time
				if l.Rate > 0 {
					var ok bool
					if start, ok = <-due; !ok {
						break
					}
				} else if ctx.Err() != nil {
					break
				} else {
					start = time.Now()
				}
				n := seq.Add(1)
				kind := l.post(ctx, client, people.body(n), clientAddr(n))
				if ctx.Err() != nil && kind != "" {
					break // cut off by the end of the run: neither a result nor an error
				}
				if start.Before(measureFrom) {
					continue
				}
				if kind != "" {
					errs[kind]++
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			for k, c := range errs {
				res.Errors[k] += c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	<-sampled
	res.Seconds = l.Length.Seconds()
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	res.PeakRSS = peak.Load()
	if res.End, err = l.snapshot(); err != nil {
		return nil, err
	}
	return res, nil // the deferred CloseIdleConnections closes the load's connections
}

// settledGoroutines reads go_goroutines at url until two reads 100 ms
// apart agree, as the goroutines of connections just closed end, and
// returns that count; after 3 s of reads, the last one. 0 when no read
// succeeded.
func settledGoroutines(url string) int64 {
	last := int64(0)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n, err := readGoroutines(url)
		if err == nil && n == last {
			break
		}
		if err == nil {
			last = n
		}
	}
	return last
}

// pace sends on due the time each request is due, rate a second from
// begin, for every such time before end; then it closes due. The schedule is
// bounded by end itself, not only by ctx: on a busy machine the deadline's
// timer can fire late, and ticks past end would be counted as measured.
func pace(ctx context.Context, begin, end time.Time, rate float64, due chan<- time.Time) {
	defer close(due)
	interval := time.Duration(float64(time.Second) / rate)
	for next := begin; next.Before(end); next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		select {
		case <-ctx.Done():
			return
		case due <- next:
		}
	}
}

// browserHeaders are what the website's form script sends besides the body,
// as a browser's fetch does: the answer's encodings it accepts (the
// transport's own gzip is off, so the header is set by hand) and its
// User-Agent, which intake parses and records. A load without them missed
// a compressor made for every 202 (intake/httpapi/gzip.go).
var browserHeaders = map[string]string{
	"Accept":          "application/json",
	"Accept-Encoding": "gzip, deflate, br, zstd",
	"Accept-Language": "ru-RU,ru;q=0.9,kk;q=0.8,en;q=0.7",
	"User-Agent":      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
}

// post submits one lead and returns "" on 202, else what went wrong.
func (l *load) post(ctx context.Context, client *http.Client, body []byte, addr string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL+"/v1/leads", bytes.NewReader(body))
	if err != nil {
		return "request"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	for k, v := range browserHeaders {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "connection"
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

func (l *load) snapshot() (snapshot, error) {
	var s snapshot
	var err error
	if l.PID != 0 {
		if s.RSS, err = readRSS(l.PID); err != nil {
			return s, err
		}
	}
	if l.Metrics != "" {
		if s.Goroutines, err = readGoroutines(l.Metrics); err != nil {
			return s, err
		}
	}
	for _, p := range []struct {
		pid int
		to  *time.Duration
	}{{l.PID, &s.CPU.Target}, {l.Redis, &s.CPU.Redis}, {os.Getpid(), &s.CPU.Self}} {
		if p.pid == 0 {
			continue
		}
		if *p.to, err = readCPU(p.pid); err != nil {
			return s, err
		}
	}
	s.Machine, _ = readMachine() // Linux only: elsewhere no idle share is printed
	return s, nil
}

// readMachine reads the cpu line of /proc/stat.
func readMachine() (machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachine(line)
}

// parseMachine reads the cpu line of /proc/stat: user to steal (guest time
// is counted in user already).
func parseMachine(line string) (machine, error) {
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return machine{}, errors.New("no cpu line in /proc/stat")
	}
	var m machine
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return machine{}, fmt.Errorf("/proc/stat: %w", err)
		}
		m.Total += n
		if i == 3 || i == 4 { // idle, iowait
			m.Idle += n
		}
	}
	return m, nil
}

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on Linux
// whatever the kernel's own tick.
const clockTick = 10 * time.Millisecond

// readCPU reads the user and system time of process pid from /proc.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis are fixed: utime and stime are the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// readRSS reads VmRSS of process pid from /proc, in bytes.
func readRSS(pid int) (int64, error) {
	if pid == 0 {
		return 0, nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// metricsClient reads the target's metrics: a hung endpoint must not hang
// the tool.
var metricsClient = &http.Client{Timeout: 2 * time.Second}

// readGoroutines reads go_goroutines from a Prometheus text endpoint.
func readGoroutines(url string) (int64, error) {
	resp, err := metricsClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines at %s", url)
}

// print writes the run's figures as people read them.
func (r *result) print(w io.Writer, name string) { summarize([]*result{r}).print(w, name) }

func (r *result) printSnapshots(w io.Writer) {
	for _, s := range []struct {
		when string
		snapshot
	}{{"start", r.Start}, {"warm", r.Warm}, {"end", r.End}} {
		fmt.Fprintf(w, "  %-5s RSS %s goroutines %d\n", s.when, mib(s.RSS), s.Goroutines)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
