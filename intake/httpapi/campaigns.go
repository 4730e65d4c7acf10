package httpapi

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/templates"
)

// maxCampaignBody bounds a campaign request: three languages of HTML.
const maxCampaignBody = 1 << 20

// campaignRequest is the body of POST /v1/admin/campaigns.
type campaignRequest struct {
	Name    string            `json:"name"`
	Subject map[string]string `json:"subject"`
	HTML    map[string]string `json:"html"`
	Text    map[string]string `json:"text"`
	Segment intake.Segment    `json:"segment"`
	TestTo  string            `json:"test_to"`
}

// badField is a validation error naming the field and what is wrong.
func badField(field, problem string) error {
	return &intake.Error{Code: intake.EInvalid, Message: field + ": " + problem,
		Fields: intake.FieldErrors{field: {Key: "field.invalid"}}}
}

// checkLangs checks that the keys of a per-language map are kk, ru or en.
func checkLangs(field string, m map[string]string) error {
	for l := range m {
		if _, ok := templates.ParseLang(l); !ok || string(templates.Lang(l)) != l {
			return badField(field, fmt.Sprintf("%q is not a language; use kk, ru or en", l))
		}
	}
	return nil
}

// campaign validates the request into a Campaign.
func (req *campaignRequest) campaign(products []string) (*intake.Campaign, error) {
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		return nil, badField("name", "required")
	case utf8.RuneCountInString(name) > 200 || strings.ContainsAny(name, "\r\n"):
		return nil, badField("name", "one line of at most 200 characters")
	case len(req.Subject) == 0:
		return nil, badField("subject", "at least one language (kk, ru, en) is required")
	}
	for field, m := range map[string]map[string]string{"subject": req.Subject, "html": req.HTML, "text": req.Text} {
		if err := checkLangs(field, m); err != nil {
			return nil, err
		}
	}
	for _, l := range slices.Sorted(maps.Keys(req.Subject)) {
		subject := req.Subject[l]
		switch {
		case strings.TrimSpace(subject) == "":
			return nil, badField("subject."+l, "empty")
		case utf8.RuneCountInString(subject) > 255 || strings.ContainsAny(subject, "\r\n"):
			return nil, badField("subject."+l, "one line of at most 255 characters")
		case strings.TrimSpace(req.HTML[l]) == "" && strings.TrimSpace(req.Text[l]) == "":
			return nil, badField("html."+l, "an html or text body is required for every subject language")
		}
	}
	for _, m := range []map[string]string{req.HTML, req.Text} {
		for l := range m {
			if req.Subject[l] == "" {
				return nil, badField("subject."+l, "a body in this language needs a subject")
			}
		}
	}
	seg := req.Segment
	if seg.Lang != "" {
		if err := checkLangs("segment.lang", map[string]string{seg.Lang: ""}); err != nil {
			return nil, err
		}
	}
	if seg.EntityType != "" && seg.EntityType != intake.LegalEntity && seg.EntityType != intake.SoleProprietor {
		return nil, badField("segment.entity_type", "legal_entity or sole_proprietor")
	}
	for _, p := range seg.Products {
		if !slices.Contains(products, p) {
			return nil, badField("segment.products", fmt.Sprintf("%q is not in PRODUCT_CATALOG", p))
		}
	}
	c := &intake.Campaign{Kind: intake.KindCampaign, Name: name, Segment: seg,
		Content: intake.Content{Subject: req.Subject, HTML: req.HTML, Text: req.Text}}
	if req.TestTo != "" {
		if _, err := form.NormalizeEmail(req.TestTo); err != nil {
			return nil, badField("test_to", "not one email address")
		}
		c.TestTo = strings.TrimSpace(req.TestTo)
	}
	return c, nil
}

// campaignView is a campaign's progress as the API shows it: counts only,
// which every role that may see the campaign may see. Once done,
// recipients = sent + skipped + failed, and failed_reasons adds up to
// failed.
type campaignView struct {
	ID            string                    `json:"id"`
	Kind          intake.CampaignKind       `json:"kind"`
	Name          string                    `json:"name,omitempty"`
	State         intake.CampaignState      `json:"state"`
	Test          bool                      `json:"test,omitempty"`
	Recipients    int                       `json:"recipients"`
	Sent          int                       `json:"sent"`
	Skipped       int                       `json:"skipped"`
	Failed        int                       `json:"failed"`
	FailedReasons map[intake.FailReason]int `json:"failed_reasons"`
	CreatedBy     string                    `json:"created_by"`
	CreatedAt     time.Time                 `json:"created_at"`
	FinishedAt    time.Time                 `json:"finished_at,omitzero"`
}

