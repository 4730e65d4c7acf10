package httpapi

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

// Marketing's console pages over the real route table: composing,
// previewing, validation shown beside the field, test send, send, cancel,
// and the csrf field. TestConsoleRoutesByRole covers who may open them.

// validCampaignForm is a compose form that passes the API's checks, in
// Russian, to everyone who agreed to product news, sent for real.
func validCampaignForm() url.Values {
	return url.Values{"name": {"Осенняя рассылка (тест)"}, "subject_ru": {"Новости эквайринга"},
		"html_ru": {`<p>Здравствуйте! <img src="https://cdn.example.kz/banner.png" alt="Баннер"></p>`},
		"action":  {"send"}}
}

// queuedCampaign stores a queued campaign and returns its id.
func queuedCampaign(t *testing.T, f httpFixture) string {
	t.Helper()
	id, err := f.store.Campaigns.CreateCampaign(context.Background(), &intake.Campaign{Kind: intake.KindCampaign,
		Name: "Тестовая рассылка", By: "m", Content: intake.Content{Subject: map[string]string{"ru": "Тема"},
			Text: map[string]string{"ru": "Текст"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var srcdocAttr = regexp.MustCompile(`srcdoc="([^"]*)"`)

func TestConsoleCampaignPreview(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, marketingToken)
	form := validCampaignForm()
	form.Set("csrf", csrfOf(t, f.url, cookie))
	form.Set("action", "preview")
	form.Set("segment_lang", "ru")
	resp, body := consoleDo(t, "POST", f.url+"/admin/campaigns?lang=en", cookie, form, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("preview: %d, want 200", resp.StatusCode)
	}
	m := srcdocAttr.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "<iframe sandbox srcdoc=") {
		t.Fatal("the preview has no sandboxed srcdoc iframe")
	}
	doc := html.UnescapeString(m[1])
	for _, want := range []string{"Здравствуйте!", "https://cdn.example.kz/banner.png",
		"https://leads.example.kz/v1/unsubscribe?lang=ru&amp;token=-"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the preview's document lacks %q:\n%s", want, doc)
		}
	}
	if !strings.Contains(body, `<option value="ru" selected>`) || !strings.Contains(body, `id="segment-count"`) {
		t.Error("the preview lost the segment or the count")
	}
	if len(f.queue.campaigns) != 0 {
		t.Error("a preview queued a campaign")
	}
}

// TestConsoleCampaignValidation: a form the API's checks refuse comes back
// (422) with what was typed and the problem beside its field; nothing is
// stored.
func TestConsoleCampaignValidation(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, marketingToken)
	csrf := csrfOf(t, f.url, cookie)
	for _, tc := range []struct {
		name  string
		edit  func(url.Values)
		field string
	}{
		{"no name", func(v url.Values) { v.Set("name", " ") }, `id="name-error"`},
		{"no body", func(v url.Values) { v.Del("html_ru") }, `id="html_ru-error"`},
		{"unknown product", func(v url.Values) { v.Set("segment_products", "spaceships") }, `id="segment-error"`},
		{"test without address", func(v url.Values) { v.Set("action", "test") }, `id="test_to-error"`},
		{"test to a bad address", func(v url.Values) { v.Set("action", "test"); v.Set("test_to", "not-an-address") }, `id="test_to-error"`},
	} {
		form := validCampaignForm()
		form.Set("csrf", csrf)
		tc.edit(form)
		resp, body := consoleDo(t, "POST", f.url+"/admin/campaigns?lang=en", cookie, form, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", tc.name, resp.StatusCode)
			continue
		}
		if !strings.Contains(body, tc.field) || !strings.Contains(body, `role="alert"`) {
			t.Errorf("%s: the problem is not shown beside its field (%s)", tc.name, tc.field)
		}
		if !strings.Contains(body, "Осенняя рассылка (тест)") && tc.name != "no name" {
			t.Errorf("%s: the form lost what was typed", tc.name)
		}
	}
	if len(f.queue.campaigns) != 0 {
		t.Errorf("refused forms queued %d campaigns", len(f.queue.campaigns))
	}
}

// TestConsoleCampaignSendAndCancel: a test send and a send each store a
// campaign under the holder's name and answer 303 to its page; the page
// offers cancel while queued; cancelling stops it.
func TestConsoleCampaignSendAndCancel(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, marketingToken)
	csrf := csrfOf(t, f.url, cookie)
	ctx := context.Background()

	form := validCampaignForm()
	form.Set("csrf", csrf)
	form.Set("action", "test")
	form.Set("test_to", "fake.tester@example.com")
	resp, _ := consoleDo(t, "POST", f.url+"/admin/campaigns?lang=en", cookie, form, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/campaigns/") || strings.Contains(loc, "example.com") {
		t.Fatalf("test send: %d to %q, want 303 to the campaign's page, no address in it", resp.StatusCode, loc)
	}
	testID := strings.TrimPrefix(strings.Split(loc, "?")[0], "/admin/campaigns/")
	if c, err := f.store.Campaigns.Campaign(ctx, testID); err != nil || c.TestTo != "fake.tester@example.com" || c.By != "m" {
		t.Fatalf("the test campaign: %+v, %v", c, err)
	}

	form.Set("action", "send")
	resp, _ = consoleDo(t, "POST", f.url+"/admin/campaigns?lang=en", cookie, form, nil)
	loc = resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("send: %d, want 303", resp.StatusCode)
	}
	id := strings.TrimPrefix(strings.Split(loc, "?")[0], "/admin/campaigns/")
	if c, err := f.store.Campaigns.Campaign(ctx, id); err != nil || c.TestTo != "" || c.State != intake.CampaignQueued {
		t.Fatalf("the campaign: %+v, %v", c, err)
	}
	if len(f.queue.campaigns) != 2 {
		t.Errorf("queued %d campaigns, want 2", len(f.queue.campaigns))
	}
	_, page := consoleDo(t, "GET", f.url+loc, cookie, nil, nil)
	if !strings.Contains(page, `id="cancel"`) || !strings.Contains(page, "The campaign is queued for sending.") {
		t.Error("the queued campaign's page has no cancel button or notice")
	}
	_, list := consoleDo(t, "GET", f.url+"/admin/campaigns?lang=en", cookie, nil, nil)
	_, home := consoleDo(t, "GET", f.url+"/admin/?lang=en", cookie, nil, nil)
	for what, b := range map[string]string{"list": list, "home": home} {
		if !strings.Contains(b, "/admin/campaigns/"+id) {
			t.Errorf("the %s does not link the running campaign", what)
		}
	}

	resp, _ = consoleDo(t, "POST", f.url+"/admin/campaigns/"+id+"/cancel?lang=en", cookie, url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d, want 303", resp.StatusCode)
	}
	if c, _ := f.store.Campaigns.Campaign(ctx, id); c.State != intake.CampaignCancelled {
		t.Errorf("after cancel the campaign is %s", c.State)
	}
	_, page = consoleDo(t, "GET", f.url+"/admin/campaigns/"+id+"?lang=en", cookie, nil, nil)
	if strings.Contains(page, `id="cancel"`) {
		t.Error("a cancelled campaign still offers cancel")
	}
	// Each action is audited under the holder's name with the campaign it
	// made or changed.
	seen := map[string]bool{}
	for _, ev := range auditEvents(t, f.ops) {
		if ev.Name == "m" && ev.Role == intake.RoleMarketing && ev.Status == http.StatusSeeOther {
			seen[ev.Action+" "+ev.Target] = true
		}
	}
	for _, want := range []string{"POST /admin/campaigns " + testID, "POST /admin/campaigns " + id, "POST /admin/campaigns/{id}/cancel " + id} {
		if !seen[want] {
			t.Errorf("no audit event %q under the holder's name", want)
		}
	}
}

