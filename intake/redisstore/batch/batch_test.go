package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
)

// echo counts its runs in KEYS[1] and answers ARGV[1].
var echo = redis.NewScript(`redis.call('INCR', KEYS[1]) return ARGV[1]`)

// gate holds every pipeline of script calls until open is closed, and reports each
// pipeline's length as it arrives.
type gate struct {
	sizes chan int
	open  chan struct{}
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() != "evalsha" { // a new connection's CLIENT SETINFO
			return next(ctx, cmds)
		}
		g.sizes <- len(cmds)
		<-g.open
		return next(ctx, cmds)
	}
}

// busy returns a Script whose Senders pipelines are out and held by a
// gate, each with one call of its own (answered on the returned channel).
func busy(t *testing.T) (*Script, *gate, redis.UniversalClient, <-chan error) {
	rdb := redistest.Start(t).Client(t)
	if err := echo.Load(context.Background(), rdb).Err(); err != nil { // a NOSCRIPT would send a call twice
		t.Fatal(err)
	}
	g := &gate{sizes: make(chan int, 100), open: make(chan struct{})}
	rdb.AddHook(g)
	s := New(rdb, echo)
	answers := make(chan error, Senders)
	for i := range Senders {
		go func() { answers <- expect(s.Run(context.Background(), []string{"runs:sender"}, i), fmt.Sprint(i)) }()
	}
	for range Senders {
		if n := <-g.sizes; n != 1 {
			t.Fatalf("a sender's pipeline has %d calls, want its own", n)
		}
	}
	return s, g, rdb, answers
}

func expect(cmd *redis.Cmd, want string) error {
	got, err := cmd.Text()
	if err != nil || got != want {
		return fmt.Errorf("answer %q, %v; want %q", got, err, want)
	}
	return nil
}

// waitQueued waits until n calls wait in s's queue.
func waitQueued(t *testing.T, s *Script, n int) {
	t.Helper()
	waitState(t, s, n, -1)
}

// waitIdle waits until no pipeline is out and no call waits.
func waitIdle(t *testing.T, s *Script) {
	t.Helper()
	waitState(t, s, 0, 0)
}

// waitState waits until s has queued calls waiting and senders pipelines
// out (-1: any number), failing the test after 5 s.
func waitState(t *testing.T, s *Script, queued, senders int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		q, out := len(s.queue), s.senders
		s.mu.Unlock()
		if q == queued && (senders < 0 || out == senders) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued and %d senders out, want %d and %d (-1: any)", q, out, queued, senders)
		}
	}
}

// queueCalls starts n calls of s, the i-th adding to runs:waiting and
// expecting i back, and returns once all n wait queued behind the busy
// senders; each call's outcome comes on the channel.
func queueCalls(t *testing.T, s *Script, n int) <-chan error {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- expect(s.Run(context.Background(), []string{"runs:waiting"}, i), fmt.Sprint(i)) }()
	}
	waitQueued(t, s, n)
	return errs
}

func TestCallsWaitingShareOnePipeline(t *testing.T) {
	t.Parallel()
	s, g, rdb, senders := busy(t)
	const waiting = 10
	errs := queueCalls(t, s, waiting)
	release(t, s, g, senders)
	receiveAll(t, errs, waiting)
	if n := <-g.sizes; n != waiting {
		t.Errorf("the waiting calls went in a pipeline of %d, want all %d in one", n, waiting)
	}
	if len(g.sizes) != 0 {
		t.Errorf("%d more pipelines, want none", len(g.sizes))
	}
	if n := rdb.Get(context.Background(), "runs:waiting").Val(); n != fmt.Sprint(waiting) {
		t.Errorf("the waiting calls ran %s times, want %d", n, waiting)
	}
}

