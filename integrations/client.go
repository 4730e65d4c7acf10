package integrations

import (
	"net"
	"net/http"
	"time"
)

// DefaultTimeout bounds a whole outside call (connect, send, wait, read) when
// NewHTTPClient is given no timeout.
const DefaultTimeout = 15 * time.Second

// NewHTTPClient returns the client a driver uses for its outside calls:
// timeout bounds each whole request, body included (zero or negative means
// DefaultTimeout), and connecting and the TLS handshake are each bounded more
// tightly inside it, so an unreachable host fails fast.
// Drivers never use http.DefaultClient, which has no timeout at all.
//
// Each client gets its own transport (own connection pool), proxies are taken
// from the environment (HTTPS_PROXY, NO_PROXY), and redirects are never
// followed (see NoRedirects): a 3xx comes back to the driver as the answer.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: refuseRedirect,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   min(timeout, 10*time.Second),
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   10,
		},
	}
}

// NoRedirects returns the client a driver keeps: a copy of c (sharing its
// transport, so its connection pool) that never follows a redirect, or
// NewHTTPClient(0) when c is nil. Every driver's New passes the client it is
// given through it, so that no caller's client — a test's httptest client,
// one built by hand — can bring redirects back.
//
// Why no redirect is ever followed: net/http turns a POST answered 301, 302
// or 303 into a GET without a body, and the 200 that GET gets would be taken
// for a delivered lead that nobody received; a 307 or 308 would send the
// lead, with its credentials, to wherever the answer points. Standard
// Webhooks counts any 3xx as a failed delivery, and Check does the same for
// every system, so the operator fixes the URL instead.
func NoRedirects(c *http.Client) *http.Client {
	if c == nil {
		return NewHTTPClient(0)
	}
	cp := *c
	cp.CheckRedirect = refuseRedirect
	return &cp
}

// refuseRedirect is the CheckRedirect of every driver's client: the 3xx
// answer itself is returned, its body unread, for Check to classify.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
