package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/seal"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testKeys(t testing.TB) *seal.Keys {
	k, err := seal.NewKeys([]byte(strings.Repeat("d", 32)), nil, []byte(strings.Repeat("i", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type storeFixture struct {
	store *Store
	rdb   redis.UniversalClient
	clock *clock
	srv   *redistest.Server
}

func setupStore(t *testing.T) storeFixture {
	t.Helper()
	srv := redistest.Start(t)
	c := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	rdb := srv.Client(t)
	return storeFixture{store: New(rdb, testKeys(t), c.Now), rdb: rdb, clock: c, srv: srv}
}

// accept stores sub's application as a lead, failing the test if it cannot.
func (f storeFixture) accept(t *testing.T, sub *intake.Submission) *intake.Admission {
	t.Helper()
	adm, err := f.store.Leads.Accept(context.Background(), application(sub))
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

// fakePerson is an obviously fake applicant.
func fakePerson() *intake.Submission {
	return &intake.Submission{EntityType: intake.LegalEntity, Name: "Тест Тестов", Phone: "+77010000001",
		Email: "Test.Person@Example.com", EmailKey: "test.person@example.com", TaxID: "210840004064",
		Products: []string{"acquiring", "pos"}, Message: "Тестовое сообщение", Lang: "ru"}
}

func application(sub *intake.Submission) intake.Application {
	return intake.Application{Submission: sub,
		Consent:     intake.Consent{Processing: true, PolicyVersion: "1", IP: "192.0.2.10", UserAgent: "test-agent"},
		Meta:        intake.Metadata{IP: "192.0.2.10", UserAgent: "test-agent"},
		PerIP:       intake.Limit{N: 100, Per: time.Hour},
		PerEmail:    intake.Limit{N: 100, Per: time.Hour},
		DoubleOptIn: true}
}

func TestAcceptStoresSealedLead(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm := f.accept(t, fakePerson())
	if adm.Duplicate || adm.State != intake.Received || adm.ID == "" {
		t.Fatalf("admission = %+v", adm)
	}
	l, err := f.store.Leads.Get(ctx, adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := fakePerson()
	if l.State != intake.Received || l.Name != want.Name || l.Phone != want.Phone || l.Email != want.Email ||
		l.TaxID != want.TaxID || l.Message != want.Message || strings.Join(l.Products, ",") != "acquiring,pos" ||
		l.Consent.IP != "192.0.2.10" || !l.CreatedAt.Equal(f.clock.Now()) || !l.Route.Since.Equal(f.clock.Now()) {
		t.Fatalf("lead = %+v", l)
	}
	raw, err := f.rdb.HGet(ctx, leadKey(adm.ID), sealedRecord).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "Тест") || strings.Contains(raw, "7010000001") {
		t.Fatal("the stored record holds personal data in clear")
	}
	if _, err := f.store.Leads.Get(ctx, "no-such-id"); intake.ErrorCode(err) != intake.ENotFound {
		t.Fatalf("Get(unknown) = %v, want ENotFound", err)
	}
}

func TestAcceptDuplicates(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	first := f.accept(t, fakePerson())
	again := fakePerson()
	again.Email, again.Name = "TEST.PERSON@example.COM", "Другое имя" // the same person: the email key decides
	dup := f.accept(t, again)
	if !dup.Duplicate || dup.ID != first.ID || dup.State != intake.Received {
		t.Fatalf("repeat = %+v, want duplicate of %s", dup, first.ID)
	}
	other := fakePerson()
	other.EntityType = intake.SoleProprietor
	if adm, err := f.store.Leads.Accept(ctx, application(other)); err != nil || adm.Duplicate {
		t.Fatalf("another entity type = %+v, %v; want a new lead", adm, err)
	}
	// A dedupe key naming a lead that is gone (erased) is taken over by the
	// new lead, and a repeat is then a duplicate of that one.
	f.rdb.Del(ctx, leadKey(first.ID))
	fresh := f.accept(t, fakePerson())
	if fresh.Duplicate || fresh.ID == first.ID {
		t.Fatalf("repeat of a lead that is gone = %+v, want a new lead", fresh)
	}
	if dup := f.accept(t, fakePerson()); !dup.Duplicate || dup.ID != fresh.ID {
		t.Fatalf("repeat after the takeover = %+v, want a duplicate of %s", dup, fresh.ID)
	}
	f.clock.Add(25 * time.Hour)
	// TTLs run on Redis's clock, not ours: expire the dedupe window by hand.
	keys, _ := f.rdb.Keys(ctx, keyDedupePfx+"*").Result()
	f.rdb.Del(ctx, keys...)
	if adm, err := f.store.Leads.Accept(ctx, application(fakePerson())); err != nil || adm.Duplicate {
		t.Fatalf("after the window = %+v, %v; want a new lead", adm, err)
	}
}

func TestDuplicateMayAddMarketingOptIn(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	first, _ := f.store.Leads.Accept(ctx, application(fakePerson()))
	opt := fakePerson()
	opt.ConsentMarketing = true
	dup, err := f.store.Leads.Accept(ctx, application(opt))
	if err != nil || !dup.Duplicate || dup.ID != first.ID {
		t.Fatalf("repeat with opt-in = %+v, %v", dup, err)
	}
	person := keyPersonPfx + testKeys(t).Index("email", opt.EmailKey)
	if m, _ := f.rdb.HGet(ctx, person, "marketing").Result(); m != "pending" {
		t.Fatalf("marketing = %q, want pending", m)
	}
	events, _ := f.rdb.LRange(ctx, person+keyConsents, 0, -1).Result()
	if len(events) != 1 {
		t.Fatalf("consent events = %d, want 1", len(events))
	}
	leadID, sealed, _ := strings.Cut(events[0], " ")
	if leadID != first.ID {
		t.Fatalf("consent event names lead %q, want the first lead %s", leadID, first.ID)
	}
	if _, err := testKeys(t).Open(sealed, testKeys(t).Index("email", opt.EmailKey)); err != nil {
		t.Fatalf("consent proof does not open: %v", err)
	}
	// A confirmed subscriber is never lowered back to pending by a new form.
	f.rdb.HSet(ctx, person, "marketing", "active")
	f.store.Leads.Accept(ctx, application(opt))
	if m, _ := f.rdb.HGet(ctx, person, "marketing").Result(); m != "active" {
		t.Fatalf("marketing = %q after a repeat, want active kept", m)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	a := application(fakePerson())
	a.IdempotencyKey = "key-1"
	first, err := f.store.Leads.Accept(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	same := application(fakePerson())
	same.IdempotencyKey = "key-1"
	same.Submission.Name = "Тест Тестов " // trimmed elsewhere; Fold makes spacing irrelevant
	replay, err := f.store.Leads.Accept(ctx, same)
	if err != nil || !replay.Duplicate || replay.ID != first.ID {
		t.Fatalf("replay = %+v, %v", replay, err)
	}
	changed := application(fakePerson())
	changed.IdempotencyKey = "key-1"
	changed.Submission.Products = []string{"payouts"}
	_, err = f.store.Leads.Accept(ctx, changed)
	var e *intake.Error
	if intake.ErrorCode(err) != intake.EInvalid || !errors.As(err, &e) || e.Fields["idempotency_key"].Key != "idempotency.reused" {
		t.Fatalf("reused key with another body = %v, want validation_failed on idempotency_key", err)
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	submit := func(email, ip string) error {
		sub := fakePerson()
		sub.Email, sub.EmailKey = email, email
		a := application(sub)
		a.Meta.IP, a.PerIP, a.PerEmail = ip, intake.Limit{N: 3, Per: time.Hour}, intake.Limit{N: 2, Per: time.Hour}
		_, err := f.store.Leads.Accept(ctx, a)
		return err
	}
	for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := submit(email, "192.0.2.1"); err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
	}
	err := submit("d@example.com", "192.0.2.1")
	var e *intake.Error
	if !errors.As(err, &e) || e.Code != intake.ERateLimited || e.RetryAfter <= 0 || e.RetryAfter > time.Hour {
		t.Fatalf("fourth from one IP = %v, want rate_limited with a Retry-After within the hour", err)
	}
	// The refused request counted against neither limit: d's mailbox still
	// has both of its two.
	for _, ip := range []string{"192.0.2.4", "192.0.2.5"} {
		if err := submit("d@example.com", ip); err != nil {
			t.Fatalf("d from %s after d's refusal: %v", ip, err)
		}
	}
	if err := submit("e@example.com", "192.0.2.1"); intake.ErrorCode(err) != intake.ERateLimited {
		t.Fatalf("fifth from one IP = %v, want rate_limited", err)
	}
	// Per person: a's first lead above, then one more from elsewhere, then refused.
	if err := submit("a@example.com", "192.0.2.2"); err != nil {
		t.Fatalf("second for one email: %v", err)
	}
	if err := submit("a@example.com", "192.0.2.3"); intake.ErrorCode(err) != intake.ERateLimited {
		t.Fatalf("third for one email = %v, want rate_limited", err)
	}
}

func TestTransition(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm, _ := f.store.Leads.Accept(ctx, application(fakePerson()))
	f.clock.Add(time.Minute)
	at := f.clock.Now()
	routed := intake.Transition{From: intake.Received, To: intake.Routed,
		Route:    intake.Route{System: "file", Ref: "ref-1", At: at},
		Transfer: &intake.Transfer{Recipient: "crm:file", At: at, Purpose: "sales", Ref: "ref-1"}}
	// Twice: the second is the router re-running a call whose answer was
	// lost; it logs the one transfer once.
	for range 2 {
		state, err := f.store.Leads.Transition(ctx, adm.ID, routed)
		if err != nil || state != intake.Routed {
			t.Fatalf("Transition = %s, %v", state, err)
		}
	}
	l, _ := f.store.Leads.Get(ctx, adm.ID)
	if l.State != intake.Routed || l.Route.Ref != "ref-1" || !l.Route.At.Equal(at) || !l.UpdatedAt.Equal(at) ||
		len(l.Transfers) != 1 || l.Transfers[0].Recipient != "crm:file" {
		t.Fatalf("lead after routing = %+v", l)
	}
	if n, _ := f.rdb.ZCard(ctx, stateKey(intake.Received)).Result(); n != 0 {
		t.Fatalf("received index has %d entries after routing", n)
	}
	if n, _ := f.rdb.ZCard(ctx, stateKey(intake.Routed)).Result(); n != 1 {
		t.Fatalf("routed index has %d entries", n)
	}
	// A late retry that expects Received changes nothing, but data that left
	// meanwhile is still logged.
	state, err := f.store.Leads.Transition(ctx, adm.ID, intake.Transition{From: intake.Received, To: intake.Failed, Route: intake.Route{Error: "late"},
		Transfer: &intake.Transfer{Recipient: "crm:webhook", At: at, Purpose: "sales"}})
	if err != nil || state != intake.Routed {
		t.Fatalf("late transition = %s, %v; want routed unchanged", state, err)
	}
	if l, _ := f.store.Leads.Get(ctx, adm.ID); l.State != intake.Routed || l.Route.Error != "" || len(l.Transfers) != 2 {
		t.Fatalf("after a late transition: state %s, error %q, %d transfers; want routed, none, 2", l.State, l.Route.Error, len(l.Transfers))
	}
	// The first call re-run once more, another transfer logged since: still
	// logged once.
	if _, err := f.store.Leads.Transition(ctx, adm.ID, routed); err != nil {
		t.Fatal(err)
	}
	if l, _ := f.store.Leads.Get(ctx, adm.ID); len(l.Transfers) != 2 {
		t.Fatalf("%d transfers after a re-run behind another transfer, want 2", len(l.Transfers))
	}
	if _, err := f.store.Leads.Transition(ctx, "gone", intake.Transition{To: intake.Failed}); intake.ErrorCode(err) != intake.ENotFound {
		t.Fatalf("transition of a missing lead = %v", err)
	}
}

func TestReceivedBefore(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	old, _ := f.store.Leads.Accept(ctx, application(fakePerson()))
	f.clock.Add(10 * time.Minute)
	young := fakePerson()
	young.Email, young.EmailKey = "other@example.com", "other@example.com"
	f.store.Leads.Accept(ctx, application(young))
	ids, err := f.store.Leads.ReceivedBefore(ctx, f.clock.Now().Add(-5*time.Minute), 0, 10)
	if err != nil || len(ids) != 1 || ids[0] != old.ID {
		t.Fatalf("ReceivedBefore = %v, %v; want only %s", ids, err, old.ID)
	}
}

func TestStoreRedisDown(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	f.srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.store.Leads.Accept(ctx, application(fakePerson())); intake.ErrorCode(err) != intake.EUnavailable {
		t.Fatalf("Accept with Redis down = %v, want unavailable", err)
	}
}

func TestRedrive(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm, _ := f.store.Leads.Accept(ctx, application(fakePerson()))
	if _, err := f.store.Leads.Redrive(ctx, adm.ID); intake.ErrorCode(err) != intake.EConflict {
		t.Fatalf("redrive of a received lead = %v, want conflict", err)
	}
	f.store.Leads.Transition(ctx, adm.ID, intake.Transition{From: intake.Received, To: intake.Review, Risk: &intake.Risk{Score: 80, Signals: []string{"fast_submit"}}})
	f.clock.Add(time.Hour)
	prev, err := f.store.Leads.Redrive(ctx, adm.ID)
	if err != nil || prev != intake.Review {
		t.Fatalf("redrive of a review lead = %s, %v", prev, err)
	}
	l, _ := f.store.Leads.Get(ctx, adm.ID)
	if l.State != intake.Received || !l.Released || !l.Route.Since.Equal(f.clock.Now()) || l.Risk.Score != 80 {
		t.Fatalf("released lead = %+v", l)
	}
	f.store.Leads.Transition(ctx, adm.ID, intake.Transition{From: intake.Received, To: intake.Failed, Route: intake.Route{Error: "gone"}})
	if prev, err := f.store.Leads.Redrive(ctx, adm.ID); err != nil || prev != intake.Failed {
		t.Fatalf("redrive of a failed lead = %s, %v", prev, err)
	}
	if l, _ := f.store.Leads.Get(ctx, adm.ID); l.State != intake.Received || l.Route.Error != "" {
		t.Fatalf("redriven lead = %+v", l)
	}
	if ids, _ := f.store.Leads.ReceivedBefore(ctx, f.clock.Now(), 0, 10); len(ids) != 1 {
		t.Fatalf("received index after redrive = %v", ids)
	}
	if _, err := f.store.Leads.Redrive(ctx, "gone"); intake.ErrorCode(err) != intake.ENotFound {
		t.Fatalf("redrive of a missing lead = %v", err)
	}
}

func TestListPages(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		sub := fakePerson()
		sub.Email = fmt.Sprintf("list%d@example.com", i)
		sub.EmailKey = sub.Email
		adm := f.accept(t, sub)
		ids = append(ids, adm.ID)
		if i%2 == 0 {
			f.clock.Add(time.Second) // some share a millisecond, some do not
		}
	}
	var got []string
	cursor := ""
	for range 10 {
		page, err := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Received}, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Leads {
			got = append(got, l.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("pages gave %d leads, want %d: %v", len(got), len(ids), got)
	}
	seen := map[string]bool{}
	for i, id := range got {
		if seen[id] {
			t.Fatalf("lead %s listed twice", id)
		}
		seen[id] = true
		if i > 0 {
			a, _ := f.store.Leads.Get(ctx, got[i-1])
			b, _ := f.store.Leads.Get(ctx, id)
			if a.CreatedAt.Before(b.CreatedAt) {
				t.Fatalf("not newest first at %d", i)
			}
		}
	}
	since := f.clock.Now().Add(-1500 * time.Millisecond) // the clock moved on after the last two
	if page, _ := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Received, Since: since}, "", 50); len(page.Leads) != 2 {
		t.Fatalf("since filter gave %d leads, want the last two", len(page.Leads))
	}
	if page, _ := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Routed}, "", 50); len(page.Leads) != 0 {
		t.Fatalf("routed list = %d leads, want none", len(page.Leads))
	}
	if _, err := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Received}, "garbage", 5); intake.ErrorCode(err) != intake.EBadRequest {
		t.Fatalf("bad cursor = %v", err)
	}
}