// A caller that stops waiting before its call is sent takes the call
// back: it never runs, the error says so, and the callers behind it are
// served as before.
func TestACallerThatStopsWaitingTakesItsCallBack(t *testing.T) {
	t.Parallel()
	for _, after := range []int{0, 1} { // callers queued behind the one that gives up
		t.Run(fmt.Sprintf("%d behind", after), func(t *testing.T) {
			t.Parallel()
			s, g, rdb, senders := busy(t)
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error, 1)
			go func() { gaveUp <- s.Run(ctx, []string{"runs:gave-up"}, "x").Err() }()
			waitQueued(t, s, 1)
			cancel()
			if err := <-gaveUp; !errors.Is(err, ErrNotSent) || !errors.Is(err, context.Canceled) {
				t.Fatalf("a caller whose context ended got %v, want ErrNotSent and context.Canceled", err)
			}
			behind := make(chan error, after)
			for i := range after {
				go func() { behind <- expect(s.Run(context.Background(), []string{"runs:behind"}, i), fmt.Sprint(i)) }()
			}
			waitQueued(t, s, 1+after)
			release(t, s, g, senders)
			receiveAll(t, behind, after)
			if n := rdb.Exists(context.Background(), "runs:gave-up").Val(); n != 0 {
				t.Error("the call of the caller that gave up ran")
			}
		})
	}
}

// A call still queued after MaxWait (Redis holding both pipelines) is
// taken back by its caller, as if its context had ended.
func TestACallQueuedTooLongIsTakenBack(t *testing.T) {
	t.Parallel()
	s, g, rdb, senders := busy(t)
	start := time.Now()
	err := s.Run(context.Background(), []string{"runs:late"}, "x").Err()
	if !errors.Is(err, ErrNotSent) || time.Since(start) < MaxWait {
		t.Fatalf("a call queued behind held pipelines got %v after %s, want ErrNotSent after %s", err, time.Since(start), MaxWait)
	}
	release(t, s, g, senders)
	if n := rdb.Exists(context.Background(), "runs:late").Val(); n != 0 {
		t.Error("the call taken back ran")
	}
}

// More calls than one pipeline holds all run, and the senders count
// themselves out once the queue is empty.
func TestAQueueLongerThanAPipelineDrains(t *testing.T) {
	t.Parallel()
	s, g, rdb, senders := busy(t)
	const waiting = 2*maxCalls + 5
	errs := queueCalls(t, s, waiting)
	release(t, s, g, senders)
	receiveAll(t, errs, waiting)
	if n := rdb.Get(context.Background(), "runs:waiting").Val(); n != fmt.Sprint(waiting) {
		t.Errorf("the waiting calls ran %s times, want %d", n, waiting)
	}
	for len(g.sizes) > 0 {
		if n := <-g.sizes; n > maxCalls {
			t.Errorf("a pipeline of %d calls, want at most %d", n, maxCalls)
		}
	}
}

// release opens the gate busy set, and waits for the senders' own
// answers and until no pipeline is out and no call waits.
func release(t *testing.T, s *Script, g *gate, senders <-chan error) {
	t.Helper()
	close(g.open)
	receiveAll(t, senders, Senders)
	waitIdle(t, s)
}

// receiveAll fails the test with each of the next n errors of ch.
func receiveAll(t *testing.T, ch <-chan error, n int) {
	t.Helper()
	for range n {
		if err := receive(t, ch); err != nil {
			t.Error(err)
		}
	}
}

// receive is the next value of ch, failing the test after 10 s instead of
// hanging it.
func receive(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10 s")
		return nil
	}
}

func TestRunLoadsTheScriptAgainAfterAFlush(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	s := New(rdb, echo)
	ctx := context.Background()
	for i := range 2 {
		if err := expect(s.Run(ctx, []string{"runs"}, i), fmt.Sprint(i)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		rdb.ScriptFlush(ctx)
	}
	if n := rdb.Get(ctx, "runs").Val(); n != "2" {
		t.Errorf("ran %s times, want 2", n)
	}
}
