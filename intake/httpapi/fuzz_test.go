package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

// decodeFuzzed runs decodeForm on body sent as contentType and checks what
// holds for every input: no panic, and a failure is an *intake.Error of a
// code the contract answers with, whose message quotes nothing of a body
// long enough to be told apart.
func decodeFuzzed(t *testing.T, contentType string, body []byte) (ok bool) {
	r := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", contentType)
	f, err := decodeForm(httptest.NewRecorder(), r)
	if err == nil {
		if f == nil {
			t.Fatal("no form and no error")
		}
		return true
	}
	var e *intake.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, not *intake.Error", err, err)
	}
	switch e.Code {
	case intake.EBadRequest, intake.EInvalid, intake.ETooLarge:
	default:
		t.Fatalf("code %q for a body", e.Code)
	}
	if len(body) >= 12 && strings.Contains(e.Message, string(body)) {
		t.Fatalf("message %q quotes the body", e.Message)
	}
	return false
}

// FuzzDecodeJSON: a JSON body decodes or is refused cleanly; one that
// decodes holds no key twice and decodes to the same form again from its
// own encoding.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		validJSON, `{}`, `[]`, `null`, `{"email":"a","email":"b"}`, `{"products":["acquiring","pos"]}`,
		`{"consent_processing":"on","consent_marketing":1}`, `{"a":{"b":1,"b":2}}`, `{"Email":"x","email":"y"}`,
		`{"phone":12}`, `{`, `"x"`, "\xff", `{"message":"\u2028"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !decodeFuzzed(t, "application/json", body) {
			return
		}
		if key, err := repeatedKey(body); err != nil || key != "" {
			t.Fatalf("accepted a body with the key %q given twice (%v)", key, err)
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		first, _ := decodeForm(httptest.NewRecorder(), r)
		again, _ := json.Marshal(first)
		r = httptest.NewRequest(http.MethodPost, "/v1/leads", strings.NewReader(string(again)))
		r.Header.Set("Content-Type", "application/json")
		second, err := decodeForm(httptest.NewRecorder(), r)
		if err != nil || !reflect.DeepEqual(first, second) {
			t.Fatalf("form %+v re-encoded as %s decodes to %+v (%v)", first, again, second, err)
		}
	})
}

// FuzzDecodeForm: an urlencoded body decodes or is refused cleanly; one
// that decodes named no single-valued field twice.
func FuzzDecodeForm(f *testing.F) {
	for _, seed := range []string{
		"entity_type=legal_entity&phone=87010000001&email=test%40example.com&consent_processing=on",
		"email=a&email=b", "products=pos&products=acquiring&products[]=payouts", "%zz", "a=%", "=&=&&",
		"consent_processing=1&consent_marketing=true", "name=%E2%80%A8", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !decodeFuzzed(t, "application/x-www-form-urlencoded", body) {
			return
		}
		v, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("accepted a body url.ParseQuery refuses: %v", err)
		}
		for _, name := range singleValued {
			if len(v[name]) > 1 {
				t.Fatalf("accepted %q given %d times", name, len(v[name]))
			}
		}
	})
}

// FuzzRepeatedKeyScan: on every well-formed body the byte walk that intake
// takes finds what encoding/json's token stream finds, the same key or none.
func FuzzRepeatedKeyScan(f *testing.F) {
	for _, seed := range []string{
		validJSON, `{}`, `[]`, `5`, `"a"`, `null`, ` {"a":1} `,
		`{"a":{},"b":[],"c":{"a":1}}`, `{"a":1,"b":{"c":{"d":[{"e":1,"E":2}]}}}`, `[{"a":1},{"a":1,"a":2}]`,
		`{"ſ":1,"S":2}`, `{"\u0061":1,"a":2}`, `{"a\\":1,"a\\":2}`, `{"a\"":1,"a":2,"a\"":3}`,
		`{"a":"}{[\",","b":["{\"a\":1}"],"a":[]}`, "{\"\xff\":1,\"\xfe\":2}", `{"e":1,"m":{"e":1},"e":2}`,
		`[[{"x":[{"y":1,"y":2}]}]]`, `{"` + strings.Repeat("к", 40) + `":1,"` + strings.Repeat("к", 40) + `":2}`,
		`{"a":1,"b":2,"c":-1.5e3,"d":true,"e":false,"f":null,"g":"A"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		want, err := tokenRepeatedKey(body)
		if got := scanRepeatedKey(body); err != nil || got != want {
			t.Fatalf("scanRepeatedKey = %q, tokenRepeatedKey = %q, %v", got, want, err)
		}
	})
}
