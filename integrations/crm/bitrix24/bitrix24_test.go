package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24/bitrix24test"
)

const (
	fakeUser   = bitrix24test.User
	fakeSecret = bitrix24test.Secret
)

// newFake starts a fake portal on https, as real portals are.
func newFake(t *testing.T, opts ...bitrix24test.Option) *bitrix24test.Server {
	t.Helper()
	return bitrix24test.NewServer(t, append([]bitrix24test.Option{bitrix24test.TLS()}, opts...)...)
}

// client is a driver for f, with an HTTP client that trusts its certificate
// and gives up after timeout.
func client(t *testing.T, f *bitrix24test.Server, timeout time.Duration) *Client {
	t.Helper()
	hc := f.HTTPClient()
	hc.Timeout = timeout
	c, err := New(f.URL(), hc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// methods lists the REST methods f was called with, in order.
func methods(f *bitrix24test.Server) []string {
	var m []string
	for _, c := range f.Calls() {
		m = append(m, c.Method)
	}
	return m
}

// lastCall is the body of the last call of method f received.
func lastCall(f *bitrix24test.Server, method string) map[string]any {
	calls := f.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Method == method {
			return calls[i].Body
		}
	}
	return nil
}

// stored is lead ref as f holds it; the test fails when f has no such lead.
func stored(t *testing.T, f *bitrix24test.Server, ref string) bitrix24test.Lead {
	t.Helper()
	l, ok := f.Lead(ref)
	if !ok {
		t.Fatalf("the fake holds no lead %s", ref)
	}
	return l
}

func testLead() crm.Lead {
	at := time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)
	return crm.Lead{
		ID:         "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e",
		EntityType: "legal_entity",
		Name:       "Test Testov",
		Phone:      "+77010000000",
		Email:      "test@example.com",
		TaxID:      "000000000000",
		Products:   []string{"acquiring", "payment_links"},
		Message:    "We would like to accept cards online.",
		Lang:       "ru",
		ReceivedAt: at,
		Consent:    crm.Consent{Processing: true, PolicyVersion: "3", PolicyURL: "https://example.com/privacy", GivenAt: at},
		Metadata: crm.Metadata{
			IP: "203.0.113.7", PageURL: "https://example.com/connect",
			UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "spring",
		},
		Assignment: &crm.Assignment{Rule: "default", Team: "sales", Owner: "Test Managerov", CRMUserID: "17"},
		Risk:       crm.Risk{Score: 35, Signals: []string{"disposable_email", "vpn"}},
	}
}

// secretFree fails the test if any error in err's chain mentions the
// webhook's secret or path, or personal data of testLead.
func secretFree(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		for _, bad := range []string{fakeSecret, "/rest/" + fakeUser + "/", "Test Testov", "test@example.com", "+77010000000"} {
			if strings.Contains(msg, bad) {
				t.Errorf("error text %q contains %q", msg, bad)
			}
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"https", "https://example.bitrix24.kz/rest/1/" + fakeSecret + "/", true},
		{"no trailing slash", "https://example.bitrix24.kz/rest/1/" + fakeSecret, true},
		{"loopback http", "http://127.0.0.1:8080/rest/1/" + fakeSecret + "/", true},
		{"localhost http", "http://localhost:8080/rest/1/" + fakeSecret + "/", true},
		{"http to the internet", "http://example.bitrix24.kz/rest/1/" + fakeSecret + "/", false},
		{"no secret", "https://example.bitrix24.kz/rest/1/", false},
		{"user not numeric", "https://example.bitrix24.kz/rest/admin/" + fakeSecret + "/", false},
		{"not a rest path", "https://example.bitrix24.kz/api/1/" + fakeSecret + "/", false},
		{"method included", "https://example.bitrix24.kz/rest/1/" + fakeSecret + "/crm.lead.add.json", false},
		{"query", "https://example.bitrix24.kz/rest/1/" + fakeSecret + "/?x=1", false},
		{"userinfo", "https://u:" + fakeSecret + "@example.bitrix24.kz/rest/1/" + fakeSecret + "/", false},
		{"unparsable", "https://example.bitrix24.kz/rest/1/" + fakeSecret + "/%zz", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.url, nil)
			if tt.ok {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if !strings.HasSuffix(c.base, "/rest/1/"+fakeSecret+"/") {
					t.Errorf("base = %q, want it to end in the webhook path with one slash", c.base)
				}
				return
			}
			if !errors.Is(err, ErrWebhookURL) {
				t.Fatalf("New = %v, want ErrWebhookURL", err)
			}
			secretFree(t, err)
		})
	}
}

