package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// admissions lists the admission stream as "<kind> <lead id>".
func admissions(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), keyAdmission, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		for k, v := range m.Values {
			out = append(out, k+" "+v.(string))
		}
	}
	return out
}

func TestAcceptStoresAndQueuesInOneStep(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm := f.accept(t, fakePerson())
	if l, err := f.store.Leads.Get(ctx, adm.ID); err != nil || l.State != intake.Received {
		t.Fatalf("lead = %+v, %v", l, err)
	}
	if got := admissions(t, f.rdb); len(got) != 1 || got[0] != "route "+adm.ID {
		t.Fatalf("admission stream = %q, want the new lead's routing", got)
	}
}

// A blocked person's lead is stored but waits for the unblock, which
// queues it; nothing is handed to the workers now.
func TestAcceptQueuesNothingForABlockedPerson(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	sub := fakePerson()
	f.rdb.HSet(ctx, personKey(testKeys(t).Index("email", sub.EmailKey)), "blocked", "1")
	adm, err := f.store.Leads.Accept(ctx, application(sub))
	if err != nil || adm.State != intake.Blocked {
		t.Fatalf("accept = %+v, %v; want blocked", adm, err)
	}
	if got := admissions(t, f.rdb); len(got) != 0 {
		t.Fatalf("admission stream = %q, want empty", got)
	}
	// Stored as blocked, to be received when the block is lifted, and
	// filed under blocked, not received.
	h := f.rdb.HMGet(ctx, leadKey(adm.ID), "state", "blocked_from").Val()
	if h[0] != string(intake.Blocked) || h[1] != string(intake.Received) {
		t.Errorf("lead state, blocked_from = %v, want blocked, received", h)
	}
	if f.rdb.ZScore(ctx, stateKey(intake.Blocked), adm.ID).Err() != nil || f.rdb.ZScore(ctx, stateKey(intake.Received), adm.ID).Err() == nil {
		t.Error("the lead is not in the blocked index alone")
	}
}

