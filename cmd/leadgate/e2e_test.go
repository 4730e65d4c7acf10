package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config"
	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/crm/webhook"
)

var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("test-webhook-key-of-32-bytes-ok!"))

// receiver is a fake CRM webhook endpoint: it verifies signatures, fails the
// first failFirst deliveries with 503, and records the rest by webhook-id.
type receiver struct {
	mu         sync.Mutex
	failFirst  int
	attempts   int
	deliveries map[string][]crm.Lead
	badSigs    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if err := webhook.Verify(webhookSecret, r.Header, body, time.Minute, time.Now()); err != nil {
		rc.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.attempts <= rc.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var event struct {
		Type string   `json:"type"`
		Data crm.Lead `json:"data"`
	}
	if err := json.Unmarshal(body, &event); err != nil || event.Type != "lead.created" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.deliveries[r.Header.Get("webhook-id")] = append(rc.deliveries[r.Header.Get("webhook-id")], event.Data)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) delivered(id string) (leads []crm.Lead, badSignatures int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.deliveries[id], rc.badSigs
}

type e2e struct {
	main  *Main
	base  string
	redis *redistest.Server
	rdb   redis.UniversalClient
	recv  *receiver
	sales string // a sales token
}

// setup runs `leadgate serve` in-process against a private redis-server and
// a fake webhook CRM, as an operator would configure it.
func setup(t *testing.T, failFirst int) *e2e {
	t.Helper()
	srv := redistest.Start(t)
	recv := &receiver{failFirst: failFirst, deliveries: map[string][]crm.Lead{}}
	crmServer := httptest.NewServer(recv)
	t.Cleanup(crmServer.Close)
	m := startMain(t, "serve", map[string]string{
		"REDIS_URL":          srv.URL,
		"CRM_DRIVER":         "webhook",
		"CRM_WEBHOOK_URL":    crmServer.URL + "/hooks/leads",
		"CRM_WEBHOOK_SECRET": webhookSecret,
		"RETRY_BASE_DELAY":   "50ms",
	})
	return &e2e{main: m, base: "http://" + m.Addr(), redis: srv, rdb: srv.Client(t), recv: recv,
		sales: salesToken}
}

// salesToken is the admin token startMain configures.
const salesToken = "sales-token-for-e2e-tests"

// startMain runs leadgate in-process as an operator would configure it with
// env (plus a free port, a private var/ and a sales token), until t ends.
func startMain(t testing.TB, role Role, env map[string]string) *Main {
	t.Helper()
	full := map[string]string{"LEADGATE_ADDR": "127.0.0.1:0", "LEADGATE_VAR_DIR": t.TempDir(),
		"LEADGATE_ADMIN_TOKENS": "sales:e2e-sales:" + salesToken}
	maps.Copy(full, env)
	cfg, err := config.Load(func(k string) string { return full[k] })
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Stdout: io.Discard, Log: slog.New(slog.DiscardHandler)}
	if err := m.Run(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// applicant is an obviously fake person whose every value is distinctive, so
// a search of Redis for it cannot match anything else.
var applicant = map[string]any{
	"entity_type": "legal_entity", "name": "Тестовая Компания Зулейха", "phone": "8 701 000 00 07",
	"email": "zuleikha.fake@example.com", "tax_id": "210840004064", "products": []string{"acquiring"},
	"message": "Хотим подключить эквайринг ТЕСТ", "consent_processing": true, "consent_marketing": true,
	"page_url": "https://example.kz/connect", "timezone": "Asia/Almaty",
}

func (e *e2e) submit(t *testing.T, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.base+"/v1/leads", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *e2e) lead(t *testing.T, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+"/v1/admin/leads/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+e.sales)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// eventually polls cond until it holds or 15 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestLeadReachesCRMOnceWithValidSignature(t *testing.T) {
	t.Parallel()
	e := setup(t, 2) // the CRM answers 503 twice before it accepts
	status, body := e.submit(t, applicant)
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	id := body["id"].(string)
	eventually(t, "the lead to be routed", func() bool { return e.lead(t, id)["state"] == "routed" })

	// A repeat within 24 h is a duplicate and must not reach the CRM again.
	if status, dup := e.submit(t, applicant); status != 202 || dup["id"] != id || dup["duplicate"] != true {
		t.Fatalf("repeat = %d %v", status, dup)
	}
	time.Sleep(300 * time.Millisecond) // a second delivery, if any, would arrive in this time
	got, badSigs := e.recv.delivered(id)
	if len(got) != 1 {
		t.Fatalf("CRM received the lead %d times, want exactly once", len(got))
	}
	if badSigs != 0 {
		t.Fatalf("%d deliveries had a bad signature", badSigs)
	}
	d := got[0]
	if d.ID != id || d.Phone != "+77010000007" || d.Email != applicant["email"] || d.Name != applicant["name"] ||
		d.TaxID != "210840004064" || !d.Consent.Processing || !d.Consent.Marketing || d.Metadata.IP != "127.0.0.1" ||
		d.Metadata.PageURL != "https://example.kz/connect" || d.Lang != "ru" {
		t.Fatalf("CRM received %+v", d)
	}
	lead := e.lead(t, id)
	transfers, _ := lead["transfers"].([]any)
	recipients := map[string]int{}
	for _, tr := range transfers {
		recipients[tr.(map[string]any)["recipient"].(string)]++
	}
	// The CRM once; the person's acknowledgement and opt-in request once each.
	if recipients["crm:webhook"] != 1 || recipients["mail"] > 2 || len(recipients) > 2 {
		t.Fatalf("disclosure log = %v, want one transfer to crm:webhook", lead["transfers"])
	}
}

func TestRedisHoldsNoPersonalDataInClear(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	status, body := e.submit(t, applicant)
	if status != 202 {
		t.Fatalf("submit = %d %v", status, body)
	}
	eventually(t, "routing", func() bool { return e.lead(t, body["id"].(string))["state"] == "routed" })
	secrets := []string{"Зулейха", "zuleikha", "7010000007", "701 000 00 07", "210840004064", "эквайринг ТЕСТ",
		"127.0.0.1", "example.kz/connect"}
	ctx := context.Background()
	var dump strings.Builder
	keys, err := e.rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) < 5 {
		t.Fatalf("keys = %d, %v; expected the lead, its indexes and asynq's task", len(keys), err)
	}
	for _, k := range keys {
		dump.WriteString(k + "\n")
		switch typ := e.rdb.Type(ctx, k).Val(); typ {
		case "string":
			dump.WriteString(e.rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range e.rdb.HGetAll(ctx, k).Val() {
				dump.WriteString(f + "=" + v + "\n")
			}
		case "list":
			dump.WriteString(strings.Join(e.rdb.LRange(ctx, k, 0, -1).Val(), "\n"))
		case "set":
			dump.WriteString(strings.Join(e.rdb.SMembers(ctx, k).Val(), "\n"))
		case "zset":
			dump.WriteString(strings.Join(e.rdb.ZRange(ctx, k, 0, -1).Val(), "\n"))
		case "stream":
			for _, m := range e.rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					dump.WriteString(f + "=" + v.(string) + "\n")
				}
			}
		default:
			t.Fatalf("key %s has type %s the dump does not read", k, typ)
		}
		dump.WriteString("\n")
	}
	all := strings.ToLower(dump.String())
	for _, s := range secrets {
		if strings.Contains(all, strings.ToLower(s)) {
			t.Errorf("Redis holds %q in clear", s)
		}
	}
}

