package intake

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error; each maps to one HTTP status in exactly one place
// (statusOf).
type Code string

// The error codes of the public and admin API.
const (
	EInvalid         Code = "validation_failed"
	EBadRequest      Code = "bad_request"
	ETooLarge        Code = "too_large"
	EUnsupported     Code = "unsupported_media_type"
	EForbiddenOrigin Code = "forbidden_origin"
	ERateLimited     Code = "rate_limited"
	EUnavailable     Code = "unavailable"
	ENotFound        Code = "not_found"
	EConflict        Code = "conflict"
	EUnauthorized    Code = "unauthorized"
	EForbidden       Code = "forbidden"
)

// Error is the one error type intake's callers branch on. Message is English
// for operators and API clients and never holds personal data.
type Error struct {
	Code       Code
	Message    string
	Fields     FieldErrors   // EInvalid: what is wrong with each field
	RetryAfter time.Duration // ERateLimited
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the Code of an *Error in err's chain, or "" for others.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Unavailable wraps a failure of the store or the queue (op says which
// step): the request may be retried later.
func Unavailable(op string, err error) error {
	return &Error{Code: EUnavailable, Message: op, Err: err}
}

// ErrOutcomeUnknown is in the chain of an Unavailable error after which the
// caller cannot tell whether the step took place: the request may have
// reached Redis and only its answer been lost (a dropped connection, a
// timeout). A step that can be looked up afterwards (Admission: the lead's
// id is known beforehand) is settled that way; see httpapi's submit.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Problem is what is wrong with a field: a message catalogue key and its
// arguments, translated when the answer is written.
type Problem struct {
	Key  string
	Args []any
}

// FieldErrors maps a field name to its problem.
type FieldErrors map[string]Problem

// NotHeld is the ENotFound of a subject request about someone of whom
// nothing is held.
func NotHeld() error {
	return &Error{Code: ENotFound, Message: "nothing is held about this person"}
}
