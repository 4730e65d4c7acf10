package templates

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
)

// UnsubscribeSlot stands for a recipient's unsubscribe token in a rendered
// campaign, so one rendering serves every recipient of a language: the
// mail driver replaces it per recipient (SendGrid substitutions). It is
// made of characters that no escaper changes.
const UnsubscribeSlot = "-unsubscribe-token-"

// CampaignEmail is one language's version of a marketing campaign. The
// wrapper adds the mandatory footer: why the person gets it, the
// unsubscribe link and the company's details.
type CampaignEmail struct {
	Lang Lang
	// Subject is marketing's subject line; line breaks are folded.
	Subject string
	// HTML is marketing's HTML body, trusted as written: only holders of a
	// marketing token can set it. Empty means the text body, escaped.
	HTML string
	// Text is marketing's plain-text body. Empty means no text part.
	Text string
	// UnsubscribeURL is an absolute http(s) URL, normally holding
	// UnsubscribeSlot where each recipient's token goes.
	UnsubscribeURL string
	// PolicyURL and Company are as in AckEmail.
	PolicyURL string
	Company   Company
}

var (
	campaignMail = parseMail("campaign")
	breachMail   = parseMail("breach")
)

// campaignView adapts a CampaignEmail to one of the templates.
type campaignView struct {
	mailLayout
	Body           any // htmltemplate.HTML for the HTML part, string for the text part
	UnsubscribeURL string
}

// RenderCampaign renders a campaign in one language.
func RenderCampaign(c CampaignEmail) (Email, error) {
	if !c.Lang.valid() {
		return Email{}, fmt.Errorf("templates: render campaign: unsupported language %q", c.Lang)
	}
	if oneLine(c.Subject) == "" {
		return Email{}, errors.New("templates: render campaign: no subject")
	}
	if c.HTML == "" && c.Text == "" {
		return Email{}, errors.New("templates: render campaign: no body")
	}
	if _, ok := absoluteHTTPURL(c.UnsubscribeURL); !ok {
		return Email{}, errors.New("templates: render campaign: the unsubscribe link is not an absolute http(s) URL")
	}
	v := campaignView{mailLayout: newMailLayout(c.Lang, c.Company, oneLine(c.Subject), c.PolicyURL), UnsubscribeURL: c.UnsubscribeURL}
	var e Email
	var err error
	if c.HTML != "" {
		v.Body = htmltemplate.HTML(c.HTML)
	} else {
		v.Body = paragraphsHTML(c.Text)
	}
	if e.HTML, err = campaignMail.renderHTML(v); err != nil {
		return Email{}, fmt.Errorf("templates: render campaign: %w", err)
	}
	if c.Text != "" {
		v.Body = c.Text
		if e.Text, err = campaignMail.renderText(v); err != nil {
			return Email{}, fmt.Errorf("templates: render campaign: %w", err)
		}
	}
	e.Subject = v.Subject
	return e, nil
}

// paragraphsHTML turns plain text into escaped HTML paragraphs, one per
// block separated by a blank line, keeping single line breaks.
func paragraphsHTML(text string) htmltemplate.HTML {
	var b strings.Builder
	for _, p := range paragraphs(text) {
		b.WriteString(`<p style="margin:0 0 16px;">`)
		b.WriteString(strings.ReplaceAll(htmltemplate.HTMLEscapeString(p), "\n", "<br>"))
		b.WriteString("</p>\n")
	}
	return htmltemplate.HTML(b.String())
}

// paragraphs splits text at blank lines, trimming each block.
func paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// BreachEmail tells a person that their data may have been lost or
// disclosed (privacy policy 5.5). It is transactional: sent whatever their
// marketing consent, so it carries no unsubscribe link.
type BreachEmail struct {
	Lang Lang
	// Message is what happened and what the company does about it, as the
	// administrator wrote it: plain text, escaped; blank lines separate
	// paragraphs.
	Message string
	// PolicyURL and Company are as in AckEmail.
	PolicyURL string
	Company   Company
}

// breachView adapts a BreachEmail to the templates.
type breachView struct {
	mailLayout
	Paragraphs []string
}

// RenderBreach renders a breach notice.
func RenderBreach(b BreachEmail) (Email, error) {
	if !b.Lang.valid() {
		return Email{}, fmt.Errorf("templates: render breach notice: unsupported language %q", b.Lang)
	}
	v := breachView{mailLayout: newMailLayout(b.Lang, b.Company, Message(b.Lang, "mail.breach.subject", b.Company.name()), b.PolicyURL),
		Paragraphs: paragraphs(b.Message)}
	if len(v.Paragraphs) == 0 {
		return Email{}, errors.New("templates: render breach notice: empty message")
	}
	e, err := breachMail.render(v.Subject, v)
	if err != nil {
		return Email{}, fmt.Errorf("templates: render breach notice: %w", err)
	}
	return e, nil
}
