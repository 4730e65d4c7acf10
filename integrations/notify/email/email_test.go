package email_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/integrations/notify/email"
)

// Channel is a jobs.SalesChannel; jobs cannot be imported here, so the
// interface is spelled out.
var _ interface {
	Name() string
	Notify(context.Context, crm.Lead, crm.Receipt) error
} = (*email.Channel)(nil)

// mailer is a mail.Mailer that checks each Message as the drivers do and
// records it, or answers SendFn's error.
type mailer struct {
	SendFn func(mail.Message) error
	mu     sync.Mutex
	sent   []mail.Message
}

var _ mail.Mailer = (*mailer)(nil)

func (m *mailer) Send(_ context.Context, msg mail.Message) error {
	if err := msg.Validate(); err != nil {
		return err
	}
	if m.SendFn != nil {
		if err := m.SendFn(msg); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// applicant is an obviously fake person with distinctive contacts, so a
// search of the email for them cannot match anything else.
func applicant() crm.Lead {
	return crm.Lead{
		ID: "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e", EntityType: "legal_entity", Name: "Тестовая Компания Зулейха",
		Phone: "+77010000007", Email: "zuleikha.fake@example.com", TaxID: "210840004064",
		Products: []string{"acquiring", "pos"}, Message: "Хотим подключить эквайринг ТЕСТ", Lang: "ru",
		Assignment: &crm.Assignment{Rule: "fallback", Team: "smb", Owner: "aigerim", CRMUserID: "12"},
		Risk:       crm.Risk{Score: 40, Signals: []string{"fast_submit"}},
	}
}

func setup(t *testing.T) (*email.Channel, *mailer) {
	t.Helper()
	m := &mailer{}
	return &email.Channel{Mailer: m, From: mail.Address{Email: "leadgate@example.kz", Name: "leadgate"},
		To: mail.Address{Email: "sales@example.kz"}}, m
}

func TestName(t *testing.T) {
	t.Parallel()
	if ch, _ := setup(t); ch.Name() != "email" {
		t.Errorf("Name() = %q, want email: it names queued tasks and disclosure records", ch.Name())
	}
}

func TestNotify(t *testing.T) {
	t.Parallel()
	ch, m := setup(t)
	receipt := crm.Receipt{System: "bitrix24", Ref: "4711", URL: "https://b24.example.kz/crm/lead/details/4711/"}
	if err := ch.Notify(t.Context(), applicant(), receipt); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 {
		t.Fatalf("sent %d messages, want 1", len(m.sent))
	}
	msg := m.sent[0]
	if len(msg.To) != 1 || msg.To[0] != ch.To || msg.From != ch.From {
		t.Errorf("from %v to %v, want from %v to %v alone", msg.From, msg.To, ch.From, ch.To)
	}
	if msg.Category != "sales" || msg.Ref != applicant().ID {
		t.Errorf("category %q, ref %q; want sales and the lead id", msg.Category, msg.Ref)
	}
	if want := "Новая заявка: Юрлицо — Тестовая Компания Зулейха"; msg.Subject != want {
		t.Errorf("subject = %q, want %q", msg.Subject, want)
	}
	for _, want := range []string{"Интернет-эквайринг, POS-терминалы", "smb / aigerim", "40/100 (fast_submit)",
		"Открыть в CRM: " + receipt.URL, applicant().ID} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, msg.Text)
		}
	}
	if !strings.Contains(msg.HTML, `href="`+receipt.URL+`"`) {
		t.Errorf("the HTML body lacks the CRM link:\n%s", msg.HTML)
	}
	all := strings.ToLower(msg.Subject + msg.Text + msg.HTML)
	for _, contact := range []string{"zuleikha", "7010000007", "210840004064", "хотим подключить"} {
		if strings.Contains(all, contact) {
			t.Errorf("the sales email carries the applicant's %q", contact)
		}
	}
}

func TestNotifySoleProprietorWithoutLink(t *testing.T) {
	t.Parallel()
	ch, m := setup(t)
	l := applicant()
	l.EntityType, l.Name, l.Assignment, l.Risk = "sole_proprietor", "", nil, crm.Risk{}
	if err := ch.Notify(t.Context(), l, crm.Receipt{System: "file", Ref: l.ID + ".json"}); err != nil {
		t.Fatal(err)
	}
	msg := m.sent[0]
	if msg.Subject != "Новая заявка: ИП" {
		t.Errorf("subject = %q, want the entity alone", msg.Subject)
	}
	if !strings.Contains(msg.Text, "В CRM: "+l.ID+".json") || strings.Contains(msg.Text, "Ответственный") ||
		strings.Contains(msg.Text, "Риск") {
		t.Errorf("text shows empty lines or no reference:\n%s", msg.Text)
	}
}

// A refused send keeps its kind: jobs.Notifier records a permanent refusal
// and retries anything else.
func TestNotifyKeepsTheMailersError(t *testing.T) {
	t.Parallel()
	ch, m := setup(t)
	refused := &integrations.Error{System: "sendgrid", Op: "mail send", Status: 400, Kind: integrations.Permanent}
	m.SendFn = func(mail.Message) error { return refused }
	err := ch.Notify(t.Context(), applicant(), crm.Receipt{System: "file", Ref: "x"})
	if !errors.Is(err, refused) || integrations.KindOf(err) != integrations.Permanent {
		t.Errorf("Notify = %v, want the mailer's permanent error", err)
	}
}
