package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// hiddenTags reads the hidden utm_* fields of a form page.
func hiddenTags(page string) url.Values {
	tags := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="(utm_[a-z]+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
		tags.Add(m[1], m[2])
	}
	return tags
}

// TestFormPageCarriesItsUTMTags: GET / with utm_* in its own address puts
// them in hidden fields (trimmed, cut to the form's 200 characters, dropped
// when the form's rules would refuse them), the language links keep them,
// a refused post shows them again, and the post stores them with the lead.
func TestFormPageCarriesItsUTMTags(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	long := strings.Repeat("ц", 250)
	q := url.Values{"utm_source": {" Google "}, "utm_medium": {"cpc\x01"}, "utm_campaign": {long}, "lang": {"kk"}}
	resp, err := http.Get(f.url + "/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	tags := hiddenTags(page)
	if tags.Get("utm_source") != "Google" || tags.Has("utm_medium") || tags.Get("utm_campaign") != strings.Repeat("ц", 200) {
		t.Fatalf("hidden tags %v, want utm_source Google, no utm_medium, utm_campaign cut to 200", tags)
	}
	if !strings.Contains(page, `href="/?lang=ru&amp;utm_campaign=`) || !strings.Contains(page, `utm_source=Google`) {
		t.Errorf("the language links do not keep the tags:\n%s", page)
	}
	// Without tags the form has no such field, as before.
	plain, err := http.Get(f.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	if got := hiddenTags(string(pb)); len(got) != 0 {
		t.Errorf("a form opened without tags carries %v", got)
	}

	// A refused browser post (no phone) shows the tags again.
	v := strictForm("utm.testov@example.com")
	v.Del("phone")
	for k := range tags {
		v.Set(k, tags.Get(k))
	}
	refused := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), map[string]string{"Accept": "text/html"})
	rb, _ := io.ReadAll(refused.Body)
	if refused.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("post without a phone = %d, want 422", refused.StatusCode)
	}
	if again := hiddenTags(string(rb)); again.Get("utm_source") != "Google" || again.Get("utm_campaign") != tags.Get("utm_campaign") {
		t.Fatalf("the form shown again carries %v, want the tags posted", again)
	}
	if !strings.Contains(string(rb), `utm_source=Google`) {
		t.Error("the refused form's language links lose the tags")
	}

	// The post of the page's fields stores them with the lead.
	v.Set("phone", "8 701 000 00 01")
	ok := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), nil)
	body := decode(t, ok)
	if ok.StatusCode != http.StatusAccepted {
		t.Fatalf("post = %d %v, want 202", ok.StatusCode, body)
	}
	l, err := f.store.Leads.Get(context.Background(), body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if l.Meta.UTMSource != "Google" || l.Meta.UTMCampaign != tags.Get("utm_campaign") || l.Meta.UTMMedium != "" {
		t.Fatalf("stored tags %q %q %q", l.Meta.UTMSource, l.Meta.UTMMedium, l.Meta.UTMCampaign)
	}
}
