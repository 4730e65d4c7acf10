// Package console is the back office in a browser, under /admin/: sign-in
// with an admin token, a session in Redis, and server-rendered pages for
// each role. Its routes are listed with their roles in
// intake/httpapi/routes.go, the one route table; the security headers come
// from intake/httpapi/headers.go. It is a package of its own so that
// httpapi stays small enough to read.
//
// Every page works without JavaScript: forms post and the answer is a 303
// to a page (POST → 303 → GET). No personal value ever goes into a URL —
// pages are named by record ids — and every page that shows personal data,
// and every action, leaves an event in the audit log under the holder's
// name, through the same log the admin API writes.
package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/sessions"
	"github.com/paymtech/leadgate/templates"
)

// CookieName is the session cookie's name. Its value is the session's
// random id, never the admin token.
const CookieName = "leadgate_console"

// cookiePath keeps the cookie to the console: the public form never sees it.
const cookiePath = "/admin"

// Leads are what the console needs of the lead store (redisstore.Leads).
type Leads interface {
	Get(ctx context.Context, id string) (*intake.Lead, error)
	List(ctx context.Context, f intake.LeadFilter, cursor string, limit int) (*intake.Page, error)
	Redrive(ctx context.Context, id string) (intake.State, error)
	Count(ctx context.Context, st intake.State) (int64, error)
}

// Sessions are the console's sessions (sessions.Store).
type Sessions interface {
	Create(ctx context.Context, role intake.Role, name string) (*sessions.Session, error)
	Get(ctx context.Context, id string) (*sessions.Session, error)
	Delete(ctx context.Context, id string) error
	AllowLogin(ctx context.Context, client string, limit intake.Limit) (bool, error)
	// Privacy console: a person's handle, bound to one session.
	Bind(ctx context.Context, id, person string) (string, error)
	Bound(ctx context.Context, id, handle string) (string, error)
}

// Deps are what the console works with. The functions come from httpapi,
// so the console shares its token check, audit log and client address
// rules rather than having second ones.
type Deps struct {
	Leads    Leads
	Sessions Sessions
	Queue    intake.Queue
	// Authenticate finds the admin token whose secret is given, in
	// constant time.
	Authenticate func(secret string) (intake.Token, bool)
	// Audit records one console request in the audit log, as the API's
	// calls are: who, the route (r.Pattern), the record and the status.
	// authenticated false records it as unauthenticated (capped per minute).
	Audit func(r *http.Request, holder intake.Token, authenticated bool, target string, status int)
	// ClientKey is a keyed hash of the client's address (an IPv4 address,
	// an IPv6 /64): what sign-in attempts are counted by.
	ClientKey func(r *http.Request) string
	// SameOrigin reports whether a post's Origin is the service's own.
	SameOrigin func(r *http.Request) bool
	Log        *slog.Logger
	// Privacy console: the privacy service the API's subject calls use,
	// and the clock that says which requests are overdue.
	Privacy Privacy
	Now     func() time.Time
	// --- campaigns (marketing's pages, campaigns.go) ---
	CampaignDeps
	// --- end campaigns ---
	// Admin's pages: the audit log to read (audit.go) and asynq's tasks
	// (queues.go); breach notices share CampaignDeps.
	AuditLog AuditLog
	Tasks    Tasks
}

// Options configure the console.
type Options struct {
	DefaultLang templates.Lang
	// SecureCookie marks the cookie Secure: PUBLIC_BASE_URL is https.
	SecureCookie bool
	// LoginLimit is CONSOLE_LOGIN_RATE_LIMIT: sign-in attempts per client.
	LoginLimit intake.Limit
	// Choices are what the lead list's filters offer: the product
	// catalogue and the routing rules' teams and members.
	Choices intake.Choices
}

// Console serves the console's pages.
type Console struct {
	Deps
	opts Options
}

// New returns the console.
func New(d Deps, o Options) *Console {
	return &Console{Deps: d, opts: o}
}

