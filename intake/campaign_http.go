package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/templates"
)

// maxCampaignBody bounds a campaign request: three languages of HTML.
const maxCampaignBody = 1 << 20

// registerCampaigns adds the campaign, breach-notice and unsubscribe routes.
func (s *Server) registerCampaigns(mux *http.ServeMux) {
	mux.Handle("POST /v1/admin/campaigns", s.admin("marketing", s.createCampaign))
	mux.Handle("GET /v1/admin/campaigns", s.admin("marketing", s.listCampaigns(KindCampaign)))
	mux.Handle("GET /v1/admin/campaigns/{id}", s.admin("marketing", s.getCampaign(KindCampaign)))
	mux.Handle("POST /v1/admin/campaigns/{id}/cancel", s.admin("marketing", s.cancelCampaign))
	mux.Handle("POST /v1/admin/breach-notices", s.admin("admin", s.createBreachNotice))
	mux.Handle("GET /v1/admin/breach-notices", s.admin("admin", s.listCampaigns(KindBreachNotice)))
	mux.Handle("GET /v1/admin/breach-notices/{id}", s.admin("admin", s.getCampaign(KindBreachNotice)))
	mux.HandleFunc("GET /v1/unsubscribe", s.unsubscribe)
	mux.HandleFunc("POST /v1/unsubscribe", s.unsubscribe)
}

// decodeAdmin reads an admin request's JSON body of at most limit bytes
// into v, refusing unknown fields so that a misspelt one is not silently
// ignored.
func decodeAdmin(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &Error{Code: ETooLarge, Message: fmt.Sprintf("body over %d bytes", limit)}
		}
		return &Error{Code: EBadRequest, Message: "body is not the expected JSON object: " + jsonProblem(err)}
	}
	if dec.More() {
		return &Error{Code: EBadRequest, Message: "body has more than one JSON value"}
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed"
}

// campaignRequest is the body of POST /v1/admin/campaigns.
type campaignRequest struct {
	Name    string            `json:"name"`
	Subject map[string]string `json:"subject"`
	HTML    map[string]string `json:"html"`
	Text    map[string]string `json:"text"`
	Segment Segment           `json:"segment"`
	TestTo  string            `json:"test_to"`
}

