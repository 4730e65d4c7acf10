// Package config reads leadgate's configuration from the environment (and a
// .env file when present), validates it once at start, and builds the Redis
// client every process shares with asynq.
//
// Every variable, its default and its meaning is listed in .env.example at the
// repository root; the zero value of a field below never means "unset" unless
// its comment says so.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/robfig/cron/v3"

	"github.com/paymtech/leadgate/intake"
)

// devMailFrom is the development sender; production must name its own.
const devMailFrom = "leadgate@localhost"

// Config is the validated configuration of every leadgate process, one
// section per concern. Each field's comment names its variable and default.
type Config struct {
	Production bool   // LEADGATE_ENV=production; default development
	VarDir     string // LEADGATE_VAR_DIR, default "var": development keys, tokens, file drivers

	HTTP      HTTP
	Redis     Redis
	Keys      Keys
	Mail      Mail
	CRM       CRM
	Telegram  Telegram
	Routing   Routing
	Retry     Retry
	Retention Retention
	Limits    Limits
	Console   Console
}

// HTTP is how the service faces the web: where it listens, who may post the
// form, what a request may name, and the consent it records.
type HTTP struct {
	Addr string // LEADGATE_ADDR, default ":" + PORT (PORT, default 8080)
	// MetricsAddr is METRICS_ADDR, default none: host:port of a listener of
	// this process serving only /metrics. worker and clock serve metrics only
	// there; web and serve then no longer serve /metrics on Addr. Without it,
	// in production, /metrics on Addr needs a bearer token of role admin or
	// metrics.
	MetricsAddr string
	// ShutdownDelay is SHUTDOWN_DELAY, default 0, at most maxShutdownDelay:
	// how long web, on SIGTERM, keeps serving with /readyz answering 503
	// before it stops accepting
	// connections, so that a load balancer stops sending it new ones first
	// (set it to the balancer's health-check interval times its failure
	// threshold). Closing a listening socket resets the connections its
	// kernel queue holds; without a balancer that looks at /readyz the
	// listener's drain answers what is queued, and a connection arriving in
	// the last instant may still be reset.
	ShutdownDelay time.Duration
	// FrameAncestors is FRAME_ANCESTORS, default none: origins allowed to
	// show the form and thanks pages in a frame (normalised scheme://host).
	FrameAncestors     []string
	PublicBaseURL      *url.URL       // PUBLIC_BASE_URL, default http://localhost:$PORT: the base of links in emails
	TrustedProxies     []netip.Prefix // TRUSTED_PROXIES, default none: proxies whose X-Forwarded-For is believed
	CORSAllowedOrigins []string       // CORS_ALLOWED_ORIGINS, default none; normalised scheme://host[:port]
	DefaultLang        string         // DEFAULT_LANG, default "ru": kk, ru or en
	ProductCatalog     []string       // PRODUCT_CATALOG, default acquiring, payment_links, recurring, payouts, pos
	CaptureCookies     []string       // CAPTURE_COOKIES, default _ga, _ym_uid
	PolicyVersion      string         // POLICY_VERSION, default "1": recorded with every consent
	PolicyURL          string         // POLICY_URL, default https://paymtech.kz/kz/privacy-policy/
	DoubleOptIn        bool           // DOUBLE_OPT_IN, default true: marketing consent waits for the emailed link
	// --- formux (issue 12): the form visitors trust ---
	// PolicyURLs are POLICY_URL_KK, POLICY_URL_RU and POLICY_URL_EN by
	// language ("kk", "ru", "en"), each defaulting to PolicyURL: the policy
	// a page in that language links to and a consent given in it records.
	PolicyURLs map[string]string
	// CompanyName is COMPANY_NAME, default "PaymTech LLP": the operator
	// named in the pages' footer and in the consent texts.
	CompanyName string
	// CompanyContact is COMPANY_CONTACT, default none: a contact line
	// (address, phone) under the company's name on the pages.
	CompanyContact string
	// --- end formux ---
}

