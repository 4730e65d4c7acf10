package templates

import "testing"

func TestParseLang(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Lang
		ok   bool
	}{
		{"kk", KK, true},
		{"ru", RU, true},
		{"en", EN, true},
		{"KK", KK, true},
		{"Ru", RU, true},
		{"", "", false},
		{"kz", "", false}, // only Negotiate forgives the country code
		{"kk-KZ", "", false},
		{" en", "", false},
		{"de", "", false},
		{"english", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseLang(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseLang(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		accept string
		def    Lang
		want   Lang
	}{
		{"query wins over header", "en", "kk-KZ,kk;q=0.9", RU, EN},
		{"query is case-insensitive", "KK", "en", RU, KK},
		{"invalid query falls to header", "de", "en-GB", RU, EN},
		{"kz query is not a code", "kz", "", RU, RU},
		{"empty everything gives default", "", "", RU, RU},
		{"default is returned as given", "", "", KK, KK},
		{"region tag kk-KZ", "", "kk-KZ", RU, KK},
		{"region tag ru-RU", "", "ru-RU", EN, RU},
		{"region tag en-GB", "", "en-GB", RU, EN},
		{"underscore locale", "", "ru_RU", EN, RU},
		{"upper case tag", "", "EN-US", RU, EN},
		{"kz means kk", "", "kz", RU, KK},
		{"kz with region", "", "kz-KZ;q=0.9, en;q=0.5", RU, KK},
		{"highest q wins over order", "", "en;q=0.5, kk;q=0.8, ru;q=0.7", RU, KK},
		{"equal q keeps the person's order", "", "en, kk", RU, EN},
		{"implicit q is 1", "", "ru;q=0.9, en", KK, EN},
		{"unsupported languages skipped", "", "de-DE, fr;q=0.9, ru;q=0.1", EN, RU},
		{"only unsupported gives default", "", "de-DE, fr;q=0.9", KK, KK},
		{"q=0 refuses a language", "", "kk;q=0, ru;q=0.1", EN, RU},
		{"q=0 only gives default", "", "en;q=0", RU, RU},
		{"wildcard stands for default", "", "de, *;q=0.5", KK, KK},
		{"wildcard below a supported language", "", "*;q=0.1, en;q=0.5", RU, EN},
		{"wildcard above a supported language", "", "en;q=0.3, *", KK, KK},
		{"wildcard cannot bring back a refused default", "", "ru;q=0, *, en;q=0.2", RU, EN},
		{"spaces around parameters", "", " ru ; q = 0.4 , kk ; q=0.6 ", EN, KK},
		{"malformed q skips only that entry", "", "kk;q=high, ru;q=0.3", EN, RU},
		{"q above one skips the entry", "", "kk;q=2, ru;q=0.3", EN, RU},
		{"negative q skips the entry", "", "kk;q=-1, ru;q=0.3", EN, RU},
		{"other parameters ignored", "", "kk;level=1;q=0.7, ru;q=0.6", EN, KK},
		{"garbage", "", ";;,,=;q=,", KK, KK},
		{"binary garbage", "", "\x00\xff;q=\x01", EN, EN},
		{"three-letter tag does not match", "", "kaz, rus", EN, EN},
		{"prefix is not a match", "", "english", RU, RU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Negotiate(tt.query, tt.accept, tt.def); got != tt.want {
				t.Errorf("Negotiate(%q, %q, %q) = %q, want %q", tt.query, tt.accept, tt.def, got, tt.want)
			}
		})
	}
}

// A header with more entries than anyone sends is cut, so the answer comes
// from the first entries only.
func TestNegotiateBoundsEntries(t *testing.T) {
	t.Parallel()
	header := ""
	for range maxAcceptEntries {
		header += "de,"
	}
	if got := Negotiate("", header+"kk", RU); got != RU {
		t.Errorf("entry past the limit was used: got %q, want %q", got, RU)
	}
	if got := Negotiate("", header[:len(header)-3]+"kk", RU); got != KK {
		t.Errorf("last entry within the limit was ignored: got %q, want %q", got, KK)
	}
}
