package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys of data-subject requests. A request is recorded by its
// reference and names its subject only by SubjectKey — a keyed hash derived
// from, but not equal to, the person's lookup hash — so the record that an
// erasure was done does not itself link back to anything of the person.
const (
	keySubjectRequests   = "lg:subject:requests" // zset reference → received (ms)
	keySubjectRequestPfx = "lg:subject:request:" // hash per reference: kind, scope, received, due, closed, subject, by, outcome
	subjectScanCount     = 1000                  // SCAN COUNT (and MGET batch) when looking for keys that name a person or lead
	subjectMaxAttempts   = 5                     // a person's records changing under a request this often is EUnavailable
	subjectMaxListLimit  = 500                   // the most subject requests one listing page holds
	noIndexKey           = keyPhonePfx + "-"     // a key no record uses: the slot of an index entry that does not exist
	noDedupeKey          = keyDedupePfx + "-"    // the same, for a dedupe key that cannot be computed
)

// SubjectKey is how subject-request records name a person (or, for a
// request by phone, a phone's lookup hash): a keyed hash of the lookup
// hash. With the index key it can be computed from an address to find the
// requests about someone; without it, it matches nothing else in Redis.
func (s *Store) SubjectKey(kind, lookup string) string {
	return s.keys.Index("subject", kind, lookup)
}

// HeldBy names the CRM that holds a copy of the lead and the CRM's
// reference to it: the routing outcome, or — for a push whose outcome was
// not recorded as routed (the lead was blocked meanwhile, say) — the last
// CRM transfer in the disclosure log. system is "" when no CRM got it.
func (l *Lead) HeldBy() (system, ref string) {
	if l.Route.System != "" {
		return l.Route.System, l.Route.Ref
	}
	for i := len(l.Transfers) - 1; i >= 0; i-- {
		if sys, ok := strings.CutPrefix(l.Transfers[i].Recipient, "crm:"); ok && sys != "" {
			return sys, l.Transfers[i].Ref
		}
	}
	return "", ""
}

// Held reports whether anything is held about person: a profile or a lead.
func (s *Store) Held(ctx context.Context, person string) (bool, error) {
	n, err := s.rdb.Exists(ctx, personKey(person), personKey(person)+keyLeads).Result()
	if err != nil {
		return false, unavailable("look up person", err)
	}
	return n > 0, nil
}

func notHeld() error {
	return &Error{Code: ENotFound, Message: "nothing is held about this person"}
}

// PeopleByPhone returns the people who gave phone (E.164) with any request
// held, in the order of their first such request.
func (s *Store) PeopleByPhone(ctx context.Context, phone string) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, keyPhonePfx+s.keys.Index("phone", phone), 0, -1).Result()
	if err != nil {
		return nil, unavailable("look up phone", err)
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, leadKey(id), "person")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("look up phone", err)
	}
	var people []string
	for _, c := range cmds {
		if p := c.Val(); p != "" && !slices.Contains(people, p) {
			people = append(people, p)
		}
	}
	return people, nil
}

// Subject is everything held about one person, for an access request.
type Subject struct {
	Person   string
	Profile  SubjectProfile
	Leads    []*Lead         // oldest first, personal fields decrypted, with their disclosure logs
	Consents []ConsentRecord // the consent history, oldest first: each request's consent to processing and every marketing event
	Mail     []MailRecord    // campaign and notice emails sent (mail about a request is in its lead's disclosure log)
}

