package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/privacy"
)

// subjectPost makes a subject request as the privacy officer and returns
// the status and the JSON answer.
func subjectPost(t *testing.T, f httpFixture, kind, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/admin/subjects/"+kind, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+privacyToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: answer is not JSON: %v", kind, err)
	}
	return resp.StatusCode, m
}

// subjectA and subjectB are two obviously fake applicants.
func subjectA() *intake.Submission {
	return &intake.Submission{EntityType: intake.LegalEntity, Name: "Test Testov", Phone: "+77010000000",
		Email: "Test.Testov@Example.com", EmailKey: "test.testov@example.com", TaxID: "210840004064",
		Products: []string{"acquiring"}, Message: "Тестовое сообщение Тестова", Lang: "ru", ConsentMarketing: true}
}

func subjectB() *intake.Submission {
	return &intake.Submission{EntityType: intake.LegalEntity, Name: "Other Otherova", Phone: "+77010000009",
		Email: "other.otherova@example.com", EmailKey: "other.otherova@example.com",
		Products: []string{"pos"}, Message: "Сообщение Отеровой", Lang: "kk", ConsentMarketing: true}
}

// seeded is a person with two requests: one routed to Bitrix24 (acknowledged
// by mail, with a confirmed marketing opt-in and a campaign email), one
// still received, from another phone.
type seeded struct {
	person, routed, received string
	phone2                   string // the second request's phone
}

