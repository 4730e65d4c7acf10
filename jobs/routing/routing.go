// Package routing decides which sales team and which salesperson get a lead.
//
// The decision follows rules read from a JSON file (ROUTING_RULES). The first
// rule whose match fits the lead, in file order, names the team; a lead no
// rule fits goes to the fallback team. Within the team, members take turns by
// weighted round-robin, so a member of weight 2 gets twice the leads of a
// member of weight 1. Without a file, Default applies: one team "sales" with
// one member "sales" and no CRM user id, so the CRM's default owner gets
// every lead.
//
// # The rules file
//
//	{
//	  "teams": {
//	    "smb":        {"members": [{"name": "aigerim", "crm_user_id": "12", "weight": 2}, {"name": "daniyar", "crm_user_id": "15"}]},
//	    "enterprise": {"members": [{"name": "olga", "crm_user_id": "7"}]}
//	  },
//	  "rules": [
//	    {"name": "pos-legal", "match": {"entity_type": ["legal_entity"], "products": ["pos"]}, "team": "enterprise"},
//	    {"name": "kazakh-speakers", "match": {"lang": ["kk"]}, "team": "smb"},
//	    {"name": "almaty-landline", "match": {"phone_region": ["Almaty"]}, "team": "smb"},
//	    {"name": "beeline", "match": {"phone_operator": ["Beeline"]}, "team": "smb"},
//	    {"name": "russia", "match": {"phone_country": ["RU"]}, "team": "enterprise"},
//	    {"name": "ads", "match": {"utm_source": ["google", "yandex"]}, "team": "smb"}
//	  ],
//	  "fallback": {"team": "smb"}
//	}
//
// teams maps a team name to its members, at least one each. A member has a
// name (the lead's owner in leadgate, unique within the team), an optional
// crm_user_id (the user id in the CRM: Bitrix24 ASSIGNED_BY_ID, amoCRM
// responsible_user_id; when absent the CRM's default owner gets the lead) and
// an optional whole-number weight from 1 to 1000, 1 when absent.
//
// rules is an ordered list; each has a unique name (reported as the lead's
// routing rule; "fallback" is reserved), a match and the team it sends leads
// to. fallback names the team of every lead no rule matches; it is required.
//
// A match lists, per key, the values that fit. Every key given must fit (AND);
// within a key any listed value fits (OR). Comparisons ignore case. Keys:
//
//	entity_type     "legal_entity" or "sole_proprietor"
//	products        fits when the lead names any of the listed product codes
//	lang            "kk", "ru" or "en": the language the lead asked to be answered in
//	utm_source      the campaign tag the form page carried
//	phone_country   ISO 3166 region of the phone number: "KZ", "RU", "UZ", …
//	phone_region    where the number is registered, in English as libphonenumber
//	                names it: a city for a landline ("Almaty", "Astana", …);
//	                a mobile number names no city, only "Kazakhstan"
//	phone_operator  the mobile operator the number range was issued to, as
//	                libphonenumber names it: "Beeline", "Kcell/Activ", "Tele2",
//	                "Altel"; a landline has none. A number kept while moving to
//	                another operator still names the first one
//
// Parse rejects the whole file on any mistake, naming the team, member or
// rule and the field, so a bad edit is caught when a process starts rather
// than leads going to the wrong person.
//
// # Taking turns
//
// Each team's turn order is fixed when the rules are parsed, by nginx's
// smooth weighted round-robin: for weights a:5, b:1, c:1 the order is
// a a b a c a a, interleaved rather than five a's in a row. The position in
// that order is a counter in Redis (Turns), advanced by one per lead, so all
// workers share it and every full cycle gives each member exactly its
// weight's share.
package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/paymtech/leadgate/intake"
)

// FallbackRule is the rule name an Assignment carries when no rule matched.
const FallbackRule = "fallback"

// maxWeight bounds a member's weight: the turn order holds one entry per
// unit of weight, and a share finer than 1 in 1000 means nothing in sales.
const maxWeight = 1000

// Turns is the teams' shared round-robin counters (ops.Workers).
type Turns interface {
	// NextTurn advances team's counter by one and returns it, from 1.
	NextTurn(ctx context.Context, team string) (int64, error)
}

// Lead is what routing may look at: only what matching needs, nothing that
// identifies the person beyond the phone number the region and operator come
// from.
type Lead struct {
	EntityType string // legal_entity | sole_proprietor
	Products   []string
	Lang       string // kk | ru | en
	Phone      string // E.164
	UTMSource  string
}

