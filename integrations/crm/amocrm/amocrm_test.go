package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

const testLeadID = "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e"

func legalLead() crm.Lead {
	at := time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)
	return crm.Lead{
		ID:         testLeadID,
		EntityType: "legal_entity",
		Name:       "Test Testov",
		Phone:      "+77010000000",
		Email:      "test@example.com",
		TaxID:      "000000000000",
		Products:   []string{"acquiring", "payment_links"},
		Message:    "We would like to accept cards online.",
		Lang:       "ru",
		ReceivedAt: at,
		Consent:    crm.Consent{Processing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy", GivenAt: at},
		Metadata:   crm.Metadata{IP: "203.0.113.7"},
		Assignment: &crm.Assignment{Rule: "default", Team: "sales", Owner: "Test Manager", CRMUserID: "5550001"},
		Risk:       crm.Risk{Score: 12, Signals: []string{"new_domain"}},
	}
}

func soleLead() crm.Lead {
	l := legalLead()
	l.ID = "01964c2e-7b1a-7cc3-9f7e-000000000002"
	l.EntityType = "sole_proprietor"
	l.Products = nil
	l.Message = ""
	l.Lang = "kk"
	l.Consent.Marketing = true
	l.Assignment = &crm.Assignment{Owner: "Test Manager", CRMUserID: "test.manager"}
	l.Risk = crm.Risk{}
	return l
}

func newClient(t *testing.T, f *fakeAmo, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: f.URL, Token: testToken, LeadIDFieldID: leadIDField}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, integrations.NewHTTPClient(5*time.Second))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// assertJSON fails unless got and want are the same JSON value.
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

