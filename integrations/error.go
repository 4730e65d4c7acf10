// Package integrations holds the one rule every client of an outside system
// (CRMs, SendGrid, Telegram) follows when a call fails, so that the workers
// can decide what to do without knowing which system answered:
//
//   - Temporary: network errors, timeouts, 408, 5xx (except a 503 that
//     carries Retry-After) and any 3xx. Retry with backoff; the attempt
//     counts as a failure. A 3xx is a redirect no driver follows
//     (NoRedirects): the request did not reach the system it was meant for,
//     so it is not delivered; it is retried rather than refused for good
//     because the URL is configuration an operator can fix before
//     RETRY_MAX_AGE runs out, and the retried task then goes to the new one.
//   - RateLimited: 429, a 503 with Retry-After, and vendor codes meaning
//     "slow down". Wait (RetryAfter, when the system said how long) and try
//     again; the attempt is not a failure.
//   - Permanent: any other 4xx. Record it and never retry: the same request
//     would get the same answer. A Permanent error with Code CodeGone
//     (IsGone) says more: the endpoint itself is gone, so stop sending it
//     anything at all.
//
// An *Error never carries a URL or a response body in its message: URLs carry
// secrets (a Bitrix24 webhook URL contains its token) and bodies may echo the
// personal data that was sent.
package integrations

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failed outside call.
type Kind int

// The kinds of failure. The zero Kind means "no failure" (KindOf(nil)).
const (
	// Temporary is a network error, a timeout, 408, a 5xx other than a 503
	// with Retry-After, or a 3xx (a redirect not followed): retry, and
	// count the failure.
	Temporary Kind = iota + 1
	// RateLimited is a 429, a 503 with Retry-After, or a vendor's rate-limit
	// code: wait and retry without counting a failure.
	RateLimited
	// Permanent is any other 4xx (or an answer no retry can change): record
	// it and never retry.
	Permanent
)

