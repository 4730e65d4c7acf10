package ops

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// Workers are the workers' own records: the purge lock, the CRM-gone flag,
// the sales teams' round-robin positions, and the trimming of asynq's
// finished tasks.
type Workers struct{ conn }

// The purge lock's scripts renew and release it only while it is still
// the caller's. KEYS[1] the lock; ARGV[1] the owner token (ARGV[2] the new
// TTL in ms, for the renewal).
var (
	renewLockScript   = script("renew_lock.lua")
	releaseLockScript = script("release_lock.lua")
)

// TakePurgeLock takes the purge lock for owner (a random token) for ttl;
// false when another purge holds it.
func (w *Workers) TakePurgeLock(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	ok, err := w.rdb.SetNX(ctx, redisstore.PurgeLockKey, owner, ttl).Result()
	if err != nil {
		return false, intake.Unavailable("take purge lock", err)
	}
	return ok, nil
}

// RenewPurgeLock extends owner's purge lock to ttl from now, if it is
// still owner's.
func (w *Workers) RenewPurgeLock(ctx context.Context, owner string, ttl time.Duration) error {
	if err := renewLockScript.Run(ctx, w.rdb, []string{redisstore.PurgeLockKey}, owner, ttl.Milliseconds()).Err(); err != nil {
		return intake.Unavailable("renew purge lock", err)
	}
	return nil
}

// ReleasePurgeLock gives owner's purge lock up, if it is still owner's.
func (w *Workers) ReleasePurgeLock(ctx context.Context, owner string) error {
	if err := releaseLockScript.Run(ctx, w.rdb, []string{redisstore.PurgeLockKey}, owner).Err(); err != nil {
		return intake.Unavailable("release purge lock", err)
	}
	return nil
}

// MarkCRMGone records that the CRM endpoint answered 410 Gone at at: no
// lead is sent there again until a worker starts (ClearCRMGone). It reports
// whether this call set the flag (the first to see the 410).
func (w *Workers) MarkCRMGone(ctx context.Context, at time.Time) (bool, error) {
	set, err := w.rdb.SetNX(ctx, redisstore.CRMGoneKey, at.UTC().Format(time.RFC3339), 0).Result()
	if err != nil {
		return false, intake.Unavailable("set CRM-gone flag", err)
	}
	return set, nil
}

// ClearCRMGone clears the flag MarkCRMGone set: a starting worker may have
// a fixed CRM endpoint.
func (w *Workers) ClearCRMGone(ctx context.Context) error {
	if err := w.rdb.Del(ctx, redisstore.CRMGoneKey).Err(); err != nil {
		return intake.Unavailable("clear CRM-gone flag", err)
	}
	return nil
}

// NextTurn advances team's round-robin position by one and returns it
// (1 for the first lead): every worker shares one counter a team.
func (w *Workers) NextTurn(ctx context.Context, team string) (int64, error) {
	n, err := w.rdb.Incr(ctx, redisstore.RouteTurnKey(team)).Result()
	if err != nil {
		return 0, intake.Unavailable("advance round-robin", err)
	}
	return n, nil
}

// removeTasksScript removes up to ARGV[3] tasks scored at or before
// ARGV[1] from the zset KEYS[1] (a queue's archived or completed set), with
// their task hashes (ARGV[2] is the queue's task-key prefix), the way
// asynq's own janitor trims expired completed tasks. Returns the count.
var removeTasksScript = script("remove_tasks.lua")

// RemoveTasks removes up to batch of asynq's tasks scored at or before
// before (Unix seconds) from the task set set, with their task hashes
// (taskKeyPrefix + id). The keys are asynq's, named by the caller; this
// only does the removal in one step.
func (w *Workers) RemoveTasks(ctx context.Context, set, taskKeyPrefix string, before time.Time, batch int) (int, error) {
	n, err := removeTasksScript.Run(ctx, w.rdb, []string{set}, strconv.FormatInt(before.Unix(), 10), taskKeyPrefix, batch).Int()
	if err != nil {
		return 0, fmt.Errorf("remove finished tasks: %w", err)
	}
	return n, nil
}

// requeueOrphansScript puts asynq's active tasks whose lease ended back in
// line (KEYS and ARGV in the script).
var requeueOrphansScript = script("requeue_orphans.lua")

// RequeueOrphans puts up to batch of a queue's active tasks whose lease
// ended at or before cutoff back at the head of its pending list, as asynq's
// own Requeue does, and returns how many. lease, active and pending are the
// queue's keys and taskKeyPrefix its task-hash prefix, all asynq's, named by
// the caller; this only does the move in one step.
func (w *Workers) RequeueOrphans(ctx context.Context, lease, active, pending, taskKeyPrefix string, cutoff time.Time, batch int) (int, error) {
	n, err := requeueOrphansScript.Run(ctx, w.rdb, []string{lease, active, pending},
		strconv.FormatInt(cutoff.Unix(), 10), taskKeyPrefix, batch).Int()
	if err != nil {
		return 0, intake.Unavailable("requeue orphaned tasks", err)
	}
	return n, nil
}
