package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/views"
	"github.com/paymtech/leadgate/intake/privacy"
)

const (
	// maxSubjectBody bounds a subject request's body: an address, a phone
	// and a few corrections.
	maxSubjectBody = 16 << 10
	// subjectTimeout bounds one request's work. It does not inherit the
	// client's deadline: an officer's client hanging up must not leave an
	// erasure half-asked of the CRMs.
	subjectTimeout = 30 * time.Second
	// subjectMaxListLimit is the most subject requests one listing page holds.
	subjectMaxListLimit = 500
)

// subjectExport answers POST /v1/admin/subjects/export {"email"} or
// {"phone"}: everything held about the person (or, by phone, every person
// who gave it): profile, requests, consent history with its proof, every
// transfer, every email sent. 404 when nothing is held.
func (s *Server) subjectExport(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Email     string `json:"email"`
		Phone     string `json:"phone"`
		Reference string `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.writeError(w, "export", err, nil, "")
		return
	}
	s.subject(w, r, privacy.Ask{Kind: intake.SubjectExport, Email: b.Email, Phone: b.Phone, Reference: b.Reference})
}

// subjectRectify answers POST /v1/admin/subjects/rectify
// {"email","changes":{"name"|"phone"|"email"|"lang":…}}: every request of
// the person and their profile get the corrections, which are passed on to
// the CRMs holding copies (where the driver can). A new email moves the
// person to its hash; 409 when that address is another person's.
func (s *Server) subjectRectify(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Email     string                     `json:"email"`
		Changes   map[string]json.RawMessage `json:"changes"`
		Reference string                     `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.writeError(w, "rectify", err, nil, "")
		return
	}
	s.subject(w, r, privacy.Ask{Kind: intake.SubjectRectify, Email: b.Email, Changes: b.Changes, Reference: b.Reference})
}

// subjectWithdraw answers POST /v1/admin/subjects/withdraw
// {"email","scope"}: marketing ends the person's consent to product news;
// processing also blocks them.
func (s *Server) subjectWithdraw(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Email     string `json:"email"`
		Scope     string `json:"scope"`
		Reference string `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.writeError(w, "withdraw", err, nil, "")
		return
	}
	s.subject(w, r, privacy.Ask{Kind: intake.SubjectWithdraw, Email: b.Email, Scope: b.Scope, Reference: b.Reference})
}

// subjectBlock answers POST /v1/admin/subjects/block {"email"}: processing
// stops (no routing, no mail, no campaign), storage stays.
func (s *Server) subjectBlock(w http.ResponseWriter, r *http.Request) {
	s.personRequest(w, r, intake.SubjectBlock)
}

// subjectUnblock answers POST /v1/admin/subjects/unblock {"email"}: the
// block is lifted, each lead goes back to where it was, and those still to
// be routed are queued again.
func (s *Server) subjectUnblock(w http.ResponseWriter, r *http.Request) {
	s.personRequest(w, r, intake.SubjectUnblock)
}

// subjectErase answers POST /v1/admin/subjects/erase {"email"}: everything
// held about the person is destroyed at once, the CRMs holding copies are
// asked to delete them, and only the person's keyed hash stays, on the
// suppression list.
func (s *Server) subjectErase(w http.ResponseWriter, r *http.Request) {
	s.personRequest(w, r, intake.SubjectErase)
}

// personRequest handles a request whose body is {"email"} (and optionally
// the "reference" of an open request to finish).
func (s *Server) personRequest(w http.ResponseWriter, r *http.Request, kind intake.SubjectKind) {
	var b struct {
		Email     string `json:"email"`
		Reference string `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.writeError(w, string(kind), err, nil, "")
		return
	}
	s.subject(w, r, privacy.Ask{Kind: kind, Email: b.Email, Reference: b.Reference})
}

// subject hands ask to the privacy service and answers: the request's
// fields (reference, due date, state, outcome) and what it did, or the
// error with the request's fields once it was recorded.
func (s *Server) subject(w http.ResponseWriter, r *http.Request, ask privacy.Ask) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), subjectTimeout)
	defer cancel()
	holder, _ := Holder(r.Context())
	ask.By = holder.Name
	ans, err := s.Privacy.Handle(ctx, ask)
	var body map[string]any
	if ans != nil {
		auditTarget(r, ans.Request.Reference)
		body = subjectFields(ans.Request)
	}
	if err != nil {
		s.writeError(w, "subject request "+string(ask.Kind), err, body, "")
		return
	}
	for k, v := range ans.Result {
		body[k] = v
	}
	if ask.Kind == intake.SubjectExport {
		body["people"] = exportViews(ans.People)
	}
	writeJSON(w, http.StatusOK, body)
}

// subjectFields are the fields every answer about a request carries, its
// times in the office's zone.
func subjectFields(req *intake.SubjectRequest) map[string]any {
	body := map[string]any{"reference": req.Reference, "kind": req.Kind, "received_at": req.ReceivedAt.In(privacy.Almaty),
		"due_at": req.DueAt.In(privacy.Almaty), "state": "open"}
	if req.Scope != "" {
		body["scope"] = req.Scope
	}
	if !req.ClosedAt.IsZero() {
		body["state"], body["closed_at"] = "closed", req.ClosedAt.In(privacy.Almaty)
	}
	if req.Outcome != "" {
		body["outcome"] = req.Outcome
	}
	return body
}

// exportViews shows what an export found (views.Export, which the
// console's export download and page use too).
func exportViews(people []*intake.Subject) []views.Subject { return views.Export(people) }

// subjectRequests answers GET /v1/admin/subjects/requests?since=&cursor=&limit=:
// open and closed requests received at or after since (any time when
// absent), newest first, with reference, kind, received and due dates,
// state and outcome.
func (s *Server) subjectRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, limit, err := pageQuery(q, 100, subjectMaxListLimit)
	if err != nil {
		s.writeError(w, "list subject requests", err, nil, "")
		return
	}
	reqs, next, err := s.Privacy.Requests(r.Context(), intake.AllRequests, q.Get("cursor"), limit)
	if err != nil {
		s.writeError(w, "list subject requests", err, nil, "")
		return
	}
	// The listing is newest first by when a request was received, so the
	// first one received before since ends it: it and every later one go,
	// and there is no next page.
	if !since.IsZero() {
		if i := slices.IndexFunc(reqs, func(sr intake.SubjectRequest) bool {
			return sr.ReceivedAt.UnixMilli() < since.UnixMilli()
		}); i >= 0 {
			reqs, next = reqs[:i], ""
		}
	}
	now := s.now()
	list := make([]map[string]any, len(reqs))
	for i := range reqs {
		v := subjectFields(&reqs[i])
		v["by"] = reqs[i].By
		v["overdue"] = reqs[i].ClosedAt.IsZero() && now.After(reqs[i].DueAt)
		list[i] = v
	}
	body := map[string]any{"requests": list}
	if next != "" {
		body["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, body)
}
