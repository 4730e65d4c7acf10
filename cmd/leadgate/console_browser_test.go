package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/templates"
)

// The console as a salesperson uses it: signed in with a token in a real
// Chromium, under the pages' Content-Security-Policy, with axe-core
// checking every page it opens.

// Tokens of the console's browser tests, one per role that matters here.
const (
	consoleAdminToken     = "admin-token-for-console-tests"
	consoleMarketingToken = "marketing-token-for-console-tests"
	consoleMetricsToken   = "metrics-token-for-console-tests"
)

// setupConsoleBrowser is setupBrowser with every lead held for review
// (RISK_REVIEW_THRESHOLD=0) and tokens of several roles.
func setupConsoleBrowser(t *testing.T) (*e2e, context.Context) {
	t.Helper()
	return setupBrowserWith(t, map[string]string{
		"RISK_REVIEW_THRESHOLD": "0",
		"LEADGATE_ADMIN_TOKENS": "sales:e2e-sales:" + salesToken + ",admin:e2e-admin:" + consoleAdminToken +
			",marketing:e2e-marketing:" + consoleMarketingToken + ",metrics:e2e-metrics:" + consoleMetricsToken,
	})
}

// axeSource is node_modules/axe-core/axe.min.js, read once (make deps
// installs it).
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("../../node_modules/axe-core/axe.min.js")
	return string(b), err
})

// axeViolation is what the test reports of one axe-core violation.
type axeViolation struct {
	ID    string   `json:"id"`
	Help  string   `json:"help"`
	Nodes []string `json:"nodes"`
}

// checkAxe runs axe-core on the page in ctx for WCAG 2.0 and 2.1, levels A
// and AA, and fails t on any violation. axe is injected with chromedp's
// Evaluate — the DevTools protocol's Runtime.evaluate, which the page's
// Content-Security-Policy does not govern — so the policy stays exactly
// what the console sends; no bypass is used.
func checkAxe(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	for _, v := range axeViolations(t, ctx, what, true) {
		t.Errorf("%s: axe %s (%s) at %q", what, v.ID, v.Help, v.Nodes)
	}
}

// checkAxeNoFrames is checkAxe for a page with the sandboxed preview: the
// frame runs no script, so axe-core cannot enter it and would only wait
// for it; the page around it is checked in full.
func checkAxeNoFrames(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	for _, v := range axeViolations(t, ctx, what, false) {
		t.Errorf("%s: axe %s (%s) at %q", what, v.ID, v.Help, v.Nodes)
	}
}

