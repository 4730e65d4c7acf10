package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/views"
	"github.com/paymtech/leadgate/intake/privacy"
	"github.com/paymtech/leadgate/intake/redisstore/sessions"
	"github.com/paymtech/leadgate/templates"
)

// The privacy officer's pages: the subject-request desk, and a person's
// page with the requests that can be made about them. Every action goes
// through privacy.Service.Handle, as the JSON API's calls do, so each is a
// recorded request with its reference and due date and the rules live in
// one place. A person is named in URLs by a random handle bound to the
// session (sessions.Store.Bind), never by an address, a phone or the
// person's hash: the address is only ever posted.

// Privacy is what the console needs of the privacy service
// (privacy.Service).
type Privacy interface {
	Handle(ctx context.Context, ask privacy.Ask) (*privacy.Answer, error)
	Requests(ctx context.Context, which intake.RequestsOf, cursor string, limit int) ([]intake.SubjectRequest, string, error)
	Find(ctx context.Context, email, phone string) ([]*intake.Subject, error)
	Person(ctx context.Context, person string) (*intake.Subject, error)
}

const (
	// subjectTimeout bounds one request's work. Like the API's, it does not
	// inherit the browser's deadline: an officer closing the tab must not
	// leave an erasure half-asked of the CRMs.
	subjectTimeout = 30 * time.Second
	// deskOpen is how many open requests the desk and the home page list
	// at most (the store's largest page): open ones are few, each due
	// within days, so all of them show, overdue first.
	deskOpen = 500
	// deskClosed is how many closed requests one page of the desk lists.
	deskClosed = 50
)

// requestRow is one subject request as the desk and the home page list it.
type requestRow struct {
	Reference, Kind, Received, Due, State, Outcome, By string
	Overdue                                            bool
}

// deskData is the desk's content.
type deskData struct {
	Error    string // why the find form was refused
	NotFound bool   // the find found nobody
	Choices  []personChoice
	Lists    []requestList // the open requests, then the closed ones
}

// requestList is one of the desk's lists of requests.
type requestList struct {
	ID, Title, Caption, Empty string
	Note                      string // says the list is cut short; "" when it is whole
	Rows                      []requestRow
	// Older and Newest link the list's next page and its first (on a
	// later page); "" for none.
	Older, Newest string
}

// personChoice is one of the people a phone names.
type personChoice struct{ Href, Label, Leads string }

// requestRows lists reqs overdue first, then open ones by due date (the
// soonest first), then closed ones newest first; overdue means open and
// past due.
func (c *Console) requestRows(lang templates.Lang, reqs []intake.SubjectRequest, now time.Time) []requestRow {
	reqs = slices.Clone(reqs)
	overdue := func(r *intake.SubjectRequest) bool { return r.ClosedAt.IsZero() && now.After(r.DueAt) }
	slices.SortStableFunc(reqs, func(a, b intake.SubjectRequest) int {
		if oa, ob := overdue(&a), overdue(&b); oa != ob {
			if oa {
				return -1
			}
			return 1
		}
		if ca, cb := a.ClosedAt.IsZero(), b.ClosedAt.IsZero(); ca != cb { // open ones before closed ones
			if ca {
				return -1
			}
			return 1
		} else if !ca {
			return b.ReceivedAt.Compare(a.ReceivedAt)
		}
		return a.DueAt.Compare(b.DueAt)
	})
	rows := make([]requestRow, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		kind := msg(lang, "console.subjects.kind."+string(r.Kind))
		if r.Scope != "" {
			kind += " (" + msg(lang, "console.subjects.scope."+r.Scope) + ")"
		}
		state := "open"
		switch {
		case overdue(r):
			state = "overdue"
		case !r.ClosedAt.IsZero():
			state = "closed"
		}
		rows[i] = requestRow{Reference: r.Reference, Kind: kind, Received: when(r.ReceivedAt), Due: when(r.DueAt),
			State: msg(lang, "console.subjects.state."+state), Outcome: r.Outcome, By: r.By, Overdue: state == "overdue"}
	}
	return rows
}

