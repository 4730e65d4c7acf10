package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/console"
)

// The console's own rules, over the real route table and a private Redis:
// the cookie, the headers, who may open what, the csrf field, sign-in
// limits and session expiry. cmd/leadgate/console_browser_test.go drives
// the same pages in Chromium.

const privacyConsoleToken = "privacy-token-0123456789"

// consoleFixture is setupHTTP with a privacy token too.
func consoleFixture(t *testing.T, edit ...func(*Options)) httpFixture {
	t.Helper()
	return setupHTTP(t, append([]func(*Options){func(o *Options) {
		o.AdminTokens = append(o.AdminTokens,
			intake.Token{Role: intake.RolePrivacy, Name: "p", Secret: privacyConsoleToken},
			intake.Token{Role: intake.RoleMetrics, Name: "prometheus", Secret: "metrics-token-0123456789"})
		o.ConsoleLoginLimit = intake.Limit{N: 1000, Per: time.Minute} // every test signs in from 127.0.0.1
	}}, edit...)...)
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// consoleDo sends one console request with the session cookie (if any)
// and returns the answer with its body read.
func consoleDo(t *testing.T, method, u, cookie string, form url.Values, header map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs in with token and returns the session cookie and the
// answer's Set-Cookie.
func signIn(t *testing.T, base, token string) (string, *http.Cookie) {
	t.Helper()
	resp, _ := consoleDo(t, "POST", base+"/admin/login", "", url.Values{"token": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/") {
		t.Fatalf("sign-in: %d to %q, want 303 to /admin/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			return c.Value, c
		}
	}
	t.Fatal("sign-in set no session cookie")
	return "", nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf reads the csrf field of the session's pages.
func csrfOf(t *testing.T, base, cookie string) string {
	t.Helper()
	_, body := consoleDo(t, "GET", base+"/admin/", cookie, nil, nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the home page has no csrf field")
	}
	return m[1]
}

// reviewLead stores a lead and holds it for review, returning its id.
func reviewLead(t *testing.T, f httpFixture) string {
	t.Helper()
	ctx := context.Background()
	adm, err := f.store.Leads.Accept(ctx, application(fakePerson()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Leads.Transition(ctx, adm.ID, intake.Transition{From: intake.Received, To: intake.Review,
		Risk: &intake.Risk{Score: 80, Signals: []string{"fast_submit"}}}); err != nil {
		t.Fatal(err)
	}
	return adm.ID
}

func TestConsoleCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		origin string
		secure bool
	}{{"https://leads.example.kz", true}, {"http://localhost:8080", false}} {
		f := consoleFixture(t, func(o *Options) { o.PublicOrigin = tc.origin })
		value, c := signIn(t, f.url, salesToken)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin" || c.Secure != tc.secure {
			t.Errorf("%s: cookie HttpOnly %v SameSite %v Path %q Secure %v; want true, Strict, /admin, %v",
				tc.origin, c.HttpOnly, c.SameSite, c.Path, c.Secure, tc.secure)
		}
		if strings.Contains(value, salesToken) || len(value) < 22 {
			t.Errorf("%s: the cookie carries the token, or fewer than 128 bits", tc.origin)
		}
	}
}

func TestConsoleHeaders(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, salesToken)
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	for _, tc := range []struct{ method, path, cookie string }{
		{"GET", "/admin/login", ""}, {"GET", "/admin/", cookie}, {"GET", "/admin/leads", cookie},
		{"GET", "/admin/leads", ""}, // the redirect to sign in
	} {
		resp, _ := consoleDo(t, tc.method, f.url+tc.path, tc.cookie, nil, nil)
		h := resp.Header
		if h.Get("Cache-Control") != "no-store" || h.Get("Content-Security-Policy") != csp || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Content-Encoding") != "" {
			t.Errorf("%s %s (%d): Cache-Control %q, CSP %q, X-Frame-Options %q, Content-Encoding %q", tc.method, tc.path,
				resp.StatusCode, h.Get("Cache-Control"), h.Get("Content-Security-Policy"), h.Get("X-Frame-Options"), h.Get("Content-Encoding"))
		}
	}
}

// TestConsoleRoutesByRole opens every console route of the table as each
// role that may sign in: its own role's pages and admin's answer, others 403.
func TestConsoleRoutesByRole(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	srv := f.server(f.queue, Options{}, slog.New(slog.DiscardHandler))
	tokens := map[intake.Role]string{intake.RoleSales: salesToken, intake.RoleMarketing: marketingToken,
		intake.RolePrivacy: privacyConsoleToken, intake.RoleAdmin: adminToken}
	checked := 0
	for _, rt := range srv.routes() {
		if rt.auth != authSession {
			if strings.Contains(rt.pattern, " /admin") && !strings.HasSuffix(rt.pattern, " /admin/login") {
				t.Errorf("%s is a console route without a session", rt.pattern)
			}
			continue
		}
		for role, token := range tokens {
			t.Run(rt.pattern+" as "+string(role), func(t *testing.T) {
				cookie, _ := signIn(t, f.url, token)
				method, path, _ := strings.Cut(rt.pattern, " ")
				id := ""
				// A lead for each: one redriven is not redriven again, and a
				// person erased is not found again.
				if strings.HasPrefix(path, "/admin/leads/") || strings.Contains(path, "{handle}") {
					id = reviewLead(t, f)
				}
				allowed := rt.role == signedIn || role.Permits(rt.role)
				handle := "no-such-handle"                         // refused before it is looked up
				if allowed && strings.Contains(path, "{handle}") { // privacy console
					handle = findPerson(t, f.url, cookie)
				}
				if strings.HasPrefix(path, "/admin/campaigns/") {
					id = queuedCampaign(t, f) // campaigns: a campaign's pages are named by a campaign's id
				}
				if strings.HasPrefix(path, "/admin/breach-notices/") { // admin's pages: a notice's id
					id = sentNotice(t, f)
				}
				queue, task := "leads", "no-such-task" // admin's pages: a failed task to retry
				if allowed && strings.Contains(path, "{task}") {
					ft := failedCampaignTask(f)
					queue, task = ft.Queue, ft.ID
				}
				path = strings.NewReplacer("{$}", "", "{id}", id, "{handle}", handle, "{queue}", queue, "{task}", task).Replace(path)
				var form url.Values
				if method == "POST" {
					form = url.Values{"csrf": {csrfOf(t, f.url, cookie)}}
					for k, v := range subjectForms[rt.pattern] { // privacy console
						form[k] = v
					}
				}
				if rt.pattern == "POST /admin/campaigns" { // campaigns: a form that passes, sent
					for k, v := range validCampaignForm() {
						form[k] = v
					}
				}
				if rt.pattern == "POST /admin/breach-notices" { // admin's pages: a notice that passes, sent
					for k, v := range validNoticeForm() {
						form[k] = v
					}
				}
				resp, _ := consoleDo(t, method, f.url+path, cookie, form, nil)
				want := http.StatusForbidden
				if allowed {
					want = http.StatusOK
					if method == "POST" && rt.pattern != "POST /admin/subjects/p/{handle}/export" { // a download
						want = http.StatusSeeOther
					}
				}
				if resp.StatusCode != want {
					t.Errorf("%d, want %d", resp.StatusCode, want)
				}
			})
			checked++
		}
	}
	if checked < 4*5 {
		t.Errorf("checked %d route × role pairs: the table lost console routes", checked)
	}
}

func TestConsoleMetricsAndWrongTokens(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	for _, tc := range []struct {
		token string
		want  int
	}{{"metrics-token-0123456789", http.StatusForbidden}, {"wrong-token-0123456789", http.StatusUnauthorized}, {"", http.StatusUnauthorized}} {
		resp, body := consoleDo(t, "POST", f.url+"/admin/login", "", url.Values{"token": {tc.token}}, nil)
		if resp.StatusCode != tc.want || len(resp.Cookies()) != 0 {
			t.Errorf("sign-in with a %d token: %d and %d cookies, want %d and none", tc.want, resp.StatusCode, len(resp.Cookies()), tc.want)
		}
		if tc.token != "" && strings.Contains(body, tc.token) {
			t.Error("the answer repeats the token")
		}
	}
}

func TestConsoleLoginRateLimit(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t, func(o *Options) { o.ConsoleLoginLimit = intake.Limit{N: 3, Per: time.Minute} })
	for i := 1; i <= 3; i++ {
		if resp, _ := consoleDo(t, "POST", f.url+"/admin/login", "", url.Values{"token": {"wrong-token-0123456789"}}, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i, resp.StatusCode)
		}
	}
	// Past the limit even the right token waits: guessing must not tell.
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/login", "", url.Values{"token": {salesToken}}, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth attempt: %d, want 429", resp.StatusCode)
	}
}

