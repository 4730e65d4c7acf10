package redisstore

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// Audit is the audit log: one Redis stream.
type Audit struct{ db }

// The audit log is one Redis stream: who did what to which record, and how
// it was answered. It holds no personal value in clear — a target is a
// record id, a request reference or a keyed hash — so it may be kept for
// AUDIT_RETENTION, far longer than the records it talks about.
// defaultAuditRetention is AUDIT_RETENTION's documented default, used when a
// retention of zero is given.
const defaultAuditRetention = 1095 * 24 * time.Hour

// Trim drops audit events older than retention (AUDIT_RETENTION; zero
// means the default, 1095 days). Every admin call trims as it appends; the
// purge calls this too, so old events go even when nobody calls the admin
// API. Trimming is approximate (whole stream nodes), so an event may stay a
// little past its time but never blocks Redis.
func (s *Audit) Trim(ctx context.Context, retention time.Duration) error {
	err := s.rdb.XTrimMinIDApprox(ctx, keyAudit, s.auditMinID(retention), 0).Err()
	if err != nil {
		return intake.Unavailable("trim audit log", err)
	}
	return nil
}

// auditMinID is the stream id before which events are past retention.
func (s *Audit) auditMinID(retention time.Duration) string {
	if retention <= 0 {
		retention = defaultAuditRetention
	}
	return strconv.FormatInt(max(s.now().Add(-retention).UnixMilli(), 0), 10)
}

// Append adds ev to the log (ev.ID and ev.At are set by Redis); with
// retention > 0 it drops events older than that in the same command (XADD
// MINID ~), so the log trims itself as it grows. Actors outside HTTP (the
// purge, the rekey command: role system) append with 0 and leave trimming
// to Trim.
func (s *Audit) Append(ctx context.Context, ev intake.AuditEvent, retention time.Duration) error {
	args := &redis.XAddArgs{Stream: keyAudit, ID: "*", Values: []any{
		"role", string(ev.Role), "name", ev.Name, "action", ev.Action, "target", ev.Target,
		"status", ev.Status, "detail", ev.Detail}}
	if retention > 0 {
		args.MinID, args.Approx = s.auditMinID(retention), true
	}
	if err := s.rdb.XAdd(ctx, args).Err(); err != nil {
		return intake.Unavailable("append audit event", err)
	}
	return nil
}

// CountRefused counts an unauthenticated admin call in the current minute
// and reports whether it is still within intake.MaxRefusedPerMinute, and whether it
// is the first one past it (to be logged once).
func (s *Audit) CountRefused(ctx context.Context) (record, firstOver bool, err error) {
	key := keyAuditRefused + strconv.FormatInt(s.now().Unix()/60, 10)
	var n *redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.Incr(ctx, key)
		p.Expire(ctx, key, 2*time.Minute)
		return nil
	})
	if err != nil {
		return false, false, intake.Unavailable("count refused admin calls", err)
	}
	return n.Val() <= intake.MaxRefusedPerMinute, n.Val() == intake.MaxRefusedPerMinute+1, nil
}

// streamID is a Redis stream id: "<ms>-<seq>".
var streamID = regexp.MustCompile(`^[0-9]{1,19}-[0-9]{1,20}$`)

// List returns up to limit audit events newest first, appended at or
// after since (zero: any time), continuing after cursor (the ID of the last
// event of the previous page; "" for the first page). next is the cursor of
// the following page, "" on the last.
func (s *Audit) List(ctx context.Context, since time.Time, cursor string, limit int) (events []intake.AuditEvent, next string, err error) {
	end, start := "+", "-"
	if cursor != "" {
		if !streamID.MatchString(cursor) {
			return nil, "", &intake.Error{Code: intake.EInvalid, Message: "cursor must be the next_cursor of an earlier page"}
		}
		end = "(" + cursor
	}
	if !since.IsZero() {
		start = strconv.FormatInt(max(since.UnixMilli(), 0), 10)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, keyAudit, end, start, int64(limit)+1).Result()
	if err != nil {
		return nil, "", intake.Unavailable("read audit log", err)
	}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[limit-1].ID
	}
	events = make([]intake.AuditEvent, len(msgs))
	for i, m := range msgs {
		events[i] = auditEventOf(m)
	}
	return events, next, nil
}

func auditEventOf(m redis.XMessage) intake.AuditEvent {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	ev := intake.AuditEvent{ID: m.ID, Role: intake.Role(str("role")), Name: str("name"), Action: str("action"),
		Target: str("target"), Detail: str("detail")}
	ev.Status, _ = strconv.Atoi(str("status"))
	ms, _, _ := strings.Cut(m.ID, "-")
	if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
		ev.At = time.UnixMilli(n).UTC()
	}
	return ev
}
