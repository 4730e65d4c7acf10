package routing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs/routing"
)

// valid is a minimal correct file the error cases below change one thing of.
const valid = `{"teams": {"smb": {"members": [{"name": "Test Testov"}]}}, "rules": [], "fallback": {"team": "smb"}}`

func TestParseErrors(t *testing.T) {
	t.Parallel()
	team := `"teams": {"smb": {"members": [{"name": "Test Testov"}]}}`
	fallback := `"fallback": {"team": "smb"}`
	withRules := func(rules string) string { return "{" + team + `, "rules": [` + rules + "], " + fallback + "}" }
	withMatch := func(match string) string {
		return withRules(`{"name": "r1", "match": ` + match + `, "team": "smb"}`)
	}
	withMembers := func(members string) string {
		return `{"teams": {"smb": {"members": [` + members + `]}}, ` + fallback + "}"
	}
	tests := []struct {
		name string
		data string
		want []string // all must appear in the error
	}{
		{"empty file", "", []string{"empty"}},
		{"syntax error with position", "{\n  \"teams\": {\n    \"smb\" {}\n", []string{"line 3, column 11", "invalid character '{' after object key"}},
		{"truncated", "{\n  \"teams\": {", []string{"line 2, column 12", "ends inside an object or list"}},
		{"data after the object", valid + "\n}", []string{"line 2, column 1", "unexpected data after the end"}},
		{"not an object", `["smb"]`, []string{"must be an object, not array"}},
		{"unknown top-level field", `{"rule": [], ` + team + ", " + fallback + "}", []string{`unknown field "rule"`}},
		{"rules not a list", `{"rules": {}, ` + team + ", " + fallback + "}", []string{"line 1, column 11", `"rules" must be a list, not object`}},
		{"no teams", `{"teams": {}, "fallback": {"team": "smb"}}`, []string{"no teams"}},
		{"team without a name", `{"teams": {"": {"members": [{"name": "Test Testov"}]}}, "fallback": {"team": ""}}`, []string{`team "": a team needs a name`}},
		{"empty team", `{"teams": {"smb": {"members": []}}, ` + fallback + "}", []string{`team "smb": no members`}},
		{"team without members key", `{"teams": {"smb": {}}, ` + fallback + "}", []string{`team "smb": no members`}},
		{"team not an object", `{"teams": {"smb": []}, ` + fallback + "}", []string{`team "smb": the value must be an object, not array`}},
		{"unknown team field", `{"teams": {"smb": {"member": []}}, ` + fallback + "}", []string{`team "smb": json: unknown field "member"`}},
		{"unknown member field", withMembers(`{"name": "Test Testov", "wieght": 2}`), []string{`team "smb", member 1: json: unknown field "wieght"`}},
		{"member without a name", withMembers(`{"name": "Test Testov"}, {"crm_user_id": "7"}`), []string{`team "smb", member 2: "name" is missing`}},
		{"duplicate member names", withMembers(`{"name": "Test Testov"}, {"name": "test testov"}`), []string{`team "smb", member 2: "name" is the same as member 1's`}},
		{"weight 0", withMembers(`{"name": "Test Testov", "weight": 0}`), []string{`team "smb", member 1: "weight" is 0; it must be from 1 to 1000`}},
		{"negative weight", withMembers(`{"name": "Test Testov", "weight": -1}`), []string{`team "smb", member 1: "weight" is -1`}},
		{"weight too large", withMembers(`{"name": "Test Testov", "weight": 1001}`), []string{`team "smb", member 1: "weight" is 1001`}},
		{"weight a string", withMembers(`{"name": "Test Testov", "weight": "2"}`), []string{`team "smb", member 1: "weight" must be a whole number, not string`}},
		{"weight a fraction", withMembers(`{"name": "Test Testov", "weight": 1.5}`), []string{`team "smb", member 1: "weight" must be a whole number, not number 1.5`}},
		{"crm user id a number", withMembers(`{"name": "Test Testov", "crm_user_id": 12}`), []string{`team "smb", member 1: "crm_user_id" must be a string, not number`}},
		{"rule with unknown team", withRules(`{"name": "ads", "match": {"utm_source": ["google"]}, "team": "nope"}`), []string{`rule 1 "ads": "team" "nope" is not one of the teams`}},
		{"rule without team", withRules(`{"name": "ads", "match": {"utm_source": ["google"]}}`), []string{`rule 1 "ads": "team" is missing`}},
		{"rule without a name", withRules(`{"match": {"utm_source": ["google"]}, "team": "smb"}`), []string{`rule 1: "name" is missing`}},
		{"duplicate rule names", withRules(`{"name": "ads", "match": {"lang": ["kk"]}, "team": "smb"}, {"name": "Ads", "match": {"lang": ["ru"]}, "team": "smb"}`),
			[]string{`rule 2 "Ads": "name" is the same as rule 1's`}},
		{"rule named fallback", withRules(`{"name": "fallback", "match": {"lang": ["kk"]}, "team": "smb"}`), []string{`rule 1 "fallback": the name "fallback" is reserved`}},
		{"unknown rule field", withRules(`{"name": "ads", "match": {"lang": ["kk"]}, "teams": "smb"}`), []string{`rule 1 "ads": json: unknown field "teams"`}},
		{"rule not an object", withRules(`"ads"`), []string{`rule 1: the value must be an object, not string`}},
		{"unknown match key", withMatch(`{"region": ["Almaty"]}`), []string{`rule 1 "r1": match: json: unknown field "region" (match keys: entity_type, products, lang, utm_source, phone_country, phone_region, phone_operator)`}},
		{"match missing", withRules(`{"name": "r1", "team": "smb"}`), []string{`rule 1 "r1": "match" is missing`}},
		{"match empty", withMatch(`{}`), []string{`rule 1 "r1": "match" is empty`}},
		{"match key without values", withMatch(`{"lang": []}`), []string{`rule 1 "r1": match "lang" lists no values`}},
		{"match empty value", withMatch(`{"utm_source": [" "]}`), []string{`rule 1 "r1": match "utm_source": an empty value`}},
		{"match value not a list", withMatch(`{"lang": "kk"}`), []string{`rule 1 "r1": match: "lang" must be a list of strings, not string`}},
		{"unknown entity type", withMatch(`{"entity_type": ["llp"]}`), []string{`rule 1 "r1": match "entity_type": "llp" is not one of legal_entity, sole_proprietor`}},
		{"unknown lang", withMatch(`{"lang": ["kz"]}`), []string{`rule 1 "r1": match "lang": "kz" is not one of kk, ru, en`}},
		{"unknown phone country", withMatch(`{"phone_country": ["KAZ"]}`), []string{`rule 1 "r1": match "phone_country": "KAZ" is not a two-letter region code`}},
		{"no fallback", "{" + team + "}", []string{"no fallback"}},
		{"fallback to unknown team", "{" + team + `, "fallback": {"team": "nope"}}`, []string{`fallback: "team" "nope" is not one of the teams`}},
		{"fallback without team", "{" + team + `, "fallback": {}}`, []string{`fallback: "team" is missing`}},
		{"fallback not an object", "{" + team + `, "fallback": "smb"}`, []string{`fallback: the value must be an object, not string`}},
		{"unknown fallback field", "{" + team + `, "fallback": {"team": "smb", "owner": "x"}}`, []string{`fallback: json: unknown field "owner"`}},
		{"every mistake reported", `{"teams": {"smb": {"members": []}, "vip": {"members": [{"name": "Test Testov", "weight": 0}]}},
			"rules": [{"name": "a", "match": {"lang": ["xx"]}, "team": "nope"}, {"name": "b", "match": {"lang": ["kk"]}, "team": "vip"}]}`,
			[]string{`team "smb": no members`, `team "vip", member 1: "weight" is 0`, `rule 1 "a": "team" "nope"`, `rule 1 "a": match "lang": "xx"`, "no fallback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := routing.Parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", r)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "routing rules: ") {
				t.Errorf("error %q does not say it is about the routing rules", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			// Members are people: their names stay out of error messages.
			if strings.Contains(strings.ToLower(msg), "testov") {
				t.Errorf("error %q names a member", msg)
			}
		})
	}
}

