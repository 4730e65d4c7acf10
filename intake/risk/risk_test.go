package risk

import (
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/idna"
)

const (
	chromeUA   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	iPhoneUA   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	curlUA     = "curl/8.5.0"
	headlessUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"
)

// honest is a person filling the form in a browser: it raises nothing, and
// each case below changes it just enough to raise what it names.
func honest() Observation {
	return Observation{
		EmailDomain: "example.kz",
		UserAgent:   chromeUA,
		FormAge:     45 * time.Second,
		ScriptRan:   true,
		BrowserPost: true,
		SameIP:      1,
		SameEmail:   1,
	}
}

// with returns honest changed by edit.
func with(edit func(o *Observation)) Observation {
	o := honest()
	edit(&o)
	return o
}

func TestAssess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		obs     Observation
		score   int
		signals []string
	}{
		{"honest browser post", honest(), 0, nil},
		{"honest JSON client", Observation{EmailDomain: "kaspi.kz", UserAgent: chromeUA, SameIP: 1, SameEmail: 1, SameTaxID: 1}, 0, nil},
		// The zero Observation has no User-Agent, and that alone is a signal.
		{"zero observation", Observation{}, 30, []string{SignalNoUserAgent}},

		// Each weight once.
		{"disposable email", with(func(o *Observation) { o.EmailDomain = "mailinator.com" }), 40, []string{SignalDisposableEmail}},
		{"bot user agent", with(func(o *Observation) { o.UserAgent = curlUA }), 40, []string{SignalBotUserAgent}},
		{"no user agent", with(func(o *Observation) { o.UserAgent = "" }), 30, []string{SignalNoUserAgent}},
		{"fast submit", with(func(o *Observation) { o.FormAge = 1500 * time.Millisecond }), 40, []string{SignalFastSubmit}},
		{"forged form token", with(func(o *Observation) { o.FormTokenInvalid = true }), 50, []string{SignalForgedFormToken}},
		{"honeypot near miss", with(func(o *Observation) { o.HoneypotNearMiss = true }), 50, []string{SignalHoneypotNearMiss}},
		{"no script", with(func(o *Observation) { o.ScriptRan = false }), 10, []string{SignalNoScript}},
		{"repeat ip, lower tier", with(func(o *Observation) { o.SameIP = 5 }), 20, []string{SignalRepeatIP}},
		{"repeat ip, upper tier", with(func(o *Observation) { o.SameIP = 10 }), 40, []string{SignalRepeatIP}},
		{"repeat email", with(func(o *Observation) { o.SameEmail = 3 }), 20, []string{SignalRepeatEmail}},
		{"repeat tax id", with(func(o *Observation) { o.SameTaxID = 5 }), 20, []string{SignalRepeatTaxID}},

		// Edges of the conditions.
		{"blank user agent is missing, not a bot", with(func(o *Observation) { o.UserAgent = " \t" }), 30, []string{SignalNoUserAgent}},
		{"form age just under 3 s", with(func(o *Observation) { o.FormAge = minFormAge - time.Millisecond }), 40, []string{SignalFastSubmit}},
		{"form age exactly 3 s", with(func(o *Observation) { o.FormAge = minFormAge }), 0, nil},
		{"negative form age", with(func(o *Observation) { o.FormAge = -time.Second }), 0, nil},
		{"no script outside a browser post", with(func(o *Observation) { o.ScriptRan, o.BrowserPost = false, false }), 0, nil},
		{"same ip 4 times", with(func(o *Observation) { o.SameIP = 4 }), 0, nil},
		{"same ip 9 times", with(func(o *Observation) { o.SameIP = 9 }), 20, []string{SignalRepeatIP}},
		{"same ip 250 times", with(func(o *Observation) { o.SameIP = 250 }), 40, []string{SignalRepeatIP}},
		{"same email twice", with(func(o *Observation) { o.SameEmail = 2 }), 0, nil},
		{"same tax id 4 times", with(func(o *Observation) { o.SameTaxID = 4 }), 0, nil},
		{"disposable subdomain", with(func(o *Observation) { o.EmailDomain = "x.mailinator.com" }), 40, []string{SignalDisposableEmail}},

		// Sums, in table order whatever the order of the fields.
		{"disposable and fast reach review", with(func(o *Observation) {
			o.FormAge = time.Second
			o.EmailDomain = "guerrillamail.com"
		}), 80, []string{SignalDisposableEmail, SignalFastSubmit}},
		{"headless browser without script", with(func(o *Observation) {
			o.UserAgent = headlessUA
			o.ScriptRan = false
		}), 50, []string{SignalBotUserAgent, SignalNoScript}},
		{"repeats add up", with(func(o *Observation) {
			o.SameTaxID = 7
			o.SameEmail = 4
			o.SameIP = 6
		}), 60, []string{SignalRepeatIP, SignalRepeatEmail, SignalRepeatTaxID}},
		{"capped at 100", Observation{
			EmailDomain:      "10minutemail.com",
			UserAgent:        "python-requests/2.31.0",
			FormAge:          200 * time.Millisecond,
			FormTokenInvalid: true,
			HoneypotNearMiss: true,
			BrowserPost:      true,
			SameIP:           12,
			SameEmail:        3,
			SameTaxID:        5,
		}, 100, []string{
			SignalDisposableEmail, SignalBotUserAgent, SignalFastSubmit, SignalForgedFormToken,
			SignalHoneypotNearMiss, SignalNoScript, SignalRepeatIP, SignalRepeatEmail, SignalRepeatTaxID,
		}},
		{"just at the cap", with(func(o *Observation) {
			o.FormTokenInvalid = true
			o.HoneypotNearMiss = true
		}), 100, []string{SignalForgedFormToken, SignalHoneypotNearMiss}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Assess(tc.obs)
			if got.Score != tc.score || !slices.Equal(got.Signals, tc.signals) {
				t.Errorf("Assess = %d %q, want %d %q", got.Score, got.Signals, tc.score, tc.signals)
			}
		})
	}
}

