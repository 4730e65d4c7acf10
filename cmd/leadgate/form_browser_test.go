package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/templates"
)

// The form's own checks in the browser (issue 12): messages in the page's
// language instead of the browser's bubble, a visible invalid state, a
// focus ring that can be seen, one post per click — every state passing
// axe-core.

// fieldCheck is what a test reads of one field after the script checked it.
type fieldCheck struct {
	Invalid string `json:"invalid"` // aria-invalid
	Error   string `json:"error"`   // the text of its error element
	Named   bool   `json:"named"`   // the error element is in its aria-describedby
}

// readFieldCheck reads the field with the given id and its error element
// (named for the field's name, as the server names it).
func readFieldCheck(t *testing.T, ctx context.Context, id string) fieldCheck {
	t.Helper()
	return read(t, ctx, "read "+id, chromedp.Evaluate[fieldCheck](`(() => {
		const input = document.getElementById(`+mustJSON(t, id)+`);
		const errId = input.name + "-error";
		const error = document.getElementById(errId);
		return {invalid: input.getAttribute("aria-invalid") || "", error: error ? error.textContent : "",
			named: (input.getAttribute("aria-describedby") || "").split(" ").includes(errId)};
	})()`))
}

// luminance is the WCAG relative luminance of a CSS "rgb(r, g, b)" colour.
func luminance(t *testing.T, css string) float64 {
	t.Helper()
	var c [3]float64
	if _, err := fmt.Sscanf(css, "rgb(%g, %g, %g)", &c[0], &c[1], &c[2]); err != nil {
		t.Fatalf("colour %q: %v", css, err)
	}
	for i, v := range c {
		v /= 255
		if v <= 0.03928 {
			c[i] = v / 12.92
		} else {
			c[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}

// contrast is the WCAG contrast ratio of two CSS colours.
func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

// TestBrowserFormKazakhOwnMessages sends the Kazakh form empty with the
// script on: nothing is posted, and every required field says what is
// missing in Kazakh — from the catalogue, not the browser's bubble in the
// browser's (English) language — and looks invalid. The focus ring
// contrasts 3:1 with what is behind it, on a field and on the blue
// button. Filled, the form posts once however often it is sent, showing its
// busy label.
func TestBrowserFormKazakhOwnMessages(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowser(t)
	kk := func(key string) string { return templates.Message(templates.KK, key) }

	act(t, ctx, "open the form", chromedp.Navigate(e.base+"/?lang=kk"))
	opened := time.Now()
	checkAxe(t, ctx, "the form")
	act(t, ctx, "send it empty", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if got := read(t, ctx, "read the address", chromedp.Evaluate[string](`location.pathname`)); got != "/" {
		t.Fatalf("the empty form was posted: the browser shows %s", got)
	}
	for id, want := range map[string]fieldCheck{
		"entity_type-legal_entity":    {Invalid: "true", Error: kk("entity_type.invalid"), Named: true},
		"entity_type-sole_proprietor": {Invalid: "true", Error: kk("entity_type.invalid"), Named: true},
		"phone":                       {Invalid: "true", Error: kk("field.required"), Named: true},
		"email":                       {Invalid: "true", Error: kk("field.required"), Named: true},
		"consent_processing":          {Invalid: "true", Error: kk("consent_processing.required"), Named: true},
		"name":                        {},
		"consent_marketing":           {},
	} {
		if got := readFieldCheck(t, ctx, id); got != want {
			t.Errorf("%s after sending the empty form = %+v, want %+v", id, got, want)
		}
	}
	type looks struct {
		Focused     string `json:"focused"`
		Border      string `json:"border"`
		BorderWidth string `json:"borderWidth"`
		Outline     string `json:"outline"`
		Card        string `json:"card"`
	}
	// The first invalid field has the focus; an invalid field's red
	// border wins over the input[type=…] rule's grey.
	got := read(t, ctx, "read the looks", chromedp.Evaluate[looks](`(() => {
		const s = getComputedStyle(document.getElementById("phone"));
		return {focused: document.activeElement.id, border: s.borderTopColor, borderWidth: s.borderTopWidth,
			outline: getComputedStyle(document.activeElement).outlineColor,
			card: getComputedStyle(document.querySelector(".card")).backgroundColor};
	})()`))
	if got.Focused != "entity_type-legal_entity" || got.Border != "rgb(179, 38, 30)" || got.BorderWidth != "2px" {
		t.Errorf("after sending the empty form: focus on %q, the phone's border %s %s; want the first radio focused and a 2px rgb(179, 38, 30) border",
			got.Focused, got.BorderWidth, got.Border)
	}
	if c := contrast(t, got.Outline, got.Card); c < 3 {
		t.Errorf("a field's focus ring %s contrasts %.2f:1 with the card %s, want ≥ 3:1", got.Outline, c, got.Card)
	}
	checkAxe(t, ctx, "the form with the script's errors")
	checkPageUnderCSP(t, ctx, "the form with the script's errors", true)

	act(t, ctx, "fill the form",
		chromedp.Click(chromedp.ID("entity_type-sole_proprietor")),
		chromedp.SendKeys(chromedp.ID("phone"), "8 701 000 00 07"),
		chromedp.SendKeys(chromedp.ID("email"), "not-an-address"),
		chromedp.Click(chromedp.ID("consent_processing")),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)
	for id, want := range map[string]fieldCheck{
		"entity_type-legal_entity": {},
		"phone":                    {},
		"email":                    {Invalid: "true", Error: kk("email.invalid"), Named: true},
		"consent_processing":       {},
	} {
		if got := readFieldCheck(t, ctx, id); got != want {
			t.Errorf("%s after sending with a wrong email = %+v, want %+v", id, got, want)
		}
	}
	act(t, ctx, "correct the email",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("email").value = ""`),
		chromedp.SendKeys(chromedp.ID("email"), "test.own.messages@example.com"),
	)
	// The button's ring stands on the card, 2px off the blue.
	ring := read(t, ctx, "focus the button", chromedp.Evaluate[looks](`(() => {
		const b = document.querySelector("button[type=submit]");
		b.focus();
		const s = getComputedStyle(b);
		return {outline: s.outlineColor, border: s.outlineOffset,
			card: getComputedStyle(document.querySelector(".card")).backgroundColor};
	})()`))
	if c := contrast(t, ring.Outline, ring.Card); c < 3 || ring.Border != "2px" {
		t.Errorf("the button's focus ring %s, %s off the button, contrasts %.2f:1 with the card %s; want ≥ 3:1 and 2px off",
			ring.Outline, ring.Border, c, ring.Card)
	}

	type sending struct {
		Disabled  bool   `json:"disabled"`
		Label     string `json:"label"`
		Prevented []bool `json:"prevented"`
	}
	time.Sleep(time.Until(opened.Add(3500 * time.Millisecond))) // not a bot's fast_submit
	var sent sending
	// Two sends in a row, as a double click makes: the second must be
	// stopped by the script (its submit event cancelled).
	twice := chromedp.Evaluate[sending](`(() => {
			const f = document.getElementById("lead-form"), b = f.querySelector("button[type=submit]");
			const prevented = [];
			f.addEventListener("submit", (ev) => prevented.push(ev.defaultPrevented));
			f.requestSubmit(b);
			const after = {disabled: b.disabled, label: b.textContent};
			f.requestSubmit();
			return {...after, prevented};
		})()`)
	resp, err := chromedp.RunResponse(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := twice(ctx, tg)
		sent = v
		return chromedp.Void{}, err
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if want := (sending{Disabled: true, Label: kk("form.sending"), Prevented: []bool{false, true}}); mustJSON(t, sent) != mustJSON(t, want) {
		t.Errorf("sending twice: %+v, want %+v", sent, want)
	}
	ids := e.leadIDs(t)
	if len(ids) != 1 {
		t.Fatalf("stored leads %v, want one", ids)
	}
	if resp.Status != http.StatusOK || resp.URL != e.base+"/thanks?lang=kk&ref="+ids[0] {
		t.Fatalf("after the post the browser shows %s (%d), want the thanks page with the lead's reference", resp.URL, resp.Status)
	}
	// The thanks page shows the reference and leads back to the form in
	// Kazakh.
	type thanks struct {
		Reference string `json:"reference"`
		Back      string `json:"back"`
		BackText  string `json:"backText"`
	}
	shown := read(t, ctx, "read the thanks page", chromedp.Evaluate[thanks](`(() => {
		const a = document.querySelector("main a");
		return {reference: document.querySelector(".reference").textContent, back: a.href, backText: a.textContent};
	})()`))
	if want := (thanks{Reference: ids[0], Back: e.base + "/?lang=kk", BackText: kk("thanks.back")}); shown != want {
		t.Errorf("thanks page = %+v, want %+v", shown, want)
	}
	checkAxe(t, ctx, "the thanks page")
	checkPageUnderCSP(t, ctx, "the thanks page", false)
}

// TestBrowserFormLanguageLinksKeepWhatWasTyped posts the Russian form
// without consent, as a client without checks would, and switches the form
// shown again to Kazakh: what was typed (and the page the visitor came
// from) is still there, in a Kazakh form at /, and went through no URL.
func TestBrowserFormLanguageLinksKeepWhatWasTyped(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowser(t)
	const email = "test.keep.lang@example.com"
	act(t, ctx, "fill the form",
		chromedp.Navigate(e.base+"/?lang=ru"),
		chromedp.Click(chromedp.ID("entity_type-sole_proprietor")),
		chromedp.SendKeys(chromedp.ID("phone"), "8 701 000 00 06"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.ID("consent_marketing")),
	)
	resp, err := chromedp.RunResponse(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("lead-form").submit()`))
	if err != nil || resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("post without consent: %v %+v, want 422", err, resp)
	}
	checkAxe(t, ctx, "the form shown again with errors")
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`.langs a[hreflang="kk"]`)))
	if err != nil || resp.URL != e.base+"/?lang=kk" {
		t.Fatalf("switch to Kazakh: %v %+v", err, resp)
	}
	type kept struct {
		Lang, Email, Phone, PageURL string
		Entity, Marketing, Stored   bool
	}
	got := read(t, ctx, "read the Kazakh form", chromedp.Evaluate[kept](`(() => {
		const f = document.getElementById("lead-form");
		return {Lang: document.documentElement.lang, Email: f.elements.email.value, Phone: f.elements.phone.value,
			PageURL: f.elements.page_url.value, Entity: document.getElementById("entity_type-sole_proprietor").checked,
			Marketing: f.elements.consent_marketing.checked, Stored: sessionStorage.length > 0};
	})()`))
	if want := (kept{Lang: "kk", Email: email, Phone: "8 701 000 00 06", PageURL: e.base + "/?lang=ru", Entity: true, Marketing: true}); got != want {
		t.Errorf("the form after switching language = %+v, want %+v", got, want)
	}
	checkPageUnderCSP(t, ctx, "the Kazakh form", true)
}

