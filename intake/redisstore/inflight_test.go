package redisstore

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// TestInFlightIsOneEntryABatch: a marked batch is one in-flight entry, its
// people settled by slot, each once; what is left of it, and an entry left
// by a version that kept a field a person, is settled as lost.
func TestInFlightIsOneEntryABatch(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	people := []string{strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)}
	for _, p := range people {
		f.rdb.ZAdd(ctx, keyMarketing, redis.Z{Member: p})
	}
	c := startedCampaign(t, f)
	id := c.ID
	cands := &intake.Candidates{Cursor: people[2]}
	for i, p := range people {
		cands.Recipients = append(cands.Recipients, intake.Recipient{Person: p, Number: string(rune('1' + i))})
	}
	b, err := f.store.Campaigns.Mark(ctx, c, cands)
	if err != nil || len(b.Recipients) != 3 {
		t.Fatalf("Mark = %+v, %v; want 3 marked", b, err)
	}
	inflight := campaignKey(id) + keyCampaignInFlight
	if n := f.rdb.HLen(ctx, inflight).Val(); n != 1 {
		t.Errorf("%d in-flight entries for one batch, want 1", n)
	}
	settle := func(outcome intake.Outcome, reason intake.FailReason, rs ...intake.Recipient) {
		t.Helper()
		if err := f.store.Campaigns.Settle(ctx, c, outcome, reason, rs); err != nil {
			t.Fatal(err)
		}
	}
	settle(intake.OutcomeSent, "", b.Recipients[0])
	settle(intake.OutcomeSent, "", b.Recipients[0]) // each once
	settle(intake.OutcomeFailed, intake.ReasonInvalidName, b.Recipients[2])
	if n := f.rdb.HLen(ctx, inflight).Val(); n != 1 {
		t.Errorf("%d in-flight entries with one person left, want 1", n)
	}
	legacy := strings.Repeat("d", 40)
	f.rdb.HSet(ctx, inflight, legacy, "4") // a field a person: left by a crash before batches were one entry
	n, err := f.store.Campaigns.SettleLost(ctx, c)
	if err != nil || n != 2 {
		t.Fatalf("SettleLost = %d, %v; want 2 (the batch's last, the legacy one)", n, err)
	}
	if f.rdb.Exists(ctx, inflight).Val() != 0 {
		t.Error("the in-flight hash outlived SettleLost")
	}
	settle(intake.OutcomeSent, "", b.Recipients[1]) // settled as lost already
	got, err := f.store.Campaigns.Campaign(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Recipients != 3 || got.Sent != 1 || got.Failed != 3 || got.FailedReasons[intake.ReasonUnknownOutcome] != 2 || got.FailedReasons[intake.ReasonInvalidName] != 1 {
		t.Errorf("campaign %+v", got)
	}
	failed := f.rdb.HGetAll(ctx, campaignKey(id)+keyCampaignFails).Val()
	if want := []string{people[1], people[2], legacy}; !slices.Equal(slices.Sorted(maps.Keys(failed)), want) {
		t.Errorf("failed %v, want %v", failed, want)
	}
}

