// Package risk scores a connection request for abuse, so that a lead scoring
// at least RISK_REVIEW_THRESHOLD (default 70) goes to a human review instead
// of to sales. It only weighs what intake observed (privacy policy 2.5:
// statistics for anti-fraud); it stores nothing and calls nothing.
//
// The score is the sum of the weights of the signals raised, capped at 100:
//
//	signal              weight  raised when
//	disposable_email    40      the email's domain, or a parent of it, is on the disposable list
//	bot_user_agent      40      the User-Agent is a crawler, or an automation tool (curl, Wget, python-requests, Go-http-client, HeadlessChrome, PhantomJS, Scrapy…)
//	no_user_agent       30      there is no User-Agent, or it is blank
//	fast_submit         40      the form was posted less than 3 s after it was rendered
//	forged_form_token   50      a form token was sent but its signature or time is wrong
//	honeypot_near_miss  50      the honeypot field was sent holding only whitespace
//	no_script           10      a browser's own form post arrived without what the page's script fills
//	repeat_ip           20      5 to 9 accepted requests from the same IP within 24 h
//	repeat_ip           40      10 or more accepted requests from the same IP within 24 h
//	repeat_email        20      3 or more accepted requests with the same email within 24 h
//	repeat_tax_id       20      5 or more accepted requests with the same tax id within 24 h
//
// No single signal reaches the default threshold: a lead goes to review only
// when at least two point the same way, so one odd fact about an honest
// business (an office sharing one IP, a browser that blocks scripts, an
// integration posting with an HTTP library's User-Agent) does not hold up
// its request.
//
// The disposable list is disposable.txt, embedded: the npm package
// disposable-email-domains, converted as its header describes. To update it,
// regenerate the file that way; the tests check what the code relies on.
package risk

import (
	_ "embed"
	"strings"
	"sync"
	"time"

	"github.com/mssola/useragent"
	"golang.org/x/net/publicsuffix"
)

// Observation is what intake saw of one request. The counts are accepted
// requests within the last 24 h, this one included.
type Observation struct {
	// EmailDomain is the IDNA-ASCII, lowercase domain of the email.
	EmailDomain string
	// UserAgent is the request's User-Agent header.
	UserAgent string
	// FormAge is the time from the form page being rendered to the post;
	// 0 means unknown (no form token: a JSON client).
	FormAge time.Duration
	// FormTokenInvalid is set when a form token was sent but its signature
	// or time is wrong (forged, or replayed much later).
	FormTokenInvalid bool
	// HoneypotNearMiss is set when the honeypot field was sent filled with
	// whitespace only.
	HoneypotNearMiss bool
	// ScriptRan is set when the page's script filled the timezone field.
	ScriptRan bool
	// BrowserPost is set for a browser's own form post (Accept: text/html);
	// only then does a missing ScriptRan mean something.
	BrowserPost bool
	// SameIP counts requests from the same client IP.
	SameIP int
	// SameEmail counts requests with the same email.
	SameEmail int
	// SameTaxID counts requests with the same tax id; 0 when none was given.
	SameTaxID int
}

// Assessment is the score of one request and what raised it.
type Assessment struct {
	// Score is the sum of the raised signals' weights, 0 to MaxScore.
	Score int
	// Signals names the raised signals in the order of the package's table;
	// nil when none was raised.
	Signals []string
}

// MaxScore caps Assessment.Score, so that the review threshold reads as a
// share of "certainly abuse".
const MaxScore = 100

// Signal names, as they appear in Assessment.Signals; stable, because they
// are stored with the lead and shown to reviewers.
const (
	SignalDisposableEmail  = "disposable_email"
	SignalBotUserAgent     = "bot_user_agent"
	SignalNoUserAgent      = "no_user_agent"
	SignalFastSubmit       = "fast_submit"
	SignalForgedFormToken  = "forged_form_token"
	SignalHoneypotNearMiss = "honeypot_near_miss"
	SignalNoScript         = "no_script"
	SignalRepeatIP         = "repeat_ip"
	SignalRepeatEmail      = "repeat_email"
	SignalRepeatTaxID      = "repeat_tax_id"
)

// rule raises signal with weight when hit says so for an observation.
type rule struct {
	signal string
	weight int
	hit    func(o *Observation) bool
}

// minFormAge is faster than a person reads and fills the form.
const minFormAge = 3 * time.Second

