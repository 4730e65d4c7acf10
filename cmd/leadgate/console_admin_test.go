package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/paymtech/leadgate/templates"
)

// The admin's console pages in a real Chromium, over a real asynq: a
// breach notice composed, confirmed and followed to done (its mail in the
// file driver's outbox), the audit log filtered, and a lead:route task the
// CRM refused retried from the queues page until the lead reaches sales;
// axe-core on every page.

// setupAdminBrowser is setupBrowserWith an admin token, the file mail
// driver, and a webhook CRM that refuses every lead for good until accept
// is set; the fake applicant has sent one request, which the refusal
// failed (its route task archived). It returns the lead's id.
func setupAdminBrowser(t *testing.T, accept *atomic.Bool) (*e2e, context.Context, string, string) {
	t.Helper()
	crmServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !accept.Load() {
			w.WriteHeader(http.StatusBadRequest) // permanent: the lead fails at once
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(crmServer.Close)
	varDir := t.TempDir()
	e, ctx := setupBrowserWith(t, map[string]string{
		"LEADGATE_ADMIN_TOKENS": "sales:e2e-sales:" + salesToken + ",admin:e2e-admin:" + consoleAdminToken,
		"LEADGATE_VAR_DIR":      varDir, "MAIL_DRIVER": "file",
		"CRM_DRIVER": "webhook", "CRM_WEBHOOK_URL": crmServer.URL + "/hooks", "CRM_WEBHOOK_SECRET": webhookSecret,
	})
	status, body := e.submit(t, applicant)
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	lead := body["id"].(string)
	eventually(t, "the CRM's refusal to fail the lead", func() bool { return e.lead(t, lead)["state"] == "failed" })
	if resp := consoleSignIn(t, ctx, e, consoleAdminToken); resp.Status != http.StatusOK {
		t.Fatalf("admin signing in answered %d, want 200", resp.Status)
	}
	return e, ctx, lead, varDir
}

// TestConsoleBrowserAdmin: the admin signs in, sees every section and the
// failed task on the home page, sends a breach notice to the fake
// applicant's address and follows it to done, and filters the audit log
// to their own posts.
func TestConsoleBrowserAdmin(t *testing.T) {
	t.Parallel()
	e, ctx, _, varDir := setupAdminBrowser(t, new(atomic.Bool))
	checkAxe(t, ctx, "admin's home page")
	nav := read(t, ctx, "read the navigation", chromedp.Text(chromedp.CSS("nav.console-nav ul")))
	for _, key := range []string{"leads", "subjects", "campaigns", "breach_notices", "audit", "queues"} {
		if label := templates.Message(templates.EN, "console.nav."+key); !strings.Contains(nav, label) {
			t.Errorf("admin's navigation has no %q entry: %q", label, nav)
		}
	}
	if h := read(t, ctx, "read the queue health", chromedp.Text(chromedp.ID("queue-health"))); h != "Failed tasks: 1" {
		t.Errorf("the home page's queue health reads %q, want 1 failed task", h)
	}

	// A breach notice to the applicant's address, confirmed, then sent.
	openConsolePage(t, ctx, e, "/admin/breach-notices?lang=en", http.StatusOK, "the empty notice list")
	openConsolePage(t, ctx, e, "/admin/breach-notices/new?lang=kk", http.StatusOK, "the notice form in Kazakh")
	openConsolePage(t, ctx, e, "/admin/breach-notices/new?lang=en", http.StatusOK, "the notice form")
	clickTo(t, ctx, "#review", http.StatusUnprocessableEntity, "the notice form without a message")
	checkAxe(t, ctx, "the notice form with a problem")
	act(t, ctx, "write the notice",
		chromedp.SendKeys(chromedp.ID("message_ru"), "Тестовое уведомление ТЕСТ: возможна утечка данных."),
		chromedp.SendKeys(chromedp.ID("message_en"), "Test notice TEST: your data may have been exposed."),
		chromedp.Click(chromedp.ID("audience-list")),
		chromedp.SendKeys(chromedp.ID("emails"), applicant["email"].(string)))
	clickTo(t, ctx, "#review", http.StatusOK, "the notice's confirmation")
	checkAxe(t, ctx, "the notice's confirmation")
	if got := read(t, ctx, "read the audience", chromedp.Text(chromedp.ID("confirm-audience"))); got != templates.Message(templates.EN, "console.admin.notice.confirm_list", 1) {
		t.Errorf("the confirmation says %q", got)
	}
	page := clickTo(t, ctx, "#send", http.StatusOK, "the notice's page")
	checkAxe(t, ctx, "the notice's page")
	if c := followToDone(t, ctx, e, page, "the notice"); c["recipients"] != "1" || c["sent"] != "1" || c["failed"] != "0" {
		t.Errorf("the notice: %v, want 1 recipient, 1 sent", c)
	}
	id := strings.TrimPrefix(strings.Split(strings.TrimPrefix(page, e.base), "?")[0], "/admin/breach-notices/")
	if msgs := readOutboxMessages(t, varDir, "*"+id+"*.eml"); len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0].Address != applicant["email"] {
		t.Errorf("the notice's outbox: %d messages, want 1 to the applicant", len(msgs))
	}
	openConsolePage(t, ctx, e, "/admin/breach-notices?lang=ru", http.StatusOK, "the notice list in Russian")

	// The audit log, filtered to the admin's own sending of the notice.
	openConsolePage(t, ctx, e, "/admin/audit?lang=en", http.StatusOK, "the audit log")
	act(t, ctx, "filter the audit log",
		chromedp.SendKeys(chromedp.ID("holder"), "e2e-admin"), chromedp.SendKeys(chromedp.ID("action"), "POST /admin/breach-notices"))
	clickTo(t, ctx, "#filter", http.StatusOK, "the filtered audit log")
	checkAxe(t, ctx, "the filtered audit log")
	rows := read(t, ctx, "read the events", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#events tbody tr")].map(tr => [...tr.cells].map(c => c.textContent).join("|"))`))
	// Three posts: the form without a message, the review, the send.
	if len(rows) != 3 || !strings.Contains(rows[0], "e2e-admin|admin|POST /admin/breach-notices|"+id+"|303") {
		t.Errorf("the filtered audit log: %q, want the admin's 3 posts, the send (303, the notice's id) first", rows)
	}
}

// TestConsoleBrowserAdminRetriesTask: the lead:route task the CRM
// refused is listed on the queues page (ids, no personal value); once the
// CRM accepts again, its retry button redrives the lead, which reaches
// sales.
func TestConsoleBrowserAdminRetriesTask(t *testing.T) {
	t.Parallel()
	var accept atomic.Bool
	e, ctx, lead, _ := setupAdminBrowser(t, &accept)
	openConsolePage(t, ctx, e, "/admin/queues?lang=kk", http.StatusOK, "the queues in Kazakh")
	openConsolePage(t, ctx, e, "/admin/queues?lang=en", http.StatusOK, "the queues")
	tasks := read(t, ctx, "read the failed tasks", chromedp.Text(chromedp.ID("failed-tasks")))
	if !strings.Contains(tasks, "lead:route:"+lead) || strings.Contains(tasks, applicant["email"].(string)) {
		t.Fatalf("the failed tasks: %q, want the lead's route task and no personal value", tasks)
	}
	accept.Store(true)
	clickTo(t, ctx, "#failed-tasks form button", http.StatusOK, "the queues after the retry")
	checkAxe(t, ctx, "the queues after the retry")
	if n := read(t, ctx, "read the notice", chromedp.Text(chromedp.CSS("main p.ok"))); n != templates.Message(templates.EN, "console.admin.queues.notice_redriven") {
		t.Errorf("the retry's notice reads %q", n)
	}
	eventually(t, "the redriven lead to reach sales", func() bool { return e.lead(t, lead)["state"] == "routed" })
}
