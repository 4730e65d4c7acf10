package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/config/redistest"
)

// marketingToken is the marketing role's admin token in this file's tests.
const marketingToken = "marketing-token-for-e2e-tests"

// outboxMail is one .eml the file mail driver wrote: who it went to and its
// subject, decoded.

// adminCall makes an admin API call with token and decodes the JSON answer.
func adminCall(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestStrangerCannotRewriteASubscribersProfile: a confirmed Russian
// subscriber; someone else posts their address with another name and
// language; the next campaign still reaches the subscriber as they
// confirmed — the Russian subject, their own name — and sales still sees
// the other request as it was made.
func TestStrangerCannotRewriteASubscribersProfile(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	varDir := t.TempDir()
	m := startMain(t, "serve", map[string]string{"REDIS_URL": srv.URL, "LEADGATE_VAR_DIR": varDir, "MAIL_DRIVER": "file",
		"LEADGATE_ADMIN_TOKENS": "sales:e2e-sales:" + salesToken + ",marketing:e2e-marketing:" + marketingToken})
	e := &e2e{main: m, base: "http://" + m.Addr(), sales: salesToken, rdb: srv.Client(t)}

	subscriber := maps.Clone(applicant) // ru, the marketing box ticked
	subscriber["name"], subscriber["email"], subscriber["phone"] = "Тестовый Подписчик Профилев", "profile.subscriber.fake@example.com", "8 701 000 00 21"
	status, body := e.submit(t, subscriber)
	if status != http.StatusAccepted {
		t.Fatalf("subscriber's request = %d %v", status, body)
	}
	eventually(t, "the acknowledgement and the opt-in request", func() bool { return len(readOutbox(t, varDir)) == 2 })
	var link string
	for _, mail := range readOutbox(t, varDir) {
		if i := strings.Index(mail, "/v1/optin/confirm?"); i >= 0 {
			link = e.base + strings.Fields(mail[i:])[0] // PUBLIC_BASE_URL is not where this server listens
		}
	}
	if link == "" {
		t.Fatal("no confirmation link in the mail")
	}
	resp, err := http.Post(link, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("following the link = %d", resp.StatusCode)
	}

	stranger := maps.Clone(applicant)
	stranger["name"], stranger["lang"], stranger["phone"] = "Stranger Testname Dolzhnikov", "en", "8 701 000 00 22"
	stranger["email"] = "Profile.Subscriber.Fake@Example.com" // the same person, typed otherwise
	status, body = e.submit(t, stranger)
	if status != http.StatusAccepted || body["duplicate"] == true {
		t.Fatalf("stranger's request = %d %v", status, body)
	}
	strangerID := body["id"].(string)
	eventually(t, "the stranger's request routed", func() bool { return e.lead(t, strangerID)["state"] == "routed" })
	if l := e.lead(t, strangerID); l["name"] != stranger["name"] || l["lang"] != "en" {
		t.Errorf("sales sees the stranger's request as %v %v, want it as made", l["name"], l["lang"])
	}

	status, body = adminCall(t, http.MethodPost, e.base+"/v1/admin/campaigns", marketingToken, map[string]any{
		"name":    "profile check",
		"subject": map[string]string{"ru": "Тестовая рассылка для подписчиков", "en": "Test campaign for subscribers"},
		"text":    map[string]string{"ru": "Текст тестовой рассылки.", "en": "Text of the test campaign."},
	})
	if status != http.StatusAccepted {
		t.Fatalf("create campaign = %d %v", status, body)
	}
	campaign := body["id"].(string)
	var progress map[string]any
	eventually(t, "the campaign to finish", func() bool {
		_, progress = adminCall(t, http.MethodGet, e.base+"/v1/admin/campaigns/"+campaign, marketingToken, nil)
		return progress["state"] == "done"
	})
	if progress["sent"] != float64(1) || progress["recipients"] != float64(1) {
		t.Fatalf("campaign = %v, want one recipient, sent", progress)
	}
	var got []outboxMessage
	for _, mail := range readOutboxMessages(t, varDir, "*.eml") {
		if strings.Contains(mail.subject, "рассылка") || strings.Contains(mail.subject, "campaign") {
			got = append(got, mail)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d campaign emails, want 1", len(got))
	}
	if got[0].subject != "Тестовая рассылка для подписчиков" {
		t.Errorf("campaign subject = %q, want the subscriber's language's", got[0].subject)
	}
	if len(got[0].to) != 1 || got[0].to[0].Name != subscriber["name"] || got[0].to[0].Address != subscriber["email"] {
		t.Errorf("campaign went to %v, want the subscriber by the name they confirmed", got[0].to)
	}
}
