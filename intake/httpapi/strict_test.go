package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake/form"
)

// strictForm is a valid urlencoded connection request of an obviously fake
// applicant.
func strictForm(email string) url.Values {
	return url.Values{"entity_type": {"legal_entity"}, "name": {"ТОО «Тест»"}, "phone": {"8 701 000 00 01"},
		"email": {email}, "tax_id": {"210840004064"}, "consent_processing": {"on"}}
}

// singleValuedFields is every form field but products, written out so that
// the test does not trust the list it checks (singleValued).
var singleValuedFields = []string{"entity_type", "name", "phone", "email", "tax_id", "message", "lang",
	"consent_processing", "consent_marketing", "page_url", "timezone", "utm_source", "utm_medium",
	"utm_campaign", "redirect_url", "form_token", "website"}

// TestSingleValuedFieldsCoverTheForm: a field added to form.Form is single
// valued unless it is products, and the tables here must name it.
func TestSingleValuedFieldsCoverTheForm(t *testing.T) {
	t.Parallel()
	var tags []string
	ft := reflect.TypeFor[form.Form]()
	for i := range ft.NumField() {
		name, _, _ := strings.Cut(ft.Field(i).Tag.Get("json"), ",")
		if name != "products" {
			tags = append(tags, name)
		}
	}
	slices.Sort(tags)
	want := slices.Sorted(slices.Values(singleValuedFields))
	got := slices.Sorted(slices.Values(singleValued))
	if !slices.Equal(tags, want) || !slices.Equal(got, want) {
		t.Fatalf("form fields %v, singleValued %v, this test's table %v: all three must agree", tags, got, want)
	}
}

// TestRepeatedFormFieldRefused: any field but products given twice in a
// urlencoded post is 400 bad_request naming the field, never its values, for
// a script and for a browser alike; nothing is stored or queued.
func TestRepeatedFormFieldRefused(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	for _, name := range singleValuedFields {
		t.Run(name, func(t *testing.T) {
			v := strictForm("repeat@example.com")
			v[name] = []string{"dup-value-one", "dup-value-two"}
			resp := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), nil)
			raw, _ := io.ReadAll(resp.Body)
			body := string(raw)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error":"bad_request"`) {
				t.Fatalf("%s twice = %d %s, want 400 bad_request", name, resp.StatusCode, body)
			}
			if !strings.Contains(body, `"fields":{"`+name+`":`) {
				t.Errorf("answer %s does not name the field %s", body, name)
			}
			if strings.Contains(body, "dup-value") || strings.Contains(body, "repeat@example.com") {
				t.Errorf("answer %s quotes a value", body)
			}
		})
	}
	// A browser's own post gets the form again, with the field marked.
	v := strictForm("repeat@example.com")
	v["email"] = []string{"one@example.com", "two@example.com"}
	resp := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), map[string]string{"Accept": "text/html"})
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), `id="email-error"`) {
		t.Errorf("browser post with email twice = %d %s, want the form again (400) with the email marked",
			resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if q := f.handedOver(t); len(q) != 0 {
		t.Fatalf("refused posts queued %v", q)
	}
}

// TestProductsMayRepeat: products is the one list, in both spellings.
func TestProductsMayRepeat(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	v := strictForm("products@example.com")
	v["products"] = []string{"acquiring", "pos"}
	v["products[]"] = []string{"payouts", "payment_links"}
	resp := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), nil)
	body := decode(t, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("repeated products = %d %v, want 202", resp.StatusCode, body)
	}
	l, err := f.store.Leads.Get(context.Background(), body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.Products, ","); got != "acquiring,pos,payouts,payment_links" {
		t.Fatalf("stored products %s, want all four", got)
	}
}

