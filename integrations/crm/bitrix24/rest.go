package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

// optID is a Bitrix24 id that may be absent: null, "" or "0" read as "".
type optID string

// UnmarshalJSON accepts null, a number or a string.
func (id *optID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	switch {
	case s == "null" || s == "" || s == "0":
		*id = ""
	case isID(s):
		*id = optID(s)
	default:
		return errors.New("bitrix24: id is not an integer")
	}
	return nil
}

// leadID is a Bitrix24 id, which arrives as a JSON number (crm.lead.add's
// result) or a string of digits (every "ID" field).
type leadID string

// UnmarshalJSON accepts a positive integer as a number or a string.
func (id *leadID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	if !isID(s) {
		return errors.New("bitrix24: id is not an integer")
	}
	*id = leadID(s)
	return nil
}

// answer is every Bitrix24 REST answer, success or failure.
type answer struct {
	Result           json.RawMessage `json:"result"`
	Error            *string         `json:"error"`
	ErrorDescription string          `json:"error_description"`
	// OperatingResetAt comes with OPERATION_TIME_LIMIT: when (Unix time) part
	// of the method's time budget is released. Successful answers carry it
	// in "time"; an error answer may carry it at the top.
	OperatingResetAt json.RawMessage `json:"operating_reset_at"`
	Time             struct {
		OperatingResetAt json.RawMessage `json:"operating_reset_at"`
	} `json:"time"`
}

// call POSTs params as JSON to method and decodes the answer's result into
// out (skipped when out is nil). Every failure is an *integrations.Error
// with Op method.
func (c *Client) call(ctx context.Context, method string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return &integrations.Error{System: System, Op: method, Code: "unencodable request", Kind: integrations.Permanent, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method+".json", bytes.NewReader(body))
	if err != nil {
		// The URL parsed in New, so only a nil context gets here; the
		// cause is left out because net/http quotes the URL in it.
		return &integrations.Error{System: System, Op: method, Code: "invalid request", Kind: integrations.Permanent}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "leadgate")

	resp, err := c.client.Do(req)
	if err != nil {
		return integrations.Transport(System, method, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	// Every call here is safe to repeat, so an answer the deadline cut off
	// is a timeout, whatever its status.
	var a answer
	decoded, err := integrations.ReadAnswer(ctx, System, method, resp.Body, maxAnswer, &a)
	if err != nil {
		return err
	}
	if err := integrations.Check(System, method, resp); err != nil {
		e, _ := errors.AsType[*integrations.Error](err)
		// A redirect's body is whoever redirected, not the portal: no code
		// in it may make the undelivered call anything but Temporary.
		if decoded && !integrations.IsRedirect(resp.StatusCode) {
			c.classify(e, a)
		}
		return e
	}
	if !decoded {
		// A proxy's page or a cut-off answer: nothing says the call failed
		// for good, and every call here is safe to repeat.
		return &integrations.Error{System: System, Op: method, Status: resp.StatusCode, Code: "unreadable answer", Kind: integrations.Temporary}
	}
	if a.Error != nil {
		e := &integrations.Error{System: System, Op: method, Status: resp.StatusCode, Kind: integrations.Permanent}
		c.classify(e, a)
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.Result, out); err != nil {
		return &integrations.Error{System: System, Op: method, Status: resp.StatusCode, Code: "unexpected result", Kind: integrations.Temporary}
	}
	return nil
}

// classify sets e's Code and Kind (and RetryAfter) from a Bitrix24 error
// answer a. e arrives classified by HTTP status (Permanent for an error in
// a 200 answer); a vendor code that says more overrides that.
func (c *Client) classify(e *integrations.Error, a answer) {
	code := ""
	if a.Error != nil {
		code = safeCode(*a.Error)
	}
	if code == "" {
		code = describedCode(a.ErrorDescription)
	}
	e.Code = code
	switch strings.ToUpper(code) {
	case codeQueryLimit:
		e.Kind = integrations.RateLimited
		if e.RetryAfter <= 0 {
			e.RetryAfter = queryLimitWait
		}
	case codeOperationLimit:
		e.Kind = integrations.RateLimited
		if reset, ok := unixTime(a.OperatingResetAt, a.Time.OperatingResetAt); ok {
			e.RetryAfter = max(reset.Sub(c.now()), time.Second)
		} else if e.RetryAfter <= 0 {
			e.RetryAfter = operationLimitWait
		}
	case "EXPIRED_TOKEN", "INVALID_TOKEN", "NO_AUTH_FOUND", "INSUFFICIENT_SCOPE", "ACCESS_DENIED",
		"INVALID_CREDENTIALS", "WRONG_AUTH_TYPE", "USER_ACCESS_ERROR", "PORTAL_DELETED":
		// The webhook is gone, lacks the crm scope or the portal lost REST
		// access: someone has to fix the configuration.
		e.Kind = integrations.Permanent
	case "INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER":
		// The reference says to retry these, even inside a 200.
		e.Kind = integrations.Temporary
	}
}

// safeCode returns a vendor error code if it looks like one (Latin letters,
// digits and underscores, per _includes/error-info.md), else "": anything
// else in that field is not ours to repeat in an error.
func safeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return ""
		}
	}
	return code
}

// describedCode recognises the error_description texts the lead methods
// document for an empty "error".
func describedCode(description string) string {
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSpace(description), ".")) {
	case "not found":
		return codeNotFound
	case "access denied":
		return codeAccessDenied
	case "id is not defined or invalid":
		return codeInvalidID
	}
	return ""
}

// unixTime reads the first present Unix time (a JSON number, possibly
// fractional, or a string holding one).
func unixTime(raws ...json.RawMessage) (time.Time, bool) {
	for _, raw := range raws {
		s := string(raw)
		if unq, err := strconv.Unquote(s); err == nil {
			s = unq
		}
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil || sec <= 0 || sec > 1<<40 {
			continue
		}
		return time.Unix(int64(sec), 0), true
	}
	return time.Time{}, false
}
