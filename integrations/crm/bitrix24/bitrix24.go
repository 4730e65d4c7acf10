// Package bitrix24 is the CRM driver that files each lead in Bitrix24 through
// an inbound webhook (BITRIX24_WEBHOOK_URL, https://{portal}/rest/{user}/{secret}/).
//
// Every call is a POST of a JSON body to {base}{method}.json, and the
// answers are Bitrix24 REST's: {"result":…,"time":{…}} on success (list
// methods add "total" and "next"), {"error":"CODE","error_description":"…"}
// on failure, where CODE may be empty and only the description says what
// went wrong. The wire format followed here is the official REST reference
// (github.com/bitrix24/b24restdocs: api-reference/crm/leads/crm-lead-*.md,
// api-reference/crm/data-types.md for multifields, limits.md and
// _includes/system-errors.md for the failure answers).
//
// A lead carries ORIGINATOR_ID "leadgate" and ORIGIN_ID = leadgate's lead id,
// which is what makes Push idempotent and lets Update and Erase find a lead
// whose Receipt was never recorded.
//
// A lead may not stay a lead. In the portal's simple CRM mode
// (crm.settings.mode.get answers 2, "operating mode without leads") every
// new lead is converted into a deal at once; in classic mode (1) an
// automation rule or a salesperson may convert it. The lead then stays, with
// STATUS_ID "CONVERTED", and what was made from it says so in its own
// LEAD_ID field: "Identifier of the lead based on which the deal [contact]
// was created" (crm-deal-fields, crm-contact-fields; the tutorial
// how-to-add-objects-with-crm-mode finds the deal with crm.deal.list filter
// LEAD_ID). That is how this driver knows what was "made from our lead": a
// deal, contact or company whose LEAD_ID is a lead it filed. It also stamps
// ORIGINATOR_ID/ORIGIN_ID on the deal it finds after a push in simple mode,
// because the reference does not say that a conversion copies them, and
// in simple mode the ORIGIN_ID lookups search deals too. Update and Erase
// follow a converted lead to that deal, contact and company, so the
// person's data does not survive there (see Update and Erase for what is
// left alone).
//
// The webhook URL is a credential: it never appears in an error, and errors
// carry only the vendor's error code, never error_description (it may echo
// what was sent).
package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// System is the name this driver gives its Receipts and errors; it is what
// a lead's disclosure log records as the recipient.
const System = "bitrix24"

// Originator is the ORIGINATOR_ID of every lead this driver creates: the
// "external source" half of the (ORIGINATOR_ID, ORIGIN_ID) pair Push looks
// leads up by.
const Originator = "leadgate"

// ErrWebhookURL is New's answer to a webhook URL that is not
// https://{portal}/rest/{user}/{secret}/. The message never quotes the URL.
var ErrWebhookURL = errors.New("bitrix24: BITRIX24_WEBHOOK_URL must be https://{portal}/rest/{user id}/{secret}/")

const (
	// maxAnswer bounds how much of an answer is read: a list of one ID or a
	// single lead is a few kilobytes.
	maxAnswer = 1 << 20
	// maxTitle keeps TITLE short enough to read in the kanban card.
	maxTitle = 100
	// queryLimitWait is the wait after QUERY_LIMIT_EXCEEDED without
	// Retry-After: the leaky bucket drains 2 requests a second (limits.md),
	// so a second frees room for the next call.
	queryLimitWait = time.Second
	// operationLimitWait is the wait after OPERATION_TIME_LIMIT without
	// operating_reset_at: the method's budget is 480 s of work in a sliding
	// 10 minutes (limits.md), so it frees up in minutes, not seconds.
	operationLimitWait = time.Minute
	// modeTTL is how long a Client trusts the CRM mode it read: switching
	// modes is a rare administrator's act, and reading it before every
	// lookup would spend the portal's request budget.
	modeTTL = 10 * time.Minute
)

// CRM modes, as crm.settings.mode.get returns them (crm.enum.settings.mode).
const (
	modeClassic = 1 // with leads
	modeSimple  = 2 // without leads: a new lead becomes a deal
)

// statusConverted is the STATUS_ID of a lead converted into a deal, contact
// or company (and of every lead in simple mode, at once).
const statusConverted = "CONVERTED"

