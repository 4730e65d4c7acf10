package crm_test

import (
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations/crm"
)

var at = time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)

// fullLead has every field set.
func fullLead() crm.Lead {
	return crm.Lead{
		ID: "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e", EntityType: "legal_entity", Name: "Test Testov",
		Phone: "+77010000000", Email: "test@example.com", TaxID: "000000000000",
		Products: []string{"acquiring", "payment_links"}, Message: "Cards online.", Lang: "ru", ReceivedAt: at,
		Consent: crm.Consent{Processing: true, Marketing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy", GivenAt: at},
		Metadata: crm.Metadata{
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0", Browser: "Firefox 137.0", OS: "Linux", Timezone: "Asia/Almaty",
			PageURL: "https://example.com/connect", UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "spring",
			Cookies: map[string]string{"_ga": "GA1.1.1.1", "_ym_uid": "1"},
		},
		Assignment: &crm.Assignment{Rule: "pos-legal", Team: "enterprise", Owner: "olga", CRMUserID: "7"},
		Risk:       crm.Risk{Score: 50, Signals: []string{"no_script", "repeat_ip"}},
	}
}

// The JSON form of a Lead is a public format (the webhook's data object):
// these cases pin every field name and which fields are left out when empty.
func TestLeadJSON(t *testing.T) {
	t.Parallel()
	fallback := fullLead()
	fallback.Assignment = &crm.Assignment{Rule: "fallback", Team: "smb", Owner: "aigerim"}
	fallback.Risk = crm.Risk{Signals: []string{}}
	tests := []struct {
		name string
		lead crm.Lead
		want string
	}{
		{
			name: "every field",
			lead: fullLead(),
			want: `{"id":"01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e","entity_type":"legal_entity","name":"Test Testov",` +
				`"phone":"+77010000000","email":"test@example.com","tax_id":"000000000000","products":["acquiring","payment_links"],` +
				`"message":"Cards online.","lang":"ru","received_at":"2025-04-15T09:30:00Z",` +
				`"consent":{"processing":true,"marketing":true,"policy_version":"1","policy_url":"https://example.com/privacy","given_at":"2025-04-15T09:30:00Z"},` +
				`"metadata":{"ip":"203.0.113.7","user_agent":"Mozilla/5.0","browser":"Firefox 137.0","os":"Linux","timezone":"Asia/Almaty",` +
				`"page_url":"https://example.com/connect","utm_source":"newsletter","utm_medium":"email","utm_campaign":"spring",` +
				`"cookies":{"_ga":"GA1.1.1.1","_ym_uid":"1"}},` +
				`"assignment":{"rule":"pos-legal","team":"enterprise","owner":"olga","crm_user_id":"7"},` +
				`"risk":{"score":50,"signals":["no_script","repeat_ip"]}}`,
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
				`"metadata":{"ip":""},"risk":{"score":0}}`,
		},
		{
			name: "fallback owner without a CRM user, nothing risky",
			lead: fallback,
			want: `{"id":"01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e","entity_type":"legal_entity","name":"Test Testov",` +
				`"phone":"+77010000000","email":"test@example.com","tax_id":"000000000000","products":["acquiring","payment_links"],` +
				`"message":"Cards online.","lang":"ru","received_at":"2025-04-15T09:30:00Z",` +
				`"consent":{"processing":true,"marketing":true,"policy_version":"1","policy_url":"https://example.com/privacy","given_at":"2025-04-15T09:30:00Z"},` +
				`"metadata":{"ip":"203.0.113.7","user_agent":"Mozilla/5.0","browser":"Firefox 137.0","os":"Linux","timezone":"Asia/Almaty",` +
				`"page_url":"https://example.com/connect","utm_source":"newsletter","utm_medium":"email","utm_campaign":"spring",` +
				`"cookies":{"_ga":"GA1.1.1.1","_ym_uid":"1"}},` +
				`"assignment":{"rule":"fallback","team":"smb","owner":"aigerim"},` +
				`"risk":{"score":0}}`,
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

// packageDoc returns the package comment of crm.go.
func packageDoc(t *testing.T) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "crm.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	return f.Doc.Text()
}

// documentedField is a row of the package comment's field table: a
// name, dotted below the top level, then its type.
var documentedField = regexp.MustCompile(`^\t([a-z_]+(?:\.[a-z_]+)?)\s+(?:string|bool|time|int|object|\[\]string)\s`)

// The package comment's table is the receivers' reference: it must name
// every field a Lead's JSON has, and no other.
func TestPackageCommentListsEveryField(t *testing.T) {
	t.Parallel()
	var documented []string
	for line := range strings.Lines(packageDoc(t)) {
		if m := documentedField.FindStringSubmatch(line); m != nil {
			documented = append(documented, m[1])
		}
	}
	b, err := json.Marshal(fullLead())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var fields []string
	for k, v := range doc {
		obj, ok := v.(map[string]any)
		if !ok {
			fields = append(fields, k)
			continue
		}
		for sub := range maps.Keys(obj) {
			fields = append(fields, k+"."+sub)
		}
	}
	slices.Sort(documented)
	slices.Sort(fields)
	if !slices.Equal(documented, fields) {
		t.Errorf("the package comment documents\n%q\nthe JSON has\n%q", documented, fields)
	}
}

// The package comment's example must be a Lead as leadgate writes it: no
// field it lacks, none misspelt, in the order it is sent.
func TestPackageCommentExample(t *testing.T) {
	t.Parallel()
	doc := packageDoc(t)
	start, end := strings.Index(doc, "\t{\n"), strings.LastIndex(doc, "\t}\n")
	if start < 0 || end < start {
		t.Fatalf("no example in the package comment:\n%s", doc)
	}
	example := []byte(doc[start : end+len("\t}\n")])
	dec := json.NewDecoder(bytes.NewReader(example))
	dec.DisallowUnknownFields()
	var l crm.Lead
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("the example does not decode as a Lead: %v", err)
	}
	if l.Assignment == nil || l.Risk.Score == 0 || len(l.Risk.Signals) == 0 {
		t.Errorf("the example leaves out the assignment or the risk: %+v", l)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, example); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the example, decoded and encoded again, reads\n%s\nwant\n%s", got, want.Bytes())
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
		{crm.Receipt{System: "bitrix24", Ref: "17", URL: "https://example.bitrix24.kz/crm/lead/details/17/"},
			`{"system":"bitrix24","ref":"17","url":"https://example.bitrix24.kz/crm/lead/details/17/"}`},
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

func TestEntityLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"legal_entity": "Юрлицо", "sole_proprietor": "ИП", "": "", "LEGAL_ENTITY": "", "partnership": ""} {
		if got := crm.EntityLabel(in); got != want {
			t.Errorf("EntityLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
