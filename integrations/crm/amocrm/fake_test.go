package amocrm

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The fake speaks amoCRM API v4 as documented (see the package comment):
// HAL+JSON answers with "_links" and "_embedded", 204 with no body when a
// list is empty, problem+JSON errors, and a 400 with "validation-errors" for
// an unknown custom field.

const (
	testToken    = "test-token-5f0c2a7e9b1d4c3a8e6f"
	leadIDField  = 771001 // text field "leadgate id"
	commentField = 771002 // text field "Comment"
	accountID    = 28000000
	mainStatusID = 47000001
)

// fakeLead, fakeContact, fakeCompany and fakeNote are what the fake stores.
type fakeLead struct {
	ID                int
	Name              string
	PipelineID        int
	ResponsibleUserID int
	Fields            map[int]string // custom field id → text value
	Tags              []string
	ContactID         int
	CompanyID         int
	CreatedAt         int64 // Unix seconds; 0 answers as 1744709400 (2025-04-15 09:30 UTC)
}

type fakeValue struct{ Value, EnumCode string }

type fakeContact struct {
	ID     int
	Name   string
	Phones []fakeValue
	Emails []fakeValue
}

type fakeCompany struct {
	ID   int
	Name string
}

type fakeNote struct {
	ID, LeadID int
	Type, Text string
}

