package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24/bitrix24test"
)

// browserUA is a desktop Chrome's User-Agent: with it the leads' risk score
// stays below review although they all come from one IP.
const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// routingRules has two teams: "business" shares its leads 2:1, "retail"
// 1:1. Legal entities answered in Russian or English go to business, Kazakh
// speakers to retail, everyone else (sole proprietors in Russian or
// English) to retail by the fallback.
const routingRules = `{
  "teams": {
    "business": {"members": [
      {"name": "Test Managerova", "crm_user_id": "21", "weight": 2},
      {"name": "Test Managerov", "crm_user_id": "22"}
    ]},
    "retail": {"members": [
      {"name": "Test Prodavtsova", "crm_user_id": "31"},
      {"name": "Test Prodavtsov", "crm_user_id": "32", "weight": 1}
    ]}
  },
  "rules": [
    {"name": "legal-ru-en", "match": {"entity_type": ["legal_entity"], "lang": ["ru", "en"]}, "team": "business"},
    {"name": "kazakh", "match": {"lang": ["kk"]}, "team": "retail"}
  ],
  "fallback": {"team": "retail"}
}`

// teamWeights is routingRules' members: team → CRM user id → weight.
var teamWeights = map[string]map[string]int{
	"business": {"21": 2, "22": 1},
	"retail":   {"31": 1, "32": 1},
}

// expectedRoute is the rule and team routingRules give a lead.
func expectedRoute(entityType, lang string) (rule, team string) {
	switch {
	case entityType == "legal_entity" && (lang == "ru" || lang == "en"):
		return "legal-ru-en", "business"
	case lang == "kk":
		return "kazakh", "retail"
	}
	return "fallback", "retail"
}

// routedLead is what the test reads of GET /v1/admin/leads.
type routedLead struct {
	ID         string             `json:"id"`
	State      intake.State       `json:"state"`
	EntityType string             `json:"entity_type"`
	Email      string             `json:"email"`
	Lang       string             `json:"lang"`
	Risk       intake.Risk        `json:"risk"`
	Assignment *intake.Assignment `json:"assignment"`
	Route      intake.Route       `json:"route"`
	Transfers  []intake.Transfer  `json:"transfers"`
}

// leadCount is how many leads the test submits: enough for every rule to
// take many leads and for the weighted team to go round many times.
const leadCount = 200

// routingApplicant is the i-th obviously fake business: a distinct email
// and a distinct valid Kcell mobile number, and an entity type and language
// that run through every combination.
func routingApplicant(i int) map[string]any {
	entity := "legal_entity"
	if i%2 == 1 {
		entity = "sole_proprietor"
	}
	return map[string]any{
		"entity_type": entity, "name": fmt.Sprintf("Test Company %03d", i),
		"phone": fmt.Sprintf("+7701000%04d", i), "email": fmt.Sprintf("lead%03d@example.com", i),
		"lang": []string{"kk", "ru", "en"}[i%3], "consent_processing": true,
		"page_url": "https://example.kz/connect", "timezone": "Asia/Almaty",
	}
}

// bitrixFaults fails every third call of each method, going round the ways
// a Bitrix24 portal fails: rate limits, internal errors and, for an add, an
// answer lost after the lead was stored. It counts what it injected.
type bitrixFaults struct {
	mu       sync.Mutex
	injected map[string]int // "method: fault kind" → times
}

func (f *bitrixFaults) fault(method string, n int) *bitrix24test.Fault {
	if n%3 != 0 {
		return nil
	}
	kinds := []string{"query limit", "operation time limit", "internal error"}
	if method == "crm.lead.add" {
		kinds = append(kinds, "stored, then internal error", "stored, then connection lost")
	}
	kind := kinds[(n/3)%len(kinds)]
	f.mu.Lock()
	f.injected[method+": "+kind]++
	f.mu.Unlock()
	switch kind {
	case "query limit":
		return bitrix24test.QueryLimit()
	case "operation time limit":
		// The reset is a Unix second: up to a second from now.
		return bitrix24test.OperationLimit(time.Now().Add(time.Second))
	case "internal error":
		return bitrix24test.InternalError()
	case "stored, then internal error":
		fault := bitrix24test.InternalError()
		fault.Commit = true
		return fault
	}
	return &bitrix24test.Fault{Commit: true, Drop: true}
}

func (f *bitrixFaults) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.injected))
	for k, v := range f.injected {
		out[k] = v
	}
	return out
}

// routingHarness is `leadgate serve` filing leads in a fake Bitrix24 portal
// under routing rules.
type routingHarness struct {
	base   string
	sales  string
	portal *bitrix24test.Server
	faults *bitrixFaults
	client *http.Client
}