// TestMarkAnswersBothWays: a walk batch of people all held and new (the
// script's short way) and one with a person marked before and one no
// longer held (its loop) give the same kind of answer: a byte a
// candidate, and one in-flight entry naming the marked in order.
func TestMarkAnswersBothWays(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	p := func(c string) string { return strings.Repeat(c, 40) }
	for _, person := range []string{p("a"), p("b"), p("c"), p("d"), p("e")} {
		f.rdb.ZAdd(ctx, keyMarketing, redis.Z{Member: person})
	}
	c := startedCampaign(t, f)
	mark := func(cursor string, people ...string) (*intake.Batch, string) {
		t.Helper()
		cands := &intake.Candidates{Cursor: cursor}
		for _, person := range people {
			cands.Recipients = append(cands.Recipients, intake.Recipient{Person: person, Number: strconv.Itoa(int(person[0] - 'a'))})
		}
		b, err := f.store.Campaigns.Mark(ctx, c, cands)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Recipients) == 0 {
			return b, ""
		}
		return b, f.rdb.HGet(ctx, campaignKey(c.ID)+keyCampaignInFlight, b.Recipients[0].Batch).Val()
	}
	slots := func(b *intake.Batch) (got []string) {
		for _, r := range b.Recipients {
			got = append(got, r.Person[:1]+strconv.Itoa(r.Slot))
		}
		return got
	}
	b, entry := mark(p("b"), p("a"), p("b"))
	if want := "11 " + p("a") + "," + p("b"); entry != want || !slices.Equal(slots(b), []string{"a0", "b1"}) {
		t.Errorf("all held and new: entry %q, slots %v; want %q, [a0 b1]", entry, slots(b), want)
	}
	f.rdb.ZRem(ctx, keyMarketing, p("d")) // withdrew
	b, entry = mark(p("e"), p("b"), p("c"), p("d"), p("e"))
	if want := "11 " + p("c") + "," + p("e"); entry != want || !slices.Equal(slots(b), []string{"c0", "e1"}) {
		t.Errorf("one marked before, one not held: entry %q, slots %v; want %q, [c0 e1]", entry, slots(b), want)
	}
	got, err := f.store.Campaigns.Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Recipients != 5 || got.Skipped != 1 { // recipients: everyone the walk decided for, the skipped among them
		t.Errorf("recipients %d, skipped %d; want 5 and 1", got.Recipients, got.Skipped)
	}
}

// A person whose address is rectified while a batch of theirs is in flight
// is renamed in it, so its outcome lands on their new hash; and an
// erasure's or rectification's list of campaign keys names each known
// campaign's in-flight hash before a send creates it, so one created in
// between is not missed.
func TestInFlightFollowsTheSubjectsRequests(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	adm := f.accept(t, fakePerson())
	l, err := f.store.Leads.Get(ctx, adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := startedCampaign(t, f)
	inflight := campaignKey(c.ID) + keyCampaignInFlight
	keys, err := f.store.Subjects.campaignKeys(ctx)
	if err != nil || !slices.Contains(keys, inflight) {
		t.Fatalf("campaign keys %q, %v; want %s listed before it exists", keys, err, inflight)
	}
	f.rdb.ZAdd(ctx, keyMarketing, redis.Z{Member: l.Person})
	other := strings.Repeat("b", 40)
	f.rdb.ZAdd(ctx, keyMarketing, redis.Z{Member: other})
	cands := &intake.Candidates{Cursor: other, Recipients: []intake.Recipient{{Person: l.Person, Number: "1"}, {Person: other, Number: "2"}}}
	if b, err := f.store.Campaigns.Mark(ctx, c, cands); err != nil || len(b.Recipients) != 2 {
		t.Fatalf("Mark = %+v, %v; want both marked", b, err)
	}
	renamed := "test.renamed@example.com"
	r, err := f.store.Subjects.Rectify(ctx, l.Person, intake.Changes{Email: &renamed})
	if err != nil {
		t.Fatal(err)
	}
	if r.Person == l.Person {
		t.Fatal("the rectification did not move the person")
	}
	for _, entry := range f.rdb.HGetAll(ctx, inflight).Val() {
		if strings.Contains(entry, l.Person) || !strings.Contains(entry, r.Person) || !strings.Contains(entry, other) {
			t.Errorf("in-flight entry %q, want the new hash in place of the old, the other person kept", entry)
		}
	}
}

// startedCampaign creates a campaign to everyone and starts it.
func startedCampaign(t *testing.T, f storeFixture) *intake.Campaign {
	t.Helper()
	ctx := context.Background()
	id, err := f.store.Campaigns.CreateCampaign(ctx, &intake.Campaign{Kind: intake.KindCampaign, Name: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Campaigns.StartCampaign(ctx, id); err != nil {
		t.Fatal(err)
	}
	c, err := f.store.Campaigns.Campaign(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
