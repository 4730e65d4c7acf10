// Package bitrix24test is an in-memory Bitrix24 portal for tests of the
// bitrix24 driver and of anything that files leads through it: it answers
// crm.lead.list, .add, .get, .update and .delete on an inbound webhook URL,
// keeps the leads it was given, counts the calls, and can be told to fail
// chosen calls the ways a real portal does (rate limits, internal errors, a
// connection lost after the lead was stored).
//
// It also knows the two CRM modes (crm.settings.mode.get: 1 classic, with
// leads; 2 simple, without) and lead conversion. In simple mode a lead added
// with a NAME is converted at once, as the REST tutorial "Add a CRM activity
// to a new lead or deal depending on the CRM mode" describes: the lead stays,
// with STATUS_ID CONVERTED, and a deal (LEAD_ID = the lead), a contact
// (LEAD_ID, NAME, PHONE, EMAIL) and, with a COMPANY_TITLE, a company
// (LEAD_ID, TITLE) are made from it and linked to each other. Convert does
// the same in classic mode, as a salesperson or an automation rule would,
// and can join the lead to an existing company instead (a company other
// people share). The fake copies neither ORIGINATOR_ID nor ORIGIN_ID to what
// it makes: the reference does not say that a conversion does. It answers
// crm.deal.*, crm.contact.* and crm.company.* (list, get, update, delete)
// and crm.company.contact.items.get on them; a deletion removes the
// entity's links from the others, as the portal does.
//
// The fake speaks Bitrix24 REST as the official reference describes it
// (github.com/bitrix24/b24restdocs): webhook calls are POST
// /rest/{user}/{secret}/{method}.json with a JSON body; answers are
// {"result":…,"time":{…}}, list answers add "total"; CRM errors are 400
// {"error":"","error_description":"Not found"} (crm-lead-get.md,
// crm-lead-update.md, crm-lead-delete.md); system errors carry a code
// (_includes/system-errors.md, limits.md). Multifields follow
// api-reference/crm/data-types.md and the user-field guide: an item with ID
// and VALUE replaces that value, with ID and an empty VALUE removes it,
// without ID is appended.
//
// A Server is safe for concurrent use: several workers may push at once.
package bitrix24test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The webhook's user id and secret. The secret is fixed and obviously fake,
// so tests can check it never leaks into an error.
const (
	User   = "1"
	Secret = "s3cr3tw3bh00kc0de"
)

// The ids the first stored entity of each type gets; later ones count up.
// They are far apart so that a test notices an id used as the wrong type.
const (
	firstLeadID    = 101
	firstDealID    = 1001
	firstContactID = 2001
	firstCompanyID = 3001
)

// Entity types, as the REST methods name them (crm.{type}.list…).
const (
	TypeLead    = "lead"
	TypeDeal    = "deal"
	TypeContact = "contact"
	TypeCompany = "company"
)

// CRM modes, as crm.settings.mode.get answers them (crm.enum.settings.mode).
const (
	ModeClassic = 1
	ModeSimple  = 2
)

// Call is one request as the fake received it.
type Call struct {
	Method string         // the REST method, e.g. "crm.lead.add"
	Body   map[string]any // the decoded JSON body
}

// Value is a PHONE or EMAIL multifield value as the portal stores it.
type Value struct {
	ID, TypeID, Value, ValueType string
}

// Lead is a stored lead: its scalar fields as the portal keeps them
// (ORIGIN_ID, ASSIGNED_BY_ID, TITLE…, every value a string) and its
// multifields.
type Lead struct {
	ID     string
	Fields map[string]string
	Phone  []Value
	Email  []Value
}

// Entity is a stored deal, contact or company, shaped as a Lead: a contact
// has PHONE and EMAIL, deals and companies keep theirs empty here. Links
// are fields: LEAD_ID, CONTACT_ID and COMPANY_ID (the first link of each
// kind), and ContactIDs for every contact a deal or company is linked to.
type Entity = Lead

// Conversion is what Convert made from a lead; an empty id is nothing made.
type Conversion struct {
	Deal, Contact, Company string
}

