package templates

import (
	"net/url"
	"strings"
)

// absoluteHTTPURL parses raw if it may be put in an emailed link: an
// absolute http or https URL with a host. An email has no base to resolve a
// relative link against, and html/template alone would still let mailto:
// through. A URL with user information is refused too, because
// "https://paymtech.kz@example.com/" reads as ours but opens another host.
func absoluteHTTPURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || strings.ContainsAny(raw, "\\ \t") {
		return nil, false
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, false
	}
	return u, true
}

// localOrHTTPURL parses raw if it may be a form's action on a page: an
// absolute http(s) URL as above, or a path on this site. A
// protocol-relative "//host" and a backslash, which browsers read as a
// slash, would leave the site, so they are refused.
func localOrHTTPURL(raw string) (*url.URL, bool) {
	if u, ok := absoluteHTTPURL(raw); ok {
		return u, true
	}
	if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.ContainsAny(raw, "\\ \t") {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return nil, false
	}
	return u, true
}

// oneLine folds every run of white space — CR, LF, tabs and the Unicode
// line and paragraph separators included — into one space, so a value can
// neither start a new header nor add lines to a text body.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