func TestRedisDownAnswers503(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	e.redis.Stop()
	status, body := e.submit(t, applicant)
	if status != http.StatusServiceUnavailable || body["error"] != "unavailable" {
		t.Fatalf("with Redis down = %d %v, want 503", status, body)
	}
	resp, err := http.Get(e.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down = %d, want 503", resp.StatusCode)
	}
}

// TestBinary runs the real binary: version, a one-line refusal of bad
// configuration, and a clean exit on SIGTERM.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "leadgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "leadgate ") {
		t.Fatalf("version = %q, %v", out, err)
	}

	bad := exec.Command(bin, "web")
	bad.Dir = t.TempDir()
	bad.Env = append(os.Environ(), "LEADGATE_ENV=production")
	out, err = bad.CombinedOutput()
	if err == nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "REDIS_URL") {
		t.Fatalf("production without REDIS_URL: err %v, output %q; want a one-line reason", err, out)
	}

	srv := redistest.Start(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "REDIS_URL="+srv.URL, "LEADGATE_ADDR=127.0.0.1:0")
	var stdout lockedBuffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to start", func() bool { return strings.Contains(stdout.String(), "serves the form") })
	if !strings.Contains(stdout.String(), "generated admin tokens") {
		t.Fatalf("development start did not print its generated tokens:\n%s", stdout.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit within 30 s of SIGTERM")
	}
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSalesNotifiedByEmail(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	recv := &receiver{deliveries: map[string][]crm.Lead{}}
	crmServer := httptest.NewServer(recv)
	t.Cleanup(crmServer.Close)
	varDir := t.TempDir()
	m := startMain(t, "serve", map[string]string{
		"REDIS_URL": srv.URL, "LEADGATE_VAR_DIR": varDir, "CRM_DRIVER": "webhook",
		"CRM_WEBHOOK_URL": crmServer.URL, "CRM_WEBHOOK_SECRET": webhookSecret,
		"SALES_NOTIFY_EMAIL": "sales@example.kz", "MAIL_FROM": "leadgate@example.kz", "MAIL_DRIVER": "file",
	})
	e := &e2e{main: m, base: "http://" + m.Addr(), sales: salesToken}
	status, body := e.submit(t, applicant)
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	id := body["id"].(string)
	eventually(t, "the email notification", func() bool {
		transfers, _ := e.lead(t, id)["transfers"].([]any)
		for _, tr := range transfers {
			if tr.(map[string]any)["recipient"] == "email" {
				return true
			}
		}
		return false
	})
	// The person's own mail (acknowledgement, opt-in) goes there too: find
	// the one to sales.
	files, _ := filepath.Glob(filepath.Join(varDir, "outbox", "*.eml"))
	var raw []byte
	for _, f := range files {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("sales@example.kz")) {
			raw = b
		}
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	to, _ := msg.Header.AddressList("To")
	if len(to) != 1 || to[0].Address != "sales@example.kz" || !strings.Contains(subject, "Юрлицо") {
		t.Fatalf("email to %v, subject %q", to, subject)
	}
	for _, secret := range []string{"zuleikha", "7010000007"} {
		if strings.Contains(strings.ToLower(string(raw)), secret) {
			t.Errorf("the sales email carries the applicant's contact %q", secret)
		}
	}
}

// readOutbox returns each email the file mail driver wrote as its subject
// and text part, to search for links.
func readOutbox(t *testing.T, varDir string) []string {
	t.Helper()
	var out []string
	for _, m := range readOutboxMessages(t, varDir, "*.eml") {
		out = append(out, m.subject+"\n"+m.text)
	}
	return out
}

type outboxMessage struct {
	header  netmail.Header
	to      []*netmail.Address
	subject string // decoded
	text    string // the text/plain part, decoded
}

// readOutboxMessages parses the .eml files of the file mail driver whose
// name matches pattern; the driver names each <time>-<ref>.eml, where ref is
// a campaign's or notice's id.
func readOutboxMessages(t *testing.T, varDir, pattern string) []outboxMessage {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(varDir, "outbox", pattern))
	var out []outboxMessage
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		part, err := multipart.NewReader(msg.Body, params["boundary"]).NextPart() // text/plain comes first
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		text, _ := io.ReadAll(part) // quoted-printable is undone by the reader
		to, _ := msg.Header.AddressList("To")
		subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		out = append(out, outboxMessage{header: msg.Header, to: to, subject: subject, text: string(text)})
	}
	return out
}