func TestPushMapsFields(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := client(t, f, 5*time.Second)
	l := testLead()

	got, err := c.Push(context.Background(), l)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	want := crm.Receipt{System: "bitrix24", Ref: "101", URL: f.PortalURL() + "/crm/lead/details/101/"}
	if got != want {
		t.Errorf("Receipt = %+v, want %+v", got, want)
	}
	// The CRM mode is read once (then cached): in classic mode nothing
	// else is looked up before the add.
	if m := methods(f); !reflect.DeepEqual(m, []string{"crm.lead.list", "crm.settings.mode.get", "crm.lead.add"}) {
		t.Errorf("calls = %v, want a lookup, the CRM mode, then an add", m)
	}

	list := lastCall(f, "crm.lead.list")
	wantList := map[string]any{
		"filter": map[string]any{"ORIGINATOR_ID": "leadgate", "ORIGIN_ID": l.ID},
		"select": []any{"ID"},
		"order":  map[string]any{"ID": "ASC"},
	}
	if !reflect.DeepEqual(list, wantList) {
		t.Errorf("crm.lead.list body = %v, want %v", list, wantList)
	}

	add := lastCall(f, "crm.lead.add")
	if p := add["params"]; !reflect.DeepEqual(p, map[string]any{"REGISTER_SONET_EVENT": "Y"}) {
		t.Errorf("params = %v", p)
	}
	fields, _ := add["fields"].(map[string]any)
	wantFields := map[string]any{
		"TITLE":              "Юрлицо: Test Testov",
		"NAME":               "Test Testov",
		"COMPANY_TITLE":      "Test Testov",
		"PHONE":              []any{map[string]any{"VALUE": "+77010000000", "VALUE_TYPE": "WORK"}},
		"EMAIL":              []any{map[string]any{"VALUE": "test@example.com", "VALUE_TYPE": "WORK"}},
		"SOURCE_ID":          "WEBFORM",
		"SOURCE_DESCRIPTION": "https://example.com/connect",
		"UTM_SOURCE":         "newsletter",
		"UTM_MEDIUM":         "email",
		"UTM_CAMPAIGN":       "spring",
		"ASSIGNED_BY_ID":     "17",
		"ORIGINATOR_ID":      "leadgate",
		"ORIGIN_ID":          l.ID,
	}
	comments, _ := fields["COMMENTS"].(string)
	delete(fields, "COMMENTS")
	if !reflect.DeepEqual(fields, wantFields) {
		t.Errorf("fields =\n%v\nwant\n%v", fields, wantFields)
	}
	for _, part := range []string{
		"We would like to accept cards online.",
		"Продукты: acquiring, payment_links",
		"БИН/ИИН: 000000000000",
		"Язык ответа: ru",
		"обработка ПДн: да, рассылка: нет; политика версии 3 (https://example.com/privacy), дано 2025-04-15T09:30:00Z",
		"Риск: 35/100 (disposable_email, vpn)",
		"Заявка leadgate: " + l.ID,
	} {
		if !strings.Contains(comments, part) {
			t.Errorf("COMMENTS %q lacks %q", comments, part)
		}
	}

	// The fake stored what a salesperson will see.
	kept := stored(t, f, got.Ref)
	if p := kept.Phone; len(p) != 1 || p[0].Value != "+77010000000" || p[0].ValueType != "WORK" {
		t.Errorf("stored PHONE = %+v", p)
	}
	if kept.Fields["ORIGIN_ID"] != l.ID || kept.Fields["ASSIGNED_BY_ID"] != "17" {
		t.Errorf("stored ORIGIN_ID, ASSIGNED_BY_ID = %q, %q", kept.Fields["ORIGIN_ID"], kept.Fields["ASSIGNED_BY_ID"])
	}
}

func TestPushOptionalFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		edit      func(*crm.Lead)
		wantTitle string
		absent    []string
	}{
		{"sole proprietor without routing", func(l *crm.Lead) {
			l.EntityType, l.Assignment = "sole_proprietor", nil
		}, "ИП: Test Testov", []string{"COMPANY_TITLE", "ASSIGNED_BY_ID"}},
		{"routed without a CRM user", func(l *crm.Lead) {
			l.Assignment.CRMUserID = ""
		}, "Юрлицо: Test Testov", []string{"ASSIGNED_BY_ID"}},
		{"no name", func(l *crm.Lead) {
			l.EntityType, l.Name = "sole_proprietor", ""
		}, "Заявка на подключение (ИП): acquiring, payment_links", []string{"NAME", "COMPANY_TITLE"}},
		{"no name no products", func(l *crm.Lead) {
			l.Name, l.Products = "", nil
		}, "Заявка на подключение (Юрлицо)", []string{"NAME", "COMPANY_TITLE"}},
		{"no campaign or page", func(l *crm.Lead) {
			l.Metadata = crm.Metadata{IP: "203.0.113.7"}
		}, "Юрлицо: Test Testov", []string{"UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "SOURCE_DESCRIPTION"}},
		{"long name", func(l *crm.Lead) {
			l.Name = strings.Repeat("Т", 200)
		}, "Юрлицо: " + strings.Repeat("Т", maxTitle-len([]rune("Юрлицо: "))-1) + "…", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			l := testLead()
			tt.edit(&l)
			if _, err := client(t, f, 5*time.Second).Push(context.Background(), l); err != nil {
				t.Fatalf("Push: %v", err)
			}
			fields, _ := lastCall(f, "crm.lead.add")["fields"].(map[string]any)
			if fields["TITLE"] != tt.wantTitle {
				t.Errorf("TITLE = %q, want %q", fields["TITLE"], tt.wantTitle)
			}
			for _, k := range tt.absent {
				if v, ok := fields[k]; ok {
					t.Errorf("%s = %v, want it left out", k, v)
				}
			}
		})
	}
}

func TestTitleHasNoContacts(t *testing.T) {
	t.Parallel()
	for _, entity := range []string{"legal_entity", "sole_proprietor", ""} {
		for _, name := range []string{"Test Testov", ""} {
			l := testLead()
			l.EntityType, l.Name = entity, name
			got := title(l)
			if strings.Contains(got, l.Phone) || strings.Contains(got, l.Email) || got == "" {
				t.Errorf("title(%q, %q) = %q", entity, name, got)
			}
		}
	}
}

func TestCommentsEscaped(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	l := testLead()
	l.Message = "<script>alert(1)</script>\r\nTom & Jerry's \"shop\""
	l.Risk.Signals = []string{"<b>bold</b>"}
	if _, err := client(t, f, 5*time.Second).Push(context.Background(), l); err != nil {
		t.Fatalf("Push: %v", err)
	}
	fields, _ := lastCall(f, "crm.lead.add")["fields"].(map[string]any)
	got, _ := fields["COMMENTS"].(string)
	if strings.Contains(got, "<script") || strings.Contains(got, "<b>") {
		t.Errorf("COMMENTS %q holds live markup", got)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;<br>Tom &amp; Jerry&#39;s &#34;shop&#34;",
		"&lt;b&gt;bold&lt;/b&gt;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("COMMENTS %q lacks %q", got, want)
		}
	}
}