func campaignViewOf(c *intake.Campaign) campaignView {
	reasons := c.FailedReasons
	if reasons == nil {
		reasons = map[intake.FailReason]int{} // {} rather than null: the field is always there
	}
	return campaignView{ID: c.ID, Kind: c.Kind, Name: c.Name, State: c.State, Test: c.TestTo != "",
		Recipients: c.Recipients, Sent: c.Sent, Skipped: c.Skipped, Failed: c.Failed, FailedReasons: reasons,
		CreatedBy: c.By, CreatedAt: c.CreatedAt, FinishedAt: c.FinishedAt}
}

// createCampaign answers POST /v1/admin/campaigns: 202 {"id"} once the
// campaign is stored and its fan-out queued.
func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) {
	var req campaignRequest
	if err := decodeAdmin(w, r, maxCampaignBody, &req); err != nil {
		s.writeError(w, "create campaign", err, nil, "")
		return
	}
	c, err := req.campaign(s.opts.Products)
	if err != nil {
		s.writeError(w, "create campaign", err, nil, "")
		return
	}
	holder, _ := Holder(r.Context())
	c.By = holder.Name
	s.startFanOut(w, r, c, nil)
}

// startFanOut stores c and queues its sending: 202 {"id","state"}.
func (s *Server) startFanOut(w http.ResponseWriter, r *http.Request, c *intake.Campaign, to []string) {
	id, err := s.queueFanOut(r.Context(), c, to)
	if id != "" {
		auditTarget(r, id)
	}
	if err != nil {
		s.writeError(w, "create "+string(c.Kind), err, nil, "")
		return
	}
	s.log.Info(string(c.Kind)+" queued", "campaign", id, "test", c.TestTo != "", "by", c.By)
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "state": intake.CampaignQueued})
}

// queueFanOut stores c and queues its sending, returning its id. A
// campaign stored but not queued is cancelled rather than left looking
// queued and never sending; its id is returned with the error.
func (s *Server) queueFanOut(ctx context.Context, c *intake.Campaign, to []string) (string, error) {
	id, err := s.Campaigns.CreateCampaign(ctx, c, to)
	if err != nil {
		return "", err
	}
	if err := s.Queue.EnqueueCampaign(ctx, id); err != nil {
		if cerr := s.Campaigns.CancelCampaign(ctx, id); cerr != nil {
			s.log.Error("a campaign that could not be queued could not be cancelled either", "campaign", id, "err", cerr)
		}
		return id, intake.Unavailable("queue "+string(c.Kind), err)
	}
	return id, nil
}

// consoleCampaigns are the campaign and breach-notice rules the console
// shares: the same validation (campaignRequest.campaign,
// breachRequest.notice) and the same store-and-queue (queueFanOut).
func (s *Server) consoleCampaigns() console.CampaignDeps {
	return console.CampaignDeps{
		Campaigns: s.Campaigns,
		Validate: func(f console.CampaignForm) (*intake.Campaign, error) {
			req := campaignRequest{Name: f.Name, Subject: f.Subject, HTML: f.HTML, Text: f.Text, Segment: f.Segment, TestTo: f.TestTo}
			return req.campaign(s.opts.Products)
		},
		Start: s.queueFanOut,
		// The admin's breach notices: the API's checks and people.
		Notice: func(f console.NoticeForm) (*intake.Campaign, []string, error) {
			req := breachRequest{Emails: f.Emails, All: f.All, Message: f.Message}
			return req.notice(s.People.PersonOf)
		},
		Preview:  s.PreviewCampaign,
		Products: s.opts.Products,
	}
}

// campaignOfKind loads campaign id when it is of kind: a breach notice is
// not found among campaigns, nor a campaign among notices.
func (s *Server) campaignOfKind(ctx context.Context, id string, kind intake.CampaignKind) (*intake.Campaign, error) {
	c, err := s.Campaigns.Campaign(ctx, id)
	if err == nil && c.Kind != kind {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such " + strings.ReplaceAll(string(kind), "_", " ")}
	}
	return c, err
}

// getCampaign answers GET …/{id} with a campaign's progress; an id of the
// other kind is not found.
func (s *Server) getCampaign(kind intake.CampaignKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.campaignOfKind(r.Context(), r.PathValue("id"), kind)
		if err != nil {
			s.writeError(w, "load "+string(kind), err, nil, "")
			return
		}
		writeJSON(w, http.StatusOK, campaignViewOf(c))
	}
}

