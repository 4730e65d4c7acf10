package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// leadRows are the lead ids a console list page links to, in order.
func leadRows(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`href="/admin/leads/([0-9a-f-]{36})\?`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// nextLink is the page's "next page" link, unescaped; "" when none.
func nextLink(body string) string {
	m := regexp.MustCompile(`<a href="([^"]*)" id="leads-next"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

// TestConsoleLeadFilters: the sales list offers the routing rules' teams
// and members and the catalogue's products as select boxes, filters by
// each field through GET parameters, keeps the filter on every page link,
// and answers a filter it cannot read with the form and a message (400).
func TestConsoleLeadFilters(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t, withTeams)
	a := filterLead(t, f, 1, `"acquiring","pos"`, "google", "smb", "aigerim")
	b := filterLead(t, f, 2, `"payouts"`, "newsletter", "smb", "daniyar")
	c := filterLead(t, f, 3, `"acquiring"`, "google", "enterprise", "olga")
	cookie, _ := signIn(t, f.url, salesToken)

	_, body := consoleDo(t, "GET", f.url+"/admin/leads?lang=en", cookie, nil, nil)
	for _, want := range []string{`<option value="smb">smb</option>`, `<option value="olga">olga</option>`,
		`<option value="payouts">`, `name="utm_source"`, `type="date" id="until" name="until"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the filter form lacks %s", want)
		}
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"team=smb", []string{b, a}},
		{"owner=olga", []string{c}},
		{"product=pos", []string{a}},
		{"utm_source=Google", []string{c, a}},
		{"utm_source=google&team=smb&state=received", []string{a}},
		{"product=recurring", nil},
	} {
		resp, body := consoleDo(t, "GET", f.url+"/admin/leads?lang=en&"+c.query, cookie, nil, nil)
		if got := leadRows(body); resp.StatusCode != http.StatusOK || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %d %v, want 200 %v", c.query, resp.StatusCode, got, c.want)
		}
	}
	// The chosen values stay chosen.
	_, body = consoleDo(t, "GET", f.url+"/admin/leads?lang=en&team=smb&utm_source=google", cookie, nil, nil)
	if !strings.Contains(body, `<option value="smb" selected>`) || !strings.Contains(body, `value="google"`) {
		t.Error("the filter form does not show the filter in force")
	}

	// Refused filters: the form again, with the message of the field.
	for _, c := range []struct{ query, msg string }{
		{"team=nobody", "Choose a team from the list."},
		{"team=enterprise&owner=aigerim", "Choose a salesperson from the list"},
		{"product=yacht", "Choose a product from the list."},
		{"utm_source=test%40example.com", "A source is up to 64 Latin letters"},
		{"until=31.01.2026", "Enter the date as YYYY-MM-DD."},
		{"since=2026-02-01&until=2026-01-31", "The end date must not be before the start date."},
	} {
		resp, body := consoleDo(t, "GET", f.url+"/admin/leads?lang=en&"+c.query, cookie, nil, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.msg) || !strings.Contains(body, `id="lead-filters"`) {
			t.Errorf("%s: %d, want 400 with the form and %q", c.query, resp.StatusCode, c.msg)
		}
		// A refused value (an address, say) goes into no link of the page.
		if strings.Contains(body, "example.com") && strings.Contains(body, "href=\"/admin/leads?") &&
			strings.Contains(body, "utm_source=test") {
			t.Errorf("%s: the page links the refused value", c.query)
		}
	}
}

// TestConsoleLeadFilterPagingKeepsFilter: more leads that fit than a page
// holds; the next page's link keeps every filter, and following the links
// gives every lead that fits once.
func TestConsoleLeadFilterPagingKeepsFilter(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t, withTeams)
	want := map[string]bool{}
	for i := range 55 { // one more than a page of 50 … and some others
		want[filterLead(t, f, i, `"acquiring"`, "google", "smb", "aigerim")] = true
	}
	filterLead(t, f, 100, `"acquiring"`, "yandex", "smb", "aigerim")
	cookie, _ := signIn(t, f.url, salesToken)
	path := "/admin/leads?lang=en&team=smb&utm_source=google&product=acquiring&since=2000-01-01"
	seen := map[string]bool{}
	pages := 0
	for path != "" && pages < 10 {
		_, body := consoleDo(t, "GET", f.url+path, cookie, nil, nil)
		for _, id := range leadRows(body) {
			if !want[id] || seen[id] {
				t.Fatalf("page %d lists %s, which does not fit or was listed before", pages, id)
			}
			seen[id] = true
		}
		path = nextLink(body)
		pages++
		if path != "" {
			for _, p := range []string{"team=smb", "utm_source=google", "product=acquiring", "since=2000-01-01", "cursor="} {
				if !strings.Contains(path, p) {
					t.Fatalf("next page link %q lacks %s", path, p)
				}
			}
		}
	}
	if len(seen) != len(want) || pages != 2 {
		t.Fatalf("%d pages listed %d leads, want 2 pages listing %d", pages, len(seen), len(want))
	}
}

