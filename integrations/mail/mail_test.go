package mail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/integrations/mail"
)

// valid returns a Message that passes Validate, for cases to break one rule
// of.
func valid() mail.Message {
	return mail.Message{
		From:    mail.Address{Email: "noreply@example.com", Name: "Leadgate"},
		To:      []mail.Address{{Email: "test@example.com", Name: "Test Testov"}, {Email: "test2@example.com"}},
		Subject: "Ваша заявка принята",
		Text:    "Сәлеметсіз бе!",
		HTML:    "<p>Сәлеметсіз бе!</p>",
		Headers: map[string]string{"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
		PerRecipient: []mail.Personal{
			{Headers: map[string]string{"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=a1>"}},
			{Headers: map[string]string{"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=b2>"}},
		},
		Category:   "campaign",
		ASMGroupID: 42,
		Ref:        "cmp_01HZX-3",
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	many := make([]mail.Address, mail.MaxRecipients+1)
	for i := range many {
		many[i] = mail.Address{Email: "test@example.com"}
	}
	cases := []struct {
		name   string
		change func(m *mail.Message)
		reason string // "" for a valid message; else a part of the expected error
		secret string // a value that must not appear in the error
	}{
		{"valid", func(*mail.Message) {}, "", ""},
		{"only text", func(m *mail.Message) { m.HTML = "" }, "", ""},
		{"only html", func(m *mail.Message) { m.Text = "" }, "", ""},
		{"no per-recipient headers", func(m *mail.Message) { m.PerRecipient = nil }, "", ""},
		{"kazakh names and unicode address", func(m *mail.Message) {
			m.To[0] = mail.Address{Email: "тест@мысал.kz", Name: "Тест Тестов, ЖШС «Сынақ»"}
		}, "", ""},
		{"exactly 1000 recipients", func(m *mail.Message) { m.To = many[:1000]; m.PerRecipient = nil }, "", ""},
		{"1001 recipients", func(m *mail.Message) { m.To = many; m.PerRecipient = nil }, "more than 1000 recipients", ""},
		{"no recipients", func(m *mail.Message) { m.To = nil; m.PerRecipient = nil }, "no recipients", ""},
		{"sender with display name", func(m *mail.Message) { m.From.Email = "Leadgate <noreply@example.com>" }, "sender address", "noreply"},
		{"recipient address injection", func(m *mail.Message) { m.To[1].Email = "test@example.com\r\nBcc: victim@example.com" }, "recipient address", "victim"},
		{"recipient address with comment", func(m *mail.Message) { m.To[1].Email = "test@example.com (x)" }, "recipient address", "test@"},
		{"recipient name with line break", func(m *mail.Message) { m.To[0].Name = "Test\r\nBcc: victim@example.com" }, "recipient name", "victim"},
		{"recipient name with line separator", func(m *mail.Message) { m.To[0].Name = "Test\u2028Testov" }, "recipient name", "Testov"},
		{"sender name with newline", func(m *mail.Message) { m.From.Name = "Lead\ngate" }, "sender name", "gate"},
		{"empty subject", func(m *mail.Message) { m.Subject = "  " }, "empty subject", ""},
		{"subject with line break", func(m *mail.Message) { m.Subject = "Hello\r\nBcc: victim@example.com" }, "subject", "victim"},
		{"subject too long", func(m *mail.Message) { m.Subject = strings.Repeat("ә", 256) }, "subject", ""},
		{"no body", func(m *mail.Message) { m.Text, m.HTML = "", "" }, "no body", ""},
		{"body not UTF-8", func(m *mail.Message) { m.Text = "\xff" }, "UTF-8", ""},
		{"header value with CR LF", func(m *mail.Message) { m.Headers["X-Campaign"] = "a\r\nBcc: victim@example.com" }, "line break", "victim"},
		{"header value with bare LF", func(m *mail.Message) { m.Headers["X-Campaign"] = "a\nb" }, "line break", ""},
		{"per-recipient header value with CR", func(m *mail.Message) {
			m.PerRecipient[1].Headers["List-Unsubscribe"] = "<https://x/\r>"
		}, "line break", ""},
		{"header value not ASCII", func(m *mail.Message) { m.Headers["X-Name"] = "Тестов" }, "printable ASCII", "Тестов"},
		{"header name with colon", func(m *mail.Message) { m.Headers["X-A:B"] = "1" }, "field name", ""},
		{"header name with space", func(m *mail.Message) { m.Headers["X A"] = "1" }, "field name", ""},
		{"reserved header", func(m *mail.Message) { m.Headers["bcc"] = "victim@example.com" }, "reserved", "victim"},
		{"header repeated in another case", func(m *mail.Message) { m.Headers["list-unsubscribe-post"] = "x" }, "repeated", ""},
		{"header line too long", func(m *mail.Message) { m.Headers["X-Long"] = strings.Repeat("a", 991) }, "998", ""},
		{"per-recipient count mismatch", func(m *mail.Message) { m.PerRecipient = m.PerRecipient[:1] }, "per-recipient", ""},
		{"personal category", func(m *mail.Message) { m.Category = "test@example.com" }, "category", "test@"},
		{"negative group", func(m *mail.Message) { m.ASMGroupID = -1 }, "unsubscribe group", ""},
		{"ref with path", func(m *mail.Message) { m.Ref = "../../etc/passwd" }, "ref", "passwd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := valid()
			tc.change(&m)
			err := m.Validate()
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, mail.ErrInvalid) {
				t.Fatalf("Validate = %v, want an error wrapping ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Validate = %q, want it to mention %q", err, tc.reason)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("Validate = %q quotes the offending value", err)
			}
		})
	}
}