// SubjectProfile is a person's profile as an export shows it: where their
// mail goes, in which language, their marketing consent and whether they
// are blocked or suppressed.
type SubjectProfile struct {
	Email       string    `json:"email,omitempty"`
	Name        string    `json:"name,omitempty"`
	Lang        string    `json:"lang,omitempty"`
	EntityType  string    `json:"entity_type,omitempty"`
	Products    []string  `json:"products,omitempty"`
	Marketing   string    `json:"marketing"` // pending, active, withdrawn, or "none"
	MarketingAt time.Time `json:"marketing_at,omitzero"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	Blocked     bool      `json:"blocked"`
	Suppressed  string    `json:"suppressed,omitempty"` // why no mail reaches them: erased, bounce, dropped, spamreport
	UpdatedAt   time.Time `json:"updated_at,omitzero"`  // their newest request
}

// ConsentRecord is one entry of a person's consent history with its proof:
// consent to processing given with a request, or a marketing opt-in,
// confirmation or withdrawal.
type ConsentRecord struct {
	Kind          string    `json:"kind"`           // processing, marketing_opt_in, marketing_confirmed, marketing_withdrawn
	Lead          string    `json:"lead,omitempty"` // the request it came with
	At            time.Time `json:"at"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	PolicyURL     string    `json:"policy_url,omitempty"`
	IP            string    `json:"ip,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	PageURL       string    `json:"page_url,omitempty"`
	Source        string    `json:"source,omitempty"` // what carried a withdrawal: unsubscribe_link, subject_request …
}

// Subject gathers everything held about person, decrypted, or ENotFound
// when nothing is. A record that cannot be decrypted is an error: an access
// request must not be answered with part of the data.
func (s *Store) Subject(ctx context.Context, person string) (*Subject, error) {
	var profile *redis.MapStringStringCmd
	var leads, consents *redis.StringSliceCmd
	var suppressed *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		profile = p.HGetAll(ctx, personKey(person))
		leads = p.ZRange(ctx, personKey(person)+keyLeads, 0, -1)
		consents = p.LRange(ctx, personKey(person)+keyConsents, 0, -1)
		suppressed = p.HGet(ctx, keySuppressed, person)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("load person", err)
	}
	h := profile.Val()
	if len(h) == 0 && len(leads.Val()) == 0 {
		return nil, notHeld()
	}
	sub := &Subject{Person: person, Profile: SubjectProfile{Lang: h["lang"], EntityType: h["entity_type"],
		Marketing: h["marketing"], MarketingAt: msTime(h["marketing_at"]), ConfirmedAt: msTime(h["confirmed_at"]),
		Blocked: h["blocked"] == "1", Suppressed: suppressed.Val(), UpdatedAt: msTime(h["updated"])}}
	if sub.Profile.Marketing == "" {
		sub.Profile.Marketing = "none"
	}
	if h["products"] != "" {
		sub.Profile.Products = strings.Split(h["products"], ",")
	}
	if h["contact"] != "" {
		c, err := s.openContact(h["contact"], person)
		if err != nil {
			return nil, err
		}
		sub.Profile.Email, sub.Profile.Name = c.Email, c.Name
	}
	for _, id := range leads.Val() {
		l, err := s.Get(ctx, id)
		if ErrorCode(err) == ENotFound {
			continue // purged between the two reads
		} else if err != nil {
			return nil, err
		}
		sub.Leads = append(sub.Leads, l)
		sub.Consents = append(sub.Consents, ConsentRecord{Kind: "processing", Lead: l.ID, At: l.Consent.GivenAt,
			PolicyVersion: l.Consent.PolicyVersion, PolicyURL: l.Consent.PolicyURL, IP: l.Consent.IP,
			UserAgent: l.Consent.UserAgent, PageURL: l.Consent.PageURL})
	}
	for _, e := range consents.Val() {
		lead, ev, err := s.openConsent(e, person)
		if err != nil {
			return nil, err
		}
		sub.Consents = append(sub.Consents, ConsentRecord{Kind: ev.Kind, Lead: lead, At: ev.At,
			PolicyVersion: ev.PolicyVersion, IP: ev.IP, UserAgent: ev.UserAgent, PageURL: ev.PageURL, Source: ev.Source})
	}
	sort.SliceStable(sub.Consents, func(i, j int) bool { return sub.Consents[i].At.Before(sub.Consents[j].At) })
	if sub.Mail, err = s.MailSent(ctx, person); err != nil {
		return nil, err
	}
	return sub, nil
}

// openConsent splits an entry of a consent history ("<lead id|-> <sealed
// event>") and decrypts its event, sealed bound to person.
func (s *Store) openConsent(entry, person string) (lead string, ev consentEvent, err error) {
	lead, sealed, ok := strings.Cut(entry, " ")
	if !ok {
		return "", ev, errors.New("consent history: malformed entry")
	}
	plain, err := s.keys.Open([]byte(sealed), person)
	if err != nil {
		return "", ev, fmt.Errorf("consent history: %w", err)
	}
	if err := json.Unmarshal(plain, &ev); err != nil {
		return "", ev, fmt.Errorf("consent history: %w", err)
	}
	if lead == "-" {
		lead = ""
	}
	return lead, ev, nil
}

// rawLead is a lead as stored, for the privacy operations that must rewrite
// or destroy it: its clear fields, the sealed record opened when it can be,
// and what the disclosure log says of the CRM holding it.
type rawLead struct {
	id     string
	fields map[string]string
	rec    *record // nil when the record cannot be decrypted
	lead   Lead    // the CRM fields only (Route, Transfers), for HeldBy
}

// rawLeads reads the leads ids, skipping none: a lead whose hash is gone
// comes back with no fields.
func (s *Store) rawLeads(ctx context.Context, ids []string) ([]rawLead, error) {
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	logs := make([]*redis.StringSliceCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			hashes[i] = p.HGetAll(ctx, leadKey(id))
			logs[i] = p.LRange(ctx, leadKey(id)+keyTransfers, 0, -1)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("load leads", err)
	}
	out := make([]rawLead, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		rl := rawLead{id: id, fields: h}
		rl.lead.Route.System, rl.lead.Route.Ref = h["route_system"], h["route_ref"]
		for _, t := range logs[i].Val() {
			var tr Transfer
			if json.Unmarshal([]byte(t), &tr) == nil {
				rl.lead.Transfers = append(rl.lead.Transfers, tr)
			}
		}
		if plain, err := s.keys.Open([]byte(h[sealedRecord]), id); err == nil {
			var rec record
			if json.Unmarshal(plain, &rec) == nil {
				rl.rec = &rec
			}
		}
		out[i] = rl
	}
	return out, nil
}

// dedupeKey is the key Accept files a lead under to recognise a repeat, or
// a key nothing uses when the lead's record cannot say.
func (s *Store) dedupeKey(rec *record, entityType string) string {
	if rec == nil {
		return noDedupeKey
	}
	key, err := NormalizeEmail(rec.Email)
	if err != nil {
		return noDedupeKey
	}
	return keyDedupePfx + s.keys.Index("dedupe", key, rec.Phone, entityType)
}

// scanKeys returns the keys matching match for which keep is true.
func (s *Store) scanKeys(ctx context.Context, match string, keep func(string) bool) ([]string, error) {
	var out []string
	iter := s.rdb.Scan(ctx, 0, match, subjectScanCount).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); keep(k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, unavailable("scan keys", err)
	}
	return out, nil
}

// campaignKeys lists every campaign hash, marks hash and notice list: they
// name recipients by person hash.
func (s *Store) campaignKeys(ctx context.Context) ([]string, error) {
	return s.scanKeys(ctx, keyCampaignPfx+"*", func(string) bool { return true })
}

// keysNamingLeads returns the keys matching match whose string value names
// one of ids (the whole value, or its first word): idempotency keys
// ("<lead id> <fingerprint>") and dedupe keys ("<lead id>").
func (s *Store) keysNamingLeads(ctx context.Context, match string, ids []string) ([]string, error) {
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
			return nil, unavailable("read keys", err)
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

// Changes are the corrections of a rectification; nil fields stay as they
// are. Values are already validated: Phone in E.164, Email one address as
// typed (trimmed), Lang kk, ru or en.
type Changes struct {
	Name  *string
	Phone *string
	Email *string
	Lang  *string
}

// Rectification is what a rectification changed.
type Rectification struct {
	Person string   // the person's hash afterwards: new when the email changed
	Moved  bool     // the email changed the person's hash
	Leads  []string // every lead re-sealed
	CRM    []string // the leads a CRM holds a copy of: their correction is to be passed on
}

// rectifyScript writes a rectification at once: every lead re-sealed (and
// re-indexed when the phone changed), and — when the email changed — the
// person moved to their new hash with their consent history re-sealed for
// it, their profile, lead set, campaign marks, index entries, short-lived
// counters and campaign entries. It refuses ('changed') when the person got
// a lead or consent entry after Go read them, and ('conflict') when the new
// hash is someone else's.
//
// KEYS: 1/2 old/new person hash, 3/4 lead sets, 5/6 consent histories, 7
// lg:people, 8 lg:marketing, 9 lg:optins:pending, 10 lg:suppressed, 11
// lg:leads, 12..19 old/new pairs of the short-lived per-person keys, then
// ARGV[9] campaign keys (their marks are the person's mail record), then per lead: lead hash,
// old phone index, new phone index, old dedupe key, new dedupe key.
// ARGV: 1 now, 2/3 old/new person, 4 "1" when moving, 5 leads read, 6
// consent entries read ("-1": not checked), 7 the re-sealed contact ("" to
// keep), 8 the new language ("" to keep), 9 campaign key count, 10 lead
// count, 11 consent entry count, then the re-sealed consent entries, then
// per lead: id, re-sealed record, new phone hash ("" to keep), created (ms).
var rectifyScript = redis.NewScript(`
local now, old, new, moving = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local nc, nl, nk = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local lk0, la0 = 19 + nc, 11 + nk
if redis.call('ZCARD', KEYS[3]) ~= tonumber(ARGV[5]) then return 'changed' end
if ARGV[6] ~= '-1' and redis.call('LLEN', KEYS[5]) ~= tonumber(ARGV[6]) then return 'changed' end
for i = 1, nl do
  if not redis.call('ZSCORE', KEYS[3], ARGV[la0 + (i - 1) * 4 + 1]) then return 'changed' end
end
if moving and (redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1) then return 'conflict' end
for i = 1, nl do
  local a, k = la0 + (i - 1) * 4, lk0 + (i - 1) * 5
  local id, lk = ARGV[a + 1], KEYS[k + 1]
  if redis.call('EXISTS', lk) == 1 then
    redis.call('HSET', lk, 'pii', ARGV[a + 2], 'person', new, 'updated', now)
    if ARGV[8] ~= '' then redis.call('HSET', lk, 'lang', ARGV[8]) end
    if ARGV[a + 3] ~= '' then
      redis.call('HSET', lk, 'phone', ARGV[a + 3])
      redis.call('ZREM', KEYS[k + 2], id)
      redis.call('ZADD', KEYS[k + 3], ARGV[a + 4], id)
    end
    if KEYS[k + 4] ~= KEYS[k + 5] and redis.call('GET', KEYS[k + 4]) == id then
      local ttl = redis.call('PTTL', KEYS[k + 4])
      redis.call('DEL', KEYS[k + 4])
      if ttl > 0 then redis.call('SET', KEYS[k + 5], id, 'PX', ttl, 'NX') end
    end
    redis.call('ZADD', KEYS[11], now, id)
  end
end
if moving then
  for _, i in ipairs({1, 3}) do -- the consent history is written anew, re-sealed for the new hash
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 1]) end
  end
  redis.call('DEL', KEYS[5])
  for i = 1, nk do redis.call('RPUSH', KEYS[6], ARGV[11 + i]) end
  for i = 7, 9 do
    local score = redis.call('ZSCORE', KEYS[i], old)
    if score then
      redis.call('ZREM', KEYS[i], old)
      redis.call('ZADD', KEYS[i], score, new)
    end
  end
  local reason = redis.call('HGET', KEYS[10], old)
  if reason then
    redis.call('HDEL', KEYS[10], old)
    redis.call('HSETNX', KEYS[10], new, reason)
  end
  for i = 12, 19, 2 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      if redis.call('EXISTS', KEYS[i + 1]) == 1 then redis.call('DEL', KEYS[i]) else redis.call('RENAME', KEYS[i], KEYS[i + 1]) end
    end
  end
  for i = 20, 19 + nc do
    local t = redis.call('TYPE', KEYS[i]).ok
    if t == 'zset' then
      local score = redis.call('ZSCORE', KEYS[i], old)
      if score then redis.call('ZREM', KEYS[i], old); redis.call('ZADD', KEYS[i], score, new) end
    elseif t == 'hash' then
      local mark = redis.call('HGET', KEYS[i], old)
      if mark then redis.call('HDEL', KEYS[i], old); redis.call('HSETNX', KEYS[i], new, mark) end
      local retry = redis.call('HGET', KEYS[i], 'retry')
      if retry and string.find(',' .. retry .. ',', ',' .. old .. ',', 1, true) then
        local list = string.gsub(',' .. retry .. ',', ',' .. old .. ',', ',' .. new .. ',')
        redis.call('HSET', KEYS[i], 'retry', string.sub(list, 2, -2))
      end
    end
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'contact', ARGV[7]) end
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'lang', ARGV[8]) end
end
return 'ok'
`)

// perPersonKeys are the short-lived keys named by a person hash: the
// submission rate counter, the 24 h repeat count, and the claims of the
// once-a-day acknowledgement and opt-in request.
func perPersonKeys(person string) []string {
	keys := []string{keyRatePfx + "email:" + person, keySeenPfx + "email:" + person}
	for _, kind := range []string{"ack", "optin"} {
		keys = append(keys, keySentPfx+kind+":"+person)
	}
	return keys
}

// Rectify corrects what is held about person: every lead's sealed record
// and the profile get the changes. A changed email moves the person to the
// hash of the new address (EConflict when another person holds it);
// ENotFound when nothing is held. The caller passes the correction on to
// the CRMs of Rectification.CRM.
func (s *Store) Rectify(ctx context.Context, person string, c Changes) (*Rectification, error) {
	newPerson := person
	if c.Email != nil {
		key, err := NormalizeEmail(*c.Email)
		if err != nil {
			return nil, &Error{Code: EInvalid, Message: "changes.email is not one valid address",
				Fields: FieldErrors{"changes.email": {Key: "email.invalid"}}}
		}
		newPerson = s.keys.Index("email", key)
	}
	for range subjectMaxAttempts {
		r, err := s.rectifyOnce(ctx, person, newPerson, c)
		if !errors.Is(err, errChangedMeanwhile) {
			return r, err
		}
	}
	return nil, &Error{Code: EUnavailable, Message: "the person's records kept changing; try again"}
}

// errChangedMeanwhile is a script refusing a plan made from records that
// changed since they were read.
var errChangedMeanwhile = errors.New("records changed meanwhile")

func (s *Store) rectifyOnce(ctx context.Context, person, newPerson string, c Changes) (*Rectification, error) {
	moving := newPerson != person
	var profile *redis.MapStringStringCmd
	var ids, consents *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		profile = p.HGetAll(ctx, personKey(person))
		ids = p.ZRange(ctx, personKey(person)+keyLeads, 0, -1)
		consents = p.LRange(ctx, personKey(person)+keyConsents, 0, -1)
		return nil
	})
	if err != nil {
		return nil, unavailable("load person", err)
	}
	h := profile.Val()
	if len(h) == 0 && len(ids.Val()) == 0 {
		return nil, notHeld()
	}
	leads, err := s.rawLeads(ctx, ids.Val())
	if err != nil {
		return nil, err
	}
	var campaigns []string
	if moving {
		if campaigns, err = s.campaignKeys(ctx); err != nil {
			return nil, err
		}
	}
	lang := ""
	if c.Lang != nil {
		lang = *c.Lang
	}
	var contact []byte
	if h["contact"] != "" || c.Email != nil {
		var ct Contact
		if h["contact"] != "" {
			if ct, err = s.openContact(h["contact"], person); err != nil {
				return nil, err
			}
		}
		if c.Email != nil {
			ct.Email = *c.Email
		}
		if c.Name != nil {
			ct.Name = *c.Name
		}
		plain, _ := json.Marshal(ct)
		contact = s.keys.Seal(plain, newPerson)
	}
	keys := []string{personKey(person), personKey(newPerson), personKey(person) + keyLeads, personKey(newPerson) + keyLeads,
		personKey(person) + keyConsents, personKey(newPerson) + keyConsents,
		keyPeople, keyMarketing, keyPendingOptins, keySuppressed, keyAll}
	for i, k := range perPersonKeys(person) {
		keys = append(keys, k, perPersonKeys(newPerson)[i])
	}
	keys = append(keys, campaigns...)
	consentCount, resealed := "-1", []any{}
	if moving {
		consentCount = strconv.Itoa(len(consents.Val()))
		for _, e := range consents.Val() {
			prefix, sealed, ok := strings.Cut(e, " ")
			if !ok {
				return nil, errors.New("consent history: malformed entry")
			}
			plain, err := s.keys.Open([]byte(sealed), person)
			if err != nil {
				return nil, fmt.Errorf("consent history: %w", err)
			}
			resealed = append(resealed, prefix+" "+string(s.keys.Seal(plain, newPerson)))
		}
	}
	args := []any{s.now().UnixMilli(), person, newPerson, boolArg(moving), len(ids.Val()), consentCount, contact, lang,
		len(campaigns), len(leads), len(resealed)}
	args = append(args, resealed...)
	out := &Rectification{Person: newPerson, Moved: moving}
	for _, rl := range leads {
		if len(rl.fields) == 0 {
			keys = append(keys, leadKey(rl.id), noIndexKey, noIndexKey, noDedupeKey, noDedupeKey)
			args = append(args, rl.id, "", "", 0)
			continue // purged between the reads: nothing to correct
		}
		if rl.rec == nil {
			return nil, fmt.Errorf("lead %s: its record cannot be decrypted (is LEADGATE_OLD_DATA_KEYS missing one?)", rl.id)
		}
		rec := *rl.rec
		oldDedupe := s.dedupeKey(&rec, rl.fields["entity_type"])
		if c.Name != nil {
			rec.Name = *c.Name
		}
		if c.Email != nil {
			rec.Email = *c.Email
		}
		oldPhone, newPhone, phoneArg := rl.fields["phone"], rl.fields["phone"], ""
		if c.Phone != nil && *c.Phone != rec.Phone {
			rec.Phone = *c.Phone
			newPhone = s.keys.Index("phone", rec.Phone)
			phoneArg = newPhone
		}
		plain, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		keys = append(keys, leadKey(rl.id), keyPhonePfx+oldPhone, keyPhonePfx+newPhone, oldDedupe,
			s.dedupeKey(&rec, rl.fields["entity_type"]))
		args = append(args, rl.id, s.keys.Seal(plain, rl.id), phoneArg, rl.fields["created"])
		out.Leads = append(out.Leads, rl.id)
		if sys, _ := rl.lead.HeldBy(); sys != "" {
			out.CRM = append(out.CRM, rl.id)
		}
	}
	res, err := rectifyScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return nil, unavailable("rectify", err)
	}
	switch res {
	case "changed":
		return nil, errChangedMeanwhile
	case "conflict":
		return nil, &Error{Code: EConflict, Message: "the new email address already belongs to another person; " +
			"export or erase that person's records first",
			Fields: FieldErrors{"changes.email": {Key: "field.invalid"}}}
	}
	return out, nil
}

// stateKeys lists every state index, in the order of States.
func stateKeys() []string {
	keys := make([]string, len(States))
	for i, st := range States {
		keys[i] = stateKey(st)
	}
	return keys
}

// blockScript marks the person blocked and moves each of their leads not
// yet blocked to Blocked, keeping the state it had in blocked_from. Lead
// keys are built here, not passed in: a lead accepted a moment before is
// blocked too, and one accepted after enters Blocked itself (Accept).
//
// KEYS: person hash, their lead set, lg:leads, every state index (States
// order). ARGV: now (ms), the position of Blocked's index in KEYS, the
// person hash (to leave the marketing index).
var blockScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', {}} end
local now, target = ARGV[1], KEYS[tonumber(ARGV[2])]
redis.call('HSET', KEYS[1], 'blocked', '1')
redis.call('ZREM', 'lg:marketing', ARGV[3]) -- no campaign reaches them from now
local moved = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local lk = 'lg:lead:' .. id
  local cur = redis.call('HGET', lk, 'state')
  if cur and cur ~= 'blocked' then
    for i = 4, #KEYS do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZADD', target, now, id)
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HSET', lk, 'state', 'blocked', 'blocked_from', cur, 'updated', now)
    moved[#moved + 1] = id
  end
end
return {'ok', moved}
`)