// TestPushRetryFindsExistingLead is the crash between "Bitrix24 accepted the
// lead" and "we recorded the Receipt": the first attempt's answer is lost,
// the retry must find the lead instead of adding a second one.
func TestPushRetryFindsExistingLead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		lose bool // the first add's answer never arrives
	}{
		{"answer received, not recorded", false},
		{"connection lost after the add", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []bitrix24test.Option
			if tt.lose {
				opts = append(opts, bitrix24test.WithFaults(func(method string, n int) *bitrix24test.Fault {
					if method == "crm.lead.add" && n == 1 {
						return &bitrix24test.Fault{Commit: true, Drop: true}
					}
					return nil
				}))
			}
			f := newFake(t, opts...)
			c := client(t, f, 5*time.Second)
			first, err := c.Push(context.Background(), testLead())
			if tt.lose {
				if integrations.KindOf(err) != integrations.Temporary {
					t.Fatalf("first Push = %v, want a Temporary error", err)
				}
				secretFree(t, err)
			} else if err != nil {
				t.Fatalf("first Push: %v", err)
			}

			second, err := c.Push(context.Background(), testLead())
			if err != nil {
				t.Fatalf("retry Push: %v", err)
			}
			if n := len(f.Leads()); n != 1 {
				t.Fatalf("the fake holds %d leads, want 1", n)
			}
			if second.Ref != "101" || (!tt.lose && second != first) {
				t.Errorf("retry Receipt = %+v, first %+v, want the same lead 101", second, first)
			}
			if adds := strings.Count(strings.Join(methods(f), " "), "crm.lead.add"); adds != 1 {
				t.Errorf("%d adds, want 1", adds)
			}
		})
	}
}

