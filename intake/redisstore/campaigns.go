package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// Campaigns are campaigns and breach notices, and their fan-out.
type Campaigns struct{ db }

// Redis keys of campaigns and breach notices (both are "campaigns": one
// fan-out engine sends them).
const (
	maxRetryList = 4 * intake.MaxBatchSize // refused recipients a campaign keeps to retry
	reasonField  = "reason:"               // + a FailReason: a field of the campaign hash counting the failed for that reason
)

// CreateCampaign stores c as queued and returns its id. A notice to a list
// is sent to the people of to (person hashes); a notice to all, to everyone
// held now.
func (s *Campaigns) CreateCampaign(ctx context.Context, c *intake.Campaign, to []string) (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	id, now := u.String(), s.now().UnixMilli()
	content, _ := json.Marshal(c.Content)
	segment, _ := json.Marshal(c.Segment)
	fields := []any{"kind", string(c.Kind), "name", c.Name, "state", string(intake.CampaignQueued), "content", content, "segment", segment,
		"by", c.By, "created", now, "recipients", 0, "sent", 0, "skipped", 0, "failed", 0, "all", boolArg(c.All)}
	if c.TestTo != "" {
		fields = append(fields, "test_to", s.keys.Seal([]byte(c.TestTo), id))
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, campaignKey(id), fields...)
		p.ZAdd(ctx, keyCampaigns, redis.Z{Score: float64(now), Member: id})
		switch {
		case c.All:
			// A snapshot with equal scores, so the fan-out can walk it in
			// lexical order like the marketing index.
			p.ZUnionStore(ctx, campaignKey(id)+keyCampaignTo, &redis.ZStore{Keys: []string{keyPeople}, Weights: []float64{0}})
		case len(to) > 0:
			zs := make([]redis.Z, len(to))
			for i, person := range to {
				zs[i] = redis.Z{Member: person}
			}
			p.ZAdd(ctx, campaignKey(id)+keyCampaignTo, zs...)
		}
		return nil
	})
	if err != nil {
		return "", intake.Unavailable("store campaign", err)
	}
	return id, nil
}

// Campaign loads a campaign, or ENotFound.
func (s *Campaigns) Campaign(ctx context.Context, id string) (*intake.Campaign, error) {
	h, err := s.rdb.HGetAll(ctx, campaignKey(id)).Result()
	if err != nil {
		return nil, intake.Unavailable("load campaign", err)
	}
	if len(h) == 0 {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such campaign"}
	}
	c := &intake.Campaign{ID: id, Kind: intake.CampaignKind(h["kind"]), Name: h["name"], State: intake.CampaignState(h["state"]), By: h["by"], All: h["all"] == "1",
		CreatedAt: msTime(h["created"]), FinishedAt: msTime(h["finished"])}
	c.Recipients, _ = strconv.Atoi(h["recipients"])
	c.Sent, _ = strconv.Atoi(h["sent"])
	c.Skipped, _ = strconv.Atoi(h["skipped"])
	c.Failed, _ = strconv.Atoi(h["failed"])
	for field, v := range h {
		if reason, ok := strings.CutPrefix(field, reasonField); ok {
			if c.FailedReasons == nil {
				c.FailedReasons = map[intake.FailReason]int{}
			}
			c.FailedReasons[intake.FailReason(reason)], _ = strconv.Atoi(v)
		}
	}
	if err := json.Unmarshal([]byte(h["content"]), &c.Content); err != nil {
		return nil, fmt.Errorf("campaign %s: content: %w", id, err)
	}
	if err := json.Unmarshal([]byte(h["segment"]), &c.Segment); err != nil {
		return nil, fmt.Errorf("campaign %s: segment: %w", id, err)
	}
	if sealed := h["test_to"]; sealed != "" {
		plain, err := s.keys.Open(sealed, id)
		if err != nil {
			return nil, fmt.Errorf("campaign %s: %w", id, err)
		}
		c.TestTo = string(plain)
	}
	return c, nil
}