// Rules are parsed, validated routing rules. They do not change after Parse,
// so one value serves every goroutine.
type Rules struct {
	rules    []rule
	fallback *team
	teams    []intake.Team // every team of the file, by name, for the lead filters
}

type team struct {
	name     string
	members  []member
	sequence []int // indexes into members: one full cycle of turns
}

type member struct {
	name      string
	crmUserID string
	weight    int
}

type rule struct {
	name  string
	team  *team
	conds []cond
}

// cond is one key of a rule's match: the lead's values for the key must
// include one of values.
type cond struct {
	key    *matchKey
	values []string
}

// facts are a lead's values for the match keys. The phone number is parsed
// only when a rule asks about it.
type facts struct {
	lead                      Lead
	phoneParsed               bool
	country, region, operator string
}

func (f *facts) parsePhone() {
	if f.phoneParsed {
		return
	}
	f.phoneParsed = true
	// "KZ" only matters for a number without its country code; intake
	// stores E.164, which carries it.
	num, err := phonenumbers.Parse(f.lead.Phone, "KZ")
	if err != nil {
		return // an unparsable number matches no phone key
	}
	f.country = phonenumbers.GetRegionCodeForNumber(num)
	f.region, _ = phonenumbers.GetGeocodingForNumber(num, "en")
	f.operator, _ = phonenumbers.GetCarrierForNumber(num, "en")
}

// matchKey is one key a rule's match may use: where its values are in the
// file, what the lead's values are, and which values are allowed.
type matchKey struct {
	name  string
	in    func(*matchJSON) []string
	of    func(*facts) []string
	check func(string) error // nil: any non-empty value
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func phoneCountry(v string) error {
	if !phonenumbers.GetSupportedRegions()[strings.ToUpper(v)] {
		return fmt.Errorf("%q is not a two-letter region code such as KZ", v)
	}
	return nil
}

var matchKeys = []*matchKey{
	{"entity_type", func(m *matchJSON) []string { return m.EntityType },
		func(f *facts) []string { return []string{f.lead.EntityType} }, oneOf("legal_entity", "sole_proprietor")},
	{"products", func(m *matchJSON) []string { return m.Products },
		func(f *facts) []string { return f.lead.Products }, nil},
	{"lang", func(m *matchJSON) []string { return m.Lang },
		func(f *facts) []string { return []string{f.lead.Lang} }, oneOf("kk", "ru", "en")},
	{"utm_source", func(m *matchJSON) []string { return m.UTMSource },
		func(f *facts) []string { return []string{f.lead.UTMSource} }, nil},
	{"phone_country", func(m *matchJSON) []string { return m.PhoneCountry },
		func(f *facts) []string { f.parsePhone(); return []string{f.country} }, phoneCountry},
	{"phone_region", func(m *matchJSON) []string { return m.PhoneRegion },
		func(f *facts) []string { f.parsePhone(); return []string{f.region} }, nil},
	{"phone_operator", func(m *matchJSON) []string { return m.PhoneOperator },
		func(f *facts) []string { f.parsePhone(); return []string{f.operator} }, nil},
}

func (c cond) fits(f *facts) bool {
	for _, have := range c.key.of(f) {
		for _, want := range c.values {
			if strings.EqualFold(have, want) {
				return true
			}
		}
	}
	return false
}

func (r *rule) fits(f *facts) bool {
	for _, c := range r.conds {
		if !c.fits(f) {
			return false
		}
	}
	return true
}

// The file's JSON shapes. Teams, members and rules stay raw at first so that
// each is decoded on its own and a mistake is reported with its name.
type fileJSON struct {
	Teams    map[string]json.RawMessage `json:"teams"`
	Rules    []json.RawMessage          `json:"rules"`
	Fallback json.RawMessage            `json:"fallback"`
}

type teamJSON struct {
	Members []json.RawMessage `json:"members"`
}

type memberJSON struct {
	Name      string `json:"name"`
	CRMUserID string `json:"crm_user_id"`
	Weight    *int   `json:"weight"` // nil: absent, so 1; an explicit 0 is a mistake
}

type ruleJSON struct {
	Name  string          `json:"name"`
	Match json.RawMessage `json:"match"`
	Team  string          `json:"team"`
}

type matchJSON struct {
	EntityType    []string `json:"entity_type"`
	Products      []string `json:"products"`
	Lang          []string `json:"lang"`
	UTMSource     []string `json:"utm_source"`
	PhoneCountry  []string `json:"phone_country"`
	PhoneRegion   []string `json:"phone_region"`
	PhoneOperator []string `json:"phone_operator"`
}

type fallbackJSON struct {
	Team string `json:"team"`
}

// Default returns the rules used without a file: every lead to team "sales",
// member "sales", with no CRM user id so the CRM's default owner gets it.
func Default() *Rules {
	t := &team{name: "sales", members: []member{{name: "sales", weight: 1}}}
	t.sequence = smooth(t.members)
	return &Rules{fallback: t, teams: []intake.Team{{Name: t.name, Owners: []string{t.members[0].name}}}}
}

// Teams lists every team of the rules by name, each with its members'
// names in file order: the values a lead's assignment can have, which the
// lead listings offer as filters.
func (r *Rules) Teams() []intake.Team { return r.teams }

// Load reads and parses the rules file at path; an empty path means no file,
// and Default applies. A missing or unreadable file is an error, not the
// default: a configured file that is not there is a mistake to report.
func Load(path string) (*Rules, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing rules: %w", err)
	}
	r, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("routing rules %s: %w", path, err)
	}
	return r, nil
}

