// Package ops keeps the operations' own records in Redis: the audit log,
// the purge lock, the CRM-gone flag, the sales teams' round-robin turns,
// and the rate limits of outside systems. Their keys are spelled in
// redisstore's keys.go, the one list of the schema.
package ops

import (
	"embed"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake/redisstore"
)

//go:embed scripts/*.lua
var scriptFiles embed.FS

func script(name string) *redis.Script { return redisstore.LoadScript(scriptFiles, name) }

// Records are the operations' records over one connection.
type Records struct {
	Audit   *Audit
	Workers *Workers
}

// conn is what the records share: the connection and the clock.
type conn struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns the records over rdb; now is the clock (time.Now in
// production).
func New(rdb redis.UniversalClient, now func() time.Time) *Records {
	c := conn{rdb: rdb, now: now}
	return &Records{Audit: &Audit{c}, Workers: &Workers{c}}
}