// assertClean fails if err's text holds a secret, a URL or personal data.
func assertClean(t *testing.T, f *fakeAmo, err error) {
	t.Helper()
	msg := err.Error()
	for _, s := range []string{testToken, f.URL, strings.TrimPrefix(f.URL, "http://"), "Test Testov", "test@example.com", "+7701", "000000000000", "Неверный"} {
		if strings.Contains(msg, s) {
			t.Errorf("error %q contains %q", msg, s)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	valid := Config{BaseURL: "https://example.amocrm.ru", Token: testToken, LeadIDFieldID: leadIDField}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"empty base URL", func(c *Config) { c.BaseURL = "" }},
		{"relative base URL", func(c *Config) { c.BaseURL = "example.amocrm.ru" }},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://example.amocrm.ru" }},
		{"base URL with path", func(c *Config) { c.BaseURL = "https://example.amocrm.ru/api/v4" }},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://example.amocrm.ru/?a=b" }},
		{"base URL with user info", func(c *Config) { c.BaseURL = "https://user:" + testToken + "@example.amocrm.ru" }},
		{"empty token", func(c *Config) { c.Token = "" }},
		{"token with newline", func(c *Config) { c.Token = testToken + "\r\nX-Injected: 1" }},
		{"token with space", func(c *Config) { c.Token = "Bearer " + testToken }},
		{"negative pipeline", func(c *Config) { c.PipelineID = -1 }},
		{"no lead id field", func(c *Config) { c.LeadIDFieldID = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.edit(&cfg)
			c, err := New(cfg, nil)
			if !errors.Is(err, ErrConfig) || c != nil {
				t.Fatalf("New = %v, %v; want ErrConfig", c, err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
	t.Run("trailing slash and nil client", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		c, err := New(Config{BaseURL: f.URL + "/", Token: testToken, LeadIDFieldID: leadIDField}, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		rc, err := c.Push(context.Background(), legalLead())
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
		if want := f.URL + "/leads/detail/" + rc.Ref; rc.URL != want {
			t.Errorf("URL = %q, want %q", rc.URL, want)
		}
	})
}

func TestPushCreatesLead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lead     crm.Lead
		pipeline int
		body     string
		note     string
		company  bool
	}{
		{
			name:     "legal entity",
			lead:     legalLead(),
			pipeline: 7001000,
			body: `[{"name":"Legal entity · Test Testov · acquiring, payment_links","pipeline_id":7001000,"responsible_user_id":5550001,
				"custom_fields_values":[{"field_id":771001,"values":[{"value":"01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e"}]}],
				"_embedded":{
					"tags":[{"name":"leadgate"},{"name":"acquiring"},{"name":"payment_links"},{"name":"legal_entity"}],
					"contacts":[{"name":"Test Testov","custom_fields_values":[
						{"field_code":"PHONE","values":[{"value":"+77010000000","enum_code":"WORK"}]},
						{"field_code":"EMAIL","values":[{"value":"test@example.com","enum_code":"WORK"}]}]}],
					"companies":[{"name":"Test Testov"}]}}]`,
			note: "leadgate request 01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e\n" +
				"Type: Legal entity\n" +
				"BIN/IIN: 000000000000\n" +
				"Products: acquiring, payment_links\n" +
				"Answer in: ru\n" +
				"Received: 2025-04-15T09:30:00Z\n" +
				"Consent: processing of personal data under privacy policy 1 (https://example.com/privacy), given 2025-04-15T09:30:00Z; marketing opt-in: no\n" +
				"Risk: 12/100 (new_domain)\n" +
				"\n" +
				"Message:\n" +
				"We would like to accept cards online.",
			company: true,
		},
		{
			// Main pipeline, a CRM user id that is not amoCRM's, no
			// products, no message, no company.
			name: "sole proprietor",
			lead: soleLead(),
			body: `[{"name":"Sole proprietor · Test Testov",
				"custom_fields_values":[{"field_id":771001,"values":[{"value":"01964c2e-7b1a-7cc3-9f7e-000000000002"}]}],
				"_embedded":{
					"tags":[{"name":"leadgate"},{"name":"sole_proprietor"}],
					"contacts":[{"name":"Test Testov","custom_fields_values":[
						{"field_code":"PHONE","values":[{"value":"+77010000000","enum_code":"WORK"}]},
						{"field_code":"EMAIL","values":[{"value":"test@example.com","enum_code":"WORK"}]}]}]}}]`,
			note: "leadgate request 01964c2e-7b1a-7cc3-9f7e-000000000002\n" +
				"Type: Sole proprietor\n" +
				"BIN/IIN: 000000000000\n" +
				"Answer in: kk\n" +
				"Received: 2025-04-15T09:30:00Z\n" +
				"Consent: processing of personal data under privacy policy 1 (https://example.com/privacy), given 2025-04-15T09:30:00Z; marketing opt-in: yes\n" +
				"Risk: 0/100",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := newClient(t, f, func(cfg *Config) { cfg.PipelineID = tt.pipeline })
			rc, err := c.Push(context.Background(), tt.lead)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}

			bodies := f.complexBodies()
			if len(bodies) != 1 {
				t.Fatalf("%d complex requests, want 1", len(bodies))
			}
			assertJSON(t, bodies[0], tt.body)

			leads, contacts, companies, notes := f.state()
			if len(leads) != 1 {
				t.Fatalf("%d leads, want 1", len(leads))
			}
			ld := leads[0]
			want := crm.Receipt{System: "amocrm", Ref: strconv.Itoa(ld.ID), URL: f.URL + "/leads/detail/" + strconv.Itoa(ld.ID)}
			if rc != want {
				t.Errorf("Receipt = %+v, want %+v", rc, want)
			}
			if ld.Fields[leadIDField] != tt.lead.ID {
				t.Errorf("lead id field = %q, want %q", ld.Fields[leadIDField], tt.lead.ID)
			}
			ct := contacts[ld.ContactID]
			wantContact := fakeContact{
				ID: ld.ContactID, Name: "Test Testov",
				Phones: []fakeValue{{"+77010000000", "WORK"}}, Emails: []fakeValue{{"test@example.com", "WORK"}},
			}
			if !reflect.DeepEqual(ct, wantContact) {
				t.Errorf("contact = %+v, want %+v", ct, wantContact)
			}
			wantCompanies := 0
			if tt.company {
				wantCompanies = 1
			}
			if len(companies) != wantCompanies || (tt.company && companies[ld.CompanyID].Name != "Test Testov") {
				t.Errorf("companies = %+v, want %d named Test Testov", companies, wantCompanies)
			}
			if len(notes) != 1 || notes[0].LeadID != ld.ID || notes[0].Type != "common" || notes[0].Text != tt.note {
				t.Errorf("notes = %+v, want one on lead %d with text\n%s", notes, ld.ID, tt.note)
			}
			// A new lead needs no look at its notes.
			wantLog := []string{"GET /api/v4/leads", "POST /api/v4/leads/complex", "POST /api/v4/leads/" + rc.Ref + "/notes"}
			if got := f.requestLog(); !slices.Equal(got, wantLog) {
				t.Errorf("requests = %q, want %q", got, wantLog)
			}
		})
	}
}

func TestPushWithoutID(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	l := legalLead()
	l.ID = ""
	_, err := newClient(t, f, nil).Push(context.Background(), l)
	if integrations.KindOf(err) != integrations.Permanent {
		t.Fatalf("Push = %v, want a Permanent error", err)
	}
	if got := f.requestLog(); len(got) != 0 {
		t.Errorf("requests = %q, want none", got)
	}
}

// TestPushRetryAfterCrash is the crash between "amoCRM accepted" and "we
// recorded it": the retried Push finds the lead by its custom field and
// adds nothing.
func TestPushRetryAfterCrash(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := newClient(t, f, nil)
	first, err := c.Push(context.Background(), legalLead())
	if err != nil {
		t.Fatalf("first Push: %v", err)
	}
	before := len(f.requestLog())
	second, err := c.Push(context.Background(), legalLead())
	if err != nil {
		t.Fatalf("second Push: %v", err)
	}
	if second != first {
		t.Errorf("second Receipt = %+v, first %+v", second, first)
	}
	leads, contacts, companies, notes := f.state()
	if len(leads) != 1 || len(contacts) != 1 || len(companies) != 1 || len(notes) != 1 {
		t.Errorf("%d leads, %d contacts, %d companies, %d notes; want one each", len(leads), len(contacts), len(companies), len(notes))
	}
	wantLog := []string{"GET /api/v4/leads", "GET /api/v4/leads/" + first.Ref + "/notes"}
	if got := f.requestLog()[before:]; !slices.Equal(got, wantLog) {
		t.Errorf("retry requests = %q, want %q", got, wantLog)
	}
}

// TestPushNoteFailed: the lead was created but adding its note failed. The
// lead must not be lost to a retry that could create a second one, so Push
// reports it pushed; the next Push finds the lead, sees the note is missing
// and adds it, and a Push after that adds nothing.
func TestPushNoteFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// The timeout of the client making the first Push; its note call
		// hangs (for 10 s) when set. The Push's other calls are healthy and
		// must fit in it on a busy machine, so it is not short.
		timeout time.Duration
		status  int // the note call's answer otherwise
	}{
		{name: "429", status: http.StatusTooManyRequests},
		{name: "500", status: http.StatusInternalServerError},
		{name: "timeout", timeout: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := newClient(t, f, nil)
			initial := c // the client of the first Push
			if tt.timeout != 0 {
				var err error
				if initial, err = New(Config{BaseURL: f.URL, Token: testToken, LeadIDFieldID: leadIDField}, integrations.NewHTTPClient(tt.timeout)); err != nil {
					t.Fatal(err)
				}
			}
			var failed atomic.Bool
			f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/notes") || failed.Swap(true) {
					return false
				}
				if tt.timeout != 0 {
					// The server notices the client hang up only once
					// the body is read.
					_, _ = io.Copy(io.Discard, r.Body)
					select {
					case <-r.Context().Done():
					case <-time.After(10 * time.Second):
					}
					return true
				}
				writeProblem(w, tt.status, nil)
				return true
			})

			first, err := initial.Push(context.Background(), legalLead())
			if err != nil {
				t.Fatalf("first Push = %v, want the created lead's Receipt", err)
			}
			if !failed.Load() {
				t.Fatal("the note call was not failed; the test proves nothing")
			}
			leads, _, _, notes := f.state()
			if len(leads) != 1 || len(notes) != 0 {
				t.Fatalf("after the failed note: %d leads, %d notes; want 1, 0", len(leads), len(notes))
			}
			if want := c.receipt(leads[0].ID); first != want {
				t.Errorf("first Receipt = %+v, want %+v", first, want)
			}

			// Meanwhile a salesperson wrote a note of their own.
			f.mu.Lock()
			f.notes = append(f.notes, &fakeNote{ID: f.id(), LeadID: leads[0].ID, Type: "common", Text: "Called, no answer"})
			f.mu.Unlock()
			before := len(f.requestLog())
			for i := range 2 {
				rc, err := c.Push(context.Background(), legalLead())
				if err != nil {
					t.Fatalf("Push %d: %v", i+2, err)
				}
				if rc != first {
					t.Errorf("Push %d Receipt = %+v, want %+v", i+2, rc, first)
				}
			}
			leads, _, _, notes = f.state()
			if len(leads) != 1 || len(notes) != 2 || notes[1].LeadID != leads[0].ID || notes[1].Text != noteText(legalLead()) {
				t.Fatalf("%d leads, notes %+v; want one lead, the salesperson's note and ours", len(leads), notes)
			}
			wantLog := []string{
				"GET /api/v4/leads", "GET /api/v4/leads/" + first.Ref + "/notes", "POST /api/v4/leads/" + first.Ref + "/notes",
				"GET /api/v4/leads", "GET /api/v4/leads/" + first.Ref + "/notes",
			}
			if got := f.requestLog()[before:]; !slices.Equal(got, wantLog) {
				t.Errorf("later requests = %q, want %q", got, wantLog)
			}
		})
	}
}