func TestAcknowledgementAndDoubleOptIn(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	varDir := t.TempDir()
	m := startMain(t, "serve", map[string]string{"REDIS_URL": srv.URL, "LEADGATE_VAR_DIR": varDir, "MAIL_DRIVER": "file"})
	e := &e2e{main: m, base: "http://" + m.Addr(), sales: salesToken, rdb: srv.Client(t)}
	status, body := e.submit(t, applicant) // consent_marketing: true
	if status != http.StatusAccepted {
		t.Fatalf("submit = %d %v", status, body)
	}
	eventually(t, "the acknowledgement and the opt-in request", func() bool { return len(readOutbox(t, varDir)) == 2 })
	var link string
	for _, mail := range readOutbox(t, varDir) {
		if i := strings.Index(mail, "/v1/optin/confirm?"); i >= 0 {
			// The link is on PUBLIC_BASE_URL; this server listens elsewhere.
			link = e.base + strings.Fields(mail[i:])[0]
		}
	}
	if link == "" {
		t.Fatalf("no confirmation link in the mail:\n%s", strings.Join(readOutbox(t, varDir), "\n----\n"))
	}
	marketing := func() string {
		keys, _ := e.rdb.Keys(context.Background(), "lg:person:*").Result()
		for _, k := range keys {
			if v, _ := e.rdb.HGet(context.Background(), k, "marketing").Result(); v != "" {
				return v
			}
		}
		return ""
	}
	resp, err := http.Get(link) // a link scanner's prefetch: must not confirm
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(page)), `method="post"`) || marketing() != "pending" {
		t.Fatalf("GET of the link = %d, marketing %q; want a confirm button and still pending", resp.StatusCode, marketing())
	}
	resp, err = http.Post(link, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || marketing() != "active" {
		t.Fatalf("POST of the link = %d, marketing %q; want active", resp.StatusCode, marketing())
	}
	if resp, _ := http.Post(link+"x", "application/x-www-form-urlencoded", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a tampered link = %d, want 400", resp.StatusCode)
	}

	// Another request of the same person the same day: routed, not mailed again.
	again := maps.Clone(applicant)
	again["phone"] = "8 701 000 00 08"
	status, body = e.submit(t, again)
	if status != http.StatusAccepted || body["duplicate"] == true {
		t.Fatalf("second request = %d %v", status, body)
	}
	eventually(t, "the second lead routed", func() bool { return e.lead(t, body["id"].(string))["state"] == "routed" })
	if n := len(readOutbox(t, varDir)); n != 2 {
		t.Fatalf("%d emails after a second request the same day, want still 2", n)
	}
}
