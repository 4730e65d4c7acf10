//go:build screenshots

package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleScreenshots writes PNG screenshots of the console's pages, in
// English, at desktop and phone width, into the console folder of the
// directory LEADGATE_SCREENSHOTS names (`make screenshots`: docs/console),
// the admin's own (breach notices, audit log, queues) included.
// The admin role signs in, so every section is there; the people in it
// are the tests' obviously fake applicants. Like TestScreenshots it sits
// behind the screenshots build tag: it documents, the browser tests check.
func TestConsoleScreenshots(t *testing.T) {
	dir := screenshotDir(t, "console")
	varDir := t.TempDir()
	e, short := setupBrowserWith(t, map[string]string{
		"RISK_REVIEW_THRESHOLD": "0", // the lead waits in review, as sales sees it
		"DOUBLE_OPT_IN":         "false",
		"LEADGATE_VAR_DIR":      varDir, "MAIL_DRIVER": "file",
		"LEADGATE_ADMIN_TOKENS": "admin:e2e-admin:" + consoleAdminToken,
	})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(short), 5*time.Minute)
	defer cancel()
	status, body := e.submit(t, applicant)
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	lead := body["id"].(string)

	// shots shoots each page at each width; a page is its name, what
	// prepares it (a form filled), and the step that opens it.
	type page struct {
		name   string
		before func()
		step   chromedp.Action[chromedp.Void]
	}
	shots := func(pages ...page) {
		t.Helper()
		for _, w := range screenWidths {
			for _, p := range pages {
				if p.before != nil {
					p.before()
				}
				screenshot(t, ctx, w, filepath.Join(dir, p.name+"-"+w.name+".png"), http.StatusOK, p.step)
			}
		}
	}
	open := func(name, path string) page { return page{name: name, step: chromedp.Navigate(e.base + path)} }

	shots(open("login", "/admin/login?lang=en"))
	if resp := consoleSignIn(t, ctx, e, consoleAdminToken); resp.Status != http.StatusOK {
		t.Fatalf("signing in answered %d", resp.Status)
	}

	// A campaign sent to the one person who agreed to news, for its page.
	act(t, ctx, "open the compose form", chromedp.Navigate(e.base+"/admin/campaigns/new?lang=en"))
	fillCampaign(t, ctx, "Autumn news TEST")
	campaign := clickTo(t, ctx, "#send", http.StatusOK, "the campaign's page")
	followToDone(t, ctx, e, campaign, "the campaign")

	// The person's page, found by the address posted on the desk.
	act(t, ctx, "open the desk", chromedp.Navigate(e.base+"/admin/subjects?lang=en"),
		chromedp.SendKeys(chromedp.ID("find-email"), applicant["email"].(string)))
	person := strings.TrimPrefix(clickTo(t, ctx, "#find-submit", http.StatusOK, "the person's page"), e.base)

	// A breach notice sent to the same fake person, for its page.
	writeNotice := func() {
		act(t, ctx, "write a notice", chromedp.Navigate(e.base+"/admin/breach-notices/new?lang=en"),
			chromedp.SendKeys(chromedp.ID("message_ru"), "Тестовое уведомление ТЕСТ: возможна утечка данных."),
			chromedp.SendKeys(chromedp.ID("message_en"), "Test notice TEST: your data may have been exposed."),
			chromedp.Click(chromedp.ID("audience-list")),
			chromedp.SendKeys(chromedp.ID("emails"), applicant["email"].(string)))
	}
	writeNotice()
	clickTo(t, ctx, "#review", http.StatusOK, "the notice's confirmation")
	notice := clickTo(t, ctx, "#send", http.StatusOK, "the notice's page")
	followToDone(t, ctx, e, notice, "the notice")

	preview := page{name: "campaign-preview", step: chromedp.Click(chromedp.ID("preview")), before: func() {
		act(t, ctx, "open the compose form", chromedp.Navigate(e.base+"/admin/campaigns/new?lang=en"))
		fillCampaign(t, ctx, "Autumn news TEST")
	}}
	shots(
		open("home", "/admin/?lang=en"),
		open("leads", "/admin/leads?state=review&lang=en"),
		open("lead", "/admin/leads/"+lead+"?lang=en"),
		open("campaigns", "/admin/campaigns?lang=en"),
		open("campaign-new", "/admin/campaigns/new?lang=en"),
		preview,
		open("campaign", strings.TrimPrefix(campaign, e.base)),
		open("subjects", "/admin/subjects?lang=en"),
		open("person", person),
		open("person-erase", strings.SplitN(person, "?", 2)[0]+"/erase?lang=en"),
		open("breach-notices", "/admin/breach-notices?lang=en"),
		open("breach-notice-new", "/admin/breach-notices/new?lang=en"),
		page{name: "breach-notice-confirm", before: writeNotice, step: chromedp.Click(chromedp.ID("review"))},
		open("breach-notice", strings.TrimPrefix(notice, e.base)),
		open("audit", "/admin/audit?lang=en"),
		open("queues", "/admin/queues?lang=en"),
	)
}