// fakeAmo is an in-memory amoCRM account.
type fakeAmo struct {
	*httptest.Server
	mu         sync.Mutex
	nextID     int
	pageSize   int // the server's own page cap; amoCRM's is 250
	leadFields map[int]string
	leads      map[int]*fakeLead
	contacts   map[int]*fakeContact
	companies  map[int]*fakeCompany
	notes      []*fakeNote
	requests   []string // "METHOD /path", in order
	complex    [][]byte // bodies of POST /api/v4/leads/complex
	searchHits int      // leads returned by searches, decoys included
	// dupControl is amoCRM's duplicate control, on for the integration: a
	// complex lead whose contact has a phone or email of an existing lead's
	// contact is merged into that lead ("merged": true, its ids) instead of
	// being created. mergeFields says whether the merge also writes the
	// incoming lead's custom field values onto the existing lead, which
	// amoCRM's documentation leaves open.
	dupControl, mergeFields bool
	// intercept, when set, sees each request first and answers it instead
	// when it returns true.
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func newFake(t *testing.T) *fakeAmo {
	t.Helper()
	f := &fakeAmo{
		nextID:     31000001,
		pageSize:   250,
		leadFields: map[int]string{leadIDField: "leadgate id", commentField: "Comment"},
		leads:      map[int]*fakeLead{},
		contacts:   map[int]*fakeContact{},
		companies:  map[int]*fakeCompany{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v4/leads", f.searchLeads)
	mux.HandleFunc("POST /api/v4/leads/complex", f.addComplex)
	mux.HandleFunc("GET /api/v4/leads/{id}", f.getLead)
	mux.HandleFunc("PATCH /api/v4/leads/{id}", f.patchLead)
	mux.HandleFunc("GET /api/v4/leads/{id}/notes", f.listNotes)
	mux.HandleFunc("POST /api/v4/leads/{id}/notes", f.addNotes)
	mux.HandleFunc("PATCH /api/v4/leads/notes/{id}", f.patchNote)
	mux.HandleFunc("PATCH /api/v4/contacts/{id}", f.patchContact)
	mux.HandleFunc("PATCH /api/v4/companies/{id}", f.patchCompany)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		intercept := f.intercept
		f.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeProblem(w, http.StatusUnauthorized, map[string]any{"detail": "Неверный логин или пароль"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAmo) setIntercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intercept = fn
}

func (f *fakeAmo) id() int {
	f.nextID++
	return f.nextID - 1
}

// addLead stores a lead as if someone had created it in amoCRM, with a
// contact, and returns its id.
func (f *fakeAmo) addLead(name string, fields map[int]string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	ct := &fakeContact{ID: f.id(), Name: "Test Contact"}
	f.contacts[ct.ID] = ct
	ld := &fakeLead{ID: f.id(), Name: name, Fields: fields, ContactID: ct.ID}
	f.leads[ld.ID] = ld
	return ld.ID
}

// state returns copies of what the fake holds.
func (f *fakeAmo) state() (leads []fakeLead, contacts map[int]fakeContact, companies map[int]fakeCompany, notes []fakeNote) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ld := range f.leads {
		leads = append(leads, *ld)
	}
	slices.SortFunc(leads, func(a, b fakeLead) int { return a.ID - b.ID })
	contacts = map[int]fakeContact{}
	for id, c := range f.contacts {
		contacts[id] = *c
	}
	companies = map[int]fakeCompany{}
	for id, c := range f.companies {
		companies[id] = *c
	}
	for _, n := range f.notes {
		notes = append(notes, *n)
	}
	return leads, contacts, companies, notes
}

func (f *fakeAmo) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeAmo) hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.searchHits
}

func (f *fakeAmo) complexBodies() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.complex)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/hal+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProblem answers an error as amoCRM does: application/problem+json
// with title, type, status and detail, plus any extra members.
func writeProblem(w http.ResponseWriter, status int, extra map[string]any) {
	p := map[string]any{"title": http.StatusText(status), "type": "https://httpstatus.es/" + strconv.Itoa(status), "status": status}
	for k, v := range extra {
		p[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

func (f *fakeAmo) link(path string) map[string]any {
	return map[string]any{"self": map[string]any{"href": f.URL + path}}
}

// leadJSON is a lead model as GET /api/v4/leads returns it.
func (f *fakeAmo) leadJSON(ld *fakeLead, withContacts bool) map[string]any {
	var cfv any // null when the lead has no custom field values
	if len(ld.Fields) > 0 {
		var list []map[string]any
		ids := make([]int, 0, len(ld.Fields))
		for id := range ld.Fields {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			list = append(list, map[string]any{
				"field_id": id, "field_name": f.leadFields[id], "field_code": nil, "field_type": "text",
				"values": []map[string]any{{"value": ld.Fields[id]}},
			})
		}
		cfv = list
	}
	tags := []map[string]any{}
	for i, name := range ld.Tags {
		tags = append(tags, map[string]any{"id": 100 + i, "name": name, "color": nil})
	}
	companies := []map[string]any{}
	if ld.CompanyID != 0 {
		companies = append(companies, map[string]any{"id": ld.CompanyID, "_links": f.link("/api/v4/companies/" + strconv.Itoa(ld.CompanyID))})
	}
	embedded := map[string]any{"tags": tags, "companies": companies}
	if withContacts && ld.ContactID != 0 {
		embedded["contacts"] = []map[string]any{{
			"id": ld.ContactID, "is_main": true, "_links": f.link("/api/v4/contacts/" + strconv.Itoa(ld.ContactID)),
		}}
	}
	pipeline := ld.PipelineID
	if pipeline == 0 {
		pipeline = 7000000 // the main pipeline
	}
	return map[string]any{
		"id": ld.ID, "name": ld.Name, "price": 0, "responsible_user_id": ld.ResponsibleUserID, "group_id": 0,
		"status_id": mainStatusID, "pipeline_id": pipeline, "loss_reason_id": nil, "created_by": 0, "updated_by": 0,
		"created_at": cmp.Or(ld.CreatedAt, 1744709400), "updated_at": 1744709400, "closed_at": nil, "closest_task_at": nil,
		"is_deleted": false, "custom_fields_values": cfv, "score": nil, "account_id": accountID, "labor_cost": nil,
		"_links": f.link("/api/v4/leads/" + strconv.Itoa(ld.ID)), "_embedded": embedded,
	}
}

// searchLeads is GET /api/v4/leads?query=…: a full-text search that, like
// amoCRM's, matches substrings of the name and of custom field values.
func (f *fakeAmo) searchLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := q.Get("query")
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 50
	}
	limit = min(limit, 250, f.pageSize)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	var matched []*fakeLead
	for _, ld := range f.leads {
		hit := query == "" || strings.Contains(ld.Name, query)
		for _, v := range ld.Fields {
			hit = hit || strings.Contains(v, query)
		}
		if hit {
			matched = append(matched, ld)
		}
	}
	slices.SortFunc(matched, func(a, b *fakeLead) int { return a.ID - b.ID })
	start := (page - 1) * limit
	if start >= len(matched) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	end := min(start+limit, len(matched))
	items := []map[string]any{}
	for _, ld := range matched[start:end] {
		items = append(items, f.leadJSON(ld, false))
	}
	f.searchHits += len(items)
	links := f.link("/api/v4/leads?page=" + strconv.Itoa(page) + "&limit=" + strconv.Itoa(limit))
	if end < len(matched) {
		links["next"] = map[string]any{"href": f.URL + "/api/v4/leads?page=" + strconv.Itoa(page+1) + "&limit=" + strconv.Itoa(limit)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"_page": page, "_links": links, "_embedded": map[string]any{"leads": items}})
}

// The request shapes the fake accepts, declared apart from the driver's so
// that the fake checks the wire format rather than echoing the driver.
type (
	inValue struct {
		Value    string `json:"value"`
		EnumCode string `json:"enum_code"`
	}
	inField struct {
		FieldID   int       `json:"field_id"`
		FieldCode string    `json:"field_code"`
		Values    []inValue `json:"values"`
	}
	inContact struct {
		Name               string    `json:"name"`
		FirstName          string    `json:"first_name"`
		CustomFieldsValues []inField `json:"custom_fields_values"`
	}
	inLead struct {
		Name               string    `json:"name"`
		PipelineID         int       `json:"pipeline_id"`
		ResponsibleUserID  int       `json:"responsible_user_id"`
		CustomFieldsValues []inField `json:"custom_fields_values"`
		Embedded           struct {
			Tags []struct {
				Name string `json:"name"`
			} `json:"tags"`
			Contacts  []inContact `json:"contacts"`
			Companies []struct {
				Name string `json:"name"`
			} `json:"companies"`
		} `json:"_embedded"`
	}
	inNote struct {
		NoteType string `json:"note_type"`
		Params   struct {
			Text string `json:"text"`
		} `json:"params"`
	}
)

func readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeProblem(w, http.StatusBadRequest, map[string]any{"detail": "Request body is not valid JSON"})
		return nil, false
	}
	return body, true
}