// axeViolations runs axe-core as checkAxe does, into the page's frames
// when frames, and returns what it found.
func axeViolations(t *testing.T, ctx context.Context, what string, frames bool) []axeViolation {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run `make deps`", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](src+";true")); err != nil {
		t.Fatalf("inject axe-core into %s: %v", what, err)
	}
	raw := read(t, ctx, "run axe-core on "+what, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, iframes: `+strconv.FormatBool(frames)+`,
	}).then(r => JSON.stringify({passes: r.passes.length,
		violations: r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))}))`,
		chromedp.EvalAwaitPromise))
	var res struct {
		Passes     int            `json:"passes"`
		Violations []axeViolation `json:"violations"`
	}
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("axe-core's answer on %s: %v", what, err)
	}
	if res.Passes == 0 { // a check that checked nothing proves nothing
		t.Errorf("%s: axe-core passed no rule at all", what)
	}
	return res.Violations
}

// openConsolePage navigates to path and checks the answer's status, the
// page under its CSP and axe-core.
func openConsolePage(t *testing.T, ctx context.Context, e *e2e, path string, status int, what string) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.base+path))
	if err != nil {
		t.Fatalf("open %s: %v", what, err)
	}
	if resp.Status != int64(status) {
		t.Fatalf("%s answered %d, want %d", what, resp.Status, status)
	}
	checkPageUnderCSP(t, ctx, what, false)
	checkAxe(t, ctx, what)
}

// consoleSignIn types token into the sign-in form and submits it,
// returning the answer.
func consoleSignIn(t *testing.T, ctx context.Context, e *e2e, token string) *network.Response {
	t.Helper()
	openConsolePage(t, ctx, e, "/admin/login?lang=en", http.StatusOK, "the sign-in page")
	act(t, ctx, "type the token", chromedp.SendKeys(chromedp.ID("token"), token))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`main button[type="submit"]`)))
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return resp
}

// TestConsoleBrowserSalesReleasesReviewLead: a salesperson signs in, finds
// the lead held for review on the home page and in the list, reads it,
// fails to release it with the csrf field removed, releases it, and signs
// out; the old cookie then opens nothing.
func TestConsoleBrowserSalesReleasesReviewLead(t *testing.T) {
	t.Parallel()
	e, ctx := setupConsoleBrowser(t)
	status, body := e.submit(t, applicant)
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	id := body["id"].(string)
	eventually(t, "the lead to be held for review", func() bool { return e.lead(t, id)["state"] == "review" })

	resp := consoleSignIn(t, ctx, e, salesToken)
	if want := e.base + "/admin/?lang=en"; resp.Status != http.StatusOK || resp.URL != want {
		t.Fatalf("after sign-in the browser shows %s (%d), want %s", resp.URL, resp.Status, want)
	}
	checkPageUnderCSP(t, ctx, "the home page", false)
	checkAxe(t, ctx, "the home page")
	home := read(t, ctx, "read the home page", chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(home, templates.Message(templates.EN, "console.home.review")+": 1") {
		t.Errorf("the home page does not count the lead in review:\n%s", home)
	}

	openConsolePage(t, ctx, e, "/admin/leads?state=review&lang=en", http.StatusOK, "the list of leads in review")
	openConsolePage(t, ctx, e, "/admin/leads/"+id+"?lang=en", http.StatusOK, "the lead's page")
	if got := read(t, ctx, "read the lead's email", chromedp.Text(chromedp.ID("lead-email"))); got != applicant["email"] {
		t.Errorf("the lead's page shows email %q, want the decrypted one", got)
	}

	// A post without the csrf field is refused, and changes nothing.
	act(t, ctx, "drop the csrf field", chromedp.Evaluate[chromedp.Void](
		`document.querySelectorAll('input[name="csrf"]').forEach(i => i.remove())`))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("redrive")))
	if err != nil {
		t.Fatalf("release without csrf: %v", err)
	}
	if resp.Status != http.StatusForbidden {
		t.Fatalf("a post without the csrf field answered %d, want 403", resp.Status)
	}
	checkAxe(t, ctx, "the refused post's page")
	if st := e.lead(t, id)["state"]; st != "review" {
		t.Fatalf("the refused post changed the lead to %v", st)
	}

	openConsolePage(t, ctx, e, "/admin/leads/"+id+"?lang=en", http.StatusOK, "the lead's page again")
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("redrive")))
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, e.base+"/admin/leads/"+id+"?") {
		t.Fatalf("after the release the browser shows %s (%d), want the lead's page", resp.URL, resp.Status)
	}
	if notice := read(t, ctx, "read the notice", chromedp.Text(chromedp.CSS(`[role="status"]`))); notice != templates.Message(templates.EN, "console.notice.released") {
		t.Errorf("notice %q, want the release notice", notice)
	}
	checkPageUnderCSP(t, ctx, "the lead's page after the release", false)
	checkAxe(t, ctx, "the lead's page after the release")
	eventually(t, "the released lead to reach sales", func() bool { return e.lead(t, id)["state"] == "routed" })

	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.base + "/admin/"}})
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies.Cookies {
		if c.Name == console.CookieName {
			session = c.Value
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/admin" || strings.Contains(c.Value, salesToken) {
				t.Errorf("the session cookie: HttpOnly %v, SameSite %v, Path %q; want true, Strict, /admin, and no token", c.HTTPOnly, c.SameSite, c.Path)
			}
		}
	}
	if session == "" {
		t.Fatal("the browser holds no session cookie")
	}
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form.logout button`)))
	if err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, e.base+"/admin/login") {
		t.Fatalf("after signing out the browser shows %s (%d), want the sign-in page", resp.URL, resp.Status)
	}
	// The old cookie, replayed, opens nothing.
	req, _ := http.NewRequest(http.MethodGet, e.base+"/admin/leads/"+id, nil)
	req.AddCookie(&http.Cookie{Name: console.CookieName, Value: session})
	old, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	old.Body.Close()
	if old.StatusCode != http.StatusSeeOther || !strings.HasPrefix(old.Header.Get("Location"), "/admin/login") {
		t.Errorf("the old cookie after sign-out: %d to %q, want 303 to sign in", old.StatusCode, old.Header.Get("Location"))
	}
}