func TestConsoleRefusesCrossSiteSignIn(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
	} {
		if resp, _ := consoleDo(t, "POST", f.url+"/admin/login", "", url.Values{"token": {salesToken}}, h); resp.StatusCode != http.StatusForbidden {
			t.Errorf("sign-in with %v: %d, want 403", h, resp.StatusCode)
		}
	}
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/login", "", url.Values{"token": {salesToken}},
		map[string]string{"Origin": "https://leads.example.kz", "Sec-Fetch-Site": "same-origin"}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin sign-in: %d, want 303", resp.StatusCode)
	}
}

func TestConsoleCSRF(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	id := reviewLead(t, f)
	mine, _ := signIn(t, f.url, salesToken)
	other, _ := signIn(t, f.url, salesToken)
	for name, form := range map[string]url.Values{
		"no csrf field":          {},
		"another session's csrf": {"csrf": {csrfOf(t, f.url, other)}},
		"an empty csrf":          {"csrf": {""}},
	} {
		for _, path := range []string{"/admin/leads/" + id + "/redrive", "/admin/logout"} {
			if resp, _ := consoleDo(t, "POST", f.url+path, mine, form, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with %s: %d, want 403", path, name, resp.StatusCode)
			}
		}
	}
	if l, _ := f.store.Leads.Get(context.Background(), id); l.State != intake.Review {
		t.Fatalf("a refused post changed the lead: %s", l.State)
	}
	// Without a session a post is refused too.
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/leads/"+id+"/redrive", "", url.Values{"csrf": {"x"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a post without a session: %d, want 403", resp.StatusCode)
	}
}