// Subjects answers GET /admin/subjects?cursor=: the find form, the open
// requests overdue first, and the closed ones newest first, a page at a
// time. ?ref= and ?due= (set by an action's redirect) carry the notice of
// the request just made.
func (c *Console) Subjects(w http.ResponseWriter, r *http.Request) {
	c.desk(w, r, http.StatusOK, deskData{})
}

// desk renders the desk with data's find result and the request lists.
func (c *Console) desk(w http.ResponseWriter, r *http.Request, status int, data deskData) {
	ss, lang, ctx := session(r), c.lang(r), r.Context()
	open, more, err := c.Privacy.Requests(ctx, intake.OpenRequests, "", deskOpen)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	cursor := r.URL.Query().Get("cursor")
	closed, next, err := c.Privacy.Requests(ctx, intake.ClosedRequests, cursor, deskClosed)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	now := c.Now()
	openList := requestList{ID: "open", Title: msg(lang, "console.subjects.desk.open"), Rows: c.requestRows(lang, open, now),
		Caption: msg(lang, "console.subjects.desk.open_caption"), Empty: msg(lang, "console.subjects.desk.no_open")}
	if more != "" {
		openList.Note = msg(lang, "console.subjects.desk.open_cut", deskOpen)
	}
	closedList := requestList{ID: "closed", Title: msg(lang, "console.subjects.desk.closed"), Rows: c.requestRows(lang, closed, now),
		Caption: msg(lang, "console.subjects.desk.closed_caption"), Empty: msg(lang, "console.subjects.desk.no_closed")}
	if next != "" {
		closedList.Older = "/admin/subjects?" + url.Values{"cursor": {next}, "lang": {string(lang)}}.Encode() + "#closed"
	}
	if cursor != "" {
		closedList.Newest = "/admin/subjects" + c.langQuery(r) + "#closed"
	}
	data.Lists = []requestList{openList, closedList}
	c.render(w, r, ss, status, "subjects", "subjects", nil, c.requestNotice(r), data)
}

// reference is what a request reference looks like, so that a notice
// never repeats whatever a crafted URL holds.
var reference = regexp.MustCompile(`^[A-Za-z0-9-]{1,40}$`)

// requestNotice is the notice of the request an action just made, from
// the redirect's ?done=, ?ref= and ?due= (none of them personal).
func (c *Console) requestNotice(r *http.Request) string {
	q, lang := r.URL.Query(), c.lang(r)
	ref, done := q.Get("ref"), q.Get("done")
	if !reference.MatchString(ref) {
		return ""
	}
	due, err := time.ParseInLocation(time.DateOnly, q.Get("due"), almaty)
	if err != nil {
		return ""
	}
	switch done {
	case "export", "rectify", "block", "unblock", "erase", "withdraw", "nothing":
		return msg(lang, "console.subjects.notice."+done, ref, due.Format(time.DateOnly))
	}
	return ""
}

// Find answers POST /admin/subjects/find (email or phone, posted so that
// neither is ever in a URL): one person found is a 303 to their page at a
// handle bound to this session; several (a shared phone) are offered as a
// choice; nobody, or a value that cannot be read, shows the desk again
// with a message.
func (c *Console) Find(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	found, err := c.Privacy.Find(r.Context(), r.PostForm.Get("email"), r.PostForm.Get("phone"))
	switch code := intake.ErrorCode(err); {
	case code == intake.EInvalid || code == intake.EBadRequest:
		c.desk(w, r, http.StatusBadRequest, deskData{Error: msg(lang, "console.subjects.find_invalid")})
		return
	case err != nil:
		c.storeError(w, r, ss, err)
		return
	case len(found) == 0:
		c.desk(w, r, http.StatusOK, deskData{NotFound: true})
		return
	}
	hrefs := make([]string, len(found))
	for i, sub := range found {
		h, err := c.Sessions.Bind(r.Context(), ss.ID, sub.Person)
		if err != nil {
			c.storeError(w, r, ss, err)
			return
		}
		hrefs[i] = personPath(h) + c.langQuery(r)
	}
	if len(found) == 1 {
		http.Redirect(w, r, hrefs[0], http.StatusSeeOther)
		return
	}
	var data deskData
	for i, sub := range found {
		data.Choices = append(data.Choices, personChoice{Href: hrefs[i], Label: displayName(lang, sub),
			Leads: msg(lang, "console.subjects.leads_count", len(sub.Leads))})
	}
	c.desk(w, r, http.StatusOK, data)
}

