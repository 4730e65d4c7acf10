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

// Redis keys. Everything leadgate keeps is under "lg:"; personal values
// appear in keys only as Keys.Index hashes.
const (
	keyLeadPrefix = "lg:lead:"        // hash: clear bookkeeping fields + "pii", the sealed record
	keyAll        = "lg:leads"        // zset id → last change (ms): the purge's time index
	keyStatePfx   = "lg:leads:state:" // zset per state, id → time it entered the state (ms)
	keyPersonPfx  = "lg:person:"      // hash per email hash: marketing consent state
	keyPhonePfx   = "lg:phone:"       // zset per phone hash: its lead ids
	keyDedupePfx  = "lg:dedupe:"      // string: lead id of the same person+phone+entity, 24 h
	keyIdemPfx    = "lg:idem:"        // string: "id fingerprint" per Idempotency-Key, 24 h
	keyRatePfx    = "lg:rate:"        // counters per window, per IP hash and per email hash
	keySeenPfx    = "lg:seen:"        // 24 h counters of accepted requests per IP, email and tax id hash: risk signals
	keySentPfx    = "lg:sent:"        // per kind and person hash: the lead whose message was sent this window
	keyTransfers  = ":transfers"      // list after a lead key: the disclosure log
	keyLeads      = ":leads"          // zset after a person key: the person's lead ids
	keyConsents   = ":consents"       // list after a person key: sealed marketing-consent events
	replayWindow  = 24 * time.Hour    // duplicates and Idempotency-Keys are remembered this long
	seenWindow    = 24 * time.Hour    // the window of the repeat counts in Observed
	sealedRecord  = "pii"             // the lead hash field holding the sealed personal record
)

func leadKey(id string) string { return keyLeadPrefix + id }
func stateKey(s State) string  { return keyStatePfx + string(s) }

// Limit is an allowance of N accepted submissions per Per.
type Limit struct {
	N   int
	Per time.Duration
}

// Store keeps leads in Redis, personal fields sealed with Keys.
type Store struct {
	rdb  redis.UniversalClient
	keys *Keys
	now  func() time.Time
}

// NewStore returns a Store over rdb. now is the clock (time.Now in production).
func NewStore(rdb redis.UniversalClient, keys *Keys, now func() time.Time) *Store {
	return &Store{rdb: rdb, keys: keys, now: now}
}

// record is the sealed part of a lead: everything personal.
type record struct {
	Name    string   `json:"name,omitempty"`
	Phone   string   `json:"phone"`
	Email   string   `json:"email"`
	TaxID   string   `json:"tax_id,omitempty"`
	Message string   `json:"message,omitempty"`
	Consent Consent  `json:"consent"`
	Meta    Metadata `json:"meta"`
}

// consentEvent is one entry of a person's marketing-consent history, stored
// sealed after the id of the lead it came with ("<lead id> <sealed event>"):
// the id is only known for sure inside the accept script (a repeat names
// the first lead).
type consentEvent struct {
	Kind          string    `json:"kind"`
	At            time.Time `json:"at"`
	PolicyVersion string    `json:"policy_version"`
	IP            string    `json:"ip"`
	UserAgent     string    `json:"user_agent"`
	PageURL       string    `json:"page_url,omitempty"`
	Source        string    `json:"source,omitempty"` // what carried a withdrawal
}

// Application is what Accept needs to store one submission.
type Application struct {
	Submission     *Submission
	Consent        Consent
	Meta           Metadata
	Observed       Observed // what intake saw; the Same* counts are filled by the store
	IdempotencyKey string   // optional
	DoubleOptIn    bool     // a marketing opt-in waits for the emailed link (DOUBLE_OPT_IN)
	PerIP          Limit
	PerEmail       Limit
}

// Admission is the outcome of Accept.
type Admission struct {
	ID        string
	Duplicate bool  // a repeat within 24 h, or a replayed Idempotency-Key: nothing new was stored
	State     State // the lead's state now
	undo      func(context.Context) error
}

