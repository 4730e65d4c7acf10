// Package amocrm is the CRM driver for amoCRM (and Kommo, its international
// edition) through API v4 with a long-lived token.
//
// It follows amoCRM's own documentation (the Kommo pages are the same API in
// English):
//
//   - leads: https://www.amocrm.ru/developers/content/crm_platform/leads-api
//     (GET /api/v4/leads?query=…, GET /api/v4/leads/{id}?with=contacts,
//     PATCH /api/v4/leads/{id}) and POST /api/v4/leads/complex,
//     https://developers.kommo.com/reference/complex-leads
//   - contacts and companies: https://www.amocrm.ru/developers/content/crm_platform/contacts-api
//     (PATCH /api/v4/contacts/{id}, PATCH /api/v4/companies/{id})
//   - notes: https://www.amocrm.ru/developers/content/crm_platform/events-and-notes
//     (GET and POST /api/v4/leads/{id}/notes, PATCH /api/v4/leads/notes/{id})
//   - custom field values: https://www.amocrm.ru/developers/content/crm_platform/custom-fields
//   - errors: https://www.amocrm.ru/developers/content/api/errors (400 with
//     "validation-errors", 401, 402 for an unpaid account, 403, and 429 beyond
//     7 requests per second per integration)
//
// List endpoints answer 204 No Content, with no body, when nothing matched.
//
// # Idempotency
//
// Every lead gets leadgate's id in a text custom field of leads (
// Config.LeadIDFieldID). Push first searches for it with the full-text query,
// which also searches custom field values, and trusts a hit only when that
// field holds exactly the id: the query matches substrings and other fields
// too. The note Push adds starts with a line naming the id, so a later Push
// or Update sees whether it exists before adding it.
//
// What a caller gets: a created lead is reported as pushed even when its
// note failed; the note is added on the next Push/Update of the lead. For a
// new lead, Push reports an error only when amoCRM did not answer the create
// with the lead's id, so no retry follows a create amoCRM confirmed: amoCRM
// indexes new leads for search only within seconds, and a retry's search
// could miss the lead and make a second one.
//
// One window remains: a create that amoCRM carried out but whose answer never
// arrived (a timeout, a dropped connection) is reported as an error, and a
// retry sooner than the indexing searches in vain and creates a second lead;
// the workers' backoff makes that unlikely. An exact filter on the custom
// field (GET /api/v4/leads?filter[custom_fields_values]…) could close it, but
// amoCRM's filters API is in closed alpha, enabled on request for a few
// accounts only (https://www.amocrm.ru/developers/content/crm_platform/filters-api),
// and what an account without it does with the filter is undocumented, so
// this driver does not use it.
//
// # Duplicate control
//
// An account can have amoCRM merge a new lead into one it already holds for
// the same contact; the complex method then answers "merged": true with the
// existing lead's id (https://developers.kommo.com/reference/complex-leads).
// That id becomes the Receipt, since it is where the request now is, but the
// lead is not leadgate's: Push adds only the request's note, marked as
// merged, and Update corrects that note and nothing else. Whether amoCRM's
// merge copies our id field onto the existing lead is not documented; a lead
// holding our id that was created before the request was received is taken
// for a merged one as well.
//
// # Rate limit
//
// amoCRM answers 429 beyond 7 requests a second per integration, and blocks
// the API with 403 for a client that kept getting 429s
// (https://www.amocrm.ru/developers/content/api/recommendations). Every call
// waits on Config.Limiter first; a 403 soon after a 429 counts as the block
// (see blockWindow in wire.go).
//
// # Erasure
//
// amoCRM's public API has no method that deletes a lead, contact or company
// (only the web interface can), so Erase returns crm.ErrUnsupported and the
// erasure has to be done by hand in amoCRM.
package amocrm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// System is the name this driver gives its Receipts and errors; it is what
// a lead's disclosure log records as the recipient.
const System = "amocrm"

// ErrConfig is what New reports for an unusable Config; the message says
// which setting is wrong and never quotes the token.
var ErrConfig = errors.New("amocrm: invalid configuration")