func seedSubject(t *testing.T, f httpFixture, sub *intake.Submission, phone2, crmRef, idemKey string) seeded {
	t.Helper()
	ctx := context.Background()
	app := application(sub)
	app.IdempotencyKey = idemKey
	app.Consent.GivenAt = f.clock.Now().UTC()
	first, err := f.store.Leads.Accept(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	person, _ := f.store.People.PersonOf(sub.EmailKey)
	f.clock.Add(time.Minute)
	now := f.clock.Now().UTC()
	if _, err := f.store.Leads.Transition(ctx, first.ID, intake.Transition{From: intake.Received, To: intake.Routed,
		Route:    intake.Route{System: "bitrix24", Ref: crmRef, At: now},
		Transfer: &intake.Transfer{Recipient: "crm:bitrix24", At: now, Purpose: "consider the request", Ref: crmRef}}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Leads.LogTransfer(ctx, first.ID, intake.Transfer{Recipient: "mail", At: now, Purpose: "acknowledge the request"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.store.People.ClaimSend(ctx, "ack", person, first.ID, 24*time.Hour); err != nil || !ok {
		t.Fatalf("ClaimSend = %v, %v", ok, err)
	}
	if err := f.store.People.SentTo(ctx, "ack", person, first.ID, nil); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	if ok, err := f.store.People.ConfirmMarketing(ctx, person, intake.Proof{At: f.clock.Now(), IP: "192.0.2.20", UserAgent: "confirm-agent"}); err != nil || !ok {
		t.Fatalf("ConfirmMarketing = %v, %v", ok, err)
	}
	// A campaign handed to the provider for them: their mark is the record.
	f.rdb.ZAdd(ctx, keyCampaigns, redis.Z{Score: 1, Member: "campaign-1"})
	f.rdb.HSet(ctx, campaignKey("campaign-1"), "kind", string(intake.KindCampaign), "started", f.clock.Now().UnixMilli())
	markSent(t, f.rdb, "campaign-1", person)
	f.clock.Add(time.Minute)
	second := *sub
	second.Phone, second.EntityType, second.ConsentMarketing = phone2, intake.SoleProprietor, false
	app = application(&second)
	app.Consent.GivenAt = f.clock.Now().UTC()
	adm, err := f.store.Leads.Accept(ctx, app)
	if err != nil || adm.Duplicate {
		t.Fatalf("second request = %+v, %v", adm, err)
	}
	return seeded{person: person, routed: first.ID, received: adm.ID, phone2: phone2}
}

var referencePattern = regexp.MustCompile(`^SR-\d{8}-[0-9A-F]{6}$`)

// checkRequestFields checks what every subject answer carries.
func checkRequestFields(t *testing.T, body map[string]any, kind string) {
	t.Helper()
	ref, _ := body["reference"].(string)
	if !referencePattern.MatchString(ref) || body["kind"] != kind || body["received_at"] == nil || body["due_at"] == nil {
		t.Fatalf("answer lacks the request's reference, kind or dates: %v", body)
	}
	due, err := time.Parse(time.RFC3339, body["due_at"].(string))
	if err != nil || !strings.HasSuffix(body["due_at"].(string), "+05:00") {
		t.Fatalf("due_at = %v, want RFC 3339 in Almaty time", body["due_at"])
	}
	if want := privacy.DueDate(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), privacy.DefaultDue); due.Before(want) {
		t.Fatalf("due_at = %v, before %v", due, want)
	}
}

func TestSubjectExport(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	a := seedSubject(t, f, subjectA(), "+77010000003", "42", "")
	seedSubject(t, f, subjectB(), "+77010000008", "43", "")

	status, body := subjectPost(t, f, "export", `{"email":" TEST.testov@example.com "}`)
	if status != 200 {
		t.Fatalf("export = %d %v", status, body)
	}
	checkRequestFields(t, body, "export")
	if body["state"] != "closed" {
		t.Errorf("state = %v, want closed", body["state"])
	}
	people := body["people"].([]any)
	if len(people) != 1 {
		t.Fatalf("people = %d, want 1", len(people))
	}
	p := people[0].(map[string]any)
	profile := p["profile"].(map[string]any)
	if profile["email"] != "Test.Testov@Example.com" || profile["marketing"] != "active" || profile["blocked"] != false {
		t.Errorf("profile = %v", profile)
	}
	leads := p["leads"].([]any)
	if len(leads) != 2 {
		t.Fatalf("leads = %d, want 2", len(leads))
	}
	ids := []string{leads[0].(map[string]any)["id"].(string), leads[1].(map[string]any)["id"].(string)}
	if !slices.Contains(ids, a.routed) || !slices.Contains(ids, a.received) {
		t.Errorf("lead ids %v, want %s and %s", ids, a.routed, a.received)
	}
	for _, l := range leads {
		l := l.(map[string]any)
		if l["name"] != "Test Testov" || l["tax_id"] != "210840004064" || l["consent"].(map[string]any)["ip"] != "192.0.2.10" {
			t.Errorf("lead = %v", l)
		}
	}
	var kinds []string
	for _, c := range p["consents"].([]any) {
		c := c.(map[string]any)
		kinds = append(kinds, c["kind"].(string))
		if c["kind"] == "marketing_confirmed" && (c["ip"] != "192.0.2.20" || c["user_agent"] != "confirm-agent") {
			t.Errorf("confirmation without its proof: %v", c)
		}
		if c["kind"] == "marketing_opt_in" && (c["ip"] != "192.0.2.10" || c["policy_version"] != "1" || c["lead"] != a.routed) {
			t.Errorf("opt-in without its proof: %v", c)
		}
	}
	if want := []string{"processing", "marketing_opt_in", "marketing_confirmed", "processing"}; !slices.Equal(kinds, want) {
		t.Errorf("consent history %v, want %v", kinds, want)
	}
	var recipients []string
	for _, tr := range p["transfers"].([]any) {
		tr := tr.(map[string]any)
		recipients = append(recipients, tr["recipient"].(string))
		if tr["lead"] != a.routed || tr["at"] == nil || tr["purpose"] == "" {
			t.Errorf("transfer = %v", tr)
		}
	}
	if !slices.Equal(recipients, []string{"crm:bitrix24", "mail"}) {
		t.Errorf("transfers to %v", recipients)
	}
	var emails []string
	for _, e := range p["emails"].([]any) {
		e := e.(map[string]any)
		ref, _ := e["ref"].(string)
		lead, _ := e["lead"].(string)
		emails = append(emails, e["kind"].(string)+" "+ref+lead)
	}
	if want := []string{"request " + a.routed, "campaign campaign-1"}; !slices.Equal(emails, want) {
		t.Errorf("emails %q, want %q", emails, want)
	}

	// By phone, typed as people do: the second request's number finds the
	// person, and with them all their requests.
	status, body = subjectPost(t, f, "export", `{"phone":"8 701 000 00 03"}`)
	if status != 200 || len(body["people"].([]any)) != 1 {
		t.Fatalf("export by phone = %d %v", status, body)
	}
	if got := body["people"].([]any)[0].(map[string]any)["leads"].([]any); len(got) != 2 {
		t.Errorf("export by phone: %d leads, want 2", len(got))
	}

	status, body = subjectPost(t, f, "export", `{"email":"nobody.testov@example.com"}`)
	if status != 404 || body["error"] != "not_found" {
		t.Fatalf("export of nobody = %d %v, want 404", status, body)
	}
	checkRequestFields(t, body, "export")
	if status, _ := subjectPost(t, f, "export", `{"phone":"+77010000005"}`); status != 404 {
		t.Errorf("export of an unknown phone = %d, want 404", status)
	}
}

func TestSubjectRequestValidation(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	for _, c := range []struct {
		kind, body string
		status     int
		field      string
	}{
		{"export", `{}`, 422, "email"},
		{"export", `{"email":"not an address"}`, 422, "email"},
		{"export", `{"email":"a@example.com, b@example.com"}`, 422, "email"},
		{"export", `{"email":"test.testov@example.com","phone":"+77010000000"}`, 422, "phone"},
		{"export", `{"phone":"12"}`, 422, "phone"},
		{"export", `{"emial":"test.testov@example.com"}`, 400, ""},
		{"export", `{"email":`, 400, ""},
		{"rectify", `{"email":"test.testov@example.com"}`, 422, "changes"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"lang":"de"}}`, 422, "changes.lang"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"phone":"12345"}}`, 422, "changes.phone"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"email":"two@example.com;three@example.com"}}`, 422, "changes.email"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"name":"` + strings.Repeat("я", 201) + `"}}`, 422, "changes.name"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"name":"a\u0007b"}}`, 422, "changes.name"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"tax_id":"210840004064"}}`, 422, "changes"},
		{"rectify", `{"email":"test.testov@example.com","changes":{"lang":5}}`, 422, "changes.lang"},
		{"withdraw", `{"email":"test.testov@example.com"}`, 422, "scope"},
		{"withdraw", `{"email":"test.testov@example.com","scope":"everything"}`, 422, "scope"},
		{"block", `{"email":""}`, 422, "email"},
		{"erase", `{"email":"test.testov@example.com","reference":"SR-20260101-000000"}`, 422, "reference"},
	} {
		status, body := subjectPost(t, f, c.kind, c.body)
		if status != c.status {
			t.Errorf("%s %s = %d %v, want %d", c.kind, c.body, status, body, c.status)
			continue
		}
		if c.field != "" {
			fields, _ := body["fields"].(map[string]any)
			if msg, _ := fields[c.field].(string); msg == "" || strings.Contains(msg, ".") && !strings.Contains(msg, " ") {
				t.Errorf("%s %s: fields %v, want a message on %s", c.kind, c.body, body["fields"], c.field)
			}
		}
		if body["reference"] != nil {
			t.Errorf("%s %s: a refused request was recorded as %v", c.kind, c.body, body["reference"])
		}
	}
	reqs, _, err := f.store.Subjects.SubjectRequests(context.Background(), intake.AllRequests, "", 100)
	if err != nil || len(reqs) != 0 {
		t.Errorf("requests recorded for invalid calls: %v, %v", reqs, err)
	}
}