// acceptScript does every check and write of one submission in one round
// trip, atomically: idempotency replay, rate limits, duplicate, then the lead
// and its indexes, and the person's marketing opt-in.
var acceptScript = redis.NewScript(`
local id, now, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[5]
-- A repeat names a lead that must still exist (an erased or undone one does
-- not count); claiming it tells Undo that someone was promised it.
local function claim(lead)
  if not lead then return nil end
  local lk = 'lg:lead:' .. lead
  if redis.call('EXISTS', lk) == 0 then return nil end
  redis.call('HINCRBY', lk, 'claims', 1)
  redis.call('HSET', lk, 'updated', now)
  redis.call('ZADD', KEYS[6], now, lead)
  return {'duplicate', lead, redis.call('HGET', lk, 'state')}
end
if ARGV[3] == '1' then
  local v = redis.call('GET', KEYS[1])
  if v then
    local sep = string.find(v, ' ', 1, true)
    if string.sub(v, sep + 1) ~= ARGV[4] then return {'idem_mismatch'} end
    local replay = claim(string.sub(v, 1, sep - 1))
    if replay then return replay end
  end
end
for i, k in ipairs({KEYS[3], KEYS[4]}) do
  local limit, window = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  if tonumber(redis.call('GET', k) or '0') >= limit then
    local left = redis.call('PTTL', k)
    if left < 0 then redis.call('PEXPIRE', k, window); left = window end
    return {'rate', tostring(left)}
  end
end
for i, k in ipairs({KEYS[3], KEYS[4]}) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, ARGV[5 + 2 * i]) end
end
local seen = {0, 0, 0}
for i = 1, (ARGV[13] == '1') and 3 or 2 do
  seen[i] = redis.call('INCR', KEYS[11 + i])
  if seen[i] == 1 then redis.call('PEXPIRE', KEYS[11 + i], ARGV[12]) end
end
local result = claim(redis.call('GET', KEYS[2]))
local lead = result and result[2]
if not result then
  lead, result = id, {'accepted', id, 'received'}
  redis.call('HSET', KEYS[5], 'same_ip', seen[1], 'same_email', seen[2], 'same_tax_id', seen[3], unpack(ARGV, 20))
  redis.call('ZADD', KEYS[6], now, id)
  if redis.call('HGET', KEYS[8], 'blocked') == '1' then
    -- The person asked to block processing: the request is stored, but not
    -- routed or mailed for, until they lift the block (then it is received).
    redis.call('HSET', KEYS[5], 'state', 'blocked', 'blocked_from', 'received')
    redis.call('ZADD', 'lg:leads:state:blocked', now, id)
    result[3] = 'blocked'
  else
    redis.call('ZADD', KEYS[7], now, id)
  end
  redis.call('ZADD', KEYS[9], now, id)
  redis.call('ZADD', KEYS[10], now, id)
  redis.call('SET', KEYS[2], id, 'PX', ttl)
  -- The person's profile is their newest request: where mail goes, in which
  -- language, and what a campaign segment matches.
  redis.call('HSET', KEYS[8], 'contact', ARGV[16], 'lang', ARGV[17], 'entity_type', ARGV[18], 'products', ARGV[19], 'updated', now)
  -- A number of their own: their bit in every campaign's marks.
  if redis.call('HEXISTS', KEYS[8], 'n') == 0 then redis.call('HSET', KEYS[8], 'n', redis.call('INCR', KEYS[19])) end
  redis.call('ZADD', KEYS[15], now, ARGV[15])
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], lead .. ' ' .. ARGV[4], 'PX', ttl) end
if ARGV[10] == '1' then
  if redis.call('HGET', KEYS[8], 'marketing') ~= 'active' then
    -- A suppressed person (erased, bounced, reported spam) needs a fresh
    -- double opt-in whatever DOUBLE_OPT_IN says.
    local state = ARGV[14]
    if redis.call('HEXISTS', KEYS[18], ARGV[15]) == 1 then state = 'pending' end
    redis.call('HSET', KEYS[8], 'marketing', state, 'marketing_at', now)
    if state == 'active' then
      if redis.call('HGET', KEYS[8], 'blocked') ~= '1' then redis.call('ZADD', KEYS[16], 0, ARGV[15]) end
    else
      redis.call('ZADD', KEYS[17], now, ARGV[15])
    end
  end
  redis.call('RPUSH', KEYS[11], lead .. ' ' .. ARGV[11])
end
return result
`)

