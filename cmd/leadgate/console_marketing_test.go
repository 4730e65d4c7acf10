package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/templates"
)

// Marketing's console pages in a real Chromium: compose a campaign in
// Russian, preview it as sent, test-send it, send it, and follow it to
// done; axe-core on every page; other roles refused.

// fakeTester is the test send's obviously fake address.
const fakeTester = "fake.tester@example.com"

// fillCampaign fills the compose form of the page in ctx: a Russian
// campaign with an HTML and a text body, to everyone.
func fillCampaign(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	values := map[string]string{"name": name, "subject_ru": "Новости эквайринга ТЕСТ",
		"html_ru": `<h1>Здравствуйте!</h1><p>Эквайринг теперь быстрее. <img src="https://cdn.example.kz/banner.png" alt="Баннер"></p>`,
		"text_ru": "Здравствуйте! Эквайринг теперь быстрее."}
	b, _ := json.Marshal(values)
	act(t, ctx, "fill the compose form", chromedp.Evaluate[chromedp.Void](
		`Object.entries(`+string(b)+`).forEach(([id, v]) => { document.getElementById(id).value = v })`))
}

// clickTo clicks sel and checks the page it leads to: its status, that its
// URL holds no personal value (no address, no phone of the fake people),
// and that it runs under its CSP.
func clickTo(t *testing.T, ctx context.Context, sel string, status int, what string) string {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Status != int64(status) {
		t.Fatalf("%s answered %d (%s), want %d", what, resp.Status, resp.URL, status)
	}
	if u := strings.ToLower(resp.URL); strings.Contains(u, "example.com") || strings.Contains(u, "%40") || strings.Contains(u, "701000") {
		t.Errorf("%s: the URL holds personal data", what)
	}
	checkPageUnderCSP(t, ctx, what, false)
	return resp.URL
}

// followToDone reloads a campaign's page until its state reads done, and
// returns the page's counts.
func followToDone(t *testing.T, ctx context.Context, e *e2e, pageURL, what string) map[string]string {
	t.Helper()
	done := templates.Message(templates.EN, "console.campaign.state.done")
	path := strings.TrimPrefix(pageURL, e.base)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.base+path)); err != nil {
			t.Fatalf("open %s: %v", what, err)
		}
		if read(t, ctx, "read the state", chromedp.Text(chromedp.ID("campaign-state"))) == done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach done", what)
		}
	}
	checkPageUnderCSP(t, ctx, what, false)
	checkAxe(t, ctx, what)
	counts := map[string]string{}
	for _, k := range []string{"recipients", "sent", "skipped", "failed"} {
		counts[k] = read(t, ctx, "read "+k, chromedp.Text(chromedp.ID("campaign-"+k)))
	}
	return counts
}