// TestPushNoteFailedOnFoundLead: when the lead already existed, nothing is
// lost by reporting the note's failure, and the retry adds it.
func TestPushNoteFailedOnFoundLead(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	id := f.addLead("Legal entity · Test Testov", map[int]string{leadIDField: testLeadID})
	c := newClient(t, f, nil)
	var failed atomic.Bool
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/notes") || failed.Swap(true) {
			return false
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	_, err := c.Push(context.Background(), legalLead())
	var e *integrations.Error
	if !errors.As(err, &e) || e.Kind != integrations.RateLimited || e.Op != "notes.add" {
		t.Fatalf("Push = %v, want RateLimited notes.add", err)
	}
	rc, err := c.Push(context.Background(), legalLead())
	if err != nil {
		t.Fatalf("retry Push: %v", err)
	}
	if rc.Ref != strconv.Itoa(id) {
		t.Errorf("Ref = %q, want %d", rc.Ref, id)
	}
	if leads, _, _, notes := f.state(); len(leads) != 1 || len(notes) != 1 || notes[0].LeadID != id {
		t.Errorf("%d leads, notes %+v; want the one lead with our note", len(leads), notes)
	}
}

// TestPushIgnoresNearMatches: amoCRM's query matches substrings and any
// field, so a lead it returns is only ours when the leadgate-id field holds
// exactly our id.
func TestPushIgnoresNearMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		title  string
		fields map[int]string
	}{
		{"longer value in the id field", "Other request", map[int]string{leadIDField: testLeadID + "-2"}},
		{"id in another field", "Other request", map[int]string{commentField: testLeadID}},
		{"id in the name", "Re " + testLeadID, nil},
		{"id field of another lead", "Other request", map[int]string{leadIDField: "01964c2e-0000-7000-8000-000000000000", commentField: "see " + testLeadID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			decoy := f.addLead(tt.title, tt.fields)
			rc, err := newClient(t, f, nil).Push(context.Background(), legalLead())
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if f.hits() == 0 {
				t.Fatal("the search did not return the decoy; the test proves nothing")
			}
			if rc.Ref == strconv.Itoa(decoy) {
				t.Fatalf("Push took lead %d, whose custom field is not our id", decoy)
			}
			if leads, _, _, _ := f.state(); len(leads) != 2 {
				t.Errorf("%d leads, want the decoy and a new one", len(leads))
			}
		})
	}
}