// answerWith makes the fake answer every call to method with fault.
func answerWith(method string, fault bitrix24test.Fault) bitrix24test.Option {
	return bitrix24test.WithFaults(func(m string, _ int) *bitrix24test.Fault {
		if m != method {
			return nil
		}
		return &fault
	})
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_705_765_000, 0)
	tests := []struct {
		name       string
		method     string // which call fails
		status     int
		retryAfter string // the Retry-After header; "" for none
		body       string
		kind       integrations.Kind
		code       string
		wantAfter  time.Duration
	}{
		{"query limit", "crm.lead.add", 503, "",
			`{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`,
			integrations.RateLimited, "QUERY_LIMIT_EXCEEDED", time.Second},
		{"query limit with Retry-After", "crm.lead.list", 503, "3",
			`{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`,
			integrations.RateLimited, "QUERY_LIMIT_EXCEEDED", 3 * time.Second},
		{"operation time limit, reset at the top", "crm.lead.add", 429, "",
			`{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit.","operating_reset_at":1705765120}`,
			integrations.RateLimited, "OPERATION_TIME_LIMIT", 120 * time.Second},
		{"operation time limit, reset in time", "crm.lead.list", 429, "",
			`{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit.","time":{"operating_reset_at":1705765045.5,"operating":481.2}}`,
			integrations.RateLimited, "OPERATION_TIME_LIMIT", 45 * time.Second},
		{"operation time limit, reset passed", "crm.lead.add", 429, "",
			`{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit.","operating_reset_at":1705764000}`,
			integrations.RateLimited, "OPERATION_TIME_LIMIT", time.Second},
		{"operation time limit, no reset", "crm.lead.add", 429, "",
			`{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit."}`,
			integrations.RateLimited, "OPERATION_TIME_LIMIT", time.Minute},
		{"expired token", "crm.lead.list", 401, "",
			`{"error":"expired_token","error_description":"The access token provided has expired."}`,
			integrations.Permanent, "expired_token", 0},
		{"webhook removed", "crm.lead.list", 401, "",
			`{"error":"INVALID_CREDENTIALS","error_description":"Invalid request credentials"}`,
			integrations.Permanent, "INVALID_CREDENTIALS", 0},
		{"no crm scope", "crm.lead.add", 401, "",
			`{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the webhook token"}`,
			integrations.Permanent, "insufficient_scope", 0},
		{"token error inside a 200", "crm.lead.add", 200, "",
			`{"error":"invalid_token","error_description":"Unable to authenticate"}`,
			integrations.Permanent, "invalid_token", 0},
		{"rate limit inside a 200", "crm.lead.add", 200, "",
			`{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`,
			integrations.RateLimited, "QUERY_LIMIT_EXCEEDED", time.Second},
		{"unknown code inside a 200", "crm.lead.add", 200, "",
			`{"error":"SOMETHING_NEW","error_description":"?"}`,
			integrations.Permanent, "SOMETHING_NEW", 0},
		{"internal error", "crm.lead.add", 500, "",
			`{"error":"INTERNAL_SERVER_ERROR","error_description":"Internal server error"}`,
			integrations.Temporary, "INTERNAL_SERVER_ERROR", 0},
		{"bad gateway page", "crm.lead.list", 502, "", "<html><body>502 Bad Gateway</body></html>",
			integrations.Temporary, "", 0},
		{"503 without a code or Retry-After", "crm.lead.add", 503, "", "",
			integrations.Temporary, "", 0},
		{"validation error echoing input", "crm.lead.add", 400, "",
			`{"error":"","error_description":"Invalid e-mail test@example.com for Test Testov +77010000000"}`,
			integrations.Permanent, "", 0},
		{"code that is not a code", "crm.lead.add", 400, "",
			`{"error":"<b>test@example.com</b>","error_description":"x"}`,
			integrations.Permanent, "", 0},
		{"access denied", "crm.lead.add", 400, "",
			`{"error":"","error_description":"Access denied."}`,
			integrations.Permanent, "access denied", 0},
		{"unreadable 200", "crm.lead.add", 200, "", "<html>maintenance</html>",
			integrations.Temporary, "unreadable answer", 0},
		{"200 without an id", "crm.lead.add", 200, "", `{"result":false,"time":{}}`,
			integrations.Temporary, "unexpected result", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, answerWith(tt.method, bitrix24test.Fault{Status: tt.status, RetryAfter: tt.retryAfter, Body: tt.body}))
			c := client(t, f, 5*time.Second)
			c.now = func() time.Time { return now }

			_, err := c.Push(context.Background(), testLead())
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok {
				t.Fatalf("Push = %v, want an *integrations.Error", err)
			}
			if e.System != "bitrix24" || e.Op != tt.method || e.Status != tt.status {
				t.Errorf("System, Op, Status = %q, %q, %d; want bitrix24, %q, %d", e.System, e.Op, e.Status, tt.method, tt.status)
			}
			if e.Kind != tt.kind || e.Code != tt.code || e.RetryAfter != tt.wantAfter {
				t.Errorf("Kind, Code, RetryAfter = %v, %q, %v; want %v, %q, %v", e.Kind, e.Code, e.RetryAfter, tt.kind, tt.code, tt.wantAfter)
			}
			if strings.Contains(err.Error(), "error_description") || strings.Contains(err.Error(), "Invalid") {
				t.Errorf("error %q quotes the answer", err)
			}
			secretFree(t, err)
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"crm.lead.list", "crm.lead.add"} {
		for _, status := range []int{301, 302, 303, 307, 308} {
			t.Run(fmt.Sprintf("%s %d", method, status), func(t *testing.T) {
				t.Parallel()
				// The first call of method is sent on to the same address;
				// a client that followed would repeat it (307, 308: the
				// lead gets filed and taken for delivered) or turn it into a
				// GET. The body is a vendor code that must not count: it is
				// the redirecting server's, not the portal's.
				f := newFake(t, bitrix24test.WithFaults(func(m string, n int) *bitrix24test.Fault {
					if m != method || n != 1 {
						return nil
					}
					return &bitrix24test.Fault{Status: status, Location: method + ".json",
						Body: `{"error":"ACCESS_DENIED","error_description":"Access denied"}`}
				}))
				// f.HTTPClient follows redirects, as net/http does by
				// default; New must not let it.
				c, err := New(f.URL(), f.HTTPClient())
				if err != nil {
					t.Fatal(err)
				}
				r, err := c.Push(t.Context(), testLead())
				e, ok := errors.AsType[*integrations.Error](err)
				if !ok {
					t.Fatalf("Push = %+v, %v on HTTP %d, want an *integrations.Error", r, err, status)
				}
				if e.Op != method || e.Status != status || e.Kind != integrations.Temporary || e.Code != integrations.CodeRedirect {
					t.Errorf("error = %+v, want {Op: %s, Status: %d, Code: redirect, Kind: temporary}", e, method, status)
				}
				want := []string{"POST /rest/1/{secret}/crm.lead.list.json"}
				if method == "crm.lead.add" {
					want = append(want, "POST /rest/1/{secret}/crm.settings.mode.get.json", "POST /rest/1/{secret}/crm.lead.add.json")
				}
				if got := f.Requests(); !slices.Equal(got, want) {
					t.Errorf("portal got %q, want %q: the redirect was followed", got, want)
				}
				if leads := f.Leads(); len(leads) != 0 {
					t.Errorf("portal holds %d leads after a redirect, want none", len(leads))
				}
				secretFree(t, err)
			})
		}
	}
}

