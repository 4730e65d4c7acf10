package templates

import (
	"bytes"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// SalesLead is what the email to SALES_NOTIFY_EMAIL shows of a routed lead:
// enough to pick it up, nothing a salesperson cannot see in the CRM. It is
// in Russian, the sales team's working language.
type SalesLead struct {
	ID          string
	Entity      string // "Юрлицо" or "ИП"
	Name        string
	Products    []string // product names
	Owner       string   // "team / salesperson"
	RiskScore   int
	RiskSignals []string
	CRMURL      string // a link to the lead in the CRM, when the CRM gives one
	CRMRef      string
}

var (
	mailFuncs         = map[string]any{"join": strings.Join}
	salesTextTemplate = texttemplate.Must(texttemplate.New("sales").Funcs(mailFuncs).ParseFS(pageFiles, "mail/sales.txt"))
	salesHTMLTemplate = htmltemplate.Must(htmltemplate.New("sales").Funcs(mailFuncs).ParseFS(pageFiles, "mail/sales.html"))
)

// SalesEmail renders the sales notification: its subject (one line), plain
// text and HTML (escaped) bodies.
func SalesEmail(l SalesLead) (subject, text, html string, err error) {
	var s, t, h bytes.Buffer
	if err := salesTextTemplate.ExecuteTemplate(&s, "subject", l); err != nil {
		return "", "", "", err
	}
	if err := salesTextTemplate.ExecuteTemplate(&t, "text", l); err != nil {
		return "", "", "", err
	}
	if err := salesHTMLTemplate.ExecuteTemplate(&h, "html", l); err != nil {
		return "", "", "", err
	}
	// A name with a line break must not break the subject line.
	return strings.Join(strings.Fields(s.String()), " "), t.String(), h.String(), nil
}
