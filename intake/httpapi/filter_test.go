package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/delivery"
)

// withTeams gives the server routing rules' teams to filter by.
func withTeams(o *Options) {
	o.Teams = []intake.Team{{Name: "enterprise", Owners: []string{"olga"}}, {Name: "smb", Owners: []string{"aigerim", "daniyar"}}}
}

// filterLead submits a fake lead with products and utm_source, and assigns
// it to team and owner when given; it returns the lead's id.
func filterLead(t *testing.T, f httpFixture, n int, products, utm, team, owner string) string {
	t.Helper()
	body := fmt.Sprintf(`{"entity_type":"legal_entity","phone":"8 701 000 00 01","email":"filter%d@example.com",
		"products":[%s],"consent_processing":true,"utm_source":%q}`, n, products, utm)
	resp := post(t, f.url, "application/json", body, nil)
	m := decode(t, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit = %d %v", resp.StatusCode, m)
	}
	id := m["id"].(string)
	if team != "" {
		// As the router records it, with the push mark beside it.
		if _, err := delivery.New(f.rdb, time.Now).Begin(context.Background(), id, false, &intake.Assignment{Rule: "test", Team: team, Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// leadIDs lists GET /v1/admin/leads?query from the first page to the last.
func leadIDs(t *testing.T, f httpFixture, query url.Values) []string {
	t.Helper()
	var ids []string
	for range 100 {
		resp, body := adminDo(t, http.MethodGet, f.url+"/v1/admin/leads?"+query.Encode(), salesToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list?%s = %d %v", query.Encode(), resp.StatusCode, body)
		}
		for _, l := range body["leads"].([]any) {
			ids = append(ids, l.(map[string]any)["id"].(string))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return ids
		}
		query.Set("cursor", next)
	}
	t.Fatal("the listing did not end")
	return nil
}

// TestAdminListFilters: team, owner, product, utm_source (read as a label:
// any case, spaces trimmed), since and until select leads, alone and
// together, and paging keeps the filter.
func TestAdminListFilters(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withTeams)
	a := filterLead(t, f, 1, `"acquiring","pos"`, "google", "smb", "aigerim")
	b := filterLead(t, f, 2, `"payouts"`, "newsletter", "smb", "daniyar")
	c := filterLead(t, f, 3, `"acquiring"`, "Google", "enterprise", "olga")
	tests := []struct {
		query string
		want  []string
	}{
		{"team=smb", []string{b, a}},
		{"owner=olga", []string{c}},
		{"team=smb&owner=daniyar", []string{b}},
		{"product=acquiring", []string{c, a}},
		{"utm_source=+GOOGLE+", []string{c, a}},
		{"utm_source=google&team=smb&product=pos&state=received", []string{a}},
		{"utm_source=google&limit=1", []string{c, a}},
		{"product=recurring", nil},
		{"since=2000-01-01&until=2999-12-31&team=enterprise", []string{c}},
		{"until=2000-01-01", nil},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if got := leadIDs(t, f, q); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
		}
	}
}

// TestAdminListRefusesBadFilters: a filter naming what no lead can have is
// 400 bad_request with a message naming the parameter.
func TestAdminListRefusesBadFilters(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withTeams)
	for _, c := range []struct{ query, param string }{
		{"team=nobody", "team"},
		{"owner=nobody", "owner"},
		{"team=enterprise&owner=aigerim", "owner"}, // not of that team
		{"product=yacht", "product"},
		{"utm_source=test%40example.com", "utm_source"},
		{"utm_source=77010000000", "utm_source"},
		{"utm_source=" + strings.Repeat("a", 65), "utm_source"},
		{"utm_source=реклама", "utm_source"},
		{"until=tomorrow", "until"},
		{"since=2026-02-01&until=2026-01-31", "until"},
	} {
		resp, body := adminDo(t, http.MethodGet, f.url+"/v1/admin/leads?"+c.query, salesToken)
		msg, _ := body["message"].(string)
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "bad_request" || !strings.Contains(msg, c.param) {
			t.Errorf("%s = %d %v, want 400 bad_request naming %s", c.query, resp.StatusCode, body, c.param)
		}
	}
}