// Campaigns lists up to limit campaigns of kind, newest first.
func (s *Campaigns) Campaigns(ctx context.Context, kind intake.CampaignKind, limit int) ([]*intake.Campaign, error) {
	ids, err := s.rdb.ZRevRange(ctx, keyCampaigns, 0, -1).Result()
	if err != nil {
		return nil, intake.Unavailable("list campaigns", err)
	}
	var out []*intake.Campaign
	for _, id := range ids {
		c, err := s.Campaign(ctx, id)
		if intake.ErrorCode(err) == intake.ENotFound {
			continue // purged meanwhile
		} else if err != nil {
			return nil, err
		}
		if c.Kind == kind {
			out = append(out, c)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// stateScript moves a campaign from one of the states in ARGV[3] (a
// comma list) to ARGV[1]; it answers the state found.
var stateScript = script("campaign_state.lua")

// moveCampaign moves campaign id to state to if it is in one of from, and
// returns the state it was in.
func (s *Campaigns) moveCampaign(ctx context.Context, id string, to intake.CampaignState, from ...intake.CampaignState) (intake.CampaignState, error) {
	st, err := stateScript.Run(ctx, s.rdb, []string{campaignKey(id)}, string(to), s.now().UnixMilli(), joinStates(from)).Text()
	if err != nil {
		return "", intake.Unavailable("change campaign state", err)
	}
	if st == "" {
		return "", &intake.Error{Code: intake.ENotFound, Message: "no such campaign"}
	}
	return intake.CampaignState(st), nil
}

// StartCampaign marks a queued campaign as sending and returns the state
// it found: queued or sending mean go on; done or cancelled, stop.
func (s *Campaigns) StartCampaign(ctx context.Context, id string) (intake.CampaignState, error) {
	return s.moveCampaign(ctx, id, intake.CampaignSending, intake.CampaignQueued)
}

// CancelCampaign stops a queued or sending campaign: what is not yet
// marked for sending is not sent. A finished one is EConflict.
func (s *Campaigns) CancelCampaign(ctx context.Context, id string) error {
	st, err := s.moveCampaign(ctx, id, intake.CampaignCancelled, intake.CampaignQueued, intake.CampaignSending)
	if err != nil {
		return err
	}
	if st == intake.CampaignDone {
		return &intake.Error{Code: intake.EConflict, Message: "the campaign has finished sending"}
	}
	return nil
}

// finishScript moves a sending campaign to done when nobody waits on its
// retry list or in flight, and makes its counters add up: whoever was
// counted a recipient and then erased before their outcome was recorded
// (erasure leaves nothing to count them by) is counted skipped. It answers
// the state found ("" for no such campaign).
//
// KEYS: campaign hash, its in-flight hash. ARGV: now (ms).
var finishScript = script("finish.lua")

// FinishCampaign closes a campaign whose walk is over and whose batches
// are all settled; with refused recipients still to retry, or people in
// flight, it stays open. Once done, recipients = sent + skipped + failed.
func (s *Campaigns) FinishCampaign(ctx context.Context, id string) error {
	st, err := finishScript.Run(ctx, s.rdb, []string{campaignKey(id), campaignKey(id) + keyCampaignInFlight}, s.now().UnixMilli()).Text()
	if err != nil {
		return intake.Unavailable("finish campaign", err)
	}
	if st == "" {
		return &intake.Error{Code: intake.ENotFound, Message: "no such campaign"}
	}
	return nil
}

// FinishTest marks a campaign's test send done, with its one recipient.
func (s *Campaigns) FinishTest(ctx context.Context, id string, sent bool) error {
	counter := "failed"
	if sent {
		counter = "sent"
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, campaignKey(id), "recipients", 1, counter, 1)
		return nil
	})
	if err != nil {
		return intake.Unavailable("finish test send", err)
	}
	_, err = s.moveCampaign(ctx, id, intake.CampaignDone, intake.CampaignSending)
	return err
}

// ClaimTest marks a campaign's test send before it goes out: true the first
// time only, so a retried task never sends it twice.
func (s *Campaigns) ClaimTest(ctx context.Context, id string) (bool, error) {
	ok, err := s.rdb.HSetNX(ctx, campaignKey(id), "test_claimed", 1).Result()
	if err != nil {
		return false, intake.Unavailable("claim test send", err)
	}
	return ok, nil
}

// Walk returns where a campaign's fan-out stands: its state, the last
// person walked, and the refused recipients to retry first.
func (s *Campaigns) Walk(ctx context.Context, id string) (state intake.CampaignState, cursor string, retry []string, err error) {
	h, err := s.rdb.HMGet(ctx, campaignKey(id), "state", "cursor", "retry").Result()
	if err != nil {
		return "", "", nil, intake.Unavailable("read campaign", err)
	}
	st, _ := h[0].(string)
	state = intake.CampaignState(st)
	cursor, _ = h[1].(string)
	if list, _ := h[2].(string); list != "" {
		retry = strings.Split(list, ",")
	}
	return state, cursor, retry, nil
}

// walkSource is the index a campaign walks: the marketing index, or a
// notice's list.
func walkSource(c *intake.Campaign) string {
	if c.Kind == intake.KindBreachNotice {
		return campaignKey(c.ID) + keyCampaignTo
	}
	return keyMarketing
}

// Candidates reads the next up to n people of c's walk after cursor ("" from
// the start; MaxBatchSize at most). It marks nothing, so it may run ahead
// of Mark.
func (s *Campaigns) Candidates(ctx context.Context, c *intake.Campaign, cursor string, n int) (*intake.Candidates, error) {
	from := "-"
	if cursor != "" {
		from = "(" + cursor
	}
	people, err := s.rdb.ZRangeByLex(ctx, walkSource(c), &redis.ZRangeBy{Min: from, Max: "+", Count: int64(min(n, intake.MaxBatchSize))}).Result()
	if err != nil {
		return nil, intake.Unavailable("walk campaign", err)
	}
	if len(people) == 0 {
		return &intake.Candidates{Done: true, Cursor: cursor}, nil
	}
	cands, err := s.readCandidates(ctx, c, people)
	if err != nil {
		return nil, err
	}
	cands.Cursor = people[len(people)-1]
	return cands, nil
}

// RetryCandidates reads the refused recipients of an earlier attempt (from
// Walk) to be marked again.
func (s *Campaigns) RetryCandidates(ctx context.Context, c *intake.Campaign, people []string) (*intake.Candidates, error) {
	cands, err := s.readCandidates(ctx, c, people)
	if err != nil {
		return nil, err
	}
	cands.Retry, cands.Chunk = true, people
	return cands, nil
}

// candidateFields are the person fields a campaign reads: contact,
// language and number, then the segment's.
var candidateFields = []any{"contact", "lang", "n", "entity_type", "products"}

// readCandidates reads people's contact, language and segment fields in one
// pipeline and keeps those in c's segment who are still held.
func (s *Campaigns) readCandidates(ctx context.Context, c *intake.Campaign, people []string) (*intake.Candidates, error) {
	// The segment fields are read only when the segment filters on them:
	// two values a recipient fewer to look up, send and decode.
	fields := candidateFields
	if c.Kind != intake.KindCampaign || c.Segment.EntityType == "" && len(c.Segment.Products) == 0 {
		fields = fields[:3]
	}
	profiles, err := s.hashFields(ctx, people, personKey, fields...)
	if err != nil {
		return nil, intake.Unavailable("read campaign recipients", err)
	}
	cands := &intake.Candidates{Recipients: make([]intake.Recipient, 0, len(people))}
	for i, person := range people {
		f := profiles[i]
		sealed, lang, number := f[0], f[1], f[2]
		var entity, products string
		if len(f) == 5 {
			entity, products = f[3], f[4]
		}
		if sealed == "" || number == "" { // erased meanwhile: nobody to send to
			continue
		}
		if c.Kind == intake.KindCampaign && !c.Segment.Matches(lang, entity, splitList(products)) {
			continue
		}
		rc := intake.Recipient{Person: person, Lang: lang, Number: number}
		if contact, err := s.openContact(sealed, person); err != nil {
			// One record sealed under a key no longer configured must not
			// stop the campaign for everyone: the sender fails this person
			// alone.
			rc.Problem = intake.ReasonUnreadable
		} else {
			rc.Email, rc.Name = contact.Email, contact.Name
		}
		cands.Recipients = append(cands.Recipients, rc)
	}
	return cands, nil
}

// markScript marks the people of the next batch who may be sent to now,
// and moves the campaign's cursor past them. The check is membership of
// the walked index at this moment: lg:marketing holds exactly the people
// whose consent is active and who are not blocked, suppressed or erased
// (every write that changes one of those keeps it so), and a notice's list
// loses erased people. So a withdrawal that lands before the mark stops
// the email, and one that lands after finds it already on its way. Marks
// are bits by person number; a person an earlier batch marked is neither
// counted nor sent to again. The people marked are put in flight, one entry
// a batch, until Settle records what became of them, so a crash between the
// mark and the settle leaves a trace (SettleLost); the answer names the
// batch and which candidates it marked. A retry chunk takes its people off
// the retry list, and decides only for those still on it.
//
// KEYS: campaign hash, its marks, the index walked, its in-flight hash.
// ARGV: retry ("1" when the candidates are a chunk of the refused of an
// earlier attempt, already marked and counted: a mark is cleared for one
// no longer in the index), the new cursor, the number n of chunk people
// that follow, the n chunk people (retry only), then the candidates'
// person hashes, then their numbers in the same order.
var markScript = script("mark.lua")

// Mark marks those of cands who may be sent to now (markScript) and
// records the walk's progress: the cursor, the recipients and skipped
// counted, the retry list consumed.
func (s *Campaigns) Mark(ctx context.Context, c *intake.Campaign, cands *intake.Candidates) (*intake.Batch, error) {
	args := make([]any, 0, 3+len(cands.Chunk)+2*len(cands.Recipients))
	args = append(args, boolArg(cands.Retry), cands.Cursor, len(cands.Chunk))
	for _, p := range cands.Chunk {
		args = append(args, p)
	}
	for _, r := range cands.Recipients {
		args = append(args, r.Person)
	}
	for _, r := range cands.Recipients {
		args = append(args, r.Number)
	}
	keys := []string{campaignKey(c.ID), campaignKey(c.ID) + keyCampaignMarks, walkSource(c), campaignKey(c.ID) + keyCampaignInFlight}
	res, err := markScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, intake.Unavailable("mark campaign batch", err)
	}
	if res[0] == "stopped" {
		return &intake.Batch{Stopped: true}, nil
	}
	b := &intake.Batch{}
	if len(res) < 3 {
		return b, nil // nobody marked
	}
	batch, taken := res[1], res[2]
	b.Recipients = make([]intake.Recipient, 0, strings.Count(taken, "1"))
	for i, r := range cands.Recipients {
		if taken[i] == '1' {
			r.Batch, r.Slot = batch, len(b.Recipients)
			b.Recipients = append(b.Recipients, r)
		}
	}
	return b, nil
}