// TestRepeatsAreCounted: a new lead's 24 h repeats are counted when the
// router first reads it (GetForRouting), once however often it reads; a
// duplicate counts at intake, as it is never routed.
func TestRepeatsAreCounted(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		sub := fakePerson()
		sub.Phone = fmt.Sprintf("+7701000000%d", i) // not duplicates: another phone each time
		a := application(sub)
		a.Observed = intake.Observed{ScriptRan: true, FormAge: 5 * time.Second}
		adm, err := f.store.Leads.Accept(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, adm.ID)
	}
	if l, _ := f.store.Leads.Get(ctx, ids[2]); l.Observed.SameIP != 0 {
		t.Fatalf("counted before routing: %+v", l.Observed)
	}
	for _, id := range ids[:2] {
		if _, err := f.store.Leads.GetForRouting(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// A duplicate of the first: counted now, never routed.
	if adm, err := f.store.Leads.Accept(ctx, application(fakePerson())); err != nil || !adm.Duplicate {
		t.Fatalf("duplicate = %+v, %v", adm, err)
	}
	for range 2 { // a retried route task reads again: no second count
		l, err := f.store.Leads.GetForRouting(ctx, ids[2])
		if err != nil {
			t.Fatal(err)
		}
		if o := l.Observed; o.SameIP != 4 || o.SameEmail != 4 || o.SameTaxID != 4 || !o.ScriptRan || o.FormAge != 5*time.Second {
			t.Fatalf("observed = %+v, want 4 repeats of IP, email and tax id", o)
		}
	}
	if n, _ := f.rdb.HExists(ctx, leadKey(ids[2]), "repeat_keys").Result(); n {
		t.Error("repeat_keys kept after counting")
	}
}

// TestABlockedPersonsLeadCountsAtIntake: a lead stored for a person who
// blocked processing waits, unrouted, for the unblock; its repeats are
// counted as it comes, not in a burst then.
func TestABlockedPersonsLeadCountsAtIntake(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	first, _ := f.store.Leads.Get(ctx, f.accept(t, fakePerson()).ID)
	if _, err := f.store.People.Block(ctx, first.Person); err != nil {
		t.Fatal(err)
	}
	sub := fakePerson()
	sub.Phone = "+77010000009" // not a duplicate
	adm := f.accept(t, sub)
	if adm.State != intake.Blocked {
		t.Fatalf("state %s, want blocked", adm.State)
	}
	wantCountedOnce(t)(f.store.Leads.Get(ctx, adm.ID)) // at intake
}

// wantCountedOnce returns a check that a lead read without error holds one
// repeat of each: IP, person and BIN/IIN.
func wantCountedOnce(t *testing.T) func(*intake.Lead, error) {
	return func(l *intake.Lead, err error) {
		t.Helper()
		if err != nil || l.Observed.SameIP != 1 || l.Observed.SameEmail != 1 || l.Observed.SameTaxID != 1 {
			t.Fatalf("lead %+v, %v; want one repeat of IP, person and BIN/IIN", l, err)
		}
	}
}

// TestRepeatsCountAfterAFlushedScriptCache: GetForRouting loads its script
// again on a Redis that lost it (restarted or SCRIPT FLUSH), and counts.
func TestRepeatsCountAfterAFlushedScriptCache(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm := f.accept(t, fakePerson())
	f.rdb.ScriptFlush(ctx)
	wantCountedOnce(t)(f.store.Leads.GetForRouting(ctx, adm.ID))
}

// A repeat refreshes the lead's retention clock: the contract counts it from
// the last submission.
func TestRepeatRefreshesRetention(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	first, _ := f.store.Leads.Accept(ctx, application(fakePerson()))
	f.clock.Add(time.Hour)
	f.store.Leads.Accept(ctx, application(fakePerson()))
	score, err := f.rdb.ZScore(ctx, keyAll, first.ID).Result()
	if err != nil || int64(score) != f.clock.Now().UnixMilli() {
		t.Fatalf("retention index = %v, %v; want the repeat's time", score, err)
	}
}

func TestMarketingConfirmation(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	a := application(fakePerson())
	a.Submission.ConsentMarketing, a.DoubleOptIn = true, true
	adm, _ := f.store.Leads.Accept(ctx, a)
	l, _ := f.store.Leads.Get(ctx, adm.ID)
	if state, _ := f.store.People.Marketing(ctx, l.Person); state != intake.MarketingPending {
		t.Fatalf("after the form: %q, want pending", state)
	}
	proof := intake.Proof{At: f.clock.Now(), IP: "192.0.2.44", UserAgent: "test-agent"}
	if ok, err := f.store.People.ConfirmMarketing(ctx, l.Person, proof); !ok || err != nil {
		t.Fatalf("ConfirmMarketing = %v, %v", ok, err)
	}
	if state, _ := f.store.People.Marketing(ctx, l.Person); state != intake.MarketingActive {
		t.Fatalf("after the link: %q, want active", state)
	}
	events, _ := f.rdb.LRange(ctx, keyPersonPfx+l.Person+keyConsents, 0, -1).Result()
	if len(events) != 2 || !strings.HasPrefix(events[1], "- ") {
		t.Fatalf("consent history = %d entries, want the opt-in and its confirmation", len(events))
	}
	plain, err := testKeys(t).Open(strings.TrimPrefix(events[1], "- "), l.Person)
	if err != nil || !strings.Contains(string(plain), `"marketing_confirmed"`) || !strings.Contains(string(plain), "192.0.2.44") {
		t.Fatalf("confirmation proof = %s, %v", plain, err)
	}
	if ok, _ := f.store.People.ConfirmMarketing(ctx, l.Person, proof); !ok {
		t.Fatal("a second click on the link is not reported as confirmed")
	}
	f.rdb.HSet(ctx, keyPersonPfx+l.Person, "marketing", intake.MarketingWithdrawn)
	if ok, _ := f.store.People.ConfirmMarketing(ctx, l.Person, proof); ok {
		t.Fatal("an old link re-subscribed a person who withdrew")
	}
	if ok, _ := f.store.People.ConfirmMarketing(ctx, "no-such-person", proof); ok {
		t.Fatal("confirmed a person who never opted in")
	}
}

func TestSingleOptIn(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	a := application(fakePerson())
	a.Submission.ConsentMarketing, a.DoubleOptIn = true, false // the form's tick is the consent
	adm, _ := f.store.Leads.Accept(ctx, a)
	l, _ := f.store.Leads.Get(ctx, adm.ID)
	if state, _ := f.store.People.Marketing(ctx, l.Person); state != intake.MarketingActive {
		t.Fatalf("without double opt-in: %q, want active", state)
	}
}

func TestClaimSend(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	if ok, err := f.store.People.ClaimSend(ctx, "ack", "p1", "lead-1", time.Hour); !ok || err != nil {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	if ok, _ := f.store.People.ClaimSend(ctx, "ack", "p1", "lead-1", time.Hour); !ok {
		t.Fatal("a retry of the same lead lost its own claim")
	}
	if ok, _ := f.store.People.ClaimSend(ctx, "ack", "p1", "lead-2", time.Hour); ok {
		t.Fatal("a second lead of the same person got a second message")
	}
	if ok, _ := f.store.People.ClaimSend(ctx, "optin", "p1", "lead-2", time.Hour); !ok {
		t.Fatal("another kind of message was blocked")
	}
	if err := f.store.People.SentTo(ctx, "ack", "p1", "lead-1", nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.store.People.ClaimSend(ctx, "ack", "p1", "lead-1", time.Hour); ok {
		t.Fatal("a later task of the same lead sent the message again")
	}
	if ttl, _ := f.rdb.PTTL(ctx, keySentPfx+"ack:p1").Result(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("the window lost its expiry: %v", ttl)
	}
}

// SentTo closes the claim and logs the transfer in one call, once however
// often it is re-run; for a lead gone meanwhile it still closes the claim,
// and says the lead is gone.
func TestSentToLogsTheTransfer(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm := f.accept(t, fakePerson())
	at := f.clock.Now()
	for _, id := range []string{adm.ID, "01959a3c-8f00-7000-8000-00000000dead"} {
		if ok, err := f.store.People.ClaimSend(ctx, "ack", "p1", id, time.Hour); !ok || err != nil {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		// Twice: the second is a re-run after the first's answer was lost
		// (untilRecorded), with another transfer logged between, and logs
		// nothing more.
		for i := range 2 {
			if i == 1 && id == adm.ID {
				if err := f.store.Leads.LogTransfer(ctx, id, intake.Transfer{Recipient: "telegram", At: at, Purpose: "notify"}); err != nil {
					t.Fatal(err)
				}
			}
			err := f.store.People.SentTo(ctx, "ack", "p1", id, &intake.Transfer{Recipient: "mail", At: at, Purpose: "acknowledge"})
			if id == adm.ID && err != nil {
				t.Fatalf("SentTo = %v", err)
			} else if id != adm.ID && intake.ErrorCode(err) != intake.ENotFound {
				t.Fatalf("SentTo for a lead gone = %v, want ENotFound", err)
			}
		}
		if got := f.rdb.Get(ctx, keySentPfx+"ack:p1").Val(); got != id+" sent" {
			t.Errorf("claim = %q, want closed by %s", got, id)
		}
		f.rdb.Del(ctx, keySentPfx+"ack:p1")
	}
	l, _ := f.store.Leads.Get(ctx, adm.ID)
	if len(l.Transfers) != 2 || l.Transfers[0].Recipient != "mail" || !l.Transfers[0].At.Equal(at) || l.Transfers[0].Purpose != "acknowledge" {
		t.Errorf("transfers = %+v, want the one mail, then the notification", l.Transfers)
	}
	if n := f.rdb.Exists(ctx, leadKey("01959a3c-8f00-7000-8000-00000000dead")+keyTransfers).Val(); n != 0 {
		t.Error("a transfer was logged for a lead that is gone")
	}
}

// AckQueued marks the lead, which Get then reads, and recreates no lead
// that is gone.
func TestAckQueued(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	id := f.accept(t, fakePerson()).ID
	if l, _ := f.store.Leads.Get(ctx, id); l == nil || l.AckQueued {
		t.Fatalf("a new lead = %+v, want its acknowledgement not queued", l)
	}
	if err := f.store.People.AckQueued(ctx, id); err != nil {
		t.Fatalf("AckQueued = %v", err)
	}
	if l, _ := f.store.Leads.Get(ctx, id); l == nil || !l.AckQueued {
		t.Errorf("the marked lead = %+v, want its acknowledgement queued", l)
	}
	gone := "01959a3c-8f00-7000-8000-00000000dead"
	if err := f.store.People.AckQueued(ctx, gone); intake.ErrorCode(err) != intake.ENotFound {
		t.Errorf("AckQueued for a lead gone = %v, want ENotFound", err)
	}
	if n := f.rdb.Exists(ctx, leadKey(gone)).Val(); n != 0 {
		t.Error("marking a lead that is gone brought it back")
	}
}

// LogTransfer re-run after its answer was lost (the notifier's
// untilRecorded) logs the transfer once.
func TestLogTransferOnce(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	id := f.accept(t, fakePerson()).ID
	tr := intake.Transfer{Recipient: "telegram", At: f.clock.Now(), Purpose: "notify"}
	for range 2 {
		if err := f.store.Leads.LogTransfer(ctx, id, tr); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := f.store.Leads.Get(ctx, id); len(l.Transfers) != 1 {
		t.Errorf("transfers = %+v, want the one", l.Transfers)
	}
}

func TestOptinToken(t *testing.T) {
	t.Parallel()
	k := testKeys(t)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tok := k.OptinToken("person-hash", now.Add(time.Hour))
	if p, ok := k.OptinPerson(tok, now); !ok || p != "person-hash" {
		t.Fatalf("valid token = %q, %v", p, ok)
	}
	if _, ok := k.OptinPerson(tok, now.Add(2*time.Hour)); ok {
		t.Fatal("an expired token was accepted")
	}
	for _, bad := range []string{"", "x", "other-person" + tok[len("person-hash"):], tok + "0", strings.Replace(tok, ".", ".9", 1)} {
		if _, ok := k.OptinPerson(bad, now); ok {
			t.Errorf("token %q was accepted", bad)
		}
	}
}
