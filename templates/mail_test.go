package templates

import (
	"strings"
	"testing"
)

func TestSalesEmail(t *testing.T) {
	t.Parallel()
	l := SalesLead{ID: "lead-1", Entity: "Юрлицо", Name: "ТОО <b>Тест</b>\nBcc: x@example.com",
		Products: []string{"Интернет-эквайринг", "POS-терминалы"}, Owner: "smb / aigerim",
		RiskScore: 40, RiskSignals: []string{"fast_submit"}, CRMURL: "https://b24.example.kz/crm/lead/details/7/"}
	subject, text, html, err := SalesEmail(l)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(subject, "\r\n") || !strings.HasPrefix(subject, "Новая заявка: Юрлицо — ТОО <b>Тест</b> Bcc:") {
		t.Errorf("subject = %q: one line, with the entity and name", subject)
	}
	for _, want := range []string{"Интернет-эквайринг, POS-терминалы", "smb / aigerim", "40/100 (fast_submit)",
		"Открыть в CRM: https://b24.example.kz/crm/lead/details/7/", "lead-1"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(html, "<b>Тест</b>") || !strings.Contains(html, "&lt;b&gt;Тест&lt;/b&gt;") {
		t.Error("the HTML body does not escape the name")
	}
	if !strings.Contains(html, `href="https://b24.example.kz/crm/lead/details/7/"`) {
		t.Error("the HTML body lacks the CRM link")
	}

	_, text, _, _ = SalesEmail(SalesLead{ID: "lead-2", Entity: "ИП", CRMRef: "lead-2.json"})
	if strings.Contains(text, "Риск") || strings.Contains(text, "Ответственный") || !strings.Contains(text, "В CRM: lead-2.json") {
		t.Errorf("a minimal lead shows empty lines or no reference:\n%s", text)
	}
}
