package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/paymtech/leadgate/intake"
)

// campaignKeys lists every campaign hash, marks hash and notice list: they
// name recipients by person hash. Each known campaign's keys are listed
// whether or not they exist yet: a send that marks its first batch between
// this listing and the script given it creates its in-flight and failed
// hashes, and the script looks at each key as it is by then.
func (s *Subjects) campaignKeys(ctx context.Context) ([]string, error) {
	keys, err := s.scanKeys(ctx, keyCampaignPfx+"*", func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, keyCampaigns, 0, -1).Result()
	if err != nil {
		return nil, intake.Unavailable("list campaigns", err)
	}
	listed := map[string]bool{}
	for _, k := range keys {
		listed[k] = true
	}
	for _, id := range ids {
		for _, suffix := range []string{"", keyCampaignMarks, keyCampaignFails, keyCampaignInFlight, keyCampaignTo} {
			if k := campaignKey(id) + suffix; !listed[k] {
				listed[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// keysNamingLeads returns the keys matching match whose string value names
// one of ids (the whole value, or its first word): idempotency keys
// ("<lead id> <fingerprint>") and dedupe keys ("<lead id>").
func (s *Subjects) keysNamingLeads(ctx context.Context, match string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys, err := s.scanKeys(ctx, match, func(string) bool { return true })
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	var out []string
	for start := 0; start < len(keys); start += subjectScanCount {
		batch := keys[start:min(start+subjectScanCount, len(keys))]
		vals, err := s.rdb.MGet(ctx, batch...).Result()
		if err != nil {
			return nil, intake.Unavailable("read keys", err)
		}
		for i, v := range vals {
			str, _ := v.(string)
			first, _, _ := strings.Cut(str, " ")
			if slices.Contains(ids, first) {
				out = append(out, batch[i])
			}
		}
	}
	return out, nil
}

// eraseScript destroys everything of a person at once and leaves their
// hash on the suppression list, so nothing can mail them again until they
// confirm a fresh opt-in. It refuses ('changed') when the person's leads
// are no longer those Go read.
//
// KEYS: 1 person hash, 2 lead set, 3 consent history, 4 lg:people, 5
// lg:marketing, 6 lg:optins:pending, 7 lg:suppressed, 8 lg:leads, 9..12
// the short-lived per-person keys, then every state index
// (ARGV[5] is the last fixed key), then ARGV[2] campaign keys, then ARGV[3]
// keys whose value names a lead (idempotency and dedupe keys), then per
// lead: lead hash, disclosure log, phone index, dedupe key.
// ARGV: 1 person, 2 campaign key count, 3 lead-naming key count, 4 lead
// count, 5 fixed key count, then the lead ids.
var eraseScript = script("erase.lua")

// Erase destroys everything held about person — every lead with its
// disclosure log and index entries, the profile, consent history, campaign marks,
// every index and campaign entry, the short-lived keys naming them or
// their leads — and puts their hash on the suppression list ("erased").
// Before anything is destroyed, beforeDestroy gets the CRM copies of their
// leads, to ask the CRMs to delete them (it may be called again with the
// same copies if the person's records change meanwhile); its error stops
// the erasure. ENotFound when nothing is held.
func (s *Subjects) Erase(ctx context.Context, person string, beforeDestroy func(context.Context, []intake.CRMCopy) error) (*intake.Erasure, error) {
	for range subjectMaxAttempts {
		e, err := s.eraseOnce(ctx, person, beforeDestroy)
		if !errors.Is(err, errChangedMeanwhile) {
			return e, err
		}
	}
	return nil, &intake.Error{Code: intake.EUnavailable, Message: "the person's records kept changing; try again"}
}

func (s *Subjects) eraseOnce(ctx context.Context, person string, beforeDestroy func(context.Context, []intake.CRMCopy) error) (*intake.Erasure, error) {
	held, err := s.people.Held(ctx, person)
	if err != nil {
		return nil, err
	}
	if !held {
		return nil, intake.NotHeld()
	}
	ids, err := s.rdb.ZRange(ctx, personKey(person)+keyLeads, 0, -1).Result()
	if err != nil {
		return nil, intake.Unavailable("load person", err)
	}
	leads, err := s.rawLeads(ctx, ids)
	if err != nil {
		return nil, err
	}
	campaigns, err := s.campaignKeys(ctx)
	if err != nil {
		return nil, err
	}
	naming, err := s.keysNamingLeads(ctx, keyIdemPfx+"*", ids)
	if err != nil {
		return nil, err
	}
	out := &intake.Erasure{Leads: ids}
	unreadable := false
	for _, rl := range leads {
		if sys, ref := rl.lead.HeldBy(); sys != "" {
			out.CRM = append(out.CRM, intake.CRMCopy{Lead: rl.id, System: sys, Ref: ref})
		}
		unreadable = unreadable || (len(rl.fields) > 0 && rl.rec == nil)
	}
	if unreadable { // its dedupe key cannot be computed: find it by its value
		dedupe, err := s.keysNamingLeads(ctx, keyDedupePfx+"*", ids)
		if err != nil {
			return nil, err
		}
		naming = append(naming, dedupe...)
	}
	if beforeDestroy != nil && len(out.CRM) > 0 {
		if err := beforeDestroy(ctx, out.CRM); err != nil {
			return nil, err
		}
	}
	keys := []string{personKey(person), personKey(person) + keyLeads, personKey(person) + keyConsents,
		keyPeople, keyMarketing, keyPendingOptins, keySuppressed, keyAll}
	keys = append(keys, perPersonKeys(person)...)
	keys = append(keys, stateKeys()...)
	fixed := len(keys)
	keys = append(keys, campaigns...)
	keys = append(keys, naming...)
	args := []any{person, len(campaigns), len(naming), len(ids), fixed}
	for _, rl := range leads {
		phone := noIndexKey
		if p := rl.fields["phone"]; p != "" {
			phone = keyPhonePfx + p
		}
		keys = append(keys, leadKey(rl.id), leadKey(rl.id)+keyTransfers, phone, s.dedupeKey(rl.rec, rl.fields["entity_type"]))
		args = append(args, rl.id)
	}
	res, err := eraseScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return nil, intake.Unavailable("erase person", err)
	}
	if res == "changed" {
		return nil, errChangedMeanwhile
	}
	if err := s.unadmit(ctx, ids); err != nil {
		return nil, intake.Unavailable("erase person's admissions", err)
	}
	return out, nil
}