// PolicyURLFor is the privacy policy's URL for a language (kk, ru or en):
// POLICY_URL_<LANG>, else POLICY_URL.
func (h HTTP) PolicyURLFor(lang string) string {
	if u := h.PolicyURLs[lang]; u != "" {
		return u
	}
	return h.PolicyURL
}

// Redis is the database every process shares with asynq.
type Redis struct {
	// URL is REDIS_URL: redis://, rediss:// or redis-sentinel://. Empty (the
	// default) means an embedded in-memory Redis, in development only.
	URL string
}

// Keys are the secrets: the keys that seal personal data and key its lookup
// hashes, and the admin tokens. Data, Index and AdminTokens are nil when not
// configured, until ApplyDevelopmentDefaults fills them in development;
// production refuses to start without them.
type Keys struct {
	Data        []byte         // LEADGATE_DATA_KEY, 32 bytes; default none (development: var/data.key)
	OldData     [][]byte       // LEADGATE_OLD_DATA_KEYS, default none: keys that still decrypt, for rotation
	Index       []byte         // LEADGATE_INDEX_KEY, 32 bytes; default none (development: var/index.key)
	AdminTokens []intake.Token // LEADGATE_ADMIN_TOKENS, role:name:token, comma separated; default none (development: var/admin-tokens)
}

// Mail is the mail driver and the sender of every email.
type Mail struct {
	Driver                   string // MAIL_DRIVER, "sendgrid" or "file"; default sendgrid when SENDGRID_API_KEY is set, else file
	SendGridAPIKey           string // SENDGRID_API_KEY, default none
	SendGridAPIHost          string // SENDGRID_API_HOST, default https://api.sendgrid.com
	SendGridWebhookPublicKey string // SENDGRID_WEBHOOK_PUBLIC_KEY, default none: the Event Webhook is refused
	SendGridASMGroupID       int    // SENDGRID_ASM_GROUP_ID, default 0: no unsubscribe group
	From                     string // MAIL_FROM, a bare address; default leadgate@localhost in development, none in production
	FromName                 string // MAIL_FROM_NAME, default none
	SalesNotifyEmail         string // SALES_NOTIFY_EMAIL, default none: sales is not told by email
}

// CRM is the sales CRM driver and what it needs.
type CRM struct {
	Driver             string // CRM_DRIVER, default "file"; or "bitrix24", "amocrm", "webhook"
	Bitrix24WebhookURL string // BITRIX24_WEBHOOK_URL, default none
	AmoCRMBaseURL      string // AMOCRM_BASE_URL, default none
	AmoCRMToken        string // AMOCRM_TOKEN, default none
	AmoCRMPipelineID   int    // AMOCRM_PIPELINE_ID, default 0: the account's default pipeline
	AmoCRMLeadIDField  int    // AMOCRM_LEAD_ID_FIELD_ID, default 0: id of the amoCRM lead custom field holding leadgate's lead id
	WebhookURL         string // CRM_WEBHOOK_URL, default none
	WebhookSecret      string // CRM_WEBHOOK_SECRET, default none; whsec_<base64 key>
}

// Telegram is the sales notification to a Telegram chat: both BotToken and
// ChatID, or neither (the default: no notification).
type Telegram struct {
	BotToken        string // TELEGRAM_BOT_TOKEN, default none
	ChatID          string // TELEGRAM_CHAT_ID, default none
	APIURL          string // TELEGRAM_API_URL, default https://api.telegram.org
	IncludeContacts bool   // TELEGRAM_INCLUDE_CONTACTS, default false: phone and email stay out of the chat
}

// Routing is where a lead goes: to review, or to which team and salesperson.
type Routing struct {
	RiskReviewThreshold int    // RISK_REVIEW_THRESHOLD, default 70: a lead scoring at least this (0-100) goes to review; 0 reviews every lead
	Rules               string // ROUTING_RULES, the path of a JSON rules file; default none: every lead to one team, the CRM's default owner
}

// Retry is how long outside calls are retried.
type Retry struct {
	BaseDelay time.Duration // RETRY_BASE_DELAY, default 5s: the first retry, doubling with jitter
	MaxAge    time.Duration // RETRY_MAX_AGE, default 72h: then a lead is marked failed
}