// Accept stores a submission as a new lead in state Received, or recognises
// it as a duplicate or replay. It does not enqueue: the caller does, and
// calls Admission.Undo when that fails.
func (s *Store) Accept(ctx context.Context, a Application) (*Admission, error) {
	sub, now := a.Submission, s.now()
	id, err := uuid.NewV7() // time-ordered: newest-first listings sort by id
	if err != nil {
		return nil, err
	}
	lead := id.String()
	person := s.keys.Index("email", sub.EmailKey)
	phone := s.keys.Index("phone", sub.Phone)
	rec, err := json.Marshal(record{Name: sub.Name, Phone: sub.Phone, Email: sub.Email, TaxID: sub.TaxID,
		Message: sub.Message, Consent: a.Consent, Meta: a.Meta})
	if err != nil {
		return nil, err
	}
	contact, _ := json.Marshal(Contact{Email: sub.Email, Name: sub.Name})
	var event []byte
	if sub.ConsentMarketing {
		ev, _ := json.Marshal(consentEvent{Kind: "marketing_opt_in", At: now,
			PolicyVersion: a.Consent.PolicyVersion, IP: a.Consent.IP, UserAgent: a.Consent.UserAgent, PageURL: a.Consent.PageURL})
		event = s.keys.Seal(ev, person)
	}
	observed, err := json.Marshal(a.Observed)
	if err != nil {
		return nil, err
	}
	seenTaxID, hasTaxID := keySeenPfx+"taxid:-", "0"
	if sub.TaxID != "" {
		seenTaxID, hasTaxID = keySeenPfx+"taxid:"+s.keys.Index("taxid", sub.TaxID), "1"
	}
	optIn := MarketingPending // confirmed by the emailed link (DOUBLE_OPT_IN)
	if !a.DoubleOptIn {
		optIn = MarketingActive
	}
	idemKey, hasIdem := keyIdemPfx+"-", "0"
	if a.IdempotencyKey != "" {
		idemKey, hasIdem = keyIdemPfx+s.keys.Index("idempotency", a.IdempotencyKey), "1"
	}
	ms := now.UnixMilli()
	keys := []string{
		idemKey,
		keyDedupePfx + s.keys.Index("dedupe", sub.EmailKey, sub.Phone, sub.EntityType),
		keyRatePfx + "ip:" + s.keys.Index("ip", a.Meta.IP),
		keyRatePfx + "email:" + person,
		leadKey(lead), keyAll, stateKey(Received),
		keyPersonPfx + person, keyPersonPfx + person + keyLeads, keyPhonePfx + phone, keyPersonPfx + person + keyConsents,
		keySeenPfx + "ip:" + s.keys.Index("ip", a.Meta.IP), keySeenPfx + "email:" + person, seenTaxID,
		keyPeople, keyMarketing, keyPendingOptins, keySuppressed, keyPeopleSeq,
	}
	args := []any{lead, ms, hasIdem, s.keys.Index("fingerprint", sub.fingerprint()), replayWindow.Milliseconds(),
		a.PerIP.N, a.PerIP.Per.Milliseconds(), a.PerEmail.N, a.PerEmail.Per.Milliseconds(),
		boolArg(sub.ConsentMarketing), event, seenWindow.Milliseconds(), hasTaxID, optIn,
		person, s.keys.Seal(contact, person), sub.Lang, sub.EntityType, strings.Join(sub.Products, ","),
		"state", string(Received), "observed", observed, "entity_type", sub.EntityType, "lang", sub.Lang,
		"products", strings.Join(sub.Products, ","), "person", person, "phone", phone,
		"created", ms, "updated", ms, "route_since", ms, sealedRecord, s.keys.Seal(rec, lead)}
	res, err := acceptScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, unavailable("store lead", err)
	}
	switch res[0] {
	case "idem_mismatch":
		return nil, &Error{Code: EInvalid, Message: "Idempotency-Key reused with a different body",
			Fields: FieldErrors{"idempotency_key": {Key: "idempotency.reused"}}}
	case "rate":
		left, _ := strconv.ParseInt(res[1], 10, 64)
		return nil, &Error{Code: ERateLimited, Message: "too many submissions", RetryAfter: time.Duration(left) * time.Millisecond}
	case "duplicate":
		return &Admission{ID: res[1], Duplicate: true, State: State(res[2])}, nil
	}
	return &Admission{ID: lead, State: State(res[2]), undo: func(ctx context.Context) error {
		return undoScript.Run(ctx, s.rdb, []string{leadKey(lead), keyAll, stateKey(Received), keys[8], keys[9],
			keys[1], idemKey, keys[10]}, lead, event).Err()
	}}, nil
}

