package console

import (
	"net/http"

	"github.com/paymtech/leadgate/intake"
)

// loginData is the sign-in page's content.
type loginData struct{ Error string }

// LoginPage answers GET /admin/login: a form with one field, token.
func (c *Console) LoginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, nil, http.StatusOK, "login", "", nil, "", loginData{})
}

// crossSite reports whether a post came from another site's page: the
// browser says so in Sec-Fetch-Site, or the Origin is not ours. A post
// with neither header (not a browser) is not cross-site.
func (c *Console) crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	return r.Header.Get("Origin") != "" && !c.SameOrigin(r)
}

// Login answers POST /admin/login. Sign-in attempts are counted per client
// before the token is looked at, so guessing is slowed whatever the
// guesses. A valid token starts a session carrying the token's role and
// holder name (never the token) and is sent to the home page; a wrong one
// gets the form again with 401; a metrics token is refused (403): it may
// read /metrics only.
func (c *Console) Login(w http.ResponseWriter, r *http.Request) {
	if c.crossSite(r) {
		c.errorPage(w, r, nil, http.StatusForbidden, "origin")
		c.Audit(r, intake.Token{}, false, "", http.StatusForbidden)
		return
	}
	ok, err := c.Sessions.AllowLogin(r.Context(), c.ClientKey(r), c.opts.LoginLimit)
	if err != nil {
		c.Log.Error("console: count a sign-in attempt", "err", err)
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "500")
		return
	}
	if !ok {
		c.errorPage(w, r, nil, http.StatusTooManyRequests, "429")
		c.Audit(r, intake.Token{}, false, "", http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.errorPage(w, r, nil, http.StatusBadRequest, "400")
		return
	}
	t, found := c.Authenticate(r.PostForm.Get("token"))
	switch {
	case !found:
		c.render(w, r, nil, http.StatusUnauthorized, "login", "", nil, "",
			loginData{Error: msg(c.lang(r), "console.login.wrong")})
		c.Audit(r, intake.Token{}, false, "", http.StatusUnauthorized)
		return
	case !signsIn(t.Role):
		c.errorPage(w, r, nil, http.StatusForbidden, "metrics")
		c.Audit(r, intake.Token{Role: t.Role, Name: t.Name}, true, "", http.StatusForbidden)
		return
	}
	ss, err := c.Sessions.Create(r.Context(), t.Role, t.Name)
	if err != nil {
		c.Log.Error("console: start a session", "err", err)
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "500")
		return
	}
	http.SetCookie(w, c.cookie(ss.ID, 0))
	http.Redirect(w, r, "/admin/"+c.langQuery(r), http.StatusSeeOther)
	c.Audit(r, intake.Token{Role: t.Role, Name: t.Name}, true, "", http.StatusSeeOther)
}

// Logout answers POST /admin/logout (behind Guard, so with the csrf
// field): the session is removed from Redis, so its cookie opens nothing
// even if a copy of it is kept somewhere, and the browser drops it.
func (c *Console) Logout(w http.ResponseWriter, r *http.Request) {
	if err := c.Sessions.Delete(r.Context(), session(r).ID); err != nil {
		c.Log.Error("console: end a session", "err", err)
		c.errorPage(w, r, session(r), http.StatusServiceUnavailable, "500")
		return
	}
	http.SetCookie(w, c.cookie("", -1))
	http.Redirect(w, r, "/admin/login"+c.langQuery(r), http.StatusSeeOther)
}

// signsIn reports whether a token of role may open the console: the
// people behind the admin API, not the metrics scraper.
func signsIn(role intake.Role) bool {
	switch role {
	case intake.RoleSales, intake.RoleMarketing, intake.RolePrivacy, intake.RoleAdmin:
		return true
	}
	return false
}

// cookie is the session cookie: script cannot read it (HttpOnly), no other
// site's page or link sends it (SameSite=Strict), only /admin gets it, and
// over https only when the service is on https. No Max-Age: it ends with
// the browser, and the server ends it sooner (idle and absolute limits).
// maxAge -1 removes it.
func (c *Console) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: c.opts.SecureCookie, SameSite: http.SameSiteStrictMode}
}
