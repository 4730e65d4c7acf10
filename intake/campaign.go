package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Redis keys of campaigns and breach notices (both are "campaigns": one
// fan-out engine sends them).
const (
	keyCampaigns     = "lg:campaigns"   // zset id → created (ms)
	keyCampaignPfx   = "lg:campaign:"   // hash per campaign: kind, state, content, counters, cursor
	keyCampaignMarks = ":marks"         // hash after a campaign key: person → m (marked, then sent — or lost in a crash), r (refused, to retry), f (failed)
	keyCampaignTo    = ":to"            // zset after a campaign key: person → 0, a notice's recipients
	maxRetryList     = 4 * MaxBatchSize // refused recipients a campaign keeps to retry
)

func campaignKey(id string) string { return keyCampaignPfx + id }

// MaxBatchSize is the most recipients NextBatch hands out at once: SendGrid
// takes 1000 personalizations a request.
const MaxBatchSize = 1000

// Kinds of campaign.
const (
	KindCampaign     = "campaign"      // marketing: only to people with active, confirmed consent
	KindBreachNotice = "breach_notice" // transactional: to everyone affected but the erased
)

// Campaign states.
const (
	CampaignQueued    = "queued"
	CampaignSending   = "sending"
	CampaignDone      = "done"
	CampaignCancelled = "cancelled"
)

// Segment narrows a marketing campaign; an empty field matches everyone.
type Segment struct {
	Lang       string   `json:"lang,omitempty"`
	EntityType string   `json:"entity_type,omitempty"`
	Products   []string `json:"products,omitempty"` // any of them
}

// Content is a campaign's text per language ("kk", "ru", "en"). A
// recipient whose language is missing gets the first present of ru, en,
// kk.
type Content struct {
	Subject map[string]string `json:"subject,omitempty"`
	HTML    map[string]string `json:"html,omitempty"`
	Text    map[string]string `json:"text,omitempty"`
	Message map[string]string `json:"message,omitempty"` // a breach notice's plain text
}

// ContentLang returns the language of c that a recipient speaking lang
// gets, given the languages present in m.
func ContentLang(m map[string]string, lang string) string {
	for _, l := range []string{lang, "ru", "en", "kk"} {
		if m[l] != "" {
			return l
		}
	}
	return ""
}

// Campaign is a campaign or breach notice and its progress.
type Campaign struct {
	ID         string
	Kind       string
	Name       string
	State      string
	Content    Content
	Segment    Segment
	TestTo     string // a campaign's test send goes to this address only; never stored in clear
	All        bool   // a notice to everyone held
	By         string // the admin token's name that created it
	Recipients int    // people the fan-out reached who match: sent + skipped + failed, and those in flight
	Sent       int
	Skipped    int // matched, but had no consent (or were blocked, suppressed, erased) when their turn came
	Failed     int
	CreatedAt  time.Time
	FinishedAt time.Time
}

// CreateCampaign stores c as queued and returns its id. A notice to a list
// is sent to the people of to (person hashes); a notice to all, to everyone
// held now.
func (s *Store) CreateCampaign(ctx context.Context, c *Campaign, to []string) (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	id, now := u.String(), s.now().UnixMilli()
	content, _ := json.Marshal(c.Content)
	segment, _ := json.Marshal(c.Segment)
	fields := []any{"kind", c.Kind, "name", c.Name, "state", CampaignQueued, "content", content, "segment", segment,
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
		return "", unavailable("store campaign", err)
	}
	return id, nil
}

// Campaign loads a campaign, or ENotFound.
func (s *Store) Campaign(ctx context.Context, id string) (*Campaign, error) {
	h, err := s.rdb.HGetAll(ctx, campaignKey(id)).Result()
	if err != nil {
		return nil, unavailable("load campaign", err)
	}
	if len(h) == 0 {
		return nil, &Error{Code: ENotFound, Message: "no such campaign"}
	}
	c := &Campaign{ID: id, Kind: h["kind"], Name: h["name"], State: h["state"], By: h["by"], All: h["all"] == "1",
		CreatedAt: msTime(h["created"]), FinishedAt: msTime(h["finished"])}
	c.Recipients, _ = strconv.Atoi(h["recipients"])
	c.Sent, _ = strconv.Atoi(h["sent"])
	c.Skipped, _ = strconv.Atoi(h["skipped"])
	c.Failed, _ = strconv.Atoi(h["failed"])
	if err := json.Unmarshal([]byte(h["content"]), &c.Content); err != nil {
		return nil, fmt.Errorf("campaign %s: content: %w", id, err)
	}
	if err := json.Unmarshal([]byte(h["segment"]), &c.Segment); err != nil {
		return nil, fmt.Errorf("campaign %s: segment: %w", id, err)
	}
	if sealed := h["test_to"]; sealed != "" {
		plain, err := s.keys.Open([]byte(sealed), id)
		if err != nil {
			return nil, fmt.Errorf("campaign %s: %w", id, err)
		}
		c.TestTo = string(plain)
	}
	return c, nil
}

// Campaigns lists up to limit campaigns of kind, newest first.
func (s *Store) Campaigns(ctx context.Context, kind string, limit int) ([]*Campaign, error) {
	ids, err := s.rdb.ZRevRange(ctx, keyCampaigns, 0, -1).Result()
	if err != nil {
		return nil, unavailable("list campaigns", err)
	}
	var out []*Campaign
	for _, id := range ids {
		c, err := s.Campaign(ctx, id)
		if ErrorCode(err) == ENotFound {
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
var stateScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return '' end
if ARGV[1] == 'done' and (redis.call('HGET', KEYS[1], 'retry') or '') ~= '' then return st end
for allowed in string.gmatch(ARGV[3], '[^,]+') do
  if st == allowed then
    redis.call('HSET', KEYS[1], 'state', ARGV[1])
    if ARGV[1] == 'done' or ARGV[1] == 'cancelled' then redis.call('HSET', KEYS[1], 'finished', ARGV[2]) end
    return st
  end
end
return st
`)

// moveCampaign moves campaign id to state to if it is in one of from, and
// returns the state it was in.
func (s *Store) moveCampaign(ctx context.Context, id, to string, from ...string) (string, error) {
	st, err := stateScript.Run(ctx, s.rdb, []string{campaignKey(id)}, to, s.now().UnixMilli(), strings.Join(from, ",")).Text()
	if err != nil {
		return "", unavailable("change campaign state", err)
	}
	if st == "" {
		return "", &Error{Code: ENotFound, Message: "no such campaign"}
	}
	return st, nil
}

// StartCampaign marks a queued campaign as sending and returns the state
// it found: queued or sending mean go on; done or cancelled, stop.
func (s *Store) StartCampaign(ctx context.Context, id string) (string, error) {
	return s.moveCampaign(ctx, id, CampaignSending, CampaignQueued)
}

// CancelCampaign stops a queued or sending campaign: what is not yet
// marked for sending is not sent. A finished one is EConflict.
func (s *Store) CancelCampaign(ctx context.Context, id string) error {
	st, err := s.moveCampaign(ctx, id, CampaignCancelled, CampaignQueued, CampaignSending)
	if err != nil {
		return err
	}
	if st == CampaignDone {
		return &Error{Code: EConflict, Message: "the campaign has finished sending"}
	}
	return nil
}

// FinishCampaign closes a campaign whose walk is over and whose batches
// are all settled; with refused recipients still to retry it stays open.
func (s *Store) FinishCampaign(ctx context.Context, id string) error {
	_, err := s.moveCampaign(ctx, id, CampaignDone, CampaignSending)
	return err
}

// FinishTest marks a campaign's test send done, with its one recipient.
func (s *Store) FinishTest(ctx context.Context, id string, sent bool) error {
	counter := "failed"
	if sent {
		counter = "sent"
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, campaignKey(id), "recipients", 1, counter, 1)
		return nil
	})
	if err != nil {
		return unavailable("finish test send", err)
	}
	_, err = s.moveCampaign(ctx, id, CampaignDone, CampaignSending)
	return err
}

// ClaimTest marks a campaign's test send before it goes out: true the first
// time only, so a retried task never sends it twice.
func (s *Store) ClaimTest(ctx context.Context, id string) (bool, error) {
	ok, err := s.rdb.HSetNX(ctx, campaignKey(id)+keyCampaignMarks, "-test", "m").Result()
	if err != nil {
		return false, unavailable("claim test send", err)
	}
	return ok, nil
}

// Recipient is one person a batch is to be sent to.
type Recipient struct {
	Person string
	Email  string
	Name   string
	Lang   string
}

// Batch is what NextBatch hands out: people already marked, to be sent to
// now. Done means the walk is over (FinishCampaign then closes the
// campaign once every batch is settled); Stopped that the campaign was
// cancelled or finished.
type Batch struct {
	Recipients []Recipient
	Done       bool
	Stopped    bool
}

// nextBatchScript picks the next people of a campaign, checks each against
// their consent, block and suppression as they are now, and marks those
// who will be sent to — all at once, so a withdrawal that lands before it
// stops their email and one that lands after finds them marked (the
// email was already on its way). Refused recipients of an earlier attempt
// come first.
//
// KEYS: campaign hash, its marks, the people to walk (lg:marketing or the
// notice's list), the suppression list.
// ARGV: batch size, kind, segment lang, entity type, products (comma
// list).
var nextBatchScript = redis.NewScript(`
local c, marks = KEYS[1], KEYS[2]
local st = redis.call('HGET', c, 'state')
if st ~= 'sending' then return {'stopped'} end
local people, retry = {}, false
local pending = redis.call('HGET', c, 'retry')
if pending and pending ~= '' then
  retry = true
  for p in string.gmatch(pending, '[^,]+') do people[#people + 1] = p end
  redis.call('HDEL', c, 'retry')
else
  local cursor = redis.call('HGET', c, 'cursor')
  local min = '-'
  if cursor and cursor ~= '' then min = '(' .. cursor end
  people = redis.call('ZRANGEBYLEX', KEYS[3], min, '+', 'LIMIT', 0, tonumber(ARGV[1]))
  if #people == 0 then return {'done'} end
  redis.call('HSET', c, 'cursor', people[#people])
end
local marketing = ARGV[2] == 'campaign'
local wanted = {}
for p in string.gmatch(ARGV[5], '[^,]+') do wanted[p] = true end
-- Batched reads and one write: the fan-out's cost is Redis calls.
local marked = redis.call('HMGET', marks, unpack(people))
local suppressed = redis.call('HMGET', KEYS[4], unpack(people))
local out, mark, unmark, matched, skipped = {'batch'}, {}, {}, 0, 0
for i, p in ipairs(people) do
  local m = marked[i]
  if (retry and m == 'r') or (not retry and not m) then
    local f = redis.call('HMGET', 'lg:person:' .. p, 'contact', 'lang', 'entity_type', 'products', 'marketing', 'blocked')
    local match = true
    if marketing then
      if ARGV[3] ~= '' and f[2] ~= ARGV[3] then match = false end
      if ARGV[4] ~= '' and f[3] ~= ARGV[4] then match = false end
      if ARGV[5] ~= '' then
        local any = false
        for code in string.gmatch(f[4] or '', '[^,]+') do if wanted[code] then any = true end end
        if not any then match = false end
      end
    end
    local ok = false
    if match then
      if not retry then matched = matched + 1 end
      ok = f[1] ~= false
      if ok and marketing then
        ok = f[5] == 'active' and f[6] ~= '1' and not suppressed[i]
      elseif ok then
        ok = suppressed[i] ~= 'erased'
      end
      if not ok then skipped = skipped + 1 end
    end
    if ok then
      mark[#mark + 1] = p
      mark[#mark + 1] = 'm'
      out[#out + 1] = p
      out[#out + 1] = f[1]
      out[#out + 1] = f[2] or ''
    elseif m then
      unmark[#unmark + 1] = p
    end
  end
end
if #mark > 0 then redis.call('HSET', marks, unpack(mark)) end
if #unmark > 0 then redis.call('HDEL', marks, unpack(unmark)) end
if matched > 0 then redis.call('HINCRBY', c, 'recipients', matched) end
if skipped > 0 then redis.call('HINCRBY', c, 'skipped', skipped) end
return out
`)

// NextBatch marks and returns the next up to n recipients of campaign c
// (MaxBatchSize at most), each checked against consent, block and
// suppression at this moment.
func (s *Store) NextBatch(ctx context.Context, c *Campaign, n int) (*Batch, error) {
	source := keyMarketing
	if c.Kind == KindBreachNotice {
		source = campaignKey(c.ID) + keyCampaignTo
	}
	res, err := nextBatchScript.Run(ctx, s.rdb,
		[]string{campaignKey(c.ID), campaignKey(c.ID) + keyCampaignMarks, source, keySuppressed},
		min(n, MaxBatchSize), c.Kind, c.Segment.Lang, c.Segment.EntityType, strings.Join(c.Segment.Products, ",")).StringSlice()
	if err != nil {
		return nil, unavailable("next campaign batch", err)
	}
	switch res[0] {
	case "stopped":
		return &Batch{Stopped: true}, nil
	case "done":
		return &Batch{Done: true}, nil
	}
	b := &Batch{Recipients: make([]Recipient, 0, (len(res)-1)/3)}
	for i := 1; i+2 < len(res); i += 3 {
		contact, err := s.openContact(res[i+1], res[i])
		if err != nil {
			return nil, err
		}
		b.Recipients = append(b.Recipients, Recipient{Person: res[i], Email: contact.Email, Name: contact.Name, Lang: res[i+2]})
	}
	return b, nil
}

// settleScript records the outcome of sending to marked people: ARGV[1] is
// the mark (m: sent, so it stays; r or f), ARGV[2] the mail-log entry of
// sent ones or the most bytes the retry list may hold. Only people still
// marked are settled: one erased meanwhile lost their mark and their
// records, and must not get either back.
var settleScript = redis.NewScript(`
local c, marks, mark = KEYS[1], KEYS[2], ARGV[1]
local people = {}
for i = 3, #ARGV do people[#people + 1] = ARGV[i] end
local current = redis.call('HMGET', marks, unpack(people))
local set, settled = {}, {}
for i, p in ipairs(people) do
  if current[i] == 'm' then
    set[#set + 1] = p
    set[#set + 1] = mark
    settled[#settled + 1] = p
  end
end
if #settled == 0 then return 0 end
if mark == 'm' then
  for _, p in ipairs(settled) do
    local pk = 'lg:person:' .. p
    if redis.call('EXISTS', pk) == 1 then redis.call('RPUSH', pk .. ':mail', ARGV[2]) end
  end
  redis.call('HINCRBY', c, 'sent', #settled)
  return #settled
end
redis.call('HSET', marks, unpack(set))
if mark == 'f' then
  redis.call('HINCRBY', c, 'failed', #settled)
else
  local list = redis.call('HGET', c, 'retry') or ''
  for _, p in ipairs(settled) do
    if #list < tonumber(ARGV[2]) then
      if list ~= '' then list = list .. ',' end
      list = list .. p
    end
  end
  redis.call('HSET', c, 'retry', list)
end
return #settled
`)

// Outcomes of sending to a batch.
const (
	OutcomeSent    = "m" // the provider accepted the message: the mark stays
	OutcomeRefused = "r" // the provider answered that it did not take it (429, 5xx): safe to send again
	OutcomeFailed  = "f" // refused for good, or the outcome is unknown: never sent again
)

// Settle records the outcome of sending campaign c to the marked people:
// sent ones get it in their mail log (the subject export shows it); refused
// ones are sent to again by the next NextBatch, their consent checked
// afresh.
func (s *Store) Settle(ctx context.Context, c *Campaign, outcome string, people []string) error {
	if len(people) == 0 {
		return nil
	}
	arg := make([]any, 0, 2+len(people))
	if outcome == OutcomeSent {
		entry, _ := json.Marshal(MailRecord{Kind: c.Kind, Ref: c.ID, At: s.now().UTC()})
		arg = append(arg, outcome, entry)
	} else {
		arg = append(arg, outcome, maxRetryList*41) // bytes of comma-separated 40-hex person hashes
	}
	for _, p := range people {
		arg = append(arg, p)
	}
	if err := settleScript.Run(ctx, s.rdb, []string{campaignKey(c.ID), campaignKey(c.ID) + keyCampaignMarks}, arg...).Err(); err != nil {
		return unavailable("settle campaign batch", err)
	}
	return nil
}

// UnsubscribeToken is the token of person's unsubscribe link.
func (s *Store) UnsubscribeToken(person string) string {
	return s.keys.unsubscribeToken(person)
}
