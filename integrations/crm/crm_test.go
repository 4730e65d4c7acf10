package crm_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations/crm"
)

// The JSON form of a Lead is a public format (the webhook's data object):
// these cases pin every field name and which fields are left out when empty.
func TestLeadJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		lead crm.Lead
		want string
	}{
		{
			name: "every field",
			lead: crm.Lead{
				ID: "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e", EntityType: "legal_entity", Name: "Test Testov",
				Phone: "+77010000000", Email: "test@example.com", TaxID: "000000000000",
				Products: []string{"acquiring", "payment_links"}, Message: "Cards online.", Lang: "ru", ReceivedAt: at,
				Consent: crm.Consent{Processing: true, Marketing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy", GivenAt: at},
				Metadata: crm.Metadata{
					IP: "203.0.113.7", UserAgent: "Mozilla/5.0", Browser: "Firefox 137.0", OS: "Linux", Timezone: "Asia/Almaty",
					PageURL: "https://example.com/connect", UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "spring",
					Cookies: map[string]string{"_ga": "GA1.1.1.1", "_ym_uid": "1"},
				},
			},
			want: `{"id":"01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e","entity_type":"legal_entity","name":"Test Testov",` +
				`"phone":"+77010000000","email":"test@example.com","tax_id":"000000000000","products":["acquiring","payment_links"],` +
				`"message":"Cards online.","lang":"ru","received_at":"2025-04-15T09:30:00Z",` +
				`"consent":{"processing":true,"marketing":true,"policy_version":"1","policy_url":"https://example.com/privacy","given_at":"2025-04-15T09:30:00Z"},` +
				`"metadata":{"ip":"203.0.113.7","user_agent":"Mozilla/5.0","browser":"Firefox 137.0","os":"Linux","timezone":"Asia/Almaty",` +
				`"page_url":"https://example.com/connect","utm_source":"newsletter","utm_medium":"email","utm_campaign":"spring",` +
				`"cookies":{"_ga":"GA1.1.1.1","_ym_uid":"1"}}}`,
		},
		{
			name: "optional fields empty",
			lead: crm.Lead{
				ID: "x", EntityType: "sole_proprietor", Phone: "+77010000000", Email: "test@example.com", Lang: "kk", ReceivedAt: at,
				Products: []string{},
				Consent:  crm.Consent{Processing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy", GivenAt: at},
				Metadata: crm.Metadata{Cookies: map[string]string{}},
			},
			want: `{"id":"x","entity_type":"sole_proprietor","phone":"+77010000000","email":"test@example.com","lang":"kk",` +
				`"received_at":"2025-04-15T09:30:00Z",` +
				`"consent":{"processing":true,"marketing":false,"policy_version":"1","policy_url":"https://example.com/privacy","given_at":"2025-04-15T09:30:00Z"},` +
				`"metadata":{"ip":""}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(tt.lead)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestReceiptJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    crm.Receipt
		want string
	}{
		{crm.Receipt{System: "webhook", Ref: "abc"}, `{"system":"webhook","ref":"abc"}`},
		{crm.Receipt{System: "file"}, `{"system":"file"}`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal = %s, want %s", got, tt.want)
			}
		})
	}
}
