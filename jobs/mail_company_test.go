package jobs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/templates"
)

// policyByLang are distinct POLICY_URL_KK, _RU and _EN, none equal to the
// POLICY_URL fallback, so a test sees which one an email linked.
var policyByLang = map[string]string{"kk": "https://example.com/kk/privacy", "ru": "https://example.com/ru/privacy",
	"en": "https://example.com/en/privacy"}

var testCompany = templates.Company{Name: "Example Pay LLP", Contact: "Almaty, Test Street 1"}

// checkCompanyAndPolicy fails unless both bodies name the company and its
// contact and link lang's policy and no other language's.
func checkCompanyAndPolicy(t *testing.T, what, lang, text, html string) {
	t.Helper()
	for _, body := range []string{text, html} {
		for _, want := range []string{testCompany.Name, testCompany.Contact, policyByLang[lang]} {
			if !strings.Contains(body, want) {
				t.Errorf("%s in %s lacks %q", what, lang, want)
			}
		}
		for l, u := range policyByLang {
			if l != lang && strings.Contains(body, u) {
				t.Errorf("%s in %s links the %s policy %s", what, lang, l, u)
			}
		}
		if strings.Contains(body, welcomePolicy) {
			t.Errorf("%s in %s links POLICY_URL although its language has its own", what, lang)
		}
	}
}

// TestWelcomerMailsTheCompanyAndThePolicyOfTheLanguage: the acknowledgement
// and the opt-in request link the policy of the lead's language (the one
// the person read on the form) and name COMPANY_NAME and COMPANY_CONTACT.
func TestWelcomerMailsTheCompanyAndThePolicyOfTheLanguage(t *testing.T) {
	t.Parallel()
	for i, lang := range []string{"kk", "ru", "en"} {
		f := setupWelcome(t)
		f.w.PolicyURLs, f.w.Company = policyByLang, testCompany
		lead := f.submit(t, applicant{email: "test1@example.com", phone: "+7701000000" + string(rune('1'+i)), lang: lang, marketing: true})
		ctx := context.Background()
		if err := f.w.Acknowledge(ctx, ackTask(lead.ID)); err != nil {
			t.Fatal(err)
		}
		if err := f.w.RequestConfirmation(ctx, optinTask(lead.ID)); err != nil {
			t.Fatal(err)
		}
		sent := f.mailer.delivered()
		if len(sent) != 2 {
			t.Fatalf("%s: %d messages, want the acknowledgement and the opt-in request", lang, len(sent))
		}
		checkCompanyAndPolicy(t, "acknowledgement", lang, sent[0].Text, sent[0].HTML)
		checkCompanyAndPolicy(t, "opt-in request", lang, sent[1].Text, sent[1].HTML)
	}
}

// TestCampaignMailsTheCompanyAndThePolicyOfTheLanguage: the campaign wrapper
// and the breach notice of each language link that language's policy and
// name the company, as the sender renders them (Preview renders the same).
func TestCampaignMailsTheCompanyAndThePolicyOfTheLanguage(t *testing.T) {
	t.Parallel()
	c := &jobs.Campaigner{BaseURL: "https://leads.example.com", PolicyURL: welcomePolicy, PolicyURLs: policyByLang, Company: testCompany}
	all := func(s string) map[string]string { return map[string]string{"kk": s, "ru": s, "en": s} }
	camps := map[string]*intake.Campaign{
		"campaign":      {Kind: intake.KindCampaign, Content: intake.Content{Subject: all("News"), Text: all("Hello.")}},
		"breach notice": {Kind: intake.KindBreachNotice, Content: intake.Content{Message: all("We reset all keys.")}},
	}
	for what, camp := range camps {
		for lang := range policyByLang {
			e, err := c.Preview(camp, lang)
			if err != nil {
				t.Fatalf("%s %s: %v", what, lang, err)
			}
			checkCompanyAndPolicy(t, what, lang, e.Text, e.HTML)
		}
	}
}
