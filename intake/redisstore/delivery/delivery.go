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

// beginScript records a lead's assignment, marks the lead, if received, as
// being pushed, queues its opt-in request if it asks for a link, and returns
// the earlier mark, unless the CRM endpoint is disabled (KEYS and ARGV in
// the script): what the router reads and writes before a push is one round
// trip.
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
	// Assignment is the lead's assignment: the one given to Begin, or the
	// one an earlier attempt recorded.
	Assignment intake.Assignment
}

// Begin records a as lead id's assignment unless it has one (a may be nil),
// marks the lead, still Received, as being pushed now and returns when an
// earlier push of it began and its assignment, or that the CRM is
// disabled. With optin, the lead's opt-in request is queued with the first
// mark when its request asks for a link. A lead that is gone is ENotFound;
// one no longer Received (routed, blocked meanwhile) is EConflict, and is
// not marked.
func (p *Pushes) Begin(ctx context.Context, id string, optin bool, a *intake.Assignment) (Push, error) {
	flag := "0"
	if optin {
		flag = "1"
	}
	args := []any{p.now().UnixMilli(), id, flag}
	if a != nil {
		args = append(args, a.Rule, a.Team, a.Owner, a.CRMUserID)
	}
	keys := []string{redisstore.LeadKey(id), redisstore.CRMGoneKey, redisstore.AdmissionStream}
	res, err := beginScript.Run(ctx, p.rdb, keys, args...).StringSlice()
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
	push := Push{Assignment: intake.Assignment{Rule: res[2], Team: res[3], Owner: res[4], CRMUserID: res[5]}}
	if res[1] != "" {
		ms, _ := strconv.ParseInt(res[1], 10, 64) // only Begin writes it; even unreadable it says an attempt began
		push.Earlier = time.UnixMilli(ms)
	}
	return push, nil
}
