package redisstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// details are what a request says about the person that their profile
// holds: the name mail uses, its language, and the segment fields.
type details struct {
	name, lang, entity string
	products           []string
}

var (
	subscriberDetails = details{"Тест Подписчиков", "ru", intake.LegalEntity, []string{"acquiring"}}
	changedDetails    = details{"Test Subscriberova", "en", intake.SoleProprietor, []string{"payouts", "pos"}}
	strangerDetails   = details{"Stranger Testname", "kk", intake.LegalEntity, []string{"recurring"}}
)

// profileFixture files fake requests for one address, each with another
// phone, so none is a duplicate of another.
type profileFixture struct {
	storeFixture
	t      *testing.T
	phones int
}

func setupProfile(t *testing.T) *profileFixture {
	return &profileFixture{storeFixture: setupStore(t), t: t}
}

const profileEmail = "test.subscriber@example.com"

// request accepts a request for profileEmail with d, the marketing box
// ticked or not, and returns the stored lead.
func (f *profileFixture) request(d details, tick bool) *intake.Lead {
	f.t.Helper()
	f.phones++
	sub := fakePerson()
	sub.Email, sub.EmailKey = profileEmail, profileEmail
	sub.Phone = fmt.Sprintf("+770120%05d", f.phones)
	sub.Name, sub.Lang, sub.EntityType, sub.Products, sub.ConsentMarketing = d.name, d.lang, d.entity, d.products, tick
	adm, err := f.store.Leads.Accept(context.Background(), application(sub))
	if err != nil || adm.Duplicate {
		f.t.Fatalf("Accept = %+v, %v; want a new lead", adm, err)
	}
	l, err := f.store.Leads.Get(context.Background(), adm.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// profile is what campaigns and notices use for the person now.
func (f *profileFixture) profile(person string) details {
	f.t.Helper()
	s, err := f.store.Subjects.Subject(context.Background(), person)
	if err != nil {
		f.t.Fatal(err)
	}
	if s.Profile.Email != profileEmail {
		f.t.Fatalf("profile address = %q, want the person's", s.Profile.Email)
	}
	return details{s.Profile.Name, s.Profile.Lang, s.Profile.EntityType, s.Profile.Products}
}

func (f *profileFixture) checkProfile(person string, want details, when string) {
	f.t.Helper()
	if got := f.profile(person); got.name != want.name || got.lang != want.lang || got.entity != want.entity ||
		!slices.Equal(got.products, want.products) {
		f.t.Fatalf("%s: profile = %+v, want %+v", when, got, want)
	}
}

// checkLead fails unless the lead kept its own request's details: sales
// sees every request as it was made.
func (f *profileFixture) checkLead(l *intake.Lead, want details) {
	f.t.Helper()
	got, err := f.store.Leads.Get(context.Background(), l.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if got.Name != want.name || got.Lang != want.lang || got.EntityType != want.entity || !slices.Equal(got.Products, want.products) {
		f.t.Fatalf("lead = %q %s %s %v, want its own request's %+v", got.Name, got.Lang, got.EntityType, got.Products, want)
	}
}

func (f *profileFixture) awaits(l *intake.Lead) bool {
	f.t.Helper()
	ok, err := f.store.People.AwaitsConfirmation(context.Background(), l)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// mailLink does what jobs.Welcomer does once it has mailed l's link.
func (f *profileFixture) mailLink(l *intake.Lead, validFor time.Duration) {
	f.t.Helper()
	if err := f.store.People.LinkSent(context.Background(), l.Person, l.ID, f.clock.Now().Add(validFor)); err != nil {
		f.t.Fatal(err)
	}
}

// follow is the person following a link of theirs.
func (f *profileFixture) follow(person string) bool {
	f.t.Helper()
	ok, err := f.store.People.ConfirmMarketing(context.Background(), person,
		intake.Proof{At: f.clock.Now(), IP: "192.0.2.44", UserAgent: "test-agent"})
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// subscribe makes the person a confirmed subscriber with d, the way the
// form and the link do, and returns their first lead.
func (f *profileFixture) subscribe(d details) *intake.Lead {
	f.t.Helper()
	l := f.request(d, true)
	f.mailLink(l, 7*24*time.Hour)
	if !f.follow(l.Person) {
		f.t.Fatal("the opt-in link confirmed nothing")
	}
	if m, _ := f.store.People.Marketing(context.Background(), l.Person); m != intake.MarketingActive {
		f.t.Fatalf("marketing = %q, want active", m)
	}
	f.checkProfile(l.Person, d, "subscribed")
	return l
}

func TestPendingOptInKeepsItsRequestsProfileAndAppliesItOnConfirm(t *testing.T) {
	t.Parallel()
	f := setupProfile(t)
	first := f.request(subscriberDetails, false) // a request without the box: the profile is its
	f.checkProfile(first.Person, subscriberDetails, "first request")

	optin := f.request(changedDetails, true) // the same address asks for product news with other details
	if !f.awaits(optin) {
		t.Fatal("the opt-in's request does not wait for its link")
	}
	f.checkProfile(first.Person, subscriberDetails, "opt-in pending")
	f.mailLink(optin, 7*24*time.Hour)

	// A request made after the link was mailed: its details are not what
	// the link confirms.
	stranger := f.request(strangerDetails, true)
	f.checkProfile(first.Person, subscriberDetails, "a later request while pending")

	if !f.follow(first.Person) {
		t.Fatal("ConfirmMarketing reported nothing pending")
	}
	f.checkProfile(first.Person, changedDetails, "after the link")
	f.checkLead(stranger, strangerDetails)
	f.checkLead(first, subscriberDetails)
	h, _ := f.rdb.HGetAll(context.Background(), personKey(first.Person)).Result()
	if h["pending_lead"] != "" || h["pending_until"] != "" {
		t.Errorf("the applied request is still pending: %q %q", h["pending_lead"], h["pending_until"])
	}
	events, _ := f.rdb.LRange(context.Background(), personKey(first.Person)+keyConsents, 0, -1).Result()
	if len(events) != 3 || !strings.HasPrefix(events[2], "- ") { // two opt-ins, one confirmation
		t.Errorf("consent history = %d entries, want the two opt-ins and the confirmation", len(events))
	}
}

func TestPendingOptInOfTheFirstRequestKeepsItsProfile(t *testing.T) {
	t.Parallel()
	f := setupProfile(t)
	optin := f.request(subscriberDetails, true)
	f.mailLink(optin, 7*24*time.Hour)
	later := f.request(strangerDetails, false) // someone else's request, before the person follows the link
	if f.awaits(later) {
		t.Error("a request without the box, of a person not subscribed, waits for a link")
	}
	f.checkProfile(optin.Person, subscriberDetails, "pending")
	f.follow(optin.Person)
	f.checkProfile(optin.Person, subscriberDetails, "confirmed")
	f.checkLead(later, strangerDetails)
}

func TestNeverSubscribedKeepsTheFirstLeadsProfile(t *testing.T) {
	t.Parallel()
	f := setupProfile(t)
	first := f.request(subscriberDetails, false)
	var later []*intake.Lead
	for _, d := range []details{changedDetails, strangerDetails} {
		l := f.request(d, false)
		if f.awaits(l) {
			t.Errorf("a request of a person never subscribed waits for a link")
		}
		later = append(later, l)
	}
	f.checkProfile(first.Person, subscriberDetails, "after later requests")
	f.checkLead(later[0], changedDetails)
	f.checkLead(later[1], strangerDetails)
	// Breach notices reach people who never subscribed: the profile is
	// there from the first lead, with its number.
	h, _ := f.rdb.HGetAll(context.Background(), personKey(first.Person)).Result()
	if h["n"] == "" || h["contact"] == "" {
		t.Fatalf("profile fields = %v, want a number and a contact", slices.Sorted(maps.Keys(h)))
	}
}

func TestSubscribersChangeWaitsForItsLink(t *testing.T) {
	t.Parallel()
	f := setupProfile(t)
	ctx := context.Background()
	first := f.subscribe(subscriberDetails)
	person := first.Person

	same := f.request(subscriberDetails, true)
	if f.awaits(same) {
		t.Error("a request with the profile's own details waits for a link")
	}

	change := f.request(changedDetails, false) // another name and language: box ticked or not, a link decides
	if !f.awaits(change) {
		t.Fatal("a subscriber's request with other details does not wait for a link")
	}
	f.checkProfile(person, subscriberDetails, "change requested")
	f.checkLead(change, changedDetails)
	// The old opt-in link followed again, before the change's link is
	// mailed: it confirms nothing new.
	if !f.follow(person) {
		t.Error("a confirmed subscriber's link reported nothing")
	}
	f.checkProfile(person, subscriberDetails, "old link followed")

	f.mailLink(change, 7*24*time.Hour)
	f.checkProfile(person, subscriberDetails, "link mailed")
	if !f.follow(person) {
		t.Fatal("following the change's link reported nothing")
	}
	f.checkProfile(person, changedDetails, "change's link followed")
	if m, _ := f.store.People.Marketing(ctx, person); m != intake.MarketingActive {
		t.Errorf("marketing = %q, want still active", m)
	}
	events, _ := f.rdb.LRange(ctx, personKey(person)+keyConsents, 0, -1).Result()
	last := events[len(events)-1]
	id, sealed, _ := strings.Cut(last, " ")
	plain, err := testKeys(t).Open(sealed, person)
	if id != change.ID || err != nil || !strings.Contains(string(plain), `"profile_confirmed"`) || !strings.Contains(string(plain), "192.0.2.44") {
		t.Errorf("last consent entry = %s %s, %v; want the change's confirmation with its proof", id, plain, err)
	}

	// A change whose link expired is not applied by a later click.
	expired := f.request(strangerDetails, false)
	f.mailLink(expired, time.Hour)
	f.clock.Add(2 * time.Hour)
	f.follow(person)
	f.checkProfile(person, changedDetails, "an expired change's link")

	// Nothing is recorded for someone no longer held.
	if err := f.store.People.LinkSent(ctx, "no-such-person", change.ID, f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.rdb.Exists(ctx, personKey("no-such-person")).Result(); n != 0 {
		t.Error("LinkSent made a profile for a person not held")
	}
}

func TestSingleOptInKeepsTheHeldProfile(t *testing.T) {
	t.Parallel()
	f := setupProfile(t)
	ctx := context.Background()
	first := f.request(subscriberDetails, false)
	sub := fakePerson()
	sub.Email, sub.EmailKey, sub.Phone, sub.ConsentMarketing = profileEmail, profileEmail, "+77012099999", true
	sub.Name, sub.Lang, sub.EntityType, sub.Products = strangerDetails.name, strangerDetails.lang, strangerDetails.entity, strangerDetails.products
	a := application(sub)
	a.DoubleOptIn = false // the tick is the consent; no link proves who ticked it
	adm, err := f.store.Leads.Accept(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := f.store.People.Marketing(ctx, first.Person); m != intake.MarketingActive {
		t.Fatalf("marketing = %q, want active", m)
	}
	f.checkProfile(first.Person, subscriberDetails, "single opt-in with other details")
	l, _ := f.store.Leads.Get(ctx, adm.ID)
	if !f.awaits(l) {
		t.Error("the single opt-in's other details do not wait for a link")
	}
}

func TestRectifyChangesTheProfileDirectly(t *testing.T) {
	t.Parallel()
	f := setupProfile(t)
	ctx := context.Background()
	first := f.subscribe(subscriberDetails)
	name, lang := "Тест Исправленный", "kk"
	if _, err := f.store.Subjects.Rectify(ctx, first.Person, intake.Changes{Name: &name, Lang: &lang}); err != nil {
		t.Fatal(err)
	}
	rectified := details{name, lang, subscriberDetails.entity, subscriberDetails.products}
	f.checkProfile(first.Person, rectified, "rectified, no link")
	if f.awaits(f.request(rectified, false)) {
		t.Error("a request with the rectified details waits for a link")
	}
	if !f.awaits(f.request(subscriberDetails, false)) {
		t.Error("a request with the details before the rectification does not wait for a link")
	}
	f.checkProfile(first.Person, rectified, "later requests")
}
