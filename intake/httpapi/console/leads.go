package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// msg is a catalogue text.
func msg(lang templates.Lang, key string, args ...any) string {
	return templates.Message(lang, key, args...)
}

// when formats a time for the pages: Almaty's clock, which the sales team
// keeps (UTC+5 since 2024), so times read as they would on the wall.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(almaty).Format("2006-01-02 15:04")
}

var almaty = time.FixedZone("UTC+5", 5*60*60)

// leadLink is a lead as the lists show it: named, linked by its id only.
type leadLink struct {
	Href, Label, When, State, Risk string
}

func (c *Console) leadLink(lang templates.Lang, l *intake.Lead) leadLink {
	label := l.Name
	if label == "" {
		label = msg(lang, "console.lead.unnamed")
	}
	return leadLink{Href: "/admin/leads/" + l.ID + "?lang=" + string(lang), Label: label, When: when(l.CreatedAt),
		State: msg(lang, "console.state."+string(l.State)), Risk: strconv.Itoa(l.Risk.Score)}
}

// homeQueue is one section of the home page: leads waiting in a state.
type homeQueue struct {
	State intake.State
	Title string
	Count int64
	Leads []leadLink
	All   string
}

// homeData is the home page's content.
type homeData struct {
	Queues []homeQueue
	// Privacy console: open subject requests due today or overdue;
	// ShowDue says the section is the role's.
	ShowDue bool
	Due     []requestRow
	// --- campaigns: marketing's running campaigns; nil for other roles ---
	Campaigns []campaignRow
	// --- end campaigns ---
}

// homeNewest is how many of the newest leads of each queue the home page
// names.
const homeNewest = 5

// Home answers GET /admin/: what waits for this role. Sales (and admin)
// see the leads held for review and those that failed to reach the CRM;
// privacy (and admin) the subject requests due today or overdue. Other
// roles' sections come with their pages.
func (c *Console) Home(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	var data homeData
	if ss.Role.Permits(intake.RoleSales) {
		for _, q := range []struct {
			st  intake.State
			key string
		}{{intake.Review, "console.home.review"}, {intake.Failed, "console.home.failed"}} {
			n, err := c.Deps.Leads.Count(r.Context(), q.st)
			if err != nil {
				c.storeError(w, r, ss, err)
				return
			}
			page, err := c.Deps.Leads.List(r.Context(), intake.LeadFilter{State: q.st}, "", homeNewest)
			if err != nil {
				c.storeError(w, r, ss, err)
				return
			}
			hq := homeQueue{State: q.st, Title: msg(lang, q.key), Count: n,
				All: "/admin/leads?" + url.Values{"state": {string(q.st)}, "lang": {string(lang)}}.Encode()}
			for _, l := range page.Leads {
				hq.Leads = append(hq.Leads, c.leadLink(lang, l))
			}
			data.Queues = append(data.Queues, hq)
		}
	}
	if ss.Role.Permits(intake.RolePrivacy) {
		due, err := c.dueHome(r)
		if err != nil {
			c.storeError(w, r, ss, err)
			return
		}
		data.ShowDue, data.Due = true, due
	}
	// --- campaigns ---
	if ss.Role.Permits(intake.RoleMarketing) {
		rows, err := c.runningCampaigns(r.Context(), lang)
		if err != nil {
			c.storeError(w, r, ss, err)
			return
		}
		data.Campaigns = rows
	}
	// --- end campaigns ---
	c.render(w, r, ss, http.StatusOK, "home", "home", nil, "", data)
}

// leadsData is the list page's content.
type leadsData struct {
	States, Teams, Owners, Products []option
	Since, Until, Source            string
	Error                           string
	Rows                            []leadLink
	Next                            string
}

// leadsPerPage is the list's page size.
const leadsPerPage = 50

// leadFilterParams are the list's query parameters that make its filter:
// none holds personal data, so they may be in the URL, and each page's
// link keeps them.
var leadFilterParams = []string{"state", "since", "until", "team", "owner", "product", "utm_source"}

