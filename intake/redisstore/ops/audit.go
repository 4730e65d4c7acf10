package ops

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// Audit is the audit log: one Redis stream.
type Audit struct{ conn }

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
	err := s.rdb.XTrimMinIDApprox(ctx, redisstore.AuditStream, s.auditMinID(retention), 0).Err()
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
	args := &redis.XAddArgs{Stream: redisstore.AuditStream, ID: "*", Values: []any{
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
	key := redisstore.AuditRefusedKey(s.now().Unix() / 60)
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

// List returns up to limit audit events newest first, appended at or
// after since (zero: any time), continuing after cursor (the ID of the last
// event of the previous page; "" for the first page). next is the cursor of
// the following page, "" on the last. A cursor that is not a stream id is a
// malformed request (EBadRequest); any stream id pages, 0-0 to an empty
// page (nothing comes before it).
func (s *Audit) List(ctx context.Context, since time.Time, cursor string, limit int) (events []intake.AuditEvent, next string, err error) {
	end, start := "+", "-"
	if cursor != "" {
		ms, seq, err := parseStreamID(cursor)
		if err != nil {
			return nil, "", err
		}
		// The id just before the cursor, as an inclusive end: XREVRANGE's
		// exclusive "(0-0" is an error in Redis (no id precedes it), and
		// exclusive bounds need Redis 6.2.
		switch {
		case seq > 0:
			end = fmt.Sprintf("%d-%d", ms, seq-1)
		case ms > 0:
			end = fmt.Sprintf("%d-%d", ms-1, uint64(math.MaxUint64))
		default:
			return []intake.AuditEvent{}, "", nil
		}
	}
	if !since.IsZero() {
		start = strconv.FormatInt(max(since.UnixMilli(), 0), 10)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, redisstore.AuditStream, end, start, int64(limit)+1).Result()
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

// parseStreamID reads a Redis stream id, "<ms>-<seq>", both unsigned 64-bit
// decimals: what Redis itself accepts, so a cursor that passes never makes
// Redis answer an error.
func parseStreamID(id string) (ms, seq uint64, err error) {
	a, b, ok := strings.Cut(id, "-")
	ms, errMS := strconv.ParseUint(a, 10, 64)
	seq, errSeq := strconv.ParseUint(b, 10, 64)
	if !ok || errMS != nil || errSeq != nil {
		return 0, 0, &intake.Error{Code: intake.EBadRequest, Message: "cursor must be the next_cursor of an earlier page"}
	}
	return ms, seq, nil
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
