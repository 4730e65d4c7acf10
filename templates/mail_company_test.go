package templates

import (
	"strings"
	"testing"
	"time"
)

// TestEmailsNameTheConfiguredCompany: every email to a person names the
// operator of COMPANY_NAME — header, texts, subject where it names one —
// and gives COMPANY_CONTACT as the footer's contact and the address for
// written requests, so the mail agrees with the form the person signed;
// nothing of the default company is left.
func TestEmailsNameTheConfiguredCompany(t *testing.T) {
	t.Parallel()
	co := Company{Name: "Example Pay LLP", Contact: "Almaty, Test Street 1, +7 700 000 00 00"}
	const policy = "https://example.com/kk/privacy"
	for _, l := range languages {
		ack, err := RenderAck(AckEmail{Lang: l, RequestID: "01HTESTLEAD0000000000000000", EntityType: "legal_entity",
			Products: []string{"acquiring"}, PolicyURL: policy, Company: co})
		if err != nil {
			t.Fatal(err)
		}
		optin, err := RenderOptin(OptinEmail{Lang: l, ConfirmURL: testConfirmURL, ValidFor: 24 * time.Hour,
			PolicyURL: policy, Company: co})
		if err != nil {
			t.Fatal(err)
		}
		camp, err := RenderCampaign(CampaignEmail{Lang: l, Subject: "News", Text: "Hello.",
			UnsubscribeURL: "https://leads.example.kz/v1/unsubscribe?token=" + UnsubscribeSlot, PolicyURL: policy, Company: co})
		if err != nil {
			t.Fatal(err)
		}
		breach, err := RenderBreach(BreachEmail{Lang: l, Message: "We reset all keys.", PolicyURL: policy, Company: co})
		if err != nil {
			t.Fatal(err)
		}
		wants := map[string][]string{
			"ack":      {Message(l, "mail.ack.intro", co.Name), Message(l, "mail.ack.rights", co.Name, co.Contact)},
			"optin":    {Message(l, "mail.optin.intro", co.Name)},
			"campaign": {Message(l, "mail.campaign.why", co.Name)},
			"breach":   {},
		}
		for name, e := range map[string]Email{"ack": ack, "optin": optin, "campaign": camp, "breach": breach} {
			for _, want := range append(wants[name], co.Name, co.Contact, policy) {
				if !strings.Contains(text(parseEmail(t, e.HTML)), want) && !strings.Contains(e.HTML, want) {
					t.Errorf("%s %s: HTML lacks %q", l, name, want)
				}
				if !strings.Contains(e.Text, want) {
					t.Errorf("%s %s: text lacks %q", l, name, want)
				}
			}
			for _, body := range []string{e.Subject, e.HTML, e.Text} {
				if strings.Contains(body, "PaymTech") || strings.Contains(body, Message(l, "mail.footer.address")) {
					t.Errorf("%s %s: names the default company or its address:\n%s", l, name, body)
				}
			}
		}
		if optin.Subject != Message(l, "mail.optin.subject", co.Name) || breach.Subject != Message(l, "mail.breach.subject", co.Name) {
			t.Errorf("%s: subjects %q, %q do not name the company", l, optin.Subject, breach.Subject)
		}
	}
}

// TestEmailCompanyNameStaysOneLine: COMPANY_NAME reaches subjects, so a
// line break in it must not become a header.
func TestEmailCompanyNameStaysOneLine(t *testing.T) {
	t.Parallel()
	e, err := RenderOptin(OptinEmail{Lang: EN, ConfirmURL: testConfirmURL, ValidFor: time.Hour,
		Company: Company{Name: "Example\r\nBcc: x@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(e.Subject, "\r\n") {
		t.Errorf("subject %q has a line break", e.Subject)
	}
}
