package templates

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"slices"
	texttemplate "text/template"
	"time"
)

// An Email is a rendered message: one-line subject, text and HTML bodies.
type Email struct{ Subject, Text, HTML string }

// AckEmail acknowledges a connection request. It is transactional — it
// answers something the person did — so it carries no marketing content
// and no unsubscribe footer. It holds no contact details, names or tax IDs:
// the email says what was asked, not who asked.
type AckEmail struct {
	Lang Lang
	// RequestID is the lead's reference, quoted if the person writes to us.
	RequestID string
	// EntityType is "legal_entity" or "sole_proprietor".
	EntityType string
	// Products are the codes of the services asked about; each is shown
	// by its label (see ProductLabel).
	Products []string
	// PolicyURL is the privacy policy in Lang (POLICY_URL_KK, _RU, _EN),
	// linked from the footer when it is an absolute http(s) URL and left
	// out otherwise: a person is pointed at the text they can read.
	PolicyURL string
	// Company names the operator in the header, the texts and the footer,
	// so that the email says who holds the data as the form did.
	Company Company
}

// OptinEmail asks the person to confirm the product-news subscription they
// ticked on the form (double opt-in).
type OptinEmail struct {
	Lang Lang
	// ConfirmURL is the signed link whose page confirms; it must be an
	// absolute http(s) URL.
	ConfirmURL string
	// ValidFor is how long the link works, at least an hour. It is shown
	// in whole days when it is whole days, else in whole hours, rounded
	// down so that the email never promises more time than the link has.
	ValidFor time.Duration
	// PolicyURL and Company are as in AckEmail.
	PolicyURL string
	Company   Company
}

// mailSet is one email's templates: the shared layout (mail/layout.*) with
// the email's own "body" in an HTML and a plain-text version.
type mailSet struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

// parseMail parses the layout with mail/<name>.html and mail/<name>.txt.
// Like the pages they are compiled in, so a parse error is a build defect.
func parseMail(name string) mailSet {
	return mailSet{
		html: htmltemplate.Must(htmltemplate.New(name).Funcs(mailFuncs).ParseFS(pageFiles,
			"mail/layout.html", "mail/"+name+".html")),
		text: texttemplate.Must(texttemplate.New(name).Funcs(mailFuncs).ParseFS(pageFiles,
			"mail/layout.txt", "mail/"+name+".txt")),
	}
}

var (
	ackMail   = parseMail("ack")
	optinMail = parseMail("optin")
)

// mailLayout is what the shared layout needs: the language, the company
// (page.CompanyName), the subject (the HTML title) and the policy link of
// the footer.
type mailLayout struct {
	page
	Subject   string
	PolicyURL string // empty when none was given or it was not safe to link
}

// newMailLayout builds the layout of an email in lang from company. The
// subject is a catalogue text with at most the company's name in it, and
// is folded to one line so that neither a translation nor COMPANY_NAME
// can add a header.
func newMailLayout(lang Lang, company Company, subject, policyURL string) mailLayout {
	l := mailLayout{page: page{Lang: lang, Company: company}, Subject: oneLine(subject)}
	if _, ok := absoluteHTTPURL(policyURL); ok {
		l.PolicyURL = policyURL
	}
	return l
}

// Contact is the footer's contact line and the address for written
// requests: COMPANY_CONTACT when set, else the catalogue's address (the
// one the privacy policy gives), so that a person always has somewhere to
// write.
func (l mailLayout) Contact() string {
	if c := oneLine(l.Company.Contact); c != "" {
		return c
	}
	return l.T("mail.footer.address")
}

// render executes both bodies of s with data.
func (s mailSet) render(subject string, data any) (Email, error) {
	h, err := s.renderHTML(data)
	if err != nil {
		return Email{}, err
	}
	t, err := s.renderText(data)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: subject, Text: t, HTML: h}, nil
}

func (s mailSet) renderHTML(data any) (string, error) {
	var b bytes.Buffer
	if err := s.html.ExecuteTemplate(&b, "html", data); err != nil {
		return "", fmt.Errorf("execute HTML: %w", err)
	}
	return b.String(), nil
}