func TestPushSearchPages(t *testing.T) {
	t.Parallel()
	t.Run("found on the second page", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.pageSize = 2
		for range 3 {
			f.addLead("Other request", map[int]string{commentField: testLeadID})
		}
		ours := f.addLead("Legal entity · Test Testov", map[int]string{leadIDField: testLeadID})
		f.mu.Lock()
		f.notes = append(f.notes, &fakeNote{ID: 1, LeadID: ours, Type: "common", Text: noteText(legalLead())})
		f.mu.Unlock()
		rc, err := newClient(t, f, nil).Push(context.Background(), legalLead())
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
		if rc.Ref != strconv.Itoa(ours) {
			t.Errorf("Ref = %q, want %d", rc.Ref, ours)
		}
		wantLog := []string{"GET /api/v4/leads", "GET /api/v4/leads", "GET /api/v4/leads/" + rc.Ref + "/notes"}
		if got := f.requestLog(); !slices.Equal(got, wantLog) {
			t.Errorf("requests = %q, want %q", got, wantLog)
		}
	})
	t.Run("too many matches", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.pageSize = 2
		for range 2*maxSearchPages + 1 {
			f.addLead("Other request", map[int]string{commentField: testLeadID})
		}
		_, err := newClient(t, f, nil).Push(context.Background(), legalLead())
		var e *integrations.Error
		if !errors.As(err, &e) || e.Kind != integrations.Permanent || e.Code != "too many search matches" {
			t.Fatalf("Push = %v, want Permanent too many search matches", err)
		}
		if n := len(f.complexBodies()); n != 0 {
			t.Errorf("%d leads created, want none", n)
		}
	})
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	// answer makes the fake reply to the first request (the search) with
	// status, headers and body.
	answer := func(status int, header map[string]string, body string) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return true
		}
	}
	problem := func(status int) string {
		return `{"title":"` + http.StatusText(status) + `","type":"https://httpstatus.es/` + strconv.Itoa(status) +
			`","status":` + strconv.Itoa(status) + `,"detail":"Test Testov +77010000000"}`
	}
	tests := []struct {
		name      string
		token     string // when set, the client's token instead of the right one
		fieldID   int    // when set, Config.LeadIDFieldID
		intercept func(w http.ResponseWriter, r *http.Request) bool
		kind      integrations.Kind
		status    int
		code      string
		wait      time.Duration
	}{
		{name: "401 wrong token", token: "wrong-token-0000", kind: integrations.Permanent, status: 401},
		{name: "402 unpaid account", intercept: answer(402, nil, problem(402)), kind: integrations.Permanent, status: 402},
		{name: "403 forbidden", intercept: answer(403, nil, problem(403)), kind: integrations.Permanent, status: 403},
		{name: "429 without Retry-After", intercept: answer(429, nil, ""), kind: integrations.RateLimited, status: 429, wait: time.Second},
		{name: "429 with Retry-After", intercept: answer(429, map[string]string{"Retry-After": "3"}, ""), kind: integrations.RateLimited, status: 429, wait: 3 * time.Second},
		{name: "500", intercept: answer(500, nil, problem(500)), kind: integrations.Temporary, status: 500},
		{name: "502 HTML from a proxy", intercept: answer(502, map[string]string{"Content-Type": "text/html"}, "<html>Bad Gateway</html>"), kind: integrations.Temporary, status: 502},
		{name: "503 without Retry-After", intercept: answer(503, nil, ""), kind: integrations.Temporary, status: 503},
		{name: "200 with a body that is not JSON", intercept: answer(200, nil, "<html>login</html>"), kind: integrations.Temporary, status: 200, code: "unreadable response"},
		{name: "400 unknown custom field", fieldID: 999999, kind: integrations.Permanent, status: 400, code: "NotSupportedChoice"},
		{
			name:      "400 whose code looks like data",
			intercept: answer(400, nil, `{"title":"Bad Request","status":400,"validation-errors":[{"request_id":"0","errors":[{"code":"+77010000000","path":"x"}]}]}`),
			kind:      integrations.Permanent, status: 400, code: "Bad Request",
		},
		{name: "400 without a body", intercept: answer(400, nil, ""), kind: integrations.Permanent, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.setIntercept(tt.intercept)
			c := newClient(t, f, func(cfg *Config) {
				if tt.token != "" {
					cfg.Token = tt.token
				}
				if tt.fieldID != 0 {
					cfg.LeadIDFieldID = tt.fieldID
				}
			})
			_, err := c.Push(context.Background(), legalLead())
			var e *integrations.Error
			if !errors.As(err, &e) {
				t.Fatalf("Push = %v, want an *integrations.Error", err)
			}
			if e.System != "amocrm" || e.Kind != tt.kind || e.Status != tt.status || e.Code != tt.code || e.RetryAfter != tt.wait {
				t.Errorf("error = %+v, want kind %v status %d code %q wait %v", e, tt.kind, tt.status, tt.code, tt.wait)
			}
			assertClean(t, f, err)
			if strings.Contains(err.Error(), "wrong-token") {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	for _, at := range []string{"GET /api/v4/leads", "POST /api/v4/leads/complex"} {
		for _, status := range []int{301, 302, 303, 307, 308} {
			t.Run(fmt.Sprintf("%s %d", at, status), func(t *testing.T) {
				t.Parallel()
				f := newFake(t)
				// The first request to at is sent on to the same address (an
				// account that moved domains answers so); a client that
				// followed would repeat it (307, 308: the lead gets created
				// and taken for delivered) or turn it into a GET.
				var once sync.Once
				f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
					redirected := false
					if r.Method+" "+r.URL.Path == at {
						once.Do(func() {
							redirected = true
							http.Redirect(w, r, r.URL.Path, status)
						})
					}
					return redirected
				})
				// f.Client follows redirects, as net/http does by default;
				// New must not let it.
				c, err := New(Config{BaseURL: f.URL, Token: testToken, LeadIDFieldID: leadIDField}, f.Client())
				if err != nil {
					t.Fatal(err)
				}
				r, err := c.Push(t.Context(), legalLead())
				e, ok := errors.AsType[*integrations.Error](err)
				if !ok {
					t.Fatalf("Push = %+v, %v on HTTP %d, want an *integrations.Error", r, err, status)
				}
				if e.System != "amocrm" || e.Status != status || e.Kind != integrations.Temporary || e.Code != integrations.CodeRedirect {
					t.Errorf("error = %+v, want {Status: %d, Code: redirect, Kind: temporary}", e, status)
				}
				want := []string{"GET /api/v4/leads"}
				if at != want[0] {
					want = append(want, at)
				}
				if got := f.requestLog(); !slices.Equal(got, want) {
					t.Errorf("amoCRM got %q, want %q: the redirect was followed", got, want)
				}
				if leads, _, _, _ := f.state(); len(leads) != 0 {
					t.Errorf("amoCRM holds %d leads after a redirect, want none", len(leads))
				}
				assertClean(t, f, err)
			})
		}
	}
}

