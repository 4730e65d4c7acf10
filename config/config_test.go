package config

import (
	"bufio"
	"encoding/base64"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// mapEnv is a getenv over m; a missing name reads as empty, like an unset
// variable.
func mapEnv(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

// Keys and tokens of the test environments. They are fake, but the tests
// treat them as secrets: no error may contain them.
var (
	testDataKey  = []byte("data-key-for-tests-only-32-bytes")
	testIndexKey = []byte("index-key-for-tests-only-32bytes")
	testOldKey   = []byte("old-data-key-for-tests-32-bytes!")
	testToken    = "s3cr3t-admin-token-0123456789"
	testWhsec    = "whsec_" + base64.StdEncoding.EncodeToString([]byte("webhook-key-for-tests-32-bytes!!"))
	testSendGrid = "SG.s3cr3t-sendgrid-key"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// productionEnv is a complete production environment that Load accepts; each
// production test case removes or changes one thing in a fresh copy.
func productionEnv() map[string]string {
	return map[string]string{
		"LEADGATE_ENV":          "production",
		"REDIS_URL":             "redis://leadgate:s3cr3t-redis-pass@redis.internal:6379/0",
		"LEADGATE_DATA_KEY":     b64(testDataKey),
		"LEADGATE_INDEX_KEY":    b64(testIndexKey),
		"LEADGATE_ADMIN_TOKENS": "admin:ops:" + testToken,
		"CRM_DRIVER":            "webhook",
		"CRM_WEBHOOK_URL":       "https://crm.example.kz/hooks/leads",
		"CRM_WEBHOOK_SECRET":    testWhsec,
		"SENDGRID_API_KEY":      testSendGrid,
		"MAIL_FROM":             "leads@example.kz",
		"PUBLIC_BASE_URL":       "https://leads.example.kz",
	}
}

// secretsOf lists the values of env that no error may repeat.
func secretsOf(env map[string]string) []string {
	var out []string
	for _, name := range []string{"LEADGATE_DATA_KEY", "LEADGATE_INDEX_KEY", "LEADGATE_OLD_DATA_KEYS",
		"SENDGRID_API_KEY", "CRM_WEBHOOK_SECRET", "AMOCRM_TOKEN", "TELEGRAM_BOT_TOKEN"} {
		if v := env[name]; v != "" {
			out = append(out, v)
		}
	}
	for _, entry := range strings.Split(env["LEADGATE_ADMIN_TOKENS"], ",") {
		// Whatever the shape of the entry, any long part of it may be a token.
		for _, part := range strings.Split(entry, ":") {
			if len(strings.TrimSpace(part)) >= 16 {
				out = append(out, strings.TrimSpace(part))
			}
		}
	}
	if u, err := url.Parse(env["REDIS_URL"]); err == nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	return out
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got, err := Load(mapEnv(nil))
	if err != nil {
		t.Fatalf("Load(empty) = %v", err)
	}
	want := &Config{
		VarDir: "var",
		HTTP: HTTP{
			Addr:          ":8080",
			PublicBaseURL: &url.URL{Scheme: "http", Host: "localhost:8080"},
			PolicyVersion: "1",
			PolicyURL:     "https://paymtech.kz/kz/privacy-policy/",
			PolicyURLs: map[string]string{"kk": "https://paymtech.kz/kz/privacy-policy/",
				"ru": "https://paymtech.kz/kz/privacy-policy/", "en": "https://paymtech.kz/kz/privacy-policy/"},
			CompanyName:    "PaymTech LLP",
			DefaultLang:    "ru",
			ProductCatalog: []string{"acquiring", "payment_links", "recurring", "payouts", "pos"},
			CaptureCookies: []string{"_ga", "_ym_uid"},
			DoubleOptIn:    true,
		},
		Mail: Mail{
			Driver:          "file",
			SendGridAPIHost: "https://api.sendgrid.com",
			From:            "leadgate@localhost",
		},
		CRM:      CRM{Driver: "file"},
		Telegram: Telegram{APIURL: "https://api.telegram.org"},
		Routing:  Routing{RiskReviewThreshold: 70},
		Retry:    Retry{BaseDelay: 5 * time.Second, MaxAge: 72 * time.Hour},
		Retention: Retention{
			Lead:              365 * 24 * time.Hour,
			UnconfirmedOptin:  7 * 24 * time.Hour,
			Task:              7 * 24 * time.Hour,
			PurgeSchedule:     "@hourly",
			Audit:             1095 * 24 * time.Hour,
			SubjectRequestDue: 3,
		},
		Limits: Limits{
			PerIP:    intake.Limit{N: 20, Per: time.Hour},
			PerEmail: intake.Limit{N: 5, Per: time.Hour},
		},
		Console: Console{SessionTTL: 8 * time.Hour, LoginRateLimit: intake.Limit{N: 10, Per: 15 * time.Minute}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(empty) =\n%+v\nwant\n%+v", got, want)
	}
	// Keys and tokens stay unset for ApplyDevelopmentDefaults to fill.
	if got.Keys.Data != nil || got.Keys.Index != nil || got.Keys.AdminTokens != nil || got.Production {
		t.Errorf("Load(empty) set development secrets or production: %+v", got)
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
	}{
		{"PORT moves the address and the public URL", map[string]string{"PORT": "9000"},
			func(c *Config) bool {
				return c.HTTP.Addr == ":9000" && c.HTTP.PublicBaseURL.String() == "http://localhost:9000"
			}},
		{"LEADGATE_ADDR overrides PORT", map[string]string{"PORT": "9000", "LEADGATE_ADDR": "127.0.0.1:9999"},
			func(c *Config) bool { return c.HTTP.Addr == "127.0.0.1:9999" }},
		{"METRICS_ADDR and FRAME_ANCESTORS", map[string]string{"METRICS_ADDR": "127.0.0.1:9100", "FRAME_ANCESTORS": "HTTPS://WWW.Example.kz/, https://example.kz:443"},
			func(c *Config) bool {
				return c.HTTP.MetricsAddr == "127.0.0.1:9100" && slices.Equal(c.HTTP.FrameAncestors, []string{"https://www.example.kz", "https://example.kz"})
			}},
		{"SHUTDOWN_DELAY", map[string]string{"SHUTDOWN_DELAY": "10s"},
			func(c *Config) bool { return c.HTTP.ShutdownDelay == 10*time.Second }},
		{"a metrics token", map[string]string{"LEADGATE_ADMIN_TOKENS": "metrics:prometheus:" + testToken},
			func(c *Config) bool {
				return len(c.Keys.AdminTokens) == 1 && c.Keys.AdminTokens[0].Role == intake.RoleMetrics
			}},
		{"values are trimmed", map[string]string{"LEADGATE_ENV": " development ", "PORT": " 8081 "},
			func(c *Config) bool { return c.HTTP.Addr == ":8081" && !c.Production }},
		{"a SendGrid key makes sendgrid the mail driver", map[string]string{"SENDGRID_API_KEY": testSendGrid},
			func(c *Config) bool { return c.Mail.Driver == "sendgrid" && c.Mail.SendGridAPIKey == testSendGrid }},
		{"MAIL_DRIVER wins over the key and is case-blind", map[string]string{"SENDGRID_API_KEY": testSendGrid, "MAIL_DRIVER": "FILE"},
			func(c *Config) bool { return c.Mail.Driver == "file" }},
		{"webhook CRM driver", map[string]string{"CRM_DRIVER": "webhook", "CRM_WEBHOOK_URL": "https://crm.example.kz/h", "CRM_WEBHOOK_SECRET": testWhsec},
			func(c *Config) bool {
				return c.CRM.Driver == "webhook" && c.CRM.WebhookURL == "https://crm.example.kz/h" && c.CRM.WebhookSecret == testWhsec
			}},
		{"keys, raw base64 included", map[string]string{
			"LEADGATE_DATA_KEY":      b64(testDataKey),
			"LEADGATE_INDEX_KEY":     base64.RawStdEncoding.EncodeToString(testIndexKey),
			"LEADGATE_OLD_DATA_KEYS": b64(testOldKey) + " , " + base64.RawStdEncoding.EncodeToString(testDataKey),
		}, func(c *Config) bool {
			return slices.Equal(c.Keys.Data, testDataKey) && slices.Equal(c.Keys.Index, testIndexKey) &&
				reflect.DeepEqual(c.Keys.OldData, [][]byte{testOldKey, testDataKey})
		}},
		{"admin tokens keep names with spaces and tokens with colons", map[string]string{
			"LEADGATE_ADMIN_TOKENS": "sales:Test Testov:0123456789abcdef, admin:ops:" + testToken + ":with:colons",
		}, func(c *Config) bool {
			return reflect.DeepEqual(c.Keys.AdminTokens, []intake.Token{
				{Role: intake.RoleSales, Name: "Test Testov", Secret: "0123456789abcdef"},
				{Role: intake.RoleAdmin, Name: "ops", Secret: testToken + ":with:colons"},
			})
		}},
		{"trusted proxies: CIDRs masked, addresses as single hosts, IPv4-mapped unmapped", map[string]string{
			"TRUSTED_PROXIES": "10.1.2.3/8, 192.168.1.7, ::ffff:10.1.2.3, 2001:db8::1/32",
		}, func(c *Config) bool {
			return slices.Equal(c.HTTP.TrustedProxies, []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8::/32"),
			})
		}},
		{"CORS origins normalised", map[string]string{"CORS_ALLOWED_ORIGINS": "HTTPS://Example.KZ/, http://localhost:3000"},
			func(c *Config) bool {
				return slices.Equal(c.HTTP.CORSAllowedOrigins, []string{"https://example.kz", "http://localhost:3000"})
			}},
		{"lists skip empty entries", map[string]string{"PRODUCT_CATALOG": "acquiring,,pos,", "CAPTURE_COOKIES": " _ga "},
			func(c *Config) bool {
				return slices.Equal(c.HTTP.ProductCatalog, []string{"acquiring", "pos"}) && slices.Equal(c.HTTP.CaptureCookies, []string{"_ga"})
			}},
		{"numbers, booleans, durations and rates", map[string]string{
			"RISK_REVIEW_THRESHOLD": "0", "SUBJECT_REQUEST_DUE": "30", "SENDGRID_ASM_GROUP_ID": "12345",
			"DOUBLE_OPT_IN": "false", "TELEGRAM_INCLUDE_CONTACTS": "true", "LEAD_RETENTION": "30d",
			"RETRY_BASE_DELAY": "1m30s", "INTAKE_RATE_LIMIT": "100/m", "DEFAULT_LANG": "KK",
			"CONSOLE_SESSION_TTL": "2h", "CONSOLE_LOGIN_RATE_LIMIT": "5/30m",
		}, func(c *Config) bool {
			return c.Routing.RiskReviewThreshold == 0 && c.Retention.SubjectRequestDue == 30 && c.Mail.SendGridASMGroupID == 12345 &&
				!c.HTTP.DoubleOptIn && c.Telegram.IncludeContacts && c.Retention.Lead == 30*24*time.Hour &&
				c.Retry.BaseDelay == 90*time.Second && c.Limits.PerIP == intake.Limit{N: 100, Per: time.Minute} &&
				c.HTTP.DefaultLang == "kk" &&
				c.Console.SessionTTL == 2*time.Hour && c.Console.LoginRateLimit == intake.Limit{N: 5, Per: 30 * time.Minute}
		}},
		{"console defaults", nil, func(c *Config) bool {
			return c.Console.SessionTTL == 8*time.Hour && c.Console.LoginRateLimit == intake.Limit{N: 10, Per: 15 * time.Minute}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(mapEnv(tt.env))
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			if !tt.check(c) {
				t.Errorf("Load(%v) = %+v", tt.env, c)
			}
		})
	}
}

// envExampleEntry is one NAME=value line of .env.example.
type envExampleEntry struct {
	name, value string
	dev         bool // the comment right above it marks it [dev]
}

func readEnvExample(t *testing.T) []envExampleEntry {
	t.Helper()
	f, err := os.Open("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []envExampleEntry
	var comment strings.Builder
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "":
			comment.Reset()
		case strings.HasPrefix(line, "#"):
			comment.WriteString(line + "\n")
		default:
			name, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf(".env.example: %q is neither a comment nor NAME=value", line)
			}
			out = append(out, envExampleEntry{name: name, value: value, dev: strings.Contains(comment.String(), "[dev]")})
			comment.Reset()
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// namesLoadReads is every variable Load asks getenv for, plus every quoted
// variable name handed to the reader in config.go, in case a later change reads
// one only under some condition.
func namesLoadReads(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	if _, err := Load(func(name string) string {
		names[name] = true
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\br\.\w+\("([A-Z][A-Z0-9_]*)"`).FindAllSubmatch(src, -1) {
		names[string(m[1])] = true
	}
	return names
}

func TestEnvExampleListsEveryVariable(t *testing.T) {
	t.Parallel()
	documented := map[string]bool{}
	for _, e := range readEnvExample(t) {
		if documented[e.name] {
			t.Errorf(".env.example lists %s twice", e.name)
		}
		documented[e.name] = true
	}
	read := namesLoadReads(t)
	if len(read) < 40 {
		t.Fatalf("found only %d variables read by Load; the scan is broken", len(read))
	}
	for _, name := range slices.Sorted(maps.Keys(read)) {
		if !documented[name] {
			t.Errorf("Load reads %s but .env.example does not list it", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(documented)) {
		if !read[name] {
			t.Errorf(".env.example lists %s but Load never reads it", name)
		}
	}
}

func TestEnvExampleDefaultsAreTheDefaults(t *testing.T) {
	t.Parallel()
	want, err := Load(mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{}
	for _, e := range readEnvExample(t) {
		if e.value == "" || e.dev {
			continue
		}
		all[e.name] = e.value
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(mapEnv(map[string]string{e.name: e.value}))
			if err != nil {
				t.Fatalf("%s=%s: %v", e.name, e.value, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s=%s gives\n%+v\nwant the default\n%+v", e.name, e.value, got, want)
			}
		})
	}
	if len(all) < 20 {
		t.Fatalf("only %d defaults found in .env.example; the parser is broken", len(all))
	}
	got, err := Load(mapEnv(all))
	if err != nil {
		t.Fatalf("every .env.example default at once: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("every .env.example default at once gives\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	webhook := func(url, secret string) map[string]string {
		return map[string]string{"CRM_DRIVER": "webhook", "CRM_WEBHOOK_URL": url, "CRM_WEBHOOK_SECRET": secret}
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string // the error must name it
	}{
		{"data key of 31 bytes", map[string]string{"LEADGATE_DATA_KEY": b64(testDataKey[:31])}, "LEADGATE_DATA_KEY"},
		{"data key of 33 bytes", map[string]string{"LEADGATE_DATA_KEY": b64(append(slices.Clone(testDataKey), 'x'))}, "LEADGATE_DATA_KEY"},
		{"data key not base64", map[string]string{"LEADGATE_DATA_KEY": "s3cr3t!not*base64#0123456789abcdefgh"}, "LEADGATE_DATA_KEY"},
		{"index key of 31 bytes", map[string]string{"LEADGATE_INDEX_KEY": b64(testIndexKey[:31])}, "LEADGATE_INDEX_KEY"},
		{"old data key damaged", map[string]string{"LEADGATE_OLD_DATA_KEYS": b64(testOldKey) + "," + b64(testDataKey[:16])}, "LEADGATE_OLD_DATA_KEYS"},
		{"token with a bad role", map[string]string{"LEADGATE_ADMIN_TOKENS": "root:ops:" + testToken}, "LEADGATE_ADMIN_TOKENS"},
		{"token without a name", map[string]string{"LEADGATE_ADMIN_TOKENS": "admin::" + testToken}, "LEADGATE_ADMIN_TOKENS"},
		{"token too short", map[string]string{"LEADGATE_ADMIN_TOKENS": "admin:ops:s3cr3t-short15"}, "LEADGATE_ADMIN_TOKENS"},
		{"token alone", map[string]string{"LEADGATE_ADMIN_TOKENS": testToken}, "LEADGATE_ADMIN_TOKENS"},
		{"second token bad", map[string]string{"LEADGATE_ADMIN_TOKENS": "admin:ops:" + testToken + ",sales:desk:s3cr3t-tiny"}, "LEADGATE_ADMIN_TOKENS"},
		// An operator who writes token:role:name puts the token where the role goes.
		{"token in the role's place", map[string]string{"LEADGATE_ADMIN_TOKENS": testToken + ":admin:Test Testov sales desk"}, "LEADGATE_ADMIN_TOKENS"},
		{"METRICS_ADDR without a port", map[string]string{"METRICS_ADDR": "localhost"}, "METRICS_ADDR"},
		{"SHUTDOWN_DELAY not a duration", map[string]string{"SHUTDOWN_DELAY": "soon"}, "SHUTDOWN_DELAY"},
		{"SHUTDOWN_DELAY over a minute", map[string]string{"SHUTDOWN_DELAY": "2m"}, "SHUTDOWN_DELAY"},
		{"FRAME_ANCESTORS not an origin", map[string]string{"FRAME_ANCESTORS": "https://example.kz/page"}, "FRAME_ANCESTORS"},
		{"PORT not a number", map[string]string{"PORT": "abc"}, "PORT"},
		{"PORT too large", map[string]string{"PORT": "70000"}, "PORT"},
		{"PORT zero", map[string]string{"PORT": "0"}, "PORT"},
		{"DEFAULT_LANG de", map[string]string{"DEFAULT_LANG": "de"}, "DEFAULT_LANG"},
		{"duration with a bad unit", map[string]string{"RETRY_BASE_DELAY": "5x"}, "RETRY_BASE_DELAY"},
		{"negative duration", map[string]string{"RETRY_MAX_AGE": "-1s"}, "RETRY_MAX_AGE"},
		{"duration without unit", map[string]string{"LEAD_RETENTION": "365"}, "LEAD_RETENTION"},
		{"negative days", map[string]string{"AUDIT_RETENTION": "-1d"}, "AUDIT_RETENTION"},
		{"bad TTL", map[string]string{"UNCONFIRMED_OPTIN_TTL": "week"}, "UNCONFIRMED_OPTIN_TTL"},
		{"bad task retention", map[string]string{"TASK_RETENTION": "7days"}, "TASK_RETENTION"},
		{"tasks kept longer than leads", map[string]string{"TASK_RETENTION": "30d", "LEAD_RETENTION": "7d"}, "TASK_RETENTION"},
		{"bad purge schedule", map[string]string{"PURGE_SCHEDULE": "hourly"}, "PURGE_SCHEDULE"},
		{"rate without unit", map[string]string{"INTAKE_RATE_LIMIT": "20"}, "INTAKE_RATE_LIMIT"},
		{"rate of zero", map[string]string{"INTAKE_RATE_LIMIT_EMAIL": "0/h"}, "INTAKE_RATE_LIMIT_EMAIL"},
		{"rate per week", map[string]string{"INTAKE_RATE_LIMIT": "5/w"}, "INTAKE_RATE_LIMIT"},
		{"console rate per nothing", map[string]string{"CONSOLE_LOGIN_RATE_LIMIT": "10/0m"}, "CONSOLE_LOGIN_RATE_LIMIT"},
		{"console session over 24h", map[string]string{"CONSOLE_SESSION_TTL": "25h"}, "CONSOLE_SESSION_TTL"},
		{"console session of zero", map[string]string{"CONSOLE_SESSION_TTL": "0s"}, "CONSOLE_SESSION_TTL"},
		{"risk threshold 101", map[string]string{"RISK_REVIEW_THRESHOLD": "101"}, "RISK_REVIEW_THRESHOLD"},
		{"risk threshold -1", map[string]string{"RISK_REVIEW_THRESHOLD": "-1"}, "RISK_REVIEW_THRESHOLD"},
		{"subject request due 0", map[string]string{"SUBJECT_REQUEST_DUE": "0"}, "SUBJECT_REQUEST_DUE"},
		{"subject request due 31", map[string]string{"SUBJECT_REQUEST_DUE": "31"}, "SUBJECT_REQUEST_DUE"},
		{"ASM group not a number", map[string]string{"SENDGRID_ASM_GROUP_ID": "abc"}, "SENDGRID_ASM_GROUP_ID"},
		{"pipeline negative", map[string]string{"AMOCRM_PIPELINE_ID": "-1"}, "AMOCRM_PIPELINE_ID"},
		{"boolean yes", map[string]string{"DOUBLE_OPT_IN": "yes"}, "DOUBLE_OPT_IN"},
		{"boolean maybe", map[string]string{"TELEGRAM_INCLUDE_CONTACTS": "maybe"}, "TELEGRAM_INCLUDE_CONTACTS"},
		{"CIDR /33", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{"proxy not an address", map[string]string{"TRUSTED_PROXIES": "10.0.0.1,proxy.internal"}, "TRUSTED_PROXIES"},
		{"origin without scheme", map[string]string{"CORS_ALLOWED_ORIGINS": "example.kz"}, "CORS_ALLOWED_ORIGINS"},
		{"origin with a path", map[string]string{"CORS_ALLOWED_ORIGINS": "https://x.kz/path"}, "CORS_ALLOWED_ORIGINS"},
		{"product code with a space and capitals", map[string]string{"PRODUCT_CATALOG": "acquiring,Bad Code"}, "PRODUCT_CATALOG"},
		{"LEADGATE_ENV staging", map[string]string{"LEADGATE_ENV": "staging"}, "LEADGATE_ENV"},
		{"public URL without scheme", map[string]string{"PUBLIC_BASE_URL": "leads.example.kz"}, "PUBLIC_BASE_URL"},
		{"policy URL not http", map[string]string{"POLICY_URL": "ftp://paymtech.kz/policy"}, "POLICY_URL"},
		{"SendGrid host without scheme", map[string]string{"SENDGRID_API_HOST": "api.sendgrid.com"}, "SENDGRID_API_HOST"},
		{"Telegram URL without host", map[string]string{"TELEGRAM_API_URL": "https://"}, "TELEGRAM_API_URL"},
		{"unknown CRM driver", map[string]string{"CRM_DRIVER": "salesforce"}, "CRM_DRIVER"},
		{"bitrix24 without URL", map[string]string{"CRM_DRIVER": "bitrix24"}, "BITRIX24_WEBHOOK_URL"},
		{"amocrm without lead id field", map[string]string{"CRM_DRIVER": "amocrm", "AMOCRM_BASE_URL": "https://test.amocrm.ru", "AMOCRM_TOKEN": "s3cr3t-amo-token-0123456789"}, "AMOCRM_LEAD_ID_FIELD_ID"},
		{"amocrm field id not a number", map[string]string{"CRM_DRIVER": "amocrm", "AMOCRM_LEAD_ID_FIELD_ID": "abc"}, "AMOCRM_LEAD_ID_FIELD_ID"},
		{"telegram token without chat", map[string]string{"TELEGRAM_BOT_TOKEN": "123456:s3cr3t-telegram-token"}, "TELEGRAM_CHAT_ID"},
		{"webhook without URL", webhook("", testWhsec), "CRM_WEBHOOK_URL"},
		{"webhook secret without whsec_", webhook("https://crm.example.kz/h", "s3cr3t-webhook-secret-0123"), "CRM_WEBHOOK_SECRET"},
		{"webhook without secret", webhook("https://crm.example.kz/h", ""), "CRM_WEBHOOK_SECRET"},
		{"unknown mail driver", map[string]string{"MAIL_DRIVER": "smtp"}, "MAIL_DRIVER"},
		{"sendgrid without key", map[string]string{"MAIL_DRIVER": "sendgrid"}, "SENDGRID_API_KEY"},
		{"sender not an address", map[string]string{"MAIL_FROM": "Leads <leads@example.kz>"}, "MAIL_FROM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(mapEnv(tt.env))
			if err == nil {
				t.Fatalf("Load(%v) = %+v, want an error naming %s", tt.env, c, tt.wantVar)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			secrets := secretsOf(tt.env)
			secrets = append(secrets, "s3cr3t") // every fake secret above contains it
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q repeats the secret %q", err, s)
				}
			}
		})
	}
}

// Zero would make the purge destroy every lead or audit event at once, drop
// every opt-in before its link can be followed, or give up retrying at the
// first failure: a typo, never a wish.
func TestLoadRejectsZeroDurations(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"RETRY_BASE_DELAY", "RETRY_MAX_AGE", "LEAD_RETENTION", "UNCONFIRMED_OPTIN_TTL", "AUDIT_RETENTION"} {
		for _, zero := range []string{"0", "0s", "0d"} {
			t.Run(name+"="+zero, func(t *testing.T) {
				t.Parallel()
				_, err := Load(mapEnv(map[string]string{name: zero}))
				if err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("Load(%s=%s) error = %v, want one naming %s", name, zero, err, name)
				}
			})
		}
	}
}

func TestLoadProduction(t *testing.T) {
	t.Parallel()
	c, err := Load(mapEnv(productionEnv()))
	if err != nil {
		t.Fatalf("complete production environment: %v", err)
	}
	if !c.Production || c.Redis.URL == "" || !slices.Equal(c.Keys.Data, testDataKey) || !slices.Equal(c.Keys.Index, testIndexKey) ||
		len(c.Keys.AdminTokens) != 1 || c.CRM.Driver != "webhook" || c.Mail.Driver != "sendgrid" ||
		c.HTTP.PublicBaseURL.String() != "https://leads.example.kz" {
		t.Errorf("complete production environment loaded as %+v", c)
	}

	tests := []struct {
		name    string
		change  func(env map[string]string)
		wantVar string
	}{
		{"no Redis", func(e map[string]string) { delete(e, "REDIS_URL") }, "REDIS_URL"},
		{"no data key", func(e map[string]string) { delete(e, "LEADGATE_DATA_KEY") }, "LEADGATE_DATA_KEY"},
		{"no index key", func(e map[string]string) { delete(e, "LEADGATE_INDEX_KEY") }, "LEADGATE_INDEX_KEY"},
		{"no admin tokens", func(e map[string]string) { delete(e, "LEADGATE_ADMIN_TOKENS") }, "LEADGATE_ADMIN_TOKENS"},
		{"blank admin tokens", func(e map[string]string) { e["LEADGATE_ADMIN_TOKENS"] = " , " }, "LEADGATE_ADMIN_TOKENS"},
		{"default CRM driver", func(e map[string]string) { delete(e, "CRM_DRIVER") }, "CRM_DRIVER"},
		{"file CRM driver", func(e map[string]string) { e["CRM_DRIVER"] = "file" }, "CRM_DRIVER"},
		{"no SendGrid key", func(e map[string]string) { delete(e, "SENDGRID_API_KEY") }, "MAIL_DRIVER"},
		{"file mail driver", func(e map[string]string) { e["MAIL_DRIVER"] = "file" }, "MAIL_DRIVER"},
		{"default public URL", func(e map[string]string) { delete(e, "PUBLIC_BASE_URL") }, "PUBLIC_BASE_URL"},
		{"default sender", func(e map[string]string) { delete(e, "MAIL_FROM") }, "MAIL_FROM"},
		{"localhost public URL", func(e map[string]string) { e["PUBLIC_BASE_URL"] = "http://localhost:8080" }, "PUBLIC_BASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := productionEnv()
			tt.change(env)
			c, err := Load(mapEnv(env))
			if err == nil {
				t.Fatalf("Load = %+v, want an error naming %s", c, tt.wantVar)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			for _, s := range secretsOf(productionEnv()) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q repeats the secret %q", err, s)
				}
			}
			// The same change in development is fine: only production refuses it.
			env["LEADGATE_ENV"] = "development"
			if _, err := Load(mapEnv(env)); err != nil {
				t.Errorf("the same environment in development: %v", err)
			}
		})
	}
}

func TestLoadProductionRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	// Each case sets one variable; the secret-looking parts of the URLs must
	// never reach the error.
	const (
		b24Secret = "b1tr1x-s3cr3t-c0de"
		amoToken  = "amo-s3cr3t-token-0123456789"
	)
	bitrix := func(rawURL string) func(map[string]string) {
		return func(e map[string]string) {
			e["CRM_DRIVER"] = "bitrix24"
			e["BITRIX24_WEBHOOK_URL"] = rawURL
		}
	}
	amo := func(rawURL string) func(map[string]string) {
		return func(e map[string]string) {
			e["CRM_DRIVER"] = "amocrm"
			e["AMOCRM_BASE_URL"] = rawURL
			e["AMOCRM_TOKEN"] = amoToken
			e["AMOCRM_LEAD_ID_FIELD_ID"] = "771001"
		}
	}
	set := func(name, value string) func(map[string]string) {
		return func(e map[string]string) { e[name] = value }
	}
	telegram := func(rawURL string) func(map[string]string) {
		return func(e map[string]string) {
			e["TELEGRAM_BOT_TOKEN"] = "123456789:AAFakeTokenForTestsOnly"
			e["TELEGRAM_CHAT_ID"] = "-1001234567890"
			e["TELEGRAM_API_URL"] = rawURL
		}
	}
	tests := []struct {
		name    string
		change  func(map[string]string)
		wantVar string // "" means production takes it
		value   string // what the error must not quote
	}{
		{"public URL", set("PUBLIC_BASE_URL", "http://leads.example.kz"), "PUBLIC_BASE_URL", "leads.example.kz"},
		{"public URL with a port", set("PUBLIC_BASE_URL", "http://leads.example.kz:8080"), "PUBLIC_BASE_URL", "leads.example.kz"},
		{"CRM webhook", set("CRM_WEBHOOK_URL", "http://crm.example.kz/hooks/leads?token=s3cr3t-hook"), "CRM_WEBHOOK_URL", "s3cr3t-hook"},
		{"CRM webhook in capitals", set("CRM_WEBHOOK_URL", "HTTP://crm.example.kz/hooks/leads"), "CRM_WEBHOOK_URL", "crm.example.kz"},
		{"CRM webhook without a scheme", set("CRM_WEBHOOK_URL", "crm.example.kz/hooks/leads"), "CRM_WEBHOOK_URL", "crm.example.kz"},
		{"Bitrix24 webhook", bitrix("http://portal.example.kz/rest/1/" + b24Secret + "/"), "BITRIX24_WEBHOOK_URL", b24Secret},
		{"Bitrix24 webhook on loopback", bitrix("http://127.0.0.1:8081/rest/1/" + b24Secret + "/"), "BITRIX24_WEBHOOK_URL", b24Secret},
		{"amoCRM", amo("http://example.amocrm.ru"), "AMOCRM_BASE_URL", "example.amocrm.ru"},
		{"SendGrid host", set("SENDGRID_API_HOST", "http://api.eu.sendgrid.com"), "SENDGRID_API_HOST", "api.eu.sendgrid.com"},
		{"Telegram API", telegram("http://bot-api.internal:8081"), "TELEGRAM_API_URL", "bot-api.internal"},

		{"https everywhere", func(e map[string]string) {
			bitrix("https://portal.example.kz/rest/1/" + b24Secret + "/")(e)
			amo("HTTPS://example.amocrm.ru")(e)
			telegram("https://bot-api.example.kz")(e)
			e["CRM_DRIVER"] = "webhook"
			e["SENDGRID_API_HOST"] = "https://api.eu.sendgrid.com"
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := productionEnv()
			tt.change(env)
			c, err := Load(mapEnv(env))
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Load = %v, want https endpoints taken", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load = %+v, want an error naming %s", c, tt.wantVar)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "production: "+tt.wantVar+" ") || !strings.Contains(msg, "https") {
				t.Errorf("error %q, want one naming %s and asking for https", msg, tt.wantVar)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans lines", msg)
			}
			for _, s := range append(secretsOf(env), tt.value, b24Secret, amoToken) {
				if strings.Contains(msg, s) {
					t.Errorf("error %q quotes %q", msg, s)
				}
			}
			// Development keeps plain http: tests and local fakes use it.
			env["LEADGATE_ENV"] = "development"
			if _, err := Load(mapEnv(env)); err != nil {
				t.Errorf("the same environment in development: %v", err)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"365d", 365 * 24 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1095d", 1095 * 24 * time.Hour, false},
		{"0d", 0, false},
		{"90s", 90 * time.Second, false},
		{"72h", 72 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{"", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"-1d", 0, true},
		{"36501d", 0, true}, // beyond 100 years
		{"1d2h", 0, true},
		{"5x", 0, true},
		{"-1s", 0, true},
		{"365", 0, true},
		{"seven days", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    intake.Limit
		wantErr bool
	}{
		{"20/h", intake.Limit{N: 20, Per: time.Hour}, false},
		{"5/h", intake.Limit{N: 5, Per: time.Hour}, false},
		{"1/s", intake.Limit{N: 1, Per: time.Second}, false},
		{"100/m", intake.Limit{N: 100, Per: time.Minute}, false},
		{"3/d", intake.Limit{N: 3, Per: 24 * time.Hour}, false},
		{"20", intake.Limit{}, true},
		{"0/h", intake.Limit{}, true},
		{"-1/h", intake.Limit{}, true},
		{"5/w", intake.Limit{}, true},
		{"5/H", intake.Limit{}, true},
		{"/h", intake.Limit{}, true},
		{"20/", intake.Limit{}, true},
		{"x/h", intake.Limit{}, true},
		{"20/h/m", intake.Limit{}, true},
		{"", intake.Limit{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseLimit(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseLimit(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNormalizeOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"HTTPS://Example.KZ/", "https://example.kz", false},
		{"https://example.kz", "https://example.kz", false},
		{" https://example.kz ", "https://example.kz", false},
		{"http://localhost:3000", "http://localhost:3000", false},
		{"https://Example.kz:8443/", "https://example.kz:8443", false},
		{"http://[::1]:8080", "http://[::1]:8080", false},
		{"example.kz", "", true},
		{"https://x.kz/path", "", true},
		{"https://x.kz?q=1", "", true},
		{"ftp://x.kz", "", true},
		{"https://", "", true},
		{"//example.kz", "", true},
		{"", "", true},
		{"https://exa mple.kz", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeOrigin(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// Browsers leave the scheme's default port out of the Origin header, so an
// origin configured with it must lose it or it will never match.
func TestNormalizeOriginDropsDefaultPort(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://example.kz:443", "https://example.kz"},
		{"HTTP://Example.kz:80/", "http://example.kz"},
		{"http://example.kz:443", "http://example.kz:443"},
		{"https://[2001:db8::1]:443", "https://[2001:db8::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got, err := NormalizeOrigin(tt.in); err != nil || got != tt.want {
				t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestPolicyURLPerLanguage: POLICY_URL_KK/_RU/_EN name each language's
// policy, a language without one falls back to POLICY_URL, and a value
// that is not an http(s) URL is refused.
func TestPolicyURLPerLanguage(t *testing.T) {
	t.Parallel()
	env := map[string]string{"POLICY_URL": "https://example.kz/privacy", "POLICY_URL_RU": "https://example.kz/ru/privacy",
		"POLICY_URL_EN": "https://example.kz/en/privacy"}
	c, err := Load(func(name string) string { return env[name] })
	if err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string]string{"kk": "https://example.kz/privacy", "ru": "https://example.kz/ru/privacy",
		"en": "https://example.kz/en/privacy", "xx": "https://example.kz/privacy"} {
		if got := c.HTTP.PolicyURLFor(lang); got != want {
			t.Errorf("PolicyURLFor(%q) = %q, want %q", lang, got, want)
		}
	}
	env["POLICY_URL_KK"] = "javascript:alert(1)"
	if _, err := Load(func(name string) string { return env[name] }); err == nil || !strings.Contains(err.Error(), "POLICY_URL_KK") {
		t.Errorf("a javascript: POLICY_URL_KK: %v, want an error naming it", err)
	}
}

// TestCompany: COMPANY_NAME defaults to PaymTech LLP and COMPANY_CONTACT
// to none; both are read as given.
func TestCompany(t *testing.T) {
	t.Parallel()
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.CompanyName != "PaymTech LLP" || c.HTTP.CompanyContact != "" {
		t.Errorf("defaults: %q, %q", c.HTTP.CompanyName, c.HTTP.CompanyContact)
	}
	env := map[string]string{"COMPANY_NAME": "Example LLP", "COMPANY_CONTACT": "Almaty, +7 727 000 00 00"}
	if c, err = Load(func(n string) string { return env[n] }); err != nil {
		t.Fatal(err)
	}
	if c.HTTP.CompanyName != "Example LLP" || c.HTTP.CompanyContact != "Almaty, +7 727 000 00 00" {
		t.Errorf("set: %q, %q", c.HTTP.CompanyName, c.HTTP.CompanyContact)
	}
}

// TestURLErrorsDoNotEchoTheValue: a refused URL may hold a password or a
// webhook secret; the one-line reason names the variable only.
func TestURLErrorsDoNotEchoTheValue(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-in-the-url-0123"
	for _, v := range []string{"ftp://user:" + secret + "@example.kz/", "user:" + secret + "@example.kz", "https://" + secret + "\x7f"} {
		_, err := Load(func(k string) string { return map[string]string{"TELEGRAM_API_URL": v}[k] })
		if err == nil || !strings.Contains(err.Error(), "TELEGRAM_API_URL") || strings.Contains(err.Error(), secret) {
			t.Errorf("Load with a bad URL = %v: want the variable named and the value left out", err)
		}
	}
}
