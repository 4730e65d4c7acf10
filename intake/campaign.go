package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	keyCampaignMarks = ":marks"         // bitmap after a campaign key, by person number: 1 = marked (then sent, or lost in a crash)
	keyCampaignFails = ":failed"        // hash after a campaign key: person → 1, marked but never sent (refused for good, or the outcome unknown)
	keyCampaignTo    = ":to"            // zset after a campaign key: person → 0, a notice's recipients
	maxRetryList     = 4 * MaxBatchSize // refused recipients a campaign keeps to retry
)

func campaignKey(id string) string { return keyCampaignPfx + id }

// MaxBatchSize is the most people Candidates reads at once: SendGrid takes
// 1000 personalizations a request.
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
    if ARGV[1] == 'sending' then redis.call('HSET', KEYS[1], 'started', ARGV[2]) end
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
	ok, err := s.rdb.HSetNX(ctx, campaignKey(id), "test_claimed", 1).Result()
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
	number string // the person's number: their bit in a campaign's marks
}

// Candidates are the next people of a campaign's walk, read but not yet
// marked: contact and language decrypted, those outside the segment or no
// longer held left out.
type Candidates struct {
	Recipients []Recipient
	Cursor     string // the last person walked: where the walk goes on
	Retry      bool   // the refused recipients of an earlier attempt, not the walk
	Matched    int    // people walked who are in the segment (counted as recipients once marked)
	Done       bool   // the walk is over
}

// Batch is what Mark hands out: people marked, to be sent to now. Stopped
// means the campaign was cancelled (or finished) and nobody was marked.
type Batch struct {
	Recipients []Recipient
	Stopped    bool
}

// Walk returns where a campaign's fan-out stands: its state, the last
// person walked, and the refused recipients to retry first.
func (s *Store) Walk(ctx context.Context, id string) (state, cursor string, retry []string, err error) {
	h, err := s.rdb.HMGet(ctx, campaignKey(id), "state", "cursor", "retry").Result()
	if err != nil {
		return "", "", nil, unavailable("read campaign", err)
	}
	state, _ = h[0].(string)
	cursor, _ = h[1].(string)
	if list, _ := h[2].(string); list != "" {
		retry = strings.Split(list, ",")
	}
	return state, cursor, retry, nil
}

// walkSource is the index a campaign walks: the marketing index, or a
// notice's list.
func walkSource(c *Campaign) string {
	if c.Kind == KindBreachNotice {
		return campaignKey(c.ID) + keyCampaignTo
	}
	return keyMarketing
}

// Candidates reads the next up to n people of c's walk after cursor ("" from
// the start; MaxBatchSize at most). It marks nothing, so it may run ahead
// of Mark.
func (s *Store) Candidates(ctx context.Context, c *Campaign, cursor string, n int) (*Candidates, error) {
	from := "-"
	if cursor != "" {
		from = "(" + cursor
	}
	people, err := s.rdb.ZRangeByLex(ctx, walkSource(c), &redis.ZRangeBy{Min: from, Max: "+", Count: int64(min(n, MaxBatchSize))}).Result()
	if err != nil {
		return nil, unavailable("walk campaign", err)
	}
	if len(people) == 0 {
		return &Candidates{Done: true, Cursor: cursor}, nil
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
func (s *Store) RetryCandidates(ctx context.Context, c *Campaign, people []string) (*Candidates, error) {
	cands, err := s.readCandidates(ctx, c, people)
	if err != nil {
		return nil, err
	}
	cands.Retry = true
	return cands, nil
}

// readCandidates reads people's contact, language and segment fields in one
// pipeline and keeps those in c's segment who are still held.
func (s *Store) readCandidates(ctx context.Context, c *Campaign, people []string) (*Candidates, error) {
	profiles := make([]*redis.SliceCmd, len(people))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, person := range people {
			profiles[i] = p.HMGet(ctx, personKey(person), "contact", "lang", "entity_type", "products", "n")
		}
		return nil
	}); err != nil {
		return nil, unavailable("read campaign recipients", err)
	}
	cands := &Candidates{Recipients: make([]Recipient, 0, len(people))}
	for i, person := range people {
		f := profiles[i].Val()
		sealed, _ := f[0].(string)
		lang, _ := f[1].(string)
		entity, _ := f[2].(string)
		products, _ := f[3].(string)
		number, _ := f[4].(string)
		if sealed == "" || number == "" { // erased meanwhile: nobody to send to
			continue
		}
		if c.Kind == KindCampaign && !c.Segment.matches(lang, entity, products) {
			continue
		}
		contact, err := s.openContact(sealed, person)
		if err != nil {
			return nil, err
		}
		cands.Recipients = append(cands.Recipients, Recipient{Person: person, Email: contact.Email, Name: contact.Name,
			Lang: lang, number: number})
	}
	cands.Matched = len(cands.Recipients)
	return cands, nil
}