// badField is a validation error naming the field and what is wrong.
func badField(field, problem string) error {
	return &Error{Code: EInvalid, Message: field + ": " + problem,
		Fields: FieldErrors{field: {Key: "field.invalid"}}}
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
func (req *campaignRequest) campaign(products []string) (*Campaign, error) {
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
	if seg.EntityType != "" && seg.EntityType != LegalEntity && seg.EntityType != SoleProprietor {
		return nil, badField("segment.entity_type", "legal_entity or sole_proprietor")
	}
	for _, p := range seg.Products {
		if !slices.Contains(products, p) {
			return nil, badField("segment.products", fmt.Sprintf("%q is not in PRODUCT_CATALOG", p))
		}
	}
	c := &Campaign{Kind: KindCampaign, Name: name, Segment: seg,
		Content: Content{Subject: req.Subject, HTML: req.HTML, Text: req.Text}}
	if req.TestTo != "" {
		if _, err := NormalizeEmail(req.TestTo); err != nil {
			return nil, badField("test_to", "not one email address")
		}
		c.TestTo = strings.TrimSpace(req.TestTo)
	}
	return c, nil
}

// campaignView is a campaign's progress as the API shows it.
type campaignView struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name,omitempty"`
	State      string    `json:"state"`
	Test       bool      `json:"test,omitempty"`
	Recipients int       `json:"recipients"`
	Sent       int       `json:"sent"`
	Skipped    int       `json:"skipped"`
	Failed     int       `json:"failed"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

func campaignViewOf(c *Campaign) campaignView {
	return campaignView{ID: c.ID, Kind: c.Kind, Name: c.Name, State: c.State, Test: c.TestTo != "",
		Recipients: c.Recipients, Sent: c.Sent, Skipped: c.Skipped, Failed: c.Failed,
		CreatedBy: c.By, CreatedAt: c.CreatedAt, FinishedAt: c.FinishedAt}
}

// createCampaign answers POST /v1/admin/campaigns: 202 {"id"} once the
// campaign is stored and its fan-out queued.
func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) {
	var req campaignRequest
	if err := decodeAdmin(w, r, maxCampaignBody, &req); err != nil {
		s.adminError(w, "create campaign", err)
		return
	}
	c, err := req.campaign(s.opts.Products)
	if err != nil {
		s.adminError(w, "create campaign", err)
		return
	}
	holder, _ := Holder(r.Context())
	c.By = holder.Name
	s.startFanOut(w, r, c, nil)
}

// startFanOut stores c and queues its sending: 202 {"id","state"}.
func (s *Server) startFanOut(w http.ResponseWriter, r *http.Request, c *Campaign, to []string) {
	id, err := s.store.CreateCampaign(r.Context(), c, to)
	if err != nil {
		s.adminError(w, "create "+c.Kind, err)
		return
	}
	auditTarget(r, id)
	if err := s.queue.EnqueueCampaign(r.Context(), id); err != nil {
		// Stored but not queued: cancel it rather than leave a campaign
		// that looks queued and never sends.
		if cerr := s.store.CancelCampaign(r.Context(), id); cerr != nil {
			s.log.Error("a campaign that could not be queued could not be cancelled either", "campaign", id, "err", cerr)
		}
		s.adminError(w, "queue "+c.Kind, unavailable("queue "+c.Kind, err))
		return
	}
	s.log.Info(c.Kind+" queued", "campaign", id, "test", c.TestTo != "", "by", c.By)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": CampaignQueued})
}

// getCampaign answers GET …/{id} with a campaign's progress; an id of the
// other kind is not found.
func (s *Server) getCampaign(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.store.Campaign(r.Context(), r.PathValue("id"))
		if err == nil && c.Kind != kind {
			err = &Error{Code: ENotFound, Message: "no such " + strings.ReplaceAll(kind, "_", " ")}
		}
		if err != nil {
			s.adminError(w, "load "+kind, err)
			return
		}
		writeJSON(w, http.StatusOK, campaignViewOf(c))
	}
}

// listCampaigns answers GET /v1/admin/campaigns (or breach-notices): the
// newest 100.
func (s *Server) listCampaigns(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := s.store.Campaigns(r.Context(), kind, 100)
		if err != nil {
			s.adminError(w, "list "+kind, err)
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
	c, err := s.store.Campaign(r.Context(), id)
	if err == nil && c.Kind != KindCampaign {
		err = &Error{Code: ENotFound, Message: "no such campaign"}
	}
	if err == nil {
		err = s.store.CancelCampaign(r.Context(), id)
	}
	if err != nil {
		s.adminError(w, "cancel campaign", err)
		return
	}
	auditTarget(r, id)
	c, err = s.store.Campaign(r.Context(), id)
	if err != nil {
		s.adminError(w, "load campaign", err)
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

// createBreachNotice answers POST /v1/admin/breach-notices: notice emails
// to the people named (or everyone held), in their language, whatever
// their marketing consent or block; erased people are no longer held and
// get nothing.
func (s *Server) createBreachNotice(w http.ResponseWriter, r *http.Request) {
	var req breachRequest
	if err := decodeAdmin(w, r, maxCampaignBody, &req); err != nil {
		s.adminError(w, "create breach notice", err)
		return
	}
	switch {
	case req.All == (len(req.Emails) > 0):
		s.adminError(w, "create breach notice", badField("emails", `give either "emails" (a list) or "all": true`))
		return
	case len(req.Emails) > maxNoticeList:
		s.adminError(w, "create breach notice", badField("emails", fmt.Sprintf("at most %d addresses a request", maxNoticeList)))
		return
	case len(req.Message) == 0:
		s.adminError(w, "create breach notice", badField("message", "at least one language (kk, ru, en) is required"))
		return
	}
	if err := checkLangs("message", req.Message); err != nil {
		s.adminError(w, "create breach notice", err)
		return
	}
	for l, m := range req.Message {
		if strings.TrimSpace(m) == "" {
			s.adminError(w, "create breach notice", badField("message."+l, "empty"))
			return
		}
	}
	to := make([]string, 0, len(req.Emails))
	for i, e := range req.Emails {
		person, ok := s.store.PersonOf(e)
		if !ok {
			s.adminError(w, "create breach notice", badField(fmt.Sprintf("emails[%d]", i), "not one email address"))
			return
		}
		to = append(to, person)
	}
	holder, _ := Holder(r.Context())
	s.startFanOut(w, r, &Campaign{Kind: KindBreachNotice, All: req.All, By: holder.Name,
		Content: Content{Message: req.Message}}, to)
}

// unsubscribe serves the List-Unsubscribe link of marketing mail. A GET
// shows a one-button page (a link scanner must not unsubscribe anyone); a
// POST withdraws marketing consent at once — the page's button, or a mail
// client's RFC 8058 one-click POST with body List-Unsubscribe=One-Click.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	lang := s.lang(r)
	person, valid := s.store.keys.unsubscribePerson(r.URL.Query().Get("token"))
	page := templates.ConfirmPage{Lang: lang, Purpose: templates.PurposeUnsubscribe, Action: r.URL.RequestURI(), State: templates.ConfirmAsk}
	status := http.StatusOK
	switch {
	case !valid:
		page.State, status = templates.ConfirmInvalid, http.StatusBadRequest
	case r.Method == http.MethodPost:
		_, err := s.store.Withdraw(r.Context(), person, Proof{At: s.now(), IP: clientIP(r, s.opts.TrustedProxies),
			UserAgent: truncate(r.UserAgent(), 512), Source: "unsubscribe_link"})
		if err != nil { // the button again: the link is fine, a retry may work
			s.log.Error("unsubscribe", "err", err)
			status = http.StatusServiceUnavailable
			break
		}
		// Withdrawn now, or already: either way the person is not
		// subscribed, which is what they asked to hear.
		page.State = templates.ConfirmDone
		s.log.Info("marketing consent withdrawn", "source", "unsubscribe_link")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := templates.RenderConfirm(w, page); err != nil {
		s.log.Error("render unsubscribe page", "err", err)
	}
}
