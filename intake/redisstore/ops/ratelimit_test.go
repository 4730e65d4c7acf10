package ops

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// TestLimiterKeepsRateAcrossClients: calls from many goroutines, through
// two Limiters on two connections (as two worker processes would have),
// never exceed the limit in any window, wherever the window starts; and the
// limit is a pace, not a refusal: every call gets through, about as fast as
// the limit allows.
func TestLimiterKeepsRateAcrossClients(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const (
		limit = 6
		per   = time.Second
		calls = 20
	)
	limiters := []*Limiter{
		NewLimiter(srv.Client(t), "amocrm", limit, per),
		NewLimiter(srv.Client(t), "amocrm", limit, per),
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var (
		mu    sync.Mutex
		times []time.Time
		wg    sync.WaitGroup
	)
	start := time.Now()
	for i := range calls {
		wg.Go(func() {
			if err := limiters[i%2].Wait(ctx); err != nil {
				t.Errorf("Wait: %v", err)
				return
			}
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(times) != calls {
		t.Fatalf("%d calls got through, want %d", len(times), calls)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	// Any window of length per holding limit+1 calls would have its first
	// and last less than per apart. The times are taken after Wait returns,
	// so they carry the scheduling noise of a busy test machine, where a
	// goroutine may wait hundreds of milliseconds to run: allow half a
	// window of it. A limiter that fails lets calls through together,
	// milliseconds apart.
	const noise = per / 2
	for i := 0; i+limit < len(times); i++ {
		if gap := times[i+limit].Sub(times[i]); gap < per-noise {
			t.Errorf("calls %d..%d came within %s: more than %d in a window of %s", i, i+limit, gap, limit, per)
		}
	}
	// 20 calls at 6 a second: the 7th, 13th and 19th wait a full window.
	// A busy machine only makes the run longer, so its lower bound needs
	// little room.
	elapsed := time.Since(start)
	if want := time.Duration((calls-1)/limit) * per; elapsed < want-300*time.Millisecond || elapsed > want+2*per {
		t.Errorf("%d calls took %s, want about %s", calls, elapsed, want)
	}
}

// TestLimiterWaitEndsWithContext: a call over the limit waits, and its
// context's deadline ends the wait with the context's error, well before
// the window would have let it through; the call is not counted.
func TestLimiterWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	l := NewLimiter(rdb, "amocrm", 2, 10*time.Second)
	for range 2 {
		if err := l.Wait(t.Context()); err != nil {
			t.Fatalf("Wait under the limit: %v", err)
		}
	}
	start := time.Now() // before the deadline is set, so a pause in between cannot shorten the wait measured
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := l.Wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait over the limit = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("Wait returned after %s, want at its 100ms deadline", d)
	}
	if n := rdb.ZCard(t.Context(), redisstore.ThrottleKey("amocrm")).Val(); n != 2 {
		t.Errorf("window holds %d calls, want 2: a call that gave up is not counted", n)
	}
	// The key always has a TTL: the purge would remove it otherwise.
	if ttl := rdb.PTTL(t.Context(), redisstore.ThrottleKey("amocrm")).Val(); ttl <= 0 {
		t.Errorf("PTTL = %s, want a TTL", ttl)
	}
}