// settleScript records what became of people in flight, each once (one
// no longer in flight was erased, or settled as lost by a later run).
// ARGV[1] is the outcome (s: sent; r: refused, to retry; f: failed), ARGV[2]
// the reason of a failure, ARGV[3] the most bytes the retry list may hold
// (a refused person beyond it is failed as gave_up, never dropped
// uncounted), then per batch in flight its name and a byte a slot, '1' for
// the people settled.
//
// KEYS: campaign hash, its failures (person → reason), its in-flight hash.
var settleScript = script("settle.lua")

// Settle records the outcome of sending campaign c to the marked people.
// Sent ones keep their mark, which is also their record of the email (the
// subject export reads it, see MailSent). Refused ones are read again first
// by the next run (Walk, RetryCandidates) and marked afresh. Failed ones
// are recorded with reason, for them alone (Failures) and in the
// campaign's count by reason.
func (s *Campaigns) Settle(ctx context.Context, c *intake.Campaign, outcome intake.Outcome, reason intake.FailReason, people []intake.Recipient) error {
	if len(people) == 0 {
		return nil
	}
	if outcome == intake.OutcomeFailed && reason == "" {
		return fmt.Errorf("settle campaign %s: a failure needs a reason", c.ID)
	}
	// One slot mask per batch: a batch's people are settled by their slots.
	var batches []string
	slots := map[string][]byte{}
	for _, p := range people {
		if p.Batch == "" {
			continue // never marked: not in flight
		}
		mask, ok := slots[p.Batch]
		if !ok {
			batches = append(batches, p.Batch)
		}
		for len(mask) <= p.Slot {
			mask = append(mask, '0')
		}
		mask[p.Slot] = '1'
		slots[p.Batch] = mask
	}
	arg := make([]any, 0, 3+2*len(batches))
	arg = append(arg, string(outcome), string(reason), maxRetryList*41) // bytes of comma-separated 40-hex person hashes
	for _, b := range batches {
		arg = append(arg, b, slots[b])
	}
	if err := settleScript.Run(ctx, s.rdb, s.outcomeKeys(c.ID), arg...).Err(); err != nil {
		return intake.Unavailable("settle campaign batch", err)
	}
	return nil
}

