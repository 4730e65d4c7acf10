package templates

import (
	"strings"
	"testing"
)

func TestRenderCampaignKeepsTheSlotAndTheFooter(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		e, err := RenderCampaign(CampaignEmail{Lang: lang, Subject: "News\r\nBcc: x", HTML: "<h1>Acquiring</h1>",
			Text: "Acquiring is here.", UnsubscribeURL: "https://leads.example.kz/v1/unsubscribe?lang=" + string(lang) + "&token=" + UnsubscribeSlot,
			PolicyURL: "https://example.kz/privacy"})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if e.Subject != "News Bcc: x" {
			t.Errorf("%s: subject %q: line breaks must fold", lang, e.Subject)
		}
		wantHref := `href="https://leads.example.kz/v1/unsubscribe?lang=` + string(lang) + `&amp;token=` + UnsubscribeSlot + `"`
		for _, want := range []string{"<h1>Acquiring</h1>", wantHref, Message(lang, "mail.campaign.why", DefaultCompanyName), DefaultCompanyName} {
			if !strings.Contains(e.HTML, want) {
				t.Errorf("%s: HTML lacks %q", lang, want)
			}
		}
		for _, want := range []string{"Acquiring is here.", "token=" + UnsubscribeSlot, Message(lang, "mail.campaign.unsubscribe"), Message(lang, "mail.footer.address")} {
			if !strings.Contains(e.Text, want) {
				t.Errorf("%s: text lacks %q", lang, want)
			}
		}
	}
}

func TestRenderCampaignFromTextOnlyEscapes(t *testing.T) {
	t.Parallel()
	e, err := RenderCampaign(CampaignEmail{Lang: RU, Subject: "Новости", Text: "Line <b>one</b>\nstill one\n\nTwo",
		UnsubscribeURL: "https://leads.example.kz/v1/unsubscribe?token=" + UnsubscribeSlot})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "<b>one</b>") || !strings.Contains(e.HTML, "Line &lt;b&gt;one&lt;/b&gt;<br>still one</p>") ||
		!strings.Contains(e.HTML, ">Two</p>") {
		t.Errorf("text body not escaped into paragraphs:\n%s", e.HTML)
	}
	htmlOnly, err := RenderCampaign(CampaignEmail{Lang: RU, Subject: "Новости", HTML: "<p>x</p>",
		UnsubscribeURL: "https://leads.example.kz/v1/unsubscribe?token=" + UnsubscribeSlot})
	if err != nil || htmlOnly.Text != "" {
		t.Errorf("an HTML-only campaign has text %q (err %v); want none", htmlOnly.Text, err)
	}
}

func TestRenderCampaignRefuses(t *testing.T) {
	t.Parallel()
	ok := CampaignEmail{Lang: EN, Subject: "News", Text: "Body", UnsubscribeURL: "https://leads.example.kz/u?token=" + UnsubscribeSlot}
	for name, mutate := range map[string]func(*CampaignEmail){
		"language":    func(c *CampaignEmail) { c.Lang = "de" },
		"subject":     func(c *CampaignEmail) { c.Subject = " \n " },
		"body":        func(c *CampaignEmail) { c.Text = "" },
		"unsubscribe": func(c *CampaignEmail) { c.UnsubscribeURL = "javascript:alert(1)" },
	} {
		c := ok
		mutate(&c)
		if _, err := RenderCampaign(c); err == nil {
			t.Errorf("%s: rendered; want an error", name)
		}
	}
}

func TestRenderBreachEscapesTheMessage(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		e, err := RenderBreach(BreachEmail{Lang: lang, Message: "On 1 May <script>x</script> happened.\n\nWe reset all keys."})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if strings.Contains(e.HTML, "<script>") || !strings.Contains(e.HTML, "&lt;script&gt;") {
			t.Errorf("%s: message not escaped", lang)
		}
		for _, want := range []string{Message(lang, "mail.breach.intro"), "We reset all keys.", Message(lang, "mail.breach.contact")} {
			if !strings.Contains(e.Text, want) || !strings.Contains(e.HTML, want) {
				t.Errorf("%s: lacks %q", lang, want)
			}
		}
		if e.Subject != Message(lang, "mail.breach.subject", DefaultCompanyName) || strings.Contains(e.HTML, "unsubscribe") {
			t.Errorf("%s: subject %q; a breach notice is transactional, no unsubscribe", lang, e.Subject)
		}
	}
	if _, err := RenderBreach(BreachEmail{Lang: RU, Message: "  \n\n "}); err == nil {
		t.Error("an empty notice rendered")
	}
}
