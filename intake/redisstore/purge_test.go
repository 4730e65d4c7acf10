package redisstore

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

const (
	testRetention = 30 * 24 * time.Hour
	testOptinTTL  = 7 * 24 * time.Hour
	day           = 24 * time.Hour
)

// purgeOptions are the retention settings of the purge tests.
func purgeOptions(batch int) intake.PurgeOptions {
	return intake.PurgeOptions{LeadRetention: testRetention, OptinTTL: testOptinTTL, CampaignRetention: 7 * day, Batch: batch}
}

// person returns the n-th obviously fake applicant, with their own email
// and phone.
func person(name string, n int) *intake.Submission {
	sub := fakePerson()
	sub.Name = "Test " + name
	sub.Email = fmt.Sprintf("test.%s@example.com", strings.ToLower(name))
	sub.EmailKey = sub.Email
	sub.Phone = fmt.Sprintf("+7701%07d", n)
	return sub
}

// purgeWorld is a store holding, on the test clock:
//   - expired: a routed lead (with a disclosure log) of a person with
//     nothing else, last changed past retention;
//   - consenting: an expired lead of a person with active marketing consent;
//   - shared: a person with an expired lead and a fresh one;
//   - pending: a fresh lead whose opt-in has waited past the TTL;
//   - fresh: a fresh lead of a person with nothing else;
//   - a rate-limit key without a TTL and one with;
//   - a campaign finished long ago and one still sending, both with marks.
type purgeWorld struct {
	storeFixture
	expired   []string // ids of the leads past retention
	fresh     []string // ids of the leads that must stay
	gone      []string // every value that must not remain: ids, person hashes, sealed values
	consent   string   // the person hash kept for their consent
	pending   string   // the person hash whose opt-in expires
	campaigns [2]string
}

func setupPurgeWorld(t *testing.T) *purgeWorld {
	t.Helper()
	w := &purgeWorld{storeFixture: setupStore(t)}
	ctx := context.Background()
	accept := func(sub *intake.Submission, activeConsent bool) string {
		t.Helper()
		a := application(sub)
		if activeConsent {
			sub.ConsentMarketing, a.DoubleOptIn = true, false
		}
		adm, err := w.store.Leads.Accept(ctx, a)
		if err != nil || adm.Duplicate {
			t.Fatalf("Accept = %+v, %v", adm, err)
		}
		return adm.ID
	}
	keys := testKeys(t)
	personOf := func(sub *intake.Submission) string { return keys.Index("email", sub.EmailKey) }

	// Day 0.
	start := w.clock.Now()
	expiredSub := person("Expiredov", 1)
	expired := accept(expiredSub, false)
	if _, err := w.store.Leads.Transition(ctx, expired, intake.Transition{From: intake.Received, To: intake.Routed,
		Route:    intake.Route{System: "file", Ref: "ref-1", At: start},
		Transfer: &intake.Transfer{Recipient: "crm:file", At: start, Purpose: "sales", Ref: "ref-1"}}); err != nil {
		t.Fatal(err)
	}
	consentSub := person("Consentova", 2)
	consenting := accept(consentSub, true)
	sharedSub := person("Sharedov", 3)
	sharedOld := accept(sharedSub, false)
	w.expired = []string{expired, consenting, sharedOld}
	w.consent = personOf(consentSub)
	w.gone = append(w.gone, w.expired...)
	w.gone = append(w.gone, personOf(expiredSub))
	for _, id := range w.expired {
		w.gone = append(w.gone, w.rdb.HGet(ctx, leadKey(id), sealedRecord).Val())
	}
	w.gone = append(w.gone, w.rdb.HGet(ctx, personKey(personOf(expiredSub)), "contact").Val())

	// Day 23: a request with an opt-in never confirmed.
	w.clock.Add(23 * day)
	pendingSub := person("Pendingova", 4)
	pendingSub.ConsentMarketing = true
	w.pending = personOf(pendingSub)
	w.fresh = append(w.fresh, accept(pendingSub, false))

	// Day 31: the purge's now. Leads of day 0 are past 30 days.
	w.clock.Add(8 * day)
	w.fresh = append(w.fresh, accept(person("Freshova", 5), false))
	sharedNew := *sharedSub // the same person from another phone
	sharedNew.Phone = "+77010000006"
	w.fresh = append(w.fresh, accept(&sharedNew, false))

	w.rdb.Set(ctx, keyRatePfx+"ip:lost-its-ttl", "3", 0)
	w.rdb.Set(ctx, keyRatePfx+"ip:still-counting", "1", time.Hour)
	for i, finished := range []int64{start.UnixMilli(), 0} {
		id := fmt.Sprintf("0196campaign-%d", i)
		w.campaigns[i] = id
		w.rdb.ZAdd(ctx, keyCampaigns, redis.Z{Score: float64(start.UnixMilli()), Member: id})
		w.rdb.HSet(ctx, campaignKey(id), "kind", string(intake.KindCampaign), "state", string(intake.CampaignSending), "created", start.UnixMilli())
		if finished > 0 {
			w.rdb.HSet(ctx, campaignKey(id), "state", string(intake.CampaignDone), "finished", finished)
		}
		w.rdb.HSet(ctx, campaignKey(id)+keyCampaignMarks, personOf(pendingSub), "s")
		w.rdb.ZAdd(ctx, campaignKey(id)+keyCampaignTo, redis.Z{Member: personOf(pendingSub)})
		w.rdb.HSet(ctx, campaignKey(id)+keyCampaignInFlight, personOf(pendingSub), "1") // a crash's leftover
	}
	return w
}

