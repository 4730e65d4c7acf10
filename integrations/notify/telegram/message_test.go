package telegram

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paymtech/leadgate/integrations/crm"
)

func testLead() crm.Lead {
	return crm.Lead{
		ID:         "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e",
		EntityType: "legal_entity",
		Name:       "Test Testov",
		Phone:      "+77010000000",
		Email:      "test@example.com",
		Products:   []string{"acquiring", "payment_links"},
		Message:    "Please call Test Testov at +77010000001",
		Lang:       "ru",
		Assignment: &crm.Assignment{Rule: "kz-smb", Team: "SMB", Owner: "Test Managerov", CRMUserID: "17"},
		Risk:       crm.Risk{Score: 40, Signals: []string{"disposable_email"}},
	}
}

var testReceipt = crm.Receipt{System: "bitrix24", Ref: "4711", URL: "https://crm.example.com/crm/lead/details/4711/"}

func TestMessage(t *testing.T) {
	t.Parallel()
	ip := testLead()
	ip.EntityType = "sole_proprietor"
	ip.Assignment = &crm.Assignment{Owner: "Test Managerov"}
	ip.Risk = crm.Risk{}
	ip.Products = nil

	bare := crm.Lead{ID: "01964c2e-0000-7000-8000-000000000001", EntityType: "branch_office"}

	tests := []struct {
		name     string
		lead     crm.Lead
		receipt  crm.Receipt
		contacts bool
		want     string
	}{
		{
			name: "with contacts", lead: testLead(), receipt: testReceipt, contacts: true,
			want: "<b>Новая заявка</b> · Юрлицо\n" +
				"Имя: Test Testov\n" +
				"Продукты: acquiring, payment_links\n" +
				"Ответственный: SMB / Test Managerov\n" +
				"Риск: 40/100 (disposable_email)\n" +
				"Телефон: +77010000000\n" +
				"Email: test@example.com\n" +
				`<a href="https://crm.example.com/crm/lead/details/4711/">Открыть в CRM</a>`,
		},
		{
			name: "without contacts", lead: testLead(), receipt: testReceipt, contacts: false,
			want: "<b>Новая заявка</b> · Юрлицо\n" +
				"Имя: Test Testov\n" +
				"Продукты: acquiring, payment_links\n" +
				"Ответственный: SMB / Test Managerov\n" +
				"Риск: 40/100 (disposable_email)\n" +
				`<a href="https://crm.example.com/crm/lead/details/4711/">Открыть в CRM</a>`,
		},
		{
			name: "sole proprietor, owner only, no risk, no link", lead: ip,
			receipt: crm.Receipt{System: "webhook", Ref: ip.ID}, contacts: true,
			want: "<b>Новая заявка</b> · ИП\n" +
				"Имя: Test Testov\n" +
				"Ответственный: Test Managerov\n" +
				"Телефон: +77010000000\n" +
				"Email: test@example.com\n" +
				"В CRM: <code>01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e</code>",
		},
		{
			name: "nearly empty", lead: bare, receipt: crm.Receipt{System: "file"}, contacts: true,
			want: "<b>Новая заявка</b> · branch_office",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Message(tt.lead, tt.receipt, tt.contacts)
			if got != tt.want {
				t.Errorf("Message =\n%s\nwant\n%s", got, tt.want)
			}
			// The free text stays in the CRM, whatever the setting.
			if strings.Contains(got, "+77010000001") || strings.Contains(got, "Please call") {
				t.Errorf("Message includes the lead's free-text message:\n%s", got)
			}
			if !tt.contacts {
				for _, s := range []string{tt.lead.Phone, tt.lead.Email, "Телефон", "Email"} {
					if strings.Contains(got, s) {
						t.Errorf("Message without contacts contains %q:\n%s", s, got)
					}
				}
			}
		})
	}
}

func TestMessageEscaping(t *testing.T) {
	t.Parallel()
	l := testLead()
	l.Name = "<b>ТОО</b> & Co"
	l.Products = []string{"a<b>", "c&d"}
	l.Assignment = &crm.Assignment{Team: `"SMB" & partners`, Owner: "<i>Test</i>"}
	l.Risk.Signals = []string{"<script>"}
	l.Phone = "+7701<0000000"
	l.Email = "test&co@example.com"
	r := crm.Receipt{URL: `https://crm.example.com/lead?id=1&tab="main"`}

	got := Message(l, r, true)
	for _, want := range []string{
		"Имя: &lt;b&gt;ТОО&lt;/b&gt; &amp; Co\n",
		"Продукты: a&lt;b&gt;, c&amp;d\n",
		"Ответственный: &#34;SMB&#34; &amp; partners / &lt;i&gt;Test&lt;/i&gt;\n",
		"Риск: 40/100 (&lt;script&gt;)\n",
		"Телефон: +7701&lt;0000000\n",
		"Email: test&amp;co@example.com\n",
		`<a href="https://crm.example.com/lead?id=1&amp;tab=&#34;main&#34;">`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Message lacks %q:\n%s", want, got)
		}
	}
	if !telegramHTML(got) {
		t.Errorf("Message is not valid Telegram HTML:\n%s", got)
	}

	// The fake refuses what Telegram refuses: the escaped message goes
	// through, the raw name does not.
	fb := newFakeBot(t, nil)
	c := newTestClient(t, fb.URL, 0)
	if err := c.Send(t.Context(), got); err != nil {
		t.Errorf("Send(Message) = %v", err)
	}
	if err := c.Send(t.Context(), "Имя: "+l.Name); err == nil {
		t.Error("the fake accepted unescaped HTML; it cannot catch an escaping bug")
	}
}