// Block stops all processing of person's data but its storage: they are
// flagged blocked (campaigns skip them) and every lead moves to Blocked,
// which the router, the welcome mail and the sales notifications leave
// alone. It returns the leads it moved; ENotFound when nothing is held.
func (s *Store) Block(ctx context.Context, person string) ([]string, error) {
	keys := append([]string{personKey(person), personKey(person) + keyLeads, keyAll}, stateKeys()...)
	res, err := blockScript.Run(ctx, s.rdb, keys, s.now().UnixMilli(), 4+slices.Index(States, Blocked), person).Slice()
	if err != nil {
		return nil, unavailable("block person", err)
	}
	if res[0] == "missing" {
		return nil, notHeld()
	}
	return stringsOf(res[1]), nil
}

// unblockScript lifts a block: the flag goes, and each Blocked lead goes
// back to the state the block interrupted (Received when unknown); a lead
// back in Received gets a fresh retry window, since it waited through no
// fault of the CRM.
//
// KEYS: as blockScript. ARGV: now (ms), the person hash, then the state
// names in States order. Active consent puts the person back in the
// marketing index.
var unblockScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', 0, {}} end
local now = ARGV[1]
redis.call('HDEL', KEYS[1], 'blocked')
if redis.call('HGET', KEYS[1], 'marketing') == 'active' then redis.call('ZADD', 'lg:marketing', 0, ARGV[2]) end
local restored, received = 0, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local lk = 'lg:lead:' .. id
  if redis.call('HGET', lk, 'state') == 'blocked' then
    local prev = redis.call('HGET', lk, 'blocked_from') or 'received'
    local idx = nil
    for i = 3, #ARGV do if ARGV[i] == prev then idx = i - 2 end end
    if not idx or prev == 'blocked' then
      prev = 'received'
      for i = 3, #ARGV do if ARGV[i] == prev then idx = i - 2 end end
    end
    for i = 4, #KEYS do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZADD', KEYS[3 + idx], now, id)
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HSET', lk, 'state', prev, 'updated', now)
    redis.call('HDEL', lk, 'blocked_from')
    if prev == 'received' then
      redis.call('HSET', lk, 'route_since', now)
      received[#received + 1] = id
    end
    restored = restored + 1
  end
end
return {'ok', restored, received}
`)

// Unblock lifts person's block: leads go back to the state they had, and
// it returns how many, and those back in Received, which the caller queues
// again. ENotFound when nothing is held.
func (s *Store) Unblock(ctx context.Context, person string) (restored int, received []string, err error) {
	keys := append([]string{personKey(person), personKey(person) + keyLeads, keyAll}, stateKeys()...)
	args := []any{s.now().UnixMilli(), person}
	for _, st := range States {
		args = append(args, string(st))
	}
	res, err := unblockScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return 0, nil, unavailable("unblock person", err)
	}
	if res[0] == "missing" {
		return 0, nil, notHeld()
	}
	n, _ := res[1].(int64)
	return int(n), stringsOf(res[2]), nil
}

func stringsOf(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// CRMCopy names a copy of an erased lead in a CRM, so the CRM can be asked
// to delete it after the lead itself is gone.
type CRMCopy struct {
	Lead   string
	System string
	Ref    string
}

// Erasure is what an erasure destroyed.
type Erasure struct {
	Leads []string  // the leads destroyed
	CRM   []CRMCopy // their copies in CRMs, which the caller asked to delete
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
var eraseScript = redis.NewScript(`
local person, nc, nx, nl, fixed = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZCARD', KEYS[2]) ~= nl then return 'changed' end
local ids = {}
for i = 1, nl do
  local id = ARGV[5 + i]
  if not redis.call('ZSCORE', KEYS[2], id) then return 'changed' end
  ids[id] = true
end
local base = fixed + nc + nx
for i = 1, nl do
  local id, k = ARGV[5 + i], base + (i - 1) * 4
  redis.call('DEL', KEYS[k + 1], KEYS[k + 2])
  redis.call('ZREM', KEYS[k + 3], id)
  if redis.call('GET', KEYS[k + 4]) == id then redis.call('DEL', KEYS[k + 4]) end
  redis.call('ZREM', KEYS[8], id)
  for s = 13, fixed do redis.call('ZREM', KEYS[s], id) end
end
for i = fixed + nc + 1, fixed + nc + nx do
  local v = redis.call('GET', KEYS[i])
  if v then
    local sep = string.find(v, ' ', 1, true)
    if ids[sep and string.sub(v, 1, sep - 1) or v] then redis.call('DEL', KEYS[i]) end
  end
end
local number = redis.call('HGET', KEYS[1], 'n')
for i = fixed + 1, fixed + nc do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t == 'zset' then
    redis.call('ZREM', KEYS[i], person)
  elseif t == 'string' then
    -- A campaign's marks: the person's bit goes with them.
    if number then redis.call('SETBIT', KEYS[i], number, 0) end
  elseif t == 'hash' then
    redis.call('HDEL', KEYS[i], person)
    -- A campaign's walk cursor and retry list name people too. The cursor
    -- only orders the walk: cut to a prefix it walks on from the same place,
    -- and anyone it passes again is skipped by their mark.
    if redis.call('HGET', KEYS[i], 'cursor') == person then
      redis.call('HSET', KEYS[i], 'cursor', string.sub(person, 1, #person - 1))
    end
    local retry = redis.call('HGET', KEYS[i], 'retry')
    if retry and string.find(',' .. retry .. ',', ',' .. person .. ',', 1, true) then
      local list = string.gsub(',' .. retry .. ',', ',' .. person .. ',', ',')
      redis.call('HSET', KEYS[i], 'retry', string.sub(list, 2, -2))
    end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[9], KEYS[10], KEYS[11], KEYS[12])
for i = 4, 6 do redis.call('ZREM', KEYS[i], person) end
redis.call('HSET', KEYS[7], person, 'erased')
return 'ok'
`)

// Erase destroys everything held about person — every lead with its
// disclosure log and index entries, the profile, consent history, campaign marks,
// every index and campaign entry, the short-lived keys naming them or
// their leads — and puts their hash on the suppression list ("erased").
// Before anything is destroyed, beforeDestroy gets the CRM copies of their
// leads, to ask the CRMs to delete them (it may be called again with the
// same copies if the person's records change meanwhile); its error stops
// the erasure. ENotFound when nothing is held.
func (s *Store) Erase(ctx context.Context, person string, beforeDestroy func(context.Context, []CRMCopy) error) (*Erasure, error) {
	for range subjectMaxAttempts {
		e, err := s.eraseOnce(ctx, person, beforeDestroy)
		if !errors.Is(err, errChangedMeanwhile) {
			return e, err
		}
	}
	return nil, &Error{Code: EUnavailable, Message: "the person's records kept changing; try again"}
}

func (s *Store) eraseOnce(ctx context.Context, person string, beforeDestroy func(context.Context, []CRMCopy) error) (*Erasure, error) {
	held, err := s.Held(ctx, person)
	if err != nil {
		return nil, err
	}
	if !held {
		return nil, notHeld()
	}
	ids, err := s.rdb.ZRange(ctx, personKey(person)+keyLeads, 0, -1).Result()
	if err != nil {
		return nil, unavailable("load person", err)
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
	out := &Erasure{Leads: ids}
	unreadable := false
	for _, rl := range leads {
		if sys, ref := rl.lead.HeldBy(); sys != "" {
			out.CRM = append(out.CRM, CRMCopy{Lead: rl.id, System: sys, Ref: ref})
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
		return nil, unavailable("erase person", err)
	}
	if res == "changed" {
		return nil, errChangedMeanwhile
	}
	return out, nil
}

// Subject-request kinds, as recorded and listed.
const (
	SubjectExport   = "export"
	SubjectRectify  = "rectify"
	SubjectBlock    = "block"
	SubjectUnblock  = "unblock"
	SubjectErase    = "erase"
	SubjectWithdraw = "withdraw"
)

// SubjectRequest is the record of one data-subject request: what was asked,
// when it was received and is due, who handled it and how it ended. It
// holds no personal value.
type SubjectRequest struct {
	Reference  string    `json:"reference"`
	Kind       string    `json:"kind"`
	Scope      string    `json:"scope,omitempty"` // a withdrawal's scope: marketing or processing
	ReceivedAt time.Time `json:"received_at"`
	DueAt      time.Time `json:"due_at"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
	Subject    string    `json:"-"` // SubjectKey of whom it concerns
	By         string    `json:"by"`
	Outcome    string    `json:"outcome,omitempty"`
}

// openRequestScript records a new request unless its reference is taken.
var openRequestScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// OpenSubjectRequest records r as received and not yet closed. It reports
// EConflict when the reference is taken, so the caller draws another.
func (s *Store) OpenSubjectRequest(ctx context.Context, r SubjectRequest) error {
	args := []any{r.ReceivedAt.UnixMilli(), "reference", r.Reference, "kind", r.Kind, "received", r.ReceivedAt.UnixMilli(),
		"due", r.DueAt.UnixMilli(), "subject", r.Subject, "by", r.By}
	if r.Scope != "" {
		args = append(args, "scope", r.Scope)
	}
	n, err := openRequestScript.Run(ctx, s.rdb, []string{keySubjectRequests, keySubjectRequestPfx + r.Reference}, args...).Int()
	if err != nil {
		return unavailable("record subject request", err)
	}
	if n == 0 {
		return &Error{Code: EConflict, Message: "subject request reference taken"}
	}
	return nil
}

// SubjectRequest loads the record of request ref, or ENotFound.
func (s *Store) SubjectRequest(ctx context.Context, ref string) (*SubjectRequest, error) {
	h, err := s.rdb.HGetAll(ctx, keySubjectRequestPfx+ref).Result()
	if err != nil {
		return nil, unavailable("load subject request", err)
	}
	if len(h) == 0 {
		return nil, &Error{Code: ENotFound, Message: "no such subject request"}
	}
	r := subjectRequestOf(ref, h)
	return &r, nil
}

func subjectRequestOf(ref string, h map[string]string) SubjectRequest {
	return SubjectRequest{Reference: ref, Kind: h["kind"], Scope: h["scope"], ReceivedAt: msTime(h["received"]),
		DueAt: msTime(h["due"]), ClosedAt: msTime(h["closed"]), Subject: h["subject"], By: h["by"], Outcome: h["outcome"]}
}

// CloseSubjectRequest records how request ref ended, at at.
func (s *Store) CloseSubjectRequest(ctx context.Context, ref, outcome string, at time.Time) error {
	err := s.rdb.HSet(ctx, keySubjectRequestPfx+ref, "closed", at.UnixMilli(), "outcome", outcome).Err()
	if err != nil {
		return unavailable("close subject request", err)
	}
	return nil
}

// NoteSubjectRequest records an outcome of request ref that leaves it open
// (it failed half-way and needs another try).
func (s *Store) NoteSubjectRequest(ctx context.Context, ref, outcome string) error {
	if err := s.rdb.HSet(ctx, keySubjectRequestPfx+ref, "outcome", outcome).Err(); err != nil {
		return unavailable("note subject request", err)
	}
	return nil
}

// SubjectRequests lists up to limit subject requests, newest first,
// continuing after cursor (an earlier page's next; "" for the first).
func (s *Store) SubjectRequests(ctx context.Context, cursor string, limit int) (reqs []SubjectRequest, next string, err error) {
	limit = min(max(limit, 1), subjectMaxListLimit)
	top := "+inf"
	var afterScore int64
	var afterRef string
	if cursor != "" {
		ms, ref, ok := strings.Cut(cursor, ".")
		n, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil || ref == "" {
			return nil, "", &Error{Code: EInvalid, Message: "cursor must be the next_cursor of an earlier page",
				Fields: FieldErrors{"cursor": {Key: "field.invalid"}}}
		}
		top, afterScore, afterRef = ms, n, ref
	}
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, keySubjectRequests, &redis.ZRangeBy{
		Max: top, Min: "-inf", Count: int64(limit + 64)}).Result()
	if err != nil {
		return nil, "", unavailable("list subject requests", err)
	}
	var page []redis.Z
	for _, z := range zs {
		ref := z.Member.(string)
		if cursor != "" && int64(z.Score) == afterScore && ref >= afterRef {
			continue // members of equal score come in descending order
		}
		if len(page) == limit {
			last := page[len(page)-1]
			next = fmt.Sprintf("%d.%s", int64(last.Score), last.Member)
			break
		}
		page = append(page, z)
	}
	cmds := make([]*redis.MapStringStringCmd, len(page))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range page {
			cmds[i] = p.HGetAll(ctx, keySubjectRequestPfx+z.Member.(string))
		}
		return nil
	})
	if err != nil {
		return nil, "", unavailable("list subject requests", err)
	}
	for i, z := range page {
		h := cmds[i].Val()
		if len(h) == 0 {
			continue
		}
		reqs = append(reqs, subjectRequestOf(z.Member.(string), h))
	}
	return reqs, next, nil
}
