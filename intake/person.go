package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys of people, as opposed to their requests. A person is the keyed
// hash of their normalised email (Lead.Person); lg:person:{hash} holds their
// profile (newest request's contact, sealed, language, entity type,
// products), their number n (their bit in campaign marks), their
// marketing-consent state and the blocked flag.
const (
	keyPeople        = "lg:people"         // zset person → last submission (ms): everyone held, for notices and the purge
	keyMarketing     = "lg:marketing"      // zset person → 0: who may get product news now — active consent, not blocked, suppressed or erased; campaigns walk it in lexical order
	keyPendingOptins = "lg:optins:pending" // zset person → opt-in time (ms): unconfirmed, dropped after UNCONFIRMED_OPTIN_TTL
	keyPeopleSeq     = "lg:people:seq"     // counter: the last person number given (a person's bit in campaign marks)
	keySuppressed    = "lg:suppressed"     // hash person → reason (erased, bounce, dropped, spamreport): never mailed again
)

func personKey(person string) string { return keyPersonPfx + person }

// A person's marketing-consent states (the person hash's "marketing" field;
// empty when they never opted in).
const (
	MarketingPending   = "pending"   // opted in on the form; the emailed link not yet followed
	MarketingActive    = "active"    // confirmed: product news may be sent
	MarketingWithdrawn = "withdrawn" // withdrawn, unsubscribed or suppressed
)

// Contact is the sealed part of a person's profile: where their mail goes.
// It is sealed bound to the person hash.
type Contact struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// openContact decrypts a person's sealed contact.
func (s *Store) openContact(sealed, person string) (Contact, error) {
	var c Contact
	plain, err := s.keys.Open([]byte(sealed), person)
	if err != nil {
		return c, fmt.Errorf("person contact: %w", err)
	}
	err = json.Unmarshal(plain, &c)
	return c, err
}

// MailRecord is a campaign or notice email sent to a person, for the
// subject export (see Store.MailSent). Acknowledgements and opt-in
// requests are in their lead's disclosure log.
type MailRecord struct {
	Kind string    `json:"kind"` // "campaign" or "breach_notice"
	Ref  string    `json:"ref"`  // the campaign or notice id
	At   time.Time `json:"at"`   // when its sending began
}

// Marketing returns a person's marketing-consent state ("" when none).
func (s *Store) Marketing(ctx context.Context, person string) (string, error) {
	v, err := s.rdb.HGet(ctx, personKey(person), "marketing").Result()
	if err == redis.Nil {
		return "", nil
	} else if err != nil {
		return "", unavailable("read consent", err)
	}
	return v, nil
}

// Proof is what is recorded with a change of consent made by the person:
// when, from where, and through what (a link, a provider's report, a
// privacy request).
type Proof struct {
	At        time.Time
	IP        string
	UserAgent string
	Source    string // "unsubscribe_link", "sendgrid:spamreport", "subject_request" …; empty for a confirmation link
}

func (s *Store) sealEvent(kind, person string, p Proof) []byte {
	ev, _ := json.Marshal(consentEvent{Kind: kind, At: p.At.UTC(), IP: p.IP, UserAgent: p.UserAgent, Source: p.Source})
	return s.keys.Seal(ev, person)
}

// confirmScript turns a pending opt-in into consent, with its proof. A
// confirmed link is a fresh opt-in: it lifts a suppression (an erased or
// bounced person who asked again and proved the address works).
var confirmScript = redis.NewScript(`
local m = redis.call('HGET', KEYS[1], 'marketing')
if m == 'active' then return 'already' end
if m ~= 'pending' then return 'none' end
redis.call('HSET', KEYS[1], 'marketing', 'active', 'marketing_at', ARGV[1], 'confirmed_at', ARGV[1])
redis.call('RPUSH', KEYS[2], '- ' .. ARGV[2])
-- A blocked person's consent counts from now, but campaigns reach them
-- only once the block is lifted (unblock puts them in the index).
if redis.call('HGET', KEYS[1], 'blocked') ~= '1' then redis.call('ZADD', KEYS[3], 0, ARGV[3]) end
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[5], ARGV[3])
return 'confirmed'
`)

// ConfirmMarketing makes a person's pending opt-in active and records p as
// proof. It reports false when there was nothing pending (withdrawn since,
// or never asked); an opt-in already confirmed is true, unchanged.
func (s *Store) ConfirmMarketing(ctx context.Context, person string, p Proof) (bool, error) {
	res, err := confirmScript.Run(ctx, s.rdb,
		[]string{personKey(person), personKey(person) + keyConsents, keyMarketing, keyPendingOptins, keySuppressed},
		p.At.UnixMilli(), s.sealEvent("marketing_confirmed", person, p), person).Text()
	if err != nil {
		return false, unavailable("confirm consent", err)
	}
	return res != "none", nil
}

// withdrawScript ends a person's marketing consent, recording the event,
// and suppresses them when given a reason; both at once, so no campaign
// batch sees one without the other.
var withdrawScript = redis.NewScript(`
if ARGV[4] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[4]) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local m = redis.call('HGET', KEYS[1], 'marketing')
if m ~= 'active' and m ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'marketing', 'withdrawn', 'marketing_at', ARGV[2])
redis.call('RPUSH', KEYS[2], '- ' .. ARGV[3])
return 1
`)

// Withdraw ends person's marketing consent at once and records p in their
// consent history. It reports whether there was consent (or a pending
// opt-in) to withdraw; withdrawing twice is harmless.
func (s *Store) Withdraw(ctx context.Context, person string, p Proof) (bool, error) {
	return s.withdraw(ctx, person, p, "")
}

// Suppress puts person on the suppression list for reason (a bounce, a
// spam report, an erasure) and withdraws their marketing consent: no mail
// but a breach notice reaches them again until they confirm a fresh
// opt-in.
func (s *Store) Suppress(ctx context.Context, person, reason string, p Proof) error {
	_, err := s.withdraw(ctx, person, p, reason)
	return err
}

func (s *Store) withdraw(ctx context.Context, person string, p Proof, suppress string) (bool, error) {
	n, err := withdrawScript.Run(ctx, s.rdb,
		[]string{personKey(person), personKey(person) + keyConsents, keyMarketing, keyPendingOptins, keySuppressed},
		person, p.At.UnixMilli(), s.sealEvent("marketing_withdrawn", person, p), suppress).Int()
	if err != nil {
		return false, unavailable("withdraw consent", err)
	}
	return n == 1, nil
}

// Suppressed returns why person is on the suppression list ("" when not).
func (s *Store) Suppressed(ctx context.Context, person string) (string, error) {
	v, err := s.rdb.HGet(ctx, keySuppressed, person).Result()
	if err == redis.Nil {
		return "", nil
	} else if err != nil {
		return "", unavailable("read suppression list", err)
	}
	return v, nil
}

// PersonOf returns the person hash of an email address as typed, the way
// leads are filed: for lookups by address (subject requests, provider
// events). ok is false when email is not an address.
func (s *Store) PersonOf(email string) (person string, ok bool) {
	key, err := NormalizeEmail(email)
	if err != nil {
		return "", false
	}
	return s.keys.Index("email", key), true
}