func startRouting(t *testing.T) *routingHarness {
	t.Helper()
	faults := &bitrixFaults{injected: map[string]int{}}
	// Started first, so that it closes after the workers have stopped.
	portal := bitrix24test.NewServer(t, bitrix24test.WithFaults(faults.fault))
	srv := redistest.Start(t)
	rulesFile := filepath.Join(t.TempDir(), "routing.json")
	if err := os.WriteFile(rulesFile, []byte(routingRules), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, "serve", map[string]string{
		"REDIS_URL":               srv.URL,
		"CRM_DRIVER":              "bitrix24",
		"BITRIX24_WEBHOOK_URL":    portal.URL(),
		"ROUTING_RULES":           rulesFile,
		"RETRY_BASE_DELAY":        "50ms",
		"INTAKE_RATE_LIMIT":       "10000/h",
		"INTAKE_RATE_LIMIT_EMAIL": "10000/h",
	})
	return &routingHarness{base: "http://" + m.Addr(), sales: salesToken, portal: portal,
		faults: faults, client: &http.Client{Timeout: 10 * time.Second}}
}

// submit posts a lead as a browser's script would and returns its id.
func (h *routingHarness) submit(body map[string]any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, h.base+"/v1/leads", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", browserUA)
	resp, err := h.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted || out.ID == "" || out.Duplicate {
		return "", fmt.Errorf("submit: status %d, id %q, duplicate %v, decode error %v", resp.StatusCode, out.ID, out.Duplicate, err)
	}
	return out.ID, nil
}

