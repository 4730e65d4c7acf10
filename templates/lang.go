// Package templates holds everything a person reads — the connection-request
// form, the thank-you and opt-in confirmation pages, the emails to the
// person and to sales, and the kk/ru/en message catalogue — embedded in the
// binary so that a deployment can never ship a page or an email without its
// texts.
package templates

import (
	"strconv"
	"strings"
)

// Lang is a language the service speaks: its lowercase ISO 639-1 code.
type Lang string

// The languages of the catalogue, pages and emails.
const (
	KK Lang = "kk" // Kazakh
	RU Lang = "ru" // Russian
	EN Lang = "en" // English
)

// languages lists every Lang in the order the language switcher shows them.
var languages = []Lang{KK, RU, EN}

// ParseLang accepts exactly "kk", "ru" or "en" in any letter case. It is
// strict because its input is a value the service itself offered (a query
// parameter, a form field), so anything else is a mistake worth reporting.
func ParseLang(s string) (Lang, bool) {
	l := Lang(strings.ToLower(s))
	if l.valid() {
		return l, true
	}
	return "", false
}

func (l Lang) valid() bool {
	return l == KK || l == RU || l == EN
}

// maxAcceptEntries bounds the work done on a hostile Accept-Language header;
// browsers send a handful of entries.
const maxAcceptEntries = 32

// Negotiate picks the page language: query when it is a valid code (see
// ParseLang), else the Accept-Language entry with the highest q-value among
// those the service speaks, else def.
//
// Region and script subtags are dropped ("kk-KZ", "ru-RU", "en-GB" count as
// kk, ru, en) and "kz" counts as kk, because it is the country code people
// and some browser settings use for Kazakh. Among equal q-values the earlier
// entry wins, as browsers list languages in the person's order of
// preference. "*" stands for def unless def was refused with q=0. Entries
// that cannot be parsed are skipped rather than spoiling the whole header.
func Negotiate(query, acceptLanguage string, def Lang) Lang {
	if l, ok := ParseLang(query); ok {
		return l
	}
	type candidate struct {
		lang Lang
		q    float64
	}
	var (
		best     candidate
		wildcard float64 // highest q given to "*"
		refused  = map[Lang]bool{}
	)
	entries := strings.SplitN(acceptLanguage, ",", maxAcceptEntries+1)
	if len(entries) > maxAcceptEntries {
		entries = entries[:maxAcceptEntries]
	}
	for _, entry := range entries {
		tag, q, ok := parseAcceptEntry(entry)
		if !ok {
			continue
		}
		if tag == "*" {
			wildcard = max(wildcard, q)
			continue
		}
		l, ok := baseLang(tag)
		if !ok {
			continue
		}
		if q == 0 {
			refused[l] = true
			continue
		}
		if q > best.q {
			best = candidate{l, q}
		}
	}
	switch {
	case best.q > 0 && best.q >= wildcard:
		return best.lang
	case wildcard > 0 && !refused[def]:
		return def
	case best.q > 0:
		return best.lang
	}
	return def
}

// parseAcceptEntry splits one Accept-Language entry such as "kk-KZ;q=0.8"
// into its lowercase tag and q-value (1 when absent). ok is false when the
// tag is not a well-formed language range or the q-value is not in [0, 1].
func parseAcceptEntry(entry string) (tag string, q float64, ok bool) {
	params := strings.Split(entry, ";")
	tag = strings.ToLower(strings.TrimSpace(params[0]))
	if tag == "" {
		return "", 0, false
	}
	q = 1
	for _, p := range params[1:] {
		name, value, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return "", 0, false
		}
		q = v
	}
	return tag, q, true
}

// baseLang maps a language tag to the Lang of its primary subtag. Underscores
// are accepted as separators because some clients send POSIX locales
// ("ru_RU").
func baseLang(tag string) (Lang, bool) {
	primary, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	if primary == "kz" {
		return KK, true
	}
	l := Lang(primary)
	return l, l.valid()
}