func TestSubjectRectify(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	ctx := context.Background()
	a := seedSubject(t, f, subjectA(), "+77010000003", "42", "")
	b := seedSubject(t, f, subjectB(), "+77010000008", "43", "")
	oldPhone := f.keys.Index("phone", "+77010000000")

	// Another person's address is a conflict, and changes nothing.
	status, body := subjectPost(t, f, "rectify", `{"email":"test.testov@example.com","changes":{"email":"Other.Otherova@example.com"}}`)
	if status != 409 {
		t.Fatalf("rectify to another person's address = %d %v, want 409", status, body)
	}
	checkRequestFields(t, body, "rectify")
	if l, _ := f.store.Leads.Get(ctx, a.routed); l.Email != "Test.Testov@Example.com" || l.Person != a.person {
		t.Fatalf("a refused rectification changed the lead: %+v", l)
	}

	status, body = subjectPost(t, f, "rectify", `{"email":"test.testov@example.com","changes":{
		"name":"Test Testova","phone":"8 701 000 00 02","email":"Test.Testova@example.com","lang":"KK"}}`)
	if status != 200 || body["moved"] != true || body["leads"] != 2.0 || body["crm_updates"] != 1.0 {
		t.Fatalf("rectify = %d %v", status, body)
	}
	checkRequestFields(t, body, "rectify")
	newPerson, _ := f.store.People.PersonOf("test.testova@example.com")
	for _, id := range []string{a.routed, a.received} {
		l, err := f.store.Leads.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if l.Name != "Test Testova" || l.Phone != "+77010000002" || l.Email != "Test.Testova@example.com" || l.Lang != "kk" ||
			l.Person != newPerson {
			t.Errorf("rectified lead = %+v", l)
		}
	}
	if got := f.queue.crmUpdates; !slices.Equal(got, []string{a.routed}) {
		t.Errorf("CRM updates queued %v, want only the routed lead %s", got, a.routed)
	}
	// The old hash is gone everywhere; the new one holds the person, their
	// consent history still opens, their indexes moved.
	if n := f.rdb.Exists(ctx, personKey(a.person), personKey(a.person)+keyLeads, personKey(a.person)+keyConsents,
		keySentPfx+"ack:"+a.person).Val(); n != 0 {
		t.Errorf("%d keys of the old person hash remain", n)
	}
	for _, k := range []string{keyPeople, keyMarketing} {
		if f.rdb.ZScore(ctx, k, a.person).Err() != redis.Nil || f.rdb.ZScore(ctx, k, newPerson).Err() != nil {
			t.Errorf("%s not moved to the new person", k)
		}
	}
	if f.rdb.Exists(ctx, keySentPfx+"ack:"+newPerson).Val() != 1 {
		t.Error("the send claim did not move: the new address could be acknowledged again today")
	}
	sub, err := f.store.Subjects.Subject(ctx, newPerson)
	if err != nil {
		t.Fatalf("the moved person's data does not open: %v", err)
	}
	if sub.Profile.Email != "Test.Testova@example.com" || sub.Profile.Name != "Test Testova" || sub.Profile.Lang != "kk" ||
		sub.Profile.Marketing != intake.MarketingActive || len(sub.Mail) != 1 || len(sub.Leads) != 2 {
		t.Errorf("moved person = %+v", sub)
	}
	var kinds []string
	for _, c := range sub.Consents {
		kinds = append(kinds, c.Kind)
	}
	if !slices.Contains(kinds, "marketing_opt_in") || !slices.Contains(kinds, "marketing_confirmed") {
		t.Errorf("consent history after the move: %v", kinds)
	}
	if f.rdb.ZScore(ctx, keyPhonePfx+oldPhone, a.routed).Err() != redis.Nil {
		t.Error("the lead is still indexed under its old phone")
	}
	if f.rdb.ZScore(ctx, keyPhonePfx+f.keys.Index("phone", "+77010000002"), a.routed).Err() != nil {
		t.Error("the lead is not indexed under its new phone")
	}
	// The duplicate window follows the correction: the corrected request
	// sent again is a repeat, not a new lead.
	again := subjectA()
	again.Email, again.EmailKey, again.Phone = "test.testova@example.com", "test.testova@example.com", "+77010000002"
	if adm, err := f.store.Leads.Accept(ctx, application(again)); err != nil || !adm.Duplicate || adm.ID != a.routed {
		t.Errorf("repeat of the corrected request = %+v, %v; want a duplicate of %s", adm, err, a.routed)
	}
	if status, _ := subjectPost(t, f, "export", `{"email":"test.testov@example.com"}`); status != 404 {
		t.Errorf("export by the old address = %d, want 404", status)
	}
	// The other person is untouched.
	if l, err := f.store.Leads.Get(ctx, b.routed); err != nil || l.Name != "Other Otherova" || l.Phone != "+77010000009" {
		t.Errorf("other person's lead = %+v, %v", l, err)
	}

	// A name-only correction keeps the person where they are.
	status, body = subjectPost(t, f, "rectify", `{"email":"test.testova@example.com","changes":{"name":""}}`)
	if status != 200 || body["moved"] != false {
		t.Fatalf("rectify name = %d %v", status, body)
	}
	if l, _ := f.store.Leads.Get(ctx, a.received); l.Name != "" || l.Person != newPerson {
		t.Errorf("lead after clearing the name = %+v", l)
	}
}