// validationError answers like amoCRM when a value is not acceptable; its
// detail echoes what was sent, as amoCRM's sometimes does.
func validationError(w http.ResponseWriter, path, echoed string) {
	writeProblem(w, http.StatusBadRequest, map[string]any{
		"detail": "Request validation failed",
		"validation-errors": []map[string]any{{
			"request_id": "0",
			"errors": []map[string]any{{
				"code": "NotSupportedChoice", "path": path,
				"detail": "The value you selected is not a valid choice: " + echoed,
			}},
		}},
	})
}

// addComplex is POST /api/v4/leads/complex.
func (f *fakeAmo) addComplex(w http.ResponseWriter, r *http.Request) {
	var in []inLead
	body, ok := readJSON(w, r, &in)
	if !ok {
		return
	}
	for _, l := range in {
		for i, cf := range l.CustomFieldsValues {
			if _, known := f.leadFields[cf.FieldID]; !known {
				echo := ""
				if len(l.Embedded.Contacts) > 0 {
					echo = l.Embedded.Contacts[0].Name
				}
				validationError(w, "custom_fields_values."+strconv.Itoa(i)+".field_id", echo)
				return
			}
		}
		if len(l.Embedded.Contacts) > 1 || len(l.Embedded.Companies) > 1 {
			writeProblem(w, http.StatusBadRequest, map[string]any{"detail": "At most one contact and one company per lead"})
			return
		}
	}
	f.complex = append(f.complex, body)
	var out []map[string]any
	for i, l := range in {
		if dup := f.duplicateOf(l); dup != nil {
			if f.mergeFields {
				for _, cf := range l.CustomFieldsValues {
					if len(cf.Values) > 0 {
						dup.Fields[cf.FieldID] = cf.Values[0].Value
					}
				}
			}
			out = append(out, map[string]any{"id": dup.ID, "contact_id": dup.ContactID, "company_id": nil,
				"request_id": []string{strconv.Itoa(i)}, "merged": true})
			continue
		}
		ld := &fakeLead{ID: f.id(), Name: l.Name, PipelineID: l.PipelineID, ResponsibleUserID: l.ResponsibleUserID, Fields: map[int]string{}}
		for _, cf := range l.CustomFieldsValues {
			if len(cf.Values) > 0 {
				ld.Fields[cf.FieldID] = cf.Values[0].Value
			}
		}
		for _, tg := range l.Embedded.Tags {
			ld.Tags = append(ld.Tags, tg.Name)
		}
		res := map[string]any{"id": ld.ID, "contact_id": nil, "company_id": nil, "request_id": []string{strconv.Itoa(i)}, "merged": false}
		if len(l.Embedded.Contacts) == 1 {
			ct := &fakeContact{ID: f.id()}
			applyContact(ct, l.Embedded.Contacts[0])
			f.contacts[ct.ID] = ct
			ld.ContactID = ct.ID
			res["contact_id"] = ct.ID
		}
		if len(l.Embedded.Companies) == 1 {
			co := &fakeCompany{ID: f.id(), Name: l.Embedded.Companies[0].Name}
			f.companies[co.ID] = co
			ld.CompanyID = co.ID
			res["company_id"] = co.ID
		}
		f.leads[ld.ID] = ld
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, out)
}

