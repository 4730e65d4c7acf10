package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// Marketing's pages: campaigns listed with their progress, composed per
// language with a preview of the mail as sent and a count of who may get
// it, test-sent, sent and cancelled. Validation, storing and queueing are
// the admin API's (intake/httpapi/campaigns.go), handed in through
// CampaignDeps, so a campaign composed here is the one the API would make.

// Campaigns are what the console needs of the campaign store
// (redisstore.Campaigns).
type Campaigns interface {
	Campaign(ctx context.Context, id string) (*intake.Campaign, error)
	Campaigns(ctx context.Context, kind intake.CampaignKind, limit int) ([]*intake.Campaign, error)
	CancelCampaign(ctx context.Context, id string) error
	// SegmentCount counts who a campaign to the segment would reach now.
	SegmentCount(ctx context.Context, seg intake.Segment) (int64, error)
	// Failures are the people a campaign or notice did not reach, by
	// keyed hash and lead ids (a breach notice's page).
	Failures(ctx context.Context, id, cursor string, limit int) ([]intake.FailedRecipient, string, error)
}

// CampaignForm is the compose form as posted: per-language maps hold only
// the languages filled in, as the API's request does.
type CampaignForm struct {
	Name    string
	Subject map[string]string
	HTML    map[string]string
	Text    map[string]string
	Segment intake.Segment
	TestTo  string
}

// CampaignDeps are the admin API's campaign rules, shared with the console.
type CampaignDeps struct {
	Campaigns Campaigns
	// Validate checks a form as POST /v1/admin/campaigns checks its body;
	// an *intake.Error names the field at fault.
	Validate func(f CampaignForm) (*intake.Campaign, error)
	// Start stores c and queues its sending to the people to (keyed
	// hashes; none for a campaign, which goes to its segment), returning
	// its id.
	Start func(ctx context.Context, c *intake.Campaign, to []string) (string, error)
	// Notice checks a breach notice's form as POST
	// /v1/admin/breach-notices checks its body, giving the notice and the
	// people it names; an *intake.Error names the field at fault.
	Notice func(f NoticeForm) (*intake.Campaign, []string, error)
	// Preview renders c in one language exactly as the sender does
	// (jobs.Campaigner.Preview); nil leaves the preview out.
	Preview func(c *intake.Campaign, lang string) (templates.Email, error)
	// Products is PRODUCT_CATALOG, the segment's choices.
	Products []string
}

// maxCampaignForm bounds the compose forms: three languages of HTML, or a
// breach notice's list of addresses, as the API's body limit. Other posts keep the guard's small limit.
const maxCampaignForm = 1 << 20

// formLimit is the most a post to r may carry.
func formLimit(r *http.Request) int64 {
	if r.URL.Path == "/admin/campaigns" || r.URL.Path == "/admin/breach-notices" { // a notice: up to 10,000 addresses
		return maxCampaignForm
	}
	return 16 << 10
}

// contentLangs are the languages a campaign is written in, in the order
// the form shows them.
var contentLangs = []templates.Lang{templates.KK, templates.RU, templates.EN}

// option is one choice of a select or a checkbox group.
type option struct {
	Value, Label string
	Selected     bool
}

// langPart is one language's fields of the compose form.
type langPart struct {
	Lang                      string
	Label                     string
	Subject, HTML, Text       string
	SubjectErr, HTMLErr       string
	Preview                   string // the HTML part as sent, for the iframe's srcdoc
	PreviewSubject            string
	PreviewText               string
	HasPreview, PreviewFailed bool
}

// composeData is the compose page's content.
type composeData struct {
	Name, NameErr     string
	Parts             []langPart
	SegLangs          []option
	Entities          []option
	Products          []option
	SegmentErr        string
	TestTo, TestToErr string
	Problem           string
	Count             int64
}

// campaignRow is a campaign as the list and home page show it.
type campaignRow struct {
	Href, Name, State, Created, Reasons string
	Test, Running                       bool
	Recipients, Sent, Skipped, Failed   int
}

// campaignsData is the list page's content.
type campaignsData struct{ Rows []campaignRow }

