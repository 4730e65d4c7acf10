package templates

import (
	"strings"
	"testing"
)

// TestRenderConsole renders every console page but the lead's in every
// language, before and after sign-in: the layout and each page must execute
// with an empty Data (a page with nothing to list), and the sign-out form
// must carry the session's csrf field. The lead's page needs an
// intake.Lead, which this package does not know; intake/httpapi's console
// tests and the browser tests render it.
func TestRenderConsole(t *testing.T) {
	t.Parallel()
	data := map[string]any{"login": struct{ Error string }{}, "error": struct{ Title, Body string }{"T", "B"}}
	for _, name := range ConsolePages {
		if name == "lead" || name == "campaign" || name == "campaign_new" || name == "notice" || name == "notice_new" {
			continue // their data are the console's types: intake/httpapi's tests render them
		}
		for _, l := range languages {
			for _, signedIn := range []bool{false, true} {
				p := ConsolePage{Lang: l, Path: "/admin/", Data: data[name]}
				if p.Data == nil {
					p.Data = emptyConsoleData(name)
				}
				if signedIn {
					p.Holder, p.CSRF = "Test Holder", "csrf-token-of-the-session"
					p.Nav = []ConsoleNav{{Href: "/admin/?lang=" + string(l), Label: "Home", Current: true}}
				}
				var b strings.Builder
				if err := RenderConsole(&b, name, p); err != nil {
					t.Errorf("%s %s: %v", name, l, err)
					continue
				}
				out := b.String()
				if !strings.Contains(out, `<html lang="`+string(l)+`">`) {
					t.Errorf("%s %s: no html lang", name, l)
				}
				if got := strings.Contains(out, `name="csrf" value="csrf-token-of-the-session"`); got != signedIn {
					t.Errorf("%s %s signed in %v: csrf field present %v", name, l, signedIn, got)
				}
			}
		}
	}
	if err := RenderConsole(&strings.Builder{}, "no-such-page", ConsolePage{Lang: RU}); err == nil {
		t.Error("an unknown console page rendered")
	}
}

// emptyConsoleData is a page's data with nothing in it, of the shape the
// console's handlers give (the templates read fields by name).
func emptyConsoleData(name string) any {
	switch name {
	case "home":
		return struct {
			Queues    []struct{}
			ShowDue   bool // privacy console
			Due       []struct{}
			Campaigns []struct{}
			Health    *struct{} // admin: the queues' health
		}{}
	case "campaigns", "notices":
		return struct{ Rows []struct{} }{}
	case "audit":
		return struct {
			Holder, Action, From, To, Error, Next string
			Rows                                  []struct{}
		}{}
	case "queues":
		return struct{ Sizes, Failed []struct{} }{}
	case "leads":
		return struct {
			States, Teams, Owners, Products []struct{}
			Since, Until, Source, Next      string
			Error                           string
			Rows                            []struct{}
		}{}
	// Privacy console: the desk, a person's page (nothing held) and the
	// erasure's confirmation.
	case "subjects":
		return struct {
			Error          string
			NotFound       bool
			Choices, Lists []struct{}
		}{}
	case "person":
		return struct{ Print, Held bool }{}
	case "person_erase":
		return struct {
			Name, Handle string
			Counts       struct{ Leads, Consents, CRM int }
		}{}
	}
	return nil
}