func TestIsAutomated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ua   string
		want bool
	}{
		{curlUA, true},
		{"Wget/1.21.4", true},
		{"python-requests/2.31.0", true},
		{"Go-http-client/1.1", true},
		{"Go-http-client/2.0", true},
		{headlessUA, true},
		{"Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1", true},
		{"Scrapy/2.11.0 (+https://scrapy.org)", true},
		{"Java/17.0.2", true},
		// Crawlers are left to useragent's Bot.
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", true},

		{chromeUA, false},
		{iPhoneUA, false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:127.0) Gecko/20100101 Firefox/127.0", false},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 YaBrowser/24.6.0.0 Safari/537.36", false},
		{"Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36", false},
		{"okhttp/4.12.0", false},
		{"", false},
		{"   ", false},
	}
	for _, tc := range tests {
		t.Run(tc.ua, func(t *testing.T) {
			t.Parallel()
			if got := isAutomated(tc.ua); got != tc.want {
				t.Errorf("isAutomated(%q) = %v, want %v", tc.ua, got, tc.want)
			}
		})
	}
}

func TestIsDisposable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		domain string
		want   bool
	}{
		{"mailinator.com", true},
		{"10minutemail.com", true},
		{"guerrillamail.com", true},
		{"x.mailinator.com", true},
		{"a.b.guerrillamail.com", true},
		{"MAILINATOR.COM", true},
		{"mailinator.com.", true},
		{"xn--gmal-nza.net", true}, // gmaıl.net, Unicode in the package's list
		{"dmtc.edu.pl", true},      // listed under a skipped public suffix

		// Ordinary and Kazakh providers, and companies: none of them is on
		// the list today, so no allow-list is needed; this fails if one
		// ever arrives with an update.
		{"gmail.com", false},
		{"mail.ru", false},
		{"yandex.kz", false},
		{"yandex.ru", false},
		{"mail.kz", false},
		{"inbox.ru", false},
		{"outlook.com", false},
		{"icloud.com", false},
		{"example.kz", false},
		{"kaspi.kz", false},
		{"mail.kaspi.kz", false},

		// Matching is by whole labels from the right.
		{"kzmailinator.com", false},
		{"mailinator.com.example.kz", false},
		{"", false},
		{".", false},
		{"com", false},
		{"kz", false},

		// edu.pl is on the package's list, but it is a public suffix.
		{"edu.pl", false},
		{"uw.edu.pl", false},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			t.Parallel()
			if got := IsDisposable(tc.domain); got != tc.want {
				t.Errorf("IsDisposable(%q) = %v, want %v", tc.domain, got, tc.want)
			}
		})
	}
}

