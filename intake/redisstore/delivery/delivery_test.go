package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/delivery"
)

func TestBeginMarksAReceivedLeadAndReturnsTheEarlierMark(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	now := time.UnixMilli(1_750_000_000_000)
	p := delivery.New(rdb, func() time.Time { return now })
	const id = "01959a3c-8f00-7000-8000-000000000001"
	setLead(t, rdb, id, "state", "received")

	first, err := p.Begin(ctx, id, false, nil)
	if err != nil || first != (delivery.Push{}) {
		t.Fatalf("first Begin = %+v, %v; want no earlier mark", first, err)
	}
	later := now.Add(90 * time.Second)
	now = later
	second, err := p.Begin(ctx, id, false, nil)
	if err != nil || second.CRMGone || !second.Earlier.Equal(later.Add(-90*time.Second)) {
		t.Fatalf("second Begin = %+v, %v; want the first attempt's time", second, err)
	}

	setLead(t, rdb, id, "state", "routed")
	if _, err := p.Begin(ctx, id, false, nil); intake.ErrorCode(err) != intake.EConflict {
		t.Errorf("Begin on a routed lead = %v, want EConflict", err)
	}
	if got := rdb.HGet(ctx, redisstore.LeadKey(id), "pushing").Val(); got != "1750000090000" {
		t.Errorf("mark = %q after a refused Begin, want the last attempt's time left as it was", got)
	}
	if _, err := p.Begin(ctx, "01959a3c-8f00-7000-8000-00000000dead", false, nil); intake.ErrorCode(err) != intake.ENotFound {
		t.Errorf("Begin on a missing lead = %v, want ENotFound", err)
	}
	if n := rdb.Exists(ctx, redisstore.LeadKey("01959a3c-8f00-7000-8000-00000000dead")).Val(); n != 0 {
		t.Errorf("Begin created a record for a missing lead")
	}
}

func TestBeginIsUnavailableWithoutRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	p := delivery.New(srv.Client(t), time.Now)
	srv.Stop()
	if _, err := p.Begin(context.Background(), "01959a3c-8f00-7000-8000-000000000001", false, nil); intake.ErrorCode(err) != intake.EUnavailable {
		t.Errorf("Begin = %v, want EUnavailable", err)
	}
}