// String names the kind for log lines and error messages.
func (k Kind) String() string {
	switch k {
	case Temporary:
		return "temporary"
	case RateLimited:
		return "rate limited"
	case Permanent:
		return "permanent"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// CodeRedirect is the Code Check gives a 3xx answer: the endpoint answered
// with a redirect, which is never followed (NoRedirects), so nothing was
// delivered. It is Temporary, and says in a log line that the configured URL
// needs fixing rather than that the system is down.
const CodeRedirect = "redirect"

// CodeGone is the Code of a Permanent *Error whose endpoint answered that it
// is gone for good and wants nothing more (a Standard Webhooks receiver's
// 410 Gone): the caller stops using the endpoint and alerts an operator
// instead of failing one call at a time. Check never sets it, since a REST
// API's 410 is about one resource; a driver whose protocol gives 410 that
// meaning sets it.
const CodeGone = "endpoint_gone"

// Error is a failed outside call. Its message names the system, operation,
// status and Code only — never a URL and never a response body.
//
// Check and Transport build one; a driver that recognises a vendor-specific
// answer (Bitrix24's QUERY_LIMIT_EXCEEDED in a 503 body, an error code in a
// 200 body) builds or adjusts one itself.
type Error struct {
	System     string        // the outside system: "webhook", "bitrix24", "sendgrid", …
	Op         string        // what was attempted: "push", "crm.lead.add", "mail.send", …
	Status     int           // the HTTP status; 0 when no response came back
	Code       string        // optional short fixed reason safe to log ("timeout", a vendor error code); never built from request or response data
	Kind       Kind          // what the caller should do about it
	RetryAfter time.Duration // how long the system asked us to wait; 0 when it did not say
	Err        error         // the underlying cause, if any; for transport errors stripped of the request URL
}

// Error reads like "webhook push: HTTP 503 (rate limited, retry after 30s)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.System)
	b.WriteByte(' ')
	b.WriteString(e.Op)
	b.WriteByte(':')
	if e.Status != 0 {
		fmt.Fprintf(&b, " HTTP %d", e.Status)
	}
	if e.Code != "" {
		b.WriteByte(' ')
		b.WriteString(e.Code)
	}
	fmt.Fprintf(&b, " (%s", e.Kind)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	b.WriteByte(')')
	return b.String()
}

// Unwrap gives errors.Is and errors.As the cause, so that a caller can still
// tell context.Canceled (its own shutdown) from a failure of the other side.
func (e *Error) Unwrap() error { return e.Err }

// Check turns an HTTP response into nil (any 2xx) or an *Error classified by
// status. It reads Retry-After (delta-seconds or an HTTP-date, taken relative
// to now) into RetryAfter; a 503 is RateLimited only when it carries a
// Retry-After the server meant, otherwise Temporary. A 429 is always
// RateLimited, with RetryAfter 0 when the server did not say how long: the
// caller picks its backoff. A 3xx is Temporary with Code CodeRedirect: a
// redirect never counts as delivered.
//
// Check neither reads nor closes resp.Body: the caller owns it and must close
// it, after reading whatever vendor error code it wants from it.
func Check(system, op string, resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	wait, asked := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	e := &Error{
		System:     system,
		Op:         op,
		Status:     resp.StatusCode,
		Kind:       statusKind(resp.StatusCode, asked),
		RetryAfter: wait,
	}
	if IsRedirect(resp.StatusCode) {
		e.Code = CodeRedirect
	}
	return e
}

// IsRedirect reports whether status is a 3xx. A driver that reads a vendor
// error code from an answer's body skips it for a 3xx: that body is the
// redirecting server's, not the system's answer, and must not turn the
// failed delivery into anything but Temporary.
func IsRedirect(status int) bool { return status >= 300 && status <= 399 }

// statusKind applies the rule to a non-2xx status.
func statusKind(status int, retryAfter bool) Kind {
	switch {
	case status == http.StatusTooManyRequests,
		status == http.StatusServiceUnavailable && retryAfter:
		return RateLimited
	case status == http.StatusRequestTimeout, status >= 500, IsRedirect(status):
		// A 3xx: the request went nowhere (redirects are not followed), and
		// a fixed URL, or a server that stops redirecting, lets a retry
		// through.
		return Temporary
	}
	// Other 4xx, and the odd 1xx: asking again gets the same answer.
	return Permanent
}

// parseRetryAfter reads a Retry-After value as delta-seconds or an HTTP-date
// relative to now. A date in the past means "now" (0, true). A value that is
// neither, or too large to represent, counts as absent: a server that sends
// garbage did not ask us to wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil || n > math.MaxInt64/uint64(time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Transport wraps an error from http.Client.Do (dial, TLS, timeout, context
// deadline or cancellation) as a Temporary *Error. The *url.Error that
// net/http puts around it is dropped, because its message quotes the request
// URL; what it wrapped stays in the chain, so errors.Is(err,
// context.Canceled) still tells a caller its own context was cancelled, and
// errors.Is(err, context.DeadlineExceeded) that its deadline passed.
func Transport(system, op string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &Error{System: system, Op: op, Code: transportCode(err), Kind: Temporary, Err: err}
}

// transportCode says in one fixed word what went wrong on the way, since the
// cause's own text may name hosts and addresses.
func transportCode(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "network error"
}

// KindOf reports the Kind of err: that of the first *Error in its chain,
// Temporary for any other error (an unknown failure is worth another try),
// and 0 for nil.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return Temporary
}

// IsGone reports whether the first *Error in err's chain is Permanent with
// Code CodeGone: its endpoint must not be sent anything again. Whatever
// IsGone reports is therefore also Permanent by KindOf.
func IsGone(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Kind == Permanent && e.Code == CodeGone
}

// RetryAfter returns the wait the first *Error in err's chain asks for, or 0.
func RetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}

// Unsent reports whether err certainly means the other side did not act on
// the request: it answered with an error status, or no connection was ever
// made. A timeout or a connection lost mid-request may have been acted on,
// so a caller that must not do a thing twice cannot repeat those. A 3xx
// counts as an answer like any other: from an API, a redirect comes from
// what stands in front of it (a scheme or host that moved), which took
// nothing.
func Unsent(err error) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	if e.Status != 0 {
		return true
	}
	var op *net.OpError
	return errors.As(e.Err, &op) && op.Op == "dial"
}
