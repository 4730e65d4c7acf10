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

// RetryDelay is the contract's one retry rule: the wait an outside system
// asked for (Retry-After, a rate-limit reset), else base doubling per counted
// failure, with ±25% jitter so retries of many tasks spread out, capped at
// an hour.
func RetryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		d := integrations.RetryAfter(err)
		if d <= 0 && base <= maxRetryDelay>>min(n, 63) { // compare before shifting: base<<n may overflow
			d = base << n
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
