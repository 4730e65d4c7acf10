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
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

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

// FindsEarlier is true: Push looks the lead up by ORIGIN_ID before adding it
// (crm.Finder), so pushing a lead again never makes a second one.
func (c *Client) FindsEarlier() bool { return true }

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
