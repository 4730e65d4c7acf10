package httpapi

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// fakeQueue records what was enqueued.
type fakeQueue struct {
	mu         sync.Mutex
	ids        []string
	campaigns  []string
	crmUpdates []string
	crmErases  []string // "id system ref"
}

var _ intake.Queue = (*fakeQueue)(nil)

func (q *fakeQueue) EnqueueLead(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	return nil
}

func (q *fakeQueue) EnqueueCampaign(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.campaigns = append(q.campaigns, id)
	return nil
}

func (q *fakeQueue) EnqueueCRMUpdate(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.crmUpdates = append(q.crmUpdates, id)
	return nil
}

func (q *fakeQueue) EnqueueCRMErase(_ context.Context, id, system, ref string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.crmErases = append(q.crmErases, id+" "+system+" "+ref)
	return nil
}

func (q *fakeQueue) enqueued() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.ids...)
}

type httpFixture struct {
	storeFixture
	queue *fakeQueue
	url   string
}

const (
	salesToken     = "sales-token-0123456789"
	marketingToken = "marketing-token-0123456789"
	adminToken     = "admin-token-0123456789"
)

func setupHTTP(t *testing.T, edit ...func(*Options)) httpFixture {
	t.Helper()
	sf := setupStore(t)
	q := &fakeQueue{}
	opts := Options{
		PublicOrigin: "https://leads.example.kz", AllowedOrigins: []string{"https://www.example.kz"},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		DefaultLang:    templates.RU, Products: []string{"acquiring", "payment_links", "recurring", "payouts", "pos"},
		CaptureCookies: []string{"_ga"}, PolicyVersion: "1", PolicyURL: "https://example.kz/privacy",
		PerIP: intake.Limit{N: 100, Per: time.Hour}, PerEmail: intake.Limit{N: 100, Per: time.Hour},
		AdminTokens: []intake.Token{{Role: "sales", Name: "s", Secret: salesToken},
			{Role: "marketing", Name: "m", Secret: marketingToken}, {Role: "admin", Name: "a", Secret: adminToken}},
	}
	for _, e := range edit {
		e(&opts)
	}
	mux := http.NewServeMux()
	sf.server(q, opts, slog.New(slog.DiscardHandler)).Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return httpFixture{storeFixture: sf, queue: q, url: ts.URL}
}

const validJSON = `{"entity_type":"legal_entity","name":"ТОО «Тест»","phone":"8 701 000 00 01",
	"email":"test@example.com","tax_id":"210840004064","products":["acquiring"],
	"consent_processing":true,"timezone":"Asia/Almaty","utm_source":"test","unknown_field":1}`

func post(t *testing.T, url, contentType, body string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/leads", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	return m
}

func TestSubmitJSON(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	resp := post(t, f.url, "application/json", validJSON, map[string]string{
		"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Cookie":     "_ga=GA1.2.3; other=secret", "X-Forwarded-For": "203.0.113.9"})
	body := decode(t, resp)
	if resp.StatusCode != http.StatusAccepted || body["status"] != "accepted" || body["duplicate"] != nil {
		t.Fatalf("answer %d %v", resp.StatusCode, body)
	}
	id := body["id"].(string)
	if q := f.handedOver(t); len(q) != 1 || q[0] != id {
		t.Fatalf("queued %v, want [%s]", q, id)
	}
	l, err := f.store.Leads.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Phone != "+77010000001" || l.Name != "ТОО «Тест»" || l.Lang != "ru" || l.Meta.IP != "203.0.113.9" ||
		l.Meta.Browser != "Chrome 120" || l.Meta.OS != "Windows 10" || l.Meta.Timezone != "Asia/Almaty" ||
		l.Meta.UTMSource != "test" || l.Meta.Cookies["_ga"] != "GA1.2.3" || len(l.Meta.Cookies) != 1 ||
		!l.Consent.Processing || l.Consent.Marketing || l.Consent.PolicyURL != "https://example.kz/privacy" {
		t.Fatalf("stored lead = %+v", l)
	}

	again := decode(t, post(t, f.url, "application/json", validJSON, nil))
	if again["id"] != id || again["duplicate"] != true {
		t.Fatalf("repeat answered %v, want the first id as a duplicate", again)
	}
}