// Config is how to reach one amoCRM account.
type Config struct {
	// BaseURL is the account's address: https://{subdomain}.amocrm.ru or
	// https://{subdomain}.kommo.com, with no path.
	BaseURL string
	// Token is a long-lived token of a private integration, sent as
	// "Authorization: Bearer <token>".
	Token string
	// PipelineID is the pipeline new leads go to; 0 means the account's
	// main pipeline.
	PipelineID int
	// LeadIDFieldID is the id of a text custom field of leads that holds
	// leadgate's lead id. Required: it is how a retried Push finds the lead
	// it already created.
	LeadIDFieldID int
	// Limiter, when not nil, is waited on before every call, so that all
	// workers together stay under amoCRM's limit (RateLimit). nil means no
	// limit is kept beyond backing off when amoCRM answers 429.
	Limiter Limiter
}

// Limiter paces calls. Wait returns when a call may be made (and counts
// it), or an error when ctx ends first or the limiter cannot be asked; the
// call is then not made. *ops.Limiter (intake/redisstore/ops) is one shared by every process.
type Limiter interface {
	Wait(ctx context.Context) error
}

// RateLimit is how many calls a second the workers together should allow
// themselves: amoCRM answers 429 beyond 7 a second per integration, and one
// is left for the jitter between our clock and the moment requests arrive.
const RateLimit = 6

// Client pushes leads to one amoCRM account. It is safe for concurrent use.
type Client struct {
	base        string // scheme://host, without a trailing slash
	token       string
	pipelineID  int
	leadIDField int
	client      *http.Client
	limiter     Limiter
	now         func() time.Time // the clock of the 429 memory; time.Now but in tests
	last429     atomic.Int64     // when amoCRM last answered 429 (Unix ns); 0 for never
}

// New checks cfg and returns a Client using client for every call; a nil
// client means integrations.NewHTTPClient(0). Redirects are never followed,
// whatever client is given (integrations.NoRedirects). It makes no call
// itself.
func New(cfg Config, client *http.Client) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("%w: BaseURL must be the account address, like https://example.amocrm.ru, with no path", ErrConfig)
	}
	// A space or control character would let the token split the header;
	// net/http would refuse it on every call, so refuse it once here.
	if cfg.Token == "" || strings.ContainsFunc(cfg.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%w: Token is empty or contains spaces or control characters", ErrConfig)
	}
	if cfg.PipelineID < 0 {
		return nil, fmt.Errorf("%w: PipelineID must be 0 (main pipeline) or a pipeline id", ErrConfig)
	}
	if cfg.LeadIDFieldID <= 0 {
		return nil, fmt.Errorf("%w: LeadIDFieldID must be the id of a text custom field of leads", ErrConfig)
	}
	client = integrations.NoRedirects(client)
	return &Client{
		base:        u.Scheme + "://" + u.Host,
		token:       cfg.Token,
		pipelineID:  cfg.PipelineID,
		leadIDField: cfg.LeadIDFieldID,
		client:      client,
		limiter:     cfg.Limiter,
		now:         time.Now,
	}, nil
}

// Operations, as *integrations.Error values name them.
const (
	opSearch        = "leads.search"
	opCreate        = "leads.complex"
	opGetLead       = "leads.get"
	opUpdateLead    = "leads.update"
	opUpdateContact = "contacts.update"
	opUpdateCompany = "companies.update"
	opListNotes     = "notes.list"
	opAddNote       = "notes.add"
	opUpdateNote    = "notes.update"
)

// Search paging: amoCRM returns at most 250 entities a page. The query
// matches substrings, so a few unrelated leads may come back, but more than
// maxSearchPages pages of them means something is off; Push then refuses
// rather than risk a duplicate.
const (
	pageLimit      = 250
	maxSearchPages = 4
)

// FindsEarlier is true: Push looks the lead up by the leadgate-id field
// before adding it (crm.Finder), so pushing a lead again never makes a
// second one.
func (c *Client) FindsEarlier() bool { return true }

