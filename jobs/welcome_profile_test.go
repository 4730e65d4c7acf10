package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/templates"
)

// request is one obviously fake request for the address every test of this
// file uses: the name and language a campaign would use if it became the
// person's profile.
type request struct {
	name, lang string
	marketing  bool
}

const profileAddress = "test.profile@example.com"

// ask stores r for profileAddress (another phone each time: never a
// duplicate) and returns the stored lead.
func (f *welcomeFixture) ask(t *testing.T, n int, r request) *intake.Lead {
	t.Helper()
	meta := intake.Metadata{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
	adm, err := f.store.Leads.Accept(context.Background(), intake.Application{
		Submission: &intake.Submission{EntityType: intake.SoleProprietor, Name: r.name, Phone: fmt.Sprintf("+7701300%04d", n),
			Email: profileAddress, EmailKey: profileAddress, Products: []string{"acquiring"}, Lang: r.lang,
			ConsentMarketing: r.marketing},
		Consent: intake.Consent{Processing: true, Marketing: r.marketing, PolicyVersion: "2025-01", GivenAt: f.now.UTC(),
			IP: meta.IP, UserAgent: meta.UserAgent},
		Meta: meta, DoubleOptIn: true,
		PerIP: intake.Limit{N: 100, Per: time.Hour}, PerEmail: intake.Limit{N: 100, Per: time.Hour},
	})
	if err != nil || adm.Duplicate {
		t.Fatalf("Accept = %+v, %v; want a new lead", adm, err)
	}
	return f.get(t, adm.ID)
}

// nameAndLang is what the person's profile says now.
func (f *welcomeFixture) nameAndLang(t *testing.T, person string) (string, string) {
	t.Helper()
	s, err := f.store.Subjects.Subject(context.Background(), person)
	if err != nil {
		t.Fatal(err)
	}
	return s.Profile.Name, s.Profile.Lang
}

func (f *welcomeFixture) checkNameAndLang(t *testing.T, person string, want request, when string) {
	t.Helper()
	if name, lang := f.nameAndLang(t, person); name != want.name || lang != want.lang {
		t.Fatalf("%s: profile = %q %s, want %q %s", when, name, lang, want.name, want.lang)
	}
}

// follow is the person posting the confirmation page of a link of theirs.
func (f *welcomeFixture) follow(t *testing.T, person string) {
	t.Helper()
	ok, err := f.store.People.ConfirmMarketing(context.Background(), person, intake.Proof{At: f.now, IP: "203.0.113.9"})
	if err != nil || !ok {
		t.Fatalf("ConfirmMarketing = %v, %v", ok, err)
	}
}

// nextDay lets the once-a-day claims of mail to the person lapse.
func (f *welcomeFixture) nextDay(t *testing.T) {
	t.Helper()
	keys, _ := f.rdb.Keys(context.Background(), "lg:sent:*").Result()
	if len(keys) > 0 {
		f.rdb.Del(context.Background(), keys...)
	}
}

var (
	subscriberRequest = request{name: "Тест Подписчиков", lang: "ru", marketing: true}
	ownChange         = request{name: "Test Podpischikov", lang: "en"}
	strangersRequest  = request{name: "Stranger Testname", lang: "kk", marketing: true}
)

// subscribe makes profileAddress a confirmed subscriber through the link,
// as the person would, and returns their first lead.
func (f *welcomeFixture) subscribe(t *testing.T) *intake.Lead {
	t.Helper()
	first := f.ask(t, 1, subscriberRequest)
	if err := f.w.RequestConfirmation(context.Background(), optinTask(first.ID)); err != nil {
		t.Fatal(err)
	}
	f.follow(t, first.Person)
	f.checkNameAndLang(t, first.Person, subscriberRequest, "subscribed")
	return first
}

func TestWelcomerMailsASubscribersChangeForConfirmation(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	first := f.subscribe(t)
	f.nextDay(t)

	change := f.ask(t, 2, ownChange) // the box not ticked: a change of details still needs the link
	f.checkNameAndLang(t, first.Person, subscriberRequest, "change requested")
	if err := f.w.RequestConfirmation(ctx, optinTask(change.ID)); err != nil {
		t.Fatalf("RequestConfirmation: %v", err)
	}
	sent := f.mailer.delivered()
	if len(sent) != 2 {
		t.Fatalf("mailer delivered %d messages, want the opt-in's link and the change's", len(sent))
	}
	m := sent[1]
	checkEnvelope(t, m, change, "optin")
	want, err := templates.RenderOptin(templates.OptinEmail{Lang: templates.EN, ConfirmURL: confirmLink.FindString(m.Text),
		ValidFor: welcomeTTL, PolicyURL: welcomePolicy})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != want.Subject || m.Text != want.Text {
		t.Errorf("message = %q, want the link in the request's language, English: %q", m.Subject, want.Subject)
	}
	f.checkMailTransfers(t, change.ID, jobs.PurposeOptin)
	f.checkNameAndLang(t, first.Person, subscriberRequest, "link mailed, not followed")

	f.follow(t, first.Person)
	f.checkNameAndLang(t, first.Person, ownChange, "link followed")
}

// The link names the person, not the request: what it applies is the
// request it was mailed for, and a request made after it is not mailed
// the same day, so it cannot ride on the person's link.
func TestWelcomerLinkAppliesTheRequestItWasMailedFor(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	first := f.subscribe(t)
	f.nextDay(t)
	change := f.ask(t, 2, ownChange)
	if err := f.w.RequestConfirmation(ctx, optinTask(change.ID)); err != nil {
		t.Fatal(err)
	}
	stranger := f.ask(t, 3, strangersRequest)
	if err := f.w.RequestConfirmation(ctx, optinTask(stranger.ID)); err != nil {
		t.Fatal(err)
	}
	if n := f.mailer.attempts(); n != 2 {
		t.Fatalf("mailer was called %d times, want twice (the opt-in, the person's change)", n)
	}
	f.follow(t, first.Person)
	f.checkNameAndLang(t, first.Person, ownChange, "the person's link followed")

	// The next day the stranger's request gets a link of its own; unless
	// the person follows it, nothing changes.
	f.nextDay(t)
	if err := f.w.RequestConfirmation(ctx, optinTask(stranger.ID)); err != nil {
		t.Fatal(err)
	}
	if n := f.mailer.attempts(); n != 3 {
		t.Fatalf("mailer was called %d times, want the stranger's request mailed to the address", n)
	}
	f.checkNameAndLang(t, first.Person, ownChange, "a stranger's link mailed, not followed")
}

func TestWelcomerMailsNoLinkForARequestThatChangesNothing(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	never := f.ask(t, 1, request{name: ownChange.name, lang: ownChange.lang})
	other := f.ask(t, 2, request{name: strangersRequest.name, lang: strangersRequest.lang}) // no box: a never-subscribed person keeps the first profile
	for _, l := range []*intake.Lead{never, other} {
		if err := f.w.RequestConfirmation(ctx, optinTask(l.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.mailer.attempts(); n != 0 {
		t.Fatalf("mailer was called %d times, want never", n)
	}
	f.checkNameAndLang(t, never.Person, request{name: ownChange.name, lang: ownChange.lang}, "never subscribed")
}

func TestWelcomerMailsNoLinkForASubscribersSameDetails(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	f.subscribe(t)
	f.nextDay(t)
	again := f.ask(t, 2, subscriberRequest)
	if err := f.w.RequestConfirmation(context.Background(), optinTask(again.ID)); err != nil {
		t.Fatal(err)
	}
	if n := f.mailer.attempts(); n != 1 {
		t.Fatalf("mailer was called %d times, want once (the first opt-in only)", n)
	}
}
