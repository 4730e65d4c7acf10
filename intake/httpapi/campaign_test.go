package httpapi

import (
	"context"
	"encoding/json"
	"io"
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