// TestBrowserFormCarriesItsUTMTags: marketing's link to the form carries
// utm_* tags; the language link keeps them, and the request posted from
// the form in the other language is stored with them.
func TestBrowserFormCarriesItsUTMTags(t *testing.T) {
	t.Parallel()
	e, ctx := setupBrowser(t)
	act(t, ctx, "open marketing's link", chromedp.Navigate(e.base+"/?lang=ru&utm_source=google&utm_campaign=spring"))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`.langs a[hreflang="kk"]`)))
	if err != nil || !strings.Contains(resp.URL, "utm_source=google") || !strings.Contains(resp.URL, "utm_campaign=spring") {
		t.Fatalf("switch to Kazakh: %v %+v, want the tags kept in the link", err, resp)
	}
	act(t, ctx, "fill the Kazakh form",
		chromedp.Click(chromedp.ID("entity_type-legal_entity")),
		chromedp.SendKeys(chromedp.ID("phone"), "8 701 000 00 08"),
		chromedp.SendKeys(chromedp.ID("email"), "test.utm@example.com"),
		chromedp.Click(chromedp.ID("consent_processing")),
	)
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#lead-form button[type="submit"]`)))
	if err != nil || resp.Status != http.StatusOK || !strings.HasPrefix(resp.URL, e.base+"/thanks?lang=kk") {
		t.Fatalf("post: %v %+v, want the thanks page", err, resp)
	}
	ids := e.leadIDs(t)
	if len(ids) != 1 {
		t.Fatalf("stored leads %v, want one", ids)
	}
	meta, _ := e.lead(t, ids[0])["metadata"].(map[string]any)
	if meta["utm_source"] != "google" || meta["utm_campaign"] != "spring" {
		t.Errorf("the lead's metadata %v, want utm_source google and utm_campaign spring", meta)
	}
}

