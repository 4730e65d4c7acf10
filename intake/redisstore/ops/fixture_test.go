package ops

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// storeFixture is the records on a private redis-server of the test's own.
type storeFixture struct {
	store *Records
	rdb   redis.UniversalClient
	clock *clock
}

func setupStore(t *testing.T) storeFixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	rdb := redistest.Start(t).Client(t)
	return storeFixture{store: New(rdb, c.Now), rdb: rdb, clock: c}
}