// Fault is how the fake answers a call instead of the portal's own answer.
type Fault struct {
	// Status and Body are the answer (Status 0 is 200); a Body starting
	// with "{" is sent as JSON.
	Status int
	Body   string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Location, when set, is sent as the Location header: with a 3xx
	// Status, a redirect (a portal that moved, http sent on to https).
	Location string
	// Commit carries the call out before the fault answers: with
	// crm.lead.add, the lead is stored although the caller learns nothing
	// of it (the crash between "the CRM accepted it" and "we recorded it").
	Commit bool
	// Drop closes the connection without an answer; Status and Body are
	// ignored.
	Drop bool
	// Stall holds the answer back until the caller gives up or the server
	// closes: a portal that stopped answering.
	Stall bool
}

// QueryLimit is the portal's answer when its leaky bucket of requests is
// full (limits.md): 503 QUERY_LIMIT_EXCEEDED.
func QueryLimit() *Fault {
	return &Fault{Status: http.StatusServiceUnavailable,
		Body: `{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`}
}

// OperationLimit is the portal's answer when the method's time budget is
// spent (limits.md): 429 OPERATION_TIME_LIMIT, with reset as
// operating_reset_at, the moment part of the budget is released.
func OperationLimit(reset time.Time) *Fault {
	return &Fault{Status: http.StatusTooManyRequests, Body: fmt.Sprintf(
		`{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit.","operating_reset_at":%d}`,
		reset.Unix())}
}

// InternalError is the portal's 500 INTERNAL_SERVER_ERROR.
func InternalError() *Fault {
	return &Fault{Status: http.StatusInternalServerError,
		Body: `{"error":"INTERNAL_SERVER_ERROR","error_description":"Internal server error"}`}
}

// Option configures a Server.
type Option func(*Server)

// TLS makes the server answer on https with a certificate only
// Server.HTTPClient trusts, as a real portal does; without it the server
// answers on plain http, which the driver accepts for loopback hosts only.
func TLS() Option {
	return func(s *Server) { s.tls = true }
}

// SimpleMode makes the portal work without leads (crm.settings.mode.get
// answers 2): every lead added with a NAME is converted at once.
func SimpleMode() Option {
	return func(s *Server) { s.mode = ModeSimple }
}

// WithFaults has fault decide each call's answer: method is the REST method,
// n counts the calls to that method from 1 (failed ones included), and a
// nil Fault lets the portal answer. fault may run on several goroutines at
// once, for different calls.
func WithFaults(fault func(method string, n int) *Fault) Option {
	return func(s *Server) { s.fault = fault }
}

// Server is an in-memory Bitrix24 portal listening on a loopback port.
type Server struct {
	srv       *httptest.Server
	tls       bool
	fault     func(method string, n int) *Fault
	closing   chan struct{} // closed by Close, so stalled answers end
	closeOnce sync.Once

	mu       sync.Mutex
	mode     int
	ents     map[string]map[int]*record // entity type → id → entity
	next     map[string]int             // entity type → last id given
	contacts map[string]map[int][]int   // "deal"/"company" → id → linked contact ids
	nextFM   int
	calls    []Call
	counts   map[string]int // calls per method
	hits     []string       // every HTTP request, REST or not: "METHOD path"
}

// NewServer starts a portal with no leads; it closes when t ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		closing: make(chan struct{}),
		mode:    ModeClassic,
		ents: map[string]map[int]*record{
			TypeLead: {}, TypeDeal: {}, TypeContact: {}, TypeCompany: {},
		},
		next: map[string]int{
			TypeLead: firstLeadID - 1, TypeDeal: firstDealID - 1,
			TypeContact: firstContactID - 1, TypeCompany: firstCompanyID - 1,
		},
		contacts: map[string]map[int][]int{TypeDeal: {}, TypeCompany: {}},
		nextFM:   5000,
		counts:   map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.tls {
		s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	} else {
		s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server; calls made afterwards fail to connect. It may be
// called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// URL is the portal's inbound webhook base, {portal}/rest/1/{secret}/, as
// BITRIX24_WEBHOOK_URL takes it.
func (s *Server) URL() string {
	return s.srv.URL + "/rest/" + User + "/" + Secret + "/"
}

// PortalURL is the portal's scheme://host, where lead cards live.
func (s *Server) PortalURL() string {
	return s.srv.URL
}

// HTTPClient returns a new client that trusts the server's certificate.
func (s *Server) HTTPClient() *http.Client {
	return s.srv.Client()
}

// Requests returns every HTTP request received, in arrival order, as
// "METHOD path" with the secret written {secret} — those that were no REST
// call too (a GET, another path), which Calls leaves out: a client that
// followed a redirect shows here.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// Calls returns every call received, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count is the number of calls to method received, failed ones included.
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

// record is one stored entity: scalar fields and multifields.
type record struct {
	fields map[string]string
	multi  map[string][]Value
}

// Leads returns the stored leads in id order.
func (s *Server) Leads() []Lead {
	return s.All(TypeLead)
}

// Lead returns the stored lead id.
func (s *Server) Lead(id string) (Lead, bool) {
	return s.Get(TypeLead, id)
}

// All returns the stored entities of type typ (TypeLead, TypeDeal…) in id
// order.
func (s *Server) All(typ string) []Entity {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.ents[typ]))
	for id := range s.ents[typ] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Entity, len(ids))
	for i, id := range ids {
		out[i] = s.copyOut(typ, id)
	}
	return out
}