// Push creates the lead in amoCRM, with its contact (and company, for a legal
// entity) and a note, and returns Receipt{System: "amocrm", Ref: <lead id>,
// URL: <lead card>}. If a lead holding l.ID already exists — a retry after
// a crash, or a Push after the note failed — Push adds the note if it is
// missing and returns that lead's Receipt instead.
//
// When amoCRM's duplicate control merges the request into a lead it already
// holds (the create answers "merged": true), the Receipt is that lead's:
// it is where the request now is. Push then only adds the note, marked as
// merged (see Update), and changes nothing else on a lead that is not
// leadgate's.
//
// Once amoCRM has answered the create with the new lead's id, Push returns
// its Receipt and no error, even when the note could not be added (see the
// package comment). Failures before that, and a note that could not be
// added to a merged lead, are *integrations.Error values with System
// "amocrm", and Push is safe to retry after any of them.
func (c *Client) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	if l.ID == "" {
		return crm.Receipt{}, &integrations.Error{System: System, Op: opCreate, Code: "lead without id", Kind: integrations.Permanent}
	}
	found, err := c.findLead(ctx, l.ID)
	if err != nil {
		return crm.Receipt{}, err
	}
	if found == nil {
		id, merged, err := c.createLead(ctx, l)
		if err != nil {
			return crm.Receipt{}, err
		}
		if merged {
			// Nothing new was created, so a retry is safe: amoCRM merges
			// the request into the same lead again. The note must be
			// there, marked, before the lead is reported: it is the only
			// copy of the request on that lead, and what keeps Update off
			// its contact.
			if err := c.ensureNote(ctx, id, l, true); err != nil {
				return crm.Receipt{}, err
			}
			return c.receipt(id), nil
		}
		// A lead created a moment ago has no notes to look through. The
		// note's error is dropped on purpose: reporting it would have the
		// lead retried, and a retry before amoCRM indexes the new lead
		// would create a second one. The next Push or Update adds the
		// missing note.
		_ = c.addNote(ctx, id, noteText(l))
		return c.receipt(id), nil
	}
	// A lead that holds l.ID but predates the request is one amoCRM merged
	// the request into and copied the id onto.
	if err := c.ensureNote(ctx, found.ID, l, found.predates(l)); err != nil {
		return crm.Receipt{}, err
	}
	return c.receipt(found.ID), nil
}

// ensureNote adds l's note to lead id unless it is there already; merged
// says the lead is an existing one amoCRM merged l into.
func (c *Client) ensureNote(ctx context.Context, id int, l crm.Lead, merged bool) error {
	noteID, _, err := c.findNote(ctx, id, l.ID)
	if err != nil || noteID != 0 {
		return err
	}
	text := noteText(l)
	if merged {
		text = mergedNoteText(l)
	}
	return c.addNote(ctx, id, text)
}

// receipt is the Receipt of amoCRM lead id.
func (c *Client) receipt(id int) crm.Receipt {
	ref := strconv.Itoa(id)
	return crm.Receipt{System: System, Ref: ref, URL: c.base + "/leads/detail/" + ref}
}

// findLead returns the lead whose leadgate-id field holds exactly
// leadgateID, or nil when there is none.
func (c *Client) findLead(ctx context.Context, leadgateID string) (*lead, error) {
	for page := 1; page <= maxSearchPages; page++ {
		q := url.Values{"query": {leadgateID}, "limit": {strconv.Itoa(pageLimit)}, "page": {strconv.Itoa(page)}}
		var res leadsPage
		found, err := c.call(ctx, opSearch, http.MethodGet, "/api/v4/leads", q, nil, &res)
		if err != nil || !found {
			return nil, err
		}
		for _, ld := range res.Embedded.Leads {
			if ld.holds(c.leadIDField, leadgateID) {
				return &ld, nil
			}
		}
		if res.Links.Next == nil {
			return nil, nil
		}
	}
	return nil, &integrations.Error{System: System, Op: opSearch, Code: "too many search matches", Kind: integrations.Permanent}
}