// Retention is how long records live, when the purge runs, and how soon a
// data-subject request is due.
type Retention struct {
	Lead              time.Duration // LEAD_RETENTION, default 365d
	UnconfirmedOptin  time.Duration // UNCONFIRMED_OPTIN_TTL, default 7d
	Task              time.Duration // TASK_RETENTION, default 7d; 0 deletes finished tasks at the next purge
	Audit             time.Duration // AUDIT_RETENTION, default 1095d
	PurgeSchedule     string        // PURGE_SCHEDULE, default "@hourly": a cron spec
	SubjectRequestDue int           // SUBJECT_REQUEST_DUE, default 3: working days
}

// Limits are the accepted submissions allowed per client and per person.
type Limits struct {
	PerIP    intake.Limit // INTAKE_RATE_LIMIT, default 20/h
	PerEmail intake.Limit // INTAKE_RATE_LIMIT_EMAIL, default 5/h
}

// Console is the back office in a browser under /admin/: how long a
// sign-in lasts and how often sign-in may be tried.
type Console struct {
	// SessionTTL is CONSOLE_SESSION_TTL, default 8h: a session unused this
	// long ends (whatever it says, none outlives 24 h from sign-in).
	SessionTTL time.Duration
	// LoginRateLimit is CONSOLE_LOGIN_RATE_LIMIT, default 10/15m: sign-in
	// attempts per client address, so a token cannot be guessed by trying.
	LoginRateLimit intake.Limit
}

// FromEnvironment loads a .env file in the working directory when one exists
// (variables already set win) and then reads the process environment.
func FromEnvironment() (*Config, error) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf(".env: %w", err)
	}
	return Load(os.Getenv)
}

// maxShutdownDelay bounds SHUTDOWN_DELAY: a balancer's health checks
// notice a 503 within seconds, and a longer wait only delays every deploy.
const maxShutdownDelay = time.Minute

