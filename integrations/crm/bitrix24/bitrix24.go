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
	"strconv"
	"strings"
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
)

// Client files leads in one Bitrix24 portal. It is safe for concurrent use.
type Client struct {
	base   string // the webhook base, ending in "/"; holds the secret
	portal string // scheme://host, for links to leads
	client *http.Client
	now    func() time.Time // reads operating_reset_at; tests fix it
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
// Failures are *integrations.Error values with Op the REST method.
func (c *Client) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	if l.ID == "" {
		return crm.Receipt{}, &integrations.Error{System: System, Op: "crm.lead.add", Code: "lead without id", Kind: integrations.Permanent}
	}
	ids, err := c.find(ctx, l.ID)
	if err != nil {
		return crm.Receipt{}, err
	}
	if len(ids) > 0 {
		return c.receipt(ids[0]), nil
	}
	var id leadID
	err = c.call(ctx, "crm.lead.add", map[string]any{
		"fields": newLeadFields(l),
		"params": map[string]string{"REGISTER_SONET_EVENT": "Y"},
	}, &id)
	if err != nil {
		return crm.Receipt{}, err
	}
	return c.receipt(string(id)), nil
}

// receipt is the Receipt of the lead with Bitrix24 id id.
func (c *Client) receipt(id string) crm.Receipt {
	return crm.Receipt{System: System, Ref: id, URL: c.portal + "/crm/lead/details/" + id + "/"}
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
// An empty ref means the Receipt was never recorded: the lead is looked up
// by ORIGIN_ID, and if Bitrix24 has none there is nothing to correct. A ref
// Bitrix24 no longer knows is a Permanent error with Code "not found".
func (c *Client) Update(ctx context.Context, l crm.Lead, ref string) error {
	if ref == "" {
		ids, err := c.find(ctx, l.ID)
		if err != nil || len(ids) == 0 {
			return err
		}
		ref = ids[0]
	}
	if !isID(ref) {
		return &integrations.Error{System: System, Op: "crm.lead.update", Code: "invalid ref", Kind: integrations.Permanent}
	}
	var stored struct {
		Phone []storedMultifield `json:"PHONE"`
		Email []storedMultifield `json:"EMAIL"`
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
	var ok bool
	if err := c.call(ctx, "crm.lead.update", map[string]any{"id": ref, "fields": fields}, &ok); err != nil {
		return err
	}
	if !ok {
		return &integrations.Error{System: System, Op: "crm.lead.update", Status: http.StatusOK, Code: "not updated", Kind: integrations.Permanent}
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
// behind. A lead Bitrix24 does not know ("Not found") is already gone, which
// is success.
func (c *Client) Erase(ctx context.Context, leadID, ref string) error {
	var ids []string
	if ref != "" {
		if !isID(ref) {
			return &integrations.Error{System: System, Op: "crm.lead.delete", Code: "invalid ref", Kind: integrations.Permanent}
		}
		ids = append(ids, ref)
	}
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
	}
	for _, id := range ids {
		err := c.call(ctx, "crm.lead.delete", map[string]string{"id": id}, nil)
		if err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// isNotFound reports whether err is Bitrix24's "Not found" for a lead id.
func isNotFound(err error) bool {
	e, ok := errors.AsType[*integrations.Error](err)
	return ok && e.Code == codeNotFound
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