// personPath is a person's page, named by the session's handle.
func personPath(handle string) string { return "/admin/subjects/p/" + handle }

// displayName names a person on a page: their name and address as held.
func displayName(lang templates.Lang, sub *intake.Subject) string {
	name, email := sub.Profile.Name, emailOf(sub)
	for _, l := range slices.Backward(sub.Leads) {
		if name == "" {
			name = l.Name
		}
	}
	if name == "" {
		name = msg(lang, "console.lead.unnamed")
	}
	if email == "" {
		return name
	}
	return name + " <" + email + ">"
}

// emailOf is the address a person's requests are made with: the profile's,
// else their newest lead's.
func emailOf(sub *intake.Subject) string {
	if sub.Profile.Email != "" {
		return sub.Profile.Email
	}
	for _, l := range slices.Backward(sub.Leads) {
		if l.Email != "" {
			return l.Email
		}
	}
	return ""
}

// person resolves the {handle} of r to what is held about its person. It
// answers 404 itself when the session bound no such handle (another
// session's handle means nothing here) and returns nil; a person with
// nothing held any more comes back as a nil Subject with ok true.
func (c *Console) person(w http.ResponseWriter, r *http.Request) (sub *intake.Subject, ok bool) {
	ss := session(r)
	hash, err := c.Sessions.Bound(r.Context(), ss.ID, r.PathValue("handle"))
	if errors.Is(err, sessions.ErrNoHandle) {
		c.errorPage(w, r, ss, http.StatusNotFound, "404")
		return nil, false
	} else if err != nil {
		c.storeError(w, r, ss, err)
		return nil, false
	}
	auditTarget(r, hash) // the keyed hash: who was looked at, without their address
	sub, err = c.Privacy.Person(r.Context(), hash)
	if intake.ErrorCode(err) == intake.ENotFound {
		return nil, true
	} else if err != nil {
		c.storeError(w, r, ss, err)
		return nil, false
	}
	return sub, true
}

// personData is a person's page: what an export holds, and the actions.
type personData struct {
	Held      bool
	Handle    string
	Name      string
	Profile   intake.SubjectProfile
	Marketing string
	Leads     []personLead
	Consents  []consentRow
	Transfers []personTransfer
	Mail      []mailRow
	Counts    eraseCounts
	Print     bool // the printable export, without the actions
	Reference string
}

type personLead struct {
	ID, State, Created, Name, Email, Phone, TaxID, Products, Message, Lang string
}

type consentRow struct {
	Kind, Lead, At, Policy, IP, UserAgent, PageURL, Source string
}

type personTransfer struct{ Lead, At, Recipient, Purpose string }

type mailRow struct{ Kind, Ref, At string }

// eraseCounts are what an erasure destroys, named on its confirmation.
type eraseCounts struct{ Leads, Consents, CRM int }