func TestSubmitRejections(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	cases := []struct {
		name, contentType, body string
		header                  map[string]string
		status                  int
		errCode                 string
	}{
		{"malformed JSON", "application/json", `{"entity_type":`, nil, 400, "bad_request"},
		{"JSON array", "application/json", `[1,2]`, nil, 400, "bad_request"},
		{"wrong JSON type", "application/json", `{"name":5}`, nil, 422, "validation_failed"},
		{"multipart", "multipart/form-data; boundary=x", "--x--", nil, 415, "unsupported_media_type"},
		{"text", "text/plain", "hello", nil, 415, "unsupported_media_type"},
		{"no type", "", validJSON, nil, 415, "unsupported_media_type"},
		{"too large", "application/json", `{"message":"` + strings.Repeat("x", MaxBody) + `"}`, nil, 413, "too_large"},
		{"foreign origin", "application/json", validJSON, map[string]string{"Origin": "https://evil.example"}, 403, "forbidden_origin"},
		{"null origin", "application/json", validJSON, map[string]string{"Origin": "null"}, 403, "forbidden_origin"},
		{"malformed form", "application/x-www-form-urlencoded", "a=%zz", nil, 400, "bad_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := post(t, f.url, c.contentType, c.body, c.header)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if body := decode(t, resp); body["error"] != c.errCode {
				t.Fatalf("body %v, want error %s", body, c.errCode)
			}
		})
	}
	if q := f.handedOver(t); len(q) != 0 {
		t.Fatalf("rejected requests queued %v", q)
	}
}

func TestSubmitValidationMessagesInLanguage(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	bad := `{"entity_type":"legal_entity","phone":"12","email":"a@b","consent_processing":false}`
	for _, c := range []struct {
		header map[string]string
		lang   templates.Lang
	}{
		{nil, templates.RU},
		{map[string]string{"Accept-Language": "kk-KZ,kk;q=0.9"}, templates.KK},
		{map[string]string{"Accept-Language": "en"}, templates.EN},
	} {
		resp := post(t, f.url, "application/json", bad, c.header)
		body := decode(t, resp)
		fields, _ := body["fields"].(map[string]any)
		if resp.StatusCode != 422 || body["error"] != "validation_failed" || len(fields) != 3 ||
			fields["phone"] != templates.Message(c.lang, "phone.invalid") ||
			fields["email"] != templates.Message(c.lang, "email.invalid") ||
			fields["consent_processing"] != templates.Message(c.lang, "consent_processing.required") {
			t.Fatalf("%s: %d %v", c.lang, resp.StatusCode, body)
		}
	}
	// The request's own lang field wins over the browser's.
	body := decode(t, post(t, f.url, "application/json", strings.Replace(bad, "{", `{"lang":"en",`, 1),
		map[string]string{"Accept-Language": "kk"}))
	if body["fields"].(map[string]any)["phone"] != templates.Message(templates.EN, "phone.invalid") {
		t.Fatalf("lang field ignored: %v", body)
	}
}

func TestHoneypot(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	resp := post(t, f.url, "application/json", strings.Replace(validJSON, "{", `{"website":"http://spam.example",`, 1), nil)
	body := decode(t, resp)
	if resp.StatusCode != 202 || body["status"] != "accepted" || body["id"] == "" {
		t.Fatalf("bot answered %d %v, want a normal-looking 202", resp.StatusCode, body)
	}
	if n, _ := f.rdb.DBSize(context.Background()).Result(); n != 0 {
		t.Fatalf("honeypot stored %d keys", n)
	}
}

