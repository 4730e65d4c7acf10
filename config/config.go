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

// Config is the validated configuration of every leadgate process.
type Config struct {
	Production bool   // LEADGATE_ENV=production
	Addr       string // listen address, from LEADGATE_ADDR or ":"+PORT
	VarDir     string // LEADGATE_VAR_DIR, default "var": development keys, tokens, file drivers

	// RedisURL is empty in development, meaning an embedded in-memory Redis.
	RedisURL string

	DataKey     []byte         // 32 bytes; nil until development defaults are applied
	OldDataKeys [][]byte       // still decrypt, for rotation
	IndexKey    []byte         // 32 bytes; nil until development defaults are applied
	AdminTokens []intake.Token // empty until development defaults are applied

	PublicBaseURL *url.URL
	PolicyVersion string
	PolicyURL     string
	DefaultLang   string

	TrustedProxies     []netip.Prefix
	CORSAllowedOrigins []string // normalised scheme://host[:port]
	ProductCatalog     []string
	CaptureCookies     []string

	MailDriver               string // "sendgrid" or "file"
	SendGridAPIKey           string
	SendGridAPIHost          string
	SendGridWebhookPublicKey string
	SendGridASMGroupID       int
	MailFrom                 string
	MailFromName             string
	SalesNotifyEmail         string

	CRMDriver          string // "bitrix24", "amocrm", "webhook" or "file"
	Bitrix24WebhookURL string
	AmoCRMBaseURL      string
	AmoCRMToken        string
	AmoCRMPipelineID   int
	AmoCRMLeadIDField  int // id of the amoCRM lead custom field holding leadgate's lead id
	CRMWebhookURL      string
	CRMWebhookSecret   string

	TelegramBotToken        string
	TelegramChatID          string
	TelegramAPIURL          string
	TelegramIncludeContacts bool

	RiskReviewThreshold int
	RoutingRules        string

	RetryBaseDelay time.Duration
	RetryMaxAge    time.Duration

	DoubleOptIn         bool
	LeadRetention       time.Duration
	UnconfirmedOptinTTL time.Duration
	TaskRetention       time.Duration
	PurgeSchedule       string
	AuditRetention      time.Duration
	SubjectRequestDue   int

	IntakeRateLimit      intake.Limit
	IntakeRateLimitEmail intake.Limit
}