// Parse reads rules in the file format the package comment documents and
// checks all of them, reporting every mistake found, on one line separated by
// "; ", rather than the first only.
func Parse(data []byte) (*Rules, error) {
	r, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("routing rules: %w", err)
	}
	return r, nil
}

func parse(data []byte) (*Rules, error) {
	var f fileJSON
	if err := decodeStrict(data, &f); err != nil {
		return nil, explain(err, data)
	}
	var errs []error
	teams := make(map[string]*team, len(f.Teams))
	if len(f.Teams) == 0 {
		errs = append(errs, errors.New("no teams: \"teams\" must name at least one"))
	}
	// Sorted: mistakes are reported in the same order every time.
	for _, name := range slices.Sorted(maps.Keys(f.Teams)) {
		t, err := parseTeam(name, f.Teams[name])
		if err != nil {
			errs = append(errs, err)
		}
		// A team with mistakes is still known (as nil): rules naming it
		// are not reported as naming an unknown team too.
		teams[name] = t
	}
	r := &Rules{}
	seen := make(map[string]int, len(f.Rules))
	for i, raw := range f.Rules {
		ru, err := parseRule(i+1, raw, teams, seen)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.rules = append(r.rules, ru)
	}
	fb, err := parseFallback(f.Fallback, teams)
	if err != nil {
		errs = append(errs, err)
	}
	r.fallback = fb
	if len(errs) > 0 {
		return nil, join(errs...)
	}
	for _, name := range slices.Sorted(maps.Keys(teams)) {
		it := intake.Team{Name: name}
		for _, m := range teams[name].members {
			it.Owners = append(it.Owners, m.name)
		}
		r.teams = append(r.teams, it)
	}
	return r, nil
}

func parseTeam(name string, raw json.RawMessage) (*team, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("team \"\": a team needs a name")
	}
	var tj teamJSON
	if err := decodeStrict(raw, &tj); err != nil {
		return nil, fmt.Errorf("team %q: %w", name, explain(err, nil))
	}
	if len(tj.Members) == 0 {
		return nil, fmt.Errorf("team %q: no members: \"members\" must list at least one", name)
	}
	t := &team{name: name}
	var errs []error
	// Members are identified by position: their names are people's names,
	// which stay out of error messages.
	firstWithName := map[string]int{}
	for i, raw := range tj.Members {
		var mj memberJSON
		if err := decodeStrict(raw, &mj); err != nil {
			errs = append(errs, fmt.Errorf("team %q, member %d: %w", name, i+1, explain(err, nil)))
			continue
		}
		m := member{name: strings.TrimSpace(mj.Name), crmUserID: strings.TrimSpace(mj.CRMUserID), weight: 1}
		if mj.Weight != nil {
			m.weight = *mj.Weight
		}
		switch {
		case m.name == "":
			errs = append(errs, fmt.Errorf("team %q, member %d: \"name\" is missing", name, i+1))
		case firstWithName[strings.ToLower(m.name)] != 0:
			errs = append(errs, fmt.Errorf("team %q, member %d: \"name\" is the same as member %d's", name, i+1, firstWithName[strings.ToLower(m.name)]))
		default:
			firstWithName[strings.ToLower(m.name)] = i + 1
		}
		if m.weight < 1 || m.weight > maxWeight {
			errs = append(errs, fmt.Errorf("team %q, member %d: \"weight\" is %d; it must be from 1 to %d", name, i+1, m.weight, maxWeight))
		}
		t.members = append(t.members, m)
	}
	if len(errs) > 0 {
		return nil, join(errs...)
	}
	t.sequence = smooth(t.members)
	return t, nil
}