// lostScript fails, with reason ARGV[1], everyone still in flight: marked
// by a run that stopped before recording what became of them (a crash, a
// lost answer from Redis). KEYS as settleScript's.
var lostScript = script("lost.lua")

// SettleLost records as failed (ReasonUnknownOutcome) the people an earlier
// run marked and never settled: perhaps sent, so never sent again, and
// counted so that the campaign adds up. A run calls it before it starts and
// before it finishes; it returns how many there were.
func (s *Campaigns) SettleLost(ctx context.Context, c *intake.Campaign) (int, error) {
	n, err := lostScript.Run(ctx, s.rdb, s.outcomeKeys(c.ID), string(intake.ReasonUnknownOutcome)).Int()
	if err != nil {
		return 0, intake.Unavailable("settle lost campaign batch", err)
	}
	return n, nil
}

// outcomeKeys are the keys settleScript and lostScript write.
func (s *Campaigns) outcomeKeys(id string) []string {
	return []string{campaignKey(id), campaignKey(id) + keyCampaignFails, campaignKey(id) + keyCampaignInFlight}
}

// Failures lists up to about limit people campaign id did not reach, with
// the reason, from cursor ("" or "0" from the start; the cursor of the
// previous page after); next is "" at the end. People are named by keyed
// hash and their lead ids, never an address; an erased person is no longer
// listed (only counted).
func (s *Campaigns) Failures(ctx context.Context, id, cursor string, limit int) (page []intake.FailedRecipient, next string, err error) {
	var from uint64
	if cursor != "" {
		if from, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", &intake.Error{Code: intake.EBadRequest, Message: "cursor is not one this listing gave"}
		}
	}
	kv, to, err := s.rdb.HScan(ctx, campaignKey(id)+keyCampaignFails, from, "", int64(limit)).Result()
	if err != nil {
		return nil, "", intake.Unavailable("list campaign failures", err)
	}
	page = make([]intake.FailedRecipient, 0, len(kv)/2)
	leads := make([]*redis.StringSliceCmd, 0, len(kv)/2)
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i+1 < len(kv); i += 2 {
			page = append(page, intake.FailedRecipient{Person: kv[i], Reason: intake.FailReason(kv[i+1])})
			leads = append(leads, p.ZRange(ctx, personKey(kv[i])+keyLeads, 0, -1))
		}
		return nil
	}); err != nil {
		return nil, "", intake.Unavailable("read campaign failures", err)
	}
	for i := range page {
		page[i].Leads = leads[i].Val()
		if page[i].Leads == nil {
			page[i].Leads = []string{}
		}
	}
	if to != 0 {
		next = strconv.FormatUint(to, 10)
	}
	return page, next, nil
}