// leads lists every lead in state through the admin API, page by page.
func (h *routingHarness) leads(t *testing.T, state intake.State) []routedLead {
	t.Helper()
	var all []routedLead
	cursor := ""
	for {
		q := url.Values{"state": {string(state)}, "limit": {"200"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		req, err := http.NewRequest(http.MethodGet, h.base+"/v1/admin/leads?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+h.sales)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Leads      []routedLead `json:"leads"`
			NextCursor string       `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("list %s leads: status %d, %v", state, resp.StatusCode, err)
		}
		all = append(all, page.Leads...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// TestRoutingToBitrix24UnderFailures submits leadCount leads while the
// Bitrix24 portal fails a third of the calls, and checks that every lead
// reaches the portal exactly once, owned by the member of the team its rule
// names, with the weighted team's turns shared exactly by weight.
func TestRoutingToBitrix24UnderFailures(t *testing.T) {
	t.Parallel()
	start := time.Now()
	h := startRouting(t)

	ids := make([]string, leadCount)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				id, err := h.submit(routingApplicant(i))
				if err != nil {
					t.Errorf("lead %d: %v", i, err)
					continue
				}
				ids[i] = id
			}
		})
	}
	for i := range leadCount {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	index := make(map[string]int, leadCount) // lead id → applicant number
	for i, id := range ids {
		if _, dup := index[id]; dup {
			t.Fatalf("leads %d and %d got the same id", index[id], i)
		}
		index[id] = i
	}

	var routed []routedLead
	for deadline := time.Now().Add(50 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		for _, st := range []intake.State{intake.Failed, intake.Review} {
			if stuck := h.leads(t, st); len(stuck) > 0 {
				t.Fatalf("%d leads are %s, e.g. risk %+v, route %+v", len(stuck), st, stuck[0].Risk, stuck[0].Route)
			}
		}
		routed = h.leads(t, intake.Routed)
		if len(routed) == leadCount {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d leads routed within the deadline; faults injected: %v", len(routed), leadCount, h.faults.counts())
		}
	}
	t.Logf("%d leads routed %v after the start; faults injected: %v; calls: %d crm.lead.list, %d crm.lead.add",
		leadCount, time.Since(start).Round(time.Millisecond), h.faults.counts(),
		h.portal.Count("crm.lead.list"), h.portal.Count("crm.lead.add"))

	// What leadgate recorded: each lead routed once, by the rule its entity
	// type and language call for.
	byID := make(map[string]routedLead, leadCount)
	for _, l := range routed {
		i, ok := index[l.ID]
		if !ok {
			t.Fatalf("routed lead %s was never submitted", l.ID)
		}
		if _, dup := byID[l.ID]; dup {
			t.Fatalf("lead %s listed twice", l.ID)
		}
		byID[l.ID] = l
		app := routingApplicant(i)
		if l.Email != app["email"] || l.EntityType != app["entity_type"] || l.Lang != app["lang"] {
			t.Errorf("lead %s is %s %s %s, want applicant %d's", l.ID, l.Email, l.EntityType, l.Lang, i)
		}
		rule, team := expectedRoute(l.EntityType, l.Lang)
		if a := l.Assignment; a == nil || a.Rule != rule || a.Team != team {
			t.Errorf("lead %s (%s, %s): assignment %+v, want rule %q, team %q", l.ID, l.EntityType, l.Lang, a, rule, team)
		}
		if l.Route.System != "bitrix24" || l.Route.Ref == "" {
			t.Errorf("lead %s: route %+v, want a bitrix24 reference", l.ID, l.Route)
		}
		var toCRM []intake.Transfer // the acknowledgement mail is logged too
		for _, tr := range l.Transfers {
			if strings.HasPrefix(tr.Recipient, "crm:") {
				toCRM = append(toCRM, tr)
			}
		}
		if len(toCRM) != 1 || toCRM[0].Recipient != "crm:bitrix24" || toCRM[0].Ref != l.Route.Ref {
			t.Errorf("lead %s: transfers %+v, want one to crm:bitrix24 with ref %s", l.ID, l.Transfers, l.Route.Ref)
		}
	}

	// What the portal holds: each lead exactly once, under the reference
	// leadgate recorded, owned by a member of the lead's team.
	stored := h.portal.Leads()
	if len(stored) != leadCount {
		t.Fatalf("the portal holds %d leads, want %d", len(stored), leadCount)
	}
	owners := map[string]map[string]int{} // team → CRM user id → leads
	seen := make(map[string]bool, leadCount)
	for _, s := range stored {
		origin := s.Fields["ORIGIN_ID"]
		l, ok := byID[origin]
		if !ok || seen[origin] || s.Fields["ORIGINATOR_ID"] != "leadgate" {
			t.Fatalf("portal lead %s: ORIGIN_ID %q, ORIGINATOR_ID %q: not one routed lead of ours, or a second copy",
				s.ID, origin, s.Fields["ORIGINATOR_ID"])
		}
		seen[origin] = true
		if l.Route.Ref != s.ID {
			t.Errorf("lead %s: leadgate recorded Bitrix24 lead %s, the portal filed it as %s", origin, l.Route.Ref, s.ID)
		}
		if len(s.Email) != 1 || s.Email[0].Value != l.Email {
			t.Errorf("portal lead %s holds emails %+v, want lead %s's", s.ID, s.Email, origin)
		}
		_, team := expectedRoute(l.EntityType, l.Lang)
		owner := s.Fields["ASSIGNED_BY_ID"]
		if _, member := teamWeights[team][owner]; !member || l.Assignment == nil || l.Assignment.CRMUserID != owner {
			t.Errorf("lead %s (%s, %s): ASSIGNED_BY_ID %q, assignment %+v; want a member of %s", origin, l.EntityType, l.Lang, owner, l.Assignment, team)
			continue
		}
		if owners[team] == nil {
			owners[team] = map[string]int{}
		}
		owners[team][owner]++
	}

	// Every team's turns went round whole cycles, so each member got exactly
	// its weight's share.
	for team, weights := range teamWeights {
		total, n := 0, 0
		for _, w := range weights {
			total += w
		}
		for _, c := range owners[team] {
			n += c
		}
		if n == 0 || n%total != 0 {
			t.Fatalf("test data: team %s got %d leads, want a positive multiple of its total weight %d", team, n, total)
		}
		for user, w := range weights {
			if got, want := owners[team][user], n/total*w; got != want {
				t.Errorf("team %s: CRM user %s owns %d of %d leads, want %d (weight %d of %d)", team, user, got, n, want, w, total)
			}
		}
	}

	// Every kind of failure happened, and only the adds the portal refused
	// were made again: a lead it stored before failing was found, not added
	// a second time.
	injected := h.faults.counts()
	for _, kind := range []string{"crm.lead.list: query limit", "crm.lead.list: operation time limit",
		"crm.lead.list: internal error", "crm.lead.add: query limit", "crm.lead.add: operation time limit",
		"crm.lead.add: internal error", "crm.lead.add: stored, then internal error",
		"crm.lead.add: stored, then connection lost"} {
		if injected[kind] == 0 {
			t.Errorf("no %q was injected: %v", kind, injected)
		}
	}
	refused := injected["crm.lead.add: query limit"] + injected["crm.lead.add: operation time limit"] +
		injected["crm.lead.add: internal error"]
	if adds := h.portal.Count("crm.lead.add"); adds != leadCount+refused {
		t.Errorf("%d adds, want %d: one per lead and one more per refused add", adds, leadCount+refused)
	}
	if elapsed := time.Since(start); elapsed > time.Minute {
		t.Errorf("the test took %v, want under a minute", elapsed)
	}
}
