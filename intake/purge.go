package intake

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	defaultBatch   = 50                   // PurgeOptions.Batch when zero: one script runs well under a millisecond
	maxBatch       = 5000                 // a larger Batch is cut to this: one script must stay short
	defaultShare   = 0.5                  // PurgeOptions.Share when zero
	minPause       = 2 * time.Millisecond // pauses are saved up to this: shorter sleeps overshoot
	purgeScanCount = 1000                 // SCAN COUNT of the stale-key pass
	noCutoff       = -1                   // a cutoff (ms) no record is older than: that kind is kept
)

// shortLived are the prefixes of keys that are always written with a TTL.
// One without is a bug somewhere (or a crash between a pipelined write and
// its EXPIRE); the purge removes it and counts it so an operator notices.
var shortLived = []string{keyRatePfx, keyDedupePfx, keyIdemPfx, keySeenPfx, keySentPfx, keyEventSeenPfx, keyAuditRefused}

// PurgeOptions says what a retention pass removes. Zero values are safe: a
// zero LeadRetention or OptinTTL keeps those records (zero would otherwise
// mean "destroy everything now", which is never what an unset field meant).
type PurgeOptions struct {
	// LeadRetention is LEAD_RETENTION: a lead with no submission, state
	// change or admin action for this long is destroyed, and so is a person
	// left with no lead and no marketing consent. Zero keeps leads.
	LeadRetention time.Duration
	// OptinTTL is UNCONFIRMED_OPTIN_TTL: a marketing opt-in not confirmed
	// within it is dropped. Zero keeps pending opt-ins.
	OptinTTL time.Duration
	// CampaignRetention is LEAD_RETENTION: the recipient marks of a
	// campaign finished this long ago are dropped (the campaign's counters
	// stay). The marks are also each person's record of the emails sent to
	// them (Store.MailSent), so they last as long as a request would. Zero
	// drops them as soon as the campaign is finished.
	CampaignRetention time.Duration
	// DryRun counts what would go and removes nothing.
	DryRun bool
	// Batch is how many records one Redis call handles; zero means 50. It
	// bounds how long Redis serves nobody else: Redis runs one script at a
	// time, and every intake request waits for the one running.
	Batch int
	// Share is the most of the time the purge keeps Redis working for it:
	// after its calls it pauses so that they take at most this share of the
	// pass's time. Zero means 0.5; 1 runs flat out. A catch-up purge of
	// many records then leaves intake most of Redis (and, where Redis shares
	// the machine, of the CPU) at the price of taking longer.
	Share float64
}

