package intake

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// The audit log is one Redis stream: who did what to which record, and how
// it was answered. It holds no personal value in clear — a target is a
// record id, a request reference or a keyed hash — so it may be kept for
// AUDIT_RETENTION, far longer than the records it talks about.
const (
	keyAudit        = "lg:audit"          // stream of audit events (fields role, name, action, target, status, detail)
	keyAuditRefused = "lg:audit:refused:" // + unix minute: counter of unauthenticated admin calls, 2 min TTL

	// defaultAuditRetention is AUDIT_RETENTION's documented default, used
	// when Options.AuditRetention is zero.
	defaultAuditRetention = 1095 * 24 * time.Hour

	// maxRefusedPerMinute bounds how many unauthenticated admin calls are
	// recorded each minute. Anyone on the internet can make them, and with
	// Redis at noeviction an unbounded log of them could fill the memory the
	// leads need; a token holder's calls (403s included) are never capped.
	// Calls beyond the cap are counted and reported in the application log.
	maxRefusedPerMinute = 60

	// auditWriteTimeout bounds the audit write after an admin call; it does
	// not inherit the request's deadline (a client that hung up must not
	// leave its call unrecorded).
	auditWriteTimeout = 5 * time.Second
)

// unauthenticated is the holder name of an audit event for a call that
// presented no valid token.
const unauthenticated = "unauthenticated"

// AuditEvent is one entry of the audit log. Nothing in it is personal data.
type AuditEvent struct {
	// ID is the event's stream id ("<ms>-<seq>"), set by Redis when the event
	// is appended; it is the cursor of the audit listing.
	ID string `json:"id"`
	// At is when the event was appended, by the Redis server's clock: one
	// clock for every process, so the log's order is the order of events.
	// It is ignored when appending.
	At time.Time `json:"at"`
	// Role and Name identify who acted: a token's role and holder name, or
	// role "system" and the process ("purge", "rekey"). A call with no valid
	// token has no role and the name "unauthenticated".
	Role string `json:"role"`
	Name string `json:"name"`
	// Action is the admin route pattern ("POST /v1/admin/subjects/erase"),
	// or the system process's action ("rekey").
	Action string `json:"action"`
	// Target is the record acted on: a lead or campaign id, a subject
	// request reference, a person's keyed hash. Never a personal value.
	Target string `json:"target"`
	// Status is the HTTP status answered; for actions outside HTTP 200 when
	// done and 500 when failed, so one filter finds every failure.
	Status int `json:"status"`
	// Detail is an optional note of counts ("rekeyed=12 unreadable=0").
	// Never a personal value.
	Detail string `json:"detail,omitempty"`
}

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

// Audit appends ev to the audit log, for actors outside HTTP (the purge,
// the rekey command: Role "system"). ev.ID and ev.At are set by Redis.
// It does not trim the log: the retention is the server's setting, and
// TrimAudit applies it.
func (s *Store) Audit(ctx context.Context, ev AuditEvent) error {
	return s.appendAudit(ctx, ev, 0)
}

// TrimAudit drops audit events older than retention (AUDIT_RETENTION; zero
// means the default, 1095 days). Every admin call trims as it appends; the
// purge calls this too, so old events go even when nobody calls the admin
// API. Trimming is approximate (whole stream nodes), so an event may stay a
// little past its time but never blocks Redis.
func (s *Store) TrimAudit(ctx context.Context, retention time.Duration) error {
	err := s.rdb.XTrimMinIDApprox(ctx, keyAudit, s.auditMinID(retention), 0).Err()
	if err != nil {
		return unavailable("trim audit log", err)
	}
	return nil
}

// auditMinID is the stream id before which events are past retention.
func (s *Store) auditMinID(retention time.Duration) string {
	if retention <= 0 {
		retention = defaultAuditRetention
	}
	return strconv.FormatInt(max(s.now().Add(-retention).UnixMilli(), 0), 10)
}

// appendAudit adds ev to the log; with retention > 0 it drops events older
// than that in the same command (XADD MINID ~), so the log trims itself as
// it grows.
func (s *Store) appendAudit(ctx context.Context, ev AuditEvent, retention time.Duration) error {
	args := &redis.XAddArgs{Stream: keyAudit, ID: "*", Values: []any{
		"role", ev.Role, "name", ev.Name, "action", ev.Action, "target", ev.Target,
		"status", ev.Status, "detail", ev.Detail}}
	if retention > 0 {
		args.MinID, args.Approx = s.auditMinID(retention), true
	}
	if err := s.rdb.XAdd(ctx, args).Err(); err != nil {
		return unavailable("append audit event", err)
	}
	return nil
}

