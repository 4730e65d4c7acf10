package walk

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
)

// setup fills a sorted set with n members m000… scored 1000+i ms (the
// newest last) and returns the client and the set's name.
func setup(t *testing.T, n int) (redis.UniversalClient, string) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	zs := make([]redis.Z, n)
	for i := range zs {
		zs[i] = redis.Z{Score: float64(1000 + i), Member: fmt.Sprintf("m%03d", i)}
	}
	if err := rdb.ZAdd(context.Background(), "walk-test", zs...).Err(); err != nil {
		t.Fatal(err)
	}
	return rdb, "walk-test"
}

// everyTenth keeps m000, m010, m020 …: a filter few members pass. It
// counts the members it was asked about.
func everyTenth(asked *int) Keep {
	return func(_ context.Context, members []string) ([]bool, error) {
		*asked += len(members)
		oks := make([]bool, len(members))
		for i, m := range members {
			n, _ := strconv.Atoi(strings.TrimPrefix(m, "m"))
			oks[i] = n%10 == 0
		}
		return oks, nil
	}
}

// pages walks w from its first page to its last and returns every page.
func pages(t *testing.T, rdb redis.Cmdable, w Walk, keep Keep) []Page {
	t.Helper()
	var out []Page
	for range 1000 {
		p, err := NewestFirst(context.Background(), rdb, w, keep)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
		if w.Cursor = p.Next; w.Cursor == "" {
			return out
		}
	}
	t.Fatal("the walk did not end")
	return nil
}

// TestBudgetPagesAcrossFilteredOutStretches: with a filter that one
// member in ten passes and a budget smaller than the stretch needed to
// fill a page, pages end short (some empty) with a cursor, never look at
// more than the budget, and together give every member that passes, once
// and newest first.
func TestBudgetPagesAcrossFilteredOutStretches(t *testing.T) {
	t.Parallel()
	rdb, index := setup(t, 200)
	var asked int
	got := pages(t, rdb, Walk{Index: index, Limit: 3, Budget: 15}, func(ctx context.Context, m []string) ([]bool, error) {
		before := asked
		oks, err := everyTenth(&asked)(ctx, m)
		if asked-before > 15 {
			t.Errorf("keep was asked about %d members at once; the budget is 15", asked-before)
		}
		return oks, err
	})
	var all []string
	short := 0
	for i, p := range got {
		if len(p.Members) > 3 {
			t.Fatalf("page %d holds %d members, limit 3", i, len(p.Members))
		}
		if len(p.Members) < 3 && p.Next != "" {
			short++
		}
		all = append(all, p.Members...)
	}
	var want []string
	for i := 190; i >= 0; i -= 10 {
		want = append(want, fmt.Sprintf("m%03d", i))
	}
	if !slices.Equal(all, want) {
		t.Fatalf("pages gave %v, want %v", all, want)
	}
	if short == 0 {
		t.Error("no page ended short on its budget: the budget was not applied")
	}
	if asked != 200 {
		t.Errorf("keep was asked about %d members over the whole walk, want each of 200 once", asked)
	}
}

// TestLimitWithoutBudget: with no budget a sparse filter still fills its
// pages, and the last page has no cursor.
func TestLimitWithoutBudget(t *testing.T) {
	t.Parallel()
	rdb, index := setup(t, 200)
	var asked int
	got := pages(t, rdb, Walk{Index: index, Limit: 7}, everyTenth(&asked))
	if len(got) != 3 || len(got[0].Members) != 7 || len(got[1].Members) != 7 || len(got[2].Members) != 6 || got[2].Next != "" {
		t.Fatalf("pages = %+v, want 7, 7 and a last 6", got)
	}
}

// TestSinceUntil: both bounds are included, and a cursor above until pages
// from until.
func TestSinceUntil(t *testing.T) {
	t.Parallel()
	rdb, index := setup(t, 50)
	w := Walk{Index: index, Since: time.UnixMilli(1010), Until: time.UnixMilli(1020), Limit: 100}
	p, err := NewestFirst(context.Background(), rdb, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Members) != 11 || p.Members[0] != "m020" || p.Members[10] != "m010" || p.Next != "" {
		t.Fatalf("since 1010 until 1020 = %+v, want m020 … m010", p)
	}
	w.Cursor = "1040.m040"
	if p, err = NewestFirst(context.Background(), rdb, w, nil); err != nil || len(p.Members) != 11 || p.Members[0] != "m020" {
		t.Fatalf("from a cursor above until = %+v %v, want m020 … m010", p, err)
	}
}

// TestEmpty: nothing passing, or an empty index, is an empty last page.
func TestEmpty(t *testing.T) {
	t.Parallel()
	rdb, index := setup(t, 100)
	none := func(_ context.Context, m []string) ([]bool, error) { return make([]bool, len(m)), nil }
	for _, w := range []Walk{{Index: index, Limit: 5}, {Index: "no-such-index", Limit: 5}} {
		p, err := NewestFirst(context.Background(), rdb, w, none)
		if err != nil || len(p.Members) != 0 || p.Next != "" {
			t.Errorf("%s: %+v %v, want an empty last page", w.Index, p, err)
		}
	}
	if _, err := NewestFirst(context.Background(), rdb, Walk{Index: index, Limit: 5, Cursor: "x"}, nil); intake.ErrorCode(err) != intake.EBadRequest {
		t.Errorf("a malformed cursor: %v, want bad_request", err)
	}
}