func TestWrongSecretIsPermanent(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c, err := New(f.PortalURL()+"/rest/1/wrong"+fakeSecret+"/", f.HTTPClient())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = c.Push(context.Background(), testLead())
	if integrations.KindOf(err) != integrations.Permanent || !strings.Contains(err.Error(), "INVALID_CREDENTIALS") {
		t.Fatalf("Push = %v, want Permanent INVALID_CREDENTIALS", err)
	}
	secretFree(t, err)
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		client   time.Duration // the http.Client's timeout
		deadline time.Duration // the caller's context deadline; 0 for none
	}{
		{"client timeout", 300 * time.Millisecond, 0},
		{"context deadline", 5 * time.Second, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, bitrix24test.WithFaults(func(string, int) *bitrix24test.Fault {
				return &bitrix24test.Fault{Stall: true}
			}))
			c := client(t, f, tt.client)
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := c.Push(ctx, testLead())
			if time.Since(start) > 3*time.Second {
				t.Errorf("Push took %v: the timeout did not bound it", time.Since(start))
			}
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok || e.Kind != integrations.Temporary || e.Code != "timeout" || e.Op != "crm.lead.list" {
				t.Fatalf("Push = %#v, want a Temporary timeout of crm.lead.list", err)
			}
			secretFree(t, err)
		})
	}
}

// lateAnswer answers every call with an empty 200 once the call's context
// has ended: a stalled portal's answer arriving as the caller gives up, the
// race TestTimeouts once lost.
type lateAnswer struct{}

func (lateAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func TestAnswerAfterDeadline(t *testing.T) {
	t.Parallel()
	c, err := New(newFake(t).URL(), &http.Client{Transport: lateAnswer{}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Push(ctx, testLead())
	e, ok := errors.AsType[*integrations.Error](err)
	if !ok || e.Kind != integrations.Temporary || e.Code != "timeout" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Push = %#v, want a Temporary timeout wrapping DeadlineExceeded", err)
	}
}

func TestUnreachablePortal(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := client(t, f, 5*time.Second)
	f.Close()
	err := c.Erase(context.Background(), testLead().ID, "101")
	if integrations.KindOf(err) != integrations.Temporary {
		t.Fatalf("Erase = %v, want Temporary", err)
	}
	secretFree(t, err)
}

func TestUpdateReplacesContacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		salesPhone bool   // a salesperson added a second phone before the update
		ref        string // "" to let Update find the lead by ORIGIN_ID
	}{
		{"by ref", false, "101"},
		{"by ref with an extra phone", true, "101"},
		{"receipt never recorded", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := client(t, f, 5*time.Second)
			l := testLead()
			r, err := c.Push(context.Background(), l)
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if tt.salesPhone {
				if !f.AddValue(r.Ref, "PHONE", "+77020000000") {
					t.Fatalf("the fake holds no lead %s", r.Ref)
				}
			}
			before := stored(t, f, r.Ref)
			oldPhone, oldEmail := before.Phone[0], before.Email[0]

			l.Name, l.Phone, l.Email = "Testa Testova", "+77010000001", "testa@example.com"
			if err := c.Update(context.Background(), l, tt.ref); err != nil {
				t.Fatalf("Update: %v", err)
			}
			after := stored(t, f, r.Ref)
			wantPhone := []bitrix24test.Value{{ID: oldPhone.ID, TypeID: "PHONE", Value: "+77010000001", ValueType: "WORK"}}
			if got := after.Phone; !reflect.DeepEqual(got, wantPhone) {
				t.Errorf("PHONE = %+v, want %+v", got, wantPhone)
			}
			wantEmail := []bitrix24test.Value{{ID: oldEmail.ID, TypeID: "EMAIL", Value: "testa@example.com", ValueType: "WORK"}}
			if got := after.Email; !reflect.DeepEqual(got, wantEmail) {
				t.Errorf("EMAIL = %+v, want %+v", got, wantEmail)
			}
			for k, want := range map[string]string{"NAME": "Testa Testova", "COMPANY_TITLE": "Testa Testova", "TITLE": "Юрлицо: Testa Testova"} {
				if after.Fields[k] != want {
					t.Errorf("%s = %q, want %q", k, after.Fields[k], want)
				}
			}
			if len(f.Leads()) != 1 {
				t.Errorf("the fake holds %d leads, want 1", len(f.Leads()))
			}
		})
	}
}

