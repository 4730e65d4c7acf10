package redisstore

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

// TestContactEncodings: what Accept seals now is the binary contact
// (intake.Contact.MarshalBinary), and a contact sealed as JSON, as every
// one was before it, still opens — as it is, and after Rekey moved it to a
// new key (rekey re-seals the bytes as they are) — for a campaign and for
// the subject export.
func TestContactEncodings(t *testing.T) {
	t.Parallel()
	rf := setupRekey(t)
	ctx := context.Background()
	oldKeys := rotationKeys(t, oldDataKey)
	accepted, legacy := rf.people[1], rf.people[0] // people[0] confirmed marketing: a campaign reads them
	plain, err := oldKeys.Open(rf.rdb.HGet(ctx, personKey(accepted), "contact").Val(), accepted)
	if err != nil || len(plain) == 0 || plain[0] == '{' {
		t.Fatalf("Accept sealed %q (%v), want the binary form, not JSON", plain, err)
	}
	want := intake.Contact{Email: "test.legacy@example.com", Name: "Test Legacy"}
	asJSON, _ := json.Marshal(want)
	rf.rdb.HSet(ctx, personKey(legacy), "contact", oldKeys.Seal(asJSON, legacy))

	s := New(rf.rdb, rotationKeys(t, newDataKey, oldDataKey), rf.clock.Now)
	check := func(when string) {
		t.Helper()
		cands, err := s.Campaigns.Candidates(ctx, &intake.Campaign{ID: testCampaign, Kind: intake.KindCampaign}, "", intake.MaxBatchSize)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, rc := range cands.Recipients {
			if rc.Person == legacy {
				found = true
				if rc.Problem != "" || rc.Email != want.Email || rc.Name != want.Name {
					t.Errorf("%s: campaign recipient %+v, want %+v", when, rc, want)
				}
			}
		}
		if !found {
			t.Errorf("%s: the person is not among the campaign's candidates", when)
		}
		sub, err := s.Subjects.Subject(ctx, legacy)
		if err != nil || sub.Profile.Email != want.Email || sub.Profile.Name != want.Name {
			t.Errorf("%s: subject export %+v (%v), want %+v", when, sub, err, want)
		}
	}
	check("before rekey")
	if _, err := s.Rekey(ctx, 10, nil); err != nil {
		t.Fatal(err)
	}
	check("after rekey")
	if plain, err := s.keys.Open(rf.rdb.HGet(ctx, personKey(legacy), "contact").Val(), legacy); err != nil || string(plain) != string(asJSON) {
		t.Errorf("rekeyed contact opens to %q (%v), want the JSON it was", plain, err)
	}
}
