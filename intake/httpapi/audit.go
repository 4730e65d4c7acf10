package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/paymtech/leadgate/intake"
)

// auditWriteTimeout bounds the audit write after an admin call; it does not
// inherit the request's deadline (a client that hung up must not leave its
// call unrecorded).
const auditWriteTimeout = 5 * time.Second

// unauthenticated is the holder name of an audit event for a call that
// presented no valid token.
const unauthenticated = "unauthenticated"

// auditEntry is what an admin request leaves in the audit log beyond who
// made it and which route: the record it acted on.
type auditEntry struct {
	Target string
}

type auditKey struct{}

// auditTarget names the record an admin request acted on, for its audit
// event: a lead or campaign id, a subject request reference, a person's
// keyed hash — never a personal value.
func auditTarget(r *http.Request, target string) {
	if e, ok := r.Context().Value(auditKey{}).(*auditEntry); ok {
		e.Target = target
	}
}

// audit records one admin call, allowed or refused. A failed write does not
// change the answer: the admin's action has already happened (an erasure
// cannot be undone because its record failed), so answering an error would
// only make the admin repeat it. The failure is logged as an error for
// operators instead — an audit gap must be noticed, not hidden.
func (s *Server) audit(r *http.Request, holder intake.Token, authenticated bool, target string, status int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteTimeout)
	defer cancel()
	ev := intake.AuditEvent{Role: holder.Role, Name: holder.Name, Action: r.Pattern, Target: target, Status: status}
	if !authenticated {
		ev.Role, ev.Name = "", unauthenticated
		record, firstOver, err := s.Audit.CountRefused(ctx)
		if err != nil {
			s.log.Error("audit: could not record a refused admin call", "action", ev.Action, "status", status, "err", err)
			return
		}
		if !record {
			if firstOver {
				s.log.Warn("audit: over the per-minute cap of unauthenticated admin calls; further ones this minute are not recorded",
					"cap", intake.MaxRefusedPerMinute)
			}
			return
		}
	}
	if ev.Target == "" {
		ev.Target = s.pathTarget(r.PathValue("id"))
	}
	if err := s.Audit.Append(ctx, ev, s.opts.AuditRetention); err != nil {
		s.log.Error("audit: event not recorded; the call was answered as the handler did",
			"action", ev.Action, "role", ev.Role, "by", ev.Name, "target", ev.Target, "status", status, "err", err)
	}
}

// pathTarget is the audit target of a route's {id} path value. Record ids
// are UUIDs and are recorded as they are; anything else — which anyone can
// type into a URL, an email address say — is recorded as a keyed hash, so
// the audit log never holds what a caller typed in clear, yet the same
// value still matches across events.
func (s *Server) pathTarget(id string) string {
	if id == "" {
		return ""
	}
	if _, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return id
	}
	return "hash:" + s.Keys.Index("audit-target", id)
}

// auditLog answers GET /v1/admin/audit?since=&cursor=&limit=: audit events,
// newest first.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, limit, err := pageQuery(q, 100, 500)
	if err != nil {
		s.writeError(w, "audit log", err, nil, "")
		return
	}
	events, next, err := s.Audit.List(r.Context(), since, q.Get("cursor"), limit)
	if err != nil {
		s.writeError(w, "audit log", err, nil, "")
		return
	}
	body := map[string]any{"events": events}
	if next != "" {
		body["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, body)
}