// parseRule checks rule number n (1-based); seen maps the rule names so far,
// lowercased, to their numbers.
func parseRule(n int, raw json.RawMessage, teams map[string]*team, seen map[string]int) (rule, error) {
	var rj ruleJSON
	if err := decodeStrict(raw, &rj); err != nil {
		// Say which rule it is by its name when that much can be read.
		var named struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &named) == nil && named.Name != "" {
			return rule{}, fmt.Errorf("rule %d %q: %w", n, named.Name, explain(err, nil))
		}
		return rule{}, fmt.Errorf("rule %d: %w", n, explain(err, nil))
	}
	label := fmt.Sprintf("rule %d %q", n, rj.Name)
	var errs []error
	switch name := strings.TrimSpace(rj.Name); {
	case name == "":
		label = fmt.Sprintf("rule %d", n)
		errs = append(errs, fmt.Errorf("%s: \"name\" is missing", label))
	case strings.EqualFold(name, FallbackRule):
		errs = append(errs, fmt.Errorf("%s: the name %q is reserved for leads no rule matches", label, FallbackRule))
	case seen[strings.ToLower(name)] != 0:
		errs = append(errs, fmt.Errorf("%s: \"name\" is the same as rule %d's; names must be unique", label, seen[strings.ToLower(name)]))
	default:
		seen[strings.ToLower(name)] = n
	}
	ru := rule{name: strings.TrimSpace(rj.Name)}
	switch t, ok := teams[rj.Team]; {
	case rj.Team == "":
		errs = append(errs, fmt.Errorf("%s: \"team\" is missing", label))
	case !ok:
		errs = append(errs, fmt.Errorf("%s: \"team\" %q is not one of the teams", label, rj.Team))
	default:
		ru.team = t
	}
	conds, err := parseMatch(rj.Match)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", label, err))
	}
	ru.conds = conds
	if len(errs) > 0 {
		return rule{}, join(errs...)
	}
	return ru, nil
}

func parseMatch(raw json.RawMessage) ([]cond, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("\"match\" is missing (for every lead no rule matches, use \"fallback\")")
	}
	var mj matchJSON
	if err := decodeStrict(raw, &mj); err != nil {
		if _, wrongKind := errors.AsType[*json.UnmarshalTypeError](err); wrongKind {
			return nil, fmt.Errorf("match: %w", explain(err, nil))
		}
		return nil, fmt.Errorf("match: %w (match keys: %s)", explain(err, nil), keyNames())
	}
	var conds []cond
	var errs []error
	for _, k := range matchKeys {
		values := k.in(&mj)
		if values == nil {
			continue // key not given
		}
		if len(values) == 0 {
			errs = append(errs, fmt.Errorf("match %q lists no values", k.name))
			continue
		}
		for _, v := range values {
			switch {
			case strings.TrimSpace(v) == "":
				errs = append(errs, fmt.Errorf("match %q: an empty value", k.name))
			case k.check != nil:
				if err := k.check(v); err != nil {
					errs = append(errs, fmt.Errorf("match %q: %w", k.name, err))
				}
			}
		}
		conds = append(conds, cond{key: k, values: values})
	}
	if len(conds) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("\"match\" is empty (for every lead no rule matches, use \"fallback\")"))
	}
	return conds, join(errs...)
}