// MailSent lists the campaigns and notices handed to the provider for
// person: their mark is the record, kept as long as the campaign's marks
// (LEAD_RETENTION). A crash between mark and send makes one appear sent
// that was lost — at most once means it is never sent later either.
func (s *Campaigns) MailSent(ctx context.Context, person string) ([]intake.MailRecord, error) {
	number, err := s.rdb.HGet(ctx, personKey(person), "n").Int64()
	if err == redis.Nil {
		return nil, nil
	} else if err != nil {
		return nil, intake.Unavailable("read person", err)
	}
	ids, err := s.rdb.ZRange(ctx, keyCampaigns, 0, -1).Result()
	if err != nil {
		return nil, intake.Unavailable("list campaigns", err)
	}
	marks := make([]*redis.IntCmd, len(ids))
	failed := make([]*redis.BoolCmd, len(ids))
	info := make([]*redis.SliceCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			marks[i] = p.GetBit(ctx, campaignKey(id)+keyCampaignMarks, number)
			failed[i] = p.HExists(ctx, campaignKey(id)+keyCampaignFails, person)
			info[i] = p.HMGet(ctx, campaignKey(id), "kind", "started", "retry")
		}
		return nil
	}); err != nil {
		return nil, intake.Unavailable("read campaign marks", err)
	}
	var out []intake.MailRecord
	for i, id := range ids {
		kind, _ := info[i].Val()[0].(string)
		started, _ := info[i].Val()[1].(string)
		retry, _ := info[i].Val()[2].(string)
		if marks[i].Val() == 0 || failed[i].Val() || strings.Contains(retry, person) {
			continue
		}
		out = append(out, intake.MailRecord{Kind: intake.CampaignKind(kind), Ref: id, At: msTime(started)})
	}
	return out, nil
}