// TestParseNoCascade: a rule naming a team that has mistakes of its own is
// not also reported as naming an unknown team.
func TestParseNoCascade(t *testing.T) {
	t.Parallel()
	_, err := routing.Parse([]byte(`{"teams": {"vip": {"members": []}},
		"rules": [{"name": "b", "match": {"lang": ["kk"]}, "team": "vip"}], "fallback": {"team": "vip"}}`))
	if err == nil || err.Error() != `routing rules: team "vip": no members: "members" must list at least one` {
		t.Errorf("Parse: %v; want only the team's own mistake", err)
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	if _, err := routing.Parse([]byte(valid)); err != nil {
		t.Fatalf("Parse(%s): %v", valid, err)
	}
}

// turnsOver are the teams' round-robin counters over rdb, as the workers keep them.
func turnsOver(t *testing.T, rdb redis.UniversalClient) routing.Turns {
	t.Helper()
	return ops.New(rdb, time.Now).Workers
}

// route routes one lead with a new client of srv, failing the test on an error.
func route(t *testing.T, rules *routing.Rules, srv *redistest.Server, l routing.Lead) crm.Assignment {
	t.Helper()
	a, err := rules.Route(context.Background(), turnsOver(t, srv.Client(t)), l)
	if err != nil {
		t.Fatalf("Route: %v", err)
	}
	return a
}

func mustParse(t *testing.T, data string) *routing.Rules {
	t.Helper()
	r, err := routing.Parse([]byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

// TestMatch checks each match key on its own: a rule "r" with the match
// either takes the lead or leaves it to the fallback.
func TestMatch(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const (
		almaty    = "+77272000000" // landline
		astana    = "+77172000000" // landline
		beeline   = "+77770000001"
		kcell     = "+77010000001"
		tele2     = "+77470000001"
		russian   = "+79161234567"
		legal     = "legal_entity"
		proprietr = "sole_proprietor"
	)
	tests := []struct {
		name  string
		match string
		lead  routing.Lead
		want  bool
	}{
		{"entity_type fits", `{"entity_type": ["legal_entity"]}`, routing.Lead{EntityType: legal}, true},
		{"entity_type other", `{"entity_type": ["legal_entity"]}`, routing.Lead{EntityType: proprietr}, false},
		{"entity_type ignores case", `{"entity_type": ["Sole_Proprietor"]}`, routing.Lead{EntityType: proprietr}, true},
		{"products any listed", `{"products": ["pos", "recurring"]}`, routing.Lead{Products: []string{"acquiring", "recurring"}}, true},
		{"products none listed", `{"products": ["pos"]}`, routing.Lead{Products: []string{"acquiring", "payouts"}}, false},
		{"products none named", `{"products": ["pos"]}`, routing.Lead{}, false},
		{"products ignore case", `{"products": ["POS"]}`, routing.Lead{Products: []string{"pos"}}, true},
		{"lang fits", `{"lang": ["kk"]}`, routing.Lead{Lang: "kk"}, true},
		{"lang any listed", `{"lang": ["kk", "en"]}`, routing.Lead{Lang: "en"}, true},
		{"lang other", `{"lang": ["kk"]}`, routing.Lead{Lang: "ru"}, false},
		{"lang ignores case", `{"lang": ["KK"]}`, routing.Lead{Lang: "kk"}, true},
		{"utm_source any listed", `{"utm_source": ["google", "yandex"]}`, routing.Lead{UTMSource: "yandex"}, true},
		{"utm_source ignores case", `{"utm_source": ["google"]}`, routing.Lead{UTMSource: "Google"}, true},
		{"utm_source other", `{"utm_source": ["google"]}`, routing.Lead{UTMSource: "bing"}, false},
		{"utm_source absent", `{"utm_source": ["google"]}`, routing.Lead{}, false},
		{"phone_region Almaty landline", `{"phone_region": ["Almaty"]}`, routing.Lead{Phone: almaty}, true},
		{"phone_region Almaty ignores case", `{"phone_region": ["almaty"]}`, routing.Lead{Phone: almaty}, true},
		{"phone_region Almaty not Astana", `{"phone_region": ["Almaty"]}`, routing.Lead{Phone: astana}, false},
		{"phone_region Astana landline", `{"phone_region": ["Astana"]}`, routing.Lead{Phone: astana}, true},
		{"phone_region Almaty not a mobile", `{"phone_region": ["Almaty"]}`, routing.Lead{Phone: kcell}, false},
		{"phone_region of a mobile is the country", `{"phone_region": ["Kazakhstan"]}`, routing.Lead{Phone: kcell}, true},
		{"phone_region Kazakhstan not a city landline", `{"phone_region": ["Kazakhstan"]}`, routing.Lead{Phone: almaty}, false},
		{"phone_operator Beeline", `{"phone_operator": ["Beeline"]}`, routing.Lead{Phone: beeline}, true},
		{"phone_operator Beeline not Kcell", `{"phone_operator": ["Beeline"]}`, routing.Lead{Phone: kcell}, false},
		{"phone_operator Kcell/Activ", `{"phone_operator": ["Kcell/Activ"]}`, routing.Lead{Phone: kcell}, true},
		{"phone_operator Tele2", `{"phone_operator": ["Tele2"]}`, routing.Lead{Phone: tele2}, true},
		{"phone_operator ignores case", `{"phone_operator": ["tele2"]}`, routing.Lead{Phone: tele2}, true},
		{"phone_operator none for a landline", `{"phone_operator": ["Beeline", "Kcell/Activ", "Tele2", "Altel"]}`, routing.Lead{Phone: almaty}, false},
		{"phone_country KZ", `{"phone_country": ["KZ"]}`, routing.Lead{Phone: kcell}, true},
		{"phone_country KZ not Russian", `{"phone_country": ["KZ"]}`, routing.Lead{Phone: russian}, false},
		{"phone_country RU", `{"phone_country": ["ru"]}`, routing.Lead{Phone: russian}, true},
		{"phone_country RU not Kazakh", `{"phone_country": ["RU"]}`, routing.Lead{Phone: almaty}, false},
		{"unparsable phone matches no phone key", `{"phone_country": ["KZ"]}`, routing.Lead{Phone: "not a number"}, false},
		{"every key must fit", `{"entity_type": ["legal_entity"], "lang": ["kk"]}`, routing.Lead{EntityType: legal, Lang: "ru"}, false},
		{"every key fits", `{"entity_type": ["legal_entity"], "lang": ["kk"], "phone_operator": ["Beeline"]}`,
			routing.Lead{EntityType: legal, Lang: "kk", Phone: beeline}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rules := mustParse(t, `{"teams": {"hit": {"members": [{"name": "one", "crm_user_id": "1"}]}, "miss": {"members": [{"name": "two"}]}},
				"rules": [{"name": "r", "match": `+tt.match+`, "team": "hit"}], "fallback": {"team": "miss"}}`)
			got := route(t, rules, srv, tt.lead)
			want := crm.Assignment{Rule: "fallback", Team: "miss", Owner: "two"}
			if tt.want {
				want = crm.Assignment{Rule: "r", Team: "hit", Owner: "one", CRMUserID: "1"}
			}
			if got != want {
				t.Errorf("Route(%+v) = %+v, want %+v", tt.lead, got, want)
			}
		})
	}
}

// TestExampleFile routes through testdata/rules.json, the README's example:
// the first matching rule in file order wins, the rest go to the fallback.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	rules, err := routing.Load(filepath.Join("testdata", "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	tests := []struct {
		name     string
		lead     routing.Lead
		rule     string
		team     string
		owner    string
		crmUser  string
		sameTeam bool // smb: the owner depends on the turn, checked below
	}{
		{"legal entity with pos", routing.Lead{EntityType: "legal_entity", Products: []string{"acquiring", "pos"}, Lang: "kk", Phone: "+77272000000"},
			"pos-legal", "enterprise", "olga", "7", false},
		{"sole proprietor with pos is not pos-legal", routing.Lead{EntityType: "sole_proprietor", Products: []string{"pos"}, Lang: "kk"},
			"kazakh-speakers", "smb", "", "", true},
		{"Kazakh speaker in Almaty: the earlier rule", routing.Lead{EntityType: "sole_proprietor", Lang: "kk", Phone: "+77272000000"},
			"kazakh-speakers", "smb", "", "", true},
		{"Almaty landline", routing.Lead{EntityType: "sole_proprietor", Lang: "ru", Phone: "+77272000000"},
			"almaty-landline", "smb", "", "", true},
		{"Beeline from an ad: the earlier rule", routing.Lead{EntityType: "legal_entity", Lang: "ru", Phone: "+77770000001", UTMSource: "google"},
			"beeline", "smb", "", "", true},
		{"Russian number from an ad: the earlier rule", routing.Lead{EntityType: "legal_entity", Lang: "ru", Phone: "+79161234567", UTMSource: "yandex"},
			"russia", "enterprise", "olga", "7", false},
		{"Kcell from an ad", routing.Lead{EntityType: "legal_entity", Lang: "en", Phone: "+77010000001", UTMSource: "Yandex"},
			"ads", "smb", "", "", true},
		{"nothing matches", routing.Lead{EntityType: "legal_entity", Lang: "ru", Phone: "+77172000000", UTMSource: "newsletter"},
			"fallback", "smb", "", "", true},
	}
	// Sequential: the smb leads take turns in the order of the table.
	smbTurns := []struct{ owner, crmUser string }{{"aigerim", "12"}, {"daniyar", "15"}, {"aigerim", "12"}}
	smb := 0
	for _, tt := range tests {
		got := route(t, rules, srv, tt.lead)
		want := crm.Assignment{Rule: tt.rule, Team: tt.team, Owner: tt.owner, CRMUserID: tt.crmUser}
		if tt.sameTeam {
			turn := smbTurns[smb%len(smbTurns)]
			want.Owner, want.CRMUserID = turn.owner, turn.crmUser
			smb++
		}
		if got != want {
			t.Errorf("%s: Route = %+v, want %+v", tt.name, got, want)
		}
	}
	// Each team has its own cursor: enterprise leads did not move smb's.
	n, err := srv.Client(t).Get(context.Background(), "lg:route:cursor:smb").Int()
	if err != nil || n != smb {
		t.Errorf("smb cursor = %d, %v; want %d", n, err, smb)
	}
}