// rules is the one table of weights, in the order signals are reported; the
// package comment mirrors it and a test keeps the two equal. A signal with
// tiers has one row per tier, with conditions that exclude each other.
var rules = [...]rule{
	{SignalDisposableEmail, 40, func(o *Observation) bool { return IsDisposable(o.EmailDomain) }},
	{SignalBotUserAgent, 40, func(o *Observation) bool { return isAutomated(o.UserAgent) }},
	{SignalNoUserAgent, 30, func(o *Observation) bool { return strings.TrimSpace(o.UserAgent) == "" }},
	{SignalFastSubmit, 40, func(o *Observation) bool { return o.FormAge > 0 && o.FormAge < minFormAge }},
	{SignalForgedFormToken, 50, func(o *Observation) bool { return o.FormTokenInvalid }},
	{SignalHoneypotNearMiss, 50, func(o *Observation) bool { return o.HoneypotNearMiss }},
	{SignalNoScript, 10, func(o *Observation) bool { return o.BrowserPost && !o.ScriptRan }},
	{SignalRepeatIP, 20, func(o *Observation) bool { return o.SameIP >= 5 && o.SameIP < 10 }},
	{SignalRepeatIP, 40, func(o *Observation) bool { return o.SameIP >= 10 }},
	{SignalRepeatEmail, 20, func(o *Observation) bool { return o.SameEmail >= 3 }},
	{SignalRepeatTaxID, 20, func(o *Observation) bool { return o.SameTaxID >= 5 }},
}

// Assess scores one request. The first call loads the disposable list
// (tens of milliseconds); later calls take microseconds.
func Assess(o Observation) Assessment {
	var a Assessment
	for i := range rules {
		r := &rules[i]
		if r.hit(&o) {
			a.Score += r.weight
			a.Signals = append(a.Signals, r.signal)
		}
	}
	a.Score = min(a.Score, MaxScore)
	return a
}

// automationMarkers are lowercase User-Agent fragments of HTTP libraries,
// command-line tools and headless browsers that useragent's Bot does not
// flag. okhttp is left out on purpose: native Android apps send it.
var automationMarkers = [...]string{
	"curl/",
	"wget/",
	"python-requests",
	"python-urllib",
	"python-httpx",
	"aiohttp",
	"go-http-client",
	"headlesschrome",
	"phantomjs",
	"scrapy",
	"libwww-perl",
	"apache-httpclient",
	"java/",
	"axios/",
	"postmanruntime",
	"httpie/",
	"guzzlehttp",
}

// isAutomated reports whether ua is not blank and names a crawler or an
// automation tool; a blank one is no_user_agent's, not this signal's.
func isAutomated(ua string) bool {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return false
	}
	lower := strings.ToLower(ua)
	for _, m := range automationMarkers {
		if strings.Contains(lower, m) {
			return true
		}
	}
	return useragent.New(ua).Bot()
}

//go:embed disposable.txt
var disposableList string

// disposable is the set of listed domains, built on first use so that
// programs importing the package without scoring do not pay for it.
var disposable = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, strings.Count(disposableList, "\n"))
	for line := range strings.Lines(disposableList) {
		name, _, _ := strings.Cut(line, "#")
		name = strings.TrimSpace(name)
		if name == "" || isICANNSuffix(name) {
			continue
		}
		set[name] = struct{}{}
	}
	return set
})

// isICANNSuffix reports whether name is a public suffix under ICANN, such as
// edu.pl: a list entry like that would mark every domain registered under
// it (every Polish university) as disposable, because IsDisposable matches
// parents. Private suffixes (ddns.net and other dynamic-DNS zones) stay: the
// list means their every subdomain.
func isICANNSuffix(name string) bool {
	suffix, icann := publicsuffix.PublicSuffix(name)
	return icann && suffix == name
}

// IsDisposable reports whether domain, or any parent domain of it, is on the
// shipped disposable list. domain is expected in IDNA-ASCII; letter case and
// a final dot are ignored.
func IsDisposable(domain string) bool {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	set := disposable()
	for {
		if _, ok := set[domain]; ok {
			return true
		}
		_, parent, ok := strings.Cut(domain, ".")
		// Every entry has a dot, so a bare top-level domain never matches.
		if !ok || !strings.Contains(parent, ".") {
			return false
		}
		domain = parent
	}
}
