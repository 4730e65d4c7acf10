package intake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

type holderKey struct{}

// Holder returns the admin token holder of an authenticated request.
func Holder(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(holderKey{}).(Token)
	return t, ok
}

// admin guards an admin route: no or unknown token is 401, a token of
// another role 403. The holder is in the request context, and every call —
// allowed or refused — leaves one event in the audit log: who (role and
// token name), which route, which record (auditTarget, else the {id} path
// value) and the status answered. Refused calls are what an auditor looks
// for, so they are recorded too.
func (s *Server) admin(role string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := authenticate(r, s.opts.AdminTokens)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadgate"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": string(EUnauthorized)})
			s.audit(r, Token{}, false, "", http.StatusUnauthorized)
		case !permits(t.Role, role):
			writeJSON(w, http.StatusForbidden, map[string]string{"error": string(EForbidden)})
			s.audit(r, t, true, "", http.StatusForbidden)
		default:
			entry := &auditEntry{}
			ctx := context.WithValue(context.WithValue(r.Context(), holderKey{}, t), auditKey{}, entry)
			rec := &auditRecorder{ResponseWriter: w}
			next(rec, r.WithContext(ctx))
			if rec.status == 0 { // wrote nothing: net/http answers 200
				rec.status = http.StatusOK
			}
			s.audit(r, t, true, entry.Target, rec.status)
		}
	})
}

// leadView is a lead as the sales team reads it.
type leadView struct {
	ID         string      `json:"id"`
	State      State       `json:"state"`
	EntityType string      `json:"entity_type"`
	Name       string      `json:"name,omitempty"`
	Phone      string      `json:"phone"`
	Email      string      `json:"email"`
	TaxID      string      `json:"tax_id,omitempty"`
	Products   []string    `json:"products,omitempty"`
	Message    string      `json:"message,omitempty"`
	Lang       string      `json:"lang"`
	Consent    Consent     `json:"consent"`
	Metadata   Metadata    `json:"metadata"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	Risk       Risk        `json:"risk"`
	Released   bool        `json:"released,omitempty"`
	Assignment *Assignment `json:"assignment,omitempty"`
	Route      Route       `json:"route"`
	Transfers  []Transfer  `json:"transfers"`
}

func viewOf(l *Lead) leadView {
	transfers := l.Transfers
	if transfers == nil {
		transfers = []Transfer{}
	}
	return leadView{ID: l.ID, State: l.State, EntityType: l.EntityType, Name: l.Name,
		Phone: l.Phone, Email: l.Email, TaxID: l.TaxID, Products: l.Products, Message: l.Message, Lang: l.Lang,
		Consent: l.Consent, Metadata: l.Meta, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Risk: l.Risk,
		Released: l.Released, Assignment: l.Assignment, Route: l.Route, Transfers: transfers}
}

// adminError answers an error of an admin route.
func (s *Server) adminError(w http.ResponseWriter, op string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.Error(op, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal"})
		return
	}
	body := map[string]any{"error": string(e.Code), "message": e.Message}
	if e.Code == EUnavailable {
		s.log.Error(op, "err", err)
	}
	writeJSON(w, statusOf(e.Code), body)
}

// listLeads answers GET /v1/admin/leads?state=&since=&cursor=&limit=: leads
// in a state (any state when empty), newest first.
func (s *Server) listLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st := State(q.Get("state"))
	if st != "" && !slices.Contains(States, st) {
		s.adminError(w, "list leads", &Error{Code: EInvalid, Message: "state must be one of received, routed, review, failed, blocked"})
		return
	}
	since, limit, err := pageQuery(q, 50, 200)
	if err != nil {
		s.adminError(w, "list leads", err)
		return
	}
	page, err := s.store.List(r.Context(), st, since, q.Get("cursor"), limit)
	if err != nil {
		s.adminError(w, "list leads", err)
		return
	}
	views := make([]leadView, len(page.Leads))
	for i, l := range page.Leads {
		views[i] = viewOf(l)
	}
	body := map[string]any{"leads": views}
	if page.Next != "" {
		body["next_cursor"] = page.Next
	}
	writeJSON(w, http.StatusOK, body)
}

// pageQuery reads a listing's since (RFC 3339 or a date) and limit (1 to
// max, def when absent).
func pageQuery(q url.Values, def, max int) (since time.Time, limit int, err error) {
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			if since, err = time.Parse(time.DateOnly, v); err != nil {
				return since, 0, &Error{Code: EInvalid, Message: "since must be RFC 3339 (2026-01-31T00:00:00Z) or a date (2026-01-31)"}
			}
		}
	}
	limit = def
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > max {
			return since, 0, &Error{Code: EInvalid, Message: fmt.Sprintf("limit must be 1 to %d", max)}
		}
	}
	return since, limit, nil
}

// redrive answers POST /v1/admin/leads/{id}/redrive: a failed lead is routed
// again, a lead held for review is released to sales.
func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	prev, err := s.store.Redrive(r.Context(), id)
	if err != nil {
		s.adminError(w, "redrive lead", err)
		return
	}
	holder, _ := Holder(r.Context())
	s.log.Info("lead redriven", "lead", id, "from", prev, "by", holder.Name)
	if err := s.queue.EnqueueLead(r.Context(), id); err != nil {
		// The lead is received again: the sweeper queues it within minutes.
		s.log.Error("redrive: requeue failed; the sweeper will queue the lead", "lead", id, "err", err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": string(Received), "previous": string(prev)})
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) {
	l, err := s.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.adminError(w, "load lead", err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(l))
}
