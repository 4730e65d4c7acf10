package integrations_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	inTwoMinutes := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	anHourAgo := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)

	tests := []struct {
		status     int
		retryAfter string
		kind       integrations.Kind // 0: success
		minWait    time.Duration
		maxWait    time.Duration
	}{
		{status: 200},
		{status: 201},
		{status: 204},
		{status: 400, kind: integrations.Permanent},
		{status: 404, kind: integrations.Permanent},
		{status: 408, kind: integrations.Temporary},
		{status: 410, kind: integrations.Permanent},
		{status: 422, kind: integrations.Permanent},
		{status: 429, kind: integrations.RateLimited},
		{status: 429, retryAfter: "30", kind: integrations.RateLimited, minWait: 30 * time.Second, maxWait: 30 * time.Second},
		{status: 429, retryAfter: " 0 ", kind: integrations.RateLimited},
		{status: 429, retryAfter: inTwoMinutes, kind: integrations.RateLimited, minWait: 2*time.Minute - 5*time.Second, maxWait: 2 * time.Minute},
		{status: 429, retryAfter: "soon", kind: integrations.RateLimited},
		{status: 429, retryAfter: "-5", kind: integrations.RateLimited},
		{status: 429, retryAfter: "99999999999999999999", kind: integrations.RateLimited},
		{status: 500, kind: integrations.Temporary},
		{status: 502, kind: integrations.Temporary},
		{status: 503, kind: integrations.Temporary},
		{status: 503, retryAfter: "120", kind: integrations.RateLimited, minWait: 2 * time.Minute, maxWait: 2 * time.Minute},
		{status: 503, retryAfter: inTwoMinutes, kind: integrations.RateLimited, minWait: 2*time.Minute - 5*time.Second, maxWait: 2 * time.Minute},
		{status: 503, retryAfter: anHourAgo, kind: integrations.RateLimited}, // the date passed: go now, still not a failure
		{status: 503, retryAfter: "later", kind: integrations.Temporary},     // unreadable: the server did not ask us to wait
		{status: 504, kind: integrations.Temporary},
		{status: 500, retryAfter: "7", kind: integrations.Temporary, minWait: 7 * time.Second, maxWait: 7 * time.Second},
		// A redirect is never followed, so it delivered nothing: retried
		// like a failure, until RETRY_MAX_AGE or a fixed URL.
		{status: 300, kind: integrations.Temporary},
		{status: 301, kind: integrations.Temporary},
		{status: 302, kind: integrations.Temporary},
		{status: 303, kind: integrations.Temporary},
		{status: 304, kind: integrations.Temporary},
		{status: 307, kind: integrations.Temporary},
		{status: 308, kind: integrations.Temporary},
		{status: 301, retryAfter: "30", kind: integrations.Temporary, minWait: 30 * time.Second, maxWait: 30 * time.Second},
		{status: 100, kind: integrations.Permanent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %q", tt.status, tt.retryAfter), func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			err := integrations.Check("crm", "push", resp)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			e, ok := errors.AsType[*integrations.Error](err)
			if !ok {
				t.Fatalf("Check = %v (%T), want *Error", err, err)
			}
			if e.Status != tt.status || e.System != "crm" || e.Op != "push" {
				t.Errorf("Error = %+v, want status %d, system crm, op push", e, tt.status)
			}
			if got := integrations.KindOf(err); got != tt.kind {
				t.Errorf("KindOf = %v, want %v", got, tt.kind)
			}
			if got := integrations.RetryAfter(err); got < tt.minWait || got > tt.maxWait {
				t.Errorf("RetryAfter = %v, want within [%v, %v]", got, tt.minWait, tt.maxWait)
			}
			if integrations.IsGone(err) {
				t.Errorf("IsGone = true: only a driver whose protocol says so reads %d as gone", tt.status)
			}
			redirect := tt.status >= 300 && tt.status <= 399
			if want := map[bool]string{true: integrations.CodeRedirect}[redirect]; e.Code != want {
				t.Errorf("Code = %q, want %q", e.Code, want)
			}
			if integrations.IsRedirect(tt.status) != redirect {
				t.Errorf("IsRedirect(%d) = %v", tt.status, !redirect)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *integrations.Error
		want string
	}{
		{&integrations.Error{System: "webhook", Op: "push", Status: 503, Kind: integrations.RateLimited, RetryAfter: 30 * time.Second},
			"webhook push: HTTP 503 (rate limited, retry after 30s)"},
		{&integrations.Error{System: "webhook", Op: "push", Status: 410, Kind: integrations.Permanent},
			"webhook push: HTTP 410 (permanent)"},
		{&integrations.Error{System: "webhook", Op: "push", Status: 410, Code: integrations.CodeGone, Kind: integrations.Permanent},
			"webhook push: HTTP 410 endpoint_gone (permanent)"},
		{&integrations.Error{System: "bitrix24", Op: "crm.lead.add", Status: 503, Code: "QUERY_LIMIT_EXCEEDED", Kind: integrations.RateLimited},
			"bitrix24 crm.lead.add: HTTP 503 QUERY_LIMIT_EXCEEDED (rate limited)"},
		{&integrations.Error{System: "telegram", Op: "sendMessage", Code: "timeout", Kind: integrations.Temporary, Err: context.DeadlineExceeded},
			"telegram sendMessage: timeout (temporary)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("route lead: %w", &integrations.Error{Kind: integrations.RateLimited, RetryAfter: time.Second})
	gone := &integrations.Error{System: "webhook", Op: "push", Status: 410, Code: integrations.CodeGone, Kind: integrations.Permanent}
	tests := []struct {
		name string
		err  error
		kind integrations.Kind
		wait time.Duration
		gone bool
	}{
		{"nil", nil, 0, 0, false},
		{"plain error", errors.New("boom"), integrations.Temporary, 0, false},
		{"wrapped *Error", wrapped, integrations.RateLimited, time.Second, false},
		{"joined", errors.Join(errors.New("boom"), &integrations.Error{Kind: integrations.Permanent}), integrations.Permanent, 0, false},
		// An endpoint that is gone is a permanent failure like any other,
		// wherever the caller only asks KindOf.
		{"gone", gone, integrations.Permanent, 0, true},
		{"wrapped gone", fmt.Errorf("route lead: %w", gone), integrations.Permanent, 0, true},
		{"joined gone", errors.Join(errors.New("boom"), gone), integrations.Permanent, 0, true},
		{"410 without the code", &integrations.Error{Status: 410, Kind: integrations.Permanent}, integrations.Permanent, 0, false},
		{"the code on a temporary error", &integrations.Error{Code: integrations.CodeGone, Kind: integrations.Temporary}, integrations.Temporary, 0, false},
		{"gone behind another *Error", errors.Join(&integrations.Error{Kind: integrations.RateLimited}, gone), integrations.RateLimited, 0, false},
		{"the code in a plain error", errors.New(integrations.CodeGone), integrations.Temporary, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := integrations.KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf = %v, want %v", got, tt.kind)
			}
			if got := integrations.RetryAfter(tt.err); got != tt.wait {
				t.Errorf("RetryAfter = %v, want %v", got, tt.wait)
			}
			if got := integrations.IsGone(tt.err); got != tt.gone {
				t.Errorf("IsGone = %v, want %v", got, tt.gone)
			}
		})
	}
}

// secretPath stands for a Bitrix24 inbound webhook path, whose middle is the
// token: it must never reach an error message.
const secretPath = "/rest/1/s3cr3tT0kenXYZ/crm.lead.add.json"

// assertNoURL fails when any error in err's chain quotes the request URL.
func assertNoURL(t *testing.T, err error, serverURL string) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		if strings.Contains(msg, "s3cr3tT0kenXYZ") || strings.Contains(msg, serverURL) || strings.Contains(msg, "http://") {
			t.Errorf("error chain quotes the URL: %q (in %T)", msg, e)
		}
	}
}

