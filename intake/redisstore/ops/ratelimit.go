package ops

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// throttleScript admits a call or says how long to wait: KEYS[1] the
// window's zset; ARGV[1] the limit, ARGV[2] the window in µs, ARGV[3] a
// member unique to the call. It returns 0 (admitted) or the µs to wait.
var throttleScript = script("throttle.lua")

// Limiter keeps the calls of every process to one outside system under a
// rate: at most Limit calls in any window of length Per — a sliding window,
// not a fixed one, since a fixed window lets twice the limit through across
// its edge. It is what a driver whose system counts requests a second
// (amoCRM: 7) waits on before each call. It is safe for concurrent use.
type Limiter struct {
	rdb   redis.UniversalClient
	key   string
	limit int
	per   time.Duration
}

// NewLimiter returns the Limiter named name (the outside system: "amocrm")
// allowing limit calls in any window of length per, shared by every process
// using rdb. It panics when limit or per is not positive: that is a mistake
// in the wiring, not a condition to handle.
func NewLimiter(rdb redis.UniversalClient, name string, limit int, per time.Duration) *Limiter {
	if limit <= 0 || per < time.Millisecond {
		panic(fmt.Sprintf("redisstore: NewLimiter(%q, %d, %s): limit and period must be positive", name, limit, per))
	}
	return &Limiter{rdb: rdb, key: redisstore.ThrottleKey(name), limit: limit, per: per}
}

// Wait blocks until a call is allowed and counts it, so the caller makes
// the call at once. It returns ctx's error (wrapped) when ctx ends first,
// and an intake.Unavailable error when Redis cannot be asked: the caller
// should then not make the call, since it cannot know the rate is kept.
func (l *Limiter) Wait(ctx context.Context) error {
	member := rand.Text()
	for {
		wait, err := throttleScript.Run(ctx, l.rdb, []string{l.key}, l.limit, l.per.Microseconds(), member).Int64()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("rate limit: %w", ctx.Err())
			}
			return intake.Unavailable("rate limit", err)
		}
		if wait <= 0 {
			return nil
		}
		// Waiters woken together race for the freed places; the losers
		// are told the next wait, so nobody polls faster than calls leave
		// the window.
		t := time.NewTimer(time.Duration(wait) * time.Microsecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("rate limit: %w", ctx.Err())
		case <-t.C:
		}
	}
}