// dump reads every key in Redis and its whole value, as text per key; with
// withTTL false it leaves out keys that expire within a day on their own
// (dedupe and idempotency keys, rate counters: Redis's clock does not follow
// the test's).
func dump(t *testing.T, rdb redis.UniversalClient, withTTL bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		ttl := rdb.PTTL(ctx, k).Val()
		if !withTTL && ttl > 0 && ttl <= 25*time.Hour {
			continue
		}
		var v string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "hash":
			h := rdb.HGetAll(ctx, k).Val()
			for _, f := range slices.Sorted(maps.Keys(h)) {
				v += f + "=" + h[f] + "\n"
			}
		case "list":
			v = strings.Join(rdb.LRange(ctx, k, 0, -1).Val(), "\n")
		case "set":
			v = strings.Join(slices.Sorted(slices.Values(rdb.SMembers(ctx, k).Val())), "\n")
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				v += fmt.Sprintf("%s %v\n", z.Member, z.Score)
			}
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				v += fmt.Sprint(m.Values) + "\n"
			}
		default:
			t.Fatalf("key %s has type %s the dump does not read", k, typ)
		}
		out[k] = v
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// leads loads every lead of ids, failing when one is missing.
func (w *purgeWorld) leads(t *testing.T, ids []string) []*intake.Lead {
	t.Helper()
	var out []*intake.Lead
	for _, id := range ids {
		l, err := w.store.Leads.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		out = append(out, l)
	}
	return out
}