func TestTransport(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })

	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		client *http.Client
		is     error
		code   string
		notIs  error
	}{
		{
			name: "caller deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), 50*time.Millisecond)
			},
			client: integrations.NewHTTPClient(0),
			is:     context.DeadlineExceeded,
			notIs:  context.Canceled,
			code:   "timeout",
		},
		{
			name: "caller cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			client: integrations.NewHTTPClient(0),
			is:     context.Canceled,
			notIs:  context.DeadlineExceeded,
			code:   "canceled",
		},
		{
			name:   "client timeout",
			ctx:    func() (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) },
			client: integrations.NewHTTPClient(50 * time.Millisecond),
			notIs:  context.Canceled,
			code:   "timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := tt.ctx()
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+secretPath, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tt.client.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("Do succeeded against a hanging server")
			}
			err = integrations.Transport("bitrix24", "crm.lead.add", err)
			if got := integrations.KindOf(err); got != integrations.Temporary {
				t.Errorf("KindOf = %v, want temporary", got)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if errors.Is(err, tt.notIs) {
				t.Errorf("errors.Is(%v, %v) = true", err, tt.notIs)
			}
			if want := "bitrix24 crm.lead.add: " + tt.code + " (temporary)"; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			assertNoURL(t, err, srv.URL)
		})
	}
}

func TestTransportRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, addr+secretPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := integrations.NewHTTPClient(time.Second).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("Do succeeded against a closed server")
	}
	err = integrations.Transport("bitrix24", "crm.lead.add", err)
	if got, want := err.Error(), "bitrix24 crm.lead.add: network error (temporary)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if integrations.KindOf(err) != integrations.Temporary {
		t.Errorf("KindOf = %v, want temporary", integrations.KindOf(err))
	}
	assertNoURL(t, err, addr)
}

func TestNewHTTPClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want time.Duration
	}{
		{0, 15 * time.Second},
		{-time.Second, 15 * time.Second},
		{3 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			t.Parallel()
			c := integrations.NewHTTPClient(tt.in)
			if c.Timeout != tt.want {
				t.Errorf("Timeout = %v, want %v", c.Timeout, tt.want)
			}
			tr, ok := c.Transport.(*http.Transport)
			if !ok || tr == http.DefaultTransport {
				t.Fatalf("Transport = %T, want a transport of its own", c.Transport)
			}
			if tr.TLSHandshakeTimeout <= 0 || tr.TLSHandshakeTimeout > tt.want {
				t.Errorf("TLSHandshakeTimeout = %v, want within (0, %v]", tr.TLSHandshakeTimeout, tt.want)
			}
			if c.CheckRedirect == nil {
				t.Error("CheckRedirect is nil: the client would follow redirects")
			}
		})
	}
}

// redirector answers every request to / with status and a Location on the
// same server, and records every request it gets, so a test sees whether a
// client followed.
type redirector struct {
	*httptest.Server
	mu  sync.Mutex
	got []string // "METHOD /path"
}

func newRedirector(t *testing.T, status int) *redirector {
	t.Helper()
	rd := &redirector{}
	rd.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rd.mu.Lock()
		rd.got = append(rd.got, r.Method+" "+r.URL.Path)
		rd.mu.Unlock()
		if r.URL.Path == "/moved" {
			w.WriteHeader(http.StatusOK) // what a followed redirect would be taken for: delivered
			return
		}
		http.Redirect(w, r, "/moved", status)
	}))
	t.Cleanup(rd.Close)
	return rd
}

func (rd *redirector) requests() []string {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return slices.Clone(rd.got)
}

func TestNoRedirects(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		for name, client := range map[string]func(*redirector) *http.Client{
			"NewHTTPClient":           func(*redirector) *http.Client { return integrations.NewHTTPClient(time.Second) },
			"NoRedirects(nil)":        func(*redirector) *http.Client { return integrations.NoRedirects(nil) },
			"NoRedirects(a follower)": func(rd *redirector) *http.Client { return integrations.NoRedirects(rd.Client()) },
		} {
			t.Run(fmt.Sprintf("%s %d", name, status), func(t *testing.T) {
				t.Parallel()
				rd := newRedirector(t, status)
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, rd.URL+"/", strings.NewReader(`{"lead":1}`))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client(rd).Do(req)
				if err != nil {
					t.Fatalf("Do = %v, want the %d answer itself", err, status)
				}
				resp.Body.Close()
				if resp.StatusCode != status {
					t.Errorf("status %d, want %d: the redirect was followed", resp.StatusCode, status)
				}
				if got := rd.requests(); !slices.Equal(got, []string{"POST /"}) {
					t.Errorf("server got %q, want only the POST", got)
				}
				if err := integrations.Check("webhook", "push", resp); integrations.KindOf(err) != integrations.Temporary {
					t.Errorf("Check = %v, want a temporary failure", err)
				}
			})
		}
	}
	t.Run("nil gets a timeout", func(t *testing.T) {
		t.Parallel()
		if c := integrations.NoRedirects(nil); c.Timeout != integrations.DefaultTimeout {
			t.Errorf("NoRedirects(nil).Timeout = %v, want %v", c.Timeout, integrations.DefaultTimeout)
		}
	})
	t.Run("the given client is left alone", func(t *testing.T) {
		t.Parallel()
		given := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
		got := integrations.NoRedirects(given)
		if given.CheckRedirect != nil {
			t.Error("NoRedirects changed the client it was given")
		}
		if got == given || got.Timeout != given.Timeout || got.Transport != given.Transport {
			t.Errorf("NoRedirects = %+v, want a copy of %+v sharing its transport", got, given)
		}
	})
}