// personView builds the person's page from what is held.
func (c *Console) personView(lang templates.Lang, sub *intake.Subject, handle string) personData {
	d := personData{Held: sub != nil, Handle: handle}
	if sub == nil {
		return d
	}
	d.Name, d.Profile = displayName(lang, sub), sub.Profile
	d.Marketing = msg(lang, "console.subjects.marketing."+sub.Profile.Marketing)
	for _, l := range sub.Leads {
		products := make([]string, len(l.Products))
		for i, p := range l.Products {
			products[i] = templates.ProductLabel(lang, p)
		}
		d.Leads = append(d.Leads, personLead{ID: l.ID, State: msg(lang, "console.state."+string(l.State)),
			Created: when(l.CreatedAt), Name: l.Name, Email: l.Email, Phone: l.Phone, TaxID: l.TaxID,
			Products: strings.Join(products, ", "), Message: l.Message, Lang: l.Lang})
		if l.Route.System != "" && l.Route.Ref != "" {
			d.Counts.CRM++
		}
	}
	for _, cr := range sub.Consents {
		d.Consents = append(d.Consents, consentRow{Kind: msg(lang, "console.subjects.consent."+cr.Kind), Lead: cr.Lead,
			At: when(cr.At), Policy: cr.PolicyVersion, IP: cr.IP, UserAgent: cr.UserAgent, PageURL: cr.PageURL, Source: cr.Source})
	}
	// Transfers and mail as the export lists them (mail about a request
	// included), so the page and the download say the same.
	v := views.Export([]*intake.Subject{sub})[0]
	for _, t := range v.Transfers {
		d.Transfers = append(d.Transfers, personTransfer{Lead: t.Lead, At: when(t.At), Recipient: t.Recipient, Purpose: t.Purpose})
	}
	for _, m := range v.Emails {
		ref := m.Ref
		if ref == "" {
			ref = m.Lead + " " + m.Purpose
		}
		d.Mail = append(d.Mail, mailRow{Kind: m.Kind, Ref: ref, At: when(m.At)})
	}
	d.Counts.Leads, d.Counts.Consents = len(sub.Leads), len(sub.Consents)
	return d
}

// Person answers GET /admin/subjects/p/{handle}: everything held about the
// person (leads, consent history with proof, transfers, mail sent) and the
// requests the officer can make about them, each a form that posts.
func (c *Console) Person(w http.ResponseWriter, r *http.Request) {
	sub, ok := c.person(w, r)
	if !ok {
		return
	}
	c.render(w, r, session(r), http.StatusOK, "person", "subjects", nil, c.requestNotice(r),
		c.personView(c.lang(r), sub, r.PathValue("handle")))
}

// EraseConfirm answers GET /admin/subjects/p/{handle}/erase: the
// confirmation step, naming what an erasure destroys.
func (c *Console) EraseConfirm(w http.ResponseWriter, r *http.Request) {
	sub, ok := c.person(w, r)
	if !ok {
		return
	}
	if sub == nil {
		c.errorPage(w, r, session(r), http.StatusNotFound, "404")
		return
	}
	c.render(w, r, session(r), http.StatusOK, "person_erase", "subjects", nil, "",
		c.personView(c.lang(r), sub, r.PathValue("handle")))
}