// markScript marks the people of the next batch who may be sent to now,
// and moves the campaign's cursor past them. The check is membership of
// the walked index at this moment: lg:marketing holds exactly the people
// whose consent is active and who are not blocked, suppressed or erased
// (every write that changes one of those keeps it so), and a notice's list
// loses erased people. So a withdrawal that lands before the mark stops
// the email, and one that lands after finds it already on its way. Marks
// are bits by person number, set with one BITFIELD that also answers which
// were set before (a person already marked is not sent to again).
//
// KEYS: campaign hash, its marks, the index walked.
// ARGV: retry ("1" when the candidates are the refused ones of an earlier
// attempt, already marked: a mark is cleared for one no longer in the
// index), the new cursor, the number of candidates that matched the
// segment, then person hash and number of each candidate.
var markScript = redis.NewScript(`
local c, marks = KEYS[1], KEYS[2]
if redis.call('HGET', c, 'state') ~= 'sending' then return {'stopped'} end
local retry = ARGV[1] == '1'
if retry then redis.call('HDEL', c, 'retry') elseif ARGV[2] ~= '' then redis.call('HSET', c, 'cursor', ARGV[2]) end
if not retry and tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', c, 'recipients', ARGV[3]) end
if #ARGV < 5 then return {'batch'} end
local people, numbers = {}, {}
for i = 4, #ARGV, 2 do
  people[#people + 1] = ARGV[i]
  numbers[#numbers + 1] = ARGV[i + 1]
end
local held = redis.call('ZMSCORE', KEYS[3], unpack(people))
local set, setFor, clear, skipped = {}, {}, {}, 0
for i, p in ipairs(people) do
  if held[i] then
    set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = numbers[i]; set[#set + 1] = 1
    setFor[#setFor + 1] = p
  else
    skipped = skipped + 1
    if retry then
      clear[#clear + 1] = 'SET'; clear[#clear + 1] = 'u1'; clear[#clear + 1] = numbers[i]; clear[#clear + 1] = 0
    end
  end
end
local out = {'batch'}
if #set > 0 then
  local before = redis.call('BITFIELD', marks, unpack(set))
  for j, p in ipairs(setFor) do
    if retry or before[j] == 0 then out[#out + 1] = p end
  end
end
if #clear > 0 then redis.call('BITFIELD', marks, unpack(clear)) end
if skipped > 0 then redis.call('HINCRBY', c, 'skipped', skipped) end
return out
`)

// Mark marks those of cands who may be sent to now (markScript) and
// records the walk's progress: the cursor, the recipients counted, the
// retry list consumed.
func (s *Store) Mark(ctx context.Context, c *Campaign, cands *Candidates) (*Batch, error) {
	args := make([]any, 0, 3+2*len(cands.Recipients))
	args = append(args, boolArg(cands.Retry), cands.Cursor, cands.Matched)
	byPerson := make(map[string]Recipient, len(cands.Recipients))
	for _, r := range cands.Recipients {
		byPerson[r.Person] = r
		args = append(args, r.Person, r.number)
	}
	res, err := markScript.Run(ctx, s.rdb, []string{campaignKey(c.ID), campaignKey(c.ID) + keyCampaignMarks, walkSource(c)}, args...).StringSlice()
	if err != nil {
		return nil, unavailable("mark campaign batch", err)
	}
	if res[0] == "stopped" {
		return &Batch{Stopped: true}, nil
	}
	b := &Batch{Recipients: make([]Recipient, 0, len(res)-1)}
	for _, person := range res[1:] {
		b.Recipients = append(b.Recipients, byPerson[person])
	}
	return b, nil
}