func TestSubjectBlockAndUnblock(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	ctx := context.Background()
	a := seedSubject(t, f, subjectA(), "+77010000003", "42", "")
	b := seedSubject(t, f, subjectB(), "+77010000008", "43", "")
	state := func(id string) intake.State {
		t.Helper()
		l, err := f.store.Leads.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return l.State
	}
	indexed := func(id string, st intake.State) bool {
		return f.rdb.ZScore(ctx, stateKey(st), id).Err() == nil
	}

	status, body := subjectPost(t, f, "block", `{"email":"test.testov@example.com"}`)
	if status != 200 || body["leads_blocked"] != 2.0 {
		t.Fatalf("block = %d %v", status, body)
	}
	checkRequestFields(t, body, "block")
	for _, id := range []string{a.routed, a.received} {
		if state(id) != intake.Blocked || !indexed(id, intake.Blocked) || indexed(id, intake.Routed) || indexed(id, intake.Received) {
			t.Errorf("lead %s after block: %s", id, state(id))
		}
	}
	if f.rdb.HGet(ctx, personKey(a.person), "blocked").Val() != "1" {
		t.Error("person not flagged blocked")
	}
	if state(b.routed) != intake.Routed || state(b.received) != intake.Received {
		t.Error("blocking one person moved another's leads")
	}
	// A new request of a blocked person is stored blocked: not routed, not
	// mailed for.
	third := subjectA()
	third.Phone = "+77010000004"
	adm, err := f.store.Leads.Accept(ctx, application(third))
	if err != nil {
		t.Fatal(err)
	}
	if adm.State != intake.Blocked || state(adm.ID) != intake.Blocked || !indexed(adm.ID, intake.Blocked) || indexed(adm.ID, intake.Received) {
		t.Errorf("a blocked person's new request is %s", state(adm.ID))
	}
	if ids, _ := f.store.Leads.ReceivedBefore(ctx, f.clock.Now().Add(time.Hour), 0, 100); slices.Contains(ids, adm.ID) {
		t.Error("the sweeper would queue a blocked person's request")
	}
	// Blocking twice is harmless.
	if status, body := subjectPost(t, f, "block", `{"email":"test.testov@example.com"}`); status != 200 || body["leads_blocked"] != 0.0 {
		t.Errorf("second block = %d %v", status, body)
	}

	status, body = subjectPost(t, f, "unblock", `{"email":"test.testov@example.com"}`)
	if status != 200 || body["leads_restored"] != 3.0 || body["requeued"] != 2.0 {
		t.Fatalf("unblock = %d %v", status, body)
	}
	checkRequestFields(t, body, "unblock")
	if state(a.routed) != intake.Routed || !indexed(a.routed, intake.Routed) || indexed(a.routed, intake.Blocked) {
		t.Errorf("routed lead after unblock: %s", state(a.routed))
	}
	for _, id := range []string{a.received, adm.ID} {
		if state(id) != intake.Received || !indexed(id, intake.Received) {
			t.Errorf("lead %s after unblock: %s", id, state(id))
		}
		if !slices.Contains(f.queue.enqueued(), id) {
			t.Errorf("received lead %s not queued again", id)
		}
	}
	if slices.Contains(f.queue.enqueued(), a.routed) {
		t.Error("a routed lead was queued again")
	}
	if f.rdb.HExists(ctx, personKey(a.person), "blocked").Val() {
		t.Error("person still flagged blocked")
	}
	if status, _ := subjectPost(t, f, "block", `{"email":"nobody.testov@example.com"}`); status != 404 {
		t.Errorf("block of nobody = %d, want 404", status)
	}
}

