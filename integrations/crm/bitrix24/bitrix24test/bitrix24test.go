// Package bitrix24test is an in-memory Bitrix24 portal for tests of the
// bitrix24 driver and of anything that files leads through it: it answers
// crm.lead.list, .add, .get, .update and .delete on an inbound webhook URL,
// keeps the leads it was given, counts the calls, and can be told to fail
// chosen calls the ways a real portal does (rate limits, internal errors, a
// connection lost after the lead was stored).
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
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
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

// firstLeadID is the id the first stored lead gets; later ones count up.
const firstLeadID = 101

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

	mu     sync.Mutex
	leads  map[int]map[string]string // lead id → scalar fields
	multi  map[int]map[string][]Value
	nextID int
	nextFM int
	calls  []Call
	counts map[string]int // calls per method
	hits   []string       // every HTTP request, REST or not: "METHOD path"
}

// NewServer starts a portal with no leads; it closes when t ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		closing: make(chan struct{}),
		leads:   map[int]map[string]string{},
		multi:   map[int]map[string][]Value{},
		nextID:  firstLeadID - 1,
		nextFM:  5000,
		counts:  map[string]int{},
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

// Leads returns the stored leads in id order.
func (s *Server) Leads() []Lead {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.leads))
	for id := range s.leads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Lead, len(ids))
	for i, id := range ids {
		out[i] = s.lead(id)
	}
	return out
}

// Lead returns the stored lead id.
func (s *Server) Lead(id string) (Lead, bool) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return Lead{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.leads[n]; !ok {
		return Lead{}, false
	}
	return s.lead(n), true
}

// lead copies lead id out; s.mu is held.
func (s *Server) lead(id int) Lead {
	l := Lead{ID: strconv.Itoa(id), Fields: make(map[string]string, len(s.leads[id]))}
	for k, v := range s.leads[id] {
		l.Fields[k] = v
	}
	l.Phone = slices.Clone(s.multi[id]["PHONE"])
	l.Email = slices.Clone(s.multi[id]["EMAIL"])
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
	if _, ok := s.leads[n]; !ok {
		return false
	}
	s.nextFM++
	s.multi[n][field] = append(s.multi[n][field], Value{strconv.Itoa(s.nextFM), field, value, "MOBILE"})
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// timing is the "time" object every answer carries.
func timing() map[string]any {
	now := time.Now()
	return map[string]any{
		"start": float64(now.UnixNano()) / 1e9, "finish": float64(now.UnixNano())/1e9 + 0.01,
		"duration": 0.01, "processing": 0.005,
		"date_start": now.Format(time.RFC3339), "date_finish": now.Format(time.RFC3339),
		"operating_reset_at": now.Add(10 * time.Minute).Unix(), "operating": 0,
	}
}

func crmError(w http.ResponseWriter, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "", "error_description": description})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits = append(s.hits, r.Method+" "+strings.ReplaceAll(r.URL.Path, Secret, "{secret}"))
	s.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/rest/"+User+"/"+Secret+"/")
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"})
		return
	}
	method, ok := strings.CutSuffix(rest, ".json")
	if !ok || r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "INVALID_REQUEST", "error_description": "Bad request"})
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "INVALID_REQUEST", "error_description": "Bad JSON"})
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{method, body})
	s.counts[method]++
	n := s.counts[method]
	s.mu.Unlock()

	var f *Fault
	if s.fault != nil {
		f = s.fault(method, n)
	}
	if f == nil {
		s.answer(w, method, body)
		return
	}
	if f.Commit {
		// The portal's answer is carried out and then lost.
		s.answer(httptest.NewRecorder(), method, body)
	}
	switch {
	case f.Stall:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	case f.Drop:
		// net/http closes the connection (resets the stream in HTTP/2)
		// without sending anything, and logs nothing.
		panic(http.ErrAbortHandler)
	default:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Location != "" {
			w.Header().Set("Location", f.Location)
		}
		if strings.HasPrefix(f.Body, "{") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(cmp.Or(f.Status, http.StatusOK))
		_, _ = w.Write([]byte(f.Body))
	}
}