// Client files leads in one Bitrix24 portal. It is safe for concurrent use.
type Client struct {
	base   string // the webhook base, ending in "/"; holds the secret
	portal string // scheme://host, for links to leads
	client *http.Client
	now    func() time.Time // reads operating_reset_at and ages the mode; tests fix it

	modeMu sync.Mutex
	mode   int       // the portal's CRM mode as last read; 0 before
	modeAt time.Time // when mode was read
}

// New returns a Client for the inbound webhook webhookURL
// (https://{portal}/rest/{user}/{secret}/, the trailing slash optional).
// Plain http is accepted only for a loopback host, for local fakes: the URL
// holds the webhook's secret. A nil client means integrations.NewHTTPClient(0);
// redirects are never followed, whatever client is given
// (integrations.NoRedirects). The error never quotes the URL.
func New(webhookURL string, client *http.Client) (*Client, error) {
	u, err := url.Parse(webhookURL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, ErrWebhookURL
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !loopback(u.Hostname())) {
		return nil, ErrWebhookURL
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	parts := strings.Split(path, "/")
	if n := len(parts); n < 4 || parts[n-3] != "rest" || !isID(parts[n-2]) || parts[n-1] == "" {
		return nil, ErrWebhookURL
	}
	client = integrations.NoRedirects(client)
	portal := u.Scheme + "://" + u.Host
	return &Client{base: portal + path + "/", portal: portal, client: client, now: time.Now}, nil
}

// loopback reports whether host is this machine, where a fake portal may
// listen without TLS.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isID reports whether s is a Bitrix24 integer id: digits only.
func isID(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Push files l as a new lead and returns Receipt{System: "bitrix24", Ref: the
// lead's id, URL: its card}. It first looks for a lead with ORIGIN_ID l.ID,
// so a retry after a crash between "Bitrix24 created it" and "we recorded
// the Receipt" returns the existing lead instead of adding a second one.
// Two Pushes of the same lead running at the same moment can still both
// add: the task queue runs one task per lead at a time.
//
// In simple mode the portal turns the lead into a deal at once. The Ref is
// still the lead's id (the converted lead stays, and Update and Erase start
// from it), but the URL is the deal's card, the only one salespeople see;
// the deal is stamped with our ORIGINATOR_ID/ORIGIN_ID, and the lookup
// searches deals by them too, so a retry finds the deal even if the lead
// is gone.
//
// Failures are *integrations.Error values with Op the REST method.
func (c *Client) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	if l.ID == "" {
		return crm.Receipt{}, &integrations.Error{System: System, Op: "crm.lead.add", Code: "lead without id", Kind: integrations.Permanent}
	}
	ids, err := c.find(ctx, l.ID)
	if err != nil {
		return crm.Receipt{}, err
	}
	simple := false
	if len(ids) == 0 {
		if simple, err = c.simple(ctx); err != nil {
			return crm.Receipt{}, err
		}
		if simple {
			deals, err := c.dealsByOrigin(ctx, l.ID)
			if err != nil || len(deals) > 0 {
				return c.dealReceipt(deals), err
			}
		}
		var id leadID
		err = c.call(ctx, "crm.lead.add", map[string]any{
			"fields": newLeadFields(l),
			"params": map[string]string{"REGISTER_SONET_EVENT": "Y"},
		}, &id)
		if err != nil {
			return crm.Receipt{}, err
		}
		ids = []string{string(id)}
	} else if simple, err = c.simple(ctx); err != nil {
		return crm.Receipt{}, err
	}
	if !simple {
		return c.receipt(ids[0]), nil
	}
	return c.converted(ctx, ids[0], l.ID)
}

// converted is the Receipt of lead id in simple mode: the deal made from it,
// stamped with ORIGIN_ID origin so that it can be found without the lead.
// A lead the portal did not convert (it converts only a lead with a name)
// is its own Receipt.
func (c *Client) converted(ctx context.Context, id, origin string) (crm.Receipt, error) {
	deals, err := c.list(ctx, "deal", map[string]string{"LEAD_ID": id})
	if err != nil {
		return crm.Receipt{}, err
	}
	if len(deals) == 0 {
		return c.receipt(id), nil
	}
	if deals[0].OriginID != origin {
		var ok bool
		err := c.call(ctx, "crm.deal.update", map[string]any{"id": string(deals[0].ID),
			"fields": map[string]string{"ORIGINATOR_ID": Originator, "ORIGIN_ID": origin}}, &ok)
		if err != nil {
			return crm.Receipt{}, err
		}
	}
	return c.dealReceipt(deals), nil
}

// dealReceipt is the Receipt for the first of deals (none: the zero
// Receipt): Ref the lead it was made from, URL its card.
func (c *Client) dealReceipt(deals []entity) crm.Receipt {
	if len(deals) == 0 {
		return crm.Receipt{}
	}
	d := deals[0]
	return crm.Receipt{System: System, Ref: string(d.LeadID), URL: c.portal + "/crm/deal/details/" + string(d.ID) + "/"}
}

// receipt is the Receipt of the lead with Bitrix24 id id.
func (c *Client) receipt(id string) crm.Receipt {
	return crm.Receipt{System: System, Ref: id, URL: c.portal + "/crm/lead/details/" + id + "/"}
}

// simple reports whether the portal works in simple mode, without leads
// (crm.settings.mode.get), reading it at most once per modeTTL. Any answer
// but 2 is taken for classic mode, where a lead stays a lead until someone
// converts it.
func (c *Client) simple(ctx context.Context) (bool, error) {
	c.modeMu.Lock()
	mode, at := c.mode, c.modeAt
	c.modeMu.Unlock()
	if mode != 0 && c.now().Sub(at) < modeTTL {
		return mode == modeSimple, nil
	}
	var got optID
	if err := c.call(ctx, "crm.settings.mode.get", map[string]any{}, &got); err != nil {
		return false, err
	}
	mode = modeClassic
	if got == "2" {
		mode = modeSimple
	}
	c.modeMu.Lock()
	c.mode, c.modeAt = mode, c.now()
	c.modeMu.Unlock()
	return mode == modeSimple, nil
}

// find returns the ids of the leads this driver created for leadgate's lead
// originID, oldest first (normally none or one).
func (c *Client) find(ctx context.Context, originID string) ([]string, error) {
	var found []struct {
		ID leadID `json:"ID"`
	}
	err := c.call(ctx, "crm.lead.list", map[string]any{
		"filter": map[string]string{"ORIGINATOR_ID": Originator, "ORIGIN_ID": originID},
		"select": []string{"ID"},
		"order":  map[string]string{"ID": "ASC"},
	}, &found)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = string(f.ID)
	}
	return ids, nil
}

// entity is a deal, contact or company as list selects it.
type entity struct {
	ID       leadID `json:"ID"`
	LeadID   optID  `json:"LEAD_ID"`
	OriginID string `json:"ORIGIN_ID"`
}

// list returns the deals, contacts or companies (typ "deal", "contact",
// "company") matching filter, oldest first. Only the first page (50) is
// read: what one lead became is a handful.
func (c *Client) list(ctx context.Context, typ string, filter map[string]string) ([]entity, error) {
	sel := []string{"ID", "LEAD_ID"}
	if typ == "deal" {
		sel = append(sel, "ORIGIN_ID")
	}
	var found []entity
	err := c.call(ctx, "crm."+typ+".list", map[string]any{
		"filter": filter,
		"select": sel,
		"order":  map[string]string{"ID": "ASC"},
	}, &found)
	return found, err
}

// dealsByOrigin returns the deals stamped for leadgate's lead originID.
func (c *Client) dealsByOrigin(ctx context.Context, originID string) ([]entity, error) {
	return c.list(ctx, "deal", map[string]string{"ORIGINATOR_ID": Originator, "ORIGIN_ID": originID})
}

// multifield is one PHONE or EMAIL value as sent: with ID it replaces that
// stored value (or removes it, when VALUE is empty); without, it adds one.
type multifield struct {
	ID        string `json:"ID,omitempty"`
	Value     string `json:"VALUE"`
	ValueType string `json:"VALUE_TYPE,omitempty"`
}

// leadFields are the fields crm.lead.add receives.
type leadFields struct {
	Title             string       `json:"TITLE"`
	Name              string       `json:"NAME,omitempty"`
	CompanyTitle      string       `json:"COMPANY_TITLE,omitempty"`
	Phone             []multifield `json:"PHONE,omitempty"`
	Email             []multifield `json:"EMAIL,omitempty"`
	Comments          string       `json:"COMMENTS"`
	SourceID          string       `json:"SOURCE_ID"`
	SourceDescription string       `json:"SOURCE_DESCRIPTION,omitempty"`
	UTMSource         string       `json:"UTM_SOURCE,omitempty"`
	UTMMedium         string       `json:"UTM_MEDIUM,omitempty"`
	UTMCampaign       string       `json:"UTM_CAMPAIGN,omitempty"`
	AssignedByID      string       `json:"ASSIGNED_BY_ID,omitempty"`
	OriginatorID      string       `json:"ORIGINATOR_ID"`
	OriginID          string       `json:"ORIGIN_ID"`
}

// newLeadFields maps l onto a Bitrix24 lead. SOURCE_ID WEBFORM is the
// portal's built-in "CRM form" source.
func newLeadFields(l crm.Lead) leadFields {
	f := leadFields{
		Title:             title(l),
		Name:              l.Name,
		Phone:             work(l.Phone),
		Email:             work(l.Email),
		Comments:          comments(l),
		SourceID:          "WEBFORM",
		SourceDescription: l.Metadata.PageURL,
		UTMSource:         l.Metadata.UTMSource,
		UTMMedium:         l.Metadata.UTMMedium,
		UTMCampaign:       l.Metadata.UTMCampaign,
		OriginatorID:      Originator,
		OriginID:          l.ID,
	}
	if l.EntityType == "legal_entity" {
		f.CompanyTitle = l.Name
	}
	if l.Assignment != nil {
		f.AssignedByID = l.Assignment.CRMUserID
	}
	return f
}

// work is value as a new WORK multifield, or none when value is empty.
func work(value string) []multifield {
	if value == "" {
		return nil
	}
	return []multifield{{Value: value, ValueType: "WORK"}}
}

// title is the lead's TITLE: the entity type and name, or, without a name,
// what was asked for. Phone and email stay out of it: titles show up in
// lists, notifications and the activity stream.
func title(l crm.Lead) string {
	label := crm.EntityLabel(l.EntityType)
	var t string
	switch name := strings.TrimSpace(l.Name); {
	case name != "" && label != "":
		t = label + ": " + name
	case name != "":
		t = name
	default:
		t = "Заявка на подключение"
		if label != "" {
			t += " (" + label + ")"
		}
		if len(l.Products) > 0 {
			t += ": " + strings.Join(l.Products, ", ")
		}
	}
	if utf8.RuneCountInString(t) <= maxTitle {
		return t
	}
	return string([]rune(t)[:maxTitle-1]) + "…"
}

// comments is COMMENTS: what the salesperson needs beyond the contact
// fields, one item a line. Bitrix24 renders COMMENTS as HTML, so every piece
// of the lead is escaped and lines are joined with <br>.
func comments(l crm.Lead) string {
	var lines []string
	add := func(label, value string) {
		if value != "" {
			lines = append(lines, html.EscapeString(label+": "+value))
		}
	}
	if l.Message != "" {
		lines = append(lines, "Сообщение:")
		msg := strings.ReplaceAll(l.Message, "\r\n", "\n")
		for line := range strings.SplitSeq(msg, "\n") {
			lines = append(lines, html.EscapeString(line))
		}
	}
	add("Продукты", strings.Join(l.Products, ", "))
	add("БИН/ИИН", l.TaxID)
	add("Язык ответа", l.Lang)
	c := l.Consent
	add("Согласие", fmt.Sprintf("обработка ПДн: %s, рассылка: %s; политика версии %s (%s), дано %s",
		yesNo(c.Processing), yesNo(c.Marketing), c.PolicyVersion, c.PolicyURL, c.GivenAt.UTC().Format(time.RFC3339)))
	risk := strconv.Itoa(l.Risk.Score) + "/100"
	if len(l.Risk.Signals) > 0 {
		risk += " (" + strings.Join(l.Risk.Signals, ", ") + ")"
	}
	add("Риск", risk)
	add("Заявка leadgate", l.ID)
	return strings.Join(lines, "<br>")
}

func yesNo(b bool) string {
	if b {
		return "да"
	}
	return "нет"
}

// Update overwrites the person's fields of lead ref with l's: NAME, TITLE
// (it shows the name), COMPANY_TITLE for a legal entity, PHONE and EMAIL.
// Bitrix24 appends a multifield value sent without the ID of a stored one,
// so Update reads the stored PHONE and EMAIL values (crm.lead.get) and sends
// the new value under the first one's ID and an empty VALUE under the
// others' (which removes them): the lead ends up with exactly the corrected
// phone and email. Bitrix24 leads have no language field; the language only
// appears in COMMENTS, which Update leaves alone.
//
// A converted lead (STATUS_ID CONVERTED) has handed the person's data on:
// Update corrects what was made from it too (LEAD_ID = the lead): the
// deal's TITLE, the contact's NAME, PHONE and EMAIL (replaced the same way)
// and, for a legal entity, the company's TITLE. A contact or company the
// lead was merely joined to (an existing client, LEAD_ID another lead or
// none) is someone's older record and is left alone.
//
// An empty ref means the Receipt was never recorded: the lead is looked up
// by ORIGIN_ID (in simple mode, the deal too), and if Bitrix24 has none
// there is nothing to correct. A ref Bitrix24 no longer knows is a
// Permanent error with Code "not found".
func (c *Client) Update(ctx context.Context, l crm.Lead, ref string) error {
	if ref == "" {
		ids, err := c.find(ctx, l.ID)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			// The lead may be gone while the deal made from it (stamped by
			// Push) is not.
			deals, err := c.dealsOnly(ctx, l.ID)
			if err != nil || len(deals) == 0 {
				return err
			}
			return c.rectifyMade(ctx, l, deals)
		}
		ref = ids[0]
	}
	if !isID(ref) {
		return &integrations.Error{System: System, Op: "crm.lead.update", Code: "invalid ref", Kind: integrations.Permanent}
	}
	var stored struct {
		Status string             `json:"STATUS_ID"`
		Phone  []storedMultifield `json:"PHONE"`
		Email  []storedMultifield `json:"EMAIL"`
	}
	if err := c.call(ctx, "crm.lead.get", map[string]string{"id": ref}, &stored); err != nil {
		return err
	}
	fields := map[string]any{"NAME": l.Name, "TITLE": title(l)}
	if l.EntityType == "legal_entity" {
		fields["COMPANY_TITLE"] = l.Name
	}
	if v := replace(stored.Phone, l.Phone); len(v) > 0 {
		fields["PHONE"] = v
	}
	if v := replace(stored.Email, l.Email); len(v) > 0 {
		fields["EMAIL"] = v
	}
	if err := c.update(ctx, "lead", ref, fields); err != nil {
		return err
	}
	if stored.Status != statusConverted {
		return nil
	}
	deals, err := c.list(ctx, "deal", map[string]string{"LEAD_ID": ref})
	if err != nil {
		return err
	}
	return c.rectifyMade(ctx, l, append(deals, entity{LeadID: optID(ref)}))
}

