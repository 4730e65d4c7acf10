package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/templates"
)

// The console as the privacy officer uses it (privacy console): find a
// person by a posted address, open their page, export, erase through the
// confirmation, and find nothing held afterwards; marketing is refused.
// axe-core checks every page on the way.

const consolePrivacyToken = "privacy-token-for-console-tests"

// erasable is an obviously fake person of this test alone.
var erasable = func() map[string]any {
	m := maps.Clone(applicant)
	m["name"], m["email"], m["phone"] = "Тестовая Стираемая Персона", "erasable.person.fake@example.com", "8 701 000 00 09"
	return m
}()

// clickToChecked is clickTo, then axe-core on the page it led to.
func clickToChecked(t *testing.T, ctx context.Context, sel string, status int, what string) string {
	t.Helper()
	u := clickTo(t, ctx, sel, status, what)
	checkAxe(t, ctx, what)
	return u
}

func TestConsoleBrowserPrivacyExportsAndErases(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowserWith(t, map[string]string{
		"LEADGATE_ADMIN_TOKENS": "sales:e2e-sales:" + salesToken + ",privacy:e2e-privacy:" + consolePrivacyToken + ",marketing:e2e-marketing:" + consoleMarketingToken,
	})
	status, body := e.submit(t, erasable)
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	id := body["id"].(string)
	sharer := maps.Clone(erasable) // the same phone, another person
	sharer["name"], sharer["email"] = "Тестовый Сосед По Телефону", "phone.sharer.fake@example.com"
	if status, body := e.submit(t, sharer); status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	en := func(key string, args ...any) string { return templates.Message(templates.EN, key, args...) }

	if resp := consoleSignIn(t, ctx, e, consolePrivacyToken); resp.Status != http.StatusOK {
		t.Fatalf("privacy signing in answered %d, want 200", resp.Status)
	}
	checkAxe(t, ctx, "the privacy officer's home page")
	home := read(t, ctx, "read the home page", chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(home, en("console.home.subjects_due")) {
		t.Error("the privacy officer's home page has no section for requests due")
	}
	clickToChecked(t, ctx, `nav.console-nav a[href^="/admin/subjects"]`, http.StatusOK, "the desk, from the navigation")

	act(t, ctx, "type the shared phone", chromedp.SendKeys(chromedp.ID("find-phone"), erasable["phone"].(string)))
	clickToChecked(t, ctx, "#find-submit", http.StatusOK, "the choice of people who gave the phone")
	if n := read(t, ctx, "count the choices", chromedp.Evaluate[int](`document.querySelectorAll('#choices + ul a').length`)); n != 2 {
		t.Errorf("the shared phone offers %d people, want 2", n)
	}
	act(t, ctx, "type the address", chromedp.SendKeys(chromedp.ID("find-email"), erasable["email"].(string)))
	person := clickToChecked(t, ctx, "#find-submit", http.StatusOK, "the person's page")
	if got := read(t, ctx, "read the person's page", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(got, id) {
		t.Fatal("the person's page does not show their lead")
	}

	// The download, fetched as the export form posts it (the browser's
	// download itself leaves no page to read).
	raw := read(t, ctx, "download the export", chromedp.Evaluate[string](`(() => {
		const f = document.querySelector('#export-json').form;
		const body = new URLSearchParams(new FormData(f));
		body.set('as', 'json');
		return fetch(f.action, {method: 'POST', body}).then(r =>
			r.text().then(text => JSON.stringify({cd: r.headers.get('Content-Disposition'), text})));
	})()`, chromedp.EvalAwaitPromise))
	var dl struct{ CD, Text string }
	if err := json.Unmarshal([]byte(raw), &dl); err != nil {
		t.Fatal(err)
	}
	var export struct {
		Reference string `json:"reference"`
		People    []struct {
			Leads []struct {
				ID string `json:"id"`
			} `json:"leads"`
		} `json:"people"`
	}
	if err := json.Unmarshal([]byte(dl.Text), &export); err != nil || len(export.People) != 1 || len(export.People[0].Leads) != 1 ||
		export.People[0].Leads[0].ID != id || export.Reference == "" {
		t.Errorf("the export download does not hold the lead (%v)", err)
	}
	if !strings.HasPrefix(dl.CD, "attachment;") || strings.Contains(dl.CD, "example.com") {
		t.Errorf("the export's Content-Disposition is %q", dl.CD)
	}

	clickToChecked(t, ctx, "#block", http.StatusOK, "the person's page after the block")
	if notice := read(t, ctx, "read the notice", chromedp.Text(chromedp.CSS(`[role="status"]`))); !strings.Contains(notice, "request ") {
		t.Errorf("the block's notice %q carries no reference", notice)
	}
	clickToChecked(t, ctx, "#block", http.StatusOK, "the person's page after the block is lifted")
	clickToChecked(t, ctx, "#export-print", http.StatusOK, "the printable export")
	openConsolePage(t, ctx, e, strings.TrimPrefix(person, e.base), http.StatusOK, "the person's page again")
	clickToChecked(t, ctx, "#erase", http.StatusOK, "the erasure's confirmation")
	counts := read(t, ctx, "read what will be destroyed", chromedp.Text(chromedp.ID("erase-counts")))
	if !strings.Contains(counts, en("console.subjects.erase_leads", 1)) {
		t.Errorf("the confirmation names %q, want one lead", counts)
	}
	clickToChecked(t, ctx, "#erase-confirm", http.StatusOK, "the desk after the erasure")
	if notice := read(t, ctx, "read the notice", chromedp.Text(chromedp.CSS(`[role="status"]`))); !strings.Contains(notice, "request ") {
		t.Errorf("the notice %q carries no reference", notice)
	}
	if got := e.lead(t, id); got["state"] != nil {
		t.Errorf("the lead is still there after the erasure: %v", got["state"])
	}

	act(t, ctx, "type the address again", chromedp.SendKeys(chromedp.ID("find-email"), erasable["email"].(string)))
	clickToChecked(t, ctx, "#find-submit", http.StatusOK, "the desk finding nothing")
	if got := read(t, ctx, "read the answer", chromedp.Text(chromedp.ID("not-found"))); got != en("console.subjects.not_found") {
		t.Errorf("finding the erased person says %q", got)
	}
	openConsolePage(t, ctx, e, strings.TrimPrefix(person, e.base), http.StatusOK, "the erased person's page")

	act(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.ID("token")))
	if resp := consoleSignIn(t, ctx, e, consoleMarketingToken); resp.Status != http.StatusOK {
		t.Fatalf("marketing signing in answered %d", resp.Status)
	}
	openConsolePage(t, ctx, e, "/admin/subjects?lang=en", http.StatusForbidden, "the desk opened by marketing")
	openConsolePage(t, ctx, e, strings.TrimPrefix(person, e.base), http.StatusForbidden, "a person's page opened by marketing")
}
