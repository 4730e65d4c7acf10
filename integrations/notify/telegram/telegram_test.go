package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

// The fake below follows the Bot API documentation
// (https://core.telegram.org/bots/api#making-requests, #sendmessage,
// #responseparameters, #html-style): POST /bot<token>/METHOD, answers
// {"ok":true,"result":…} or {"ok":false,"error_code":…,"description":…,
// "parameters":{…}}, and a wrong token gets 404 {"ok":false,"error_code":404,
// "description":"Not Found"}.

const (
	testToken  = "123456789:AAFakeTokenForTestsOnly_s3cr3t-XYZ"
	testChatID = "-1001234567890"
)

// sentMessage is a sendMessage request as the fake decoded it; the fields
// keep their JSON types so a test can tell 123 from "123".
type sentMessage map[string]any

// fakeBot is a Bot API server for one bot. It records every sendMessage and
// answers with respond, or, when respond is nil, as Telegram does: ok with
// the sent Message, or 400 "can't parse entities" for text that is not valid
// Telegram HTML.
type fakeBot struct {
	*httptest.Server
	mu      sync.Mutex
	calls   []string // every request, sendMessage or not: "METHOD path", the token written {token}
	got     []sentMessage
	respond func(w http.ResponseWriter)
}

func newFakeBot(t *testing.T, respond func(w http.ResponseWriter)) *fakeBot {
	t.Helper()
	fb := &fakeBot{respond: respond}
	fb.Server = httptest.NewServer(http.HandlerFunc(fb.serve))
	t.Cleanup(fb.Close)
	return fb
}