// createLead adds l with its contact (and company) in one call and returns
// the lead's id, and whether amoCRM's duplicate control merged l into a
// lead it already held (whose id that is) instead of creating one.
func (c *Client) createLead(ctx context.Context, l crm.Lead) (int, bool, error) {
	var res []complexResult
	if _, err := c.call(ctx, opCreate, http.MethodPost, "/api/v4/leads/complex", nil, []complexLead{c.newLead(l)}, &res); err != nil {
		return 0, false, err
	}
	if len(res) != 1 || res[0].ID <= 0 {
		// Whether amoCRM created anything is unknown; a retry searches first.
		return 0, false, &integrations.Error{System: System, Op: opCreate, Code: "unreadable response", Kind: integrations.Temporary}
	}
	return res[0].ID, res[0].Merged, nil
}

// newLead is the body of l's lead in POST /api/v4/leads/complex.
func (c *Client) newLead(l crm.Lead) complexLead {
	tags := make([]tag, 0, 2+len(l.Products))
	for _, name := range tagNames(l) {
		tags = append(tags, tag{Name: name})
	}
	var companies []company
	if l.EntityType == entityLegal && l.Name != "" {
		companies = []company{{Name: l.Name}}
	}
	return complexLead{
		Name:              title(l),
		PipelineID:        c.pipelineID,
		ResponsibleUserID: responsibleUser(l.Assignment),
		CustomFieldsValues: []customField{
			{FieldID: c.leadIDField, Values: []fieldValue{{Value: l.ID}}},
		},
		Embedded: complexEmbedded{
			Tags:      tags,
			Contacts:  []contact{{Name: l.Name, CustomFieldsValues: contactFields(l)}},
			Companies: companies,
		},
	}
}