// TestPushCreateUnreadable: amoCRM answered the create without a lead id;
// whether it created one is unknown, so the error is Temporary and the retry
// searches first.
func TestPushCreateUnreadable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/api/v4/leads/complex" {
			return false
		}
		writeJSON(w, http.StatusOK, []any{})
		return true
	})
	_, err := newClient(t, f, nil).Push(context.Background(), legalLead())
	var e *integrations.Error
	if !errors.As(err, &e) || e.Kind != integrations.Temporary || e.Op != "leads.complex" || e.Code != "unreadable response" {
		t.Fatalf("Push = %v, want Temporary unreadable leads.complex", err)
	}
}

func TestResponsibleUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    *crm.Assignment
		want int
	}{
		{"no assignment", nil, 0},
		{"no CRM user", &crm.Assignment{Owner: "Test Manager"}, 0},
		{"not a number", &crm.Assignment{CRMUserID: "test.manager"}, 0},
		{"negative", &crm.Assignment{CRMUserID: "-5"}, 0},
		{"amoCRM user", &crm.Assignment{CRMUserID: "5550001"}, 5550001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := responsibleUser(tt.a); got != tt.want {
				t.Errorf("responsibleUser = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPushTimeouts(t *testing.T) {
	t.Parallel()
	hang := func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return true
	}
	t.Run("client timeout", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.setIntercept(hang)
		c, err := New(Config{BaseURL: f.URL, Token: testToken, LeadIDFieldID: leadIDField}, integrations.NewHTTPClient(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Push(context.Background(), legalLead())
		var e *integrations.Error
		if !errors.As(err, &e) || e.Kind != integrations.Temporary || e.Code != "timeout" {
			t.Fatalf("Push = %v, want a Temporary timeout", err)
		}
		assertClean(t, f, err)
	})
	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.setIntercept(hang)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := newClient(t, f, nil).Push(ctx, legalLead())
		if integrations.KindOf(err) != integrations.Temporary || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push = %v, want a Temporary error wrapping DeadlineExceeded", err)
		}
		assertClean(t, f, err)
	})
	t.Run("deadline while answered", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			// The answer starts and then stalls: the deadline cuts its body.
			w.Header().Set("Content-Type", "application/hal+json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"_links":`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := newClient(t, f, nil).Push(ctx, legalLead())
		var e *integrations.Error
		if !errors.As(err, &e) || e.Kind != integrations.Temporary || e.Code != "timeout" || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push = %v, want a Temporary timeout wrapping DeadlineExceeded", err)
		}
		assertClean(t, f, err)
	})
	t.Run("server gone", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		c := newClient(t, f, nil)
		f.Close()
		_, err := c.Push(context.Background(), legalLead())
		var e *integrations.Error
		if !errors.As(err, &e) || e.Kind != integrations.Temporary || e.Code != "network error" {
			t.Fatalf("Push = %v, want a Temporary network error", err)
		}
		assertClean(t, f, err)
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		lead    crm.Lead
		company bool
	}{
		{"legal entity", legalLead(), true},
		{"sole proprietor", soleLead(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := newClient(t, f, nil)
			rc, err := c.Push(context.Background(), tt.lead)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			fixed := tt.lead
			fixed.Name = "Test Testova"
			fixed.Phone = "+77010000001"
			fixed.Email = "test2@example.com"
			fixed.Lang = "en"
			before := len(f.requestLog())
			if err := c.Update(context.Background(), fixed, rc.Ref); err != nil {
				t.Fatalf("Update: %v", err)
			}

			leads, contacts, companies, notes := f.state()
			ld := leads[0]
			wantContact := fakeContact{
				ID: ld.ContactID, Name: "Test Testova",
				Phones: []fakeValue{{"+77010000001", "WORK"}}, Emails: []fakeValue{{"test2@example.com", "WORK"}},
			}
			if !reflect.DeepEqual(contacts[ld.ContactID], wantContact) {
				t.Errorf("contact = %+v, want %+v", contacts[ld.ContactID], wantContact)
			}
			if want := title(fixed); ld.Name != want || !strings.Contains(want, "Test Testova") {
				t.Errorf("lead name = %q, want %q", ld.Name, want)
			}
			if tt.company && companies[ld.CompanyID].Name != "Test Testova" {
				t.Errorf("company = %+v, want it renamed", companies[ld.CompanyID])
			}
			if len(notes) != 1 || notes[0].Text != noteText(fixed) || !strings.Contains(notes[0].Text, "Answer in: en") {
				t.Errorf("notes = %+v, want the one note rewritten", notes)
			}
			// The note is read first: it says whether the lead is one amoCRM
			// merged the request into, which Update must not overwrite.
			wantLog := []string{
				"GET /api/v4/leads/" + rc.Ref,
				"GET /api/v4/leads/" + rc.Ref + "/notes",
				"PATCH /api/v4/contacts/" + strconv.Itoa(ld.ContactID),
				"PATCH /api/v4/leads/" + rc.Ref,
			}
			if tt.company {
				wantLog = append(wantLog, "PATCH /api/v4/companies/"+strconv.Itoa(ld.CompanyID))
			}
			wantLog = append(wantLog, "PATCH /api/v4/leads/notes/"+strconv.Itoa(notes[0].ID))
			if got := f.requestLog()[before:]; !slices.Equal(got, wantLog) {
				t.Errorf("requests = %q, want %q", got, wantLog)
			}
		})
	}
}

