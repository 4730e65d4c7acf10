package sendgrid

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
)

// The fake below follows SendGrid's v3 Mail Send reference: POST
// /v3/mail/send with Authorization: Bearer <key> and a JSON body; 202 with an
// empty body and X-Message-Id on success; errors as
// {"errors":[{"message":…,"field":…,"help":…}]}; 429 with
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (Unix
// seconds).

const testKey = "SG.fake-key-for-tests.s3cr3t_XYZ"

// fakeSendGrid records every accepted request's decoded body and answers
// with respond (202 when nil). A request with the wrong method, path,
// Authorization or Content-Type gets what SendGrid gives it, and is not
// recorded.
type fakeSendGrid struct {
	*httptest.Server
	mu      sync.Mutex
	calls   int // every request, recorded or not
	got     []map[string]any
	respond func(w http.ResponseWriter)
}

func newFake(t *testing.T, respond func(w http.ResponseWriter)) *fakeSendGrid {
	t.Helper()
	f := &fakeSendGrid{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSendGrid) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
		reply(w, http.StatusNotFound, `{"errors":[{"field":null,"message":"not found"}]}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testKey {
		reply(w, http.StatusUnauthorized, `{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}`)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		reply(w, http.StatusUnsupportedMediaType, `{"errors":[{"field":null,"message":"Content-Type should be application/json."}]}`)
		return
	}
	raw, err := io.ReadAll(r.Body)
	var body map[string]any
	if err != nil || json.Unmarshal(raw, &body) != nil {
		reply(w, http.StatusBadRequest, `{"errors":[{"field":null,"message":"Bad Request","help":null}]}`)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, body)
	f.mu.Unlock()
	if f.respond != nil {
		f.respond(w)
		return
	}
	w.Header().Set("X-Message-Id", "fake-message-id")
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeSendGrid) requests() (calls int, got []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.got
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newClient(t *testing.T, f *fakeSendGrid) *Client {
	t.Helper()
	c, err := New(testKey, f.URL, integrations.NewHTTPClient(5*time.Second))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// message is a campaign-like Message to two recipients.
func message() mail.Message {
	return mail.Message{
		From:    mail.Address{Email: "noreply@example.com", Name: "Paymtech"},
		To:      []mail.Address{{Email: "test@example.com", Name: "Test Testov"}, {Email: "test2@example.com"}},
		Subject: "Жаңа өнімдер / Новые продукты",
		Text:    "Сәлеметсіз бе! https://leads.example.com/v1/unsubscribe?token=t",
		HTML:    `<p>Здравствуйте! <a href="https://leads.example.com/v1/unsubscribe?token=t">Отписаться</a></p>`,
		Headers: map[string]string{"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
		PerRecipient: []mail.Personal{
			{Headers: map[string]string{"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=a1>"}},
			{Headers: map[string]string{"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=b2>"}},
		},
		Category:   "campaign",
		ASMGroupID: 42,
		Ref:        "cmp-7f3a-b1",
	}
}

// asJSON decodes a literal the way the fake decodes a request body, so the
// two compare with reflect.DeepEqual.
func asJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad literal: %v", err)
	}
	return v
}

func TestSendBody(t *testing.T) {
	t.Parallel()
	minimal := mail.Message{
		From:     mail.Address{Email: "noreply@example.com"},
		To:       []mail.Address{{Email: "test@example.com", Name: "ТОО «Тест», Алматы"}},
		Subject:  "Заявка принята",
		Text:     "Спасибо!",
		Category: "ack",
	}
	cases := []struct {
		name string
		m    mail.Message
		want string
	}{
		{"campaign", message(), `{
			"from": {"email": "noreply@example.com", "name": "Paymtech"},
			"subject": "Жаңа өнімдер / Новые продукты",
			"personalizations": [
				{"to": [{"email": "test@example.com", "name": "Test Testov"}],
				 "headers": {"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=a1>"}},
				{"to": [{"email": "test2@example.com"}],
				 "headers": {"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=b2>"}}
			],
			"content": [
				{"type": "text/plain", "value": "Сәлеметсіз бе! https://leads.example.com/v1/unsubscribe?token=t"},
				{"type": "text/html", "value": "<p>Здравствуйте! <a href=\"https://leads.example.com/v1/unsubscribe?token=t\">Отписаться</a></p>"}
			],
			"headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
			"categories": ["campaign"],
			"custom_args": {"ref": "cmp-7f3a-b1"},
			"asm": {"group_id": 42},
			"tracking_settings": {"click_tracking": {"enable": false, "enable_text": false}}
		}`},
		// No headers, ref or group: the keys are left out, not sent empty;
		// a name with a comma is dropped rather than have SendGrid drop the
		// message.
		{"minimal", minimal, `{
			"from": {"email": "noreply@example.com"},
			"subject": "Заявка принята",
			"personalizations": [{"to": [{"email": "test@example.com"}]}],
			"content": [{"type": "text/plain", "value": "Спасибо!"}],
			"categories": ["ack"],
			"tracking_settings": {"click_tracking": {"enable": false, "enable_text": false}}
		}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, nil)
			if err := newClient(t, f).Send(context.Background(), tc.m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			_, got := f.requests()
			if len(got) != 1 {
				t.Fatalf("fake got %d requests, want 1", len(got))
			}
			if want := asJSON(t, tc.want); !reflect.DeepEqual(got[0], want) {
				g, _ := json.MarshalIndent(got[0], "", "  ")
				w, _ := json.MarshalIndent(want, "", "  ")
				t.Errorf("body:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestSendOnePersonalizationPerRecipient(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	m := message()
	m.PerRecipient = nil
	m.To = make([]mail.Address, mail.MaxRecipients)
	for i := range m.To {
		m.To[i] = mail.Address{Email: "test" + strconv.Itoa(i) + "@example.com"}
	}
	if err := newClient(t, f).Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, got := f.requests()
	ps, _ := got[0]["personalizations"].([]any)
	if len(ps) != mail.MaxRecipients {
		t.Fatalf("%d personalizations, want %d", len(ps), mail.MaxRecipients)
	}
	for i, p := range ps {
		to, _ := p.(map[string]any)["to"].([]any)
		if len(to) != 1 || to[0].(map[string]any)["email"] != "test"+strconv.Itoa(i)+"@example.com" {
			t.Fatalf("personalization %d: to = %v, want only recipient %d", i, to, i)
		}
	}
}

func TestSendAnswers(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_750_000_000, 0)
	cases := []struct {
		name      string
		respond   func(w http.ResponseWriter)
		kind      integrations.Kind // 0: success
		status    int
		retry     time.Duration
		code      string
		notInCode string
	}{
		{name: "202 accepted", respond: nil},
		{name: "200 in sandbox mode", respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }},
		{
			name: "429 waits for X-RateLimit-Reset",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("X-RateLimit-Limit", "600")
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Unix()+37, 10))
				reply(w, http.StatusTooManyRequests, `{"errors":[{"field":null,"message":"too many requests"}]}`)
			},
			kind: integrations.RateLimited, status: 429, retry: 37 * time.Second,
		},
		{
			name: "429 with a reset already past",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Unix()-5, 10))
				w.WriteHeader(http.StatusTooManyRequests)
			},
			kind: integrations.RateLimited, status: 429, retry: 0,
		},
		{
			name: "429 with only Retry-After",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "12")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			kind: integrations.RateLimited, status: 429, retry: 12 * time.Second,
		},
		{
			name: "400 names the field, never the message",
			respond: func(w http.ResponseWriter) {
				reply(w, http.StatusBadRequest, `{"errors":[
					{"message":"Does not contain a valid address: test@example.com","field":"personalizations.0.to.0.email","help":"http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"},
					{"message":"The from email does not contain a valid address.","field":"from.email","help":null}]}`)
			},
			kind: integrations.Permanent, status: 400, code: "personalizations.0.to.0.email", notInCode: "test@example.com",
		},
		{
			name: "400 with a field that is not a plain name",
			respond: func(w http.ResponseWriter) {
				reply(w, http.StatusBadRequest, `{"errors":[{"message":"x","field":"to test@example.com"},{"message":"y","field":null}]}`)
			},
			kind: integrations.Permanent, status: 400, code: "", notInCode: "test@example.com",
		},
		{
			name:    "400 without a JSON body",
			respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) },
			kind:    integrations.Permanent, status: 400,
		},
		{
			name: "413 payload too large",
			respond: func(w http.ResponseWriter) {
				reply(w, http.StatusRequestEntityTooLarge, `{"errors":[{"field":null,"message":"too large"}]}`)
			},
			kind: integrations.Permanent, status: 413,
		},
		{
			name: "500 is temporary",
			respond: func(w http.ResponseWriter) {
				reply(w, http.StatusInternalServerError, `{"errors":[{"field":"x","message":"oops"}]}`)
			},
			kind: integrations.Temporary, status: 500,
		},
		{
			name:    "502 is temporary",
			respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) },
			kind:    integrations.Temporary, status: 502,
		},
		{
			name: "503 with Retry-After is rate limited",
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "20")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			kind: integrations.RateLimited, status: 503, retry: 20 * time.Second,
		},
		{
			name:    "408 is temporary",
			respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusRequestTimeout) },
			kind:    integrations.Temporary, status: 408,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.respond)
			c := newClient(t, f)
			c.now = func() time.Time { return now }
			err := c.Send(context.Background(), message())
			if calls, _ := f.requests(); calls != 1 {
				t.Fatalf("%d requests, want 1", calls)
			}
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok {
				t.Fatalf("Send = %v, want an *integrations.Error", err)
			}
			if e.System != System || e.Op != "mail.send" || e.Kind != tc.kind || e.Status != tc.status || e.RetryAfter != tc.retry || e.Code != tc.code {
				t.Errorf("Send = %+v, want kind %v, status %d, retry %v, code %q", e, tc.kind, tc.status, tc.retry, tc.code)
			}
			if tc.notInCode != "" && strings.Contains(err.Error(), tc.notInCode) {
				t.Errorf("error %q quotes the answer's message", err)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), f.URL) {
				t.Errorf("error %q quotes the key or the URL", err)
			}
		})
	}
}

func TestSendRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			// The first post is sent on to the same address (a host that
			// moved, http sent on to https); a client that followed would
			// post again (307, 308) and take the 202 for a send, or turn it
			// into a GET.
			var n atomic.Int32
			f := newFake(t, func(w http.ResponseWriter) {
				if n.Add(1) > 1 {
					w.WriteHeader(http.StatusAccepted)
					return
				}
				w.Header().Set("Location", "/v3/mail/send")
				w.WriteHeader(status)
			})
			// f.Client follows redirects, as net/http does by default; New
			// must not let it.
			c, err := New(testKey, f.URL, f.Client())
			if err != nil {
				t.Fatal(err)
			}
			err = c.Send(t.Context(), message())
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok {
				t.Fatalf("Send = %v on HTTP %d, want an *integrations.Error", err, status)
			}
			if e.Status != status || e.Kind != integrations.Temporary || e.Code != integrations.CodeRedirect {
				t.Errorf("error = %+v, want {Status: %d, Code: redirect, Kind: temporary}", e, status)
			}
			if _, isRecipient := errors.AsType[*mail.RecipientError](err); isRecipient {
				t.Errorf("a redirect blamed one recipient: %v", err)
			}
			// Nothing was taken: a campaign puts the batch back for a retry.
			if !integrations.Unsent(err) {
				t.Errorf("Unsent = false for HTTP %d", status)
			}
			if calls, got := f.requests(); calls != 1 || len(got) != 1 {
				t.Errorf("SendGrid got %d requests (%d posts), want the one post: the redirect was followed", calls, len(got))
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), f.URL) {
				t.Errorf("error %q quotes the key or the URL", err)
			}
		})
	}
}

func TestSendRefusesBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(m *mail.Message)
		reason string
	}{
		{"1001 recipients", func(m *mail.Message) {
			m.PerRecipient = nil
			m.To = make([]mail.Address, mail.MaxRecipients+1)
			for i := range m.To {
				m.To[i] = mail.Address{Email: "test@example.com"}
			}
		}, "more than 1000 recipients"},
		{"CR LF in a header value", func(m *mail.Message) {
			m.Headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click\r\nBcc: test@example.com"
		}, "line break"},
		{"LF in a per-recipient header value", func(m *mail.Message) {
			m.PerRecipient[1].Headers["List-Unsubscribe"] = "<https://leads.example.com/\n>"
		}, "line break"},
		{"CR LF in the subject", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: test@example.com" }, "subject"},
		{"personal data as category", func(m *mail.Message) { m.Category = "test@example.com" }, "category"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, nil)
			m := message()
			tc.change(&m)
			err := newClient(t, f).Send(context.Background(), m)
			if calls, _ := f.requests(); calls != 0 {
				t.Errorf("%d requests made, want none", calls)
			}
			if integrations.KindOf(err) != integrations.Permanent || !errors.Is(err, mail.ErrInvalid) {
				t.Fatalf("Send = %v, want a Permanent error wrapping mail.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Send = %q, want it to say %q", err, tc.reason)
			}
			if strings.Contains(err.Error(), "test@example.com") {
				t.Errorf("Send = %q quotes an address", err)
			}
		})
	}
}

