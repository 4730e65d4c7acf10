package redisstore

import (
	"context"
	"strings"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/pace"
)

// Retention is the purge of what may no longer be kept.
type Retention struct{ db }

const (
	purgeScanCount = 1000 // SCAN COUNT of the stale-key pass
	noCutoff       = -1   // a cutoff (ms) no record is older than: that kind is kept
)

// purgeLeadsScript destroys up to ARGV[3] leads last changed at or before
// ARGV[1] (ms), skipping the first ARGV[2] (a dry run pages on; a real run
// always starts at 0, as it removes what it finds). Listing and removal are
// one script, so a lead touched meanwhile is not in the batch. For each
// lead: its hash and disclosure log, its entries in lg:leads and its state
// index, its phone's and person's lead sets (Redis drops a set that becomes
// empty). A person left with no lead and no active or pending marketing
// consent goes at once, as purgePeopleScript describes; a person who stays
// keeps their consent history, minus the id of the destroyed lead.
//
// KEYS[1] lg:leads, KEYS[2] lg:people, KEYS[3] lg:marketing,
// KEYS[4] lg:optins:pending, KEYS[5..] lg:leads:state:*; ARGV[4] "1" for a
// dry run. Returns {leads listed, people destroyed} (their admission
// entries go after the pass: purgeAdmissionScript).
var purgeLeadsScript = script("purge_leads.lua")

// purgeAdmissionScript reads up to ARGV[2] entries of the admission stream
// (KEYS[1]) from ARGV[1] ("-" for its start, "(id" after an entry) and
// drops those whose lead no longer exists, which the workers would only
// queue for the router to drop. Returns {entries read, dropped, id of the
// last read}.
//
// The lead pass leaves this to one walk of the stream after it, rather
// than reading the whole stream for each batch's ids (unadmit): the
// stream holds every lead accepted since the workers last drained it, so
// with them behind (an ad burst, a stopped worker) each batch's script
// held Redis for milliseconds. An entry of a destroyed lead is harmless
// meanwhile: the router finds no lead and drops it.
var purgeAdmissionScript = script("purge_admission.lua")

// purgeOptinsScript drops up to ARGV[3] opt-ins pending since at or before
// ARGV[1] (ms), skipping ARGV[2]: the person's marketing state is cleared if
// it is still pending. Their consent history keeps the opt-in request, as
// the record of what was asked; it goes with the person.
//
// KEYS[1] lg:optins:pending; ARGV[4] "1" for a dry run.
var purgeOptinsScript = script("purge_optins.lua")

// purgePeopleScript looks at up to ARGV[4] people whose last submission is
// at or before ARGV[1] (ms), skipping ARGV[3], and destroys those left with
// no lead and no active or pending marketing consent: profile, contact,
// lead set, consent history and their place in every people
// index. The suppression list is not touched: a keyed hash stays there so an
// erased or bounced address is never mailed again.
//
// A person with consent is kept, contact and consent history included:
// consent to product news outlives the request it came with, until it is
// withdrawn. Such people are counted (kept).
//
// A dry run predicts the real run: leads past ARGV[1] and opt-ins pending
// since ARGV[2] count as gone already.
//
// KEYS[1] lg:people, KEYS[2] lg:leads, KEYS[3] lg:marketing,
// KEYS[4] lg:optins:pending; ARGV[5] "1" for a dry run.
// Returns {people looked at, destroyed, kept for consent}.
var purgePeopleScript = script("purge_people.lua")

// purgeStaleScript removes the keys among KEYS that have no TTL; ARGV[1]
// "1" only counts them. Checked and removed in one step, so a key given a
// TTL meanwhile stays.
var purgeStaleScript = script("purge_stale.lua")

// purgeCampaignsScript looks at up to ARGV[3] campaigns from index ARGV[2]
// of lg:campaigns and drops the recipient marks, failures and list of those finished
// at or before ARGV[1] (ms). Returns {campaigns looked at, cleaned}.
//
// KEYS[1] lg:campaigns; ARGV[4] "1" for a dry run.
var purgeCampaignsScript = script("purge_campaigns.lua")