// PurgeReport counts what a retention pass removed (or, in a dry run, would
// remove). Counts only: a report never names a person or a lead.
type PurgeReport struct {
	Leads     int // leads destroyed with their disclosure logs and index entries
	People    int // people left with no lead and no marketing consent, destroyed
	Optins    int // unconfirmed opt-ins dropped
	StaleKeys int // short-lived keys that had lost their TTL (a bug: they should expire on their own)
	Campaigns int // finished campaigns whose recipient marks were dropped
	// ConsentKept counts people whose requests are all past retention but
	// who are kept for their marketing consent alone: consent to product
	// news outlives the request it came with, so their contact and consent
	// history stay until they withdraw it.
	ConsentKept int
	DryRun      bool
}

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
// dry run. Returns {leads listed, people destroyed}.
var purgeLeadsScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
if ARGV[4] == '1' or #ids == 0 then return {#ids, 0} end
local byState, people = {}, {}
for _, id in ipairs(ids) do
  local lk = 'lg:lead:' .. id
  local f = redis.call('HMGET', lk, 'person', 'phone', 'state')
  redis.call('UNLINK', lk, lk .. ':transfers')
  local st = f[3] or ''
  if not byState[st] then byState[st] = {} end
  table.insert(byState[st], id)
  if f[2] then redis.call('ZREM', 'lg:phone:' .. f[2], id) end
  if f[1] then
    local pk = 'lg:person:' .. f[1]
    redis.call('ZREM', pk .. ':leads', id)
    local gone = false
    if redis.call('EXISTS', pk .. ':leads') == 0 then
      local m = redis.call('HGET', pk, 'marketing')
      gone = m ~= 'active' and m ~= 'pending'
    end
    if gone then
      redis.call('UNLINK', pk, pk .. ':leads', pk .. ':consents')
      table.insert(people, f[1])
    else
      -- An opt-in names the lead it came with; the proof itself is sealed
      -- to the person and stays with them, but not the id of a destroyed lead.
      local ck, prefix = pk .. ':consents', id .. ' '
      for i, e in ipairs(redis.call('LRANGE', ck, 0, -1)) do
        if string.sub(e, 1, #prefix) == prefix then
          redis.call('LSET', ck, i - 1, '-' .. string.sub(e, #id + 1))
        end
      end
    end
  end
end
redis.call('ZREM', KEYS[1], unpack(ids))
for st, list in pairs(byState) do
  -- A lead is in the index of its state; one without a state field (a
  -- leftover of a half-written lead) is taken out of every index.
  for i = 5, #KEYS do
    if st == '' or KEYS[i] == 'lg:leads:state:' .. st then redis.call('ZREM', KEYS[i], unpack(list)) end
  end
end
if #people > 0 then
  for i = 2, 4 do redis.call('ZREM', KEYS[i], unpack(people)) end
end
return {#ids, #people}
`)

// purgeOptinsScript drops up to ARGV[3] opt-ins pending since at or before
// ARGV[1] (ms), skipping ARGV[2]: the person's marketing state is cleared if
// it is still pending. Their consent history keeps the opt-in request, as
// the record of what was asked; it goes with the person.
//
// KEYS[1] lg:optins:pending; ARGV[4] "1" for a dry run.
var purgeOptinsScript = redis.NewScript(`
local people = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
if ARGV[4] == '1' then return #people end
for _, p in ipairs(people) do
  redis.call('ZREM', KEYS[1], p)
  local pk = 'lg:person:' .. p
  if redis.call('HGET', pk, 'marketing') == 'pending' then redis.call('HDEL', pk, 'marketing', 'marketing_at') end
end
return #people
`)

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
var purgePeopleScript = redis.NewScript(`
local leadCutoff, optinCutoff, dry = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[5] == '1'
local people = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[3], ARGV[4])
local removed, kept = 0, 0
for _, p in ipairs(people) do
  local pk = 'lg:person:' .. p
  local hasLead = false
  if dry then
    for _, id in ipairs(redis.call('ZRANGE', pk .. ':leads', 0, -1)) do
      local s = redis.call('ZSCORE', KEYS[2], id)
      if s and tonumber(s) > leadCutoff then hasLead = true; break end
    end
  else
    hasLead = redis.call('EXISTS', pk .. ':leads') == 1
  end
  if not hasLead then
    local m = redis.call('HGET', pk, 'marketing')
    if dry and m == 'pending' then
      local at = redis.call('ZSCORE', KEYS[4], p)
      if at and tonumber(at) <= optinCutoff then m = false end
    end
    if m == 'active' or m == 'pending' then
      kept = kept + 1
    else
      removed = removed + 1
      if not dry then
        redis.call('UNLINK', pk, pk .. ':leads', pk .. ':consents')
        for i = 1, 4 do if i ~= 2 then redis.call('ZREM', KEYS[i], p) end end
      end
    end
  end
end
return {#people, removed, kept}
`)

// purgeStaleScript removes the keys among KEYS that have no TTL; ARGV[1]
// "1" only counts them. Checked and removed in one step, so a key given a
// TTL meanwhile stays.
var purgeStaleScript = redis.NewScript(`
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) == -1 then
    n = n + 1
    if ARGV[1] ~= '1' then redis.call('UNLINK', k) end
  end
end
return n
`)

// purgeCampaignsScript looks at up to ARGV[3] campaigns from index ARGV[2]
// of lg:campaigns and drops the recipient marks, failures and list of those finished
// at or before ARGV[1] (ms). Returns {campaigns looked at, cleaned}.
//
// KEYS[1] lg:campaigns; ARGV[4] "1" for a dry run.
var purgeCampaignsScript = redis.NewScript(`
local start = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1)
local n = 0
for _, id in ipairs(ids) do
  local ck = 'lg:campaign:' .. id
  local finished = tonumber(redis.call('HGET', ck, 'finished') or '0') or 0
  if finished > 0 and finished <= tonumber(ARGV[1]) and redis.call('EXISTS', ck .. ':marks', ck .. ':to', ck .. ':failed') > 0 then
    n = n + 1
    if ARGV[4] ~= '1' then redis.call('UNLINK', ck .. ':marks', ck .. ':to', ck .. ':failed') end
  end
end
return {#ids, n}
`)

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
func (s *Store) Purge(ctx context.Context, o PurgeOptions) (PurgeReport, error) {
	batch := o.Batch
	if batch <= 0 {
		batch = defaultBatch
	}
	batch = min(batch, maxBatch)
	pace := &pacer{share: o.Share}
	if pace.share <= 0 || pace.share > 1 {
		pace.share = defaultShare
	}
	now := s.now()
	leadCutoff, optinCutoff := int64(noCutoff), int64(noCutoff)
	if o.LeadRetention > 0 {
		leadCutoff = now.Add(-o.LeadRetention).UnixMilli()
	}
	if o.OptinTTL > 0 {
		optinCutoff = now.Add(-o.OptinTTL).UnixMilli()
	}
	dry := boolArg(o.DryRun)
	r := PurgeReport{DryRun: o.DryRun}
	var err error

	// Leads first: their people go with them when nothing else keeps them.
	if leadCutoff != noCutoff {
		keys := []string{keyAll, keyPeople, keyMarketing, keyPendingOptins}
		for _, st := range States {
			keys = append(keys, stateKey(st))
		}
		r.Leads, err = s.purgeBatches(ctx, pace, o.DryRun, batch, func(offset int) (int, int, error) {
			res, err := purgeLeadsScript.Run(ctx, s.rdb, keys, leadCutoff, offset, batch, dry).Int64Slice()
			if err != nil {
				return 0, 0, err
			}
			r.People += int(res[1])
			return int(res[0]), int(res[0]), nil
		})
		if err != nil {
			return r, unavailable("purge leads", err)
		}
	}
	if optinCutoff != noCutoff {
		r.Optins, err = s.purgeBatches(ctx, pace, o.DryRun, batch, func(offset int) (int, int, error) {
			n, err := purgeOptinsScript.Run(ctx, s.rdb, []string{keyPendingOptins}, optinCutoff, offset, batch, dry).Int()
			return n, n, err
		})
		if err != nil {
			return r, unavailable("purge opt-ins", err)
		}
	}
	// Then everyone else past retention: in a dry run, all of them (this
	// pass predicts who would go); in a real run, those a lead's removal
	// left behind (an opt-in that was still pending then, a lead removed
	// some other way) and, counted, those kept for their consent.
	if leadCutoff != noCutoff {
		keys := []string{keyPeople, keyAll, keyMarketing, keyPendingOptins}
		n, err := s.purgeBatches(ctx, pace, o.DryRun, batch, func(offset int) (int, int, error) {
			res, err := purgePeopleScript.Run(ctx, s.rdb, keys, leadCutoff, optinCutoff, offset, batch, dry).Int64Slice()
			if err != nil {
				return 0, 0, err
			}
			r.ConsentKept += int(res[2])
			return int(res[0]), int(res[1]), nil
		})
		r.People += n
		if err != nil {
			return r, unavailable("purge people", err)
		}
	}
	if r.StaleKeys, err = s.purgeStale(ctx, pace, dry); err != nil {
		return r, unavailable("purge stale keys", err)
	}
	campaignCutoff := now.Add(-o.CampaignRetention).UnixMilli()
	for start := 0; ; start += batch {
		done := pace.start()
		res, err := purgeCampaignsScript.Run(ctx, s.rdb, []string{keyCampaigns}, campaignCutoff, start, batch, dry).Int64Slice()
		done()
		if err != nil {
			return r, unavailable("purge campaign marks", err)
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
func (s *Store) purgeBatches(ctx context.Context, pace *pacer, dryRun bool, batch int, step func(offset int) (listed, removed int, err error)) (int, error) {
	offset, total := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		done := pace.start()
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

// purgeStale walks the keyspace with SCAN and removes the short-lived keys
// (rate limits, dedupe and idempotency keys, repeat counters, send claims,
// provider event ids) that have no TTL.
func (s *Store) purgeStale(ctx context.Context, pace *pacer, dry string) (int, error) {
	total := 0
	var cursor uint64
	for {
		done := pace.start()
		keys, next, err := s.rdb.Scan(ctx, cursor, "lg:*", purgeScanCount).Result()
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
			done := pace.start()
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

// pacer keeps the purge's Redis calls to a share of its time: it adds up
// how long they took and sleeps what that share leaves to others. Sleeps
// are saved up to minPause, since a sleep of a few microseconds takes far
// longer; so the purge works in bursts of about a millisecond, each a few
// short scripts with room for other clients between them.
type pacer struct {
	share float64
	owed  time.Duration // pause not yet taken
}

// start marks the beginning of a Redis call; the returned func its end.
func (p *pacer) start() (done func()) {
	t := time.Now()
	return func() {
		if p.share >= 1 {
			return
		}
		p.owed += time.Duration(float64(time.Since(t)) * (1 - p.share) / p.share)
		if p.owed >= minPause {
			slept := time.Now()
			time.Sleep(p.owed)
			// An oversleep is credited, up to one pause: a process that was
			// stopped a while must not then run flat out as long.
			p.owed = max(p.owed-time.Since(slept), -minPause)
		}
	}
}
