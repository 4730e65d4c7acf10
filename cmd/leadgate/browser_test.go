package main

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/templates"
)

// The form as a person meets it: the real page, its script and its own
// post, in a headless Chromium talking to `leadgate serve`.

// browserTimeout bounds one test's browser work, so a page that never loads
// fails the test in minutes instead of at go test's global timeout. A
// console test opens a dozen pages with axe-core on each, and several run
// at once on a busy 2-core machine: 20 s, then 60 s, were not always
// enough for them under make test.
const browserTimeout = 2 * time.Minute

// setupBrowser runs `leadgate serve` against a private redis-server and
// opens a tab of a fresh headless Chromium, both ended when t ends. The tab
// sends a desktop Chrome's User-Agent, because the risk score counts
// "HeadlessChrome" as a bot, and lives in Almaty, so the timezone the page's
// script reports is one no default would give.
func setupBrowser(t *testing.T) (*e2e, context.Context) {
	t.Helper()
	return setupBrowserWith(t, nil)
}

// setupBrowserWith is setupBrowser with more environment for leadgate.
func setupBrowserWith(t *testing.T, env map[string]string) (*e2e, context.Context) {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (%v): `make test` installs it (Debian package chromium)", err)
	}
	srv := redistest.Start(t)
	full := map[string]string{"REDIS_URL": srv.URL}
	maps.Copy(full, env)
	m := startMain(t, "serve", full)
	e := &e2e{main: m, base: "http://" + m.Addr(), sales: salesToken}

	// Only loopback is reachable where the tests run, and they must depend
	// on nothing but leadgate: the flags after disable-gpu keep Chromium from
	// going out on its own (first-run pages, background fetches, component
	// updates, sync, QUIC). Without chromedp.UserDataDir, chromedp makes a
	// fresh profile per browser and removes it once Chromium and its
	// children have exited — a t.TempDir would race those children.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserAgent(browserUA),
		chromedp.WindowSize(1280, 1600),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
	})
	// The first Do starts Chromium and ties its life to tab, not to the
	// deadline below.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(tab, emulation.SetTimezoneOverride,
		emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Almaty"}); err != nil {
		t.Fatalf("set the tab's timezone: %v", err)
	}
	// The recorder of Content-Security-Policy violations comes from the
	// browser, not the page, so the policy does not refuse it.
	if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorderJS}); err != nil {
		t.Fatalf("add the CSP violation recorder: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	t.Cleanup(cancel)
	t.Cleanup(func() { screenshotOnFailure(t, tab) }) // runs first: the tab is still open
	return e, ctx
}

// screenshotOnFailure saves what the tab shows when t has failed, for
// whoever reads the failure. It goes to t.ArtifactDir: kept under
// -outputdir with `go test -artifacts`, removed otherwise, never in the
// tree.
func screenshotOnFailure(t *testing.T, tab context.Context) {
	if !t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	path := filepath.Join(t.ArtifactDir(), "page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	t.Logf("screenshot of the page: %s", path)
}

// cspRecorderJS keeps every Content-Security-Policy violation a page
// reports, as "directive blocked-URI", for cspViolations to read.
const cspRecorderJS = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(e.effectiveDirective + " " + e.blockedURI));`

// cspViolations are the violations the page in ctx has reported so far.
func cspViolations(t *testing.T, ctx context.Context) []string {
	t.Helper()
	v := read(t, ctx, "read the CSP violations", chromedp.Evaluate[*[]string](`window.__cspViolations`))
	if v == nil {
		t.Fatal("the CSP violation recorder did not run in the page")
	}
	return *v
}

// pageLooks are what the stylesheet does to a page that a test can read.
type pageLooks struct {
	Background string `json:"background"` // the body's
	Honeypot   string `json:"honeypot"`   // the position of the honeypot's box; "" on pages without the form
}

// styledBackground is the body's background with leadgate.css applied.
const styledBackground = "rgb(244, 245, 247)"

// checkPageUnderCSP fails t unless the page in ctx works under its
// Content-Security-Policy: no violation reported (a script or style
// refused would change how it works or looks) and the stylesheet applied
// — which also shows the policy let it load.
func checkPageUnderCSP(t *testing.T, ctx context.Context, what string, withForm bool) {
	t.Helper()
	if v := cspViolations(t, ctx); len(v) != 0 {
		t.Errorf("%s reported CSP violations: %q", what, v)
	}
	looks := read(t, ctx, "read the looks of "+what, chromedp.Evaluate[pageLooks](`({
		background: getComputedStyle(document.body).backgroundColor,
		honeypot: document.querySelector(".hp") ? getComputedStyle(document.querySelector(".hp")).position : "",
	})`))
	want := pageLooks{Background: styledBackground}
	if withForm {
		want.Honeypot = "absolute" // off-screen, as .hp says
	}
	if looks != want {
		t.Errorf("%s looks %+v, want %+v: the stylesheet did not apply", what, looks, want)
	}
}

// leadIDs lists the ids of every stored lead through the admin API.
func (e *e2e) leadIDs(t *testing.T) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+"/v1/admin/leads?limit=200", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.sales)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Leads *[]struct {
			ID string `json:"id"`
		} `json:"leads"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK || page.Leads == nil {
		t.Fatalf("list leads: status %d, %v", resp.StatusCode, err)
	}
	ids := make([]string, 0, len(*page.Leads))
	for _, l := range *page.Leads {
		ids = append(ids, l.ID)
	}
	return ids
}