// TestBrowserConfirmAndUnsubscribePages walks the one-button pages through
// every state — asking, done, already done (the link used again), invalid
// — for the opt-in confirmation and the unsubscribe link, each under its
// CSP and passing axe-core.
func TestBrowserConfirmAndUnsubscribePages(t *testing.T) {
	t.Parallel()
	varDir := t.TempDir()
	e, ctx := setupBrowserWith(t, map[string]string{"LEADGATE_VAR_DIR": varDir, "MAIL_DRIVER": "file"})
	if status, body := e.submit(t, applicant); status != http.StatusAccepted { // consent_marketing: true
		t.Fatalf("submit = %d %v", status, body)
	}
	eventually(t, "the opt-in request", func() bool { return len(readOutbox(t, varDir)) == 2 })
	var confirm string
	for _, mail := range readOutbox(t, varDir) {
		if i := strings.Index(mail, "/v1/optin/confirm?"); i >= 0 {
			confirm = e.base + strings.Fields(mail[i:])[0] // the mail's link is on PUBLIC_BASE_URL
		}
	}
	if confirm == "" {
		t.Fatal("no confirmation link in the mail")
	}
	cfg := e.main.Config.Keys
	keys, err := seal.NewKeys(cfg.Data, cfg.OldData, cfg.Index)
	if err != nil {
		t.Fatal(err)
	}
	email, _ := form.NormalizeEmail(applicant["email"].(string))
	unsubscribe := e.base + "/v1/unsubscribe?lang=kk&token=" + url.QueryEscape(keys.UnsubscribeToken(keys.Index("email", email)))

	// page opens link, or clicks the page's button, and checks the page.
	// The headings of the ask pages name the operator (COMPANY_NAME, here
	// its default).
	page := func(what, link, titleKey string, status int64, args ...any) {
		t.Helper()
		step := chromedp.Navigate(link)
		if link == "" {
			step = chromedp.Click(chromedp.CSS(`button[type="submit"]`))
		}
		resp, err := chromedp.RunResponse(ctx, step)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		h := read(t, ctx, "read "+what, chromedp.Evaluate[heading](headingJS))
		if resp.Status != status || h.Text != templates.Message(templates.Lang(h.Lang), titleKey, args...) {
			t.Errorf("%s: %d %+v, want %d and the %s heading", what, resp.Status, h, status, titleKey)
		}
		checkPageUnderCSP(t, ctx, what, false)
		checkAxe(t, ctx, what)
	}
	page("the confirmation link", confirm, "confirm.title", http.StatusOK, templates.DefaultCompanyName)
	page("the confirmation", "", "confirm.done_title", http.StatusOK)
	page("the confirmation link used again", confirm, "confirm.already_title", http.StatusOK)
	page("a wrong confirmation link", e.base+"/v1/optin/confirm?lang=en&token=x", "confirm.invalid_title", http.StatusBadRequest)
	page("the unsubscribe link", unsubscribe, "unsubscribe.title", http.StatusOK, templates.DefaultCompanyName)
	page("unsubscribing", "", "unsubscribe.done_title", http.StatusOK)
	page("the unsubscribe link used again", unsubscribe, "unsubscribe.already_title", http.StatusOK)
	page("a wrong unsubscribe link", e.base+"/v1/unsubscribe?lang=ru&token=x", "unsubscribe.invalid_title", http.StatusBadRequest)
}

