package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// The admin's audit log page: the events of the audit log (who, which
// route or action, which record, the status answered), newest first,
// filtered by holder, route or action and dates, a page at a time. The
// log holds no personal value in clear — targets are ids, references and
// keyed hashes — so the page shows it as it is.

// AuditLog is what the console reads of the audit log (ops.Audit).
type AuditLog interface {
	List(ctx context.Context, since time.Time, cursor string, limit int) ([]intake.AuditEvent, string, error)
}

// auditRow is one event as the page shows it.
type auditRow struct {
	At, Holder, Role, Action, Target, Detail string
	Status                                   int
}

// auditData is the page's content: the filters as given, the events, and
// the next page.
type auditData struct {
	Holder, Action, From, To string
	Error                    string
	Rows                     []auditRow
	Next                     string
}

const (
	// auditPerPage is how many matching events a page shows.
	auditPerPage = 50
	// auditBatch is how many events one read of the stream takes.
	auditBatch = 500
	// auditScanMax bounds the events one page reads, so a filter that
	// matches little cannot make a page walk three years of log: the page
	// then ends early, and its next link goes on from where it stopped.
	auditScanMax = 5000
)

// auditFilter is what the page's filters keep.
type auditFilter struct{ holder, action string }

func (f auditFilter) match(ev intake.AuditEvent) bool {
	return (f.holder == "" || strings.EqualFold(ev.Name, f.holder)) &&
		(f.action == "" || strings.Contains(strings.ToLower(ev.Action), strings.ToLower(f.action)))
}

// AuditPage answers GET /admin/audit?holder=&action=&from=&to=&cursor=:
// audit events newest first. holder is a token holder's name (any letter
// case), action a part of the route or action ("redrive", "/admin/queues",
// "rekey"), from and to dates (Almaty time, both days included); cursor
// continues from an earlier page. A date that cannot be read shows the
// filters again with a message (400).
func (c *Console) AuditPage(w http.ResponseWriter, r *http.Request) {
	ss, lang, q := session(r), c.lang(r), r.URL.Query()
	d := auditData{Holder: strings.TrimSpace(q.Get("holder")), Action: strings.TrimSpace(q.Get("action")),
		From: q.Get("from"), To: q.Get("to")}
	keep := url.Values{}
	for k, v := range map[string]string{"holder": d.Holder, "action": d.Action, "from": d.From, "to": d.To} {
		if v != "" {
			keep.Set(k, v)
		}
	}
	var from, to time.Time
	var errFrom, errTo error
	if d.From != "" {
		from, errFrom = time.ParseInLocation(time.DateOnly, d.From, almaty)
	}
	if d.To != "" {
		to, errTo = time.ParseInLocation(time.DateOnly, d.To, almaty)
	}
	if errFrom != nil || errTo != nil {
		d.Error = msg(lang, "console.admin.audit.bad_date")
		c.render(w, r, ss, http.StatusBadRequest, "audit", "audit", keep, "", d)
		return
	}
	cursor := q.Get("cursor")
	if cursor == "" && !to.IsZero() {
		// The log's cursor is a stream id, and a page holds what came
		// before it: the first id of the day after "to".
		cursor = strconv.FormatInt(to.AddDate(0, 0, 1).UnixMilli(), 10) + "-0"
	}
	f := auditFilter{holder: d.Holder, action: d.Action}
	next, more, scanned := cursor, true, 0
	for more && len(d.Rows) < auditPerPage && scanned < auditScanMax {
		events, after, err := c.AuditLog.List(r.Context(), from, next, auditBatch)
		if err != nil {
			c.storeError(w, r, ss, err)
			return
		}
		more = after != ""
		for i, ev := range events {
			scanned++
			next = ev.ID
			if f.match(ev) {
				d.Rows = append(d.Rows, auditRow{At: ev.At.In(almaty).Format(time.DateTime), Holder: ev.Name, Role: string(ev.Role),
					Action: ev.Action, Target: ev.Target, Detail: ev.Detail, Status: ev.Status})
			}
			if len(d.Rows) == auditPerPage || scanned == auditScanMax {
				more = more || i < len(events)-1
				break
			}
		}
	}
	if more {
		link := url.Values{"cursor": {next}, "lang": {string(lang)}}
		for k, v := range keep {
			link[k] = v
		}
		d.Next = "/admin/audit?" + link.Encode()
	}
	c.render(w, r, ss, http.StatusOK, "audit", "audit", keep, "", d)
}