// Load reads and validates the configuration through getenv. In production it
// refuses every development default; in development, keys and tokens that are
// missing stay nil for ApplyDevelopmentDefaults to fill.
func Load(getenv func(string) string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{}
	switch env := r.str("LEADGATE_ENV", "development"); env {
	case "development":
	case "production":
		c.Production = true
	default:
		return nil, fmt.Errorf("LEADGATE_ENV: %q is neither development nor production", env)
	}
	port := r.str("PORT", "8080")
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("PORT: %q is not a port number", port)
	}
	c.HTTP.Addr = r.str("LEADGATE_ADDR", ":"+port)
	c.HTTP.MetricsAddr = r.str("METRICS_ADDR", "")
	c.HTTP.ShutdownDelay = r.duration("SHUTDOWN_DELAY", "0s")
	if c.HTTP.ShutdownDelay > maxShutdownDelay {
		// SIGTERM must end in a bounded time: an orchestrator kills what
		// outlives its grace period (the delay plus up to 20 s of draining).
		r.fail("SHUTDOWN_DELAY", fmt.Errorf("at most %s", maxShutdownDelay))
	}
	if c.HTTP.MetricsAddr != "" {
		if _, p, err := net.SplitHostPort(c.HTTP.MetricsAddr); err != nil || p == "" {
			r.fail("METRICS_ADDR", fmt.Errorf("%q is not host:port", c.HTTP.MetricsAddr))
		}
	}
	c.VarDir = r.str("LEADGATE_VAR_DIR", "var")
	c.Redis.URL = r.str("REDIS_URL", "")

	c.Keys.Data = r.key("LEADGATE_DATA_KEY")
	for _, s := range r.list("LEADGATE_OLD_DATA_KEYS", "") {
		c.Keys.OldData = append(c.Keys.OldData, r.decodeKey("LEADGATE_OLD_DATA_KEYS", s))
	}
	c.Keys.Index = r.key("LEADGATE_INDEX_KEY")
	c.Keys.AdminTokens = r.tokens("LEADGATE_ADMIN_TOKENS")

	c.HTTP.PublicBaseURL = r.url("PUBLIC_BASE_URL", "http://localhost:"+port)
	c.HTTP.PolicyVersion = r.str("POLICY_VERSION", "1")
	c.HTTP.PolicyURL = r.url("POLICY_URL", "https://paymtech.kz/kz/privacy-policy/").String()
	// --- formux: the policy per language, defaulting to POLICY_URL ---
	c.HTTP.PolicyURLs = map[string]string{
		"kk": r.url("POLICY_URL_KK", c.HTTP.PolicyURL).String(),
		"ru": r.url("POLICY_URL_RU", c.HTTP.PolicyURL).String(),
		"en": r.url("POLICY_URL_EN", c.HTTP.PolicyURL).String(),
	}
	c.HTTP.CompanyName = r.str("COMPANY_NAME", "PaymTech LLP")
	c.HTTP.CompanyContact = r.str("COMPANY_CONTACT", "")
	// --- end formux ---
	c.HTTP.DefaultLang = r.oneOf("DEFAULT_LANG", "ru", "kk", "ru", "en")
	for _, s := range r.list("TRUSTED_PROXIES", "") {
		p, err := parsePrefix(s)
		r.check("TRUSTED_PROXIES", err)
		c.HTTP.TrustedProxies = append(c.HTTP.TrustedProxies, p)
	}
	for _, s := range r.list("CORS_ALLOWED_ORIGINS", "") {
		o, err := NormalizeOrigin(s)
		r.check("CORS_ALLOWED_ORIGINS", err)
		c.HTTP.CORSAllowedOrigins = append(c.HTTP.CORSAllowedOrigins, o)
	}
	for _, s := range r.list("FRAME_ANCESTORS", "") {
		o, err := NormalizeOrigin(s)
		r.check("FRAME_ANCESTORS", err)
		c.HTTP.FrameAncestors = append(c.HTTP.FrameAncestors, o)
	}
	c.HTTP.ProductCatalog = r.list("PRODUCT_CATALOG", "acquiring,payment_links,recurring,payouts,pos")
	for _, p := range c.HTTP.ProductCatalog {
		if !isCode(p) {
			r.fail("PRODUCT_CATALOG", fmt.Errorf("%q is not a code of lowercase letters, digits and _", p))
		}
	}
	c.HTTP.CaptureCookies = r.list("CAPTURE_COOKIES", "_ga,_ym_uid")

	c.Mail.SendGridAPIKey = r.str("SENDGRID_API_KEY", "")
	defMail := "file"
	if c.Mail.SendGridAPIKey != "" {
		defMail = "sendgrid"
	}
	c.Mail.Driver = r.oneOf("MAIL_DRIVER", defMail, "sendgrid", "file")
	c.Mail.SendGridAPIHost = r.url("SENDGRID_API_HOST", "https://api.sendgrid.com").String()
	c.Mail.SendGridWebhookPublicKey = r.str("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
	c.Mail.SendGridASMGroupID = r.int("SENDGRID_ASM_GROUP_ID", 0, 0, 1<<31-1)
	c.Mail.From = r.str("MAIL_FROM", "")
	if c.Mail.From == "" && !c.Production {
		c.Mail.From = devMailFrom
	}
	c.Mail.FromName = r.str("MAIL_FROM_NAME", "")
	c.Mail.SalesNotifyEmail = r.str("SALES_NOTIFY_EMAIL", "")

	c.CRM.Driver = r.oneOf("CRM_DRIVER", "file", "bitrix24", "amocrm", "webhook", "file")
	c.CRM.Bitrix24WebhookURL = r.str("BITRIX24_WEBHOOK_URL", "")
	c.CRM.AmoCRMBaseURL = r.str("AMOCRM_BASE_URL", "")
	c.CRM.AmoCRMToken = r.str("AMOCRM_TOKEN", "")
	c.CRM.AmoCRMPipelineID = r.int("AMOCRM_PIPELINE_ID", 0, 0, 1<<31-1)
	c.CRM.AmoCRMLeadIDField = r.int("AMOCRM_LEAD_ID_FIELD_ID", 0, 0, 1<<31-1)
	c.CRM.WebhookURL = r.str("CRM_WEBHOOK_URL", "")
	c.CRM.WebhookSecret = r.str("CRM_WEBHOOK_SECRET", "")

	c.Telegram.BotToken = r.str("TELEGRAM_BOT_TOKEN", "")
	c.Telegram.ChatID = r.str("TELEGRAM_CHAT_ID", "")
	c.Telegram.APIURL = r.url("TELEGRAM_API_URL", "https://api.telegram.org").String()
	c.Telegram.IncludeContacts = r.bool("TELEGRAM_INCLUDE_CONTACTS", false)

	c.Routing.RiskReviewThreshold = r.int("RISK_REVIEW_THRESHOLD", 70, 0, 100)
	c.Routing.Rules = r.str("ROUTING_RULES", "")

	c.Retry.BaseDelay = r.positiveDuration("RETRY_BASE_DELAY", "5s")
	c.Retry.MaxAge = r.positiveDuration("RETRY_MAX_AGE", "72h")

	c.HTTP.DoubleOptIn = r.bool("DOUBLE_OPT_IN", true)
	c.Retention.Lead = r.positiveDuration("LEAD_RETENTION", "365d")
	c.Retention.UnconfirmedOptin = r.positiveDuration("UNCONFIRMED_OPTIN_TTL", "7d")
	c.Retention.Task = r.duration("TASK_RETENTION", "7d")
	c.Retention.PurgeSchedule = r.str("PURGE_SCHEDULE", "@hourly")
	if _, err := cron.ParseStandard(c.Retention.PurgeSchedule); err != nil {
		r.fail("PURGE_SCHEDULE", fmt.Errorf("%q is not a cron spec (e.g. @hourly, 15 * * * *): %w", c.Retention.PurgeSchedule, err))
	}
	if c.Retention.Task > c.Retention.Lead {
		r.fail("TASK_RETENTION", errors.New("must not exceed LEAD_RETENTION: an archived task names its lead and would outlive it"))
	}
	c.Retention.Audit = r.positiveDuration("AUDIT_RETENTION", "1095d")
	c.Retention.SubjectRequestDue = r.int("SUBJECT_REQUEST_DUE", 3, 1, 30)

	c.Limits.PerIP = r.limit("INTAKE_RATE_LIMIT", "20/h")
	c.Limits.PerEmail = r.limit("INTAKE_RATE_LIMIT_EMAIL", "5/h")
	c.Console.SessionTTL = r.positiveDuration("CONSOLE_SESSION_TTL", "8h")
	if c.Console.SessionTTL > 24*time.Hour {
		// Longer would read as a promise the absolute limit breaks.
		r.fail("CONSOLE_SESSION_TTL", errors.New("must be at most 24h, the absolute limit of a session"))
	}
	c.Console.LoginRateLimit = r.limit("CONSOLE_LOGIN_RATE_LIMIT", "10/15m")
	if r.err != nil {
		return nil, r.err
	}
	if err := c.validateDrivers(); err != nil {
		return nil, err
	}
	if c.Production {
		if err := c.refuseDevelopmentDefaults(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// validateDrivers checks that the chosen drivers have what they need, so a
// worker fails at start rather than on its first lead.
func (c *Config) validateDrivers() error {
	switch c.CRM.Driver {
	case "webhook":
		if c.CRM.WebhookURL == "" || !strings.HasPrefix(c.CRM.WebhookSecret, "whsec_") {
			return errors.New("CRM_DRIVER=webhook needs CRM_WEBHOOK_URL and a CRM_WEBHOOK_SECRET starting with whsec_")
		}
	case "bitrix24":
		if !strings.HasPrefix(c.CRM.Bitrix24WebhookURL, "https://") && !strings.HasPrefix(c.CRM.Bitrix24WebhookURL, "http://") {
			return errors.New("CRM_DRIVER=bitrix24 needs BITRIX24_WEBHOOK_URL (https://{portal}/rest/{user}/{secret}/)")
		}
	case "amocrm":
		if c.CRM.AmoCRMBaseURL == "" || c.CRM.AmoCRMToken == "" || c.CRM.AmoCRMLeadIDField == 0 {
			return errors.New("CRM_DRIVER=amocrm needs AMOCRM_BASE_URL, AMOCRM_TOKEN and AMOCRM_LEAD_ID_FIELD_ID")
		}
	}
	if (c.Telegram.BotToken == "") != (c.Telegram.ChatID == "") {
		return errors.New("TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID go together: set both or neither")
	}
	if c.Mail.Driver == "sendgrid" && c.Mail.SendGridAPIKey == "" {
		return errors.New("MAIL_DRIVER=sendgrid needs SENDGRID_API_KEY")
	}
	if a, err := mail.ParseAddress(c.Mail.From); c.Mail.From != "" && (err != nil || a.Address != c.Mail.From) {
		return errors.New("MAIL_FROM: not a bare email address (the display name is MAIL_FROM_NAME)")
	}
	return nil
}

// refuseDevelopmentDefaults names the first development default, or plain
// http address, a production process would otherwise run on.
func (c *Config) refuseDevelopmentDefaults() error {
	switch {
	case c.Redis.URL == "":
		return errors.New("production: REDIS_URL is required (the in-memory Redis is for development only)")
	case c.Keys.Data == nil:
		return errors.New("production: LEADGATE_DATA_KEY is required (base64 of 32 random bytes)")
	case c.Keys.Index == nil:
		return errors.New("production: LEADGATE_INDEX_KEY is required (base64 of 32 random bytes)")
	case len(c.Keys.AdminTokens) == 0:
		return errors.New("production: LEADGATE_ADMIN_TOKENS is required (role:name:token, comma separated)")
	case c.CRM.Driver == "file":
		return errors.New("production: CRM_DRIVER=file writes leads in clear to local disk; choose bitrix24, amocrm or webhook")
	case c.Mail.Driver == "file":
		return errors.New("production: MAIL_DRIVER=file writes mail to local disk; set SENDGRID_API_KEY")
	case c.Mail.From == devMailFrom || c.Mail.From == "":
		return errors.New("production: MAIL_FROM is required (the sender of every email)")
	case c.HTTP.PublicBaseURL.Hostname() == "localhost":
		return errors.New("production: PUBLIC_BASE_URL must be the public address of the service, not localhost")
	case c.HTTP.PublicBaseURL.Scheme != "https":
		return errors.New("production: PUBLIC_BASE_URL must be https: one-click unsubscribe needs an HTTPS link (RFC 8058), and mailed links carry tokens")
	}
	return c.refusePlainHTTP()
}

// refusePlainHTTP names the first outside endpoint that is set to anything
// but an https URL: a lead, a mail or a notification sent there would carry
// personal data, and often a credential (a Bitrix24 webhook secret in the
// URL, a token in a header), in clear. Only production refuses it: tests and
// development talk to local fakes on plain http. The value is never quoted,
// since these URLs may hold credentials.
func (c *Config) refusePlainHTTP() error {
	for _, v := range []struct{ name, value string }{
		{"CRM_WEBHOOK_URL", c.CRM.WebhookURL},
		{"BITRIX24_WEBHOOK_URL", c.CRM.Bitrix24WebhookURL},
		{"AMOCRM_BASE_URL", c.CRM.AmoCRMBaseURL},
		{"SENDGRID_API_HOST", c.Mail.SendGridAPIHost},
		{"TELEGRAM_API_URL", c.Telegram.APIURL},
	} {
		if v.value == "" {
			continue // not used; the driver that needs it says so in validateDrivers
		}
		// url.Parse lowercases the scheme, so HTTPS:// is https too.
		if u, err := url.Parse(v.value); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("production: %s must be an https URL: personal data never travels in clear", v.name)
		}
	}
	return nil
}

// NormalizeOrigin turns "HTTPS://Example.kz/" into "https://example.kz": the
// form browsers send in an Origin header.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("%q is not an origin like https://example.kz", s)
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	// Browsers leave the scheme's default port out of Origin.
	if port := u.Port(); (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return scheme + "://" + host, nil
}

// parseDuration accepts Go durations ("90s", "72h") and whole days ("365d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration like 90s, 72h or 365d", s)
	}
	return d, nil
}

