package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// TestPageURLKeptOnlyWhenHTTP: page_url, or the Referer when page_url is
// not given, is kept only as an absolute http or https URL; anything else is
// dropped and the request still accepted. What is stored is what the CRM
// and the consent proof get.
func TestPageURLKeptOnlyWhenHTTP(t *testing.T) {
	t.Parallel()
	f := setupHTTP(t)
	cases := []struct{ name, pageURL, referer, want string }{
		{"https", "https://www.example.kz/connect?from=ad", "", "https://www.example.kz/connect?from=ad"},
		{"http", "http://example.kz/", "", "http://example.kz/"},
		{"scheme in capitals", "HTTPS://www.example.kz/connect", "", "HTTPS://www.example.kz/connect"},
		{"javascript", "javascript:alert(document.cookie)", "", ""},
		{"javascript in capitals", "JaVaScRiPt:alert(1)", "", ""},
		{"relative", "/connect", "", ""},
		{"protocol-relative", "//www.example.kz/connect", "", ""},
		{"data", "data:text/html,<script>alert(1)</script>", "", ""},
		{"ftp", "ftp://example.kz/file", "", ""},
		{"no host", "https:///connect", "", ""},
		{"opaque", "http:example.kz", "", ""},
		{"referer https", "", "https://www.example.kz/connect", "https://www.example.kz/connect"},
		{"referer relative", "", "/connect", ""},
		{"referer javascript", "", "javascript:alert(1)", ""},
		{"dropped page_url does not fall back", "javascript:alert(1)", "https://www.example.kz/connect", ""},
		{"page_url wins over referer", "https://www.example.kz/a", "https://www.example.kz/b", "https://www.example.kz/a"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A person per case: a duplicate would answer with the first lead.
			v := strictForm(fmt.Sprintf("page%d@example.com", i))
			v.Set("consent_marketing", "on")
			if c.pageURL != "" {
				v.Set("page_url", c.pageURL)
			}
			header := map[string]string{}
			if c.referer != "" {
				header["Referer"] = c.referer
			}
			resp := post(t, f.url, "application/x-www-form-urlencoded", v.Encode(), header)
			body := decode(t, resp)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("answer %d %v, want 202", resp.StatusCode, body)
			}
			l, err := f.store.Leads.Get(context.Background(), body["id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if l.Meta.PageURL != c.want || l.Consent.PageURL != c.want {
				t.Fatalf("stored page %q, consent proof page %q; want %q", l.Meta.PageURL, l.Consent.PageURL, c.want)
			}
		})
	}
}