// answer carries out method as the portal does and writes its answer.
func (s *Server) answer(w http.ResponseWriter, method string, body map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch method {
	case "crm.lead.list":
		s.list(w, body)
	case "crm.lead.add":
		fields, _ := body["fields"].(map[string]any)
		s.nextID++
		s.leads[s.nextID] = map[string]string{}
		s.multi[s.nextID] = map[string][]Value{}
		s.set(s.nextID, fields)
		writeJSON(w, http.StatusOK, map[string]any{"result": s.nextID, "time": timing()})
	case "crm.lead.get":
		if id, ok := s.id(w, body); ok {
			writeJSON(w, http.StatusOK, map[string]any{"result": s.view(id), "time": timing()})
		}
	case "crm.lead.update":
		if id, ok := s.id(w, body); ok {
			fields, _ := body["fields"].(map[string]any)
			s.set(id, fields)
			writeJSON(w, http.StatusOK, map[string]any{"result": true, "time": timing()})
		}
	case "crm.lead.delete":
		if id, ok := s.id(w, body); ok {
			delete(s.leads, id)
			delete(s.multi, id)
			writeJSON(w, http.StatusOK, map[string]any{"result": true, "time": timing()})
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})
	}
}

// id reads body's "id" and answers the CRM errors for a bad or unknown one;
// s.mu is held.
func (s *Server) id(w http.ResponseWriter, body map[string]any) (int, bool) {
	var n int
	switch v := body["id"].(type) {
	case string:
		n, _ = strconv.Atoi(v)
	case float64:
		n = int(v)
	}
	if n <= 0 {
		crmError(w, "ID is not defined or invalid.")
		return 0, false
	}
	if _, ok := s.leads[n]; !ok {
		crmError(w, "Not found")
		return 0, false
	}
	return n, true
}

// set applies fields to lead id as crm.lead.add and crm.lead.update do;
// s.mu is held.
func (s *Server) set(id int, fields map[string]any) {
	for k, v := range fields {
		if k != "PHONE" && k != "EMAIL" {
			s.leads[id][k] = fmt.Sprint(v)
			continue
		}
		items, _ := v.([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			itemID, _ := m["ID"].(string)
			value, _ := m["VALUE"].(string)
			valueType, _ := m["VALUE_TYPE"].(string)
			stored := s.multi[id][k]
			if i := slices.IndexFunc(stored, func(v Value) bool { return itemID != "" && v.ID == itemID }); i >= 0 {
				if value == "" {
					stored = slices.Delete(stored, i, i+1)
				} else {
					stored[i].Value = value
					if valueType != "" {
						stored[i].ValueType = valueType
					}
				}
				s.multi[id][k] = stored
				continue
			}
			if value != "" {
				s.nextFM++
				s.multi[id][k] = append(stored, Value{strconv.Itoa(s.nextFM), k, value, valueType})
			}
		}
	}
}

// view is lead id as crm.lead.get returns it; s.mu is held.
func (s *Server) view(id int) map[string]any {
	out := map[string]any{"ID": strconv.Itoa(id)}
	for k, v := range s.leads[id] {
		out[k] = v
	}
	for k, values := range s.multi[id] {
		var items []map[string]string
		for _, v := range values {
			items = append(items, map[string]string{"ID": v.ID, "VALUE_TYPE": v.ValueType, "VALUE": v.Value, "TYPE_ID": v.TypeID})
		}
		if len(items) > 0 {
			out[k] = items
		}
	}
	return out
}

// list answers crm.lead.list: exact-match filter, select, ID order; s.mu is
// held.
func (s *Server) list(w http.ResponseWriter, body map[string]any) {
	filter, _ := body["filter"].(map[string]any)
	sel, _ := body["select"].([]any)
	var ids []int
	for id, fields := range s.leads {
		match := true
		for k, v := range filter {
			if got, ok := fields[k]; !ok || got != fmt.Sprint(v) {
				match = false
			}
		}
		if match {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	result := []map[string]any{}
	for _, id := range ids {
		row := map[string]any{}
		full := s.view(id)
		for _, f := range sel {
			name, _ := f.(string)
			row[name] = full[name]
		}
		result = append(result, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": result, "total": len(result), "time": timing()})
}
