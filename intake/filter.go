package intake

import (
	"slices"
	"strings"
	"time"
)

// LeadFilter selects the leads of a listing (the admin API's and the
// console's, one walk for both). Every field set must hold; the zero value
// selects every lead. None of its values is personal data, so a filter may
// travel in a URL.
type LeadFilter struct {
	State State // "": any state, by last change
	// Since and Until bound when the lead entered State (with no State:
	// its last change), both included; zero is open.
	Since, Until time.Time
	Team         string // the assignment's team, as the routing rules name it
	Owner        string // the assignment's salesperson, as the routing rules name them
	Product      string // a product code the lead names
	Source       string // the lead's SourceLabel
}

// Fits reports whether a lead with these clear fields passes the filter's
// Team, Owner, Product and Source (its State and times are the index's
// business).
func (f LeadFilter) Fits(products []string, team, owner, source string) bool {
	return (f.Team == "" || f.Team == team) && (f.Owner == "" || f.Owner == owner) &&
		(f.Product == "" || slices.Contains(products, f.Product)) && (f.Source == "" || f.Source == source)
}

// MaxSourceLabel is the longest SourceLabel.
const MaxSourceLabel = 64

// maxSourceDigits is the most digits a SourceLabel may hold: a phone
// number, an IIN or a birth date pasted into a campaign tag is no label.
const maxSourceDigits = 6

// SourceLabel is a utm_source as a lead keeps it in clear beside its sealed
// record, so that sales can filter by it: marketing's name for a channel
// ("google", "newsletter", "2gis"), not personal data. The whole tag stays
// sealed with the lead's metadata; the label is kept only when it cannot
// carry anything else: trimmed and lower-cased, spaces and '+' as '_', then
// only ASCII letters, digits, '.', '_' and '-', at most MaxSourceLabel
// characters and maxSourceDigits digits. Anything else (an address with
// '@', a name in Cyrillic, a number) gives ok false, and the lead keeps no
// label. Filters read the value asked for by the same rule.
func SourceLabel(raw string) (label string, ok bool) {
	s := strings.ToLower(strings.TrimSpace(raw))
	if s == "" || len(s) > MaxSourceLabel {
		return "", false
	}
	b := []byte(s)
	digits := 0
	for i, c := range b {
		switch {
		case c == ' ' || c == '+':
			b[i] = '_'
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z', c == '.', c == '_', c == '-':
		default:
			return "", false
		}
	}
	if digits > maxSourceDigits {
		return "", false
	}
	return string(b), true
}

// Team is a sales team of the routing rules, as a filter offers it.
type Team struct {
	Name   string
	Owners []string // its members' names
}

// RequestsOf selects subject requests by whether they are still open.
type RequestsOf string

// Which subject requests a listing holds.
const (
	AllRequests    RequestsOf = ""
	OpenRequests   RequestsOf = "open"   // not closed yet: the desk's work
	ClosedRequests RequestsOf = "closed" // answered
)

// Holds reports whether a listing of w holds request r.
func (w RequestsOf) Holds(r SubjectRequest) bool {
	switch w {
	case OpenRequests:
		return r.ClosedAt.IsZero()
	case ClosedRequests:
		return !r.ClosedAt.IsZero()
	}
	return true
}

// Choices are the values a lead filter may name: the product catalogue
// (PRODUCT_CATALOG) and the routing rules' teams.
type Choices struct {
	Products []string
	Teams    []Team
}

// Check refuses a filter that names what no lead can have, as EBadRequest
// naming the parameter (state, team, owner, product, utm_source, until),
// and puts f.Source in its SourceLabel form. A state outside States is
// the caller's to refuse first: the admin API has long answered it 422.
func (c Choices) Check(f *LeadFilter) error {
	bad := func(param, key, msg string) error {
		return &Error{Code: EBadRequest, Message: msg, Fields: FieldErrors{param: {Key: "console.leads.filter.bad_" + key}}}
	}
	var owners []string
	for _, t := range c.Teams {
		if f.Team == "" || t.Name == f.Team {
			owners = append(owners, t.Owners...)
		}
	}
	switch {
	case f.Team != "" && !slices.ContainsFunc(c.Teams, func(t Team) bool { return t.Name == f.Team }):
		return bad("team", "team", "team must be a team of the routing rules")
	case f.Owner != "" && !slices.Contains(owners, f.Owner):
		return bad("owner", "owner", "owner must be a member of the routing rules' teams (of team, when given)")
	case f.Product != "" && !slices.Contains(c.Products, f.Product):
		return bad("product", "product", "product must be a code of the product catalogue")
	case !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since):
		return bad("until", "until", "until must not be before since")
	}
	if f.Source != "" {
		label, ok := SourceLabel(f.Source)
		if !ok {
			return bad("utm_source", "source", "utm_source must be up to 64 letters (a-z), digits (at most 6), '.', '_' or '-'")
		}
		f.Source = label
	}
	return nil
}