// TestConsoleDeskPaging: the desk lists every open request, overdue first
// then by due date, and the closed ones newest first, 50 a page, with links
// to older pages and back; the request references are the only values in
// the links.
func TestConsoleDeskPaging(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	open := func(ref string, received, due time.Time) {
		t.Helper()
		err := f.store.Subjects.OpenSubjectRequest(ctx, intake.SubjectRequest{Reference: ref, Kind: intake.SubjectExport,
			ReceivedAt: received, DueAt: due, Subject: "test-subject", By: "p"})
		if err != nil {
			t.Fatal(err)
		}
	}
	// 60 closed requests, newest last, and three open ones spread among
	// them: one long overdue (the oldest of all), one due later, one due
	// sooner.
	open("SR-OLD-OVERDUE", now.Add(-100*24*time.Hour), now.Add(-90*24*time.Hour))
	for i := range 60 {
		ref := fmt.Sprintf("SR-CLOSED-%02d", i)
		at := now.Add(time.Duration(i-60) * time.Hour)
		open(ref, at, at.Add(72*time.Hour))
		if err := f.store.Subjects.CloseSubjectRequest(ctx, ref, "done", at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	open("SR-DUE-LATER", now.Add(-time.Minute), now.Add(72*time.Hour))
	open("SR-DUE-SOONER", now.Add(-2*time.Hour), now.Add(24*time.Hour))

	cookie, _ := signIn(t, f.url, privacyConsoleToken)
	refs := regexp.MustCompile(`<td>(SR-[A-Z0-9-]+)</td>`)
	section := func(body, id string) []string {
		start := strings.Index(body, `<section class="card" aria-labelledby="`+id+`">`)
		if start < 0 {
			t.Fatalf("no %s section", id)
		}
		end := start + strings.Index(body[start:], "</section>")
		var out []string
		for _, m := range refs.FindAllStringSubmatch(body[start:end], -1) {
			out = append(out, m[1])
		}
		return out
	}
	resp, body := consoleDo(t, "GET", f.url+"/admin/subjects?lang=en", cookie, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("desk = %d", resp.StatusCode)
	}
	if got := section(body, "open"); strings.Join(got, ",") != "SR-OLD-OVERDUE,SR-DUE-SOONER,SR-DUE-LATER" {
		t.Errorf("open requests %v, want the overdue one, then by due date", got)
	}
	first := section(body, "closed")
	if len(first) != 50 || first[0] != "SR-CLOSED-59" || first[49] != "SR-CLOSED-10" {
		t.Fatalf("first page of closed requests %v, want SR-CLOSED-59 … 10", first)
	}
	older := regexp.MustCompile(`<a href="([^"]*)" id="closed-older"`).FindStringSubmatch(body)
	if older == nil {
		t.Fatal("no link to older closed requests")
	}
	_, body = consoleDo(t, "GET", f.url+strings.ReplaceAll(older[1], "&amp;", "&"), cookie, nil, nil)
	second := section(body, "closed")
	if len(second) != 10 || second[0] != "SR-CLOSED-09" || second[9] != "SR-CLOSED-00" {
		t.Fatalf("second page of closed requests %v, want SR-CLOSED-09 … 00", second)
	}
	if got := section(body, "open"); len(got) != 3 {
		t.Errorf("the second page's open requests %v, want all three still", got)
	}
	if strings.Contains(body, `id="closed-older"`) || !strings.Contains(body, `id="closed-newest"`) {
		t.Error("the last page links onwards, or not back to the newest")
	}
}