// Purge runs one retention pass: leads past o.LeadRetention, unconfirmed
// opt-ins past o.OptinTTL, people left with nothing to keep them, recipient
// marks of long-finished campaigns, and short-lived keys that lost their
// TTL. It works in batches of o.Batch, each one short Redis call, and
// pauses between them to keep to o.Share of Redis's time, so intake keeps
// being served during a large catch-up; it is idempotent, and two passes at
// once do no harm (each batch is one atomic script that lists what it then
// removes). The queue's own residues (completed and archived tasks) are the
// jobs package's part.
//
// It reads no sealed field, so it needs no data key.
func (s *Retention) Purge(ctx context.Context, o intake.PurgeOptions) (intake.PurgeReport, error) {
	share, batch := o.Pacing()
	pacer := pace.New(share)
	now := s.now()
	leadCutoff, optinCutoff := int64(noCutoff), int64(noCutoff)
	if o.LeadRetention > 0 {
		leadCutoff = now.Add(-o.LeadRetention).UnixMilli()
	}
	if o.OptinTTL > 0 {
		optinCutoff = now.Add(-o.OptinTTL).UnixMilli()
	}
	dry := boolArg(o.DryRun)
	r := intake.PurgeReport{DryRun: o.DryRun}
	var err error

	// Leads first: their people go with them when nothing else keeps them.
	if leadCutoff != noCutoff {
		keys := []string{keyAll, keyPeople, keyMarketing, keyPendingOptins}
		for _, st := range intake.States {
			keys = append(keys, stateKey(st))
		}
		r.Leads, err = s.purgeBatches(ctx, pacer, o.DryRun, batch, func(offset int) (int, int, error) {
			res, err := purgeLeadsScript.Run(ctx, s.rdb, keys, leadCutoff, offset, batch, dry).Int64Slice()
			if err != nil {
				return 0, 0, err
			}
			r.People += int(res[1])
			return int(res[0]), int(res[0]), nil
		})
		// Every real pass, not only one that destroyed leads: an
		// interrupted pass leaves entries of the leads it destroyed.
		if err == nil && !o.DryRun {
			err = s.purgeAdmission(ctx, pacer, batch)
		}
		if err != nil {
			return r, intake.Unavailable("purge leads", err)
		}
	}
	if optinCutoff != noCutoff {
		r.Optins, err = s.purgeBatches(ctx, pacer, o.DryRun, batch, func(offset int) (int, int, error) {
			n, err := purgeOptinsScript.Run(ctx, s.rdb, []string{keyPendingOptins}, optinCutoff, offset, batch, dry).Int()
			return n, n, err
		})
		if err != nil {
			return r, intake.Unavailable("purge opt-ins", err)
		}
	}
	// Then everyone else past retention: in a dry run, all of them (this
	// pass predicts who would go); in a real run, those a lead's removal
	// left behind (an opt-in that was still pending then, a lead removed
	// some other way) and, counted, those kept for their consent.
	if leadCutoff != noCutoff {
		keys := []string{keyPeople, keyAll, keyMarketing, keyPendingOptins}
		n, err := s.purgeBatches(ctx, pacer, o.DryRun, batch, func(offset int) (int, int, error) {
			res, err := purgePeopleScript.Run(ctx, s.rdb, keys, leadCutoff, optinCutoff, offset, batch, dry).Int64Slice()
			if err != nil {
				return 0, 0, err
			}
			r.ConsentKept += int(res[2])
			return int(res[0]), int(res[1]), nil
		})
		r.People += n
		if err != nil {
			return r, intake.Unavailable("purge people", err)
		}
	}
	if r.StaleKeys, err = s.purgeStale(ctx, pacer, dry); err != nil {
		return r, intake.Unavailable("purge stale keys", err)
	}
	campaignCutoff := now.Add(-o.CampaignRetention).UnixMilli()
	for start := 0; ; start += batch {
		done := pacer.Start()
		res, err := purgeCampaignsScript.Run(ctx, s.rdb, []string{keyCampaigns}, campaignCutoff, start, batch, dry).Int64Slice()
		done()
		if err != nil {
			return r, intake.Unavailable("purge campaign marks", err)
		}
		r.Campaigns += int(res[1])
		if res[0] < int64(batch) {
			break
		}
	}
	return r, nil
}

// purgeBatches runs step until a batch comes back short and returns how
// many records it removed (or, in a dry run, would). step returns how many
// records it listed and how many of them it removed; those that stay (kept
// in a real run, all of them in a dry run) are skipped by the next offset.
func (s *Retention) purgeBatches(ctx context.Context, pacer *pace.Pacer, dryRun bool, batch int, step func(offset int) (listed, removed int, err error)) (int, error) {
	offset, total := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		done := pacer.Start()
		listed, removed, err := step(offset)
		done()
		if err != nil {
			return total, err
		}
		total += removed
		if listed < batch {
			return total, nil
		}
		offset += listed
		if !dryRun {
			offset -= removed
		}
	}
}

// purgeAdmission walks the admission stream, batch entries a call, and
// drops those whose lead is gone.
func (s *Retention) purgeAdmission(ctx context.Context, pacer *pace.Pacer, batch int) error {
	for from := "-"; ; {
		done := pacer.Start()
		res, err := purgeAdmissionScript.Run(ctx, s.rdb, []string{keyAdmission}, from, batch).Slice()
		done()
		if err != nil {
			return err
		}
		if res[0].(int64) < int64(batch) {
			return nil
		}
		from = "(" + res[2].(string)
	}
}

// purgeStale walks the keyspace with SCAN and removes the short-lived keys
// (rate limits, dedupe and idempotency keys, repeat counters, send claims,
// provider event ids) that have no TTL.
func (s *Retention) purgeStale(ctx context.Context, pacer *pace.Pacer, dry string) (int, error) {
	total := 0
	var cursor uint64
	for {
		done := pacer.Start()
		keys, next, err := s.rdb.Scan(ctx, cursor, keyAllPattern, purgeScanCount).Result()
		done()
		if err != nil {
			return total, err
		}
		var stale []string
		for _, k := range keys {
			for _, p := range shortLived {
				if strings.HasPrefix(k, p) {
					stale = append(stale, k)
					break
				}
			}
		}
		if len(stale) > 0 {
			done := pacer.Start()
			n, err := purgeStaleScript.Run(ctx, s.rdb, stale, dry).Int()
			done()
			if err != nil {
				return total, err
			}
			total += n
		}
		if cursor = next; cursor == 0 {
			return total, nil
		}
	}
}