// UnsubscribeToken is the token of person's unsubscribe link.
func (s *Campaigns) UnsubscribeToken(person string) string {
	return s.keys.UnsubscribeToken(person)
}

// joinStates is the comma list of states the campaign state script takes.
func joinStates(states []intake.CampaignState) string {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = string(st)
	}
	return strings.Join(names, ",")
}

// SegmentCount counts the people a campaign to seg would reach if it
// started now: the marketing index (active consent, not blocked, suppressed
// or erased) filtered by seg as Candidates filters it. It reads profiles a
// batch at a time and writes nothing; the console shows it beside the
// compose form, so it is an estimate of the moment, not a reservation.
func (s *Campaigns) SegmentCount(ctx context.Context, seg intake.Segment) (int64, error) {
	if seg.Lang == "" && seg.EntityType == "" && len(seg.Products) == 0 {
		n, err := s.rdb.ZCard(ctx, keyMarketing).Result()
		if err != nil {
			return 0, intake.Unavailable("count segment", err)
		}
		return n, nil
	}
	var n int64
	for from := "-"; ; {
		people, err := s.rdb.ZRangeByLex(ctx, keyMarketing, &redis.ZRangeBy{Min: from, Max: "+", Count: intake.MaxBatchSize}).Result()
		if err != nil || len(people) == 0 {
			if err != nil {
				return 0, intake.Unavailable("count segment", err)
			}
			return n, nil
		}
		profiles, err := s.hashFields(ctx, people, personKey, "lang", "entity_type", "products", "n")
		if err != nil {
			return 0, intake.Unavailable("count segment", err)
		}
		for _, f := range profiles {
			if f[3] != "" && seg.Matches(f[0], f[1], splitList(f[2])) {
				n++
			}
		}
		from = "(" + people[len(people)-1]
	}
}