// While the CRM-gone flag is set, Begin says so and marks nothing: the
// lead is not pushed. A lead no longer received is still EConflict.
func TestBeginSaysTheCRMIsGone(t *testing.T) {
	t.Parallel()
	rdb, p := newPushes(t)
	ctx := context.Background()
	const id = "01959a3c-8f00-7000-8000-000000000001"
	setLead(t, rdb, id, "state", "received")
	if err := rdb.Set(ctx, redisstore.CRMGoneKey, "2026-01-01T00:00:00Z", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if push, err := p.Begin(ctx, id, false, nil); err != nil || push != (delivery.Push{CRMGone: true}) {
		t.Fatalf("Begin with the CRM gone = %+v, %v; want CRMGone", push, err)
	}
	if rdb.HExists(ctx, redisstore.LeadKey(id), "pushing").Val() {
		t.Error("Begin marked a lead it found the CRM gone for")
	}
	setLead(t, rdb, id, "state", "routed")
	if _, err := p.Begin(ctx, id, false, nil); intake.ErrorCode(err) != intake.EConflict {
		t.Errorf("Begin on a routed lead with the CRM gone = %v, want EConflict", err)
	}
}

// Begin records the router's assignment unless the lead has one — a
// retried route keeps its salesperson — and returns the one it has.
func TestBeginKeepsTheFirstAssignment(t *testing.T) {
	t.Parallel()
	rdb, p := newPushes(t)
	ctx := context.Background()
	const id = "01959a3c-8f00-7000-8000-000000000001"
	setLead(t, rdb, id, "state", "received")
	first := intake.Assignment{Rule: "kk", Team: "smb", Owner: "aigerim", CRMUserID: "12"}
	if push, err := p.Begin(ctx, id, false, &first); err != nil || push.Assignment != first {
		t.Fatalf("Begin = %+v, %v; want the assignment recorded", push, err)
	}
	if push, err := p.Begin(ctx, id, false, &intake.Assignment{Rule: "other", Team: "ent", Owner: "olga"}); err != nil || push.Assignment != first {
		t.Fatalf("second Begin = %+v, %v; want the first assignment kept", push, err)
	}
	if push, err := p.Begin(ctx, id, false, nil); err != nil || push.Assignment != first {
		t.Fatalf("Begin without one = %+v, %v; want the stored assignment", push, err)
	}
	// A lead blocked meanwhile keeps the assignment made for it, for when
	// it is routed after all.
	const blocked = "01959a3c-8f00-7000-8000-000000000002"
	setLead(t, rdb, blocked, "state", "blocked")
	if _, err := p.Begin(ctx, blocked, false, &first); intake.ErrorCode(err) != intake.EConflict {
		t.Fatalf("Begin on a blocked lead = %v, want EConflict", err)
	}
	if got := rdb.HGet(ctx, redisstore.LeadKey(blocked), "assign_owner").Val(); got != "aigerim" {
		t.Errorf("blocked lead's owner = %q, want the assignment recorded", got)
	}
	if _, err := p.Begin(ctx, "01959a3c-8f00-7000-8000-00000000dead", false, &first); intake.ErrorCode(err) != intake.ENotFound {
		t.Errorf("Begin on a missing lead = %v, want ENotFound", err)
	}
	if n := rdb.Exists(ctx, redisstore.LeadKey("01959a3c-8f00-7000-8000-00000000dead")).Val(); n != 0 {
		t.Errorf("Begin created a record for a missing lead")
	}
}

// With optin, the first Begin of a lead that asks for a link queues its
// opt-in request (the admission stream's "optin" entry) and marks it
// queued; a second Begin, a lead asking nothing, Begin without optin and a
// CRM gone queue nothing.
func TestBeginQueuesTheOptinOnce(t *testing.T) {
	t.Parallel()
	rdb, p := newPushes(t)
	ctx := context.Background()
	optins := func() (ids []string) {
		t.Helper()
		msgs, err := rdb.XRange(ctx, redisstore.AdmissionStream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if id, ok := m.Values["optin"].(string); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	lead := func(id string, fields ...any) string {
		t.Helper()
		setLead(t, rdb, id, append([]any{"state", "received"}, fields...)...)
		return id
	}
	asks := lead("01959a3c-8f00-7000-8000-000000000001", "asks_link", "1")
	for range 2 {
		if _, err := p.Begin(ctx, asks, true, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := optins(); len(got) != 1 || got[0] != asks {
		t.Fatalf("opt-in entries %q after two Begins, want one for %s", got, asks)
	}
	if rdb.HGet(ctx, redisstore.LeadKey(asks), "optin_queued").Val() != "1" {
		t.Error("the queued opt-in is not marked on the lead")
	}
	plain := lead("01959a3c-8f00-7000-8000-000000000002")
	unasked := lead("01959a3c-8f00-7000-8000-000000000003", "asks_link", "1")
	for _, c := range []struct {
		id    string
		optin bool
	}{{plain, true}, {unasked, false}} {
		if _, err := p.Begin(ctx, c.id, c.optin, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, redisstore.CRMGoneKey, "2026-01-01T00:00:00Z", 0).Err(); err != nil {
		t.Fatal(err)
	}
	gone := lead("01959a3c-8f00-7000-8000-000000000004", "asks_link", "1")
	if push, err := p.Begin(ctx, gone, true, nil); err != nil || !push.CRMGone {
		t.Fatalf("Begin with the CRM gone = %+v, %v", push, err)
	}
	if got := optins(); len(got) != 1 {
		t.Errorf("opt-in entries %q, want only the first lead's", got)
	}
}

// setLead writes fields into lead id's hash: as much of a lead as Begin reads.
func setLead(t *testing.T, rdb redis.UniversalClient, id string, fields ...any) {
	t.Helper()
	if err := rdb.HSet(context.Background(), redisstore.LeadKey(id), fields...).Err(); err != nil {
		t.Fatal(err)
	}
}

// newPushes starts a private Redis and the marks on it.
func newPushes(t *testing.T) (redis.UniversalClient, *delivery.Pushes) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	return rdb, delivery.New(rdb, time.Now)
}