func (s mailSet) renderText(data any) (string, error) {
	var b bytes.Buffer
	if err := s.text.ExecuteTemplate(&b, "text", data); err != nil {
		return "", fmt.Errorf("execute text: %w", err)
	}
	return b.String(), nil
}

// ackView adapts an AckEmail to the templates: labels instead of codes.
type ackView struct {
	mailLayout
	RequestID string
	Entity    string   // the entity type's label
	Products  []string // the products' labels
}

// RenderAck renders the acknowledgement of a connection request.
func RenderAck(a AckEmail) (Email, error) {
	if !a.Lang.valid() {
		return Email{}, fmt.Errorf("templates: render ack: unsupported language %q", a.Lang)
	}
	if !slices.Contains(entityTypes, a.EntityType) {
		return Email{}, fmt.Errorf("templates: render ack: unknown entity type %q", a.EntityType)
	}
	if oneLine(a.RequestID) == "" {
		return Email{}, errors.New("templates: render ack: no request ID")
	}
	v := ackView{
		mailLayout: newMailLayout(a.Lang, a.Company, Message(a.Lang, "mail.ack.subject"), a.PolicyURL),
		RequestID:  oneLine(a.RequestID),
		Entity:     Message(a.Lang, "entity."+a.EntityType),
	}
	for _, code := range a.Products {
		v.Products = append(v.Products, oneLine(ProductLabel(a.Lang, code)))
	}
	e, err := ackMail.render(v.Subject, v)
	if err != nil {
		return Email{}, fmt.Errorf("templates: render ack: %w", err)
	}
	return e, nil
}

// optinView adapts an OptinEmail to the templates.
type optinView struct {
	mailLayout
	ConfirmURL string
	ValidFor   string // in words, see validFor
}

// RenderOptin renders the email that asks to confirm a product-news
// subscription. A ConfirmURL that is not an absolute http(s) URL is an
// error rather than a neutralised link: the email would be useless.
func RenderOptin(o OptinEmail) (Email, error) {
	if !o.Lang.valid() {
		return Email{}, fmt.Errorf("templates: render opt-in: unsupported language %q", o.Lang)
	}
	// The URL carries a token, so it stays out of the error.
	if _, ok := absoluteHTTPURL(o.ConfirmURL); !ok {
		return Email{}, errors.New("templates: render opt-in: the confirmation link is not an absolute http(s) URL")
	}
	valid, err := validFor(o.Lang, o.ValidFor)
	if err != nil {
		return Email{}, fmt.Errorf("templates: render opt-in: %w", err)
	}
	v := optinView{
		mailLayout: newMailLayout(o.Lang, o.Company, Message(o.Lang, "mail.optin.subject", o.Company.name()), o.PolicyURL),
		ConfirmURL: o.ConfirmURL,
		ValidFor:   valid,
	}
	e, err := optinMail.render(v.Subject, v)
	if err != nil {
		return Email{}, fmt.Errorf("templates: render opt-in: %w", err)
	}
	return e, nil
}

// validFor says how long a link works in lang: "7 дней", "36 сағат",
// "1 day". Whole days are counted in days, anything else in whole hours.
func validFor(lang Lang, d time.Duration) (string, error) {
	if d < time.Hour {
		return "", fmt.Errorf("link validity %v is under an hour", d)
	}
	const day = 24 * time.Hour
	if d%day == 0 {
		n := int(d / day)
		return Message(lang, "duration.days."+pluralForm(lang, n), n), nil
	}
	n := int(d / time.Hour)
	return Message(lang, "duration.hours."+pluralForm(lang, n), n), nil
}

// pluralForm names the form a count takes in lang, as the catalogue keys
// "duration.<unit>.one|few|many" do. Russian has three (1 день, 2 дня,
// 5 дней; 21 день, 11 дней), English two (one and the rest, spelled the
// same for few and many) and Kazakh one, since a noun after a numeral
// stays singular (7 күн) — its three texts are the same.
func pluralForm(lang Lang, n int) string {
	switch lang {
	case RU:
		switch n10, n100 := n%10, n%100; {
		case n10 == 1 && n100 != 11:
			return "one"
		case n10 >= 2 && n10 <= 4 && (n100 < 12 || n100 > 14):
			return "few"
		}
		return "many"
	case EN:
		if n == 1 {
			return "one"
		}
		return "many"
	}
	return "one"
}