// TestConsoleBrowserMarketingSendsCampaign: marketing signs in, composes a
// Russian campaign, previews it (the sandboxed frame holds the body and
// the unsubscribe wrapper), test-sends it to one address, sends it to the
// one person who agreed to product news, and sees both reach done; the
// file mail driver's outbox holds each. A sales token is refused.
func TestConsoleBrowserMarketingSendsCampaign(t *testing.T) {
	t.Parallel()
	varDir := t.TempDir()
	e, ctx := setupBrowserWith(t, map[string]string{
		"LEADGATE_ADMIN_TOKENS": "sales:e2e-sales:" + salesToken + ",marketing:e2e-marketing:" + consoleMarketingToken,
		"LEADGATE_VAR_DIR":      varDir, "MAIL_DRIVER": "file", "DOUBLE_OPT_IN": "false",
	})
	if status, body := e.submit(t, applicant); status != http.StatusAccepted { // consent_marketing: true
		t.Fatalf("submit = %d %v", status, body)
	}

	if resp := consoleSignIn(t, ctx, e, consoleMarketingToken); resp.Status != http.StatusOK {
		t.Fatalf("marketing signing in answered %d, want 200", resp.Status)
	}
	checkAxe(t, ctx, "marketing's home page")
	nav := read(t, ctx, "read the navigation", chromedp.Text(chromedp.CSS("nav.console-nav ul")))
	if !strings.Contains(nav, templates.Message(templates.EN, "console.nav.campaigns")) {
		t.Errorf("marketing's navigation has no campaigns entry: %q", nav)
	}
	openConsolePage(t, ctx, e, "/admin/campaigns?lang=en", http.StatusOK, "the empty campaign list")
	openConsolePage(t, ctx, e, "/admin/campaigns/new?lang=kk", http.StatusOK, "the compose form in Kazakh")
	openConsolePage(t, ctx, e, "/admin/campaigns/new?lang=en", http.StatusOK, "the compose form")
	if got, want := read(t, ctx, "read the count", chromedp.Text(chromedp.ID("segment-count"))),
		templates.Message(templates.EN, "console.campaign.count", 1); got != want {
		t.Errorf("the count reads %q, want %q", got, want)
	}

	// A campaign without a subject comes back with the problem shown.
	act(t, ctx, "name the campaign only", chromedp.SendKeys(chromedp.ID("name"), "Без темы ТЕСТ"))
	clickTo(t, ctx, "#send", http.StatusUnprocessableEntity, "the form with a problem")
	checkAxe(t, ctx, "the form with a problem")
	if n := read(t, ctx, "find the problem", chromedp.Evaluate[int](`document.querySelectorAll('[aria-invalid="true"]').length`)); n != 1 {
		t.Errorf("%d fields marked invalid, want 1", n)
	}

	fillCampaign(t, ctx, "Осенняя рассылка ТЕСТ")
	clickTo(t, ctx, "#preview", http.StatusOK, "the preview")
	checkAxeNoFrames(t, ctx, "the preview")
	srcdoc := read(t, ctx, "read the preview", chromedp.Evaluate[string](
		`(() => { const f = document.getElementById("preview-ru"); return f.hasAttribute("sandbox") && f.getAttribute("sandbox") === "" ? f.srcdoc : "" })()`))
	for _, want := range []string{"Здравствуйте!", "Новости эквайринга ТЕСТ", "/v1/unsubscribe?lang=ru&amp;token=-"} {
		if !strings.Contains(srcdoc, want) {
			t.Errorf("the sandboxed preview lacks %q:\n%s", want, srcdoc)
		}
	}

	// The form came back filled: a test send to one address.
	act(t, ctx, "type the test address", chromedp.SendKeys(chromedp.ID("test_to"), fakeTester))
	testPage := clickTo(t, ctx, "#test-send", http.StatusOK, "the test campaign's page")
	if strings.Contains(testPage, "example.com") || !strings.Contains(testPage, "/admin/campaigns/") {
		t.Fatalf("the test send landed on %s", testPage)
	}
	checkAxe(t, ctx, "the test campaign's page")
	if c := followToDone(t, ctx, e, testPage, "the test campaign"); c["sent"] != "1" {
		t.Errorf("the test campaign: %v, want 1 sent", c)
	}
	testID := strings.TrimPrefix(strings.Split(strings.TrimPrefix(testPage, e.base), "?")[0], "/admin/campaigns/")
	if msgs := readOutboxMessages(t, varDir, "*"+testID+"*.eml"); len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0].Address != fakeTester {
		t.Errorf("the test send's outbox: %d messages, want 1 to the test address", len(msgs))
	}

	openConsolePage(t, ctx, e, "/admin/campaigns/new?lang=en", http.StatusOK, "the compose form again")
	fillCampaign(t, ctx, "Осенняя рассылка ТЕСТ")
	page := clickTo(t, ctx, "#send", http.StatusOK, "the campaign's page")
	checkAxe(t, ctx, "the campaign's page")
	if c := followToDone(t, ctx, e, page, "the campaign"); c["recipients"] != "1" || c["sent"] != "1" || c["failed"] != "0" {
		t.Errorf("the campaign: %v, want 1 recipient, 1 sent", c)
	}
	id := strings.TrimPrefix(strings.Split(strings.TrimPrefix(page, e.base), "?")[0], "/admin/campaigns/")
	msgs := readOutboxMessages(t, varDir, "*"+id+"*.eml")
	if len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0].Address != applicant["email"] ||
		!strings.Contains(msgs[0].header.Get("List-Unsubscribe"), "/v1/unsubscribe?lang=ru") {
		t.Errorf("the campaign's outbox: %d messages, want 1 to the applicant with List-Unsubscribe", len(msgs))
	}
	openConsolePage(t, ctx, e, "/admin/campaigns?lang=ru", http.StatusOK, "the campaign list in Russian")
	if n := read(t, ctx, "count the rows", chromedp.Evaluate[int](`document.querySelectorAll("tbody tr").length`)); n != 2 {
		t.Errorf("the list shows %d campaigns, want 2", n)
	}

	act(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.ID("token")))
	if resp := consoleSignIn(t, ctx, e, salesToken); resp.Status != http.StatusOK {
		t.Fatalf("sales signing in answered %d, want 200", resp.Status)
	}
	for _, p := range []string{"/admin/campaigns?lang=en", "/admin/campaigns/new?lang=en", "/admin/campaigns/" + id + "?lang=en"} {
		openConsolePage(t, ctx, e, p, http.StatusForbidden, p+" opened by sales")
	}
}
