// Package delivery keeps the marks of CRM pushes on the lead records: before
// each push to the CRM the lead's hash gets the attempt's time, so a redo of
// the same lead — after a worker died, or asynq ran the task again — knows
// that an earlier attempt may have delivered it. It is a package of its own
// because redisstore is near its size limit; the lead key is still spelled
// only in redisstore/keys.go.
package delivery

import (
	"context"
	"embed"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

//go:embed scripts/*.lua
var scriptFiles embed.FS

// beginScript marks a received lead as being pushed and returns the earlier
// mark, unless the CRM endpoint is disabled (KEYS and ARGV in the script):
// the flag is read in the call the push needs anyway, not in one of its own.
var beginScript = redisstore.LoadScript(scriptFiles, "begin_push.lua")

// Pushes are the marks of CRM pushes.
type Pushes struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns the marks over rdb; now is the clock (time.Now in production).
func New(rdb redis.UniversalClient, now func() time.Time) *Pushes {
	return &Pushes{rdb: rdb, now: now}
}

// Push is what Begin found.
type Push struct {
	// Earlier is when an earlier push of the lead began; zero for the first.
	Earlier time.Time
	// CRMGone says the CRM endpoint answered 410 Gone since the workers
	// started (ops.Workers.MarkCRMGone): the lead is not to be pushed, and
	// was not marked.
	CRMGone bool
}

// Begin marks lead id, still Received, as being pushed now and returns when
// an earlier push of it began, or that the CRM is disabled. A lead that is
// gone is ENotFound; one no longer Received (routed, blocked meanwhile) is
// EConflict, and is not marked.
func (p *Pushes) Begin(ctx context.Context, id string) (Push, error) {
	res, err := beginScript.Run(ctx, p.rdb, []string{redisstore.LeadKey(id), redisstore.CRMGoneKey}, p.now().UnixMilli()).StringSlice()
	if err != nil {
		return Push{}, intake.Unavailable("mark CRM push", err)
	}
	switch res[0] {
	case "missing":
		return Push{}, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	case "gone":
		return Push{CRMGone: true}, nil
	case string(intake.Received):
	default:
		return Push{}, &intake.Error{Code: intake.EConflict, Message: "lead is " + res[0] + ", not received"}
	}
	if res[1] == "" {
		return Push{}, nil
	}
	ms, _ := strconv.ParseInt(res[1], 10, 64) // only Begin writes it; even unreadable it says an attempt began
	return Push{Earlier: time.UnixMilli(ms)}, nil
}
