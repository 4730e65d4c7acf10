package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config/redistest"
)

// The fault tests run the real binary as separate web and worker
// processes against a private redis-server, kill what they started (by
// its own PID, never by name) and check what the contract promises: every
// 202 delivered, each lead once after the receiver's deduplication, no 503
// delivered, recovery within 30 s of Redis returning.

var (
	binOnce sync.Once
	binDir  string // removed by TestMain
	binPath string
	binErr  error
)

// leadgateBinary builds the binary once per test run.
func leadgateBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "leadgate-bin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "leadgate")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// hookReceiver is a webhook CRM that records every delivery's webhook-id
// and the email of its lead, and answers 204. hold, when set, is called
// before recording is answered (a receiver that blocks).
type hookReceiver struct {
	mu      sync.Mutex
	byID    map[string]int       // webhook-id → deliveries
	email   map[string]string    // lead email → webhook-id
	first   map[string]time.Time // webhook-id → first delivery
	arrived chan string          // each delivery's webhook-id, when not nil
	hold    func(id string)
}

func newHookReceiver() *hookReceiver {
	return &hookReceiver{byID: map[string]int{}, email: map[string]string{}, first: map[string]time.Time{}}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	var ev struct {
		Data struct {
			Email string `json:"email"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || id == "" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.byID[id]++
	h.email[ev.Data.Email] = id
	if _, ok := h.first[id]; !ok {
		h.first[id] = time.Now()
	}
	h.mu.Unlock()
	if h.arrived != nil {
		select {
		case h.arrived <- id:
		default: // nobody waits for more
		}
	}
	if h.hold != nil {
		h.hold(id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// deliveries is how many times id arrived.
func (h *hookReceiver) deliveries(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID[id]
}

// process is one leadgate process the test started.
type process struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	addr   string // web: where it serves; worker: its METRICS_ADDR
	exited chan error
}

// faultEnv is the configuration every process of one test shares.
func faultEnv(redisURL, hookURL string) []string {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(b), 32))) }
	return []string{
		"REDIS_URL=" + redisURL, "CRM_DRIVER=webhook", "CRM_WEBHOOK_URL=" + hookURL,
		"CRM_WEBHOOK_SECRET=" + webhookSecret, "RETRY_BASE_DELAY=200ms",
		"LEADGATE_DATA_KEY=" + key('d'), "LEADGATE_INDEX_KEY=" + key('i'),
		"LEADGATE_ADMIN_TOKENS=sales:fault-sales:" + salesToken,
		"INTAKE_RATE_LIMIT=100000/h", "INTAKE_RATE_LIMIT_EMAIL=100/h",
		// The load comes from one address with a Go User-Agent: scored as
		// a bot, but held for review is not what these tests are about.
		"RISK_REVIEW_THRESHOLD=100",
	}
}

// freeAddr is a loopback address nothing listens on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs `leadgate role` with env, its own var directory and
// address, until the test ends (then it is killed, by its PID, if still
// running). It returns once the process serves.
func startProcess(t *testing.T, role string, env []string) *process {
	t.Helper()
	p := &process{out: &lockedBuffer{}, addr: freeAddr(t), exited: make(chan error, 1)}
	p.cmd = exec.Command(leadgateBinary(t), role)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append(append(os.Environ(), env...), "LEADGATE_VAR_DIR="+p.cmd.Dir)
	if role == "web" {
		p.cmd.Env = append(p.cmd.Env, "LEADGATE_ADDR="+p.addr)
	} else {
		p.cmd.Env = append(p.cmd.Env, "METRICS_ADDR="+p.addr)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", role, lastLines(p.out.String(), 15))
		}
	})
	path := "/healthz"
	if role == "worker" {
		path = "/metrics"
	}
	eventually(t, role+" to serve", func() bool {
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *process) kill() {
	p.cmd.Process.Kill()
	p.exited <- <-p.exited // left for the cleanup
}

// counter reads a counter of the process's /metrics (0 when absent).
func (p *process) counter(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// faultApplicant is the n-th obviously fake person, each with an email of
// their own (the receiver tells leads apart by it).
func faultApplicant(n int) []byte {
	b, _ := json.Marshal(map[string]any{"entity_type": "sole_proprietor", "name": "Test Testov",
		"phone": fmt.Sprintf("+7701%07d", n), "email": fmt.Sprintf("test.fault%d@example.com", n),
		"consent_processing": true})
	return b
}

// loadClient posts without the OpenAPI check of http.DefaultTransport
// (thousands of requests) and opens a connection per request, so a
// connection error belongs to exactly one request.
func loadClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// answer is what one submission got: the status and, for a 202, the id.
type answer struct {
	status int
	id     string
	err    error
}

func post(c *http.Client, base string, n int) answer {
	resp, err := c.Post(base+"/v1/leads", "application/json", strings.NewReader(string(faultApplicant(n))))
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &out)
	return answer{status: resp.StatusCode, id: out.ID}
}

// TestRedisKilledMidSubmissions kills Redis (-9, AOF on) in the middle of
// 1,000 submissions and restarts it on the same file.
func TestRedisKilledMidSubmissions(t *testing.T) {
	t.Parallel()
	srv := redistest.StartPersistent(t)
	recv := newHookReceiver()
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	env := faultEnv(srv.URL, hook.URL+"/hooks/leads")
	web := startProcess(t, "web", env)
	worker := startProcess(t, "worker", env)

	const total, concurrency, killAt = 1000, 8, 400
	answers := make([]answer, total)
	var next atomic.Int64
	killed := make(chan struct{})
	var back time.Time
	var wg sync.WaitGroup
	c := loadClient()
	for range concurrency {
		wg.Go(func() {
			for {
				n := int(next.Add(1)) - 1
				if n >= total {
					return
				}
				if n == killAt {
					srv.Stop()
					close(killed)
				}
				answers[n] = post(c, "http://"+web.addr, n)
			}
		})
	}
	<-killed
	time.Sleep(4 * time.Second) // long enough for orphans' leases to end near Redis's return
	srv.Restart(t)
	back = time.Now()
	wg.Wait()

	var accepted, refused []int
	for n, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("submission %d got no answer: %v", n, a.err)
		case a.status == http.StatusAccepted:
			accepted = append(accepted, n)
		case a.status == http.StatusServiceUnavailable:
			refused = append(refused, n)
		default:
			t.Errorf("submission %d answered %d", n, a.status)
		}
	}
	t.Logf("%d accepted, %d refused", len(accepted), len(refused))
	if len(refused) == 0 || len(accepted) < killAt {
		t.Fatalf("%d accepted, %d refused: the outage did not happen mid-load", len(accepted), len(refused))
	}
	deadline := back.Add(30 * time.Second)
	for _, n := range accepted {
		id := answers[n].id
		for recv.deliveries(id) == 0 {
			if time.Now().After(deadline) {
				missing := 0
				for _, m := range accepted {
					if recv.deliveries(answers[m].id) == 0 {
						missing++
					}
				}
				t.Fatalf("lead of submission %d (state %q) and %d more not delivered within 30 s of Redis returning",
					n, leadState(t, "http://"+web.addr, id), missing-1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second) // what a late redo or a sweep would still deliver
	recv.mu.Lock()
	defer recv.mu.Unlock()
	var last time.Time
	raw := 0
	for id, n := range recv.byID {
		raw += n - 1
		if recv.first[id].After(last) {
			last = recv.first[id]
		}
	}
	t.Logf("every accepted lead delivered %v after Redis returned; %d raw redeliveries", last.Sub(back).Round(time.Millisecond), raw)
	// A 503 is never delivered, but for the one case the contract names:
	// the accept call lost its answer and Redis stayed away past the web's
	// look-up budget (3 s; the outage here is 4 s), so the web could not
	// learn whether the lead was stored; each such 503 is counted.
	var delivered503 []int
	for _, n := range refused {
		if _, ok := recv.email[fmt.Sprintf("test.fault%d@example.com", n)]; ok {
			delivered503 = append(delivered503, n)
		}
	}
	if unknown := web.counter(t, "leadgate_admission_unknown_total"); float64(len(delivered503)) > unknown {
		t.Errorf("submissions %v were answered 503 but delivered, and only %v were counted in leadgate_admission_unknown_total", delivered503, unknown)
	} else {
		t.Logf("%d of %d refused submissions were delivered; leadgate_admission_unknown_total = %v", len(delivered503), len(refused), unknown)
	}
	if metric := worker.counter(t, `leadgate_crm_redeliveries_total{system="webhook"}`); float64(raw) > metric {
		t.Errorf("receiver saw %d redeliveries, the worker counted %v", raw, metric)
	} else {
		t.Logf("leadgate_crm_redeliveries_total{system=\"webhook\"} = %v", metric)
	}
}

// TestWorkerKilledMidTask kills a worker (-9) while the CRM holds its push;
// another worker delivers the lead again once the lease ends, counted as a
// redelivery.
func TestWorkerKilledMidTask(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	release := make(chan struct{})
	recv := newHookReceiver()
	recv.arrived = make(chan string, 4)
	var once sync.Once
	recv.hold = func(string) { once.Do(func() { <-release }) }
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	env := faultEnv(srv.URL, hook.URL+"/hooks/leads")
	web := startProcess(t, "web", env)
	first := startProcess(t, "worker", env)

	a := post(loadClient(), "http://"+web.addr, 1)
	if a.status != http.StatusAccepted {
		t.Fatalf("submission answered %d, %v", a.status, a.err)
	}
	select {
	case <-recv.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the first worker never pushed the lead")
	}
	first.kill()
	killed := time.Now()
	close(release)
	second := startProcess(t, "worker", env)
	select {
	case <-recv.arrived:
		t.Logf("delivered again %v after the kill", time.Since(killed).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Fatal("no other worker delivered the lead within 60 s of the first's kill")
	}
	eventually(t, "the lead routed", func() bool {
		return leadState(t, "http://"+web.addr, a.id) == "routed"
	})
	if n := recv.deliveries(a.id); n != 2 {
		t.Errorf("webhook-id delivered %d times, want 2 (the killed attempt and the redo)", n)
	}
	if got := second.counter(t, `leadgate_crm_redeliveries_total{system="webhook"}`); got != 1 {
		t.Errorf("the second worker counted %v redeliveries, want 1", got)
	}
}

// leadState is the lead's state as the admin API shows it.
func leadState(t *testing.T, base, id string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/admin/leads/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+salesToken)
	resp, err := loadClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		State string `json:"state"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.State
}

// TestWebSIGTERMUnderLoad sends SIGTERM to web while clients post through
// a load balancer — which here is the clients' own check of /readyz every
// 50 ms, sending nothing new once it answered 503 three times running, as
// a balancer takes a draining backend out at its unhealthy threshold (at
// one 503, a busy machine's check could take web out before any client
// sent a request after the signal). Every request sent gets an HTTP
// answer (none is reset or cut), the requests sent after the signal are
// served during SHUTDOWN_DELAY, and web exits 0 within it and its
// shutdown grace.
func TestWebSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const delay = time.Second
	env := append(faultEnv(srv.URL, "http://127.0.0.1:1/hooks/leads"), "SHUTDOWN_DELAY="+delay.String())
	web := startProcess(t, "web", env)
	base := "http://" + web.addr

	var answered, afterSignal atomic.Int64
	var bad sync.Map // error text → struct{}
	var next atomic.Int64
	var out, signalled atomic.Bool // the balancer took web out; SIGTERM was sent
	stop := make(chan struct{})
	const unhealthyThreshold = 3 // 503s running before the balancer takes web out
	var wg sync.WaitGroup
	wg.Go(func() { // the balancer's health check
		for failed := 0; !out.Load(); {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				bad.Store("health check: "+err.Error(), struct{}{})
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				failed++
			} else {
				failed = 0
			}
			out.Store(failed == unhealthyThreshold)
		}
	})
	c := loadClient()
	for range 8 {
		wg.Go(func() {
			for !out.Load() {
				select {
				case <-stop:
					return
				default:
				}
				was := signalled.Load()
				a := post(c, base, int(next.Add(1)))
				if a.err != nil {
					bad.Store(regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(a.err.Error(), "web"), struct{}{})
					continue
				}
				answered.Add(1)
				if was {
					afterSignal.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)
	sent := time.Now()
	signalled.Store(true)
	web.cmd.Process.Signal(syscall.SIGTERM)
	var exitErr error
	select {
	case exitErr = <-web.exited:
		web.exited <- exitErr // for the cleanup
	case <-time.After(delay + shutdownGrace + 10*time.Second):
		t.Fatalf("web did not exit within %v of SIGTERM", delay+shutdownGrace+10*time.Second)
	}
	took := time.Since(sent)
	close(stop)
	wg.Wait()
	if exitErr != nil {
		t.Errorf("web exited with %v after SIGTERM, want status 0", exitErr)
	}
	bad.Range(func(k, _ any) bool {
		t.Errorf("a request got no HTTP answer: %v", k)
		return true
	})
	if !out.Load() {
		t.Error("/readyz never answered 503 while web drained")
	}
	if took < delay {
		t.Errorf("web exited %v after SIGTERM, before its SHUTDOWN_DELAY of %v", took, delay)
	}
	t.Logf("web exited %v after SIGTERM; %d requests answered, %d of them sent after the signal",
		took.Round(time.Millisecond), answered.Load(), afterSignal.Load())
	if answered.Load() == 0 || afterSignal.Load() == 0 {
		t.Error("the load did not run through the signal")
	}
}