// TestUpdateAddsMissingNote: a lead whose note was never added gets it.
func TestUpdateAddsMissingNote(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	id := f.addLead("Legal entity · Test Testov", map[int]string{leadIDField: testLeadID})
	if err := newClient(t, f, nil).Update(context.Background(), legalLead(), strconv.Itoa(id)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, _, _, notes := f.state(); len(notes) != 1 || notes[0].LeadID != id || notes[0].Text != noteText(legalLead()) {
		t.Errorf("notes = %+v, want the lead's note", notes)
	}
}

func TestUpdateRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup stores what the test needs and returns the ref to update.
		setup    func(f *fakeAmo) string
		code     string
		requests int
	}{
		{"ref not a number", func(*fakeAmo) string { return "lead-1" }, "invalid ref", 0},
		{"ref zero", func(*fakeAmo) string { return "0" }, "invalid ref", 0},
		{"lead gone", func(*fakeAmo) string { return "31999999" }, "lead not found", 1},
		{"lead of another request", func(f *fakeAmo) string {
			return strconv.Itoa(f.addLead("Other request", map[int]string{leadIDField: "01964c2e-0000-7000-8000-000000000000"}))
		}, "lead of another request", 2}, // the lead, then its notes: is it one the request was merged into?
		{"lead without contact", func(f *fakeAmo) string {
			id := f.addLead("Legal entity · Test Testov", map[int]string{leadIDField: testLeadID})
			f.mu.Lock()
			f.leads[id].ContactID = 0
			f.mu.Unlock()
			return strconv.Itoa(id)
		}, "lead without contact", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			ref := tt.setup(f)
			_, contactsBefore, _, _ := f.state()
			err := newClient(t, f, nil).Update(context.Background(), legalLead(), ref)
			var e *integrations.Error
			if !errors.As(err, &e) || e.Kind != integrations.Permanent || e.Code != tt.code {
				t.Fatalf("Update = %v, want Permanent %q", err, tt.code)
			}
			assertClean(t, f, err)
			if got := f.requestLog(); len(got) != tt.requests {
				t.Errorf("requests = %q, want %d", got, tt.requests)
			}
			if _, contacts, _, _ := f.state(); !reflect.DeepEqual(contacts, contactsBefore) {
				t.Errorf("contacts changed: %+v", contacts)
			}
		})
	}
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := newClient(t, f, nil)
	rc, err := c.Push(context.Background(), legalLead())
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	err = c.Update(context.Background(), legalLead(), rc.Ref)
	var e *integrations.Error
	if !errors.As(err, &e) || e.Kind != integrations.RateLimited || e.Op != "contacts.update" || e.RetryAfter != time.Second {
		t.Fatalf("Update = %v, want RateLimited contacts.update after 1s", err)
	}
	assertClean(t, f, err)
}