// duplicateOf is the lead duplicate control would merge l into: one whose
// contact shares a phone or email with l's contact. nil when the control is
// off or nothing matches.
func (f *fakeAmo) duplicateOf(l inLead) *fakeLead {
	if !f.dupControl || len(l.Embedded.Contacts) == 0 {
		return nil
	}
	var in fakeContact
	applyContact(&in, l.Embedded.Contacts[0])
	ids := make([]int, 0, len(f.leads))
	for id := range f.leads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		ct, ok := f.contacts[f.leads[id].ContactID]
		if !ok {
			continue
		}
		for _, v := range append(in.Phones, in.Emails...) {
			if slices.Contains(ct.Phones, v) || slices.Contains(ct.Emails, v) {
				return f.leads[id]
			}
		}
	}
	return nil
}

// applyContact writes a contact's fields as amoCRM does: name or first_name,
// and each PHONE or EMAIL field sent replaces all its values.
func applyContact(ct *fakeContact, in inContact) {
	if in.Name != "" {
		ct.Name = in.Name
	} else if in.FirstName != "" {
		ct.Name = in.FirstName
	}
	for _, cf := range in.CustomFieldsValues {
		var vals []fakeValue
		for _, v := range cf.Values {
			vals = append(vals, fakeValue(v))
		}
		switch cf.FieldCode {
		case "PHONE":
			ct.Phones = vals
		case "EMAIL":
			ct.Emails = vals
		}
	}
}

func pathID(r *http.Request) int {
	id, _ := strconv.Atoi(r.PathValue("id"))
	return id
}

// getLead is GET /api/v4/leads/{id}; with=contacts adds the contacts. amoCRM
// answers 204 for an id it does not have.
func (f *fakeAmo) getLead(w http.ResponseWriter, r *http.Request) {
	ld, ok := f.leads[pathID(r)]
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, f.leadJSON(ld, slices.Contains(strings.Split(r.URL.Query().Get("with"), ","), "contacts")))
}