// parseLimit reads "20/h": a count per s, m, h or d, or per a duration
// such as "10/15m" (CONSOLE_LOGIN_RATE_LIMIT's window is not one unit).
func parseLimit(s string) (intake.Limit, error) {
	n, unit, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
	if per == 0 && unit != "" && unit[0] >= '1' && unit[0] <= '9' {
		if d, derr := time.ParseDuration(unit); derr == nil && d >= time.Second {
			per = d
		}
	}
	if !ok || err != nil || count < 1 || per == 0 {
		return intake.Limit{}, fmt.Errorf("%q is not a rate like 20/h", s)
	}
	return intake.Limit{N: count, Per: per}, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	return p.Masked(), nil
}

func isCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// reader collects the first error so Load reads like a list of variables.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(name string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", name, err)
	}
}

func (r *reader) check(name string, err error) {
	if err != nil {
		r.fail(name, err)
	}
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) list(name, def string) []string {
	var out []string
	for _, s := range strings.Split(r.str(name, def), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	if !slices.Contains(allowed, v) {
		r.fail(name, fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", ")))
	}
	return v
}

func (r *reader) int(name string, def, lo, hi int) int {
	v := r.str(name, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi))
	}
	return n
}

func (r *reader) bool(name string, def bool) bool {
	v := r.str(name, strconv.FormatBool(def))
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, fmt.Errorf("%q is not true or false", v))
	}
	return b
}