// TestConsoleBrowserSalesFiltersBySource: two leads from different
// campaigns; a salesperson types one source into the list's filter and
// sees that campaign's lead only, on a page that passes axe-core.
func TestConsoleBrowserSalesFiltersBySource(t *testing.T) {
	t.Parallel()
	e, ctx := setupConsoleBrowser(t)
	ids := map[string]string{}
	for i, source := range []string{"google", "yandex"} {
		lead := maps.Clone(applicant)
		lead["email"], lead["phone"], lead["utm_source"] = fmt.Sprintf("source%d.testov@example.com", i), fmt.Sprintf("8 701 000 00 2%d", i), source
		status, body := e.submit(t, lead)
		if status != http.StatusAccepted {
			t.Fatalf("submit = %d %v", status, body)
		}
		ids[source] = body["id"].(string)
	}
	consoleSignIn(t, ctx, e, salesToken)
	openConsolePage(t, ctx, e, "/admin/leads?lang=en", http.StatusOK, "the list of leads")
	act(t, ctx, "type a source", chromedp.SendKeys(chromedp.ID("utm_source"), "Google"))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#lead-filters button[type="submit"]`)))
	if err != nil {
		t.Fatalf("filter: %v", err)
	}
	if resp.Status != http.StatusOK || !strings.Contains(resp.URL, "utm_source=Google") {
		t.Fatalf("after filtering the browser shows %s (%d), want the list filtered by source", resp.URL, resp.Status)
	}
	list := read(t, ctx, "read the filtered list", chromedp.OuterHTML(chromedp.CSS("main")))
	if !strings.Contains(list, "/admin/leads/"+ids["google"]+"?") || strings.Contains(list, ids["yandex"]) {
		t.Errorf("the list filtered by google shows %s: %v, %s: %v; want google's lead only",
			ids["google"], strings.Contains(list, ids["google"]), ids["yandex"], strings.Contains(list, ids["yandex"]))
	}
	checkPageUnderCSP(t, ctx, "the filtered list", false)
	checkAxe(t, ctx, "the filtered list")
}

// TestConsoleBrowserRefusals: a metrics token cannot sign in, a wrong token
// gets the form again, and marketing cannot open sales's pages; admin sees
// them. Every refusal is a page that passes axe-core.
func TestConsoleBrowserRefusals(t *testing.T) {
	t.Parallel()
	e, ctx := setupConsoleBrowser(t)

	if resp := consoleSignIn(t, ctx, e, consoleMetricsToken); resp.Status != http.StatusForbidden {
		t.Fatalf("a metrics token signing in answered %d, want 403", resp.Status)
	}
	checkPageUnderCSP(t, ctx, "the metrics refusal", false)
	checkAxe(t, ctx, "the metrics refusal")

	if resp := consoleSignIn(t, ctx, e, "not-a-token-of-anyone"); resp.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong token answered %d, want 401", resp.Status)
	}
	checkAxe(t, ctx, "the sign-in page after a wrong token")

	if resp := consoleSignIn(t, ctx, e, consoleMarketingToken); resp.Status != http.StatusOK {
		t.Fatalf("marketing signing in answered %d, want 200 (the home page)", resp.Status)
	}
	checkAxe(t, ctx, "marketing's home page")
	openConsolePage(t, ctx, e, "/admin/leads?lang=en", http.StatusForbidden, "sales's list opened by marketing")
	act(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.ID("token")))

	if resp := consoleSignIn(t, ctx, e, consoleAdminToken); resp.Status != http.StatusOK {
		t.Fatalf("admin signing in answered %d, want 200", resp.Status)
	}
	openConsolePage(t, ctx, e, "/admin/leads?lang=ru", http.StatusOK, "the list in Russian, for admin")
	openConsolePage(t, ctx, e, "/admin/leads?lang=kk&since=2026-01-01", http.StatusOK, "the list in Kazakh")
	openConsolePage(t, ctx, e, "/admin/leads?since=yesterday&lang=en", http.StatusBadRequest, "the list with a bad filter")

	// axe-core does find what it should: a field without a label.
	act(t, ctx, "add a field without a label", chromedp.Evaluate[chromedp.Void](
		`document.querySelector("main").appendChild(document.createElement("input"))`))
	if v := axeViolations(t, ctx, "a page with an unlabelled field", true); len(v) == 0 {
		t.Error("axe-core found nothing wrong with an unlabelled field: the check is broken")
	}
}