func TestConsoleReleaseAuditedUnderHolder(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	id := reviewLead(t, f)
	cookie, _ := signIn(t, f.url, salesToken)
	resp, body := consoleDo(t, "GET", f.url+"/admin/leads/"+id+"?lang=en", cookie, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "test.person@example.com") && !strings.Contains(body, "Test.Person@Example.com") {
		t.Fatalf("the lead page: %d, without the decrypted email", resp.StatusCode)
	}
	resp, _ = consoleDo(t, "POST", f.url+"/admin/leads/"+id+"/redrive?lang=en", cookie, url.Values{"csrf": {csrfOf(t, f.url, cookie)}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/leads/"+id+"?") {
		t.Fatalf("release: %d to %q, want 303 to the lead's page", resp.StatusCode, loc)
	}
	if l, _ := f.store.Leads.Get(context.Background(), id); l.State != intake.Received {
		t.Errorf("released lead is %s, want received (queued again)", l.State)
	}
	if len(f.queue.enqueued()) == 0 {
		t.Error("the released lead was not queued")
	}
	var view, release bool
	for _, ev := range auditEvents(t, f.ops) {
		if ev.Name == "s" && ev.Role == intake.RoleSales && ev.Target == id {
			view = view || ev.Action == "GET /admin/leads/{id}" && ev.Status == 200
			release = release || ev.Action == "POST /admin/leads/{id}/redrive" && ev.Status == 303
		}
	}
	if !view || !release {
		t.Errorf("audit: lead view %v, release %v; want both under the holder's name", view, release)
	}
}

func TestConsoleLogoutEndsSession(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, salesToken)
	resp, _ := consoleDo(t, "POST", f.url+"/admin/logout", cookie, url.Values{"csrf": {csrfOf(t, f.url, cookie)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d, want 303", resp.StatusCode)
	}
	if resp, _ := consoleDo(t, "GET", f.url+"/admin/leads", cookie, nil, nil); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/admin/login") {
		t.Errorf("the old cookie after logout: %d to %q, want 303 to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestConsoleSessionIdleExpiry(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, salesToken)
	f.clock.Add(consoleIdle - time.Minute)
	if resp, _ := consoleDo(t, "GET", f.url+"/admin/", cookie, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a session used within its idle limit: %d", resp.StatusCode)
	}
	f.clock.Add(consoleIdle)
	if resp, _ := consoleDo(t, "GET", f.url+"/admin/", cookie, nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a session idle past CONSOLE_SESSION_TTL: %d, want 303 to sign in", resp.StatusCode)
	}
}

// TestConsoleURLsHoldNoPersonalData: the pages link to leads by id only.
func TestConsoleURLsHoldNoPersonalData(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	reviewLead(t, f)
	cookie, _ := signIn(t, f.url, salesToken)
	hrefs := regexp.MustCompile(`(?:href|action)="([^"]*)"`)
	for _, path := range []string{"/admin/", "/admin/leads", "/admin/leads?state=review"} {
		_, body := consoleDo(t, "GET", f.url+path, cookie, nil, nil)
		for _, m := range hrefs.FindAllStringSubmatch(body, -1) {
			if u := strings.ToLower(m[1]); strings.Contains(u, "example.com") || strings.Contains(u, "7010000001") || strings.Contains(u, "210840004064") {
				t.Errorf("%s links to %q, which holds personal data", path, m[1])
			}
		}
	}
}