func TestSendTransportFailures(t *testing.T) {
	t.Parallel()
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, nil)
		c := newClient(t, f)
		f.Close()
		err := c.Send(context.Background(), message())
		if integrations.KindOf(err) != integrations.Temporary {
			t.Fatalf("Send = %v, want Temporary", err)
		}
		if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), f.URL) {
			t.Errorf("error %q quotes the key or the URL", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		f := newFake(t, func(w http.ResponseWriter) { <-release })
		defer close(release)
		c, err := New(testKey, f.URL, integrations.NewHTTPClient(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Send(context.Background(), message())
		e, ok := errors.AsType[*integrations.Error](err)
		if !ok || e.Kind != integrations.Temporary || e.Code != "timeout" {
			t.Fatalf("Send = %v, want a Temporary timeout", err)
		}
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("error %q quotes the key", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := newClient(t, f).Send(ctx, message())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v, want context.Canceled in the chain", err)
		}
	})
}

func TestSendConcurrently(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	c := newClient(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- c.Send(context.Background(), message()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	if calls, got := f.requests(); calls != 20 || len(got) != 20 {
		t.Errorf("%d requests, %d accepted, want 20", calls, len(got))
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, host string
		wantHost        string // "" when New must fail
	}{
		{"default host", testKey, "", DefaultAPIHost},
		{"EU host", testKey, "https://api.eu.sendgrid.com", "https://api.eu.sendgrid.com"},
		{"trailing slash", testKey, "http://127.0.0.1:8025/", "http://127.0.0.1:8025"},
		{"empty key", "", "", ""},
		{"key with a space", "SG.abc s3cr3t", "", ""},
		{"key with a line break", "SG.abc\r\ns3cr3t", "", ""},
		{"relative host", testKey, "api.sendgrid.com", ""},
		{"host with a path", testKey, "https://api.sendgrid.com/v3", ""},
		{"host with a query", testKey, "https://api.sendgrid.com?x=1", ""},
		{"ftp host", testKey, "ftp://api.sendgrid.com", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.key, tc.host, nil)
			if tc.wantHost == "" {
				if err == nil {
					t.Fatal("New succeeded, want an error")
				}
				if tc.key != "" && strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("New = %q quotes the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.host != tc.wantHost || c.client == nil || c.client.Timeout == 0 {
				t.Errorf("New: host %q, client %v; want host %q and a client with a timeout", c.host, c.client, tc.wantHost)
			}
		})
	}
}

// A 400 that SendGrid blames on one personalization names that recipient,
// so the caller can send the others; one about a shared field does not.
func TestSendBlamesOneRecipient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, field string
		status      int
		index       int // -1: no recipient blamed
	}{
		{"recipient address", "personalizations.1.to.0.email", 400, 1},
		{"recipient, bracket notation", "personalizations[0].to[0].email", 400, 0},
		{"recipient's to list", "personalizations.1.to", 400, 1},
		{"a personalization's headers are everyone's", "personalizations.0.headers", 400, -1},
		{"the sender", "from.email", 400, -1},
		{"403 is the account, not a recipient", "personalizations.1.to.0.email", 403, -1},
		{"index with a leading zero", "personalizations.01.to.0.email", 400, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter) {
				reply(w, tc.status, `{"errors":[{"message":"Does not contain a valid address.","field":"`+tc.field+`","help":null}]}`)
			})
			err := newClient(t, f).Send(context.Background(), message())
			if integrations.KindOf(err) != integrations.Permanent {
				t.Fatalf("Send = %v, want a permanent error", err)
			}
			re, ok := errors.AsType[*mail.RecipientError](err)
			switch {
			case tc.index < 0 && ok:
				t.Errorf("Send blamed recipient %d for %q", re.Index, tc.field)
			case tc.index >= 0 && (!ok || re.Index != tc.index):
				t.Errorf("Send = %v, want recipient %d blamed", err, tc.index)
			}
		})
	}
}

// The provider gets the domain in A-label form: the form whose length the
// mailable rule judged.
func TestSendIDNDomainAsALabel(t *testing.T) {
	t.Parallel()
	f := newFake(t, nil)
	m := message()
	m.From.Email = "noreply@пример.kz"
	m.To[0] = mail.Address{Email: "тест@Пример.қаз", Name: "Тест Тестов"}
	if err := newClient(t, f).Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, got := f.requests()
	from := got[0]["from"].(map[string]any)["email"]
	to := got[0]["personalizations"].([]any)[0].(map[string]any)["to"].([]any)[0].(map[string]any)
	if from != "noreply@xn--e1afmkfd.kz" || to["email"] != "тест@xn--e1afmkfd.xn--80ao21a" || to["name"] != "Тест Тестов" {
		t.Errorf("from %v, to %v; want the domains in A-label form", from, to)
	}
}