// undoScript removes a lead that Accept stored but could not be queued, so
// the answer "nothing accepted" is true and a retry is not a duplicate.
var undoScript = redis.NewScript(`
local id = ARGV[1]
-- A repeat was answered 202 with this lead meanwhile: keep it; it stays
-- received and is queued by that repeat or the sweeper.
if tonumber(redis.call('HGET', KEYS[1], 'claims') or '0') > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[1] .. ':transfers')
for i = 2, 5 do redis.call('ZREM', KEYS[i], id) end
if redis.call('GET', KEYS[6]) == id then redis.call('DEL', KEYS[6]) end
local idem = redis.call('GET', KEYS[7])
if idem and string.sub(idem, 1, #id + 1) == id .. ' ' then redis.call('DEL', KEYS[7]) end
if ARGV[2] ~= '' then redis.call('LREM', KEYS[8], 1, id .. ' ' .. ARGV[2]) end
return 1
`)

// Undo removes a newly accepted lead whose enqueue failed. It keeps the lead
// when a repeat was already answered with it, and if Redis is gone too: the
// lead then stays Received and the sweeper queues it, so it is never lost —
// at worst routed although this request saw an error.
func (a *Admission) Undo(ctx context.Context) error {
	if a.undo == nil {
		return nil
	}
	return a.undo(ctx)
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Get loads a lead with its personal fields decrypted, or ENotFound.
func (s *Store) Get(ctx context.Context, id string) (*Lead, error) {
	var fields *redis.MapStringStringCmd
	var transfers *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HGetAll(ctx, leadKey(id))
		transfers = p.LRange(ctx, leadKey(id)+keyTransfers, 0, -1)
		return nil
	})
	if err != nil {
		return nil, unavailable("load lead", err)
	}
	h := fields.Val()
	if len(h) == 0 {
		return nil, &Error{Code: ENotFound, Message: "no such lead"}
	}
	plain, err := s.keys.Open([]byte(h[sealedRecord]), id)
	if err != nil {
		return nil, fmt.Errorf("lead %s: %w", id, err)
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("lead %s: %w", id, err)
	}
	l := &Lead{ID: id, State: State(h["state"]), EntityType: h["entity_type"], Lang: h["lang"], Person: h["person"],
		Name: rec.Name, Phone: rec.Phone, Email: rec.Email, TaxID: rec.TaxID, Message: rec.Message,
		Consent: rec.Consent, Meta: rec.Meta, CreatedAt: msTime(h["created"]), UpdatedAt: msTime(h["updated"]),
		Route: Route{Since: msTime(h["route_since"]), System: h["route_system"], Ref: h["route_ref"], URL: h["route_url"], At: msTime(h["route_at"]), Error: h["route_error"]}}
	if h["products"] != "" {
		l.Products = strings.Split(h["products"], ",")
	}
	if err := json.Unmarshal([]byte(h["observed"]), &l.Observed); err != nil {
		return nil, fmt.Errorf("lead %s: observed: %w", id, err)
	}
	l.Observed.SameIP, _ = strconv.Atoi(h["same_ip"])
	l.Observed.SameEmail, _ = strconv.Atoi(h["same_email"])
	l.Observed.SameTaxID, _ = strconv.Atoi(h["same_tax_id"])
	l.Risk.Score, _ = strconv.Atoi(h["risk_score"])
	if h["risk_signals"] != "" {
		l.Risk.Signals = strings.Split(h["risk_signals"], ",")
	}
	l.Released = h["released"] == "1"
	if h["assign_team"] != "" {
		l.Assignment = &Assignment{Rule: h["assign_rule"], Team: h["assign_team"], Owner: h["assign_owner"],
			CRMUserID: h["assign_crm_user"]}
	}
	for _, t := range transfers.Val() {
		var tr Transfer
		if json.Unmarshal([]byte(t), &tr) == nil {
			l.Transfers = append(l.Transfers, tr)
		}
	}
	return l, nil
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// transitionScript moves a lead from one state to another atomically with
// its state indexes, bookkeeping fields and disclosure log — only if it is
// still in the expected state, so a late retry cannot undo a block.
var transitionScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
local cur = redis.call('HGET', KEYS[1], 'state')
-- Data that left is logged even when the state moved on meanwhile (a block
-- that landed during the CRM call): the disclosure log records facts.
if ARGV[6] ~= '' then redis.call('RPUSH', KEYS[1] .. ':transfers', ARGV[6]) end
if ARGV[5] ~= '' and cur ~= ARGV[5] then return {'conflict', cur} end
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[2 + tonumber(ARGV[3])], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', ARGV[4], unpack(ARGV, 7))
return {'ok', ARGV[2]}
`)

// Transition is one change of a lead's state.
type Transition struct {
	From     State     // required current state; "" accepts any
	To       State     // new state
	Risk     *Risk     // recorded when the lead was assessed on the way
	Route    Route     // recorded when To is Routed or Failed
	Transfer *Transfer // appended to the disclosure log when data left
}

// Transition applies t and returns the lead's state afterwards: t.To, or the
// state it was found in when that was not t.From (then only t.Transfer is
// recorded). It returns ENotFound when the lead is gone (erased or purged).
func (s *Store) Transition(ctx context.Context, id string, t Transition) (State, error) {
	idx := slices.Index(States, t.To)
	if idx < 0 {
		return "", fmt.Errorf("unknown state %q", t.To)
	}
	keys := []string{leadKey(id), keyAll}
	for _, st := range States {
		keys = append(keys, stateKey(st))
	}
	var transfer []byte
	if t.Transfer != nil {
		transfer, _ = json.Marshal(t.Transfer)
	}
	args := []any{id, string(t.To), idx + 1, s.now().UnixMilli(), string(t.From), transfer,
		"route_system", t.Route.System, "route_ref", t.Route.Ref, "route_url", t.Route.URL, "route_error", t.Route.Error}
	if !t.Route.At.IsZero() {
		args = append(args, "route_at", t.Route.At.UnixMilli())
	}
	if t.Risk != nil {
		args = append(args, "risk_score", t.Risk.Score, "risk_signals", strings.Join(t.Risk.Signals, ","))
	}
	res, err := transitionScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return "", unavailable("change lead state", err)
	}
	if res[0] == "missing" {
		return "", &Error{Code: ENotFound, Message: "no such lead"}
	}
	return State(res[1]), nil
}

// ReceivedBefore lists up to n leads still Received since before t, oldest
// first, skipping the first offset: leads a crash may have left unqueued,
// for the sweeper.
func (s *Store) ReceivedBefore(ctx context.Context, t time.Time, offset, n int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, stateKey(Received), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10), Offset: int64(offset), Count: int64(n)}).Result()
	if err != nil {
		return nil, unavailable("list received leads", err)
	}
	return ids, nil
}

// Ping reports whether Redis answers, for readiness.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Ping(ctx).Err()
}

// assignScript records a lead's assignment unless it has one: a retried
// route keeps its salesperson and does not move the round-robin on.
var assignScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if redis.call('HEXISTS', KEYS[1], 'assign_team') == 0 then
  redis.call('HSET', KEYS[1], 'assign_rule', ARGV[1], 'assign_team', ARGV[2], 'assign_owner', ARGV[3], 'assign_crm_user', ARGV[4])
end
return redis.call('HMGET', KEYS[1], 'assign_rule', 'assign_team', 'assign_owner', 'assign_crm_user')
`)