func TestSubjectWithdraw(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	ctx := context.Background()
	a := seedSubject(t, f, subjectA(), "+77010000003", "42", "")
	b := seedSubject(t, f, subjectB(), "+77010000008", "43", "")

	status, body := subjectPost(t, f, "withdraw", `{"email":"test.testov@example.com","scope":"marketing"}`)
	if status != 200 || body["marketing_withdrawn"] != true || body["scope"] != "marketing" {
		t.Fatalf("withdraw marketing = %d %v", status, body)
	}
	checkRequestFields(t, body, "withdraw")
	if m, _ := f.store.People.Marketing(ctx, a.person); m != intake.MarketingWithdrawn {
		t.Errorf("marketing = %q, want withdrawn", m)
	}
	if l, _ := f.store.Leads.Get(ctx, a.received); l.State != intake.Received {
		t.Errorf("withdrawing marketing blocked the lead: %s", l.State)
	}
	sub, _ := f.store.Subjects.Subject(ctx, a.person)
	last := sub.Consents[len(sub.Consents)-1]
	if last.Kind != "marketing_withdrawn" || last.Source != "subject_request" {
		t.Errorf("last consent event = %+v, want a withdrawal by subject request", last)
	}

	status, body = subjectPost(t, f, "withdraw", `{"email":"other.otherova@example.com","scope":"processing"}`)
	if status != 200 || body["marketing_withdrawn"] != true || body["leads_blocked"] != 2.0 {
		t.Fatalf("withdraw processing = %d %v", status, body)
	}
	if m, _ := f.store.People.Marketing(ctx, b.person); m != intake.MarketingWithdrawn {
		t.Errorf("marketing = %q, want withdrawn", m)
	}
	for _, id := range []string{b.routed, b.received} {
		if l, _ := f.store.Leads.Get(ctx, id); l.State != intake.Blocked {
			t.Errorf("withdrawing processing left lead %s %s", id, l.State)
		}
	}
	if status, _ := subjectPost(t, f, "withdraw", `{"email":"nobody.testov@example.com","scope":"marketing"}`); status != 404 {
		t.Errorf("withdraw of nobody = %d, want 404", status)
	}
}

