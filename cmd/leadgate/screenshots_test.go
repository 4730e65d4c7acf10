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
// form folder of the directory LEADGATE_SCREENSHOTS names (`make
// screenshots`: docs/form). It is behind
// the screenshots build tag so that `make test` neither builds nor skips
// it: it documents the pages, it checks nothing the browser tests do not.
// The only person in it is the tests' obviously fake applicant, and no
// page shown displays their details.
func TestScreenshots(t *testing.T) {
	dir := screenshotDir(t, "form")
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

	for _, lang := range []string{"kk", "ru", "en"} {
		q := cu.Query()
		q.Set("lang", lang)
		confirmURL := e.base + cu.Path + "?" + q.Encode()
		unsubscribeURL := e.base + "/v1/unsubscribe?" + url.Values{"lang": {lang}, "token": {unsubscribeToken}}.Encode()
		for _, w := range screenWidths {
			shot := func(name string, status int64, steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				screenshot(t, ctx, w, filepath.Join(dir, name+"-"+lang+"-"+w.name+".png"), status, steps...)
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

// screenWidth is a width pages are shot at, and how the tab emulates it.
type screenWidth struct {
	name  string
	width int64
	opts  []chromedp.EmulateViewportOption
}

// screenWidths are the widths every page is shot at: a desktop's and a
// phone's.
var screenWidths = []screenWidth{
	{"desktop", 1280, nil},
	{"mobile", 390, []chromedp.EmulateViewportOption{chromedp.EmulateMobile, chromedp.EmulatePortrait}},
}

// screenshotDir is the folder sub of the directory LEADGATE_SCREENSHOTS
// names, made if missing.
func screenshotDir(t *testing.T, sub string) string {
	t.Helper()
	root := os.Getenv("LEADGATE_SCREENSHOTS")
	if root == "" {
		t.Fatal("LEADGATE_SCREENSHOTS must name the directory for the screenshots (make screenshots sets docs)")
	}
	dir := filepath.Join(root, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot runs steps at width w, checks the answer's status and writes
// the page's full height as a PNG to path.
func screenshot(t *testing.T, ctx context.Context, w screenWidth, path string, status int64, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w.width, 800, w.opts...)); err != nil {
		t.Fatalf("%s: viewport: %v", path, err)
	}
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if resp.Status != status {
		t.Fatalf("%s: status %d, want %d", path, resp.Status, status)
	}
	// A sandboxed srcdoc frame (the campaign preview) paints after the
	// page's load event: half a second lets it.
	act(t, ctx, "let the page settle", chromedp.Evaluate[chromedp.Void](`new Promise(r => setTimeout(r, 500))`, chromedp.EvalAwaitPromise))
	png := read(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%d bytes)", path, len(png))
}