func TestUpdateAddsMissingContact(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := client(t, f, 5*time.Second)
	l := testLead()
	l.Email = ""
	r, err := c.Push(context.Background(), l)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	l.Email = "test@example.com"
	if err := c.Update(context.Background(), l, r.Ref); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := stored(t, f, r.Ref).Email; len(got) != 1 || got[0].Value != "test@example.com" {
		t.Errorf("EMAIL = %+v, want the one new address", got)
	}
	var sent []map[string]any
	fields, _ := lastCall(f, "crm.lead.update")["fields"].(map[string]any)
	b, _ := json.Marshal(fields["EMAIL"])
	_ = json.Unmarshal(b, &sent)
	if want := []map[string]any{{"VALUE": "test@example.com", "VALUE_TYPE": "WORK"}}; !reflect.DeepEqual(sent, want) {
		t.Errorf("sent EMAIL = %v, want %v", sent, want)
	}
}

func TestUpdateMissingLead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ref string
		wantErr   bool
	}{
		{"ref unknown to Bitrix24", "999", true},
		{"never pushed", "", false},
		{"ref not an id", "12a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			err := client(t, f, 5*time.Second).Update(context.Background(), testLead(), tt.ref)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Update = %v, want nil", err)
				}
				// In classic mode there is no deal to search for.
				if m := methods(f); !reflect.DeepEqual(m, []string{"crm.lead.list", "crm.settings.mode.get"}) {
					t.Errorf("calls = %v, want only the lookup and the CRM mode", m)
				}
				return
			}
			if integrations.KindOf(err) != integrations.Permanent {
				t.Fatalf("Update = %v, want Permanent", err)
			}
			secretFree(t, err)
		})
	}
}

func TestErase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		push       int    // leads filed for the lead before the erasure (2: a duplicate)
		ref        string // the Receipt's Ref as recorded
		wantDelete int
	}{
		{"by ref", 1, "101", 1},
		{"receipt never recorded", 1, "", 1},
		{"duplicate from a race", 2, "101", 2},
		{"already deleted in Bitrix24", 0, "101", 1},
		{"never pushed", 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := client(t, f, 5*time.Second)
			l := testLead()
			for range tt.push {
				// Adding directly, past the lookup, is how a race makes a duplicate.
				var id leadID
				if err := c.call(context.Background(), "crm.lead.add", map[string]any{"fields": newLeadFields(l)}, &id); err != nil {
					t.Fatalf("add: %v", err)
				}
			}
			if err := c.Erase(context.Background(), l.ID, tt.ref); err != nil {
				t.Fatalf("Erase: %v", err)
			}
			if n := len(f.Leads()); n != 0 {
				t.Errorf("the fake still holds %d leads", n)
			}
			if deletes := strings.Count(strings.Join(methods(f), " "), "crm.lead.delete"); deletes != tt.wantDelete {
				t.Errorf("%d deletes, want %d", deletes, tt.wantDelete)
			}
			// Erasing again, as a retried task would, is still success.
			if err := c.Erase(context.Background(), l.ID, tt.ref); err != nil {
				t.Errorf("second Erase: %v", err)
			}
		})
	}
}

func TestEraseFailure(t *testing.T) {
	t.Parallel()
	f := newFake(t, answerWith("crm.lead.delete", bitrix24test.Fault{Status: 400, Body: `{"error":"","error_description":"Access denied."}`}))
	err := client(t, f, 5*time.Second).Erase(context.Background(), testLead().ID, "101")
	e, ok := errors.AsType[*integrations.Error](err)
	if !ok || e.Kind != integrations.Permanent || e.Code != "access denied" || e.Op != "crm.lead.delete" {
		t.Fatalf("Erase = %v, want Permanent access denied", err)
	}
}
