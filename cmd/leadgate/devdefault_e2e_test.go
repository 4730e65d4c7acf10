package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/config"
)

// startDevDefault runs `leadgate serve` in-process as a newcomer does with
// `go run ./cmd/leadgate`: no REDIS_URL and no other configuration, only a
// private var/ and a free port. It returns the server, its var/ and the
// admin tokens it printed, by role.
func startDevDefault(t *testing.T) (m *Main, varDir string, tokens map[string]string) {
	t.Helper()
	varDir = t.TempDir()
	env := map[string]string{"LEADGATE_VAR_DIR": varDir, "LEADGATE_ADDR": "127.0.0.1:0"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m = &Main{Config: cfg, Stdout: &out, Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(context.Background(), "serve"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.mini == nil {
		t.Fatal("serve without REDIS_URL did not start the embedded Redis")
	}
	// The printed notes list each generated token as "  role:name:token".
	tokens = map[string]string{}
	for sc := bufio.NewScanner(&out); sc.Scan(); {
		if f := strings.Split(strings.TrimSpace(sc.Text()), ":"); len(f) == 3 && strings.HasPrefix(sc.Text(), "  ") {
			tokens[f[0]] = f[2]
		}
	}
	if tokens["marketing"] == "" || tokens["admin"] == "" || tokens["privacy"] == "" {
		t.Fatalf("no marketing, admin and privacy tokens among what serve printed:\n%s", out.String())
	}
	return m, varDir, tokens
}

// outboxMessage is one .eml of the file mail driver, parsed.

// onlyTo is the one message of msgs, which must have gone to address alone.
func onlyTo(t *testing.T, what string, msgs []outboxMessage, address string) outboxMessage {
	t.Helper()
	if len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0].Address != address {
		t.Fatalf("%d %s emails, want one to the person", len(msgs), what)
	}
	return msgs[0]
}

// TestEmbeddedDefaultSendsCampaignsAndBreachNotices: on the embedded Redis
// a newcomer gets from `go run ./cmd/leadgate`, a person who ticked the
// marketing box and confirmed by the emailed link receives a campaign (with
// its one-click unsubscribe headers) and a breach notice to everyone.
// Before the embedded Redis learnt BITFIELD, both stopped in mark.lua and
// still read done with sent 0.
func TestEmbeddedDefaultSendsCampaignsAndBreachNotices(t *testing.T) {
	t.Parallel()
	m, varDir, tokens := startDevDefault(t)
	e := &e2e{main: m, base: "http://" + m.Addr()}

	person := maps.Clone(applicant) // ru, the marketing box ticked
	person["name"], person["email"], person["phone"] = "Тестовый Встроенный Миниредисов", "embedded.default.fake@example.com", "8 701 000 00 31"
	status, body := e.submit(t, person)
	if status != http.StatusAccepted {
		t.Fatalf("request = %d %v", status, body)
	}
	eventually(t, "the acknowledgement and the opt-in request", func() bool { return len(readOutboxMessages(t, varDir, "*.eml")) == 2 })
	var link string
	for _, msg := range readOutboxMessages(t, varDir, "*.eml") {
		if i := strings.Index(msg.text, "/v1/optin/confirm?"); i >= 0 && strings.Contains(msg.text[i:], "token=") {
			link = e.base + strings.Fields(msg.text[i:])[0] // PUBLIC_BASE_URL is not where this server listens
		}
	}
	if link == "" {
		t.Fatal("no confirmation link in the mail")
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} { // the page, then its button
		req, _ := http.NewRequest(method, link, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s of the confirmation link = %d", method, resp.StatusCode)
		}
	}

	status, body = adminCall(t, http.MethodPost, e.base+"/v1/admin/campaigns", tokens["marketing"], map[string]any{
		"name":    "embedded default check",
		"subject": map[string]string{"ru": "Тестовая рассылка встроенного Redis"},
		"text":    map[string]string{"ru": "Текст тестовой рассылки."},
	})
	if status != http.StatusAccepted {
		t.Fatalf("create campaign = %d %v", status, body)
	}
	id := body["id"].(string)
	progress := waitDone(t, e.base+"/v1/admin/campaigns/"+id, tokens["marketing"])
	if progress["sent"] != float64(1) || progress["recipients"] != float64(1) || progress["failed"] != float64(0) {
		t.Fatalf("campaign = %v, want one recipient, sent", progress)
	}
	campaign := onlyTo(t, "campaign", readOutboxMessages(t, varDir, "*-"+id+".eml"), person["email"].(string))
	if !strings.Contains(campaign.text, "Текст тестовой рассылки.") {
		t.Errorf("the campaign email does not carry the campaign's text:\n%s", campaign.text)
	}
	unsubscribe := campaign.header.Get("List-Unsubscribe")
	base := strings.TrimSuffix(m.Config.HTTP.PublicBaseURL.String(), "/")
	if !strings.HasPrefix(unsubscribe, "<"+base+"/v1/unsubscribe?") && !strings.HasPrefix(unsubscribe, "<https://") {
		t.Errorf("List-Unsubscribe = %q, want this server's unsubscribe link", unsubscribe)
	}
	if got := campaign.header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q, want List-Unsubscribe=One-Click", got)
	}

	status, body = adminCall(t, http.MethodPost, e.base+"/v1/admin/breach-notices", tokens["admin"], map[string]any{
		"all": true, "message": map[string]string{"ru": "Тестовое уведомление об инциденте."},
	})
	if status != http.StatusAccepted {
		t.Fatalf("create breach notice = %d %v", status, body)
	}
	id = body["id"].(string)
	progress = waitDone(t, e.base+"/v1/admin/breach-notices/"+id, tokens["admin"])
	if progress["sent"] != float64(1) || progress["recipients"] != float64(1) || progress["failed"] != float64(0) {
		t.Fatalf("breach notice = %v, want one recipient, sent", progress)
	}
	notice := onlyTo(t, "breach notice", readOutboxMessages(t, varDir, "*-"+id+".eml"), person["email"].(string))
	if !strings.Contains(notice.text, "Тестовое уведомление об инциденте.") {
		t.Errorf("the notice does not carry the message:\n%s", notice.text)
	}

	// Erasure reaches into the campaign's marks (erase.lua) and must work
	// here too: afterwards nothing is held.
	email := map[string]any{"email": person["email"]}
	if status, body := adminCall(t, http.MethodPost, e.base+"/v1/admin/subjects/export", tokens["privacy"], email); status != http.StatusOK {
		t.Fatalf("export before erasure = %d %v", status, body)
	}
	if status, body := adminCall(t, http.MethodPost, e.base+"/v1/admin/subjects/erase", tokens["privacy"], email); status != http.StatusOK {
		t.Fatalf("erase = %d %v", status, body)
	}
	if status, body := adminCall(t, http.MethodPost, e.base+"/v1/admin/subjects/export", tokens["privacy"], email); status != http.StatusNotFound {
		t.Fatalf("export after erasure = %d %v, want 404", status, body)
	}
}

// waitDone polls a campaign or notice until it is done and returns its
// progress.
func waitDone(t *testing.T, url, token string) map[string]any {
	t.Helper()
	var progress map[string]any
	eventually(t, "done at "+url, func() bool {
		_, progress = adminCall(t, http.MethodGet, url, token, nil)
		return progress["state"] == "done"
	})
	return progress
}