func (f *fakeAmo) patchLead(w http.ResponseWriter, r *http.Request) {
	ld, ok := f.leads[pathID(r)]
	if !ok {
		writeProblem(w, http.StatusNotFound, nil)
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	if in.Name != "" {
		ld.Name = in.Name
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": ld.ID, "updated_at": 1744709500, "_links": f.link("/api/v4/leads/" + strconv.Itoa(ld.ID))})
}

func (f *fakeAmo) patchContact(w http.ResponseWriter, r *http.Request) {
	ct, ok := f.contacts[pathID(r)]
	if !ok {
		writeProblem(w, http.StatusNotFound, nil)
		return
	}
	var in inContact
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	applyContact(ct, in)
	writeJSON(w, http.StatusOK, map[string]any{"id": ct.ID, "name": ct.Name, "updated_at": 1744709500, "_links": f.link("/api/v4/contacts/" + strconv.Itoa(ct.ID))})
}

func (f *fakeAmo) patchCompany(w http.ResponseWriter, r *http.Request) {
	co, ok := f.companies[pathID(r)]
	if !ok {
		writeProblem(w, http.StatusNotFound, nil)
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	co.Name = in.Name
	writeJSON(w, http.StatusOK, map[string]any{"id": co.ID, "name": co.Name, "updated_at": 1744709500, "_links": f.link("/api/v4/companies/" + strconv.Itoa(co.ID))})
}

func (f *fakeAmo) noteJSON(n *fakeNote) map[string]any {
	return map[string]any{
		"id": n.ID, "entity_id": n.LeadID, "created_by": 0, "updated_by": 0, "created_at": 1744709400,
		"updated_at": 1744709400, "responsible_user_id": 0, "group_id": 0, "note_type": n.Type,
		"params": map[string]any{"text": n.Text}, "account_id": accountID,
		"_links": f.link("/api/v4/leads/" + strconv.Itoa(n.LeadID) + "/notes/" + strconv.Itoa(n.ID)),
	}
}

// listNotes is GET /api/v4/leads/{id}/notes with filter[note_type][] and
// order[id]; 204 when no note matches.
func (f *fakeAmo) listNotes(w http.ResponseWriter, r *http.Request) {
	leadID := pathID(r)
	types := r.URL.Query()["filter[note_type][]"]
	var items []map[string]any
	for _, n := range f.notes { // stored in id order
		if n.LeadID == leadID && (len(types) == 0 || slices.Contains(types, n.Type)) {
			items = append(items, f.noteJSON(n))
		}
	}
	if r.URL.Query().Get("order[id]") == "desc" {
		slices.Reverse(items)
	}
	if len(items) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"_page": 1, "_links": f.link(r.URL.Path), "_embedded": map[string]any{"notes": items}})
}

// addNotes is POST /api/v4/leads/{id}/notes.
func (f *fakeAmo) addNotes(w http.ResponseWriter, r *http.Request) {
	leadID := pathID(r)
	if _, ok := f.leads[leadID]; !ok {
		writeProblem(w, http.StatusNotFound, nil)
		return
	}
	var in []inNote
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	var out []map[string]any
	for i, n := range in {
		if n.NoteType != "common" || n.Params.Text == "" {
			validationError(w, strconv.Itoa(i)+".params.text", n.Params.Text)
			return
		}
		stored := &fakeNote{ID: f.id(), LeadID: leadID, Type: n.NoteType, Text: n.Params.Text}
		f.notes = append(f.notes, stored)
		out = append(out, map[string]any{"id": stored.ID, "entity_id": leadID, "request_id": strconv.Itoa(i), "_links": f.link("/api/v4/leads/" + strconv.Itoa(leadID) + "/notes/" + strconv.Itoa(stored.ID))})
	}
	writeJSON(w, http.StatusOK, map[string]any{"_links": f.link(r.URL.Path), "_embedded": map[string]any{"notes": out}})
}

// patchNote is PATCH /api/v4/leads/notes/{id}.
func (f *fakeAmo) patchNote(w http.ResponseWriter, r *http.Request) {
	id := pathID(r)
	i := slices.IndexFunc(f.notes, func(n *fakeNote) bool { return n.ID == id })
	if i < 0 {
		writeProblem(w, http.StatusNotFound, nil)
		return
	}
	var in inNote
	if _, ok := readJSON(w, r, &in); !ok {
		return
	}
	f.notes[i].Text = in.Params.Text
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "entity_id": f.notes[i].LeadID, "updated_at": 1744709500, "_links": f.link("/api/v4/leads/notes/" + strconv.Itoa(id))})
}