// act runs browser actions and fails t, saying what it was doing, if any
// fails.
func act(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read runs one browser action and returns its value, failing t if it fails.
func read[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// heading is a page's language and first heading, as headingJS reads them.
type heading struct {
	Lang string `json:"lang"`
	Text string `json:"text"`
}

const headingJS = `({lang: document.documentElement.lang, text: document.querySelector("h1").textContent})`

// TestBrowserFormKazakh fills the Kazakh form as a person does — clicks,
// typed keys, a few seconds of reading — and follows the post to the thanks
// page; the lead must be stored as typed, with the page script's timezone
// and the consent given, and go to sales rather than to review.
func TestBrowserFormKazakh(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowser(t)
	const (
		name  = "ЖШС «Тест»"
		email = "test.testov.kk@example.com"
	)

	act(t, ctx, "open the form", chromedp.Navigate(e.base+"/?lang=kk"))
	opened := time.Now()
	if got, want := read(t, ctx, "read the form", chromedp.Evaluate[heading](headingJS)),
		(heading{Lang: "kk", Text: templates.Message(templates.KK, "page.title")}); got != want {
		t.Fatalf("the form's page = %+v, want %+v", got, want)
	}
	checkPageUnderCSP(t, ctx, "the form", true)
	ticked := read(t, ctx, "read the consents", chromedp.Evaluate[[]bool](
		`["consent_processing", "consent_marketing"].map(id => document.getElementById(id).checked)`))
	if len(ticked) != 2 || ticked[0] || ticked[1] {
		t.Fatalf("consents ticked on opening (processing, marketing) = %v, want both unticked", ticked)
	}

	act(t, ctx, "fill the form",
		chromedp.Click(chromedp.ID("entity_type-legal_entity")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("phone"), "8 701 000 00 09"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("tax_id"), "210840004064"),
		chromedp.Click(chromedp.ID("product-acquiring")),
		chromedp.Click(chromedp.ID("consent_processing")),
	)
	// A post within 3 s of the page being rendered scores as a bot's
	// (fast_submit); a person takes longer to read the form.
	time.Sleep(time.Until(opened.Add(3500 * time.Millisecond)))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	// The thanks page's address carries the lead id as its reference;
	// which id is checked below, once it is known.
	if want := e.base + "/thanks?lang=kk&ref="; resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, want) {
		t.Fatalf("after the post the browser shows %s (%d), want %s… (200)", resp.URL, resp.Status, want)
	}
	thanks := read(t, ctx, "read the thanks page", chromedp.Evaluate[heading](headingJS))
	body := read(t, ctx, "read the thanks page", chromedp.Text(chromedp.CSS("main")))
	if want := (heading{Lang: "kk", Text: templates.Message(templates.KK, "thanks.title")}); thanks != want ||
		!strings.Contains(body, templates.Message(templates.KK, "thanks.body")) {
		t.Fatalf("thanks page = %+v\n%s\nwant %+v with the Kazakh thanks", thanks, body, want)
	}
	checkPageUnderCSP(t, ctx, "the thanks page", false)

	ids := e.leadIDs(t)
	if len(ids) != 1 {
		t.Fatalf("stored leads = %v, want one", ids)
	}
	if want := e.base + "/thanks?lang=kk&ref=" + ids[0]; resp.URL != want {
		t.Errorf("the thanks page is %s, want %s", resp.URL, want)
	}
	lead := e.lead(t, ids[0])
	consent, _ := lead["consent"].(map[string]any)
	meta, _ := lead["metadata"].(map[string]any)
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"entity_type", lead["entity_type"], "legal_entity"},
		{"name", lead["name"], name},
		{"phone", lead["phone"], "+77010000009"},
		{"email", lead["email"], email},
		{"tax_id", lead["tax_id"], "210840004064"},
		{"products", lead["products"], []any{"acquiring"}},
		{"lang", lead["lang"], "kk"},
		{"consent.processing", consent["processing"], true},
		{"consent.marketing", consent["marketing"], false},
		{"consent.page_url", consent["page_url"], e.base + "/?lang=kk"},
		{"metadata.timezone", meta["timezone"], "Asia/Almaty"},
		{"metadata.page_url", meta["page_url"], e.base + "/?lang=kk"},
		{"metadata.user_agent", meta["user_agent"], browserUA},
		{"metadata.browser", meta["browser"], "Chrome 131"}, // browserUA's
	} {
		if got, _ := json.Marshal(c.got); string(got) != mustJSON(t, c.want) {
			t.Errorf("lead %s = %s, want %s", c.field, got, mustJSON(t, c.want))
		}
	}
	if t.Failed() {
		return
	}
	// The route task scores the lead: a person's post raises no signal (no
	// bot User-Agent, no fast_submit, the script ran), so the lead goes on to
	// the CRM (the file driver) instead of to review.
	var routed map[string]any
	eventually(t, "the lead to be routed", func() bool {
		routed = e.lead(t, ids[0])
		return routed["state"] != "received"
	})
	if got, want := mustJSON(t, []any{routed["state"], routed["risk"]}), `["routed",{"score":0}]`; got != want {
		t.Fatalf("lead state and risk = %s, want %s", got, want)
	}
}

