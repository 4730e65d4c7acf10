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
// from the environment (HTTPS_PROXY, NO_PROXY), and redirects are followed as
// net/http does by default.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
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