func (fb *fakeBot) serve(w http.ResponseWriter, r *http.Request) {
	fb.mu.Lock()
	fb.calls = append(fb.calls, r.Method+" "+strings.ReplaceAll(r.URL.Path, testToken, "{token}"))
	fb.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/bot"+testToken+"/sendMessage" {
		reply(w, http.StatusNotFound, `{"ok":false,"error_code":404,"description":"Not Found"}`)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		reply(w, http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
		return
	}
	body, err := io.ReadAll(r.Body)
	var msg sentMessage
	if err != nil || json.Unmarshal(body, &msg) != nil {
		reply(w, http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: can't parse JSON"}`)
		return
	}
	fb.mu.Lock()
	fb.got = append(fb.got, msg)
	fb.mu.Unlock()
	if fb.respond != nil {
		fb.respond(w)
		return
	}
	text, _ := msg["text"].(string)
	if msg["parse_mode"] == "HTML" && !telegramHTML(text) {
		reply(w, http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"b\" at byte offset 7"}`)
		return
	}
	result, _ := json.Marshal(map[string]any{
		"message_id": 42,
		"from":       map[string]any{"id": 123456789, "is_bot": true, "first_name": "Leadgate", "username": "leadgate_test_bot"},
		"chat":       map[string]any{"id": -1001234567890, "title": "Sales", "type": "supergroup"},
		"date":       1700000000,
		"text":       text,
	})
	reply(w, http.StatusOK, `{"ok":true,"result":`+string(result)+`}`)
}

func (fb *fakeBot) messages() []sentMessage {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]sentMessage(nil), fb.got...)
}

func (fb *fakeBot) requests() []string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return slices.Clone(fb.calls)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// htmlToken matches what may follow a '<' or '&' in the Telegram HTML that
// Message produces: the tags it uses and the entities Telegram accepts.
var htmlToken = regexp.MustCompile(`^(?:<(?:b|/b|code|/code|/a|a href="[^"<>]*")>|&(?:lt|gt|amp|quot|#[0-9]+);)`)

// telegramHTML reports whether every '<' and '&' in s starts a tag or an
// entity, as the Bot API requires of HTML-style text.
func telegramHTML(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] == '<' || s[i] == '&') && !htmlToken.MatchString(s[i:]) {
			return false
		}
	}
	return true
}

func newTestClient(t *testing.T, apiURL string, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(apiURL, testToken, testChatID, integrations.NewHTTPClient(timeout))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// assertNoSecrets fails when err, or any error in its chain, quotes the
// token, the server's URL or the Bot API's description.
func assertNoSecrets(t *testing.T, err error, serverURL string) {
	t.Helper()
	secret := strings.SplitN(testToken, ":", 2)[1]
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		for _, s := range []string{testToken, secret, serverURL, "/bot", "Bad Request", "Too Many Requests", "Forbidden"} {
			if strings.Contains(msg, s) {
				t.Errorf("error %q contains %q", msg, s)
			}
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, chatID string
		wantChatID   any // as JSON decodes it
	}{
		{"numeric chat id goes as a number", testChatID, float64(-1001234567890)},
		{"private chat", "987654321", float64(987654321)},
		{"channel username goes as a string", "@leadgate_sales", "@leadgate_sales"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fb := newFakeBot(t, nil)
			c, err := New(fb.URL+"/", testToken, tt.chatID, nil) // a trailing slash must not double
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			text := "<b>Новая заявка</b> · Юрлицо\nИмя: Test Testov"
			if err := c.Send(t.Context(), text); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := fb.messages()
			if len(got) != 1 {
				t.Fatalf("fake got %d messages, want 1", len(got))
			}
			want := sentMessage{"chat_id": tt.wantChatID, "text": text, "parse_mode": "HTML", "disable_web_page_preview": true}
			for k, v := range want {
				if got[0][k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[0][k], v)
				}
			}
			if len(got[0]) != len(want) {
				t.Errorf("body has fields %v, want exactly %v", got[0], want)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       integrations.Kind
		code       string
		retryAfter time.Duration
	}{
		{
			name: "flood control", status: 429,
			body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`,
			kind: integrations.RateLimited, retryAfter: 5 * time.Second,
		},
		{
			name: "flood control wait from the body, not the header", status: 429, header: map[string]string{"Retry-After": "1"},
			body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}`,
			kind: integrations.RateLimited, retryAfter: 35 * time.Second,
		},
		{
			name: "429 without parameters", status: 429,
			body: `{"ok":false,"error_code":429,"description":"Too Many Requests"}`,
			kind: integrations.RateLimited,
		},
		{
			name: "chat not found", status: 400,
			body: `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`,
			kind: integrations.Permanent, code: "chat_not_found",
		},
		{
			name: "bot blocked", status: 403,
			body: `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`,
			kind: integrations.Permanent, code: "bot_blocked",
		},
		{
			name: "bot kicked", status: 403,
			body: `{"ok":false,"error_code":403,"description":"Forbidden: bot was kicked from the supergroup chat"}`,
			kind: integrations.Permanent, code: "bot_kicked",
		},
		{
			name: "group upgraded", status: 400,
			body: `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}`,
			kind: integrations.Permanent, code: "chat_migrated",
		},
		{
			name: "bad html", status: 400,
			body: `{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0"}`,
			kind: integrations.Permanent, code: "bad_html",
		},
		{
			name: "bad token", status: 401,
			body: `{"ok":false,"error_code":401,"description":"Unauthorized"}`,
			kind: integrations.Permanent,
		},
		{
			name: "not found", status: 404,
			body: `{"ok":false,"error_code":404,"description":"Not Found"}`,
			kind: integrations.Permanent,
		},
		{
			name: "internal error", status: 500,
			body: `{"ok":false,"error_code":500,"description":"Internal Server Error: restart"}`,
			kind: integrations.Temporary,
		},
		{
			name: "bad gateway from the proxy", status: 502,
			body: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
			kind: integrations.Temporary,
		},
		{
			name: "unavailable with Retry-After", status: 503, header: map[string]string{"Retry-After": "30"},
			body: "Service Unavailable",
			kind: integrations.RateLimited, retryAfter: 30 * time.Second,
		},
		{
			name: "ok false in a 200, flood control", status: 200,
			body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`,
			kind: integrations.RateLimited, code: "error_code 429", retryAfter: 7 * time.Second,
		},
		{
			name: "ok false in a 200, chat not found", status: 200,
			body: `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`,
			kind: integrations.Permanent, code: "chat_not_found",
		},
		{
			name: "ok false in a 200, other 4xx", status: 200,
			body: `{"ok":false,"error_code":403,"description":"Forbidden: not enough rights to send text messages to the chat"}`,
			kind: integrations.Permanent, code: "error_code 403",
		},
		{
			name: "ok false in a 200, 5xx", status: 200,
			body: `{"ok":false,"error_code":502,"description":"Bad Gateway"}`,
			kind: integrations.Temporary, code: "error_code 502",
		},
		{
			name: "ok false without a code", status: 200,
			body: `{"ok":false}`,
			kind: integrations.Temporary, code: "malformed answer",
		},
		{
			name: "200 that is not JSON", status: 200,
			body: "<html>Bad Request: captive portal</html>",
			kind: integrations.Temporary, code: "malformed answer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fb := newFakeBot(t, func(w http.ResponseWriter) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := newTestClient(t, fb.URL, 0)
			err := c.Send(t.Context(), "<b>Новая заявка</b>")
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok {
				t.Fatalf("Send = %v, want an *integrations.Error", err)
			}
			if e.Kind != tt.kind || e.Code != tt.code || e.RetryAfter != tt.retryAfter || e.Status != tt.status {
				t.Errorf("error = {Kind: %v, Code: %q, RetryAfter: %v, Status: %d}, want {%v, %q, %v, %d}",
					e.Kind, e.Code, e.RetryAfter, e.Status, tt.kind, tt.code, tt.retryAfter, tt.status)
			}
			if e.System != "telegram" || e.Op != "sendMessage" {
				t.Errorf("error names %s %s, want telegram sendMessage", e.System, e.Op)
			}
			assertNoSecrets(t, err, fb.URL)
		})
	}
}

func TestSendRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			// The first message is sent on to the same address (a Bot API
			// server that moved); a client that followed would post again
			// (307, 308) and take the "ok" for a sent notification, or turn
			// it into a GET. The body says "ok" with an error_code and a
			// retry_after: none of it is the Bot API's, none may count.
			var n atomic.Int32
			fb := newFakeBot(t, func(w http.ResponseWriter) {
				if n.Add(1) > 1 {
					reply(w, http.StatusOK, `{"ok":true,"result":{"message_id":42}}`)
					return
				}
				w.Header().Set("Location", "/bot"+testToken+"/sendMessage")
				reply(w, status, `{"ok":true,"error_code":400,"description":"Bad Request: chat not found","parameters":{"retry_after":5}}`)
			})
			// fb.Client follows redirects, as net/http does by default; New
			// must not let it.
			c, err := New(fb.URL, testToken, testChatID, fb.Client())
			if err != nil {
				t.Fatal(err)
			}
			err = c.Send(t.Context(), "<b>Новая заявка</b>")
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok {
				t.Fatalf("Send = %v on HTTP %d, want an *integrations.Error", err, status)
			}
			if e.Status != status || e.Kind != integrations.Temporary || e.Code != integrations.CodeRedirect || e.RetryAfter != 0 {
				t.Errorf("error = %+v, want {Status: %d, Code: redirect, Kind: temporary, no wait}", e, status)
			}
			if got, want := fb.requests(), []string{"POST /bot{token}/sendMessage"}; !slices.Equal(got, want) {
				t.Errorf("Bot API got %q, want %q: the redirect was followed", got, want)
			}
			assertNoSecrets(t, err, fb.URL)
		})
	}
}

func TestSendWrongToken(t *testing.T) {
	t.Parallel()
	fb := newFakeBot(t, nil)
	c, err := New(fb.URL, "123456789:AAAnotherTokenEntirely", testChatID, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(t.Context(), "hello")
	if e, ok := errors.AsType[*integrations.Error](err); !ok || e.Kind != integrations.Permanent || e.Status != http.StatusNotFound {
		t.Errorf("Send with a wrong token = %v, want a permanent HTTP 404", err)
	}
	if err != nil && strings.Contains(err.Error(), "AAAnotherTokenEntirely") {
		t.Errorf("error %q quotes the token", err)
	}
	if n := len(fb.messages()); n != 0 {
		t.Errorf("fake accepted %d messages for a wrong token", n)
	}
}

func TestSendTransportErrors(t *testing.T) {
	t.Parallel()

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) }) // runs before the server closes
		c := newTestClient(t, srv.URL, 100*time.Millisecond)
		err := c.Send(t.Context(), "hello")
		if got, want := err.Error(), "telegram sendMessage: timeout (temporary)"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
		assertNoSecrets(t, err, srv.URL)
	})

	t.Run("deadline while answered", func(t *testing.T) {
		t.Parallel()
		url, err := sendCutOff(t, http.StatusOK, nil)
		if want := "telegram sendMessage: timeout (temporary)"; err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want %q wrapping DeadlineExceeded", err, want)
		}
		assertNoSecrets(t, err, url)
	})

	t.Run("deadline while a refusal is answered", func(t *testing.T) {
		t.Parallel()
		// Flood control whose body the deadline cuts: the status and its
		// header still say what happened.
		url, err := sendCutOff(t, http.StatusTooManyRequests, http.Header{"Retry-After": {"9"}})
		var e *integrations.Error
		if !errors.As(err, &e) || e.Kind != integrations.RateLimited || e.RetryAfter != 9*time.Second || e.Status != http.StatusTooManyRequests {
			t.Errorf("Send = %v, want rate limited for 9 s by the status and header", err)
		}
		assertNoSecrets(t, err, url)
	})

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close() // nothing listens there any more
		c := newTestClient(t, srv.URL, 0)
		err := c.Send(t.Context(), "hello")
		if got := integrations.KindOf(err); got != integrations.Temporary {
			t.Errorf("KindOf(%v) = %v, want temporary", err, got)
		}
		assertNoSecrets(t, err, srv.URL)
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		fb := newFakeBot(t, nil)
		c := newTestClient(t, fb.URL, 0)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := c.Send(ctx, "hello")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled in the chain", err)
		}
		assertNoSecrets(t, err, fb.URL)
		if n := len(fb.messages()); n != 0 {
			t.Errorf("fake got %d messages, want 0", n)
		}
	})
}

func TestSendEmpty(t *testing.T) {
	t.Parallel()
	fb := newFakeBot(t, nil)
	c := newTestClient(t, fb.URL, 0)
	for _, text := range []string{"", " \n\t"} {
		if err := c.Send(t.Context(), text); integrations.KindOf(err) != integrations.Permanent {
			t.Errorf("Send(%q) = %v, want a permanent error", text, err)
		}
	}
	if n := len(fb.messages()); n != 0 {
		t.Errorf("fake got %d messages, want 0", n)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, apiURL, token, chatID string
		ok                          bool
	}{
		{"defaults", "", testToken, testChatID, true},
		{"local Bot API server", "http://127.0.0.1:8081", testToken, testChatID, true},
		{"path prefix", "https://proxy.example.com/telegram/", testToken, testChatID, true},
		{"user id", "", testToken, "987654321", true},
		{"channel", "", testToken, "@leadgate_sales", true},
		{"no token", "", "", testChatID, false},
		{"token without colon", "", "123456789AAFakeTokenForTestsOnly_s3cr3t", testChatID, false},
		{"token with a slash", "", "123456789:AAFake/../s3cr3t", testChatID, false},
		{"token with a letter in the id", "", "12345x789:AAFakeTokenForTestsOnly_s3cr3t", testChatID, false},
		{"token without secret", "", "123456789:", testChatID, false},
		{"no chat", "", testToken, "", false},
		{"chat id not a number", "", testToken, "-100abc", false},
		{"bare minus", "", testToken, "-", false},
		{"channel too short", "", testToken, "@abc", false},
		{"channel with a space", "", testToken, "@sales team", false},
		{"relative URL", "/api", testToken, testChatID, false},
		{"other scheme", "ftp://api.telegram.org", testToken, testChatID, false},
		{"URL with query", "https://api.telegram.org/?x=1", testToken, testChatID, false},
		{"unparsable URL", "https://api.telegram.org/%zz", testToken, testChatID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.apiURL, tt.token, tt.chatID, nil)
			if !tt.ok {
				if err == nil {
					t.Fatal("New accepted it")
				}
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Errorf("error %q quotes the token", err)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("error %q quotes the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			if c.client == nil || c.client == http.DefaultClient || c.client.Timeout == 0 {
				t.Errorf("nil client became %+v, want one with a timeout", c.client)
			}
			wantPrefix := strings.TrimSuffix(tt.apiURL, "/")
			if wantPrefix == "" {
				wantPrefix = DefaultAPIURL
			}
			if want := wantPrefix + "/bot" + tt.token + "/sendMessage"; c.endpoint != want {
				t.Errorf("endpoint = %q, want %q", c.endpoint, want)
			}
		})
	}
}

// sendCutOff sends a message to a server that answers status with header
// and the start of a body, then stalls until the client gives up: the
// deadline (300 ms) cuts the body. It returns the server's URL and
// Send's error.
func sendCutOff(t *testing.T, status int, header http.Header) (url string, err error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		maps.Copy(w.Header(), header)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"ok":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	return srv.URL, newTestClient(t, srv.URL, 0).Send(ctx, "hello")
}
