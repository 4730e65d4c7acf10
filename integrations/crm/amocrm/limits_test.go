package amocrm

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

// countingLimiter counts Waits and fails them with err when set.
type countingLimiter struct {
	waits atomic.Int64
	err   error
}

func (l *countingLimiter) Wait(ctx context.Context) error {
	l.waits.Add(1)
	if l.err != nil {
		return l.err
	}
	return ctx.Err()
}

// TestLimiterBeforeEveryCall: every request Push makes waits on the
// limiter first; one that the limiter does not let through is not sent,
// and the failure is Temporary, still telling the context's end apart.
func TestLimiterBeforeEveryCall(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lim := &countingLimiter{}
	c := newClient(t, f, func(cfg *Config) { cfg.Limiter = lim })
	if _, err := c.Push(context.Background(), legalLead()); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if sent := len(f.requestLog()); sent == 0 || lim.waits.Load() != int64(sent) {
		t.Errorf("%d waits for %d requests, want one each", lim.waits.Load(), sent)
	}

	tests := []struct {
		name string
		err  error
		is   error
	}{
		{"deadline", context.DeadlineExceeded, context.DeadlineExceeded},
		{"limiter down", errors.New("redis: connection refused"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			ctx := context.Background()
			if tt.is != nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer cancel()
			}
			c := newClient(t, f, func(cfg *Config) { cfg.Limiter = &countingLimiter{err: tt.err} })
			_, err := c.Push(ctx, soleLead())
			if integrations.KindOf(err) != integrations.Temporary {
				t.Fatalf("Push = %v, want Temporary", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Push = %v, want it to wrap %v", err, tt.is)
			}
			if got := f.requestLog(); len(got) != 0 {
				t.Errorf("requests = %q, want none sent", got)
			}
			assertClean(t, f, err)
		})
	}
}

// fakeClock is a settable clock for the 429 memory.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestForbiddenAfterTooManyRequests: amoCRM answers 403 to a client it
// blocked for exceeding the rate limit. A 403 within blockWindow of a 429
// is that block: RateLimited, waiting blockWait, not a failure. A 403 with
// no 429 before it, or one that comes after the window, is the refusal the
// rule says it is: Permanent.
func TestForbiddenAfterTooManyRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		first429 bool          // the first request gets 429, the next ones 403
		after    time.Duration // how long after the 429 the 403 comes
		kind     integrations.Kind
		code     string
	}{
		{"403 right after 429", true, 0, integrations.RateLimited, codeBlocked},
		{"403 at the end of the window", true, blockWindow, integrations.RateLimited, codeBlocked},
		{"403 alone", false, 0, integrations.Permanent, ""},
		{"403 after the window", true, blockWindow + time.Second, integrations.Permanent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var calls atomic.Int64
			f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if calls.Add(1) == 1 && tt.first429 {
					writeProblem(w, http.StatusTooManyRequests, nil)
				} else {
					writeProblem(w, http.StatusForbidden, map[string]any{"detail": "Account is blocked"})
				}
				return true
			})
			clock := &fakeClock{t: time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)}
			c := newClient(t, f, nil)
			c.now = clock.now

			if tt.first429 {
				_, err := c.Push(context.Background(), legalLead())
				if integrations.KindOf(err) != integrations.RateLimited || integrations.RetryAfter(err) != time.Second {
					t.Fatalf("Push answered 429 = %v, want RateLimited after 1s", err)
				}
				clock.add(tt.after)
			}
			_, err := c.Push(context.Background(), legalLead())
			var e *integrations.Error
			if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Kind != tt.kind || e.Code != tt.code {
				t.Fatalf("Push answered 403 = %v, want %s %q", err, tt.kind, tt.code)
			}
			if tt.kind == integrations.RateLimited && e.RetryAfter != blockWait {
				t.Errorf("RetryAfter = %s, want %s", e.RetryAfter, blockWait)
			}
			assertClean(t, f, err)

			// The 403s do not renew the window: a block that outlasts it
			// ends as the refusal a 403 otherwise is.
			if tt.kind == integrations.RateLimited {
				clock.add(blockWindow + time.Second - tt.after)
				if _, err := c.Push(context.Background(), legalLead()); integrations.KindOf(err) != integrations.Permanent {
					t.Errorf("403 past the window = %v, want Permanent", err)
				}
			}
		})
	}
}