func TestMessageLink(t *testing.T) {
	t.Parallel()
	long := "https://crm.example.com/" + strings.Repeat("a", 300)
	tests := []struct {
		name    string
		receipt crm.Receipt
		want    string // the message's last line
	}{
		{"https", crm.Receipt{Ref: "4711", URL: "https://crm.example.com/4711"}, `<a href="https://crm.example.com/4711">Открыть в CRM</a>`},
		{"http", crm.Receipt{Ref: "4711", URL: "http://crm.example.com/4711"}, `<a href="http://crm.example.com/4711">Открыть в CRM</a>`},
		{"javascript is not a link", crm.Receipt{Ref: "4711", URL: "javascript:alert(1)"}, "В CRM: <code>4711</code>"},
		{"relative is not a link", crm.Receipt{Ref: "4711", URL: "/crm/lead/4711"}, "В CRM: <code>4711</code>"},
		{"too long to keep whole", crm.Receipt{Ref: "4711", URL: long}, "В CRM: <code>4711</code>"},
		{"ref escaped", crm.Receipt{Ref: "lead<1>"}, "В CRM: <code>lead&lt;1&gt;</code>"},
		{"neither", crm.Receipt{System: "file"}, "Риск: 40/100 (disposable_email)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Message(testLead(), tt.receipt, false)
			if last := got[strings.LastIndexByte(got, '\n')+1:]; last != tt.want {
				t.Errorf("last line = %q, want %q", last, tt.want)
			}
		})
	}
}

func TestMessageTruncation(t *testing.T) {
	t.Parallel()

	t.Run("long name", func(t *testing.T) {
		t.Parallel()
		l := testLead()
		l.Name = strings.Repeat("Я", 500)
		got := Message(l, testReceipt, false)
		if want := "\nИмя: " + strings.Repeat("Я", 119) + "…\n"; !strings.Contains(got, want) {
			t.Errorf("Message =\n%s\nwant the name cut to 119 characters and an ellipsis", got)
		}
	})

	t.Run("white space folded", func(t *testing.T) {
		t.Parallel()
		l := testLead()
		l.Name = "  Test\nTestov\t\r\n LLP  "
		if got := Message(l, testReceipt, false); !strings.Contains(got, "\nИмя: Test Testov LLP\n") {
			t.Errorf("Message =\n%s\nwant the name on one line", got)
		}
	})

	t.Run("worst case", func(t *testing.T) {
		t.Parallel()
		huge := strings.Repeat(`&<"'`, 1000) + "\xff" // escaping multiplies it; invalid UTF-8 too
		many := make([]string, 200)
		for i := range many {
			many[i] = huge
		}
		l := crm.Lead{
			EntityType: huge, Name: huge, Phone: huge, Email: huge, Products: many, Message: huge,
			Assignment: &crm.Assignment{Team: huge, Owner: huge},
			Risk:       crm.Risk{Score: 1 << 40, Signals: many},
		}
		// The longest link that is still kept whole.
		r := crm.Receipt{Ref: huge, URL: "https://crm.example.com/" + strings.Repeat("&", 45)}
		got := Message(l, r, true)
		if n := utf8.RuneCountInString(got); n > 1000 {
			t.Errorf("Message is %d characters, want at most 1000", n)
		}
		if !strings.Contains(got, "<a href=") {
			t.Errorf("the link was dropped:\n%s", got)
		}
		if !strings.Contains(got, "Риск: 100/100") {
			t.Errorf("risk score not capped at 100:\n%s", got)
		}
		if !telegramHTML(got) {
			t.Errorf("clipping broke an entity:\n%s", got)
		}
	})
}

func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"", 5, ""},
		{" \n\t", 5, ""},
		{"a&b", 7, "a&amp;b"},
		{"a&b", 6, "a…"},
		{"a&bc", 7, "a&amp;…"},
		{"a&b", 5, "a…"}, // never "a&am…"
		{"&&", 6, "&amp;…"},
		{"ab cd", 4, "ab…"}, // no space before the ellipsis
		{"Тест Тестов", 6, "Тест…"},
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.limit); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}
