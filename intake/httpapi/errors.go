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

// fail answers an error of the public form: the form again, with the
// problems inline, for a browser's own post; JSON for a script.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, lang templates.Lang, browser bool, f *form.Form, err error) {
	if !browser {
		s.writeError(w, "submission", err, nil, lang)
		return
	}
	e := asError(err)
	s.logError("submission", e)
	setRetryAfter(w, e)
	s.renderForm(w, statusOf(e.Code), lang, f, e.Fields, templates.Message(lang, noticeOf(e.Code)), cameFrom(r), nil)
}

// writeError is the one place an error becomes a JSON answer:
// {"error": code, …} on top of body (a subject request's own fields; nil
// for none). For the public form's readers (lang set) the message, or each
// field's problem, comes from the catalogue in their language; for
// operators and API clients (lang "") it is the error's English message,
// with each field's problem in English. Neither holds a personal value.
func (s *Server) writeError(w http.ResponseWriter, op string, err error, body map[string]any, lang templates.Lang) {
	if body == nil {
		body = map[string]any{}
	}
	e := asError(err)
	s.logError(op, e)
	setRetryAfter(w, e)
	body["error"] = string(e.Code)
	fieldLang := lang
	switch {
	case lang == "":
		body["message"], fieldLang = e.Message, templates.EN
	case e.Code != intake.EInvalid:
		body["message"] = templates.Message(lang, noticeOf(e.Code))
	}
	if len(e.Fields) > 0 || e.Code == intake.EInvalid && lang != "" {
		fields := map[string]string{}
		for name, p := range e.Fields {
			fields[name] = templates.Message(fieldLang, p.Key, p.Args...)
		}
		body["fields"] = fields
	}
	writeJSON(w, statusOf(e.Code), body)
}

// asError is err as an *intake.Error; any other error is an internal one.
func asError(err error) *intake.Error {
	var e *intake.Error
	if !errors.As(err, &e) {
		e = &intake.Error{Code: "internal", Message: "internal error", Err: err}
	}
	return e
}

// logError logs what an operator must see: the errors answered 5xx.
func (s *Server) logError(op string, e *intake.Error) {
	if statusOf(e.Code) >= 500 {
		s.log.Error(op+" failed", "code", e.Code, "err", e)
	}
}

func setRetryAfter(w http.ResponseWriter, e *intake.Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
}

// noticeOf is the catalogue message shown to a visitor for an error code.
func noticeOf(code intake.Code) string {
	if key, ok := noticeKey[code]; ok {
		return key
	}
	return "error.unavailable"
}