// TestBrowserFormInFrameOfAllowedOrigin shows the form in a frame of a
// page on an origin FRAME_ANCESTORS allows, as the company site does: the
// frame loads, the form posts, and the thanks page fills the whole window
// (target=_top), not the frame. The lead records the framing page, the
// Referer of the frame's GET /, as the page the visitor came from.
func TestBrowserFormInFrameOfAllowedOrigin(t *testing.T) {
	t.Parallel()
	var base string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html lang="en"><title>company site</title><h1>Connect</h1>`+
			`<iframe title="request form" name="form" width="800" height="1400" src="`+base+`/?lang=kk"></iframe>`)
	}))
	t.Cleanup(site.Close)
	e, ctx := setupBrowserWith(t, map[string]string{"FRAME_ANCESTORS": site.URL})
	base = e.base

	act(t, ctx, "open the company's page", chromedp.Navigate(site.URL+"/connect"))
	opened := time.Now()
	// The frame is on another origin but the same site (127.0.0.1), so
	// Chromium keeps it in the page's process and FromNode reaches into it.
	frames := read(t, ctx, "find the frame", chromedp.Nodes(chromedp.CSS("iframe")))
	if len(frames) != 1 {
		t.Fatalf("%d frames on the company's page", len(frames))
	}
	in := chromedp.FromNode(frames[0])
	act(t, ctx, "fill the form in the frame",
		chromedp.Click(chromedp.ID("entity_type-legal_entity"), in),
		chromedp.SendKeys(chromedp.ID("phone"), "8 701 000 00 05", in),
		chromedp.SendKeys(chromedp.ID("email"), "test.in.frame@example.com", in),
		chromedp.Click(chromedp.ID("consent_processing"), in),
	)
	time.Sleep(time.Until(opened.Add(3500 * time.Millisecond))) // not a bot's fast_submit
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`), in)); err != nil {
		t.Fatalf("send the form in the frame: %v", err)
	}
	ids := e.leadIDs(t)
	if len(ids) != 1 {
		t.Fatalf("stored leads %v, want one", ids)
	}
	// The thanks page is the window's page, not the frame's.
	top := read(t, ctx, "read the window", chromedp.Evaluate[heading](`({lang: location.href, text: document.querySelector("h1").textContent})`))
	if want := (heading{Lang: e.base + "/thanks?lang=kk&ref=" + ids[0], Text: templates.Message(templates.KK, "thanks.title")}); top != want {
		t.Errorf("the window after the post shows %+v, want %+v", top, want)
	}
	checkPageUnderCSP(t, ctx, "the thanks page", false)
	// The frame's GET / had the company's page as Referer; the browser's
	// default referrer policy keeps only its origin across origins.
	meta, _ := e.lead(t, ids[0])["metadata"].(map[string]any)
	if got, want := meta["page_url"], site.URL+"/"; got != want {
		t.Errorf("the lead's page_url = %v, want the framing page %s", got, want)
	}
}
