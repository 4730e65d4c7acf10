package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/views"
)

// leadView is a lead as the sales team reads it (views.Lead, shared with
// the console's export).
type leadView = views.Lead

func viewOf(l *intake.Lead) leadView { return views.LeadOf(l) }

// listLeads answers GET /v1/admin/leads?state=&since=&until=&team=&owner=
// &product=&utm_source=&cursor=&limit=: the leads the filter selects (any
// state when empty), newest first. A filter that few leads pass may give a
// short or empty page with a next_cursor: the walk looks at a bounded
// stretch of leads per request.
func (s *Server) listLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := intake.LeadFilter{State: intake.State(q.Get("state")), Team: q.Get("team"), Owner: q.Get("owner"),
		Product: q.Get("product"), Source: q.Get("utm_source")}
	if f.State != "" && !slices.Contains(intake.States, f.State) {
		s.writeError(w, "list leads", &intake.Error{Code: intake.EInvalid, Message: "state must be one of received, routed, review, failed, blocked"}, nil, "")
		return
	}
	since, limit, err := pageQuery(q, 50, 200)
	if err == nil {
		f.Since = since
		f.Until, err = timeParam(q, "until", true)
	}
	if err == nil {
		err = s.opts.choices().Check(&f)
	}
	if err != nil {
		s.writeError(w, "list leads", err, nil, "")
		return
	}
	page, err := s.Leads.List(r.Context(), f, q.Get("cursor"), limit)
	if err != nil {
		s.writeError(w, "list leads", err, nil, "")
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

// pageQuery reads a listing's since (timeParam) and limit (1 to max, def
// when absent). Either malformed is a malformed request (400), as a
// malformed cursor is (the store checks those): the listings' query is a
// machine's, not a person's form, so there are no field messages to show.
func pageQuery(q url.Values, def, max int) (since time.Time, limit int, err error) {
	if since, err = timeParam(q, "since", false); err != nil {
		return since, 0, err
	}
	limit = def
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > max {
			return since, 0, &intake.Error{Code: intake.EBadRequest, Message: fmt.Sprintf("limit must be 1 to %d", max)}
		}
	}
	return since, limit, nil
}

// timeParam reads the query parameter name, RFC 3339 or a date (UTC); zero
// when absent. A date that ends a range (end) stands for its last
// millisecond, so until=2026-01-31 holds the whole day.
func timeParam(q url.Values, name string, end bool) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return t, &intake.Error{Code: intake.EBadRequest, Message: name + " must be RFC 3339 (2026-01-31T00:00:00Z) or a date (2026-01-31)"}
	}
	if end {
		t = t.AddDate(0, 0, 1).Add(-time.Millisecond)
	}
	return t, nil
}

// redrive answers POST /v1/admin/leads/{id}/redrive: a failed lead is routed
// again, a lead held for review is released to sales.
func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	prev, err := s.Leads.Redrive(r.Context(), id)
	if err != nil {
		s.writeError(w, "redrive lead", err, nil, "")
		return
	}
	holder, _ := Holder(r.Context())
	s.log.Info("lead redriven", "lead", id, "from", prev, "by", holder.Name)
	if err := s.Queue.EnqueueLead(r.Context(), id); err != nil {
		// The lead is received again: the sweeper queues it within minutes.
		s.log.Error("redrive: requeue failed; the sweeper will queue the lead", "lead", id, "err", err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": string(intake.Received), "previous": string(prev)})
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) {
	l, err := s.Leads.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, "load lead", err, nil, "")
		return
	}
	writeJSON(w, http.StatusOK, viewOf(l))
}