// Act answers POST /admin/subjects/p/{handle}/{action}: export, rectify,
// block, unblock, erase (confirmed), withdraw. The request is handled by
// the privacy service under the holder's name; then a 303 back to the
// person's page (the desk after an erasure) with a notice carrying its
// reference and due date. An export answers with the JSON download (as=
// json) or the printable page (as=print) instead.
func (c *Console) Act(kind intake.SubjectKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := session(r)
		sub, ok := c.person(w, r)
		if !ok {
			return
		}
		if sub == nil || emailOf(sub) == "" {
			c.errorPage(w, r, ss, http.StatusNotFound, "404")
			return
		}
		ask := privacy.Ask{Kind: kind, Email: emailOf(sub), Scope: r.PostForm.Get("scope"), By: ss.Name}
		switch kind {
		case intake.SubjectErase:
			if r.PostForm.Get("confirm") != "yes" { // only the confirmation page's button says so
				http.Redirect(w, r, personPath(r.PathValue("handle"))+"/erase"+c.langQuery(r), http.StatusSeeOther)
				return
			}
		case intake.SubjectRectify:
			ask.Changes = map[string]json.RawMessage{}
			for _, f := range []string{"name", "phone", "email", "lang"} {
				if v := strings.TrimSpace(r.PostForm.Get(f)); v != "" {
					ask.Changes[f], _ = json.Marshal(v)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), subjectTimeout)
		defer cancel()
		ans, err := c.Privacy.Handle(ctx, ask)
		if ans != nil {
			auditTarget(r, ans.Request.Reference) // as the API's subject calls record it
		}
		switch code := intake.ErrorCode(err); {
		case err == nil:
		case code == intake.ENotFound && ans != nil:
			c.afterRequest(w, r, ans.Request, "nothing", "/admin/subjects")
			return
		case code == intake.EConflict:
			// The 409 of the lead pages speaks of a lead's state; here it is
			// another person's address, or a request closed already.
			c.errorPage(w, r, ss, http.StatusConflict, "subject_conflict")
			return
		case code == intake.EInvalid:
			c.errorPage(w, r, ss, http.StatusBadRequest, "subject_invalid")
			return
		default:
			c.storeError(w, r, ss, err)
			return
		}
		back := personPath(r.PathValue("handle"))
		switch kind {
		case intake.SubjectExport:
			c.export(w, r, ss, sub, ans)
			return
		case intake.SubjectErase:
			back = "/admin/subjects"
		case intake.SubjectRectify:
			// A new address moves the person to another hash: the handle
			// follows them.
			if ans.Result["moved"] == true {
				if moved, err := c.Privacy.Find(ctx, r.PostForm.Get("email"), ""); err == nil && len(moved) == 1 {
					if h, err := c.Sessions.Bind(ctx, ss.ID, moved[0].Person); err == nil {
						back = personPath(h)
					}
				}
			}
		}
		c.afterRequest(w, r, ans.Request, string(kind), back)
	}
}

// afterRequest is the 303 to path with the notice of req.
func (c *Console) afterRequest(w http.ResponseWriter, r *http.Request, req *intake.SubjectRequest, done, path string) {
	q := url.Values{"lang": {string(c.lang(r))}, "done": {done}, "ref": {req.Reference},
		"due": {req.DueAt.In(almaty).Format(time.DateOnly)}}
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}

// export answers an export request: the JSON the API's export gives, as a
// download, or the same data as a page to print and hand over.
func (c *Console) export(w http.ResponseWriter, r *http.Request, ss *sessions.Session, sub *intake.Subject, ans *privacy.Answer) {
	if r.PostForm.Get("as") == "print" {
		d := c.personView(c.lang(r), sub, r.PathValue("handle"))
		d.Print, d.Reference = true, ans.Request.Reference
		notice := msg(c.lang(r), "console.subjects.notice.export", ans.Request.Reference,
			ans.Request.DueAt.In(almaty).Format(time.DateOnly))
		c.render(w, r, ss, http.StatusOK, "person", "subjects", nil, notice, d)
		return
	}
	body, err := json.MarshalIndent(map[string]any{"reference": ans.Request.Reference, "kind": ans.Request.Kind,
		"received_at": ans.Request.ReceivedAt.In(privacy.Almaty), "due_at": ans.Request.DueAt.In(privacy.Almaty),
		"people": views.Export(ans.People)}, "", "  ")
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	// The file is named by the request's reference, never by the person.
	w.Header().Set("Content-Disposition", `attachment; filename="export-`+ans.Request.Reference+`.json"`)
	w.Write(body)
}

// dueHome is the privacy section of the home page: open requests due today
// or overdue.
func (c *Console) dueHome(r *http.Request) ([]requestRow, error) {
	reqs, _, err := c.Privacy.Requests(r.Context(), intake.OpenRequests, "", deskOpen)
	if err != nil {
		return nil, err
	}
	now := c.Now()
	y, m, d := now.In(almaty).Date()
	endOfToday := time.Date(y, m, d+1, 0, 0, 0, 0, almaty)
	reqs = slices.DeleteFunc(reqs, func(sr intake.SubjectRequest) bool {
		return !sr.ClosedAt.IsZero() || !sr.DueAt.Before(endOfToday)
	})
	return c.requestRows(c.lang(r), reqs, now), nil
}