func TestIsICANNSuffix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"edu.pl", true},
		{"my.id", true},
		{"com.kz", true},
		{"kz", true},
		{"ddns.net", false}, // a private suffix: its subdomains are meant
		{"mailinator.com", false},
		{"uw.edu.pl", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isICANNSuffix(tc.name); got != tc.want {
				t.Errorf("isICANNSuffix(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

// TestDisposableList checks the shipped file is what IsDisposable expects:
// one lowercase IDNA-ASCII name with a dot per line, each once, with a
// header naming its source.
func TestDisposableList(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	header := ""
	for i, line := range strings.Split(strings.TrimSuffix(disposableList, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			header += line + "\n"
			continue
		}
		n := i + 1
		if line != strings.TrimSpace(line) || line == "" {
			t.Errorf("line %d: %q has blanks or is empty", n, line)
			continue
		}
		if line != strings.ToLower(line) || !strings.Contains(line, ".") {
			t.Errorf("line %d: %q is not lowercase with a dot", n, line)
		}
		if ascii, err := idna.Lookup.ToASCII(line); err != nil || ascii != line {
			t.Errorf("line %d: %q is not IDNA-ASCII (ToASCII = %q, %v)", n, line, ascii, err)
		}
		if seen[line] {
			t.Errorf("line %d: %q is listed twice", n, line)
		}
		seen[line] = true
	}
	if len(seen) <= 1000 {
		t.Errorf("the list has %d domains, want more than 1000", len(seen))
	}
	for _, want := range []string{"disposable-email-domains", "version", "MIT", "fetched"} {
		if !strings.Contains(header, want) {
			t.Errorf("the header does not mention %q", want)
		}
	}
	loaded := len(disposable())
	if loaded > len(seen) || loaded < len(seen)-10 {
		t.Errorf("loaded %d domains of %d listed; only a few public suffixes should be skipped", loaded, len(seen))
	}
}

// TestDocTable checks the package comment's table of signals and weights
// says what rules does, since the README links to it.
func TestDocTable(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "risk.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	inTable := false
	for line := range strings.Lines(f.Doc.Text()) {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && fields[0] == "signal":
			inTable = true
		case len(fields) == 0:
			inTable = false
		case inTable && len(fields) > 1:
			doc = append(doc, fields[0]+" "+fields[1])
		}
	}
	var code []string
	for _, r := range rules {
		code = append(code, r.signal+" "+strconv.Itoa(r.weight))
	}
	if !slices.Equal(doc, code) {
		t.Errorf("package comment table:\n%q\nrules:\n%q", doc, code)
	}
}

func BenchmarkAssess(b *testing.B) {
	cases := []struct {
		name string
		obs  Observation
	}{
		{"honest", honest()},
		{"abusive", with(func(o *Observation) {
			o.EmailDomain = "x.mailinator.com"
			o.UserAgent = headlessUA
			o.FormAge = time.Second
			o.SameIP = 12
		})},
	}
	IsDisposable("example.kz") // load the list outside the timings
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Assess(bc.obs)
			}
		})
	}
}