// TestRepeatedJSONKeyRefused: a JSON key given twice within one object, at
// any depth and in any letter case encoding/json would match, is 400
// bad_request naming the key; the same key in different objects is fine.
func TestRepeatedJSONKeyRefused(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	const base = `"entity_type":"legal_entity","phone":"8 701 000 00 01","consent_processing":true`
	cases := []struct{ name, body, field string }{
		{"email twice", `{` + base + `,"email":"dup-one@example.com","email":"dup-two@example.com"}`, "email"},
		{"email in two cases", `{` + base + `,"email":"dup-one@example.com","EMAIL":"dup-two@example.com"}`, "email"},
		{"products twice", `{` + base + `,"email":"a@example.com","products":["pos"],"products":["dup-acquiring"]}`, "products"},
		{"flag twice", `{` + base + `,"email":"a@example.com","consent_marketing":false,"consent_marketing":true}`, "consent_marketing"},
		{"unknown key twice", `{` + base + `,"email":"a@example.com","extra":"dup-1","extra":"dup-2"}`, "extra"},
		{"nested", `{` + base + `,"email":"a@example.com","extra":{"inner":"dup-1","inner":"dup-2"}}`, "extra.inner"},
		{"in an array", `{` + base + `,"email":"a@example.com","extra":[{"k":1},{"k":"dup-1","k":"dup-2"}]}`, "extra.k"},
		{"wrong type too", `{` + base + `,"email":"a@example.com","name":5,"name":"dup"}`, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := post(t, f.url, "application/json", c.body, nil)
			raw, _ := io.ReadAll(resp.Body)
			body := string(raw)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error":"bad_request"`) {
				t.Fatalf("%s = %d %s, want 400 bad_request", c.body, resp.StatusCode, body)
			}
			if !strings.Contains(body, `"fields":{"`+c.field+`":`) {
				t.Errorf("answer %s does not name %s", body, c.field)
			}
			if strings.Contains(body, "dup") {
				t.Errorf("answer %s quotes a value", body)
			}
		})
	}
	if q := f.handedOver(t); len(q) != 0 {
		t.Fatalf("refused posts queued %v", q)
	}
	ok := `{` + base + `,"email":"siblings@example.com","a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}`
	if resp := post(t, f.url, "application/json", ok, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("one key in several objects = %d, want 202", resp.StatusCode)
	}
}

// TestRepeatedKeyFinder checks repeatedKey's walk beyond what the form
// posts: scalars, empty containers, depth, and what it leaves to the
// decoder.
func TestRepeatedKeyFinder(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{`{}`, ""}, {`[]`, ""}, {`5`, ""}, {`"a"`, ""}, {``, ""},
		{`{"a":{},"b":[],"c":{"a":1}}`, ""},
		{`{"a":1,"b":{"c":{"d":[{"e":1,"E":2}]}}}`, "b.c.d.e"},
		{`[{"a":1},{"a":1,"a":2}]`, "a"},
		{`{"a":1} {"a":1,"a":2}`, ""}, // only the first value; the decoder refuses the rest
		{`{"` + strings.Repeat("к", 40) + `":1,"` + strings.Repeat("к", 40) + `":2}`, strings.Repeat("к", 32) + "…"},
		{`{"ſ":1,"S":2}`, "ſ"}, // encoding/json matches these to one field
	}
	for _, c := range cases {
		got, err := repeatedKey([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("repeatedKey(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`{"a":`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{1:2}`} {
		if _, err := repeatedKey([]byte(bad)); err == nil {
			t.Errorf("repeatedKey(%s) found no syntax error", bad)
		}
	}
}

// TestAdminBodyRepeatedKeyRefused: the admin API's JSON bodies go through
// the same check, so an erasure cannot act on a different address than the
// one a reader of the body sees first.
func TestAdminBodyRepeatedKeyRefused(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t, withPrivacy)
	status, body := subjectPost(t, f, "block", `{"email":"one.testov@example.com","email":"two.testov@example.com"}`)
	msg, _ := body["message"].(string)
	if status != http.StatusBadRequest || body["error"] != "bad_request" || !strings.Contains(msg, `"email"`) ||
		strings.Contains(msg, "testov") {
		t.Fatalf("block with email twice = %d %v, want 400 naming the field only", status, body)
	}
}
