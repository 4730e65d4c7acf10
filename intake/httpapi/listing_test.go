package httpapi

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestListingsRefuseMalformedQuery: on every admin listing a malformed
// cursor, limit or since is 400 bad_request with a message — never 422,
// never 503.
func TestListingsRefuseMalformedQuery(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	listings := []struct{ path, token string }{
		{"/v1/admin/leads", salesToken},
		{"/v1/admin/audit", adminToken},
		{"/v1/admin/subjects/requests", privacyToken},
	}
	bad := []string{
		"cursor=x", "cursor=1-2-3", "cursor=.", "cursor=5.", "cursor=.lead", "cursor=-5.lead", "cursor=%2B5.lead",
		"cursor=1e3.lead", "cursor=99999999999999999999.lead", "cursor=-1-0", "cursor=1--1", "cursor=1-",
		"cursor=-0", "cursor=18446744073709551616-0", "cursor=1-18446744073709551616", "cursor=%2B1-0",
		"limit=0", "limit=-1", "limit=abc", "limit=1.5", "limit=99999", "limit=%205", "limit=0x10",
		"since=yesterday", "since=2026-13-01", "since=2026-01-31T00:00:00", "since=1767225600", "since=31.01.2026",
	}
	for _, l := range listings {
		for _, q := range bad {
			t.Run(l.path+"?"+q, func(t *testing.T) {
				resp, body := adminDo(t, http.MethodGet, f.url+l.path+"?"+q, l.token)
				if resp.StatusCode != http.StatusBadRequest || body["error"] != "bad_request" || body["message"] == "" ||
					body["message"] == nil {
					t.Fatalf("%d %v, want 400 bad_request with a message", resp.StatusCode, body)
				}
			})
		}
	}
	// A well-formed cursor from elsewhere pages (to nothing, or onwards);
	// each listing's own cursor shape is the other's malformed one.
	for _, c := range []struct{ path, token, query string }{
		{"/v1/admin/leads", salesToken, "cursor=0.x"},
		{"/v1/admin/leads", salesToken, "cursor=9999999999999.zzz"},
		{"/v1/admin/subjects/requests", privacyToken, "cursor=0.x"},
		{"/v1/admin/audit", adminToken, "cursor=0-0"},
		{"/v1/admin/audit", adminToken, "cursor=1-0"},
		{"/v1/admin/audit", adminToken, "cursor=18446744073709551615-18446744073709551615"},
		{"/v1/admin/audit", adminToken, "limit=500&since=2026-01-31"},
	} {
		if resp, body := adminDo(t, http.MethodGet, f.url+c.path+"?"+c.query, c.token); resp.StatusCode != http.StatusOK {
			t.Errorf("%s?%s = %d %v, want 200", c.path, c.query, resp.StatusCode, body)
		}
	}
	for _, c := range []struct{ path, token, query string }{
		{"/v1/admin/leads", salesToken, "cursor=1700000000000-0"},
		{"/v1/admin/audit", adminToken, "cursor=1700000000000.lead"},
	} {
		if resp, _ := adminDo(t, http.MethodGet, f.url+c.path+"?"+c.query, c.token); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s?%s = %d, want 400", c.path, c.query, resp.StatusCode)
		}
	}
}

// TestAuditCursorZeroZero: 0-0 is a well-formed stream id with nothing
// before it. It used to reach Redis as the exclusive bound "(0-0", which
// Redis refuses, and the answer was 503; it is an empty last page.
func TestAuditCursorZeroZero(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	adminDo(t, http.MethodGet, f.url+"/v1/admin/audit", adminToken) // leaves one event
	resp, body := adminDo(t, http.MethodGet, f.url+"/v1/admin/audit?cursor=0-0", adminToken)
	events, isList := body["events"].([]any)
	if resp.StatusCode != http.StatusOK || !isList || len(events) != 0 || body["next_cursor"] != nil {
		t.Fatalf("cursor=0-0 = %d %v, want 200 with no events and no next page", resp.StatusCode, body)
	}
}

// TestSubjectRequestsSince: the subject-request listing takes since like
// the other listings: requests received at or after it.
func TestSubjectRequestsSince(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	var refs []string
	for range 3 {
		status, body := subjectPost(t, f, "export", `{"email":"nobody.testov@example.com"}`)
		if status != http.StatusNotFound {
			t.Fatalf("export = %d %v, want 404 (nothing held)", status, body)
		}
		refs = append(refs, body["reference"].(string))
		f.clock.Add(24 * time.Hour)
	}
	since := f.clock.Now().Add(-60 * time.Hour).Format(time.RFC3339) // between the first and the second
	list := func(query string) map[string]any {
		t.Helper()
		resp, body := adminDo(t, http.MethodGet, f.url+"/v1/admin/subjects/requests?"+query, privacyToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list?%s = %d %v", query, resp.StatusCode, body)
		}
		return body
	}
	got := list("since=" + url.QueryEscape(since))
	if rs := got["requests"].([]any); len(rs) != 2 || rs[0].(map[string]any)["reference"] != refs[2] ||
		rs[1].(map[string]any)["reference"] != refs[1] || got["next_cursor"] != nil {
		t.Fatalf("since the second day = %v, want the last two requests and no next page", got)
	}
	first := list("limit=1&since=" + url.QueryEscape(since))
	next, _ := first["next_cursor"].(string)
	second := list("limit=1&since=" + url.QueryEscape(since) + "&cursor=" + url.QueryEscape(next))
	if rs := second["requests"].([]any); next == "" || len(rs) != 1 || rs[0].(map[string]any)["reference"] != refs[1] {
		t.Fatalf("second page since = %v (cursor %q), want the second request", second, next)
	}
	third := list("limit=1&since=" + url.QueryEscape(since) + "&cursor=" + url.QueryEscape(second["next_cursor"].(string)))
	if rs := third["requests"].([]any); len(rs) != 0 || third["next_cursor"] != nil {
		t.Fatalf("third page since = %v, want nothing more", third)
	}
}