// countRefused counts an unauthenticated admin call in the current minute
// and reports whether it is still within maxRefusedPerMinute, and whether it
// is the first one past it (to be logged once).
func (s *Store) countRefused(ctx context.Context) (record, firstOver bool, err error) {
	key := keyAuditRefused + strconv.FormatInt(s.now().Unix()/60, 10)
	var n *redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.Incr(ctx, key)
		p.Expire(ctx, key, 2*time.Minute)
		return nil
	})
	if err != nil {
		return false, false, unavailable("count refused admin calls", err)
	}
	return n.Val() <= maxRefusedPerMinute, n.Val() == maxRefusedPerMinute+1, nil
}

// streamID is a Redis stream id: "<ms>-<seq>".
var streamID = regexp.MustCompile(`^[0-9]{1,19}-[0-9]{1,20}$`)

// AuditLog returns up to limit audit events newest first, appended at or
// after since (zero: any time), continuing after cursor (the ID of the last
// event of the previous page; "" for the first page). next is the cursor of
// the following page, "" on the last.
func (s *Store) AuditLog(ctx context.Context, since time.Time, cursor string, limit int) (events []AuditEvent, next string, err error) {
	end, start := "+", "-"
	if cursor != "" {
		if !streamID.MatchString(cursor) {
			return nil, "", &Error{Code: EInvalid, Message: "cursor must be the next_cursor of an earlier page"}
		}
		end = "(" + cursor
	}
	if !since.IsZero() {
		start = strconv.FormatInt(max(since.UnixMilli(), 0), 10)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, keyAudit, end, start, int64(limit)+1).Result()
	if err != nil {
		return nil, "", unavailable("read audit log", err)
	}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[limit-1].ID
	}
	events = make([]AuditEvent, len(msgs))
	for i, m := range msgs {
		events[i] = auditEventOf(m)
	}
	return events, next, nil
}

func auditEventOf(m redis.XMessage) AuditEvent {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	ev := AuditEvent{ID: m.ID, Role: str("role"), Name: str("name"), Action: str("action"),
		Target: str("target"), Detail: str("detail")}
	ev.Status, _ = strconv.Atoi(str("status"))
	ms, _, _ := strings.Cut(m.ID, "-")
	if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
		ev.At = time.UnixMilli(n).UTC()
	}
	return ev
}

// auditRecorder notes the status an admin handler answered with.
type auditRecorder struct {
	http.ResponseWriter
	status int
}

func (a *auditRecorder) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *auditRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (a *auditRecorder) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// audit records one admin call, allowed or refused. A failed write does not
// change the answer: the admin's action has already happened (an erasure
// cannot be undone because its record failed), so answering an error would
// only make the admin repeat it. The failure is logged as an error for
// operators instead — an audit gap must be noticed, not hidden.
func (s *Server) audit(r *http.Request, holder Token, authenticated bool, target string, status int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteTimeout)
	defer cancel()
	ev := AuditEvent{Role: holder.Role, Name: holder.Name, Action: r.Pattern, Target: target, Status: status}
	if !authenticated {
		ev.Role, ev.Name = "", unauthenticated
		record, firstOver, err := s.store.countRefused(ctx)
		if err != nil {
			s.log.Error("audit: could not record a refused admin call", "action", ev.Action, "status", status, "err", err)
			return
		}
		if !record {
			if firstOver {
				s.log.Warn("audit: over the per-minute cap of unauthenticated admin calls; further ones this minute are not recorded",
					"cap", maxRefusedPerMinute)
			}
			return
		}
	}
	if ev.Target == "" {
		ev.Target = s.pathTarget(r.PathValue("id"))
	}
	if err := s.store.appendAudit(ctx, ev, s.opts.AuditRetention); err != nil {
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
	return "hash:" + s.store.keys.Index("audit-target", id)
}

// auditLog answers GET /v1/admin/audit?since=&cursor=&limit=: audit events,
// newest first.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, limit, err := pageQuery(q, 100, 500)
	if err != nil {
		s.adminError(w, "audit log", err)
		return
	}
	events, next, err := s.store.AuditLog(r.Context(), since, q.Get("cursor"), limit)
	if err != nil {
		s.adminError(w, "audit log", err)
		return
	}
	body := map[string]any{"events": events}
	if next != "" {
		body["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, body)
}
