package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/templates"
)

// statusOf is the one place an error code becomes an HTTP status.
func statusOf(code intake.Code) int {
	switch code {
	case intake.EInvalid:
		return http.StatusUnprocessableEntity
	case intake.EBadRequest:
		return http.StatusBadRequest
	case intake.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case intake.EUnsupported:
		return http.StatusUnsupportedMediaType
	case intake.EForbiddenOrigin, intake.EForbidden:
		return http.StatusForbidden
	case intake.ERateLimited:
		return http.StatusTooManyRequests
	case intake.EUnavailable:
		return http.StatusServiceUnavailable
	case intake.ENotFound:
		return http.StatusNotFound
	case intake.EConflict:
		return http.StatusConflict
	case intake.EUnauthorized:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// noticeKey is the catalogue message shown above the form for an error.
var noticeKey = map[intake.Code]string{
	intake.EInvalid: "form.has_errors", intake.EBadRequest: "error.bad_request", intake.ETooLarge: "error.too_large",
	intake.EUnsupported: "error.unsupported_type", intake.EForbiddenOrigin: "error.forbidden_origin",
	intake.ERateLimited: "error.rate_limited", intake.EUnavailable: "error.unavailable",
}

// fail answers an error: JSON for scripts, the form again for browsers.
func (s *Server) fail(w http.ResponseWriter, lang templates.Lang, browser bool, f *form.Form, err error) {
	var e *intake.Error
	if !errors.As(err, &e) {
		e = &intake.Error{Code: "internal", Message: "internal error", Err: err}
	}
	status := statusOf(e.Code)
	if status >= 500 {
		s.log.Error("submission failed", "code", e.Code, "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	key, ok := noticeKey[e.Code]
	if !ok {
		key = "error.unavailable"
	}
	if browser {
		s.renderForm(w, status, lang, f, e.Fields, templates.Message(lang, key))
		return
	}
	body := map[string]any{"error": string(e.Code)}
	if e.Code == intake.EInvalid {
		fields := map[string]string{}
		for name, p := range e.Fields {
			fields[name] = templates.Message(lang, p.Key, p.Args...)
		}
		body["fields"] = fields
	} else {
		body["message"] = templates.Message(lang, key)
	}
	writeJSON(w, status, body)
}

// writeError answers an error of the admin API, the data-subject requests
// and the webhook: {"error": code, "message": …} in English for operators
// and API clients (never a personal value), with what is wrong with each
// field when the error says, on top of body (a subject request's own
// fields; nil for none). The public form's errors are fail's.
func (s *Server) writeError(w http.ResponseWriter, op string, err error, body map[string]any) {
	if body == nil {
		body = map[string]any{}
	}
	var e *intake.Error
	if !errors.As(err, &e) {
		s.log.Error(op, "err", err)
		body["error"], body["message"] = "internal", "internal error"
		writeJSON(w, http.StatusInternalServerError, body)
		return
	}
	if e.Code == intake.EUnavailable {
		s.log.Error(op, "err", err)
	}
	body["error"], body["message"] = string(e.Code), e.Message
	if len(e.Fields) > 0 {
		fields := map[string]string{}
		for name, p := range e.Fields {
			fields[name] = templates.Message(templates.EN, p.Key, p.Args...)
		}
		body["fields"] = fields
	}
	writeJSON(w, statusOf(e.Code), body)
}
