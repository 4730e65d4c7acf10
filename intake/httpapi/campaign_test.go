package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// adminJSON makes an admin call with a JSON body and decodes the answer.
func adminJSON(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestCreateCampaignValidates(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	for _, tc := range []struct{ body, want string }{
		{`{`, "bad_request"},
		{`{"name":"x","subject":{"ru":"S"},"text":{"ru":"T"},"segmnt":{}}`, "bad_request"},
		{`{"subject":{"ru":"S"},"text":{"ru":"T"}}`, "name: required"},
		{`{"name":"x","subject":{},"text":{"ru":"T"}}`, "subject: at least one language"},
		{`{"name":"x","subject":{"de":"S"},"text":{"de":"T"}}`, `"de" is not a language`},
		{`{"name":"x","subject":{"ru":"S\nBcc: x"},"text":{"ru":"T"}}`, "subject.ru: one line"},
		{`{"name":"x","subject":{"ru":"S"}}`, "html.ru: an html or text body"},
		{`{"name":"x","subject":{"ru":"S"},"text":{"ru":"T","kk":"T"}}`, "subject.kk: a body in this language needs a subject"},
		{`{"name":"x","subject":{"ru":"S"},"text":{"ru":"T"},"segment":{"entity_type":"bank"}}`, "segment.entity_type"},
		{`{"name":"x","subject":{"ru":"S"},"text":{"ru":"T"},"segment":{"products":["loans"]}}`, `"loans" is not in PRODUCT_CATALOG`},
		{`{"name":"x","subject":{"ru":"S"},"text":{"ru":"T"},"test_to":"a@example.com, b@example.com"}`, "test_to: not one email address"},
	} {
		status, body := adminJSON(t, http.MethodPost, f.url+"/v1/admin/campaigns", marketingToken, tc.body)
		got, _ := body["message"].(string)
		if status < 400 || status >= 500 || !(strings.Contains(got, tc.want) || body["error"] == tc.want) {
			t.Errorf("%s: %d %v, want 4xx naming %q", tc.body, status, body, tc.want)
		}
	}
	if len(f.queue.campaigns) != 0 {
		t.Errorf("invalid campaigns were queued: %v", f.queue.campaigns)
	}
}

func TestCampaignLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	status, body := adminJSON(t, http.MethodPost, f.url+"/v1/admin/campaigns", marketingToken,
		`{"name":"November","subject":{"ru":"Новости","kk":"Жаңалықтар"},"html":{"ru":"<p>Эквайринг</p>"},"text":{"kk":"Эквайринг"},
		  "segment":{"lang":"kk","entity_type":"sole_proprietor","products":["acquiring"]},"test_to":"test.testov@example.com"}`)
	if status != http.StatusAccepted || body["id"] == "" || body["state"] != "queued" {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["id"].(string)
	if len(f.queue.campaigns) != 1 || f.queue.campaigns[0] != id {
		t.Errorf("queued %v, want [%s]", f.queue.campaigns, id)
	}
	c, err := f.store.Campaigns.Campaign(context.Background(), id)
	if err != nil || c.TestTo != "test.testov@example.com" || c.Segment.Lang != "kk" || c.By != "m" || c.Content.HTML["ru"] != "<p>Эквайринг</p>" {
		t.Fatalf("stored %+v, %v", c, err)
	}
	raw, _ := f.rdb.HGetAll(context.Background(), campaignKey(id)).Result()
	if strings.Contains(raw["test_to"], "test.testov") {
		t.Error("the test address is stored in clear")
	}
	status, body = adminJSON(t, http.MethodGet, f.url+"/v1/admin/campaigns/"+id, marketingToken, "")
	if status != http.StatusOK || body["state"] != "queued" || body["test"] != true || body["recipients"] != 0.0 {
		t.Errorf("get: %d %v", status, body)
	}
	status, body = adminJSON(t, http.MethodPost, f.url+"/v1/admin/campaigns/"+id+"/cancel", marketingToken, "")
	if status != http.StatusOK || body["state"] != "cancelled" {
		t.Errorf("cancel: %d %v", status, body)
	}
	if err := f.store.Campaigns.FinishCampaign(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.store.Campaigns.Campaign(context.Background(), id); c.State != intake.CampaignCancelled {
		t.Errorf("a cancelled campaign became %s", c.State)
	}
	status, body = adminJSON(t, http.MethodGet, f.url+"/v1/admin/campaigns", marketingToken, "")
	if list, _ := body["campaigns"].([]any); status != http.StatusOK || len(list) != 1 {
		t.Errorf("list: %d %v", status, body)
	}
	if status, _ := adminJSON(t, http.MethodGet, f.url+"/v1/admin/campaigns/nope", marketingToken, ""); status != http.StatusNotFound {
		t.Errorf("unknown campaign: %d", status)
	}
}

func TestBreachNoticeRequest(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	for _, bad := range []string{
		`{"message":{"ru":"Утечка"}}`,
		`{"all":true,"emails":["test.testov@example.com"],"message":{"ru":"Утечка"}}`,
		`{"all":true}`,
		`{"all":true,"message":{"ru":"  "}}`,
		`{"emails":["not an address"],"message":{"ru":"Утечка"}}`,
	} {
		if status, body := adminJSON(t, http.MethodPost, f.url+"/v1/admin/breach-notices", adminToken, bad); status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %v, want 422", bad, status, body)
		}
	}
	status, body := adminJSON(t, http.MethodPost, f.url+"/v1/admin/breach-notices", adminToken,
		`{"emails":["Test.Testov@Example.com","test.testov2@example.com"],"message":{"ru":"Утечка","kk":"Ағып кету"}}`)
	if status != http.StatusAccepted {
		t.Fatalf("notice: %d %v", status, body)
	}
	id := body["id"].(string)
	to, _ := f.rdb.ZRange(context.Background(), campaignKey(id)+keyCampaignTo, 0, -1).Result()
	person, _ := f.store.People.PersonOf("test.testov@example.com")
	if len(to) != 2 || (to[0] != person && to[1] != person) {
		t.Errorf("recipients %v, want the keyed hashes incl. %s", to, person)
	}
	if status, body := adminJSON(t, http.MethodGet, f.url+"/v1/admin/breach-notices/"+id, adminToken, ""); status != http.StatusOK || body["kind"] != string(intake.KindBreachNotice) {
		t.Errorf("get: %d %v", status, body)
	}
	if status, _ := adminJSON(t, http.MethodGet, f.url+"/v1/admin/campaigns/"+id, marketingToken, ""); status != http.StatusNotFound {
		t.Errorf("a notice is visible as a campaign: %d", status)
	}
}

func TestUnsubscribeLink(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, func(o *Options) { o.DoubleOptIn = false })
	resp := post(t, f.url, "application/json", strings.Replace(validJSON, `"consent_processing":true`,
		`"consent_processing":true,"consent_marketing":true`, 1), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	person, _ := f.store.People.PersonOf("test@example.com")
	if state, _ := f.store.People.Marketing(context.Background(), person); state != intake.MarketingActive {
		t.Fatalf("consent %q before", state)
	}
	link := f.url + "/v1/unsubscribe?lang=kk&token=" + f.store.Campaigns.UnsubscribeToken(person)
	get, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if get.StatusCode != http.StatusOK || !strings.Contains(string(page), `method="post"`) {
		t.Errorf("GET: %d, want a one-button page", get.StatusCode)
	}
	if state, _ := f.store.People.Marketing(context.Background(), person); state != intake.MarketingActive {
		t.Fatalf("a GET (a link scanner) unsubscribed: %q", state)
	}
	// RFC 8058 one-click, as a mail client posts it.
	f.clock.Add(time.Minute)
	oneClick, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	oneClick.Body.Close()
	if oneClick.StatusCode != http.StatusOK {
		t.Errorf("one-click POST: %d", oneClick.StatusCode)
	}
	if state, _ := f.store.People.Marketing(context.Background(), person); state != intake.MarketingWithdrawn {
		t.Errorf("consent %q after the POST, want withdrawn", state)
	}
	if n, _ := f.rdb.ZScore(context.Background(), keyMarketing, person).Result(); n != 0 || f.rdb.ZScore(context.Background(), keyMarketing, person).Err() == nil {
		t.Error("still in the marketing index")
	}
	sub, err := f.store.Subjects.Subject(context.Background(), person)
	if err != nil {
		t.Fatal(err)
	}
	ev := sub.Consents[len(sub.Consents)-1]
	if ev.Kind != "marketing_withdrawn" || ev.Source != "unsubscribe_link" || ev.IP == "" {
		t.Errorf("consent history ends with %+v", ev)
	}
	for _, bad := range []string{"", "abc", f.store.Campaigns.UnsubscribeToken(person) + "0", "x." + strings.Repeat("0", 40)} {
		r, err := http.Post(f.url+"/v1/unsubscribe?token="+bad, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("token %q: %d, want 400", bad, r.StatusCode)
		}
	}
}

// campaignWithFailures stores three people with confirmed marketing
// consent, a campaign or notice of kind to all of them, and its outcome as
// the fan-out records it: one sent, one failed for an unmailable name, one
// given up on. It returns the campaign id and the failed people's hashes.
func campaignWithFailures(t *testing.T, f httpFixture, kind intake.CampaignKind) (string, map[string]intake.FailReason) {
	t.Helper()
	ctx := context.Background()
	for n := range 3 {
		email := fmt.Sprintf("test.testov%d@example.com", n)
		_, err := f.store.Leads.Accept(ctx, intake.Application{
			Submission: &intake.Submission{EntityType: intake.LegalEntity, Name: "Тест Тестов", Phone: fmt.Sprintf("+7701000000%d", n),
				Email: email, EmailKey: email, Lang: "ru", ConsentMarketing: true},
			Consent:  intake.Consent{Processing: true, Marketing: true, PolicyVersion: "1"},
			PerIP:    intake.Limit{N: 100, Per: time.Hour},
			PerEmail: intake.Limit{N: 100, Per: time.Hour},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := &intake.Campaign{Kind: kind, Name: "roles test", By: "m", All: kind == intake.KindBreachNotice,
		Content: intake.Content{Subject: map[string]string{"ru": "Тест"}, Text: map[string]string{"ru": "Тест"}, Message: map[string]string{"ru": "Тест"}}}
	id, err := f.store.Campaigns.CreateCampaign(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Campaigns.StartCampaign(ctx, id); err != nil {
		t.Fatal(err)
	}
	if c, err = f.store.Campaigns.Campaign(ctx, id); err != nil {
		t.Fatal(err)
	}
	cands, err := f.store.Campaigns.Candidates(ctx, c, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.store.Campaigns.Mark(ctx, c, cands)
	if err != nil || len(b.Recipients) != 3 {
		t.Fatalf("marked %+v, %v; want 3 (consent is active without double opt-in)", b, err)
	}
	for _, step := range []struct {
		outcome intake.Outcome
		reason  intake.FailReason
		people  []intake.Recipient
	}{
		{intake.OutcomeSent, "", b.Recipients[:1]},
		{intake.OutcomeFailed, intake.ReasonInvalidName, b.Recipients[1:2]},
		{intake.OutcomeFailed, intake.ReasonGaveUp, b.Recipients[2:]},
	} {
		if err := f.store.Campaigns.Settle(ctx, c, step.outcome, step.reason, step.people); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.Campaigns.FinishCampaign(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id, map[string]intake.FailReason{b.Recipients[1].Person: intake.ReasonInvalidName, b.Recipients[2].Person: intake.ReasonGaveUp}
}

// TestCampaignOutcomesByRole: marketing sees how many were reached and why
// the others were not; who they were (person hash and lead ids, never an
// address) only the privacy and admin roles see.
func TestCampaignOutcomesByRole(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, func(o *Options) { o.DoubleOptIn = false }, withPrivacy)
	for _, tc := range []struct {
		kind    intake.CampaignKind
		path    string
		counter string // a token that may read the counts
		refused []string
	}{
		{intake.KindCampaign, "/v1/admin/campaigns/", marketingToken, []string{marketingToken, salesToken}},
		{intake.KindBreachNotice, "/v1/admin/breach-notices/", adminToken, []string{marketingToken, salesToken}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			id, failed := campaignWithFailures(t, f, tc.kind)
			status, body := adminJSON(t, http.MethodGet, f.url+tc.path+id, tc.counter, "")
			reasons, _ := body["failed_reasons"].(map[string]any)
			if status != http.StatusOK || body["state"] != "done" || body["recipients"] != 3.0 || body["sent"] != 1.0 ||
				body["skipped"] != 0.0 || body["failed"] != 2.0 || len(reasons) != 2 ||
				reasons["invalid_name"] != 1.0 || reasons["gave_up"] != 1.0 {
				t.Errorf("counts: %d %v", status, body)
			}
			if _, ok := body["failures"]; ok {
				t.Errorf("the counts name people: %v", body)
			}
			for _, token := range tc.refused {
				if status, body := adminJSON(t, http.MethodGet, f.url+tc.path+id+"/failures", token, ""); status != http.StatusForbidden {
					t.Errorf("failures for a %s token: %d %v, want 403", strings.Split(token, "-")[0], status, body)
				}
			}
			for _, token := range []string{privacyToken, adminToken} {
				req, _ := http.NewRequest(http.MethodGet, f.url+tc.path+id+"/failures", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var page struct {
					Failures []intake.FailedRecipient `json:"failures"`
					Next     string                   `json:"next_cursor"`
				}
				if err := json.Unmarshal(raw, &page); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("failures for a %s token: %d %s", strings.Split(token, "-")[0], resp.StatusCode, raw)
				}
				if strings.Contains(string(raw), "example.com") || strings.Contains(string(raw), "Тест") {
					t.Errorf("the failures name an address or a name: %s", raw)
				}
				got := map[string]intake.FailReason{}
				for _, fr := range page.Failures {
					got[fr.Person] = fr.Reason
					if len(fr.Leads) != 1 {
						t.Errorf("person %s with leads %v, want their one lead", fr.Person, fr.Leads)
					}
				}
				if !maps.Equal(got, failed) || page.Next != "" {
					t.Errorf("failures %v (next %q), want %v", got, page.Next, failed)
				}
			}
			for _, bad := range []string{"?cursor=abc", "?limit=0", "?limit=1001", "?limit=x"} {
				if status, body := adminJSON(t, http.MethodGet, f.url+tc.path+id+"/failures"+bad, privacyToken, ""); status != http.StatusBadRequest {
					t.Errorf("%s: %d %v, want 400", bad, status, body)
				}
			}
			other := "/v1/admin/breach-notices/"
			if tc.kind == intake.KindBreachNotice {
				other = "/v1/admin/campaigns/"
			}
			if status, _ := adminJSON(t, http.MethodGet, f.url+other+id+"/failures", privacyToken, ""); status != http.StatusNotFound {
				t.Errorf("failures under the other kind's path: %d, want 404", status)
			}
		})
	}
}
