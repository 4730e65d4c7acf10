package redisstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// filterFixture holds five fake leads, a minute apart, newest last:
//
//	0 acquiring,pos   utm google      smb/aigerim
//	1 payouts         utm Newsletter  smb/daniyar
//	2 acquiring       utm google      enterprise/olga (routed)
//	3 pos             utm test@example.com (kept sealed, no label)
//	4 acquiring       no utm          not assigned
type filterFixture struct {
	storeFixture
	ids   []string
	start time.Time
}

func setupFilters(t *testing.T) filterFixture {
	t.Helper()
	f := filterFixture{storeFixture: setupStore(t)}
	f.start = f.clock.Now()
	ctx := context.Background()
	leads := []struct {
		products    []string
		utm         string
		team, owner string
		routed      bool
	}{
		{[]string{"acquiring", "pos"}, "google", "smb", "aigerim", false},
		{[]string{"payouts"}, " Newsletter ", "smb", "daniyar", false},
		{[]string{"acquiring"}, "google", "enterprise", "olga", true},
		{[]string{"pos"}, "test@example.com", "", "", false},
		{[]string{"acquiring"}, "", "", "", false},
	}
	for i, l := range leads {
		sub := fakePerson()
		sub.Email = fmt.Sprintf("filter%d@example.com", i)
		sub.EmailKey, sub.Products = sub.Email, l.products
		a := application(sub)
		a.Meta.UTMSource = l.utm
		adm, err := f.store.Leads.Accept(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if l.team != "" {
			if err := f.rdb.HSet(ctx, leadKey(adm.ID), "assign_rule", "test", "assign_team", l.team, "assign_owner", l.owner).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if l.routed {
			if _, err := f.store.Leads.Transition(ctx, adm.ID, intake.Transition{From: intake.Received, To: intake.Routed}); err != nil {
				t.Fatal(err)
			}
		}
		f.ids = append(f.ids, adm.ID)
		f.clock.Add(time.Minute)
	}
	return f
}

// list pages through filter and returns the ids found, newest first.
func (f filterFixture) list(t *testing.T, filter intake.LeadFilter, limit int) []string {
	t.Helper()
	var got []string
	cursor := ""
	for range 100 {
		page, err := f.store.Leads.List(context.Background(), filter, cursor, limit)
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
	t.Fatal("the listing did not end")
	return nil
}

// TestListFilters: each filter alone and combined selects exactly the
// leads whose clear fields fit, newest first, over one page or many.
func TestListFilters(t *testing.T) {
	t.Parallel()
	f := setupFilters(t)
	ids := f.ids
	tests := []struct {
		name   string
		filter intake.LeadFilter
		want   []string
	}{
		{"none", intake.LeadFilter{}, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"state", intake.LeadFilter{State: intake.Received}, []string{ids[4], ids[3], ids[1], ids[0]}},
		{"team", intake.LeadFilter{Team: "smb"}, []string{ids[1], ids[0]}},
		{"owner", intake.LeadFilter{Owner: "olga"}, []string{ids[2]}},
		{"product", intake.LeadFilter{Product: "pos"}, []string{ids[3], ids[0]}},
		{"source", intake.LeadFilter{Source: "google"}, []string{ids[2], ids[0]}},
		{"source normalised when stored", intake.LeadFilter{Source: "newsletter"}, []string{ids[1]}},
		{"since", intake.LeadFilter{State: intake.Received, Since: f.start.Add(90 * time.Second)}, []string{ids[4], ids[3]}},
		{"until", intake.LeadFilter{State: intake.Received, Until: f.start.Add(time.Minute)}, []string{ids[1], ids[0]}},
		{"since and until", intake.LeadFilter{Since: f.start.Add(time.Minute), Until: f.start.Add(3 * time.Minute)},
			[]string{ids[3], ids[2], ids[1]}},
		{"combined", intake.LeadFilter{State: intake.Received, Team: "smb", Product: "acquiring", Source: "google"}, []string{ids[0]}},
		{"combined, state excludes", intake.LeadFilter{State: intake.Received, Owner: "olga"}, nil},
		{"empty", intake.LeadFilter{Product: "recurring"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, limit := range []int{1, 2, 50} {
				if got := f.list(t, tt.filter, limit); !slices.Equal(got, tt.want) {
					t.Errorf("limit %d: got %v, want %v", limit, got, tt.want)
				}
			}
		})
	}
}

// TestSourceLabelStoredInClear: the lead hash keeps the normalised label
// in clear beside the sealed record, and nothing for a tag that could hold
// personal data; the tag itself is still in the sealed metadata.
func TestSourceLabelStoredInClear(t *testing.T) {
	t.Parallel()
	f := setupFilters(t)
	ctx := context.Background()
	for i, want := range []string{"google", "newsletter", "google", "", ""} {
		got, err := f.rdb.HGet(ctx, leadKey(f.ids[i]), "utm_source").Result()
		if want == "" {
			if err == nil {
				t.Errorf("lead %d: utm_source %q in clear, want none", i, got)
			}
			continue
		}
		if got != want {
			t.Errorf("lead %d: utm_source %q (%v), want %q", i, got, err, want)
		}
	}
	l, err := f.store.Leads.Get(ctx, f.ids[3])
	if err != nil || l.Meta.UTMSource != "test@example.com" {
		t.Fatalf("sealed metadata of the lead without a label: %+v %v, want the tag kept", l.Meta, err)
	}
	all, err := f.rdb.HGetAll(ctx, leadKey(f.ids[3])).Result()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range all {
		if k != sealedRecord && v == "test@example.com" {
			t.Errorf("field %s holds the tag in clear", k)
		}
	}
}

// TestListPagesAcrossFilteredOutStretch: a lead that fits, many that do
// not (more than one read of the index holds), then another that fits:
// the listing goes on past the stretch, a page at a time, and ends.
func TestListPagesAcrossFilteredOutStretch(t *testing.T) {
	t.Parallel()
	f := setupFilters(t)                        // ids[2] and ids[0] are google's
	other := acceptMany(t, f.storeFixture, 150) // newer, none with a label
	filter := intake.LeadFilter{Source: "google"}
	if got := f.list(t, filter, 1); !slices.Equal(got, []string{f.ids[2], f.ids[0]}) {
		t.Fatalf("google, 1 a page, past %d others: %v, want %v", len(other), got, []string{f.ids[2], f.ids[0]})
	}
	page, err := f.store.Leads.List(context.Background(), intake.LeadFilter{Source: "yandex"}, "", 10)
	if err != nil || len(page.Leads) != 0 || page.Next != "" {
		t.Fatalf("a filter nothing fits: %+v %v, want an empty last page", page, err)
	}
}