func TestPurge(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{0, 1, 2} { // 0: the default; 1 and 2 page through every pass
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			t.Parallel()
			w := setupPurgeWorld(t)
			ctx := context.Background()
			freshBefore := w.leads(t, w.fresh)
			want := intake.PurgeReport{Leads: 3, People: 1, Optins: 1, StaleKeys: 1, Campaigns: 1, ConsentKept: 1}

			// A dry run counts the same and removes nothing.
			before := dump(t, w.rdb, true)
			o := purgeOptions(batch)
			o.DryRun = true
			r, err := w.store.Retention.Purge(ctx, o)
			wantDry := want
			wantDry.DryRun = true
			if err != nil || r != wantDry {
				t.Fatalf("dry run = %+v, %v; want %+v", r, err, wantDry)
			}
			if after := dump(t, w.rdb, true); !maps.Equal(before, after) {
				t.Fatal("the dry run changed Redis")
			}

			r, err = w.store.Retention.Purge(ctx, purgeOptions(batch))
			if err != nil || r != want {
				t.Fatalf("purge = %+v, %v; want %+v", r, err, want)
			}
			kept := dump(t, w.rdb, false)
			for k, v := range kept {
				for _, g := range w.gone {
					if strings.Contains(k, g) || strings.Contains(v, g) {
						t.Errorf("key %s still holds %.40q of an expired lead", k, g)
					}
				}
			}
			for _, id := range w.expired {
				if _, err := w.store.Leads.Get(ctx, id); intake.ErrorCode(err) != intake.ENotFound {
					t.Errorf("Get(expired %s) = %v, want ENotFound", id, err)
				}
			}
			if freshAfter := w.leads(t, w.fresh); !reflect.DeepEqual(freshBefore, freshAfter) {
				t.Errorf("fresh leads changed:\n%+v\nwant\n%+v", freshAfter, freshBefore)
			}
			// The routing entries of the destroyed leads went (above); the
			// fresh leads' stay for the workers.
			var wantAdmissions []string
			for _, id := range w.fresh {
				wantAdmissions = append(wantAdmissions, "route "+id)
			}
			if got := admissions(t, w.rdb); !slices.Equal(got, wantAdmissions) {
				t.Errorf("admission stream = %q, want %q", got, wantAdmissions)
			}

			// The consenting person keeps contact and consent history, without
			// the id of the destroyed lead.
			p := personKey(w.consent)
			if kept[p] == "" || !strings.Contains(kept[p], "contact=") || !strings.Contains(kept[p], "marketing=active") {
				t.Errorf("consenting person = %q, want kept with contact and consent", kept[p])
			}
			events := w.rdb.LRange(ctx, p+keyConsents, 0, -1).Val()
			if len(events) != 1 || !strings.HasPrefix(events[0], "- ") {
				t.Errorf("consent history = %.60q, want the opt-in kept without its lead id", events)
			} else if _, err := testKeys(t).Open(events[0][2:], w.consent); err != nil {
				t.Errorf("the kept opt-in proof does not open: %v", err)
			}
			for _, index := range []string{keyPeople, keyMarketing} {
				if w.rdb.ZScore(ctx, index, w.consent).Err() != nil {
					t.Errorf("%s lost the consenting person", index)
				}
			}
			// The unconfirmed opt-in is dropped; the person and lead stay.
			if m := w.rdb.HGet(ctx, personKey(w.pending), "marketing").Val(); m != "" {
				t.Errorf("pending person's marketing = %q, want cleared", m)
			}
			if w.rdb.ZScore(ctx, keyPendingOptins, w.pending).Err() != redis.Nil {
				t.Error("the expired opt-in is still pending")
			}
			if _, ok := kept[keyRatePfx+"ip:lost-its-ttl"]; ok {
				t.Error("a rate-limit key without a TTL stayed")
			}
			if w.rdb.Exists(ctx, keyRatePfx+"ip:still-counting").Val() != 1 {
				t.Error("a live rate-limit key was removed")
			}
			old, live := campaignKey(w.campaigns[0]), campaignKey(w.campaigns[1])
			if w.rdb.Exists(ctx, old+keyCampaignMarks, old+keyCampaignTo, old+keyCampaignInFlight).Val() != 0 || w.rdb.Exists(ctx, old).Val() != 1 {
				t.Error("a campaign finished long ago: want its marks and recipient list gone, the campaign kept")
			}
			if w.rdb.Exists(ctx, live+keyCampaignMarks, live+keyCampaignTo).Val() != 2 {
				t.Error("a sending campaign lost its marks")
			}

			// A second purge finds nothing more and changes nothing.
			r, err = w.store.Retention.Purge(ctx, purgeOptions(batch))
			if want := (intake.PurgeReport{ConsentKept: 1}); err != nil || r != want {
				t.Fatalf("second purge = %+v, %v; want %+v", r, err, want)
			}
			if again := dump(t, w.rdb, false); !maps.Equal(kept, again) {
				t.Error("a second purge changed Redis")
			}
		})
	}
}

func TestPurgeZeroRetentionKeeps(t *testing.T) {
	t.Parallel()
	w := setupPurgeWorld(t)
	ctx := context.Background()
	r, err := w.store.Retention.Purge(ctx, intake.PurgeOptions{CampaignRetention: 1000 * day})
	if want := (intake.PurgeReport{StaleKeys: 1}); err != nil || r != want {
		t.Fatalf("purge with zero retentions = %+v, %v; want only the stale key", r, err)
	}
	w.leads(t, w.expired)
	if m := w.rdb.HGet(ctx, personKey(w.pending), "marketing").Val(); m != intake.MarketingPending {
		t.Errorf("pending opt-in = %q, want kept", m)
	}
}