func (r *reader) duration(name, def string) time.Duration {
	d, err := parseDuration(r.str(name, def))
	r.check(name, err)
	return d
}

// positiveDuration is duration for the settings where zero would destroy data
// at the next purge or give up at the first failure: always a typo.
func (r *reader) positiveDuration(name, def string) time.Duration {
	d := r.duration(name, def)
	if d == 0 {
		r.fail(name, errors.New("must be more than zero"))
	}
	return d
}

func (r *reader) limit(name, def string) intake.Limit {
	v, err := parseLimit(r.str(name, def))
	r.check(name, err)
	return v
}

// url never echoes the value: a URL may carry credentials (user:password@,
// a webhook secret in its path).
func (r *reader) url(name, def string) *url.URL {
	v := r.str(name, def)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, errors.New("not an http(s) URL (scheme://host…)"))
		return &url.URL{}
	}
	return u
}

// key reads a base64 32-byte key; empty means "not configured" (nil).
func (r *reader) key(name string) []byte {
	v := r.str(name, "")
	if v == "" {
		return nil
	}
	return r.decodeKey(name, v)
}

// decodeKey never echoes the value: it is a secret.
func (r *reader) decodeKey(name, v string) []byte {
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		k, err = base64.RawStdEncoding.DecodeString(v)
	}
	if err != nil || len(k) != 32 {
		r.fail(name, errors.New("must be base64 of exactly 32 bytes (openssl rand -base64 32)"))
		return nil
	}
	return k
}

// tokens never echoes a token: configured tokens are never printed or logged.
func (r *reader) tokens(name string) []intake.Token {
	var out []intake.Token
	for i, s := range r.list(name, "") {
		parts := strings.SplitN(s, ":", 3)
		if len(parts) != 3 || parts[1] == "" || len(parts[2]) < 16 {
			r.fail(name, fmt.Errorf("entry %d is not role:name:token with a token of at least 16 characters", i+1))
			return nil
		}
		role := intake.Role(parts[0])
		if !slices.Contains(intake.TokenRoles, role) {
			r.fail(name, fmt.Errorf("entry %d: the role is not sales, marketing, privacy, admin or metrics", i+1)) // the text there may be a misplaced token
			return nil
		}
		out = append(out, intake.Token{Role: role, Name: parts[1], Secret: parts[2]})
	}
	return out
}