// dumpRedis returns every key of the database with every field, member and
// value it holds.
func dumpRedis(t *testing.T, rdb redis.UniversalClient) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		var vals []string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f+"="+v)
			}
			slices.Sort(vals)
		case "list":
			vals = rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = rdb.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					vals = append(vals, f, fmt.Sprint(v))
				}
			}
		default:
			t.Fatalf("key %s of unexpected type %s", k, typ)
		}
		out[k] = vals
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSubjectEraseRemovesEverythingOfOnePersonOnly(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	ctx := context.Background()
	// The second person shares a phone with the first one's second request
	// (a company switchboard): that index must keep their lead.
	a := seedSubject(t, f, subjectA(), "+77010000003", "42", "idem-key-a")
	b := seedSubject(t, f, subjectB(), "+77010000003", "43", "idem-key-b")
	// A campaign that reached both, and a notice list naming both.
	for _, p := range []string{a.person, b.person} {
		markSent(t, f.rdb, "campaign-1", p)
		f.rdb.ZAdd(ctx, campaignKey("notice-1")+keyCampaignTo, redis.Z{Member: p})
	}
	f.rdb.HSet(ctx, campaignKey("campaign-1"), "kind", string(intake.KindCampaign), "cursor", a.person, "retry", b.person+","+a.person)
	wantB, err := f.store.Subjects.Subject(ctx, b.person)
	if err != nil {
		t.Fatal(err)
	}
	beforeB := dumpRedis(t, f.rdb)
	aNumber, _ := f.rdb.HGet(ctx, personKey(a.person), "n").Int64()

	status, body := subjectPost(t, f, "erase", `{"email":"test.testov@example.com"}`)
	if status != 200 || body["leads_erased"] != 2.0 || body["crm_erasures"] != 1.0 {
		t.Fatalf("erase = %d %v", status, body)
	}
	checkRequestFields(t, body, "erase")
	if got, want := f.queue.crmErases, []string{a.routed + " bitrix24 42"}; !slices.Equal(got, want) {
		t.Errorf("CRM erasures queued %q, want %q", got, want)
	}

	sa := subjectA()
	forbidden := map[string]string{"person hash": a.person, "routed lead id": a.routed, "received lead id": a.received,
		"name": sa.Name, "email": sa.Email, "email key": sa.EmailKey, "phone": sa.Phone, "phone digits": "7010000000",
		"tax id": sa.TaxID, "message": sa.Message}
	after := dumpRedis(t, f.rdb)
	for k, vals := range after {
		for what, v := range forbidden {
			if strings.Contains(k, v) {
				t.Errorf("key %s holds the erased person's %s", k, what)
			}
			for _, val := range vals {
				if !strings.Contains(val, v) {
					continue
				}
				if k == keySuppressed && val == a.person+"=erased" && what == "person hash" {
					continue // the one thing that stays
				}
				t.Errorf("%s holds the erased person's %s", k, what)
			}
		}
	}
	if reason, _ := f.store.People.Suppressed(ctx, a.person); reason != "erased" {
		t.Errorf("suppression = %q, want erased", reason)
	}
	// The other person's records are all still there, as they were.
	gotB, err := f.store.Subjects.Subject(ctx, b.person)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(wantB)
	gotJSON, _ := json.Marshal(gotB)
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("the other person's data changed:\n%s\n%s", wantJSON, gotJSON)
	}
	for k, vals := range beforeB {
		if !strings.Contains(k, b.person) && !strings.Contains(k, b.routed) && !strings.Contains(k, b.received) {
			continue
		}
		if !slices.Equal(after[k], vals) {
			t.Errorf("the other person's key %s changed", k)
		}
	}
	if f.rdb.ZScore(ctx, keyPhonePfx+f.keys.Index("phone", "+77010000003"), b.received).Err() != nil {
		t.Error("the shared phone's index lost the other person's lead")
	}
	if !marked(t, f.rdb, "campaign-1", b.person) || f.rdb.GetBit(ctx, campaignKey("campaign-1")+keyCampaignMarks, aNumber).Val() != 0 ||
		f.rdb.ZScore(ctx, campaignKey("notice-1")+keyCampaignTo, b.person).Err() != nil ||
		f.rdb.HGet(ctx, campaignKey("campaign-1"), "retry").Val() != b.person {
		t.Error("the other person's campaign entries changed")
	}
	// The campaign's walk goes on from the same place: nobody left lies
	// between the new cursor and the erased person.
	if cursor := f.rdb.HGet(ctx, campaignKey("campaign-1"), "cursor").Val(); cursor == "" || cursor > a.person ||
		(b.person > cursor) != (b.person > a.person) {
		t.Errorf("campaign cursor = %q: the walk would not continue where it was", cursor)
	}

	// Nothing is held any more; a later request is a new lead, and marketing
	// needs a fresh double opt-in even where the form's tick would do.
	if status, _ := subjectPost(t, f, "export", `{"email":"test.testov@example.com"}`); status != 404 {
		t.Errorf("export after erasure = %d, want 404", status)
	}
	if status, _ := subjectPost(t, f, "erase", `{"email":"test.testov@example.com"}`); status != 404 {
		t.Errorf("second erasure = %d, want 404", status)
	}
	app := application(subjectA())
	app.DoubleOptIn = false
	adm, err := f.store.Leads.Accept(ctx, app)
	if err != nil || adm.Duplicate {
		t.Fatalf("new request after erasure = %+v, %v; want a new lead", adm, err)
	}
	if m, _ := f.store.People.Marketing(ctx, a.person); m != intake.MarketingPending {
		t.Errorf("marketing after erasure = %q, want pending (a fresh double opt-in)", m)
	}
}

