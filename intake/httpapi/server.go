// Package httpapi is leadgate's HTTP edge: the public form and its posts,
// the opt-in and unsubscribe links, SendGrid's Event Webhook, and the admin
// API. routes.go lists every route with the role it needs; errors.go is
// the one place an error becomes an answer. Handlers decode, call the store
// parts or the privacy service through the interfaces below, and encode.
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/intake/privacy"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/templates"
)

// Options configures the public and admin HTTP handlers.
type Options struct {
	PublicOrigin   string         // the service's own origin, e.g. "https://leads.example.kz"
	AllowedOrigins []string       // other origins whose pages may post the form
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed
	DefaultLang    templates.Lang
	Products       []string // the catalogue of product codes
	CaptureCookies []string // cookie names whose values are recorded
	PolicyVersion  string
	PolicyURL      string
	PerIP          intake.Limit // accepted submissions per client IP
	PerEmail       intake.Limit // accepted submissions per person
	DoubleOptIn    bool         // a marketing opt-in waits for the emailed link
	AdminTokens    []intake.Token
	SendGridKey    string        // SENDGRID_WEBHOOK_PUBLIC_KEY: verifies the Event Webhook; empty refuses every event post
	AuditRetention time.Duration // AUDIT_RETENTION: audit events older than this are dropped; zero means 1095 days
	// FrameAncestors (FRAME_ANCESTORS) are the origins, normalised like
	// AllowedOrigins ("https://www.example.kz"), whose pages may show the
	// form and thanks pages in a frame: the company site embedding the
	// form. Empty allows only the service's own pages. The confirm and
	// unsubscribe pages are never framed, whatever it says.
	FrameAncestors []string
	// ConsoleLoginLimit is CONSOLE_LOGIN_RATE_LIMIT: console sign-in
	// attempts per client; zero means 10 per 15 minutes.
	ConsoleLoginLimit intake.Limit
	// SettleBudget bounds how long a submission whose accept call lost its
	// answer waits for Redis to say whether the lead was stored; zero
	// means 3 s.
	SettleBudget time.Duration
	// --- formux (issue 12) ---
	// PolicyURLs (POLICY_URL_KK/_RU/_EN) are the privacy policy by
	// language; a language without one uses PolicyURL. The form links to
	// its language's, and a consent records the one of the language it was
	// given in: the text the person could read.
	PolicyURLs map[templates.Lang]string
	// Company (COMPANY_NAME, COMPANY_CONTACT) is named in every public
	// page's footer and in the consent texts.
	Company templates.Company
	// --- end formux ---
	// Teams are the routing rules' teams and their members: the team and
	// owner values the lead listings filter by (routing.Rules.Teams).
	Teams []intake.Team
}

// choices are the values the lead listings' filters may name.
func (o Options) choices() intake.Choices {
	return intake.Choices{Products: o.Products, Teams: o.Teams}
}

// policyURL is the privacy policy's URL for lang.
func (o Options) policyURL(lang templates.Lang) string {
	if u := o.PolicyURLs[lang]; u != "" {
		return u
	}
	return o.PolicyURL
}

// Leads are what the handlers need of the lead store (redisstore.Leads).
type Leads interface {
	Accept(ctx context.Context, a intake.Application) (*intake.Admission, error)
	// Admitted settles an Accept that lost its answer: the admission of
	// the lead id when it was stored, nil when it was not and never will be.
	Admitted(ctx context.Context, id string) (*intake.Admission, error)
	Get(ctx context.Context, id string) (*intake.Lead, error)
	List(ctx context.Context, f intake.LeadFilter, cursor string, limit int) (*intake.Page, error)
	Redrive(ctx context.Context, id string) (intake.State, error)
	Count(ctx context.Context, st intake.State) (int64, error) // the console's home counts what waits
}

// People are what the consent links and the provider's events change
// (redisstore.People).
type People interface {
	PersonOf(email string) (person string, ok bool)
	ConfirmMarketing(ctx context.Context, person string, p intake.Proof) (bool, error)
	Withdraw(ctx context.Context, person string, p intake.Proof) (bool, error)
	Suppress(ctx context.Context, person, reason string, p intake.Proof) error
	EventSeen(ctx context.Context, id string) (bool, error)
	RememberEvent(ctx context.Context, id string) error
	// MarketingDone is the person's marketing state and whether a
	// confirmation is waiting: a used link's page says "already done".
	MarketingDone(ctx context.Context, person string) (state string, waiting bool, err error)
}

