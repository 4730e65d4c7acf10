package jobs_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/jobs"
)

// samples is how many delays a jitter check draws: enough that a jitter
// which never strays far from the centre fails (the chance that 1000 draws
// all miss the outer fifths of the range is about 0.7^1000).
const samples = 1000

// checkJitter draws delays and fails unless all lie within ±25% of want and
// they actually spread over that range.
func checkJitter(t *testing.T, delay func() time.Duration, want time.Duration) {
	t.Helper()
	lo, hi := want-want/4, want+want/4
	low, high := false, false
	for range samples {
		d := delay()
		if d < lo || d > hi {
			t.Fatalf("delay %v outside [%v, %v]", d, lo, hi)
		}
		low = low || d < want-want/10
		high = high || d > want+want/10
	}
	if !low || !high {
		t.Errorf("%d delays around %v never strayed 10%% below (%v) or above (%v): no jitter", samples, want, low, high)
	}
}

func TestRetryDelayDoubles(t *testing.T) {
	t.Parallel()
	delay := jobs.RetryDelay(5 * time.Second)
	task := jobs.NewRouteLeadTask("01959a3c-8f00-7000-8000-000000000001")
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 5 * time.Second}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second},
		{4, 80 * time.Second}, {5, 160 * time.Second}, {6, 320 * time.Second}, {7, 640 * time.Second},
		{8, 1280 * time.Second}, {9, 2560 * time.Second}, {10, time.Hour}, {11, time.Hour}, {12, time.Hour},
		// Far past the cap the shift must not overflow into a short delay.
		{30, time.Hour}, {31, time.Hour}, {64, time.Hour}, {499, time.Hour},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			t.Parallel()
			err := &integrations.Error{System: "webhook", Op: "push", Status: 502, Kind: integrations.Temporary}
			checkJitter(t, func() time.Duration { return delay(tc.n, err, task) }, tc.want)
		})
	}
}

// A base that is not a power-of-two fraction of an hour once wrapped around
// to a short delay when shifted far enough.
func TestRetryDelayLargeBaseDoesNotOverflow(t *testing.T) {
	t.Parallel()
	delay := jobs.RetryDelay(1<<34 + 1)
	err := &integrations.Error{System: "webhook", Op: "push", Status: 502, Kind: integrations.Temporary}
	checkJitter(t, func() time.Duration { return delay(30, err, nil) }, time.Hour)
}

func TestRetryDelayHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	delay := jobs.RetryDelay(5 * time.Second)
	task := jobs.NewRouteLeadTask("01959a3c-8f00-7000-8000-000000000001")
	for _, tc := range []struct {
		name string
		n    int
		err  error
		want time.Duration
	}{
		{"rate limited", 0, &integrations.Error{System: "bitrix24", Op: "crm.lead.add", Status: 429,
			Kind: integrations.RateLimited, RetryAfter: 30 * time.Second}, 30 * time.Second},
		// What the system asked for wins over the backoff, either way.
		{"shorter than backoff", 8, &integrations.Error{System: "webhook", Op: "push", Status: 503,
			Kind: integrations.RateLimited, RetryAfter: 30 * time.Second}, 30 * time.Second},
		{"wrapped", 0, fmt.Errorf("route: %w", &integrations.Error{System: "webhook", Op: "push", Status: 429,
			Kind: integrations.RateLimited, RetryAfter: 2 * time.Minute}), 2 * time.Minute},
		{"capped", 0, &integrations.Error{System: "webhook", Op: "push", Status: 429,
			Kind: integrations.RateLimited, RetryAfter: 26 * time.Hour}, time.Hour},
		// Waiting does not count, so n never grows: a floor keeps it from
		// hammering a throttling system every few seconds.
		{"no retry after", 1, &integrations.Error{System: "webhook", Op: "push", Status: 429,
			Kind: integrations.RateLimited}, 30 * time.Second},
		{"no retry after, long backoff", 4, &integrations.Error{System: "webhook", Op: "push", Status: 429,
			Kind: integrations.RateLimited}, 80 * time.Second},
		{"plain error", 2, errors.New("connection reset"), 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkJitter(t, func() time.Duration { return delay(tc.n, tc.err, task) }, tc.want)
		})
	}
}

func TestIsFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"rate limited", &integrations.Error{System: "bitrix24", Op: "crm.lead.add", Status: 429, Kind: integrations.RateLimited}, false},
		{"rate limited, wrapped", fmt.Errorf("route: %w", &integrations.Error{System: "webhook", Op: "push", Status: 503,
			Kind: integrations.RateLimited, RetryAfter: time.Second}), false},
		{"temporary", &integrations.Error{System: "webhook", Op: "push", Status: 502, Kind: integrations.Temporary}, true},
		{"permanent", &integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent}, true},
		{"plain", errors.New("connection reset"), true},
		{"Redis away", intake.Unavailable("load lead", errors.New("dial unix: connection refused")), false},
		{"Redis loading", intake.Unavailable("load lead", redisReply("LOADING Redis is loading the dataset in memory")), false},
		{"Redis out of memory", intake.Unavailable("store", redisReply("OOM command not allowed when used memory > 'maxmemory'.")), false},
		// An answer of a Redis that serves is the task's own failure: counted,
		// so that the task reaches the archive instead of retrying for ever.
		{"a script's error", intake.Unavailable("transition", redisReply("ERR user_script:1: attempt to compare nil with number")), true},
		{"wrong type", intake.Unavailable("load lead", redisReply("WRONGTYPE Operation against a key holding the wrong kind of value")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := jobs.IsFailure(tc.err); got != tc.want {
				t.Errorf("IsFailure(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A task that failed because Redis did not answer, or whose worker was lost
// (its lease expired), is retried after about a second however often it
// failed before, and does not use up its retries: Redis answers again by
// the time asynq records the retry.
func TestRetryDelayOfRedisAndWorkerFailures(t *testing.T) {
	t.Parallel()
	delay := jobs.RetryDelay(5 * time.Second)
	task := jobs.NewRouteLeadTask("01959a3c-8f00-7000-8000-000000000001")
	for name, err := range map[string]error{
		"store unavailable": intake.Unavailable("load lead", errors.New("connection refused")),
		"lease expired":     asynq.ErrLeaseExpired,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkJitter(t, func() time.Duration { return delay(12, err, task) }, time.Second)
			if jobs.IsFailure(err) {
				t.Errorf("IsFailure(%v) = true, want false", err)
			}
		})
	}
}

// redisReply is an error Redis answered, as go-redis gives it.
type redisReply string

func (r redisReply) Error() string { return string(r) }
func (redisReply) RedisError()     {}
