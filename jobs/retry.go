package jobs

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
)

// maxRetryDelay caps the backoff of outside calls.
const maxRetryDelay = time.Hour

// rateLimitFloor is the least wait after a "rate limited" answer that named
// no time: such waits do not count as failures, so without a floor they
// would never grow and would hammer a throttling system every few seconds.
const rateLimitFloor = 30 * time.Second

// redisRetryDelay is the wait before retrying a task that failed because
// Redis did not answer, or whose worker lost it (asynq.ErrLeaseExpired):
// by the time asynq records the retry Redis answers again (Recovery), so
// the work need not wait out the backoff of an outside system.
const redisRetryDelay = time.Second

// RetryDelay is the contract's one retry rule: the wait an outside system
// asked for (Retry-After, a rate-limit reset), else base doubling per counted
// failure, capped at an hour, then ±25% jitter so retries of many tasks
// spread out. A failure of Redis, or of a worker, is retried after about
// redisRetryDelay.
func RetryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		d := integrations.RetryAfter(err)
		if redisFailure(err) {
			d = redisRetryDelay
		} else if d <= 0 && base <= maxRetryDelay>>min(n, 63) { // compare before shifting: base<<n may overflow
			d = base << n
			if integrations.KindOf(err) == integrations.RateLimited {
				d = max(d, rateLimitFloor)
			}
		}
		if d <= 0 || d > maxRetryDelay {
			d = maxRetryDelay
		}
		return d - d/4 + rand.N(d/2+1)
	}
}

// IsFailure tells asynq which errors count as failures: being rate limited,
// or a notification waiting for its route to be recorded, is waiting, not
// failing, so it does not use up retries; nor does an outage of Redis or a
// lost worker, which says nothing about the task.
func IsFailure(err error) bool {
	return integrations.KindOf(err) != integrations.RateLimited && !errors.Is(err, errNotRoutedYet) && !redisFailure(err)
}

// redisFailure reports whether err is Redis's failure (the store
// unavailable, or a task ended while Redis did not answer) or a worker's
// (the task's lease expired), not the task's own. An error Redis answered
// (a script's error, a wrong type) is the task's own — retried forever
// uncounted, it would never reach the archive — except the answers of a
// Redis that cannot serve for now.
func redisFailure(err error) bool {
	if errors.Is(err, errRedisDown) || errors.Is(err, asynq.ErrLeaseExpired) {
		return true
	}
	if intake.ErrorCode(err) != intake.EUnavailable {
		return false
	}
	var reply redis.Error
	return !errors.As(err, &reply) || unavailableReply(reply)
}

// unavailableReply reports whether reply says Redis cannot serve for now.
func unavailableReply(reply redis.Error) bool {
	return slices.ContainsFunc(unavailableReplies, func(p string) bool { return strings.HasPrefix(reply.Error(), p) })
}

// unavailableReplies begin the errors of a Redis that is loading its data,
// failing over, out of memory or running a long script: it will serve again.
var unavailableReplies = []string{"LOADING ", "READONLY ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "BUSY ", "OOM ", "NOREPLICAS "}