// dealsOnly returns, in simple mode, the deals stamped for leadgate's lead
// origin; in classic mode none (a deal there is only ever reached through
// its lead).
func (c *Client) dealsOnly(ctx context.Context, origin string) ([]entity, error) {
	simple, err := c.simple(ctx)
	if err != nil || !simple {
		return nil, err
	}
	return c.dealsByOrigin(ctx, origin)
}

// rectifyMade corrects what was made from the leads of deals: each deal
// (an entry without ID only names a lead), and the contacts and companies
// whose LEAD_ID is one of those leads. Entities deleted meanwhile are
// skipped.
func (c *Client) rectifyMade(ctx context.Context, l crm.Lead, deals []entity) error {
	var leads []string
	for _, d := range deals {
		if d.ID != "" {
			if err := c.update(ctx, "deal", string(d.ID), map[string]any{"TITLE": title(l)}); err != nil && !isNotFound(err) {
				return err
			}
		}
		if d.LeadID != "" && !slices.Contains(leads, string(d.LeadID)) {
			leads = append(leads, string(d.LeadID))
		}
	}
	for _, lead := range leads {
		contacts, err := c.list(ctx, "contact", map[string]string{"LEAD_ID": lead})
		if err != nil {
			return err
		}
		for _, ct := range contacts {
			if err := c.rectifyContact(ctx, l, string(ct.ID)); err != nil && !isNotFound(err) {
				return err
			}
		}
		if l.EntityType != "legal_entity" {
			continue
		}
		companies, err := c.list(ctx, "company", map[string]string{"LEAD_ID": lead})
		if err != nil {
			return err
		}
		for _, co := range companies {
			if err := c.update(ctx, "company", string(co.ID), map[string]any{"TITLE": l.Name}); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// rectifyContact overwrites contact id's NAME, PHONE and EMAIL with l's, the
// multifields replaced as on the lead.
func (c *Client) rectifyContact(ctx context.Context, l crm.Lead, id string) error {
	var stored struct {
		Phone []storedMultifield `json:"PHONE"`
		Email []storedMultifield `json:"EMAIL"`
	}
	if err := c.call(ctx, "crm.contact.get", map[string]string{"id": id}, &stored); err != nil {
		return err
	}
	fields := map[string]any{"NAME": l.Name}
	if v := replace(stored.Phone, l.Phone); len(v) > 0 {
		fields["PHONE"] = v
	}
	if v := replace(stored.Email, l.Email); len(v) > 0 {
		fields["EMAIL"] = v
	}
	return c.update(ctx, "contact", id, fields)
}

// update calls crm.{typ}.update for id with fields; an answer other than
// true is a Permanent "not updated".
func (c *Client) update(ctx context.Context, typ, id string, fields map[string]any) error {
	method := "crm." + typ + ".update"
	var ok bool
	if err := c.call(ctx, method, map[string]any{"id": id, "fields": fields}, &ok); err != nil {
		return err
	}
	if !ok {
		return &integrations.Error{System: System, Op: method, Status: http.StatusOK, Code: "not updated", Kind: integrations.Permanent}
	}
	return nil
}

// storedMultifield is a PHONE or EMAIL value as crm.lead.get returns it.
type storedMultifield struct {
	ID    leadID `json:"ID"`
	Value string `json:"VALUE"`
}

// replace is the multifield update that leaves exactly value (none when
// value is empty) in place of the stored values.
func replace(stored []storedMultifield, value string) []multifield {
	if len(stored) == 0 {
		return work(value)
	}
	out := make([]multifield, 0, len(stored))
	for i, s := range stored {
		if i == 0 && value != "" {
			out = append(out, multifield{ID: string(s.ID), Value: value, ValueType: "WORK"})
			continue
		}
		out = append(out, multifield{ID: string(s.ID), Value: ""})
	}
	return out
}

// Erase deletes lead ref and any other lead filed for leadgate's lead leadID
// (a Receipt never recorded, or a duplicate from a race), so no copy is left
// behind, and what was made from them when they were converted:
//
//   - every deal made from them (LEAD_ID; in simple mode also a deal stamped
//     with ORIGIN_ID leadID) is deleted: a deal belongs to one request;
//   - a contact made from them is deleted unless another deal is linked to
//     it (the same person came back); then it only loses its links to the
//     deleted deals and leads;
//   - a company made from them is deleted unless another contact or deal is
//     linked to it (a company other people share); then it is only unlinked.
//
// A contact or company the lead was merely joined to (LEAD_ID another lead
// or none) is not ours to delete. The leads go last: a retry after a failure
// halfway finds them by ORIGIN_ID and follows them again. An entity Bitrix24
// does not know ("Not found") is already gone, which is success.
func (c *Client) Erase(ctx context.Context, leadID, ref string) error {
	var ids []string
	if ref != "" {
		if !isID(ref) {
			return &integrations.Error{System: System, Op: "crm.lead.delete", Code: "invalid ref", Kind: integrations.Permanent}
		}
		ids = append(ids, ref)
	}
	var deals []entity
	if leadID != "" {
		found, err := c.find(ctx, leadID)
		if err != nil {
			return err
		}
		for _, id := range found {
			if id != ref {
				ids = append(ids, id)
			}
		}
		if deals, err = c.dealsOnly(ctx, leadID); err != nil {
			return err
		}
	}
	for _, id := range ids {
		var lead struct {
			Status string `json:"STATUS_ID"`
		}
		err := c.call(ctx, "crm.lead.get", map[string]string{"id": id}, &lead)
		if err != nil && !isNotFound(err) {
			return err
		}
		if lead.Status == statusConverted {
			deals = append(deals, entity{LeadID: optID(id)})
		}
	}
	if err := c.eraseMade(ctx, deals); err != nil {
		return err
	}
	for _, id := range ids {
		if err := c.remove(ctx, "lead", id); err != nil {
			return err
		}
	}
	return nil
}

// eraseMade deletes what was made from the leads of deals (an entry without
// ID only names a lead) as Erase describes.
func (c *Client) eraseMade(ctx context.Context, deals []entity) error {
	var leads []string
	var made []string // deal ids
	for _, d := range deals {
		if d.ID != "" && !slices.Contains(made, string(d.ID)) {
			made = append(made, string(d.ID))
		}
		if d.LeadID != "" && !slices.Contains(leads, string(d.LeadID)) {
			leads = append(leads, string(d.LeadID))
		}
	}
	var contacts, companies []string
	for _, lead := range leads {
		for typ, into := range map[string]*[]string{"deal": &made, "contact": &contacts, "company": &companies} {
			found, err := c.list(ctx, typ, map[string]string{"LEAD_ID": lead})
			if err != nil {
				return err
			}
			for _, e := range found {
				if !slices.Contains(*into, string(e.ID)) {
					*into = append(*into, string(e.ID))
				}
			}
		}
	}
	for _, id := range made {
		if err := c.remove(ctx, "deal", id); err != nil {
			return err
		}
	}
	// Our deals are gone: any deal still linked is someone else's.
	for _, id := range contacts {
		others, err := c.list(ctx, "deal", map[string]string{"CONTACT_ID": id})
		if err != nil {
			return err
		}
		if len(others) > 0 {
			continue
		}
		if err := c.remove(ctx, "contact", id); err != nil {
			return err
		}
	}
	for _, id := range companies {
		shared, err := c.companyShared(ctx, id)
		if err != nil {
			return err
		}
		if shared {
			continue
		}
		if err := c.remove(ctx, "company", id); err != nil {
			return err
		}
	}
	return nil
}

// companyShared reports whether company id is still linked to a contact or a
// deal (ours are deleted by now, so these are other people's).
func (c *Client) companyShared(ctx context.Context, id string) (bool, error) {
	var linked []struct {
		ContactID leadID `json:"CONTACT_ID"`
	}
	err := c.call(ctx, "crm.company.contact.items.get", map[string]string{"id": id}, &linked)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil || len(linked) > 0 {
		return len(linked) > 0, err
	}
	deals, err := c.list(ctx, "deal", map[string]string{"COMPANY_ID": id})
	return len(deals) > 0, err
}

// remove calls crm.{typ}.delete for id; "Not found" is success.
func (c *Client) remove(ctx context.Context, typ, id string) error {
	err := c.call(ctx, "crm."+typ+".delete", map[string]string{"id": id}, nil)
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// isNotFound reports whether err is Bitrix24's "Not found" for a lead id.
func isNotFound(err error) bool {
	e, ok := errors.AsType[*integrations.Error](err)
	return ok && e.Code == codeNotFound
}

// optID is a Bitrix24 id that may be absent: null, "" or "0" read as "".
type optID string

// UnmarshalJSON accepts null, a number or a string.
func (id *optID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	switch {
	case s == "null" || s == "" || s == "0":
		*id = ""
	case isID(s):
		*id = optID(s)
	default:
		return errors.New("bitrix24: id is not an integer")
	}
	return nil
}

// leadID is a Bitrix24 id, which arrives as a JSON number (crm.lead.add's
// result) or a string of digits (every "ID" field).
type leadID string

// UnmarshalJSON accepts a positive integer as a number or a string.
func (id *leadID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	if !isID(s) {
		return errors.New("bitrix24: id is not an integer")
	}
	*id = leadID(s)
	return nil
}

// answer is every Bitrix24 REST answer, success or failure.
type answer struct {
	Result           json.RawMessage `json:"result"`
	Error            *string         `json:"error"`
	ErrorDescription string          `json:"error_description"`
	// OperatingResetAt comes with OPERATION_TIME_LIMIT: when (Unix time) part
	// of the method's time budget is released. Successful answers carry it
	// in "time"; an error answer may carry it at the top.
	OperatingResetAt json.RawMessage `json:"operating_reset_at"`
	Time             struct {
		OperatingResetAt json.RawMessage `json:"operating_reset_at"`
	} `json:"time"`
}

// call POSTs params as JSON to method and decodes the answer's result into
// out (skipped when out is nil). Every failure is an *integrations.Error
// with Op method.
func (c *Client) call(ctx context.Context, method string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return &integrations.Error{System: System, Op: method, Code: "unencodable request", Kind: integrations.Permanent, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method+".json", bytes.NewReader(body))
	if err != nil {
		// The URL parsed in New, so only a nil context gets here; the
		// cause is left out because net/http quotes the URL in it.
		return &integrations.Error{System: System, Op: method, Code: "invalid request", Kind: integrations.Permanent}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "leadgate")

	resp, err := c.client.Do(req)
	if err != nil {
		return integrations.Transport(System, method, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return integrations.Transport(System, method, err)
	}
	var a answer
	decodeErr := json.Unmarshal(raw, &a)
	if err := integrations.Check(System, method, resp); err != nil {
		e, _ := errors.AsType[*integrations.Error](err)
		// A redirect's body is whoever redirected, not the portal: no code
		// in it may make the undelivered call anything but Temporary.
		if decodeErr == nil && !integrations.IsRedirect(resp.StatusCode) {
			c.classify(e, a)
		}
		return e
	}
	if decodeErr != nil {
		// A proxy's page or a cut-off answer: nothing says the call failed
		// for good, and every call here is safe to repeat.
		return &integrations.Error{System: System, Op: method, Status: resp.StatusCode, Code: "unreadable answer", Kind: integrations.Temporary}
	}
	if a.Error != nil {
		e := &integrations.Error{System: System, Op: method, Status: resp.StatusCode, Kind: integrations.Permanent}
		c.classify(e, a)
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.Result, out); err != nil {
		return &integrations.Error{System: System, Op: method, Status: resp.StatusCode, Code: "unexpected result", Kind: integrations.Temporary}
	}
	return nil
}

// Error codes of the Bitrix24 REST API (_includes/system-errors.md) that
// decide what to do regardless of the HTTP status.
const (
	codeQueryLimit     = "QUERY_LIMIT_EXCEEDED" // 503: the portal's leaky bucket is full
	codeOperationLimit = "OPERATION_TIME_LIMIT" // 429: the method's time budget is spent
)

// Codes this driver makes up for answers whose "error" is empty, from the
// error_description texts the CRM methods document. They are fixed words:
// the description itself never goes into an error.
const (
	codeNotFound     = "not found"
	codeAccessDenied = "access denied"
	codeInvalidID    = "invalid id"
)

// classify sets e's Code and Kind (and RetryAfter) from a Bitrix24 error
// answer a. e arrives classified by HTTP status (Permanent for an error in
// a 200 answer); a vendor code that says more overrides that.
func (c *Client) classify(e *integrations.Error, a answer) {
	code := ""
	if a.Error != nil {
		code = safeCode(*a.Error)
	}
	if code == "" {
		code = describedCode(a.ErrorDescription)
	}
	e.Code = code
	switch strings.ToUpper(code) {
	case codeQueryLimit:
		e.Kind = integrations.RateLimited
		if e.RetryAfter <= 0 {
			e.RetryAfter = queryLimitWait
		}
	case codeOperationLimit:
		e.Kind = integrations.RateLimited
		if reset, ok := unixTime(a.OperatingResetAt, a.Time.OperatingResetAt); ok {
			e.RetryAfter = max(reset.Sub(c.now()), time.Second)
		} else if e.RetryAfter <= 0 {
			e.RetryAfter = operationLimitWait
		}
	case "EXPIRED_TOKEN", "INVALID_TOKEN", "NO_AUTH_FOUND", "INSUFFICIENT_SCOPE", "ACCESS_DENIED",
		"INVALID_CREDENTIALS", "WRONG_AUTH_TYPE", "USER_ACCESS_ERROR", "PORTAL_DELETED":
		// The webhook is gone, lacks the crm scope or the portal lost REST
		// access: someone has to fix the configuration.
		e.Kind = integrations.Permanent
	case "INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER":
		// The reference says to retry these, even inside a 200.
		e.Kind = integrations.Temporary
	}
}

// safeCode returns a vendor error code if it looks like one (Latin letters,
// digits and underscores, per _includes/error-info.md), else "": anything
// else in that field is not ours to repeat in an error.
func safeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return ""
		}
	}
	return code
}

// describedCode recognises the error_description texts the lead methods
// document for an empty "error".
func describedCode(description string) string {
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSpace(description), ".")) {
	case "not found":
		return codeNotFound
	case "access denied":
		return codeAccessDenied
	case "id is not defined or invalid":
		return codeInvalidID
	}
	return ""
}

// unixTime reads the first present Unix time (a JSON number, possibly
// fractional, or a string holding one).
func unixTime(raws ...json.RawMessage) (time.Time, bool) {
	for _, raw := range raws {
		s := string(raw)
		if unq, err := strconv.Unquote(s); err == nil {
			s = unq
		}
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil || sec <= 0 || sec > 1<<40 {
			continue
		}
		return time.Unix(int64(sec), 0), true
	}
	return time.Time{}, false
}