// Assign records a as the lead's assignment when it has none yet, and
// returns the assignment the lead has.
func (s *Store) Assign(ctx context.Context, id string, a Assignment) (Assignment, error) {
	res, err := assignScript.Run(ctx, s.rdb, []string{leadKey(id)}, a.Rule, a.Team, a.Owner, a.CRMUserID).StringSlice()
	if err != nil {
		return Assignment{}, unavailable("assign lead", err)
	}
	if len(res) != 4 {
		return Assignment{}, &Error{Code: ENotFound, Message: "no such lead"}
	}
	return Assignment{Rule: res[0], Team: res[1], Owner: res[2], CRMUserID: res[3]}, nil
}

// redriveScript sends a failed lead to sales again, or releases a lead held
// for review: back to received, with a fresh retry window.
var redriveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {'missing', ''} end
if cur ~= 'failed' and cur ~= 'review' then return {'conflict', cur} end
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'received', 'updated', ARGV[2], 'route_since', ARGV[2], 'route_error', '')
if cur == 'review' then redis.call('HSET', KEYS[1], 'released', '1') end
return {'ok', cur}
`)

// Redrive moves a Failed or Review lead back to Received and returns the
// state it had; the caller requeues it. Other states are EConflict.
func (s *Store) Redrive(ctx context.Context, id string) (State, error) {
	keys := []string{leadKey(id), keyAll, stateKey(Received)}
	for _, st := range States {
		if st != Received {
			keys = append(keys, stateKey(st))
		}
	}
	res, err := redriveScript.Run(ctx, s.rdb, keys, id, s.now().UnixMilli()).StringSlice()
	if err != nil {
		return "", unavailable("redrive lead", err)
	}
	switch res[0] {
	case "missing":
		return "", &Error{Code: ENotFound, Message: "no such lead"}
	case "conflict":
		return State(res[1]), &Error{Code: EConflict, Message: "only failed or review leads can be redriven; this one is " + res[1]}
	}
	return State(res[1]), nil
}

// Page is one page of a lead listing.
type Page struct {
	Leads []*Lead
	Next  string // cursor of the next page; "" on the last
}

// List returns leads in state st that entered it at or after since (with st
// empty: any lead changed at or after since), newest first, limit per page,
// continuing after cursor (from an earlier Page.Next).
func (s *Store) List(ctx context.Context, st State, since time.Time, cursor string, limit int) (*Page, error) {
	max := "+inf"
	var afterScore int64
	var afterID string
	if cursor != "" {
		ms, id, ok := strings.Cut(cursor, ".")
		n, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, &Error{Code: EInvalid, Message: "malformed cursor", Fields: FieldErrors{"cursor": {Key: "field.invalid"}}}
		}
		max, afterScore, afterID = ms, n, id
	}
	min := "-inf"
	if !since.IsZero() {
		min = strconv.FormatInt(since.UnixMilli(), 10)
	}
	// Leads that entered the state in the same millisecond as the cursor come
	// again; fetch enough extra to step over them.
	index := keyAll // every lead, by last change
	if st != "" {
		index = stateKey(st)
	}
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{
		Max: max, Min: min, Count: int64(limit + 64)}).Result()
	if err != nil {
		return nil, unavailable("list leads", err)
	}
	page := &Page{}
	var prev redis.Z
	for _, z := range zs {
		id := z.Member.(string)
		if cursor != "" && int64(z.Score) == afterScore && id >= afterID {
			continue // members of equal score come in descending id order
		}
		if len(page.Leads) == limit {
			page.Next = fmt.Sprintf("%d.%s", int64(prev.Score), prev.Member)
			break
		}
		l, err := s.Get(ctx, id)
		if ErrorCode(err) == ENotFound {
			continue // erased between the two reads
		} else if err != nil {
			return nil, err
		}
		page.Leads = append(page.Leads, l)
		prev = z
	}
	return page, nil
}

// logTransferScript appends to a lead's disclosure log if the lead exists.
var logTransferScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
`)