// FromEnvironment loads a .env file in the working directory when one exists
// (variables already set win) and then reads the process environment.
func FromEnvironment() (*Config, error) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf(".env: %w", err)
	}
	return Load(os.Getenv)
}

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
	c.Addr = r.str("LEADGATE_ADDR", ":"+port)
	c.VarDir = r.str("LEADGATE_VAR_DIR", "var")
	c.RedisURL = r.str("REDIS_URL", "")
	c.DataKey = r.key("LEADGATE_DATA_KEY")
	for _, s := range r.list("LEADGATE_OLD_DATA_KEYS", "") {
		c.OldDataKeys = append(c.OldDataKeys, r.decodeKey("LEADGATE_OLD_DATA_KEYS", s))
	}
	c.IndexKey = r.key("LEADGATE_INDEX_KEY")
	c.AdminTokens = r.tokens("LEADGATE_ADMIN_TOKENS")

	c.PublicBaseURL = r.url("PUBLIC_BASE_URL", "http://localhost:"+port)
	c.PolicyVersion = r.str("POLICY_VERSION", "1")
	c.PolicyURL = r.url("POLICY_URL", "https://paymtech.kz/kz/privacy-policy/").String()
	c.DefaultLang = r.oneOf("DEFAULT_LANG", "ru", "kk", "ru", "en")

	for _, s := range r.list("TRUSTED_PROXIES", "") {
		p, err := parsePrefix(s)
		r.check("TRUSTED_PROXIES", err)
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	for _, s := range r.list("CORS_ALLOWED_ORIGINS", "") {
		o, err := NormalizeOrigin(s)
		r.check("CORS_ALLOWED_ORIGINS", err)
		c.CORSAllowedOrigins = append(c.CORSAllowedOrigins, o)
	}
	c.ProductCatalog = r.list("PRODUCT_CATALOG", "acquiring,payment_links,recurring,payouts,pos")
	for _, p := range c.ProductCatalog {
		if !isCode(p) {
			r.fail("PRODUCT_CATALOG", fmt.Errorf("%q is not a code of lowercase letters, digits and _", p))
		}
	}
	c.CaptureCookies = r.list("CAPTURE_COOKIES", "_ga,_ym_uid")

	c.SendGridAPIKey = r.str("SENDGRID_API_KEY", "")
	defMail := "file"
	if c.SendGridAPIKey != "" {
		defMail = "sendgrid"
	}
	c.MailDriver = r.oneOf("MAIL_DRIVER", defMail, "sendgrid", "file")
	c.SendGridAPIHost = r.url("SENDGRID_API_HOST", "https://api.sendgrid.com").String()
	c.SendGridWebhookPublicKey = r.str("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
	c.SendGridASMGroupID = r.int("SENDGRID_ASM_GROUP_ID", 0, 0, 1<<31-1)
	c.MailFrom = r.str("MAIL_FROM", "")
	if c.MailFrom == "" && !c.Production {
		c.MailFrom = devMailFrom
	}
	c.MailFromName = r.str("MAIL_FROM_NAME", "")
	c.SalesNotifyEmail = r.str("SALES_NOTIFY_EMAIL", "")

	c.CRMDriver = r.oneOf("CRM_DRIVER", "file", "bitrix24", "amocrm", "webhook", "file")
	c.Bitrix24WebhookURL = r.str("BITRIX24_WEBHOOK_URL", "")
	c.AmoCRMBaseURL = r.str("AMOCRM_BASE_URL", "")
	c.AmoCRMToken = r.str("AMOCRM_TOKEN", "")
	c.AmoCRMPipelineID = r.int("AMOCRM_PIPELINE_ID", 0, 0, 1<<31-1)
	c.AmoCRMLeadIDField = r.int("AMOCRM_LEAD_ID_FIELD_ID", 0, 0, 1<<31-1)
	c.CRMWebhookURL = r.str("CRM_WEBHOOK_URL", "")
	c.CRMWebhookSecret = r.str("CRM_WEBHOOK_SECRET", "")

	c.TelegramBotToken = r.str("TELEGRAM_BOT_TOKEN", "")
	c.TelegramChatID = r.str("TELEGRAM_CHAT_ID", "")
	c.TelegramAPIURL = r.url("TELEGRAM_API_URL", "https://api.telegram.org").String()
	c.TelegramIncludeContacts = r.bool("TELEGRAM_INCLUDE_CONTACTS", false)

	c.RiskReviewThreshold = r.int("RISK_REVIEW_THRESHOLD", 70, 0, 100)
	c.RoutingRules = r.str("ROUTING_RULES", "")

	c.RetryBaseDelay = r.positiveDuration("RETRY_BASE_DELAY", "5s")
	c.RetryMaxAge = r.positiveDuration("RETRY_MAX_AGE", "72h")
	c.DoubleOptIn = r.bool("DOUBLE_OPT_IN", true)
	c.LeadRetention = r.positiveDuration("LEAD_RETENTION", "365d")
	c.UnconfirmedOptinTTL = r.positiveDuration("UNCONFIRMED_OPTIN_TTL", "7d")
	c.TaskRetention = r.duration("TASK_RETENTION", "7d")
	c.PurgeSchedule = r.str("PURGE_SCHEDULE", "@hourly")
	if _, err := cron.ParseStandard(c.PurgeSchedule); err != nil {
		r.fail("PURGE_SCHEDULE", fmt.Errorf("%q is not a cron spec (e.g. @hourly, 15 * * * *): %w", c.PurgeSchedule, err))
	}
	if c.TaskRetention > c.LeadRetention {
		r.fail("TASK_RETENTION", errors.New("must not exceed LEAD_RETENTION: an archived task names its lead and would outlive it"))
	}
	c.AuditRetention = r.positiveDuration("AUDIT_RETENTION", "1095d")
	c.SubjectRequestDue = r.int("SUBJECT_REQUEST_DUE", 3, 1, 30)
	c.IntakeRateLimit = r.limit("INTAKE_RATE_LIMIT", "20/h")
	c.IntakeRateLimitEmail = r.limit("INTAKE_RATE_LIMIT_EMAIL", "5/h")
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
	switch c.CRMDriver {
	case "webhook":
		if c.CRMWebhookURL == "" || !strings.HasPrefix(c.CRMWebhookSecret, "whsec_") {
			return errors.New("CRM_DRIVER=webhook needs CRM_WEBHOOK_URL and a CRM_WEBHOOK_SECRET starting with whsec_")
		}
	case "bitrix24":
		if !strings.HasPrefix(c.Bitrix24WebhookURL, "https://") && !strings.HasPrefix(c.Bitrix24WebhookURL, "http://") {
			return errors.New("CRM_DRIVER=bitrix24 needs BITRIX24_WEBHOOK_URL (https://{portal}/rest/{user}/{secret}/)")
		}
	case "amocrm":
		if c.AmoCRMBaseURL == "" || c.AmoCRMToken == "" || c.AmoCRMLeadIDField == 0 {
			return errors.New("CRM_DRIVER=amocrm needs AMOCRM_BASE_URL, AMOCRM_TOKEN and AMOCRM_LEAD_ID_FIELD_ID")
		}
	}
	if (c.TelegramBotToken == "") != (c.TelegramChatID == "") {
		return errors.New("TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID go together: set both or neither")
	}
	if c.MailDriver == "sendgrid" && c.SendGridAPIKey == "" {
		return errors.New("MAIL_DRIVER=sendgrid needs SENDGRID_API_KEY")
	}
	if a, err := mail.ParseAddress(c.MailFrom); c.MailFrom != "" && (err != nil || a.Address != c.MailFrom) {
		return errors.New("MAIL_FROM: not a bare email address (the display name is MAIL_FROM_NAME)")
	}
	return nil
}

// refuseDevelopmentDefaults names the first development default a production
// process would otherwise run on.
func (c *Config) refuseDevelopmentDefaults() error {
	switch {
	case c.RedisURL == "":
		return errors.New("production: REDIS_URL is required (the in-memory Redis is for development only)")
	case c.DataKey == nil:
		return errors.New("production: LEADGATE_DATA_KEY is required (base64 of 32 random bytes)")
	case c.IndexKey == nil:
		return errors.New("production: LEADGATE_INDEX_KEY is required (base64 of 32 random bytes)")
	case len(c.AdminTokens) == 0:
		return errors.New("production: LEADGATE_ADMIN_TOKENS is required (role:name:token, comma separated)")
	case c.CRMDriver == "file":
		return errors.New("production: CRM_DRIVER=file writes leads in clear to local disk; choose bitrix24, amocrm or webhook")
	case c.MailDriver == "file":
		return errors.New("production: MAIL_DRIVER=file writes mail to local disk; set SENDGRID_API_KEY")
	case c.MailFrom == devMailFrom || c.MailFrom == "":
		return errors.New("production: MAIL_FROM is required (the sender of every email)")
	case c.PublicBaseURL.Hostname() == "localhost":
		return errors.New("production: PUBLIC_BASE_URL must be the public address of the service, not localhost")
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

// ParseDuration accepts Go durations ("90s", "72h") and whole days ("365d").
func ParseDuration(s string) (time.Duration, error) {
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

// ParseLimit reads "20/h": a count per s, m, h or d.
func ParseLimit(s string) (intake.Limit, error) {
	n, unit, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
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
	d, err := ParseDuration(r.str(name, def))
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
	v, err := ParseLimit(r.str(name, def))
	r.check(name, err)
	return v
}

func (r *reader) url(name, def string) *url.URL {
	v := r.str(name, def)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, fmt.Errorf("%q is not an http(s) URL", v))
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
			r.fail(name, fmt.Errorf("entry %d: the role is not sales, marketing, privacy or admin", i+1)) // the text there may be a misplaced token
			return nil
		}
		out = append(out, intake.Token{Role: role, Name: parts[1], Secret: parts[2]})
	}
	return out
}