// mustJSON is v as JSON, for comparing decoded answers with expectations.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBrowserFormErrorsRussian posts the Russian form with a phone number
// that cannot be one and without consent to processing. The browser's own
// check (or the page script's) stops such a post; without both, the
// server must answer 422 with the form again: each problem next to its
// field, what was typed kept, nothing stored.
func TestBrowserFormErrorsRussian(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowser(t)
	const (
		phone = "8 701 000"
		email = "test.testov.ru@example.com"
	)
	act(t, ctx, "fill the form",
		chromedp.Navigate(e.base+"/?lang=ru"),
		chromedp.Click(chromedp.ID("entity_type-sole_proprietor")),
		chromedp.SendKeys(chromedp.ID("name"), "ИП Тестов"),
		chromedp.SendKeys(chromedp.ID("phone"), phone),
		chromedp.SendKeys(chromedp.ID("email"), email),
	)
	if missing := read(t, ctx, "check the form", chromedp.Evaluate[bool](
		`document.getElementById("consent_processing").validity.valueMissing && !document.getElementById("lead-form").checkValidity()`)); !missing {
		t.Fatal("the browser would post the form without consent to processing")
	}
	// form.submit() posts without the browser's check or the page
	// script's (which would stop this post too): a client with neither.
	resp, err := chromedp.RunResponse(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("lead-form").submit()`))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("post = %d %s, want 422 with the form again", resp.Status, resp.URL)
	}

	type fieldState struct {
		Value     string `json:"value"`
		Checked   bool   `json:"checked"`
		Invalid   string `json:"invalid"`
		Error     string `json:"error"`
		NextToIt  bool   `json:"nextToIt"`
		Described bool   `json:"described"`
	}
	// field reads an input and the error shown for it: the error must sit
	// in the input's own .field block and be named by its aria-describedby.
	field := func(id string) fieldState {
		t.Helper()
		return read(t, ctx, "read "+id, chromedp.Evaluate[fieldState](`(() => {
			const input = document.getElementById(`+mustJSON(t, id)+`);
			const error = document.getElementById(input.id + "-error");
			return {
				value: input.value, checked: input.checked,
				invalid: input.getAttribute("aria-invalid") || "",
				error: error ? error.textContent : "",
				nextToIt: !!error && error.closest(".field") === input.closest(".field"),
				described: (input.getAttribute("aria-describedby") || "").split(" ").includes(input.id + "-error"),
			};
		})()`))
	}
	ru := func(key string) string { return templates.Message(templates.RU, key) }
	for id, want := range map[string]fieldState{
		"phone":              {Value: phone, Invalid: "true", Error: ru("phone.invalid"), NextToIt: true, Described: true},
		"consent_processing": {Value: "true", Invalid: "true", Error: ru("consent_processing.required"), NextToIt: true, Described: true},
		"email":              {Value: email},
		"name":               {Value: "ИП Тестов"},
		"consent_marketing":  {Value: "true"},
	} {
		if got := field(id); got != want {
			t.Errorf("%s after the post = %+v, want %+v", id, got, want)
		}
	}
	type pageState struct {
		Lang   string `json:"lang"`
		Notice string `json:"notice"`
		Entity bool   `json:"entity"`
	}
	page := read(t, ctx, "read the page", chromedp.Evaluate[pageState](`({
		lang: document.documentElement.lang,
		notice: document.querySelector(".notice p").textContent,
		entity: document.getElementById("entity_type-sole_proprietor").checked,
	})`))
	if want := (pageState{Lang: "ru", Notice: ru("form.has_errors"), Entity: true}); page != want {
		t.Errorf("page after the post = %+v, want %+v", page, want)
	}
	if ids := e.leadIDs(t); len(ids) != 0 {
		t.Errorf("a refused post stored leads %v", ids)
	}
	checkPageUnderCSP(t, ctx, "the form again", true)

	// The recorder does hear a violation: an inline script, which the
	// policy refuses to run.
	act(t, ctx, "add an inline script", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.createElement("script");
		s.textContent = "window.inlineRan = true";
		document.body.append(s);
	})()`))
	eventually(t, "the inline script's violation", func() bool {
		return slices.Contains(cspViolations(t, ctx), "script-src-elem inline")
	})
	if ran := read(t, ctx, "check the inline script", chromedp.Evaluate[bool](`window.inlineRan === true`)); ran {
		t.Error("an inline script ran under the Content-Security-Policy")
	}
}