// Get returns the stored entity id of type typ.
func (s *Server) Get(typ, id string) (Entity, bool) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return Entity{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ents[typ][n]; !ok {
		return Entity{}, false
	}
	return s.copyOut(typ, n), true
}

// ContactIDs returns the ids of the contacts linked to deal or company id
// (typ TypeDeal or TypeCompany), in the order they were linked.
func (s *Server) ContactIDs(typ, id string) []string {
	n, _ := strconv.Atoi(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.contacts[typ][n] {
		out = append(out, strconv.Itoa(c))
	}
	return out
}

// copyOut copies entity id out; s.mu is held.
func (s *Server) copyOut(typ string, id int) Entity {
	r := s.ents[typ][id]
	l := Entity{ID: strconv.Itoa(id), Fields: make(map[string]string, len(r.fields))}
	for k, v := range r.fields {
		l.Fields[k] = v
	}
	l.Phone = slices.Clone(r.multi["PHONE"])
	l.Email = slices.Clone(r.multi["EMAIL"])
	return l
}

// AddValue stores a PHONE or EMAIL value on lead id directly, as a
// salesperson editing the lead card would. It reports whether the lead
// exists.
func (s *Server) AddValue(id, field, value string) bool {
	n, err := strconv.Atoi(id)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.ents[TypeLead][n]
	if !ok {
		return false
	}
	s.nextFM++
	r.multi[field] = append(r.multi[field], Value{strconv.Itoa(s.nextFM), field, value, "MOBILE"})
	return true
}

// Add stores an entity of type typ with fields directly, as a salesperson
// would, and returns its id. PHONE and EMAIL take a single value.
func (s *Server) Add(typ string, fields map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := map[string]any{}
	for k, v := range fields {
		if k == "PHONE" || k == "EMAIL" {
			f[k] = []any{map[string]any{"VALUE": v, "VALUE_TYPE": "WORK"}}
			continue
		}
		f[k] = v
	}
	return strconv.Itoa(s.add(typ, f))
}

// Link links contact to deal or company id (typ TypeDeal or TypeCompany),
// as the card's client field does; for a company, the contact's COMPANY_ID
// is set too when it has none. It reports whether both exist.
func (s *Server) Link(typ, id, contact string) bool {
	n, _ := strconv.Atoi(id)
	c, _ := strconv.Atoi(contact)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ents[typ][n] == nil || s.ents[TypeContact][c] == nil {
		return false
	}
	s.link(typ, n, c)
	return true
}

// link links contact c to deal or company id; s.mu is held.
func (s *Server) link(typ string, id, c int) {
	if !slices.Contains(s.contacts[typ][id], c) {
		s.contacts[typ][id] = append(s.contacts[typ][id], c)
	}
	switch typ {
	case TypeDeal:
		if s.ents[TypeDeal][id].fields["CONTACT_ID"] == "" {
			s.ents[TypeDeal][id].fields["CONTACT_ID"] = strconv.Itoa(c)
		}
	case TypeCompany:
		if s.ents[TypeContact][c].fields["COMPANY_ID"] == "" {
			s.ents[TypeContact][c].fields["COMPANY_ID"] = strconv.Itoa(id)
		}
	}
}

// Convert converts lead id as a salesperson or an automation rule does in
// classic mode (and the portal itself in simple mode): a deal, a contact and,
// when the lead has a COMPANY_TITLE and company is "", a company are made
// from it, each with LEAD_ID = id, and linked to one another and to the
// lead, whose STATUS_ID becomes CONVERTED. A non-empty company is an
// existing company the lead is joined to instead of making one. It reports
// false when the lead or the company does not exist.
func (s *Server) Convert(id, company string) (Conversion, bool) {
	n, _ := strconv.Atoi(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ents[TypeLead][n] == nil {
		return Conversion{}, false
	}
	co := 0
	if company != "" {
		co, _ = strconv.Atoi(company)
		if s.ents[TypeCompany][co] == nil {
			return Conversion{}, false
		}
	}
	return s.convert(n, co), true
}

// convert converts lead id, joining it to company co when co is not 0;
// s.mu is held.
func (s *Server) convert(id, co int) Conversion {
	l := s.ents[TypeLead][id]
	lead := strconv.Itoa(id)
	var cv Conversion
	contact := map[string]any{"LEAD_ID": lead, "NAME": l.fields["NAME"],
		"SOURCE_ID": l.fields["SOURCE_ID"], "ASSIGNED_BY_ID": l.fields["ASSIGNED_BY_ID"]}
	for _, k := range []string{"PHONE", "EMAIL"} {
		var items []any
		for _, v := range l.multi[k] {
			items = append(items, map[string]any{"VALUE": v.Value, "VALUE_TYPE": v.ValueType})
		}
		contact[k] = items
	}
	c := s.add(TypeContact, contact)
	cv.Contact = strconv.Itoa(c)
	if co == 0 && l.fields["COMPANY_TITLE"] != "" {
		co = s.add(TypeCompany, map[string]any{"LEAD_ID": lead, "TITLE": l.fields["COMPANY_TITLE"],
			"ASSIGNED_BY_ID": l.fields["ASSIGNED_BY_ID"]})
	}
	deal := map[string]any{"LEAD_ID": lead, "TITLE": l.fields["TITLE"], "COMMENTS": l.fields["COMMENTS"],
		"SOURCE_ID": l.fields["SOURCE_ID"], "ASSIGNED_BY_ID": l.fields["ASSIGNED_BY_ID"], "STAGE_ID": "NEW"}
	if co != 0 {
		cv.Company = strconv.Itoa(co)
		deal["COMPANY_ID"] = cv.Company
		s.link(TypeCompany, co, c)
		l.fields["COMPANY_ID"] = cv.Company
	}
	d := s.add(TypeDeal, deal)
	cv.Deal = strconv.Itoa(d)
	s.link(TypeDeal, d, c)
	l.fields["CONTACT_ID"] = cv.Contact
	l.fields["STATUS_ID"] = "CONVERTED"
	return cv
}

// add stores a new entity of type typ with fields as crm.{typ}.add does and
// returns its id; s.mu is held.
func (s *Server) add(typ string, fields map[string]any) int {
	s.next[typ]++
	id := s.next[typ]
	s.ents[typ][id] = &record{fields: map[string]string{}, multi: map[string][]Value{}}
	s.set(typ, id, fields)
	if typ == TypeLead && s.ents[typ][id].fields["STATUS_ID"] == "" {
		s.ents[typ][id].fields["STATUS_ID"] = "NEW"
	}
	return id
}

// remove deletes entity id of type typ and the links to it, as
// crm.{typ}.delete does; s.mu is held.
func (s *Server) remove(typ string, id int) {
	delete(s.ents[typ], id)
	delete(s.contacts[typ], id)
	ref := strconv.Itoa(id)
	field := map[string]string{TypeContact: "CONTACT_ID", TypeCompany: "COMPANY_ID"}[typ]
	if field != "" {
		for _, byID := range s.ents {
			for _, r := range byID {
				if r.fields[field] == ref {
					delete(r.fields, field)
				}
			}
		}
	}
	if typ == TypeContact {
		for _, byID := range s.contacts {
			for owner, cs := range byID {
				byID[owner] = slices.DeleteFunc(cs, func(c int) bool { return c == id })
			}
		}
	}
}
