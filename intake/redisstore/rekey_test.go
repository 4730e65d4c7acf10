package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/seal"
)

var (
	oldDataKey = []byte(strings.Repeat("o", 32))
	newDataKey = []byte(strings.Repeat("n", 32))
	indexKey   = []byte(strings.Repeat("i", 32))
)

func rotationKeys(t *testing.T, data []byte, old ...[]byte) *seal.Keys {
	t.Helper()
	k, err := seal.NewKeys(data, old, indexKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rekeyFixture is a store written under oldDataKey: two people (one with a
// confirmed marketing opt-in, so two consent events), their leads, and a
// campaign with a sealed test address: 7 sealed values.
type rekeyFixture struct {
	storeFixture
	leads    []string
	people   []string
	campaign string
}

const testCampaign = "0196a000-0000-7000-8000-00000000c0de"

func setupRekey(t *testing.T) rekeyFixture {
	t.Helper()
	f := setupStore(t)
	ctx := context.Background()
	old := New(f.rdb, rotationKeys(t, oldDataKey), f.clock.Now)
	a := fakePerson()
	a.ConsentMarketing = true
	b := &intake.Submission{EntityType: intake.SoleProprietor, Name: "Test Testov", Phone: "+77010000000",
		Email: "test.testov@example.com", EmailKey: "test.testov@example.com", Lang: "kk"}
	rf := rekeyFixture{storeFixture: f, campaign: testCampaign}
	for _, sub := range []*intake.Submission{a, b} {
		adm, err := old.Leads.Accept(ctx, application(sub))
		if err != nil {
			t.Fatal(err)
		}
		l, err := old.Leads.Get(ctx, adm.ID)
		if err != nil {
			t.Fatal(err)
		}
		rf.leads, rf.people = append(rf.leads, adm.ID), append(rf.people, l.Person)
	}
	if ok, err := old.People.ConfirmMarketing(ctx, rf.people[0], intake.Proof{At: f.clock.Now(), IP: "192.0.2.44", UserAgent: "test-agent"}); !ok || err != nil {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	f.rdb.HSet(ctx, "lg:campaign:"+testCampaign, "state", "done", "test_to", old.keys.Seal([]byte("test.testov@example.com"), testCampaign))
	f.rdb.ZAdd(ctx, "lg:campaigns", redis.Z{Score: 1, Member: testCampaign})
	return rf
}

// sealedValues returns every sealed value of the fixture by where it is.
func (rf rekeyFixture) sealedValues(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, id := range rf.leads {
		out["lead "+id] = rf.rdb.HGet(ctx, leadKey(id), sealedRecord).Val()
	}
	for _, p := range rf.people {
		out["contact "+p] = rf.rdb.HGet(ctx, personKey(p), "contact").Val()
		for i, e := range rf.rdb.LRange(ctx, personKey(p)+keyConsents, 0, -1).Val() {
			_, sealed, _ := strings.Cut(e, " ")
			out["consent "+p+" "+string(rune('0'+i))] = sealed
		}
	}
	out["campaign"] = rf.rdb.HGet(ctx, "lg:campaign:"+rf.campaign, "test_to").Val()
	if len(out) != 7 {
		t.Fatalf("%d sealed values, want 7 (2 leads, 2 contacts, 2 consent events, 1 campaign)", len(out))
	}
	return out
}

// checkReadable opens every sealed value of the fixture with keys.
func (rf rekeyFixture) checkReadable(t *testing.T, keys *seal.Keys) {
	t.Helper()
	s := New(rf.rdb, keys, rf.clock.Now)
	ctx := context.Background()
	for _, id := range rf.leads {
		if l, err := s.Leads.Get(ctx, id); err != nil || l.Email == "" || l.Phone == "" {
			t.Fatalf("lead %s: %v", id, err)
		}
	}
	for _, p := range rf.people {
		if c, err := s.openContact(rf.rdb.HGet(ctx, personKey(p), "contact").Val(), p); err != nil || c.Email == "" {
			t.Fatalf("contact of %s: %+v %v", p, c, err)
		}
		for _, e := range rf.rdb.LRange(ctx, personKey(p)+keyConsents, 0, -1).Val() {
			_, sealed, _ := strings.Cut(e, " ")
			if _, err := keys.Open(sealed, p); err != nil {
				t.Fatalf("consent event of %s: %v", p, err)
			}
		}
	}
	if to, err := keys.Open(rf.rdb.HGet(ctx, "lg:campaign:"+rf.campaign, "test_to").Val(), rf.campaign); err != nil || string(to) != "test.testov@example.com" {
		t.Fatalf("campaign test_to: %v", err)
	}
}

func TestRekey(t *testing.T) {
	t.Parallel()
	rf := setupRekey(t)
	ctx := context.Background()
	rotated := rotationKeys(t, newDataKey, oldDataKey)
	rf.checkReadable(t, rotated)
	before := rf.sealedValues(t)
	leadsIndex := rf.rdb.ZRangeWithScores(ctx, keyAll, 0, -1).Val()
	updated := rf.rdb.HGet(ctx, leadKey(rf.leads[0]), "updated").Val()

	s := New(rf.rdb, rotated, rf.clock.Now)
	var batches int
	st, err := s.Rekey(ctx, 1, func(RekeyStats) { batches++ })
	if err != nil {
		t.Fatal(err)
	}
	want := []RekeyCount{{"lead", 2, 2, 0, 0}, {"contact", 2, 2, 0, 0}, {"consent", 2, 2, 0, 0}, {"campaign_test_to", 1, 1, 0, 0}}
	if len(st.Fields) != len(want) {
		t.Fatalf("stats %+v", st)
	}
	for i := range want {
		if st.Fields[i] != want[i] {
			t.Errorf("%s", st.Fields[i])
		}
	}
	if batches != 7 { // one record a batch: 2 leads, 2 people twice, 1 campaign
		t.Errorf("progress called %d times, want 7", batches)
	}
	after := rf.sealedValues(t)
	for where, v := range after {
		if v == before[where] || !rotated.SealedUnderCurrent(v) {
			t.Errorf("%s is not re-sealed under the new key", where)
		}
	}
	// Only the sealed values changed: no retention clock was reset.
	if got := rf.rdb.ZRangeWithScores(ctx, keyAll, 0, -1).Val(); len(got) != len(leadsIndex) || got[0] != leadsIndex[0] || got[1] != leadsIndex[1] {
		t.Errorf("lead index changed: %v → %v", leadsIndex, got)
	}
	if got := rf.rdb.HGet(ctx, leadKey(rf.leads[0]), "updated").Val(); got != updated {
		t.Errorf("lead updated %s → %s", updated, got)
	}
	// The old key can go now.
	rf.checkReadable(t, rotationKeys(t, newDataKey))
	if _, err := rotationKeys(t, oldDataKey).Open(after["lead "+rf.leads[0]], rf.leads[0]); err == nil {
		t.Error("a rotated lead still opens with the old key alone")
	}

	again, err := s.Rekey(ctx, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tot := again.Total(); tot.Seen != 7 || tot.Rekeyed != 0 || tot.Changed != 0 || tot.Unreadable != 0 {
		t.Errorf("second run: %s, want nothing to do", tot)
	}
	for where, v := range rf.sealedValues(t) {
		if v != after[where] {
			t.Errorf("second run rewrote %s", where)
		}
	}
}

func TestRekeyUnreadable(t *testing.T) {
	t.Parallel()
	rf := setupRekey(t)
	ctx := context.Background()
	// A lead sealed under a key nobody configured any more.
	lost := rotationKeys(t, []byte(strings.Repeat("x", 32)))
	rf.rdb.HSet(ctx, leadKey(rf.leads[1]), sealedRecord, lost.Seal([]byte(`{}`), rf.leads[1]))
	lostValue := rf.rdb.HGet(ctx, leadKey(rf.leads[1]), sealedRecord).Val()

	s := New(rf.rdb, rotationKeys(t, newDataKey, oldDataKey), rf.clock.Now)
	st, err := s.Rekey(ctx, 10, nil)
	if !errors.Is(err, ErrUnreadable) {
		t.Fatalf("err = %v, want ErrUnreadable", err)
	}
	if tot := st.Total(); tot.Unreadable != 1 || tot.Rekeyed != 6 {
		t.Fatalf("%s, want 1 unreadable and the other 6 rekeyed", tot)
	}
	if got := rf.rdb.HGet(ctx, leadKey(rf.leads[1]), sealedRecord).Val(); got != lostValue {
		t.Fatal("an unreadable value was changed")
	}
}

// TestRekeyScriptComparesAndSets: a value live traffic changed between
// the rotation's read and its write is left alone.
func TestRekeyScriptComparesAndSets(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	f.rdb.HSet(ctx, "lg:lead:x", "pii", "newer")
	f.rdb.RPush(ctx, "lg:person:p:consents", "- a", "- newer")
	for _, c := range []struct {
		key, kind, where, old string
		done                  int
	}{
		{"lg:lead:x", "h", "pii", "stale", 0},
		{"lg:lead:gone", "h", "pii", "stale", 0},
		{"lg:person:p:consents", "l", "1", "- stale", 0},
		{"lg:person:p:consents", "l", "5", "- stale", 0},
		{"lg:person:p:consents", "l", "0", "- a", 1},
		{"lg:lead:x", "h", "pii", "newer", 1},
	} {
		n, err := rekeyScript.Run(ctx, f.rdb, []string{c.key}, c.kind, c.where, c.old, "rekeyed").Int()
		if err != nil || n != c.done {
			t.Errorf("%+v: %d %v", c, n, err)
		}
	}
	if v := f.rdb.LRange(ctx, "lg:person:p:consents", 0, -1).Val(); strings.Join(v, "|") != "rekeyed|- newer" {
		t.Errorf("list = %q", v)
	}
	if v := f.rdb.HGet(ctx, "lg:lead:x", "pii").Val(); v != "rekeyed" {
		t.Errorf("hash = %q", v)
	}
	if n := f.rdb.Exists(ctx, "lg:lead:gone").Val(); n != 0 {
		t.Error("the script created a record that was gone")
	}
}
