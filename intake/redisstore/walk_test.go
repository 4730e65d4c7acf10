package redisstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// acceptMany stores n leads of distinct fake people at the fixture's
// current time and returns their ids.
func acceptMany(t *testing.T, f storeFixture, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		sub := fakePerson()
		sub.Email = fmt.Sprintf("walk%d@example.com", i)
		sub.EmailKey = sub.Email
		a := application(sub)
		a.Meta.IP = fmt.Sprintf("192.0.2.%d", i%250) // under the per-IP limit
		adm, err := f.store.Leads.Accept(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, adm.ID)
	}
	return ids
}

// pageAll lists state st limit at a time from the first page to the last.
func pageAll(t *testing.T, f storeFixture, st intake.State, limit int) []string {
	t.Helper()
	var got []string
	cursor := ""
	for range 1000 {
		page, err := f.store.Leads.List(context.Background(), intake.LeadFilter{State: st}, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Leads {
			got = append(got, l.ID)
		}
		if cursor = page.Next; cursor == "" {
			return got
		}
	}
	t.Fatal("the walk did not end")
	return nil
}

// TestWalkPastManyInOneMillisecond: more leads in one millisecond than one
// read of the index holds (limit + 64) still page through, each once. The
// walk used to read limit+64 members from the cursor's millisecond, skip
// those already listed and, finding too few left, end the listing early.
func TestWalkPastManyInOneMillisecond(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ids := acceptMany(t, f, 80) // the clock stands still: one millisecond
	got := pageAll(t, f, intake.Received, 3)
	if len(got) != len(ids) {
		t.Fatalf("pages gave %d leads, want %d", len(got), len(ids))
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) || len(slices.Compact(got)) != len(ids) {
		t.Fatalf("pages gave %v, want every lead once", got)
	}
}

// TestWalkPastGoneRecords: a read whose members are all gone (erased between
// the index read and the record read) does not end the listing; the walk
// reads on to the records that are there.
func TestWalkPastGoneRecords(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	ids := acceptMany(t, f, 3)
	later := float64(f.clock.Now().Add(time.Minute).UnixMilli())
	gone := make([]redis.Z, 150)
	for i := range gone {
		gone[i] = redis.Z{Score: later, Member: fmt.Sprintf("gone-%03d", i)}
	}
	if err := f.rdb.ZAdd(ctx, stateKey(intake.Received), gone...).Err(); err != nil {
		t.Fatal(err)
	}
	page, err := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Received}, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Leads) != 2 || page.Next == "" {
		t.Fatalf("first page: %d leads, next %q; want 2 and a next page", len(page.Leads), page.Next)
	}
	if got := pageAll(t, f, intake.Received, 2); len(got) != len(ids) {
		t.Fatalf("pages gave %d leads, want %d", len(got), len(ids))
	}
}

// TestWalkCursorShapes: a cursor is "<ms>.<member>" with ms a non-negative
// decimal; anything else is EBadRequest, and every such cursor pages.
func TestWalkCursorShapes(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	acceptMany(t, f, 2)
	for _, bad := range []string{"x", ".", "5.", ".id", "-5.id", "+5.id", " 5.id", "5 .id", "1e3.id", "0x10.id",
		"99999999999999999999.id", "1700000000000-0"} {
		if _, err := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Received}, bad, 5); intake.ErrorCode(err) != intake.EBadRequest {
			t.Errorf("cursor %q: %v, want bad_request", bad, err)
		}
	}
	for _, good := range []string{"0.x", "9999999999999.zzz", "1.a.b"} {
		if _, err := f.store.Leads.List(ctx, intake.LeadFilter{State: intake.Received}, good, 5); err != nil {
			t.Errorf("cursor %q: %v, want a page", good, err)
		}
	}
}
