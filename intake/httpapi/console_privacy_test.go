package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

// The privacy officer's console pages (console/subjects.go): the desk, a
// person's page at a handle bound to the session, and the requests made
// from it, over the real route table and a private Redis. The browser
// test in cmd/leadgate/console_privacy_test.go drives them in Chromium.

// fakeEmail is fakePerson's address, as an officer would type it.
const fakeEmail = "test.person@example.com"

// subjectForms are the fields the role table posts to the privacy
// console's routes besides csrf, so that an allowed post does its work.
var subjectForms = map[string]url.Values{
	"POST /admin/subjects/find":                {"email": {fakeEmail}},
	"POST /admin/subjects/p/{handle}/export":   {"as": {"json"}},
	"POST /admin/subjects/p/{handle}/rectify":  {"name": {"Тест Исправленов"}},
	"POST /admin/subjects/p/{handle}/erase":    {"confirm": {"yes"}},
	"POST /admin/subjects/p/{handle}/withdraw": {"scope": {"marketing"}},
}

var personPage = regexp.MustCompile(`^/admin/subjects/p/([A-Za-z0-9_-]{22,})\?`)

// findPerson finds fakePerson through the desk's form and returns the
// handle the session was given for them.
func findPerson(t *testing.T, base, cookie string) string {
	t.Helper()
	resp, _ := consoleDo(t, "POST", base+"/admin/subjects/find?lang=en", cookie,
		url.Values{"csrf": {csrfOf(t, base, cookie)}, "email": {fakeEmail}}, nil)
	m := personPage.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("find: %d to %q, want 303 to a person's page", resp.StatusCode, resp.Header.Get("Location"))
	}
	return m[1]
}

// personal are fakePerson's values, which no URL may hold.
var personal = []string{"example.com", "7010000001", "210840004064", "%d0%a2", "тест"}

func holdsPersonal(u string) bool {
	u = strings.ToLower(u)
	for _, p := range personal {
		if strings.Contains(u, p) {
			return true
		}
	}
	return false
}

func TestConsolePrivacyHandleBoundToSession(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	reviewLead(t, f)
	a, _ := signIn(t, f.url, privacyConsoleToken)
	b, _ := signIn(t, f.url, privacyConsoleToken)
	h := findPerson(t, f.url, a)
	if resp, body := consoleDo(t, "GET", f.url+"/admin/subjects/p/"+h+"?lang=en", a, nil, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, "Test.Person@Example.com") {
		t.Fatalf("own handle: %d, or the page does not show the person", resp.StatusCode)
	}
	for _, path := range []string{"/admin/subjects/p/" + h, "/admin/subjects/p/" + h + "/erase"} {
		if resp, body := consoleDo(t, "GET", f.url+path, b, nil, nil); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Example.com") {
			t.Errorf("GET %s in another session: %d, want 404 showing nothing", path, resp.StatusCode)
		}
	}
	resp, _ := consoleDo(t, "POST", f.url+"/admin/subjects/p/"+h+"/erase", b,
		url.Values{"csrf": {csrfOf(t, f.url, b)}, "confirm": {"yes"}}, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("erase with another session's handle: %d, want 404", resp.StatusCode)
	}
	if _, body := consoleDo(t, "GET", f.url+"/admin/subjects/p/"+h, a, nil, nil); !strings.Contains(body, "Example.com") {
		t.Error("the person was touched through another session's handle")
	}
}

func TestConsolePrivacyCSRF(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	reviewLead(t, f)
	a, _ := signIn(t, f.url, privacyConsoleToken)
	b, _ := signIn(t, f.url, privacyConsoleToken)
	h := findPerson(t, f.url, a)
	for _, path := range []string{"/admin/subjects/find", "/admin/subjects/p/" + h + "/export", "/admin/subjects/p/" + h + "/rectify",
		"/admin/subjects/p/" + h + "/block", "/admin/subjects/p/" + h + "/unblock", "/admin/subjects/p/" + h + "/erase",
		"/admin/subjects/p/" + h + "/withdraw"} {
		for name, csrf := range map[string][]string{"none": nil, "another session's": {csrfOf(t, f.url, b)}} {
			form := url.Values{"email": {fakeEmail}, "confirm": {"yes"}, "scope": {"marketing"}, "as": {"json"}}
			if csrf != nil {
				form["csrf"] = csrf
			}
			if resp, _ := consoleDo(t, "POST", f.url+path, a, form, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %s csrf: %d, want 403", path, name, resp.StatusCode)
			}
		}
	}
	if _, body := consoleDo(t, "GET", f.url+"/admin/subjects/p/"+h, a, nil, nil); !strings.Contains(body, "Example.com") {
		t.Error("a refused post erased the person")
	}
}