func keyNames() string {
	names := make([]string, len(matchKeys))
	for i, k := range matchKeys {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

func parseFallback(raw json.RawMessage, teams map[string]*team) (*team, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("no fallback: add \"fallback\": {\"team\": \"…\"} for leads no rule matches")
	}
	var fj fallbackJSON
	if err := decodeStrict(raw, &fj); err != nil {
		return nil, fmt.Errorf("fallback: %w", explain(err, nil))
	}
	if fj.Team == "" {
		return nil, errors.New("fallback: \"team\" is missing")
	}
	t, ok := teams[fj.Team]
	if !ok {
		return nil, fmt.Errorf("fallback: \"team\" %q is not one of the teams", fj.Team)
	}
	return t, nil
}

// problems are all the mistakes found in a file, reported on one line: a
// process refusing to start says why in one line.
type problems []error

func (p problems) Error() string {
	msgs := make([]string, len(p))
	for i, err := range p {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (p problems) Unwrap() []error { return p }

// join returns nil for no errors, the error itself for one, and problems
// for more.
func join(errs ...error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return problems(errs)
}

// decodeStrict decodes exactly one JSON value, refusing fields v does not
// have: a misspelt key would otherwise be silently ignored.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty: expected a JSON object")
		}
		return err
	}
	end := int(dec.InputOffset())
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		line, col := lineCol(data, len(data)-len(rest)+1)
		return fmt.Errorf("line %d, column %d: unexpected data after the end of the JSON object", line, col)
	}
	return nil
}

// decodeError rephrases a JSON error for the person editing the file while
// keeping the original wrapped.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }

// explain rewrites encoding/json's errors in the file's terms: positions as
// line and column (when doc is the whole file, so offsets mean something to
// its reader) and JSON kinds instead of Go types.
func explain(err error, doc []byte) error {
	var at string
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se) && doc != nil:
		line, col := lineCol(doc, int(se.Offset))
		return fmt.Errorf("line %d, column %d: %w", line, col, err)
	case errors.Is(err, io.ErrUnexpectedEOF) && doc != nil:
		line, col := lineCol(doc, len(doc))
		return &decodeError{fmt.Sprintf("line %d, column %d: the file ends inside an object or list (a missing } or ]?)", line, col), err}
	case errors.As(err, &te):
		if doc != nil {
			line, col := lineCol(doc, int(te.Offset))
			at = fmt.Sprintf("line %d, column %d: ", line, col)
		}
		field := te.Field
		if field == "" {
			field = "the value"
		} else {
			field = fmt.Sprintf("%q", field)
		}
		return &decodeError{fmt.Sprintf("%s%s must be %s, not %s", at, field, jsonKind(te.Type), te.Value), err}
	}
	return err
}

// jsonKind names how a value of Go type t is written in JSON.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

// lineCol gives the 1-based line and column (in characters) of the byte
// just before offset: encoding/json reports offsets after the byte at fault.
func lineCol(doc []byte, offset int) (line, col int) {
	offset = min(max(offset, 1), len(doc))
	if len(doc) == 0 {
		return 1, 1
	}
	at := offset - 1
	start := bytes.LastIndexByte(doc[:at], '\n') + 1
	return 1 + bytes.Count(doc[:at], []byte{'\n'}), utf8.RuneCount(doc[start:at]) + 1
}

// smooth returns one cycle of nginx's smooth weighted round-robin over
// members: each turn every member's current value grows by its weight, the
// largest (earliest on ties) is chosen and loses the total weight. Over a
// cycle of total-weight turns each member is chosen exactly weight times, and
// heavy members' turns are spread between the others'.
func smooth(members []member) []int {
	total := 0
	for _, m := range members {
		total += m.weight
	}
	current := make([]int, len(members))
	seq := make([]int, 0, total)
	for range total {
		best := 0
		for i, m := range members {
			current[i] += m.weight
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq = append(seq, best)
	}
	return seq
}

// Route assigns the lead: the first rule that matches it, in file order, or
// else the fallback picks the team; the team's next turn picks the member.
// The turn is taken from the team's counter in turns, so workers sharing it
// share the turns. Route is safe for concurrent use.
func (r *Rules) Route(ctx context.Context, turns Turns, l Lead) (intake.Assignment, error) {
	f := &facts{lead: l}
	ruleName, t := FallbackRule, r.fallback
	for i := range r.rules {
		if r.rules[i].fits(f) {
			ruleName, t = r.rules[i].name, r.rules[i].team
			break
		}
	}
	n, err := turns.NextTurn(ctx, t.name)
	if err != nil {
		return intake.Assignment{}, fmt.Errorf("routing: take team %q's next turn: %w", t.name, err)
	}
	// n counts from 1. Only a counter someone set by hand can be below it;
	// the modulo is kept non-negative all the same.
	size := int64(len(t.sequence))
	m := t.members[t.sequence[((n-1)%size+size)%size]]
	return intake.Assignment{Rule: ruleName, Team: t.name, Owner: m.name, CRMUserID: m.crmUserID}, nil
}
