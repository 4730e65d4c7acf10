package jobs

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/integrations"
)

// maxRetryDelay caps the backoff of outside calls.
const maxRetryDelay = time.Hour

// rateLimitFloor is the least wait after a "rate limited" answer that named
// no time: such waits do not count as failures, so without a floor they
// would never grow and would hammer a throttling system every few seconds.
const rateLimitFloor = 30 * time.Second

// RetryDelay is the contract's one retry rule: the wait an outside system
// asked for (Retry-After, a rate-limit reset), else base doubling per counted
// failure, capped at an hour, then ±25% jitter so retries of many tasks
// spread out.
func RetryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		d := integrations.RetryAfter(err)
		if d <= 0 && base <= maxRetryDelay>>min(n, 63) { // compare before shifting: base<<n may overflow
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
// failing, so it does not use up retries.
func IsFailure(err error) bool {
	return integrations.KindOf(err) != integrations.RateLimited && !errors.Is(err, errNotRoutedYet)
}