// Campaigns are campaigns and breach notices (redisstore.Campaigns).
type Campaigns interface {
	CreateCampaign(ctx context.Context, c *intake.Campaign, to []string) (string, error)
	Campaign(ctx context.Context, id string) (*intake.Campaign, error)
	Campaigns(ctx context.Context, kind intake.CampaignKind, limit int) ([]*intake.Campaign, error)
	CancelCampaign(ctx context.Context, id string) error
	Failures(ctx context.Context, id, cursor string, limit int) ([]intake.FailedRecipient, string, error)
	SegmentCount(ctx context.Context, seg intake.Segment) (int64, error) // the console's count of who a segment reaches
}

// AuditLog is the audit log (ops.Audit).
type AuditLog interface {
	// Append adds ev; a retention above zero drops older events as it goes.
	Append(ctx context.Context, ev intake.AuditEvent, retention time.Duration) error
	// CountRefused counts an unauthenticated call this minute: record is
	// false past intake.MaxRefusedPerMinute, firstOver true once, then.
	CountRefused(ctx context.Context) (record, firstOver bool, err error)
	List(ctx context.Context, since time.Time, cursor string, limit int) ([]intake.AuditEvent, string, error)
}

// Privacy handles data-subject requests (privacy.Service).
type Privacy interface {
	Handle(ctx context.Context, ask privacy.Ask) (*privacy.Answer, error)
	Requests(ctx context.Context, which intake.RequestsOf, cursor string, limit int) ([]intake.SubjectRequest, string, error)
	// Find and Person are the console's look-ups (privacy console).
	Find(ctx context.Context, email, phone string) ([]*intake.Subject, error)
	Person(ctx context.Context, person string) (*intake.Subject, error)
}

// Deps are what the handlers work with.
type Deps struct {
	Leads     Leads
	People    People
	Campaigns Campaigns
	Audit     AuditLog
	Privacy   Privacy
	Queue     intake.Queue
	Keys      *seal.Keys // signs and checks the form, opt-in and unsubscribe tokens
	// Sessions are the console's sign-in sessions (sessions.Store, whose
	// idle limit is CONSOLE_SESSION_TTL).
	Sessions console.Sessions
	// PreviewCampaign renders a campaign in one language as the sender
	// does (jobs.Campaigner.Preview), for the console's preview; nil
	// leaves the preview out.
	PreviewCampaign func(c *intake.Campaign, lang string) (templates.Email, error)
	// Tasks are asynq's queues, for the console's queues page and the
	// admin's home (an adapter of its Inspector, in cmd/leadgate).
	Tasks console.Tasks
}

// Server serves the form, takes submissions and answers admin calls.
type Server struct {
	Deps
	opts      Options
	origins   originPolicy
	headers   securityHeaders
	validator *form.Validator
	log       *slog.Logger
	now       func() time.Time
	console   *console.Console
}

// NewServer returns the HTTP side of intake.
func NewServer(d Deps, opts Options, log *slog.Logger, now func() time.Time) *Server {
	s := &Server{
		Deps: d, opts: opts, log: log, now: now,
		origins:   originPolicy{own: opts.PublicOrigin, allowed: opts.AllowedOrigins},
		headers:   newSecurityHeaders(opts, log),
		validator: form.NewValidator(opts.Products, now),
	}
	s.console = s.newConsole()
	return s
}

// newConsole is the console over the server's store, tokens, audit log and
// client address rules: one of each, shared with the API.
func (s *Server) newConsole() *console.Console {
	limit := s.opts.ConsoleLoginLimit
	if limit.N == 0 {
		limit = intake.Limit{N: 10, Per: 15 * time.Minute}
	}
	return console.New(console.Deps{
		Leads: s.Leads, Sessions: s.Sessions, Queue: s.Queue,
		Authenticate: func(secret string) (intake.Token, bool) { return matchToken(secret, s.opts.AdminTokens) },
		Audit:        s.audit,
		ClientKey: func(r *http.Request) string {
			return s.Keys.Index("console-login", clientNet(clientIP(r, s.opts.TrustedProxies)))
		},
		SameOrigin: func(r *http.Request) bool {
			origin, crossSite, _ := s.origins.check(r)
			return origin != "" && !crossSite
		},
		Log:     s.log,
		Privacy: s.Privacy,
		Now:     s.now,
		// --- campaigns ---
		CampaignDeps: s.consoleCampaigns(),
		// --- end campaigns ---
		AuditLog: s.Audit,
		Tasks:    s.Tasks,
	}, console.Options{
		DefaultLang:  s.opts.DefaultLang,
		SecureCookie: strings.HasPrefix(s.opts.PublicOrigin, "https://"),
		LoginLimit:   limit,
		Choices:      s.opts.choices(),
	})
}

// clientNet is what a client is counted by: its IPv4 address, or its IPv6
// /64, which one subscriber usually has whole.
func clientNet(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func (s *Server) lang(r *http.Request) templates.Lang {
	return templates.Negotiate(r.URL.Query().Get("lang"), r.Header.Get("Accept-Language"), s.opts.DefaultLang)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