// TestBrowserFormRedirectsToAllowedOrigin posts the form with a
// redirect_url on another origin that CORS_ALLOWED_ORIGINS allows, as the
// company site's own page would. The browser applies the form page's
// form-action to the post's 303 as well, so it follows it only because
// form-action names that origin.
func TestBrowserFormRedirectsToAllowedOrigin(t *testing.T) {
	t.Parallel()
	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>Спасибо</title><h1>landed</h1>")
	}))
	t.Cleanup(landing.Close)
	e, ctx := setupBrowserWith(t, map[string]string{"CORS_ALLOWED_ORIGINS": landing.URL})

	act(t, ctx, "fill the form",
		chromedp.Navigate(e.base+"/?lang=ru"),
		chromedp.Click(chromedp.ID("entity_type-legal_entity")),
		chromedp.SendKeys(chromedp.ID("phone"), "8 701 000 00 08"),
		chromedp.SendKeys(chromedp.ID("email"), "test.redirect@example.com"),
		chromedp.Click(chromedp.ID("consent_processing")),
		// What the company's copy of the page adds: where to go after.
		chromedp.Evaluate[chromedp.Void](`(() => {
			const input = document.createElement("input");
			input.type = "hidden";
			input.name = "redirect_url";
			input.value = `+mustJSON(t, landing.URL+"/thanks?from=leadgate")+`;
			document.getElementById("lead-form").append(input);
		})()`),
	)
	checkPageUnderCSP(t, ctx, "the form", true)
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if want := landing.URL + "/thanks?from=leadgate"; resp.Status != http.StatusOK || resp.URL != want {
		t.Fatalf("after the post the browser shows %s (%d), want %s (200)", resp.URL, resp.Status, want)
	}
	if got := read(t, ctx, "read the landing page", chromedp.Text(chromedp.CSS("h1"))); got != "landed" {
		t.Fatalf("landing page heading %q", got)
	}
	if ids := e.leadIDs(t); len(ids) != 1 {
		t.Errorf("stored leads %v, want one", ids)
	}
}

// TestBrowserOtherSitesCannotFrameThePages opens a page of another site
// that frames leadgate's pages: the browser must refuse every one — the
// form and thanks pages because FRAME_ANCESTORS does not name that site,
// the confirm and unsubscribe pages whatever it says. /healthz, which
// sends no framing policy, is the control: it shows the frames would load
// if the pages allowed it.
func TestBrowserOtherSitesCannotFrameThePages(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowser(t)
	frames := map[string]string{
		"form": "/?lang=ru", "thanks": "/thanks", "confirm": "/v1/optin/confirm?token=x",
		"unsubscribe": "/v1/unsubscribe?token=x", "control": "/healthz",
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>another site</title>")
		for name, path := range frames {
			io.WriteString(w, `<iframe name="`+name+`" src="`+e.base+path+`"></iframe>`)
		}
	}))
	t.Cleanup(other.Close)

	act(t, ctx, "open the other site", chromedp.Navigate(other.URL)) // waits for the frames to load or fail
	tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		t.Fatalf("read the frames: %v", err)
	}
	shown := map[string]string{}
	for _, c := range tree.FrameTree.ChildFrames {
		shown[c.Frame.Name] = c.Frame.URL
	}
	for name, path := range frames {
		want := "chrome-error://chromewebdata/" // what Chromium shows in a frame it refused
		if name == "control" {
			want = e.base + path
		}
		if shown[name] != want {
			t.Errorf("frame of %s shows %q, want %q", path, shown[name], want)
		}
	}
}