// TestConsoleCampaignCSRF: every campaign post without the session's csrf
// field is 403 and changes nothing.
func TestConsoleCampaignCSRF(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, marketingToken)
	other, _ := signIn(t, f.url, marketingToken)
	id := queuedCampaign(t, f)
	for _, csrf := range []string{"", csrfOf(t, f.url, other)} {
		form := validCampaignForm()
		if csrf != "" {
			form.Set("csrf", csrf)
		}
		for _, path := range []string{"/admin/campaigns", "/admin/campaigns/" + id + "/cancel"} {
			if resp, _ := consoleDo(t, "POST", f.url+path, cookie, form, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with a csrf field %v: %d, want 403", path, csrf != "", resp.StatusCode)
			}
		}
	}
	if c, _ := f.store.Campaigns.Campaign(context.Background(), id); c.State != intake.CampaignQueued || len(f.queue.campaigns) != 0 {
		t.Error("a refused post changed a campaign or queued one")
	}
}

// TestConsoleCampaignCancelFinished: cancelling a campaign that has
// finished is 409 with a page that says so of the campaign.
func TestConsoleCampaignCancelFinished(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, marketingToken)
	id := queuedCampaign(t, f)
	ctx := context.Background()
	if _, err := f.store.Campaigns.StartCampaign(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Campaigns.FinishCampaign(ctx, id); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.store.Campaigns.Campaign(ctx, id); c.State != intake.CampaignDone {
		t.Fatalf("the campaign did not finish (%s): nothing to check", c.State)
	}
	resp, body := consoleDo(t, "POST", f.url+"/admin/campaigns/"+id+"/cancel?lang=en", cookie,
		url.Values{"csrf": {csrfOf(t, f.url, cookie)}}, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already finished sending") {
		t.Errorf("cancel of a finished campaign: %d, want 409 with the campaign's text", resp.StatusCode)
	}
}