// TestFairness takes 1,000 turns from three workers, each with its own
// Redis client, for weights 2:1:1: 250 full cycles, so the counts are exact.
func TestFairness(t *testing.T) {
	t.Parallel()
	rules := mustParse(t, `{"teams": {"smb": {"members": [{"name": "a", "weight": 2}, {"name": "b"}, {"name": "c", "weight": 1}]}},
		"fallback": {"team": "smb"}}`)
	srv := redistest.Start(t)
	const total, workers = 1000, 3
	turns := make(chan struct{}, total)
	for range total {
		turns <- struct{}{}
	}
	close(turns)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		counters := turnsOver(t, srv.Client(t))
		wg.Go(func() {
			for range turns {
				a, err := rules.Route(context.Background(), counters, routing.Lead{EntityType: "legal_entity"})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				counts[a.Owner]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[string]int{"a": 500, "b": 250, "c": 250}
	for name, n := range want {
		if counts[name] != n {
			t.Errorf("%s got %d leads, want %d (all: %v)", name, counts[name], n, counts)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("owners %v, want only a, b and c", counts)
	}
	// One INCR per assignment, no more.
	if n, err := srv.Client(t).Get(context.Background(), "lg:route:cursor:smb").Int(); err != nil || n != total {
		t.Errorf("cursor = %d, %v; want %d", n, err, total)
	}
}

// TestInterleaved checks the turn order for weights a:5, b:1, c:1 over two
// cycles: nginx's smooth order, not five a's then b then c.
func TestInterleaved(t *testing.T) {
	t.Parallel()
	rules := mustParse(t, `{"teams": {"t": {"members": [{"name": "a", "weight": 5}, {"name": "b"}, {"name": "c"}]}},
		"fallback": {"team": "t"}}`)
	srv := redistest.Start(t)
	var seq strings.Builder
	for range 3 * 7 {
		seq.WriteString(route(t, rules, srv, routing.Lead{}).Owner)
	}
	got := seq.String()
	if want := strings.Repeat("aabacaa", 3); got != want {
		t.Errorf("turns %s, want %s", got, want)
	}
	if strings.Contains(got, "aaaaaa") {
		t.Errorf("turns %s: a more than 5 times in a row", got)
	}
	for i := 0; i+1 < len(got); i++ {
		if pair := got[i : i+2]; pair == "bc" || pair == "cb" {
			t.Errorf("turns %s: b and c next to each other at %d", got, i)
		}
	}
	for i := 0; i+7 <= len(got); i += 7 {
		cycle := got[i : i+7]
		if strings.Count(cycle, "a") != 5 || strings.Count(cycle, "b") != 1 || strings.Count(cycle, "c") != 1 {
			t.Errorf("cycle %s is not 5:1:1", cycle)
		}
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	fromLoad, err := routing.Load("")
	if err != nil {
		t.Fatalf(`Load(""): %v`, err)
	}
	want := crm.Assignment{Rule: "fallback", Team: "sales", Owner: "sales"}
	for name, rules := range map[string]*routing.Rules{"Default()": routing.Default(), `Load("")`: fromLoad} {
		for _, l := range []routing.Lead{{}, {EntityType: "legal_entity", Products: []string{"pos"}, Lang: "kk", Phone: "+77010000000", UTMSource: "google"}} {
			if got := route(t, rules, srv, l); got != want {
				t.Errorf("%s: Route(%+v) = %+v, want %+v", name, l, got, want)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if r, err := routing.Load(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, %v; want a not-exist error naming the file", r, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"teams\": {},\n}"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := routing.Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 3, column 1") {
		t.Errorf("Load(bad) = %v, %v; want an error naming the file and line 3, column 1", r, err)
	}
}

// TestRedisDown: with no Redis there is no turn to take, so no assignment,
// and the error says which team without repeating the lead's phone.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	srv.Stop()
	const phone = "+77010000000"
	a, err := routing.Default().Route(context.Background(), turnsOver(t, rdb), routing.Lead{Phone: phone})
	if err == nil {
		t.Fatalf("Route = %+v with Redis stopped, want an error", a)
	}
	if !strings.Contains(err.Error(), `team "sales"`) || strings.Contains(err.Error(), phone) {
		t.Errorf("error %q: want it to name the team and not the phone", err)
	}
}

// TestDocExample keeps the package comment's example, which the README
// quotes, the same as testdata/rules.json, which the tests run.
func TestDocExample(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("routing.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(src), "// # The rules file\n//\n")
	if !ok {
		t.Fatal("routing.go has no \"# The rules file\" section")
	}
	var doc strings.Builder
	for line := range strings.Lines(after) {
		code, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			break
		}
		doc.WriteString(code)
	}
	file, err := os.ReadFile(filepath.Join("testdata", "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := json.Compact(&a, []byte(doc.String())); err != nil {
		t.Fatalf("the package comment's example is not JSON: %v\n%s", err, doc.String())
	}
	if err := json.Compact(&b, file); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("package comment example and testdata/rules.json differ:\n%s\n%s", a.String(), b.String())
	}
}

// TestTeams: the lead filters offer every team of the file, by name, with
// its members in file order; without a file, the default team.
func TestTeams(t *testing.T) {
	t.Parallel()
	r, err := routing.Load("testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []intake.Team{{Name: "enterprise", Owners: []string{"olga"}}, {Name: "smb", Owners: []string{"aigerim", "daniyar"}}}
	if got := r.Teams(); !reflect.DeepEqual(got, want) {
		t.Errorf("Teams() = %v, want %v", got, want)
	}
	if got := routing.Default().Teams(); !reflect.DeepEqual(got, []intake.Team{{Name: "sales", Owners: []string{"sales"}}}) {
		t.Errorf("Default().Teams() = %v", got)
	}
}
