package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mssola/useragent"

	"github.com/paymtech/leadgate/intake"
)

// clientIP is the address the request came from: the connection's peer, or —
// when that peer is a trusted proxy — the right-most X-Forwarded-For hop that
// is not a trusted proxy (everything left of it could be forged by the client).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	if !isTrusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a forged or broken hop: trust nothing left of it
		}
		if a = a.Unmap(); !isTrusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

// parseHop reads an X-Forwarded-For entry: an address, or address:port as
// some proxies (Azure Application Gateway, IIS ARR) write it.
func parseHop(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, err
		}
		a = ap.Addr()
	}
	return a, nil
}

// browserAndOS names the browser and operating system a User-Agent claims.
// Most posts come from a few browser builds, so the names of the latest
// uaCacheSize distinct User-Agents are kept: parsing one was 2 % of a
// request's CPU under load.
func browserAndOS(ua string) (browser, os string) {
	if ua == "" {
		return "", ""
	}
	if n, ok := uaNames.Get(ua); ok {
		return n[0], n[1]
	}
	p := useragent.New(ua)
	name, version := p.Browser()
	if major, _, _ := strings.Cut(version, "."); major != "" {
		name += " " + major
	}
	os = p.OS()
	// A copy: ua may be a slice of a header of up to 32 KiB, which the
	// cache would keep whole.
	uaNames.Add(strings.Clone(ua), [2]string{name, os})
	return name, os
}

// uaCacheSize bounds browserAndOS's memory: User-Agents are at most 512
// bytes (application truncates them), so about 1 MiB.
const uaCacheSize = 2048

var uaNames, _ = lru.New[string, [2]string](uaCacheSize) // an error only for a size below 1

// originPolicy decides which pages may post to us from a browser.
type originPolicy struct {
	own     string   // the service's public origin
	allowed []string // CORS_ALLOWED_ORIGINS, normalised
}

// check classifies the request's Origin: none (server to server, or an old
// browser: not cross-site), same origin, an allowed other origin, or refused.
func (p originPolicy) check(r *http.Request) (origin string, crossSite, ok bool) {
	origin = strings.ToLower(r.Header.Get("Origin"))
	if origin == "" {
		return "", false, true
	}
	if origin == p.own || sameHost(origin, r.Host) {
		return origin, false, true
	}
	return origin, true, slices.Contains(p.allowed, origin)
}

// sameHost reports whether origin names the host the request was sent to —
// the browser's own definition of same-origin, whatever PUBLIC_BASE_URL says
// (a developer on 127.0.0.1 instead of localhost, say).
func sameHost(origin, host string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && host != "" && rest == strings.ToLower(host)
}

// allowsRedirect reports whether a browser may be sent to target after a
// post: only our own origin or an allowed one, never anywhere else.
func (p originPolicy) allowsRedirect(target string) bool {
	// Browsers drop tabs and newlines and read \ as /, so "/\t/evil" would
	// become "//evil": refuse every such character outright.
	if strings.ContainsFunc(target, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return false
	}
	u, err := url.Parse(target)
	if err != nil || u.User != nil {
		return false
	}
	if u.Scheme == "" && u.Host == "" {
		return strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(target, "//")
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	return origin == p.own || slices.Contains(p.allowed, origin)
}

// authenticate finds the token presented as "Authorization: Bearer …". Every
// configured token is compared, in constant time on fixed-length digests, so
// timing tells nothing about which or how much matched.
func authenticate(r *http.Request, tokens []intake.Token) (intake.Token, bool) {
	given, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return intake.Token{}, false
	}
	return matchToken(given, tokens)
}

// matchToken finds the token whose secret is given (a bearer token, or the
// console's sign-in form), comparing every one in constant time.
func matchToken(given string, tokens []intake.Token) (intake.Token, bool) {
	if given == "" {
		return intake.Token{}, false
	}
	sum := sha256.Sum256([]byte(given))
	var found intake.Token
	match := 0
	for _, t := range tokens {
		want := sha256.Sum256([]byte(t.Secret))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			found, match = t, 1
		}
	}
	return found, match == 1
}

// bearer reads the credentials of an Authorization header of the Bearer
// scheme. The scheme name is case-insensitive (RFC 7235 section 2.1, so
// "bearer" and "BEARER" are Bearer too) and is followed by one or more
// spaces; the token itself is taken as given.
func bearer(header string) (token string, ok bool) {
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(rest, " ")
	return token, token != ""
}

// GuardMetrics lets only a bearer token of role metrics (or admin) read
// next: in production the public port must not show business counters to
// anyone who asks. Scrapes are not audited — one every few seconds would
// drown the log — but a refused one is logged like any 401 or 403.
func (s *Server) GuardMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := authenticate(r, s.opts.AdminTokens)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadgate"`)
			s.writeError(w, "metrics", &intake.Error{Code: intake.EUnauthorized, Message: "a bearer token of role metrics or admin is required"}, nil, "")
		case !t.Role.Permits(intake.RoleMetrics):
			s.writeError(w, "metrics", &intake.Error{Code: intake.EForbidden, Message: "this token's role may not read metrics"}, nil, "")
		default:
			next.ServeHTTP(w, r)
		}
	})
}