func TestErase(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	err := newClient(t, f, nil).Erase(context.Background(), testLeadID, "31000002")
	if !errors.Is(err, crm.ErrUnsupported) {
		t.Fatalf("Erase = %v, want crm.ErrUnsupported", err)
	}
	if got := f.requestLog(); len(got) != 0 {
		t.Errorf("requests = %q, want none", got)
	}
}

func TestTitleAndTags(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Ә", 300)
	tests := []struct {
		name  string
		lead  crm.Lead
		title string
		tags  []string
	}{
		{"no name", crm.Lead{EntityType: "legal_entity", Products: []string{"acquiring"}}, "Legal entity · acquiring", []string{"leadgate", "acquiring", "legal_entity"}},
		{"repeated and empty tags", crm.Lead{EntityType: "sole_proprietor", Name: "Test Testov", Products: []string{"acquiring", "leadgate", "acquiring", ""}},
			"Sole proprietor · Test Testov · acquiring, leadgate, acquiring, ", []string{"leadgate", "acquiring", "sole_proprietor"}},
		{"unknown entity type", crm.Lead{Name: "Test Testov"}, "Connection request · Test Testov", []string{"leadgate"}},
		{"long name", crm.Lead{EntityType: "legal_entity", Name: long}, "Legal entity · " + long[:len("Ә")*(255-len([]rune("Legal entity · "))-1)] + "…", []string{"leadgate", "legal_entity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := title(tt.lead)
			if got != tt.title {
				t.Errorf("title = %q, want %q", got, tt.title)
			}
			if n := len([]rune(got)); n > maxTitle {
				t.Errorf("title has %d characters, more than %d", n, maxTitle)
			}
			if got := tagNames(tt.lead); !slices.Equal(got, tt.tags) {
				t.Errorf("tags = %q, want %q", got, tt.tags)
			}
		})
	}
}