// TestPurgeConcurrent runs two purges side by side over many people, a
// third of them with consent, in small batches: together they remove each
// record once, and what stays is what one purge leaves.
func TestPurgeConcurrent(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	const n = 60
	var fresh []string
	for i := range n {
		a := application(person(fmt.Sprintf("Many%02d", i), 100+i))
		if i%3 == 0 {
			a.Submission.ConsentMarketing, a.DoubleOptIn = true, false
		}
		if _, err := f.store.Leads.Accept(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(testRetention + day)
	for i := range 5 {
		adm := f.accept(t, person(fmt.Sprintf("Fresh%02d", i), 900+i))
		fresh = append(fresh, adm.ID)
	}
	o := purgeOptions(7)
	o.DryRun = true
	dry, err := f.store.Retention.Purge(ctx, o)
	if want := (intake.PurgeReport{Leads: n, People: n - n/3, ConsentKept: n / 3, DryRun: true}); err != nil || dry != want {
		t.Fatalf("dry run = %+v, %v; want %+v", dry, err, want)
	}

	var wg sync.WaitGroup
	reports := make([]intake.PurgeReport, 2)
	errs := make([]error, 2)
	for i := range reports {
		wg.Go(func() { reports[i], errs[i] = f.store.Retention.Purge(ctx, purgeOptions(7)) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("purges: %v, %v", errs[0], errs[1])
	}
	if leads, people := reports[0].Leads+reports[1].Leads, reports[0].People+reports[1].People; leads != n || people != n-n/3 {
		t.Fatalf("two purges removed %d leads and %d people, want %d and %d", leads, people, n, n-n/3)
	}
	for _, id := range fresh {
		if _, err := f.store.Leads.Get(ctx, id); err != nil {
			t.Errorf("fresh lead: %v", err)
		}
	}
	if all := f.rdb.ZCard(ctx, keyAll).Val(); all != int64(len(fresh)) {
		t.Errorf("lg:leads holds %d leads, want the %d fresh ones", all, len(fresh))
	}
	if people := f.rdb.ZCard(ctx, keyPeople).Val(); people != int64(len(fresh)+n/3) {
		t.Errorf("lg:people holds %d, want the fresh and the consenting (%d)", people, len(fresh)+n/3)
	}
	if r, err := f.store.Retention.Purge(ctx, purgeOptions(7)); err != nil || r != (intake.PurgeReport{ConsentKept: n / 3}) {
		t.Errorf("a third purge = %+v, %v; want nothing more", r, err)
	}
}

// TestPurgeLeadsTakesTheirPeople checks that the lead pass itself removes a
// person its last lead leaves with nothing (the people pass is then only a
// backstop), and keeps the others.
func TestPurgeLeadsTakesTheirPeople(t *testing.T) {
	t.Parallel()
	w := setupPurgeWorld(t)
	keys := []string{keyAll, keyPeople, keyMarketing, keyPendingOptins}
	for _, st := range intake.States {
		keys = append(keys, stateKey(st))
	}
	cutoff := w.clock.Now().Add(-testRetention).UnixMilli()
	res, err := purgeLeadsScript.Run(context.Background(), w.rdb, keys, cutoff, 0, 10, "0").Int64Slice()
	if err != nil || !slices.Equal(res, []int64{3, 1}) {
		t.Fatalf("lead pass = %v, %v; want 3 leads and 1 person", res, err)
	}
	if w.rdb.Exists(context.Background(), personKey(w.consent)).Val() != 1 {
		t.Error("the lead pass removed a person with consent")
	}
}

// TestPurgeBatchByPacing: the lead pass asks Redis for as many leads a
// call as PurgeOptions.Pacing gives — 4 when paced, 25 flat out, Batch
// when set — read off the server's own log of every call (SLOWLOG at 0 µs).
func TestPurgeBatchByPacing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		share float64
		batch int
		want  string
	}{{0, 0, "4"}, {1, 0, "25"}, {1, 3, "3"}} {
		f := setupStore(t)
		ctx := context.Background()
		if err := f.rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
			t.Fatal(err)
		}
		o := purgeOptions(c.batch)
		o.Share = c.share
		if _, err := f.store.Retention.Purge(ctx, o); err != nil {
			t.Fatal(err)
		}
		log, err := f.rdb.SlowLogGet(ctx, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var asked []string // the lead script's ARGV[3] in every call
		for _, e := range log {
			if len(e.Args) > 2 && strings.EqualFold(e.Args[0], "evalsha") && e.Args[1] == purgeLeadsScript.Hash() {
				asked = append(asked, e.Args[len(e.Args)-2])
			}
		}
		if len(asked) == 0 || slices.ContainsFunc(asked, func(a string) bool { return a != c.want }) {
			t.Errorf("share %v, batch %d: the lead pass asked for %v leads a call, want %s each time", c.share, c.batch, asked, c.want)
		}
	}
}

// TestPurgeReadsByRank: the passes read each batch by rank (ZRANGE), never
// through ZRANGEBYSCORE's LIMIT, which walks every entry it skips: a pass
// skips all it keeps (people kept for their consent, everything in a dry
// run), so with that walk each call cost as much as the entries kept before
// it (50,000 people kept: 1.1-2.8 ms a call, BENCHMARKS.md).
func TestPurgeReadsByRank(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	for i := range 12 {
		a := application(person(fmt.Sprintf("Rank%02d", i), 300+i))
		a.Submission.ConsentMarketing, a.DoubleOptIn = i%2 == 0, false
		if _, err := f.store.Leads.Accept(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(testRetention + day)
	for _, dry := range []bool{true, false} {
		o := purgeOptions(3)
		o.DryRun = dry
		if r, err := f.store.Retention.Purge(ctx, o); err != nil || r.Leads != 12 || r.ConsentKept != 6 {
			t.Fatalf("purge (dry run %v) = %+v, %v; want 12 leads, 6 people kept", dry, r, err)
		}
	}
	stats := f.rdb.Info(ctx, "commandstats").Val()
	if strings.Contains(stats, "cmdstat_zrangebyscore:") || !strings.Contains(stats, "cmdstat_zrange:") {
		t.Errorf("the passes read their batches by score offset, or not by rank:\n%s", stats)
	}
}