func TestSubjectRequestsList(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	seedSubject(t, f, subjectA(), "+77010000003", "42", "")
	var refs []string
	for _, c := range []struct{ kind, body string }{
		{"export", `{"email":"test.testov@example.com"}`},
		{"block", `{"email":"test.testov@example.com"}`},
		{"export", `{"email":"nobody.testov@example.com"}`},
	} {
		_, body := subjectPost(t, f, c.kind, c.body)
		refs = append(refs, body["reference"].(string))
		f.clock.Add(time.Second)
	}
	list := func(query string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/admin/subjects/requests"+query, nil)
		req.Header.Set("Authorization", "Bearer "+privacyToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("list%s = %d", query, resp.StatusCode)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	body := list("")
	reqs := body["requests"].([]any)
	if len(reqs) != 3 {
		t.Fatalf("listed %d requests, want 3", len(reqs))
	}
	for i, want := range []struct{ ref, kind, outcome string }{
		{refs[2], "export", "nothing held"}, {refs[1], "block", "blocked: leads=2"}, {refs[0], "export", "exported: people=1 leads=2"},
	} {
		r := reqs[i].(map[string]any)
		if r["reference"] != want.ref || r["kind"] != want.kind || r["state"] != "closed" || r["outcome"] != want.outcome ||
			r["by"] != "p" || r["due_at"] == nil || r["received_at"] == nil || r["overdue"] != false {
			t.Errorf("request %d = %v, want %+v", i, r, want)
		}
	}
	first := list("?limit=2")
	if len(first["requests"].([]any)) != 2 || first["next_cursor"] == nil {
		t.Fatalf("first page = %v", first)
	}
	second := list("?limit=2&cursor=" + first["next_cursor"].(string))
	if rs := second["requests"].([]any); len(rs) != 1 || rs[0].(map[string]any)["reference"] != refs[0] {
		t.Errorf("second page = %v", second)
	}
	// The records name nobody: no address, no person hash.
	person, _ := f.store.People.PersonOf("test.testov@example.com")
	for k, vals := range dumpRedis(t, f.rdb) {
		if !strings.HasPrefix(k, keySubjectRequestPfx) {
			continue
		}
		for _, v := range vals {
			if strings.Contains(v, "testov") || strings.Contains(v, person) {
				t.Errorf("request record %s names the person: %q", k, v)
			}
		}
	}
}

func TestSubjectRequestFinishedByReference(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	ctx := context.Background()
	a := seedSubject(t, f, subjectA(), "+77010000003", "42", "")
	// A request left open (its work failed half-way) is finished by sending
	// it again with its reference: same reference, same dates.
	received := f.clock.Now().UTC()
	open := intake.SubjectRequest{Reference: "SR-20261124-ABCDEF", Kind: intake.SubjectBlock, ReceivedAt: received,
		DueAt: privacy.DueDate(received, 3), Subject: f.store.Subjects.SubjectKey("email", a.person), By: "p"}
	if err := f.store.Subjects.OpenSubjectRequest(ctx, open); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Subjects.OpenSubjectRequest(ctx, open); intake.ErrorCode(err) != intake.EConflict {
		t.Errorf("a taken reference = %v, want EConflict", err)
	}
	if status, body := subjectPost(t, f, "erase", `{"email":"test.testov@example.com","reference":"SR-20261124-ABCDEF"}`); status != 422 {
		t.Errorf("finishing a block as an erasure = %d %v, want 422", status, body)
	}
	status, body := subjectPost(t, f, "block", `{"email":"test.testov@example.com","reference":"SR-20261124-ABCDEF"}`)
	if status != 200 || body["reference"] != "SR-20261124-ABCDEF" || body["state"] != "closed" {
		t.Fatalf("finishing by reference = %d %v", status, body)
	}
	if status, _ := subjectPost(t, f, "block", `{"email":"test.testov@example.com","reference":"SR-20261124-ABCDEF"}`); status != 409 {
		t.Errorf("a closed request sent again = %d, want 409", status)
	}
}

func TestBlockedPersonsSubmissionIsNotQueued(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	first := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	person, _ := f.store.People.PersonOf("test@example.com")
	if _, err := f.store.People.Block(context.Background(), person); err != nil {
		t.Fatal(err)
	}
	again := strings.Replace(validJSON, "8 701 000 00 01", "8 701 000 00 09", 1) // a new request, not a duplicate
	resp := post(t, f.url, "application/json", again, nil)
	body := decode(t, resp)
	if resp.StatusCode != http.StatusAccepted || body["duplicate"] == true {
		t.Fatalf("submit: %d %v", resp.StatusCode, body)
	}
	if got := f.handedOver(t); len(got) != 1 || got[0] != first {
		t.Errorf("queued %v, want only the lead from before the block", got)
	}
}

// markSent sets person's mark in a campaign, as a send does.
func markSent(t *testing.T, rdb redis.UniversalClient, campaign, person string) {
	t.Helper()
	n, err := rdb.HGet(context.Background(), personKey(person), "n").Int64()
	if err != nil {
		t.Fatalf("person number: %v", err)
	}
	rdb.SetBit(context.Background(), campaignKey(campaign)+keyCampaignMarks, n, 1)
}

// marked reports whether person's mark in a campaign is set; false when
// the person is gone.
func marked(t *testing.T, rdb redis.UniversalClient, campaign, person string) bool {
	t.Helper()
	n, err := rdb.HGet(context.Background(), personKey(person), "n").Int64()
	if err == redis.Nil {
		return false
	} else if err != nil {
		t.Fatal(err)
	}
	return rdb.GetBit(context.Background(), campaignKey(campaign)+keyCampaignMarks, n).Val() == 1
}
