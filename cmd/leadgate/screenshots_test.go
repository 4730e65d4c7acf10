//go:build screenshots

package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/seal"
)

// TestScreenshots writes PNG screenshots of the public pages — the form,
// the form with errors (422), the thanks page, and the confirm and
// unsubscribe pages asking — in kk, ru and en at desktop (1280 px) and
// phone (390 px) width, each of the page's full height, into the directory
// LEADGATE_SCREENSHOTS names (`make screenshots`: docs/form). It is behind
// the screenshots build tag so that `make test` neither builds nor skips
// it: it documents the pages, it checks nothing the browser tests do not.
// The only person in it is the tests' obviously fake applicant, and no
// page shown displays their details.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("LEADGATE_SCREENSHOTS")
	if dir == "" {
		t.Fatal("LEADGATE_SCREENSHOTS must name the directory for the screenshots (make screenshots sets docs/form)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	varDir := t.TempDir()
	e, short := setupBrowserWith(t, map[string]string{"LEADGATE_VAR_DIR": varDir, "MAIL_DRIVER": "file"})
	// 30 pages take longer than one browser test's deadline; the tab's
	// values stay, its deadline goes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(short), 3*time.Minute)
	defer cancel()

	// A confirmation link, from the opt-in mail of the fake applicant, and
	// their unsubscribe link: the pages that ask (GET changes nothing).
	if status, body := e.submit(t, applicant); status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	eventually(t, "the opt-in request", func() bool { return len(readOutbox(t, varDir)) == 2 })
	var confirm string
	for _, mail := range readOutbox(t, varDir) {
		if i := strings.Index(mail, "/v1/optin/confirm?"); i >= 0 {
			confirm = strings.Fields(mail[i:])[0]
		}
	}
	cu, err := url.Parse(confirm)
	if confirm == "" || err != nil {
		t.Fatalf("no confirmation link in the mail (%v)", err)
	}
	cfg := e.main.Config.Keys
	keys, err := seal.NewKeys(cfg.Data, cfg.OldData, cfg.Index)
	if err != nil {
		t.Fatal(err)
	}
	email, _ := form.NormalizeEmail(applicant["email"].(string))
	unsubscribeToken := keys.UnsubscribeToken(keys.Index("email", email))

	widths := []struct {
		name  string
		width int64
		opts  []chromedp.EmulateViewportOption
	}{
		{"desktop", 1280, nil},
		{"mobile", 390, []chromedp.EmulateViewportOption{chromedp.EmulateMobile, chromedp.EmulatePortrait}},
	}
	for _, lang := range []string{"kk", "ru", "en"} {
		q := cu.Query()
		q.Set("lang", lang)
		confirmURL := e.base + cu.Path + "?" + q.Encode()
		unsubscribeURL := e.base + "/v1/unsubscribe?" + url.Values{"lang": {lang}, "token": {unsubscribeToken}}.Encode()
		for _, w := range widths {
			shot := func(name string, status int64, steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				view := chromedp.EmulateViewport(w.width, 800, w.opts...)
				if err := chromedp.Do(ctx, view); err != nil {
					t.Fatalf("%s %s %s: viewport: %v", name, lang, w.name, err)
				}
				resp, err := chromedp.RunResponse(ctx, steps...)
				if err != nil {
					t.Fatalf("%s %s %s: %v", name, lang, w.name, err)
				}
				if resp.Status != status {
					t.Fatalf("%s %s %s: status %d, want %d", name, lang, w.name, resp.Status, status)
				}
				shot := read(t, ctx, "screenshot", chromedp.FullScreenshot(100))
				path := filepath.Join(dir, name+"-"+lang+"-"+w.name+".png")
				if err := os.WriteFile(path, shot, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s (%d bytes)", path, len(shot))
			}
			shot("form", http.StatusOK, chromedp.Navigate(e.base+"/?lang="+lang))
			// An empty post, as a client without the browser's check or
			// the page script's makes it: the server's 422 with every
			// required field marked.
			act(t, ctx, "open the form", chromedp.Navigate(e.base+"/?lang="+lang))
			shot("form-errors", http.StatusUnprocessableEntity,
				chromedp.Evaluate[chromedp.Void](`document.getElementById("lead-form").submit()`))
			// A made-up reference: the page shows any UUID.
			shot("thanks", http.StatusOK, chromedp.Navigate(e.base+"/thanks?lang="+lang+"&ref=00000000-0000-4000-8000-000000000000"))
			shot("confirm", http.StatusOK, chromedp.Navigate(confirmURL))
			shot("unsubscribe", http.StatusOK, chromedp.Navigate(unsubscribeURL))
		}
	}
}