// matches reports whether a person with this language, entity type and
// products (comma list) is in the segment.
func (seg Segment) matches(lang, entity, products string) bool {
	if seg.Lang != "" && lang != seg.Lang || seg.EntityType != "" && entity != seg.EntityType {
		return false
	}
	if len(seg.Products) == 0 {
		return true
	}
	for _, p := range strings.Split(products, ",") {
		if slices.Contains(seg.Products, p) {
			return true
		}
	}
	return false
}

// settleScript records that marked people were not sent to: ARGV[1] is
// the outcome (r: refused, to retry; f: never sent), ARGV[2] the most bytes
// the retry list may hold, then person hash and number of each. Only
// people still marked are settled: one erased meanwhile lost their mark and
// must not be named again.
var settleScript = redis.NewScript(`
local c, marks, failed, outcome = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local get = {}
for i = 4, #ARGV, 2 do get[#get + 1] = 'GET'; get[#get + 1] = 'u1'; get[#get + 1] = ARGV[i] end
local bits = redis.call('BITFIELD', marks, unpack(get))
local settled = {}
for j, bit in ipairs(bits) do
  if bit == 1 then settled[#settled + 1] = ARGV[1 + 2 * j] end
end
if #settled == 0 then return 0 end
if outcome == 'f' then
  local f = {}
  for _, p in ipairs(settled) do f[#f + 1] = p; f[#f + 1] = 1 end
  redis.call('HSET', failed, unpack(f))
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
	OutcomeSent    = "s" // the provider accepted the message: the mark stays
	OutcomeRefused = "r" // the provider answered that it did not take it (429, 5xx): safe to send again
	OutcomeFailed  = "f" // refused for good, or the outcome is unknown: never sent again
)

// Settle records the outcome of sending campaign c to the marked people.
// Sent ones keep their mark, which is also their record of the email (the
// subject export reads it, see MailSent), so only the counter moves: this
// is the fan-out's hot path. Refused ones are read again first by the next
// run (Walk, RetryCandidates) and marked afresh.
func (s *Store) Settle(ctx context.Context, c *Campaign, outcome string, people []Recipient) error {
	if len(people) == 0 {
		return nil
	}
	if outcome == OutcomeSent {
		if err := s.rdb.HIncrBy(ctx, campaignKey(c.ID), "sent", int64(len(people))).Err(); err != nil {
			return unavailable("settle campaign batch", err)
		}
		return nil
	}
	arg := make([]any, 0, 2+2*len(people))
	arg = append(arg, outcome, maxRetryList*41) // bytes of comma-separated 40-hex person hashes
	for _, p := range people {
		arg = append(arg, p.Person, p.number)
	}
	keys := []string{campaignKey(c.ID), campaignKey(c.ID) + keyCampaignMarks, campaignKey(c.ID) + keyCampaignFails}
	if err := settleScript.Run(ctx, s.rdb, keys, arg...).Err(); err != nil {
		return unavailable("settle campaign batch", err)
	}
	return nil
}

// MailSent lists the campaigns and notices handed to the provider for
// person: their mark is the record, kept as long as the campaign's marks
// (LEAD_RETENTION). A crash between mark and send makes one appear sent
// that was lost — at most once means it is never sent later either.
func (s *Store) MailSent(ctx context.Context, person string) ([]MailRecord, error) {
	number, err := s.rdb.HGet(ctx, personKey(person), "n").Int64()
	if err == redis.Nil {
		return nil, nil
	} else if err != nil {
		return nil, unavailable("read person", err)
	}
	ids, err := s.rdb.ZRange(ctx, keyCampaigns, 0, -1).Result()
	if err != nil {
		return nil, unavailable("list campaigns", err)
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
		return nil, unavailable("read campaign marks", err)
	}
	var out []MailRecord
	for i, id := range ids {
		kind, _ := info[i].Val()[0].(string)
		started, _ := info[i].Val()[1].(string)
		retry, _ := info[i].Val()[2].(string)
		if marks[i].Val() == 0 || failed[i].Val() || strings.Contains(retry, person) {
			continue
		}
		out = append(out, MailRecord{Kind: kind, Ref: id, At: msTime(started)})
	}
	return out, nil
}

// UnsubscribeToken is the token of person's unsubscribe link.
func (s *Store) UnsubscribeToken(person string) string {
	return s.keys.unsubscribeToken(person)
}