// LeadList answers GET /admin/leads?state=&since=&until=&team=&owner=
// &product=&utm_source=&cursor=: leads by the filter, newest first, a page
// at a time (dates are days of Almaty's calendar, both included). A filter
// that cannot be read shows the form again with a message (400) rather
// than a guess. A filter few leads pass may give a short or empty page
// with a link onwards: each page looks at a bounded stretch of leads.
func (c *Console) LeadList(w http.ResponseWriter, r *http.Request) {
	ss, lang, q := session(r), c.lang(r), r.URL.Query()
	f := intake.LeadFilter{State: intake.State(q.Get("state")), Team: q.Get("team"), Owner: q.Get("owner"),
		Product: q.Get("product"), Source: q.Get("utm_source")}
	data := leadsData{Since: q.Get("since"), Until: q.Get("until"), Source: f.Source}
	for _, s := range intake.States {
		data.States = append(data.States, option{Value: string(s), Label: msg(lang, "console.state."+string(s)), Selected: s == f.State})
	}
	for _, t := range c.opts.Choices.Teams {
		data.Teams = append(data.Teams, option{Value: t.Name, Label: t.Name, Selected: t.Name == f.Team})
		for _, o := range t.Owners {
			if !slices.ContainsFunc(data.Owners, func(op option) bool { return op.Value == o }) {
				data.Owners = append(data.Owners, option{Value: o, Label: o, Selected: o == f.Owner})
			}
		}
	}
	for _, p := range c.opts.Choices.Products {
		data.Products = append(data.Products, option{Value: p, Label: templates.ProductLabel(lang, p), Selected: p == f.Product})
	}
	keep := url.Values{}
	for _, k := range leadFilterParams {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	var errSince, errUntil error
	f.Since, errSince = day(data.Since, false)
	f.Until, errUntil = day(data.Until, true)
	switch {
	case f.State != "" && !slices.Contains(intake.States, f.State):
		data.Error = msg(lang, "console.leads.bad_state")
	case errSince != nil || errUntil != nil:
		data.Error = msg(lang, "console.leads.bad_since") // "enter the date as YYYY-MM-DD"
	default:
		var ie *intake.Error
		if errors.As(c.opts.Choices.Check(&f), &ie) {
			for _, p := range ie.Fields { // the one parameter refused
				data.Error = msg(lang, p.Key)
			}
		}
	}
	if data.Error != "" {
		// The language links keep no filter: a refused one may be anything
		// typed into the form, an address even.
		c.render(w, r, ss, http.StatusBadRequest, "leads", "leads", nil, "", data)
		return
	}
	page, err := c.Deps.Leads.List(r.Context(), f, q.Get("cursor"), leadsPerPage)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	for _, l := range page.Leads {
		data.Rows = append(data.Rows, c.leadLink(lang, l))
	}
	if page.Next != "" {
		next := url.Values{"cursor": {page.Next}, "lang": {string(lang)}}
		for k, v := range keep {
			next[k] = v
		}
		data.Next = "/admin/leads?" + next.Encode()
	}
	c.render(w, r, ss, http.StatusOK, "leads", "leads", keep, "", data)
}

// day reads a date of the lead list's filter, a day of Almaty's calendar:
// its first millisecond, or its last when it ends a range; "" is none.
func day(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, almaty)
	if err == nil && end {
		t = t.AddDate(0, 0, 1).Add(-time.Millisecond)
	}
	return t, err
}

// transferRow is one line of the disclosure log.
type transferRow struct{ At, Recipient, Purpose string }

// leadData is the lead page's content.
type leadData struct {
	Lead         *intake.Lead
	State        string
	EntityType   string
	Products     []string
	Created      string
	GivenAt      string
	CRMLink      string
	Transfers    []transferRow
	CanRedrive   bool
	RedriveLabel string
}

// Lead answers GET /admin/leads/{id}: one lead, decrypted, with its consent
// proof, risk, assignment, CRM record and disclosure log. ?done= names the
// action just taken (released, redriven), for its notice.
func (c *Console) Lead(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	l, err := c.Deps.Leads.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	d := leadData{Lead: l, State: msg(lang, "console.state."+string(l.State)),
		EntityType: msg(lang, "entity."+l.EntityType), Created: when(l.CreatedAt), GivenAt: when(l.Consent.GivenAt)}
	for _, p := range l.Products {
		d.Products = append(d.Products, templates.ProductLabel(lang, p))
	}
	if u, err := url.Parse(l.Route.URL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		d.CRMLink = l.Route.URL
	}
	for _, t := range l.Transfers {
		d.Transfers = append(d.Transfers, transferRow{At: when(t.At), Recipient: t.Recipient, Purpose: t.Purpose})
	}
	switch l.State {
	case intake.Review:
		d.CanRedrive, d.RedriveLabel = true, msg(lang, "console.lead.release")
	case intake.Failed:
		d.CanRedrive, d.RedriveLabel = true, msg(lang, "console.lead.redrive")
	}
	var notice string
	switch r.URL.Query().Get("done") {
	case "released", "redriven":
		notice = msg(lang, "console.notice."+r.URL.Query().Get("done"))
	}
	c.render(w, r, ss, http.StatusOK, "lead", "leads", nil, notice, d)
}

// Redrive answers POST /admin/leads/{id}/redrive: a lead in review is
// released to sales, a failed one routed again; then back to its page
// with a notice.
func (c *Console) Redrive(w http.ResponseWriter, r *http.Request) {
	ss, id := session(r), r.PathValue("id")
	prev, err := c.Deps.Leads.Redrive(r.Context(), id)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	c.Log.Info("lead redriven from the console", "lead", id, "from", prev, "by", ss.Name)
	if err := c.Queue.EnqueueLead(r.Context(), id); err != nil {
		// The lead is received again: the sweeper queues it within minutes.
		c.Log.Error("console redrive: requeue failed; the sweeper will queue the lead", "lead", id, "err", err)
	}
	done := "redriven"
	if prev == intake.Review {
		done = "released"
	}
	http.Redirect(w, r, "/admin/leads/"+id+"?"+url.Values{"lang": {string(c.lang(r))}, "done": {done}}.Encode(), http.StatusSeeOther)
}