// responsibleUser is the amoCRM user id routing chose, or 0 (the account's
// default) when there is none or it is not an amoCRM id.
func responsibleUser(a *crm.Assignment) int {
	if a == nil {
		return 0
	}
	id, err := strconv.Atoi(a.CRMUserID)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// contactFields are the phone and email of a contact, as work numbers and
// addresses. Sending a field replaces all its values, which is what Update
// wants too.
func contactFields(l crm.Lead) []customField {
	var fields []customField
	if l.Phone != "" {
		fields = append(fields, customField{FieldCode: "PHONE", Values: []fieldValue{{Value: l.Phone, EnumCode: "WORK"}}})
	}
	if l.Email != "" {
		fields = append(fields, customField{FieldCode: "EMAIL", Values: []fieldValue{{Value: l.Email, EnumCode: "WORK"}}})
	}
	return fields
}

// findNote returns the id and text of the note Push added to lead id for
// leadgateID, or 0 when there is none. Only the oldest page of text notes
// is read: the note is added right after the lead is created, long before a
// salesperson could write 250 notes. (On a lead amoCRM merged a request
// into, the note comes later; a lead with 250 older notes gets a second
// one at worst.)
func (c *Client) findNote(ctx context.Context, id int, leadgateID string) (int, string, error) {
	q := url.Values{"filter[note_type][]": {noteTypeCommon}, "order[id]": {"asc"}, "limit": {strconv.Itoa(pageLimit)}}
	var res notesPage
	found, err := c.call(ctx, opListNotes, http.MethodGet, "/api/v4/leads/"+strconv.Itoa(id)+"/notes", q, nil, &res)
	if err != nil || !found {
		return 0, "", err
	}
	for _, n := range res.Embedded.Notes {
		if n.NoteType == noteTypeCommon && isNoteFor(n.Params.Text, leadgateID) {
			return n.ID, n.Params.Text, nil
		}
	}
	return 0, "", nil
}

// addNote adds a text note to lead id.
func (c *Client) addNote(ctx context.Context, id int, text string) error {
	body := []note{{NoteType: noteTypeCommon, Params: noteParams{Text: text}}}
	_, err := c.call(ctx, opAddNote, http.MethodPost, "/api/v4/leads/"+strconv.Itoa(id)+"/notes", nil, body, nil)
	return err
}

// Update overwrites what lead ref holds about the person with l: the main
// contact's name, phone and email, the lead's title, the company's name (legal
// entities) and the note Push added (which carries the language to answer
// in), adding the note when Push could not. It first checks that ref is the
// lead of l.ID, so a wrong ref never overwrites someone else's contact.
//
// A lead amoCRM merged the request into (its note says so, or it was
// created before the request was received) is not leadgate's: Update
// rewrites only the request's note there and reports a Permanent error
// with Code codeMerged, since the contact, shared with whatever was there
// before, has to be corrected by hand.
func (c *Client) Update(ctx context.Context, l crm.Lead, ref string) error {
	id, err := strconv.Atoi(ref)
	if err != nil || id <= 0 {
		return &integrations.Error{System: System, Op: opGetLead, Code: "invalid ref", Kind: integrations.Permanent}
	}
	if l.ID == "" {
		return &integrations.Error{System: System, Op: opGetLead, Code: "lead without id", Kind: integrations.Permanent}
	}
	leadPath := "/api/v4/leads/" + strconv.Itoa(id)
	var ld lead
	found, err := c.call(ctx, opGetLead, http.MethodGet, leadPath, url.Values{"with": {"contacts"}}, nil, &ld)
	if err != nil {
		return err
	}
	if !found {
		return &integrations.Error{System: System, Op: opGetLead, Status: http.StatusNoContent, Code: "lead not found", Kind: integrations.Permanent}
	}
	noteID, text, err := c.findNote(ctx, id, l.ID)
	if err != nil {
		return err
	}
	merged := noteID != 0 && isMergedNote(text)
	if !merged && !ld.holds(c.leadIDField, l.ID) {
		return &integrations.Error{System: System, Op: opGetLead, Code: "lead of another request", Kind: integrations.Permanent}
	}
	if merged || ld.predates(l) {
		if err := c.putNote(ctx, id, noteID, mergedNoteText(l)); err != nil {
			return err
		}
		return &integrations.Error{System: System, Op: opUpdateContact, Code: codeMerged, Kind: integrations.Permanent}
	}
	contactID := ld.mainContact()
	if contactID == 0 {
		return &integrations.Error{System: System, Op: opGetLead, Code: "lead without contact", Kind: integrations.Permanent}
	}

	patch := contact{Name: l.Name, CustomFieldsValues: contactFields(l)}
	if _, err := c.call(ctx, opUpdateContact, http.MethodPatch, "/api/v4/contacts/"+strconv.Itoa(contactID), nil, patch, nil); err != nil {
		return err
	}
	if _, err := c.call(ctx, opUpdateLead, http.MethodPatch, leadPath, nil, leadPatch{Name: title(l)}, nil); err != nil {
		return err
	}
	if l.EntityType == entityLegal && l.Name != "" && len(ld.Embedded.Companies) > 0 {
		path := "/api/v4/companies/" + strconv.Itoa(ld.Embedded.Companies[0].ID)
		if _, err := c.call(ctx, opUpdateCompany, http.MethodPatch, path, nil, company{Name: l.Name}, nil); err != nil {
			return err
		}
	}
	return c.putNote(ctx, id, noteID, noteText(l))
}

// codeMerged is the Code of Update's error for a lead amoCRM merged the
// request into: its note was corrected, its contact was not.
const codeMerged = "merged lead: contact not changed"

// putNote writes text as note noteID of lead id, or adds it when noteID is 0.
func (c *Client) putNote(ctx context.Context, id, noteID int, text string) error {
	if noteID == 0 {
		return c.addNote(ctx, id, text)
	}
	edit := note{NoteType: noteTypeCommon, Params: noteParams{Text: text}}
	_, err := c.call(ctx, opUpdateNote, http.MethodPatch, "/api/v4/leads/notes/"+strconv.Itoa(noteID), nil, edit, nil)
	return err
}

// Erase returns crm.ErrUnsupported: amoCRM's API cannot delete leads,
// contacts or companies, so the person's data must be removed by hand in
// amoCRM's interface.
func (c *Client) Erase(ctx context.Context, leadID, ref string) error {
	return crm.ErrUnsupported
}