// campaignData is a campaign's page.
type campaignData struct {
	ID                 string
	Row                campaignRow
	By, Finished       string
	TestTo             string
	Reasons            []option // Value: the count, Label: why
	Segment            string
	CanCancel, Running bool
}

// campaignsListed is how many campaigns the list shows, newest first, as
// the API's list.
const campaignsListed = 100

func (c *Console) campaignRow(lang templates.Lang, cp *intake.Campaign) campaignRow {
	row := campaignRow{Href: "/admin/campaigns/" + cp.ID + "?lang=" + string(lang), Name: cp.Name,
		State: msg(lang, "console.campaign.state."+string(cp.State)), Created: when(cp.CreatedAt), Test: cp.TestTo != "",
		Running:    cp.State == intake.CampaignQueued || cp.State == intake.CampaignSending,
		Recipients: cp.Recipients, Sent: cp.Sent, Skipped: cp.Skipped, Failed: cp.Failed}
	var reasons []string
	for _, r := range sortedReasons(cp.FailedReasons) {
		reasons = append(reasons, fmt.Sprintf("%s: %d", msg(lang, "console.campaign.reason."+string(r)), cp.FailedReasons[r]))
	}
	row.Reasons = strings.Join(reasons, ", ")
	return row
}

// sortedReasons are the reasons of m in a stable order.
func sortedReasons(m map[intake.FailReason]int) []intake.FailReason {
	out := make([]intake.FailReason, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// runningCampaigns are the campaigns still queued or sending, for the home
// page.
func (c *Console) runningCampaigns(ctx context.Context, lang templates.Lang) ([]campaignRow, error) {
	list, err := c.Campaigns.Campaigns(ctx, intake.KindCampaign, campaignsListed)
	if err != nil {
		return nil, err
	}
	rows := []campaignRow{}
	for _, cp := range list {
		if row := c.campaignRow(lang, cp); row.Running {
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// CampaignList answers GET /admin/campaigns: the newest campaigns with
// their progress.
func (c *Console) CampaignList(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	list, err := c.Campaigns.Campaigns(r.Context(), intake.KindCampaign, campaignsListed)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	var data campaignsData
	for _, cp := range list {
		data.Rows = append(data.Rows, c.campaignRow(lang, cp))
	}
	c.render(w, r, ss, http.StatusOK, "campaigns", "campaigns", nil, "", data)
}

// Campaign answers GET /admin/campaigns/{id}: one campaign's progress, why
// mail failed (counts by reason, never who: that is the privacy role's),
// and a cancel button while it is queued or sending. ?done= names the
// action just taken, for its notice.
func (c *Console) Campaign(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	cp, err := c.Campaigns.Campaign(r.Context(), r.PathValue("id"))
	if err == nil && cp.Kind != intake.KindCampaign {
		err = &intake.Error{Code: intake.ENotFound, Message: "no such campaign"}
	}
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	d := campaignData{ID: cp.ID, Row: c.campaignRow(lang, cp), By: cp.By, Finished: when(cp.FinishedAt),
		TestTo: cp.TestTo, Segment: c.segmentLabel(lang, cp.Segment)}
	d.CanCancel, d.Running = d.Row.Running, d.Row.Running
	for _, reason := range sortedReasons(cp.FailedReasons) {
		d.Reasons = append(d.Reasons, option{Value: fmt.Sprint(cp.FailedReasons[reason]),
			Label: msg(lang, "console.campaign.reason."+string(reason))})
	}
	var notice string
	switch done := r.URL.Query().Get("done"); done {
	case "queued", "test", "cancelled":
		notice = msg(lang, "console.campaign.notice."+done)
	}
	c.render(w, r, ss, http.StatusOK, "campaign", "campaigns", nil, notice, d)
}

// segmentLabel says who a segment takes, in lang.
func (c *Console) segmentLabel(lang templates.Lang, seg intake.Segment) string {
	var parts []string
	if seg.Lang != "" {
		parts = append(parts, msg(lang, "console.campaign.lang_"+seg.Lang))
	}
	if seg.EntityType != "" {
		parts = append(parts, msg(lang, "entity."+seg.EntityType))
	}
	for _, p := range seg.Products {
		parts = append(parts, templates.ProductLabel(lang, p))
	}
	if len(parts) == 0 {
		return msg(lang, "console.campaign.everyone")
	}
	return strings.Join(parts, ", ")
}

// NewCampaign answers GET /admin/campaigns/new: an empty compose form and
// how many people may receive marketing mail now.
func (c *Console) NewCampaign(w http.ResponseWriter, r *http.Request) {
	ss := session(r)
	f := CampaignForm{}
	n, err := c.Campaigns.SegmentCount(r.Context(), f.Segment)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	d := c.composeData(c.lang(r), f)
	d.Count = n
	c.render(w, r, ss, http.StatusOK, "campaign_new", "campaigns", nil, "", d)
}

// readCampaignForm reads the posted compose form.
func readCampaignForm(r *http.Request) CampaignForm {
	pf := r.PostForm
	f := CampaignForm{Name: pf.Get("name"), Subject: map[string]string{}, HTML: map[string]string{}, Text: map[string]string{},
		TestTo: strings.TrimSpace(pf.Get("test_to")),
		Segment: intake.Segment{Lang: pf.Get("segment_lang"), EntityType: pf.Get("segment_entity_type"),
			Products: pf["segment_products"]}}
	for _, l := range contentLangs {
		// A language left blank is not part of the campaign: its readers
		// get another language's version (intake.ContentLang).
		for field, m := range map[string]map[string]string{"subject_": f.Subject, "html_": f.HTML, "text_": f.Text} {
			if v := pf.Get(field + string(l)); strings.TrimSpace(v) != "" {
				m[string(l)] = v
			}
		}
	}
	return f
}

// CreateCampaign answers POST /admin/campaigns. The button pressed says
// what to do: "preview" shows the form again with each language rendered
// as sent and the count of who the segment reaches now (nothing is
// stored); "test" sends it to the test address only; "send" sends it to
// the segment. Both sends answer 303 to the campaign's page. A form that
// does not pass the API's checks comes back with the problem beside its
// field (422).
func (c *Console) CreateCampaign(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	f := readCampaignForm(r)
	action := r.PostForm.Get("action")
	check := f
	if action != "test" {
		check.TestTo = "" // only a test send goes to that address
	}
	cp, err := c.Validate(check)
	if err == nil && action == "test" && check.TestTo == "" {
		err = &intake.Error{Code: intake.EInvalid, Message: "test_to: required for a test send",
			Fields: intake.FieldErrors{"test_to": {Key: "field.required"}}}
	}
	var ie *intake.Error
	if err != nil && !(errors.As(err, &ie) && ie.Code == intake.EInvalid) {
		c.storeError(w, r, ss, err)
		return
	}
	if err != nil || action == "preview" || (action != "test" && action != "send") {
		d := c.composeData(lang, f)
		status := http.StatusOK
		if err != nil {
			status = http.StatusUnprocessableEntity
			d.problem(lang, ie)
		} else {
			c.preview(lang, cp, &d)
		}
		seg := f.Segment
		if err != nil {
			seg = intake.Segment{} // a segment that did not validate counts nobody in particular
		}
		if d.Count, err = c.Campaigns.SegmentCount(r.Context(), seg); err != nil {
			c.storeError(w, r, ss, err)
			return
		}
		c.render(w, r, ss, status, "campaign_new", "campaigns", nil, "", d)
		return
	}
	cp.By = ss.Name
	id, err := c.Start(r.Context(), cp, nil)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	auditTarget(r, id)
	done := "queued"
	if cp.TestTo != "" {
		done = "test"
	}
	c.Log.Info("campaign queued from the console", "campaign", id, "test", cp.TestTo != "", "by", ss.Name)
	http.Redirect(w, r, "/admin/campaigns/"+id+"?"+url.Values{"lang": {string(lang)}, "done": {done}}.Encode(), http.StatusSeeOther)
}

// CancelCampaign answers POST /admin/campaigns/{id}/cancel: what is not
// yet sent stays unsent; back to the campaign's page.
func (c *Console) CancelCampaign(w http.ResponseWriter, r *http.Request) {
	ss, id := session(r), r.PathValue("id")
	cp, err := c.Campaigns.Campaign(r.Context(), id)
	if err == nil && cp.Kind != intake.KindCampaign {
		err = &intake.Error{Code: intake.ENotFound, Message: "no such campaign"}
	}
	if err == nil {
		err = c.Campaigns.CancelCampaign(r.Context(), id)
	}
	var ie *intake.Error
	if errors.As(err, &ie) && ie.Code == intake.EConflict {
		// Finished meanwhile: say so of the campaign, not the lead
		// storeError's 409 speaks of.
		c.errorPage(w, r, ss, http.StatusConflict, "campaign_409")
		return
	}
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	c.Log.Info("campaign cancelled from the console", "campaign", id, "by", ss.Name)
	http.Redirect(w, r, "/admin/campaigns/"+id+"?"+url.Values{"lang": {string(c.lang(r))}, "done": {"cancelled"}}.Encode(), http.StatusSeeOther)
}

// composeData fills the compose page from f.
func (c *Console) composeData(lang templates.Lang, f CampaignForm) composeData {
	d := composeData{Name: f.Name, TestTo: f.TestTo}
	for _, l := range contentLangs {
		d.Parts = append(d.Parts, langPart{Lang: string(l), Label: msg(lang, "console.campaign.lang_"+string(l)),
			Subject: f.Subject[string(l)], HTML: f.HTML[string(l)], Text: f.Text[string(l)]})
	}
	d.SegLangs = append(d.SegLangs, option{Value: "", Label: msg(lang, "console.campaign.any"), Selected: f.Segment.Lang == ""})
	for _, l := range contentLangs {
		d.SegLangs = append(d.SegLangs, option{Value: string(l), Label: msg(lang, "console.campaign.lang_"+string(l)),
			Selected: f.Segment.Lang == string(l)})
	}
	d.Entities = append(d.Entities, option{Value: "", Label: msg(lang, "console.campaign.any"), Selected: f.Segment.EntityType == ""})
	for _, e := range []string{intake.LegalEntity, intake.SoleProprietor} {
		d.Entities = append(d.Entities, option{Value: e, Label: msg(lang, "entity."+e), Selected: f.Segment.EntityType == e})
	}
	for _, p := range c.CampaignDeps.Products {
		d.Products = append(d.Products, option{Value: p, Label: templates.ProductLabel(lang, p),
			Selected: slices.Contains(f.Segment.Products, p)})
	}
	return d
}

// problem puts the validation error beside its field.
func (d *composeData) problem(lang templates.Lang, ie *intake.Error) {
	field, detail, _ := strings.Cut(ie.Message, ": ")
	text := msg(lang, "console.campaign.invalid", detail)
	d.Problem = text
	base, l, _ := strings.Cut(field, ".")
	for i := range d.Parts {
		p := &d.Parts[i]
		switch {
		case base == "subject" && (l == p.Lang || (l == "" && i == 0)):
			p.SubjectErr = text
		case base == "html" && l == p.Lang:
			p.HTMLErr = text
		}
	}
	switch base {
	case "name":
		d.NameErr = text
	case "segment":
		d.SegmentErr = text
	case "test_to":
		d.TestToErr = text
	}
}

// preview renders each language of cp as the sender will.
func (c *Console) preview(lang templates.Lang, cp *intake.Campaign, d *composeData) {
	if c.CampaignDeps.Preview == nil {
		return
	}
	for i := range d.Parts {
		p := &d.Parts[i]
		if _, ok := cp.Content.Subject[p.Lang]; !ok {
			continue
		}
		e, err := c.CampaignDeps.Preview(cp, p.Lang)
		if err != nil {
			c.Log.Warn("console: campaign preview", "lang", p.Lang, "err", err)
			p.PreviewFailed = true
			continue
		}
		p.HasPreview, p.Preview, p.PreviewSubject, p.PreviewText = true, e.HTML, e.Subject, e.Text
	}
}
