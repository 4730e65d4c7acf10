package intake

import (
	"strings"
	"testing"
	"time"
)

// TestSourceLabel: marketing's labels are kept, normalised; a tag that
// could carry anything else (an address, a phone number, a name, control
// characters, a long text) gives none.
func TestSourceLabel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"google", "google"},
		{" Google ", "google"},
		{"Google Ads", "google_ads"},
		{"google+ads", "google_ads"},
		{"2gis", "2gis"},
		{"black-friday_2026", "black-friday_2026"},
		{"instagram.com", "instagram.com"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"", ""},
		{"   ", ""},
		{strings.Repeat("a", 65), ""},
		{"test@example.com", ""},
		{"77010000000", ""},
		{"+7 701 000 00 00", ""},
		{"210840004064", ""},
		{"рассылка", ""},
		{"Тест Тестов", ""},
		{"news\nletter", ""},
		{"a/b", ""},
		{"utm=1&x=2", ""},
	} {
		got, ok := SourceLabel(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("SourceLabel(%q) = %q %v, want %q", c.in, got, ok, c.want)
		}
	}
}

// TestChoicesCheck: a filter naming what no lead can have is refused
// naming its parameter; a good one passes with its source normalised.
func TestChoicesCheck(t *testing.T) {
	t.Parallel()
	c := Choices{Products: []string{"acquiring", "pos"},
		Teams: []Team{{Name: "smb", Owners: []string{"aigerim", "daniyar"}}, {Name: "enterprise", Owners: []string{"olga"}}}}
	day := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		f     LeadFilter
		param string // "" for none
	}{
		{LeadFilter{}, ""},
		{LeadFilter{Team: "smb", Owner: "daniyar", Product: "pos", Source: " Google ", Since: day, Until: day}, ""},
		{LeadFilter{Owner: "olga"}, ""},
		{LeadFilter{Team: "retail"}, "team"},
		{LeadFilter{Owner: "nobody"}, "owner"},
		{LeadFilter{Team: "enterprise", Owner: "aigerim"}, "owner"},
		{LeadFilter{Product: "yacht"}, "product"},
		{LeadFilter{Source: "test@example.com"}, "utm_source"},
		{LeadFilter{Since: day, Until: day.Add(-time.Millisecond)}, "until"},
	} {
		f := tt.f
		err := c.Check(&f)
		e, _ := err.(*Error)
		switch {
		case tt.param == "" && err != nil:
			t.Errorf("%+v: %v, want it to pass", tt.f, err)
		case tt.param != "" && (e == nil || e.Code != EBadRequest || len(e.Fields) != 1 || !strings.Contains(e.Message, tt.param)):
			t.Errorf("%+v: %v, want bad_request naming %s", tt.f, err, tt.param)
		case tt.param != "" && e.Fields[tt.param].Key == "":
			t.Errorf("%+v: fields %v, want %s's message", tt.f, e.Fields, tt.param)
		case tt.param == "" && tt.f.Source != "" && f.Source != "google":
			t.Errorf("%+v: source %q after the check, want google", tt.f, f.Source)
		}
	}
}