// campaignFailures answers GET …/{id}/failures (privacy and admin roles):
// the people the campaign or notice did not reach, each by keyed person
// hash and lead ids with the reason, ?cursor=&limit= (1 to 1000, 100 by
// default; next_cursor while more remain). Marketing sees the counts
// (getCampaign) and never who: the route's role keeps it out. An id of the
// other kind is not found.
func (s *Server) campaignFailures(kind intake.CampaignKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := 100
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				s.writeError(w, "list failures", &intake.Error{Code: intake.EBadRequest, Message: "limit must be 1 to 1000"}, nil, "")
				return
			}
			limit = n
		}
		id := r.PathValue("id")
		c, err := s.campaignOfKind(r.Context(), id, kind)
		if err != nil {
			s.writeError(w, "load "+string(kind), err, nil, "")
			return
		}
		page, next, err := s.Campaigns.Failures(r.Context(), id, q.Get("cursor"), limit)
		if err != nil {
			s.writeError(w, "list failures", err, nil, "")
			return
		}
		body := map[string]any{"id": id, "state": c.State, "failures": page}
		if next != "" {
			body["next_cursor"] = next
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// listCampaigns answers GET /v1/admin/campaigns (or breach-notices): the
// newest 100.
func (s *Server) listCampaigns(kind intake.CampaignKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Campaigns.Campaigns(r.Context(), kind, 100)
		if err != nil {
			s.writeError(w, "list "+string(kind), err, nil, "")
			return
		}
		views := make([]campaignView, len(list))
		for i, c := range list {
			views[i] = campaignViewOf(c)
		}
		writeJSON(w, http.StatusOK, map[string]any{"campaigns": views})
	}
}

// cancelCampaign answers POST /v1/admin/campaigns/{id}/cancel.
func (s *Server) cancelCampaign(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := s.campaignOfKind(r.Context(), id, intake.KindCampaign)
	if err == nil {
		err = s.Campaigns.CancelCampaign(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, "cancel campaign", err, nil, "")
		return
	}
	auditTarget(r, id)
	c, err := s.Campaigns.Campaign(r.Context(), id)
	if err != nil {
		s.writeError(w, "load campaign", err, nil, "")
		return
	}
	writeJSON(w, http.StatusOK, campaignViewOf(c))
}

// breachRequest is the body of POST /v1/admin/breach-notices.
type breachRequest struct {
	Emails  []string          `json:"emails"`
	All     bool              `json:"all"`
	Message map[string]string `json:"message"`
}

// maxNoticeList bounds the addresses one notice request may name; for
// more, "all" or several requests.
const maxNoticeList = 10000

// notice validates the request into a breach notice and the people it
// names (their keyed hashes, by personOf; none when it goes to everyone).
// The API's body and the console's form are checked here alike.
func (req *breachRequest) notice(personOf func(email string) (string, bool)) (*intake.Campaign, []string, error) {
	switch {
	case req.All == (len(req.Emails) > 0):
		return nil, nil, badField("emails", `give either "emails" (a list) or "all": true`)
	case len(req.Emails) > maxNoticeList:
		return nil, nil, badField("emails", fmt.Sprintf("at most %d addresses a request", maxNoticeList))
	case len(req.Message) == 0:
		return nil, nil, badField("message", "at least one language (kk, ru, en) is required")
	}
	if err := checkLangs("message", req.Message); err != nil {
		return nil, nil, err
	}
	for _, l := range slices.Sorted(maps.Keys(req.Message)) {
		if strings.TrimSpace(req.Message[l]) == "" {
			return nil, nil, badField("message."+l, "empty")
		}
	}
	to := make([]string, 0, len(req.Emails))
	for i, e := range req.Emails {
		person, ok := personOf(e)
		if !ok {
			return nil, nil, badField(fmt.Sprintf("emails[%d]", i), "not one email address")
		}
		to = append(to, person)
	}
	return &intake.Campaign{Kind: intake.KindBreachNotice, All: req.All, Content: intake.Content{Message: req.Message}}, to, nil
}

// createBreachNotice answers POST /v1/admin/breach-notices: notice emails
// to the people named (or everyone held), in their language, whatever
// their marketing consent or block; erased people are no longer held and
// get nothing.
func (s *Server) createBreachNotice(w http.ResponseWriter, r *http.Request) {
	var req breachRequest
	if err := decodeAdmin(w, r, maxCampaignBody, &req); err != nil {
		s.writeError(w, "create breach notice", err, nil, "")
		return
	}
	c, to, err := req.notice(s.People.PersonOf)
	if err != nil {
		s.writeError(w, "create breach notice", err, nil, "")
		return
	}
	holder, _ := Holder(r.Context())
	c.By = holder.Name
	s.startFanOut(w, r, c, to)
}