type sessionKey struct{}

// session is the signed-in session of a guarded request.
func session(r *http.Request) *sessions.Session {
	s, _ := r.Context().Value(sessionKey{}).(*sessions.Session)
	return s
}

type targetKey struct{}

// auditTarget names the record a guarded request showed or touched (a
// keyed hash or a reference, never a personal value) for its audit event,
// as the API's handlers do; the lead pages' {id} is in the route already.
func auditTarget(r *http.Request, target string) {
	if t, ok := r.Context().Value(targetKey{}).(*string); ok {
		*t = target
	}
}

// holder is the session's holder as the audit log names them.
func holder(s *sessions.Session) intake.Token {
	return intake.Token{Role: s.Role, Name: s.Name}
}

// Recorder notes the status a handler answered with, for its audit event:
// the console's guard and the admin API's use it alike.
type Recorder struct {
	http.ResponseWriter
	Status int // 0 until the handler writes
}

// WriteHeader notes the first status.
func (rec *Recorder) WriteHeader(code int) {
	if rec.Status == 0 {
		rec.Status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

// Write notes 200 when nothing was set before.
func (rec *Recorder) Write(b []byte) (int, error) {
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (rec *Recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Guard lets only a signed-in session whose role permits role (any, when
// role is "") reach next.
// Without a session a page asks to sign in (a GET is sent to the sign-in
// page; a post is 403, as it cannot carry a valid csrf). Another role's
// page is 403. Every post must carry the session's csrf field, else 403:
// a page of another site cannot make the browser act. Each request,
// allowed or refused, leaves one audit event.
func (c *Console) Guard(role intake.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ss *sessions.Session
		if ck, err := r.Cookie(CookieName); err == nil {
			s, err := c.Sessions.Get(r.Context(), ck.Value)
			switch {
			case err == nil:
				ss = s
			case !errors.Is(err, sessions.ErrNoSession):
				c.Log.Error("console: could not read a session", "err", err)
				c.errorPage(w, r, nil, http.StatusServiceUnavailable, "500")
				return
			}
		}
		if ss == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/admin/login"+c.langQuery(r), http.StatusSeeOther)
				c.Audit(r, intake.Token{}, false, "", http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, nil, http.StatusForbidden, "csrf")
			c.Audit(r, intake.Token{}, false, "", http.StatusForbidden)
			return
		}
		if role != "" && !ss.Role.Permits(role) { // "": any signed-in role
			c.errorPage(w, r, ss, http.StatusForbidden, "403")
			c.Audit(r, holder(ss), true, "", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, formLimit(r)) // campaigns.go: a campaign's HTML needs more
			if err := r.ParseForm(); err != nil || !ss.CheckCSRF(r.PostForm.Get("csrf")) {
				c.errorPage(w, r, ss, http.StatusForbidden, "csrf")
				c.Audit(r, holder(ss), true, "", http.StatusForbidden)
				return
			}
		}
		rec := &Recorder{ResponseWriter: w}
		target := new(string) // what the page showed or the action touched (auditTarget)
		ctx := context.WithValue(context.WithValue(r.Context(), sessionKey{}, ss), targetKey{}, target)
		next(rec, r.WithContext(ctx))
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		c.Audit(r, holder(ss), true, *target, rec.Status)
	})
}

// lang is the page language: ?lang=, else the browser's, else DEFAULT_LANG.
func (c *Console) lang(r *http.Request) templates.Lang {
	return templates.Negotiate(r.URL.Query().Get("lang"), r.Header.Get("Accept-Language"), c.opts.DefaultLang)
}

// langQuery keeps the page language across a redirect.
func (c *Console) langQuery(r *http.Request) string {
	return "?lang=" + string(c.lang(r))
}

// nav is the navigation of a role: only sections that exist, so there is
// no link to a page that is not built yet.
func nav(lang templates.Lang, role intake.Role, current string) []templates.ConsoleNav {
	items := []struct{ key, href string }{{"home", "/admin/"}}
	if role.Permits(intake.RoleSales) {
		items = append(items, struct{ key, href string }{"leads", "/admin/leads"})
	}
	// Privacy console.
	if role.Permits(intake.RolePrivacy) {
		items = append(items, struct{ key, href string }{"subjects", "/admin/subjects"})
	}
	// --- campaigns ---
	if role.Permits(intake.RoleMarketing) {
		items = append(items, struct{ key, href string }{"campaigns", "/admin/campaigns"})
	}
	// --- end campaigns ---
	if role.Permits(intake.RoleAdmin) {
		for _, key := range []string{"breach_notices", "audit", "queues"} {
			items = append(items, struct{ key, href string }{key, "/admin/" + strings.ReplaceAll(key, "_", "-")})
		}
	}
	out := make([]templates.ConsoleNav, len(items))
	for i, it := range items {
		out[i] = templates.ConsoleNav{Href: it.href + "?lang=" + string(lang),
			Label: templates.Message(lang, "console.nav."+it.key), Current: it.key == current}
	}
	return out
}

// render writes a console page with status; the page around it (language
// links, navigation, sign-out) comes from ss, nil before sign-in.
func (c *Console) render(w http.ResponseWriter, r *http.Request, ss *sessions.Session, status int, name, section string, query url.Values, notice string, data any) {
	lang := c.lang(r)
	if d, ok := data.(homeData); ok {
		// The home page of every role is gathered by Home (leads.go); the
		// admin role's adds the queues' health (queues.go).
		data = c.withQueueHealth(r, ss, d)
	}
	p := templates.ConsolePage{Lang: lang, Path: r.URL.Path, Query: query, Notice: notice, Data: data}
	if ss != nil {
		p.Holder, p.CSRF, p.Nav = ss.Name, ss.CSRF, nav(lang, ss.Role, section)
	}
	var buf strings.Builder
	if err := templates.RenderConsole(&buf, name, p); err != nil {
		c.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(buf.String()))
}

// errorData is the error page's content.
type errorData struct{ Title, Body string }

// errorPage answers status with the error page; what names its texts
// ("403", "csrf", …: catalogue keys console.error.<what>.body).
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, ss *sessions.Session, status int, what string) {
	lang := c.lang(r)
	titleKey := "console.error." + what + ".title"
	switch what {
	case "csrf", "origin", "metrics":
		titleKey = "console.error.403.title"
	case "subject_conflict": // privacy console
		titleKey = "console.error.409.title"
	case "subject_invalid": // privacy console
		titleKey = "console.error.400.title"
	case "campaign_409", "task_409", "task_lead_409": // campaigns; admin's queues
		titleKey = "console.error.409.title"
	}
	if status == http.StatusServiceUnavailable {
		titleKey = "console.error.500.title"
	}
	c.render(w, r, ss, status, "error", "", nil, "", errorData{
		Title: templates.Message(lang, titleKey), Body: templates.Message(lang, "console.error."+what+".body")})
}

// storeError answers an error of the store: a missing record is 404, a
// state that does not allow the action 409, anything else 503.
func (c *Console) storeError(w http.ResponseWriter, r *http.Request, ss *sessions.Session, err error) {
	var ie *intake.Error
	if errors.As(err, &ie) {
		switch ie.Code {
		case intake.ENotFound:
			c.errorPage(w, r, ss, http.StatusNotFound, "404")
			return
		case intake.EConflict:
			c.errorPage(w, r, ss, http.StatusConflict, "409")
			return
		case intake.EBadRequest, intake.EInvalid:
			c.errorPage(w, r, ss, http.StatusBadRequest, "400")
			return
		}
	}
	c.Log.Error("console: store", "route", r.Pattern, "err", err)
	c.errorPage(w, r, ss, http.StatusServiceUnavailable, "500")
}