// LogTransfer records that the lead's data left leadgate outside a state
// change (a sales notification, say). ENotFound when the lead is gone.
func (s *Store) LogTransfer(ctx context.Context, id string, t Transfer) error {
	b, _ := json.Marshal(t)
	n, err := logTransferScript.Run(ctx, s.rdb, []string{leadKey(id), leadKey(id) + keyTransfers}, b).Int()
	if err != nil {
		return unavailable("log transfer", err)
	}
	if n == 0 {
		return &Error{Code: ENotFound, Message: "no such lead"}
	}
	return nil
}

// ClaimSend marks that a message of kind (an acknowledgement, an opt-in
// request) is about to go to person for lead: the first lead in a window
// wins it, and a retry of that lead's send keeps it until SentTo marks it
// done. So the form cannot be used to mail someone more than once a window;
// a crash between the send and SentTo repeats the message (the retry still
// holds the claim), nothing else doubles it.
func (s *Store) ClaimSend(ctx context.Context, kind, person, lead string, window time.Duration) (bool, error) {
	key := keySentPfx + kind + ":" + person
	ok, err := s.rdb.SetNX(ctx, key, lead, window).Result()
	if err != nil {
		return false, unavailable("claim send", err)
	}
	if ok {
		return true, nil
	}
	holder, err := s.rdb.Get(ctx, key).Result()
	if err != nil && err != redis.Nil {
		return false, unavailable("claim send", err)
	}
	return holder == lead, nil
}

// SentTo marks the message ClaimSend claimed as sent: no later task, even
// of the same lead, sends it again within the window.
func (s *Store) SentTo(ctx context.Context, kind, person, lead string) error {
	err := s.rdb.SetArgs(ctx, keySentPfx+kind+":"+person, lead+" sent", redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	if err != nil && err != redis.Nil {
		return unavailable("mark sent", err)
	}
	return nil
}

// OptinToken is the token of the link that confirms person's opt-in, valid
// until expires.
func (s *Store) OptinToken(person string, expires time.Time) string {
	return s.keys.optinToken(person, expires)
}