// TestConsolePrivacyWorkflow finds, exports, blocks, erases and finds
// again, checking every URL and Location on the way for personal values.
func TestConsolePrivacyWorkflow(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	id := reviewLead(t, f)
	cookie, _ := signIn(t, f.url, privacyConsoleToken)
	csrf := csrfOf(t, f.url, cookie)
	hrefs := regexp.MustCompile(`(?:href|action)="([^"]*)"`)
	page := func(path string) string {
		t.Helper()
		resp, body := consoleDo(t, "GET", f.url+path, cookie, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s: %d, Cache-Control %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		for _, m := range hrefs.FindAllStringSubmatch(body, -1) {
			if holdsPersonal(m[1]) {
				t.Errorf("%s links to %q, which holds personal data", path, m[1])
			}
		}
		return body
	}
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		form.Set("csrf", csrf)
		resp, _ := consoleDo(t, "POST", f.url+path, cookie, form, nil)
		if holdsPersonal(resp.Header.Get("Location")) {
			t.Errorf("POST %s: Location %q holds personal data", path, resp.Header.Get("Location"))
		}
		return resp
	}
	page("/admin/subjects?lang=en")
	h := findPerson(t, f.url, cookie)
	if body := page("/admin/subjects/p/" + h + "?lang=en"); !strings.Contains(body, id) || !strings.Contains(body, "7010000001") {
		t.Error("the person's page does not show their lead")
	}

	resp := post("/admin/subjects/p/"+h+"/export?lang=en", url.Values{"as": {"json"}})
	var export struct {
		Reference string `json:"reference"`
		People    []struct {
			Leads []struct{ ID string } `json:"leads"`
		} `json:"people"`
	}
	_, raw := consoleDo(t, "POST", f.url+"/admin/subjects/p/"+h+"/export", cookie, url.Values{"csrf": {csrf}, "as": {"json"}}, nil)
	if err := json.Unmarshal([]byte(raw), &export); err != nil || export.Reference == "" || len(export.People) != 1 ||
		len(export.People[0].Leads) != 1 || export.People[0].Leads[0].ID != id {
		t.Errorf("export: %v, %d people", err, len(export.People))
	}
	// The download's people are the API's export, field for field.
	req, _ := http.NewRequest("POST", f.url+"/v1/admin/subjects/export", strings.NewReader(`{"email":"`+fakeEmail+`"}`))
	req.Header.Set("Authorization", "Bearer "+privacyConsoleToken)
	req.Header.Set("Content-Type", "application/json")
	apiResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var api, console struct{ People json.RawMessage }
	json.NewDecoder(apiResp.Body).Decode(&api)
	apiResp.Body.Close()
	json.Unmarshal([]byte(raw), &console)
	if len(api.People) == 0 || !jsonEqual(api.People, console.People) {
		t.Error("the console's export download differs from the API's export")
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || holdsPersonal(cd) {
		t.Errorf("export Content-Disposition %q", cd)
	}
	if resp := post("/admin/subjects/p/"+h+"/export?lang=en", url.Values{"as": {"print"}}); resp.StatusCode != http.StatusOK {
		t.Errorf("printable export: %d", resp.StatusCode)
	}

	resp = post("/admin/subjects/p/"+h+"/block?lang=en", url.Values{})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/subjects/p/"+h+"?") || !strings.Contains(loc, "ref=") {
		t.Fatalf("block: %d to %q", resp.StatusCode, loc)
	}
	if body := page(loc); !strings.Contains(body, "The person is blocked: request ") {
		t.Error("no notice with the block's reference")
	}

	if body := page("/admin/subjects/p/" + h + "/erase?lang=en"); !strings.Contains(body, "requests: 1") {
		t.Error("the confirmation does not count the lead")
	}
	if resp := post("/admin/subjects/p/"+h+"/erase?lang=en", url.Values{}); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/admin/subjects/p/"+h+"/erase") {
		t.Errorf("erase without the confirmation: %d to %q, want 303 to the confirmation", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := f.store.Leads.Get(t.Context(), id); err != nil {
		t.Fatal("an unconfirmed erase destroyed the lead")
	}
	resp = post("/admin/subjects/p/"+h+"/erase?lang=en", url.Values{"confirm": {"yes"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/subjects?") {
		t.Fatalf("erase: %d to %q", resp.StatusCode, loc)
	}
	if body := page("/admin/subjects/p/" + h + "?lang=en"); !strings.Contains(body, "Nothing is held about this person.") {
		t.Error("the person's page still shows them after the erasure")
	}
	resp, body := consoleDo(t, "POST", f.url+"/admin/subjects/find?lang=en", cookie, url.Values{"csrf": {csrf}, "email": {fakeEmail}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Nothing is held about this person.") {
		t.Errorf("find after erasure: %d, want the desk saying nothing is held", resp.StatusCode)
	}
	body = page("/admin/subjects?lang=en")
	for _, kind := range []string{"Export", "Block", "Erasure"} {
		if !strings.Contains(body, "<td>"+kind+"</td>") {
			t.Errorf("the desk does not list the %s request", kind)
		}
	}
	if body := page("/admin/?lang=en"); !strings.Contains(body, "Subject requests due today or overdue") {
		t.Error("the privacy officer's home has no section for requests due")
	}

	// Every view and action is audited under the holder's name: a view
	// names the person by keyed hash, an action by its request's
	// reference; no event holds a personal value.
	seen := map[string]bool{}
	for _, ev := range auditEvents(t, f.ops) {
		if holdsPersonal(ev.Target) || holdsPersonal(ev.Action) {
			t.Errorf("audit event %s holds personal data", ev.Action)
		}
		if ev.Name == "p" && ev.Role == intake.RolePrivacy && ev.Target != "" {
			seen[ev.Action] = true
		}
	}
	for _, action := range []string{"GET /admin/subjects/p/{handle}", "GET /admin/subjects/p/{handle}/erase",
		"POST /admin/subjects/p/{handle}/export", "POST /admin/subjects/p/{handle}/block", "POST /admin/subjects/p/{handle}/erase"} {
		if !seen[action] {
			t.Errorf("no audit event of %s under the officer's name with its target", action)
		}
	}
}

// TestConsolePrivacyPhoneChoiceAndRectify: a phone two people gave offers
// both; a rectification that moves the person to a new address keeps the
// page (a new handle), and one to another person's address is 409.
func TestConsolePrivacyPhoneChoiceAndRectify(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	reviewLead(t, f)
	other := fakePerson()
	other.Email, other.EmailKey, other.Name = "Other.Fake@Example.com", "other.fake@example.com", "Другой Тестов"
	if _, err := f.store.Leads.Accept(t.Context(), application(other)); err != nil {
		t.Fatal(err)
	}
	cookie, _ := signIn(t, f.url, privacyConsoleToken)
	csrf := csrfOf(t, f.url, cookie)
	resp, body := consoleDo(t, "POST", f.url+"/admin/subjects/find?lang=en", cookie, url.Values{"csrf": {csrf}, "phone": {"+7 701 000 0001"}}, nil)
	links := regexp.MustCompile(`href="(/admin/subjects/p/[^"?]+)\?`).FindAllStringSubmatch(body, -1)
	if resp.StatusCode != http.StatusOK || len(links) != 2 || links[0][1] == links[1][1] {
		t.Fatalf("find by a shared phone: %d with %d choices, want 200 with 2", resp.StatusCode, len(links))
	}
	for _, l := range links {
		if resp, _ := consoleDo(t, "GET", f.url+l[1], cookie, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("a choice answered %d", resp.StatusCode)
		}
	}
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/subjects/find", cookie, url.Values{"csrf": {csrf}, "phone": {"not a phone"}}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("find by a bad phone: %d, want 400", resp.StatusCode)
	}

	h := findPerson(t, f.url, cookie)
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/subjects/p/"+h+"/rectify", cookie,
		url.Values{"csrf": {csrf}, "email": {"other.fake@example.com"}}, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("rectify to another person's address: %d, want 409", resp.StatusCode)
	}
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/subjects/p/"+h+"/rectify", cookie, url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("rectify with nothing to change: %d, want 400", resp.StatusCode)
	}
	resp, _ = consoleDo(t, "POST", f.url+"/admin/subjects/p/"+h+"/rectify?lang=en", cookie,
		url.Values{"csrf": {csrf}, "email": {"moved.fake@example.com"}}, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || holdsPersonal(loc) || !personPage.MatchString(loc) || strings.Contains(loc, h) {
		t.Fatalf("rectify to a new address: %d to %q, want 303 to the person at a new handle", resp.StatusCode, loc)
	}
	if _, body := consoleDo(t, "GET", f.url+loc, cookie, nil, nil); !strings.Contains(body, "moved.fake@example.com") {
		t.Error("the page after the move does not show the new address")
	}
}

// jsonEqual reports whether a and b are the same JSON, whatever the layout.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