func TestBrowserFormPost(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	form := url.Values{"entity_type": {"sole_proprietor"}, "name": {"Тест Тестұлы"}, "phone": {"+7 701 000 00 02"},
		"email": {"ip.test@example.com"}, "consent_processing": {"on"}, "consent_marketing": {"on"},
		"products": {"pos", "payouts"}, "lang": {"kk"}}
	browser := map[string]string{"Accept": "text/html,application/xhtml+xml", "Origin": "https://leads.example.kz"}
	resp := post(t, f.url, "application/x-www-form-urlencoded", form.Encode(), browser)
	// The thanks page gets the reference a script's 202 gives: the lead id.
	q := f.handedOver(t)
	if resp.StatusCode != http.StatusSeeOther || len(q) != 1 || resp.Header.Get("Location") != "/thanks?lang=kk&ref="+q[0] {
		t.Fatalf("browser success = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	l, err := f.store.Leads.Get(context.Background(), q[0])
	if err != nil || !l.Consent.Marketing || strings.Join(l.Products, ",") != "pos,payouts" || l.Lang != "kk" {
		t.Fatalf("stored %+v, %v", l, err)
	}

	form.Set("phone", "not a phone")
	form.Set("email", "other@example.com")
	resp = post(t, f.url, "application/x-www-form-urlencoded", form.Encode(), browser)
	raw, _ := io.ReadAll(resp.Body)
	page := html.UnescapeString(string(raw))
	if resp.StatusCode != 422 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, templates.Message(templates.KK, "phone.invalid")) ||
		!strings.Contains(page, "other@example.com") {
		t.Fatalf("browser failure = %d, want the form again with the error inline and values kept", resp.StatusCode)
	}

	form.Set("phone", "+7 701 000 00 03")
	form.Set("redirect_url", "https://www.example.kz/thank-you")
	resp = post(t, f.url, "application/x-www-form-urlencoded", form.Encode(), browser)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://www.example.kz/thank-you" {
		t.Fatalf("allowed redirect = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	form.Set("phone", "+7 701 000 00 04")
	form.Set("redirect_url", "https://evil.example/phish")
	if resp = post(t, f.url, "application/x-www-form-urlencoded", form.Encode(), browser); resp.StatusCode != 422 {
		t.Fatalf("foreign redirect_url = %d, want 422", resp.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	resp := post(t, f.url, "application/json", validJSON, map[string]string{"Origin": "https://www.example.kz"})
	if resp.StatusCode != 202 || resp.Header.Get("Access-Control-Allow-Origin") != "https://www.example.kz" {
		t.Fatalf("allowed origin = %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	req, _ := http.NewRequest(http.MethodOptions, f.url+"/v1/leads", nil)
	req.Header.Set("Origin", "https://www.example.kz")
	req.Header.Set("Access-Control-Request-Method", "POST")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
		t.Fatalf("preflight = %d %v", pre.StatusCode, pre.Header)
	}
	req.Header.Set("Origin", "https://evil.example")
	if pre, _ = http.DefaultClient.Do(req); pre.StatusCode != 403 {
		t.Fatalf("preflight from a foreign origin = %d, want 403", pre.StatusCode)
	}
}

func TestSubmitRateLimited(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, func(o *Options) { o.PerIP = intake.Limit{N: 1, Per: time.Hour} })
	if resp := post(t, f.url, "application/json", validJSON, nil); resp.StatusCode != 202 {
		t.Fatalf("first = %d", resp.StatusCode)
	}
	resp := post(t, f.url, "application/json", strings.Replace(validJSON, "test@", "other@", 1), nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || decode(t, resp)["error"] != "rate_limited" {
		t.Fatalf("second = %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestSubmitRedisDown(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	f.srv.Stop()
	resp := post(t, f.url, "application/json", validJSON, nil)
	if resp.StatusCode != 503 || decode(t, resp)["error"] != "unavailable" {
		t.Fatalf("Redis down = %d, want 503", resp.StatusCode)
	}
}

func TestAdminLead(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	id := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	get := func(path, token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	for _, c := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401}, {"wrong token", "sales-token-0123456788", 401},
		{"wrong role", marketingToken, 403}, {"sales", salesToken, 200}, {"admin", adminToken, 200},
	} {
		resp, body := get("/v1/admin/leads/"+id, c.token)
		if resp.StatusCode != c.status {
			t.Fatalf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
		}
		if c.status == 200 && (body["email"] != "test@example.com" || body["phone"] != "+77010000001" || body["state"] != "received") {
			t.Fatalf("%s: body %v", c.name, body)
		}
	}
	if resp, _ := get("/v1/admin/leads/unknown", salesToken); resp.StatusCode != 404 {
		t.Fatalf("unknown lead = %d, want 404", resp.StatusCode)
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "198.51.100.1", "203.0.113.5"}, // not from a proxy: the header is ignored
		{"10.0.0.2:1234", "198.51.100.1", "198.51.100.1"},
		{"10.0.0.2:1234", "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"}, // right-most untrusted hop
		{"10.0.0.2:1234", "garbage, 198.51.100.1", "198.51.100.1"},
		{"10.0.0.2:1234", "198.51.100.1, garbage", "10.0.0.2"},
		{"[::1]:1234", "2001:db8::1", "2001:db8::1"},
		{"10.0.0.2:1234", "10.0.0.9", "10.0.0.9"},
		{"10.0.0.2:1234", "203.0.113.7:5555", "203.0.113.7"}, // some proxies add the port
		{"10.0.0.2:1234", "[2001:db8::7]:5555", "2001:db8::7"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientIP(r, trusted); got != c.want {
			t.Errorf("clientIP(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func adminDo(t *testing.T, method, url, token string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

func TestAdminListAndRedrive(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	id := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	f.store.Leads.Transition(context.Background(), id, intake.Transition{From: intake.Received, To: intake.Failed, Route: intake.Route{Error: "webhook push: HTTP 422"}})

	resp, body := adminDo(t, http.MethodGet, f.url+"/v1/admin/leads?state=failed", salesToken)
	leads, _ := body["leads"].([]any)
	if resp.StatusCode != 200 || len(leads) != 1 || leads[0].(map[string]any)["id"] != id {
		t.Fatalf("failed leads = %d %v", resp.StatusCode, body)
	}
	if route := leads[0].(map[string]any)["route"].(map[string]any); route["error"] != "webhook push: HTTP 422" {
		t.Fatalf("listed route = %v, want the failure reason", route)
	}
	if resp, _ := adminDo(t, http.MethodGet, f.url+"/v1/admin/leads?state=lost", salesToken); resp.StatusCode != 422 {
		t.Errorf("list?state=lost = %d, want 422", resp.StatusCode)
	}
	for _, bad := range []string{"?since=yesterday", "?limit=0", "?cursor=x"} {
		if resp, _ := adminDo(t, http.MethodGet, f.url+"/v1/admin/leads"+bad, salesToken); resp.StatusCode != 400 {
			t.Errorf("list%s = %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := adminDo(t, http.MethodPost, f.url+"/v1/admin/leads/"+id+"/redrive", marketingToken); resp.StatusCode != 403 {
		t.Fatalf("redrive by marketing = %d, want 403", resp.StatusCode)
	}
	resp, body = adminDo(t, http.MethodPost, f.url+"/v1/admin/leads/"+id+"/redrive", salesToken)
	if resp.StatusCode != 202 || body["previous"] != "failed" || body["state"] != "received" {
		t.Fatalf("redrive = %d %v", resp.StatusCode, body)
	}
	if q := f.handedOver(t); len(q) != 2 || q[1] != id {
		t.Fatalf("queue after redrive = %v, want the lead queued again", q)
	}
	if resp, _ := adminDo(t, http.MethodPost, f.url+"/v1/admin/leads/"+id+"/redrive", salesToken); resp.StatusCode != 409 {
		t.Fatalf("second redrive = %d, want 409 (the lead is received)", resp.StatusCode)
	}
	if resp, _ := adminDo(t, http.MethodPost, f.url+"/v1/admin/leads/unknown/redrive", salesToken); resp.StatusCode != 404 {
		t.Fatalf("redrive of an unknown lead = %d, want 404", resp.StatusCode)
	}
}

func TestSubmitObservesAntiFraudSignals(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	resp, err := http.Get(f.url + "/?lang=en")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, ok := strings.Cut(string(page), `name="form_token" value="`)
	token, _, _ := strings.Cut(rest, `"`)
	if !ok || token == "" {
		t.Fatal("the form page carries no form_token")
	}
	f.clock.Add(1500 * time.Millisecond)
	observed := func(phone string, form url.Values) intake.Observed {
		t.Helper()
		form.Set("phone", phone)
		resp := post(t, f.url, "application/x-www-form-urlencoded", form.Encode(), map[string]string{"Accept": "text/html"})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("post = %d", resp.StatusCode)
		}
		q := f.handedOver(t)
		l, err := f.store.Leads.Get(context.Background(), q[len(q)-1])
		if err != nil {
			t.Fatal(err)
		}
		return l.Observed
	}
	form := url.Values{"entity_type": {"legal_entity"}, "email": {"test@example.com"}, "consent_processing": {"on"},
		"form_token": {token}, "timezone": {"Asia/Almaty"}}
	if o := observed("+77010000011", form); o.FormAge != 1500*time.Millisecond || o.FormTokenInvalid || !o.ScriptRan || !o.BrowserPost {
		t.Fatalf("genuine post observed %+v", o)
	}
	form.Set("form_token", "1700000000000.forged")
	form.Del("timezone")
	form.Set("website", "  ")
	if o := observed("+77010000012", form); !o.FormTokenInvalid || o.ScriptRan || !o.HoneypotNearMiss {
		t.Fatalf("forged post observed %+v", o)
	}
}

func TestRedirectTargets(t *testing.T) {
	t.Parallel()
	p := originPolicy{own: "https://leads.example.kz", allowed: []string{"https://www.example.kz"}}
	for target, want := range map[string]bool{
		"/thanks":                              true,
		"/thanks?x=1":                          true,
		"https://leads.example.kz/ok":          true,
		"https://www.example.kz/thank-you":     true,
		"https://WWW.example.kz/thank-you":     true,
		"//evil.example/x":                     false,
		"/\\evil.example":                      false,
		"/\t/evil.example":                     false,
		"/\n/evil.example":                     false,
		"https://evil.example/":                false,
		"https://www.example.kz.evil.example/": false,
		"https://user@www.example.kz/":         false,
		"javascript:alert(1)":                  false,
		"thanks":                               false,
	} {
		if got := p.allowsRedirect(target); got != want {
			t.Errorf("allowsRedirect(%q) = %v, want %v", target, got, want)
		}
	}
}

// A repeat that adds the marketing box asks for confirmation only once its
// lead passed the risk check; a received lead gets its link from the router.
func TestRepeatAddingOptIn(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, func(o *Options) { o.DoubleOptIn = true })
	id := decode(t, post(t, f.url, "application/json", validJSON, nil))["id"].(string)
	withBox := strings.Replace(validJSON, "{", `{"consent_marketing":true,`, 1)
	post(t, f.url, "application/json", withBox, nil)
	if early := f.admitted(t, "optin"); len(early) != 0 {
		t.Fatal("a repeat of a lead not yet screened queued an opt-in request")
	}
	f.store.Leads.Transition(context.Background(), id, intake.Transition{From: intake.Received, To: intake.Routed})
	post(t, f.url, "application/json", withBox, nil)
	if optins := f.admitted(t, "optin"); len(optins) != 1 || optins[0] != id {
		t.Fatalf("opt-in requests queued = %v, want the routed lead's", optins)
	}
}