// A repeat of a lead still received is queued again (it may have lost its
// task); a repeat of a routed lead is not, unless it adds the marketing
// box, whose confirmation request is then queued.
func TestRepeatQueuesWhatItAdds(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	first := f.accept(t, fakePerson())
	if dup, err := f.store.Leads.Accept(ctx, application(fakePerson())); err != nil || !dup.Duplicate {
		t.Fatalf("repeat = %+v, %v", dup, err)
	}
	if got := admissions(t, f.rdb); len(got) != 2 || got[1] != "route "+first.ID {
		t.Fatalf("admission stream = %q, want the first lead queued twice", got)
	}
	if _, err := f.store.Leads.Transition(ctx, first.ID, intake.Transition{From: intake.Received, To: intake.Routed}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Leads.Accept(ctx, application(fakePerson())); err != nil {
		t.Fatal(err)
	}
	if got := admissions(t, f.rdb); len(got) != 2 {
		t.Fatalf("admission stream = %q; a repeat of a routed lead queued something", got)
	}
	optin := fakePerson()
	optin.ConsentMarketing = true
	if _, err := f.store.Leads.Accept(ctx, application(optin)); err != nil {
		t.Fatal(err)
	}
	if got := admissions(t, f.rdb); len(got) != 3 || got[2] != "optin "+first.ID {
		t.Fatalf("admission stream = %q, want the opt-in request queued", got)
	}
}

// The move to routed queues the opt-in request of a lead that asks for a
// link, once, in the same step — including a link a repeat asked for while
// the lead was still received — and nothing for a lead that asks none.
func TestTransitionQueuesTheOptinAsked(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	routed := intake.Transition{From: intake.Received, To: intake.Routed, QueueOptin: true}
	optins := func() (ids []string) {
		t.Helper()
		for _, e := range admissions(t, f.rdb) {
			if id, ok := strings.CutPrefix(e, "optin "); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}

	plain := f.accept(t, fakePerson()).ID
	if _, err := f.store.Leads.Transition(ctx, plain, routed); err != nil {
		t.Fatal(err)
	}
	if got := optins(); len(got) != 0 {
		t.Fatalf("opt-in entries %q for a lead that asks no link", got)
	}

	// Another person, who ticks the box only in a repeat sent while the
	// first lead is still received: the repeat queues a routing entry, not
	// an opt-in; the move to routed does.
	sub := fakePerson()
	sub.Email, sub.EmailKey, sub.Phone = "test.other@example.com", "test.other@example.com", "+77010000002"
	lead := f.accept(t, sub).ID
	sub.ConsentMarketing = true
	f.accept(t, sub)
	if got := optins(); len(got) != 0 {
		t.Fatalf("opt-in entries %q before the lead was routed", got)
	}
	for range 2 { // the second is the router re-running a call whose answer was lost
		if _, err := f.store.Leads.Transition(ctx, lead, routed); err != nil {
			t.Fatal(err)
		}
	}
	if got := optins(); len(got) != 1 || got[0] != lead {
		t.Fatalf("opt-in entries %q, want one for %s", got, lead)
	}

	// Nor for a lead whose push mark queued it (begin_push.lua).
	sub.Phone = "+77010000004"
	marked := f.accept(t, sub).ID
	f.rdb.HSet(ctx, leadKey(marked), "optin_queued", "1")
	if _, err := f.store.Leads.Transition(ctx, marked, routed); err != nil {
		t.Fatal(err)
	}
	if got := optins(); len(got) != 1 {
		t.Fatalf("opt-in entries %q; the push mark's was queued again", got)
	}

	// Without QueueOptin (a hold for review, say), nothing is queued.
	sub.Phone = "+77010000003"
	held := f.accept(t, sub).ID
	if f.rdb.HGet(ctx, leadKey(held), "asks_link").Val() != "1" {
		t.Fatal("the third lead does not ask for a link")
	}
	if _, err := f.store.Leads.Transition(ctx, held, intake.Transition{From: intake.Received, To: intake.Review}); err != nil {
		t.Fatal(err)
	}
	if got := optins(); len(got) != 1 {
		t.Fatalf("opt-in entries %q; a transition without QueueOptin queued one", got)
	}
}

// A person's block found their opt-in request queued: the task skipped the
// blocked lead, so lifting the block queues it again — at once for a lead
// back in routed, through its route (the push mark) for one back in
// received.
func TestUnblockQueuesTheOptinAgain(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	sub := fakePerson()
	sub.ConsentMarketing = true
	routed := f.accept(t, sub).ID
	if _, err := f.store.Leads.Transition(ctx, routed, intake.Transition{From: intake.Received, To: intake.Routed, QueueOptin: true}); err != nil {
		t.Fatal(err)
	}
	sub.Phone = "+77010000002" // a second lead of the same person, still received, its opt-in queued by its push mark
	received := f.accept(t, sub).ID
	f.rdb.HSet(ctx, leadKey(received), "optin_queued", "1")
	// A third, routed without its opt-in queued: a repeat ticked the box
	// while the person was blocked, which queues nothing.
	sub.Phone = "+77010000003"
	repeated := f.accept(t, sub).ID
	if _, err := f.store.Leads.Transition(ctx, repeated, intake.Transition{From: intake.Received, To: intake.Routed}); err != nil {
		t.Fatal(err)
	}
	l, err := f.store.Leads.Get(ctx, routed)
	if err != nil {
		t.Fatal(err)
	}
	optins := func() (n int) {
		for _, e := range admissions(t, f.rdb) {
			if e == "optin "+routed {
				n++
			}
		}
		return n
	}
	if n := optins(); n != 1 {
		t.Fatalf("%d opt-in entries before the block, want 1", n)
	}
	if _, err := f.store.People.Block(ctx, l.Person); err != nil {
		t.Fatal(err)
	}
	if _, back, err := f.store.People.Unblock(ctx, l.Person); err != nil || !slices.Equal(back, []string{received}) {
		t.Fatalf("Unblock = %v, %v; want the received lead back to route", back, err)
	}
	if n := optins(); n != 2 {
		t.Errorf("%d opt-in entries for the routed lead after the unblock, want 2", n)
	}
	if !slices.Contains(admissions(t, f.rdb), "optin "+repeated) {
		t.Error("no opt-in entry for the lead whose repeat asked while the person was blocked")
	}
	if f.rdb.HExists(ctx, leadKey(received), "optin_queued").Val() {
		t.Error("the received lead still marks its opt-in queued: its route would not queue it again")
	}
	if st := f.rdb.HGet(ctx, leadKey(routed), "state").Val(); st != "routed" {
		t.Errorf("routed lead is %s after the unblock", st)
	}
}

// Refused and replayed submissions answer as before and queue nothing new.
func TestRefusalsQueueNothing(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	a := application(fakePerson())
	a.IdempotencyKey = "key-1"
	a.PerIP = intake.Limit{N: 1, Per: time.Hour}
	first, err := f.store.Leads.Accept(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Leads.Transition(ctx, first.ID, intake.Transition{From: intake.Received, To: intake.Routed}); err != nil {
		t.Fatal(err)
	}
	if replay, err := f.store.Leads.Accept(ctx, a); err != nil || !replay.Duplicate || replay.ID != first.ID {
		t.Fatalf("replay = %+v, %v", replay, err)
	}
	other := application(fakePerson())
	other.IdempotencyKey, other.Submission.Message = "key-1", "Другое сообщение"
	if _, err := f.store.Leads.Accept(ctx, other); intake.ErrorCode(err) != intake.EInvalid {
		t.Fatalf("key reused with another body = %v, want validation_failed", err)
	}
	limited := application(fakePerson())
	limited.PerIP = a.PerIP
	limited.Submission.Phone = "+77010000009"
	if _, err := f.store.Leads.Accept(ctx, limited); intake.ErrorCode(err) != intake.ERateLimited {
		t.Fatalf("third from one client = %v, want rate_limited", err)
	}
	if got := admissions(t, f.rdb); len(got) != 1 {
		t.Fatalf("admission stream = %q, want only the first lead", got)
	}
}

// The same call made twice (the client re-sends a script whose answer it
// lost) stores and queues once, and answers as the first did.
func TestAcceptTheSameCallTwice(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	a := application(fakePerson())
	a.ID = "0190a0a0-0000-7000-8000-000000000001"
	for range 2 {
		adm, err := f.store.Leads.Accept(ctx, a)
		if err != nil || adm.ID != a.ID || adm.Duplicate || adm.State != intake.Received {
			t.Fatalf("accept = %+v, %v", adm, err)
		}
	}
	if got := admissions(t, f.rdb); len(got) != 1 {
		t.Fatalf("admission stream = %q, want one entry", got)
	}
}

// Admitted settles a call whose answer was lost: a stored lead is found; a
// lead not stored is refused for good, so the call arriving late stores
// nothing.
func TestAdmittedSettles(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	stored := f.accept(t, fakePerson())
	if adm, err := f.store.Leads.Admitted(ctx, stored.ID); err != nil || adm == nil || adm.ID != stored.ID || adm.State != intake.Received {
		t.Fatalf("Admitted(stored) = %+v, %v", adm, err)
	}
	late := application(fakePerson())
	late.ID = "0190a0a0-0000-7000-8000-000000000002"
	late.Submission.Phone = "+77010000002"
	if adm, err := f.store.Leads.Admitted(ctx, late.ID); err != nil || adm != nil {
		t.Fatalf("Admitted(never stored) = %+v, %v; want nil", adm, err)
	}
	if adm, err := f.store.Leads.Accept(ctx, late); intake.ErrorCode(err) != intake.EUnavailable {
		t.Fatalf("the late call = %+v, %v; want unavailable", adm, err)
	}
	if _, err := f.store.Leads.Get(ctx, late.ID); intake.ErrorCode(err) != intake.ENotFound {
		t.Fatalf("the late call stored its lead: %v", err)
	}
	if got := admissions(t, f.rdb); len(got) != 1 {
		t.Fatalf("admission stream = %q, want only the stored lead", got)
	}
	ttl, err := f.rdb.PTTL(ctx, keyVoidPfx+late.ID).Result()
	if err != nil || ttl <= 0 {
		t.Fatalf("void mark TTL = %v, %v; want one", ttl, err)
	}
}

// A Redis that is gone leaves the outcome unknown, for the caller to settle.
func TestAcceptRedisDownIsUnknown(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	f.srv.Stop()
	_, err := f.store.Leads.Accept(context.Background(), application(fakePerson()))
	if intake.ErrorCode(err) != intake.EUnavailable || !errors.Is(err, intake.ErrOutcomeUnknown) {
		t.Fatalf("accept with Redis gone = %v; want unavailable, outcome unknown", err)
	}
}
