package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/seal"
)

// People are who the leads come from: their profile, marketing consent,
// suppression and block, and the once-a-window claims of mail to them.
type People struct{ db }

// Marketing returns a person's marketing-consent state ("" when none).
func (s *People) Marketing(ctx context.Context, person string) (string, error) {
	v, err := s.rdb.HGet(ctx, personKey(person), "marketing").Result()
	if err == redis.Nil {
		return "", nil
	} else if err != nil {
		return "", intake.Unavailable("read consent", err)
	}
	return v, nil
}

func (s *People) sealEvent(kind, person string, p intake.Proof) []byte {
	ev, _ := json.Marshal(consentEvent{Kind: kind, At: p.At.UTC(), IP: p.IP, UserAgent: p.UserAgent, Source: p.Source})
	return s.keys.Seal(ev, person)
}

// confirmScript turns a pending opt-in into consent, with its proof, and
// applies the details of the request whose link was mailed last — to a
// pending opt-in, or as a confirmed subscriber's change. A confirmed link
// is a fresh opt-in: it lifts a suppression (an erased or bounced person
// who asked again and proved the address works). It refuses ('changed')
// when another link was mailed since Go read which one was.
//
// KEYS: 1 the person, 2 their consent history, 3 lg:marketing, 4
// lg:optins:pending, 5 lg:suppressed. ARGV: 1 now (ms), 2 the sealed
// confirmation event, 3 the person hash, 4 the pending lead as read ("" for
// none), 5 its sealed contact ("" to keep the profile), 6 language, 7
// entity type, 8 products, 9 profile digest, 10 the sealed event of a
// subscriber's change.
var confirmScript = script("confirm.lua")

// ConfirmMarketing is what following a confirmation link does: a person's
// pending opt-in becomes active with p as proof, and the details of the
// request the link was mailed for (LinkSent) become their profile — for a
// confirmed subscriber too, which is how their own change of name,
// language or segment arrives. It reports false when there was nothing
// pending (withdrawn since, or never asked); a confirmed subscriber with no
// change waiting is true, unchanged.
func (s *People) ConfirmMarketing(ctx context.Context, person string, p intake.Proof) (bool, error) {
	for range subjectMaxAttempts {
		ok, err := s.confirmOnce(ctx, person, p)
		if !errors.Is(err, errChangedMeanwhile) {
			return ok, err
		}
	}
	return false, &intake.Error{Code: intake.EUnavailable, Message: "the person's confirmation kept changing; try again"}
}

func (s *People) confirmOnce(ctx context.Context, person string, p intake.Proof) (bool, error) {
	f, err := s.rdb.HMGet(ctx, personKey(person), "pending_lead", "pending_until").Result()
	if err != nil {
		return false, intake.Unavailable("confirm consent", err)
	}
	pending, _ := f[0].(string)
	until, _ := f[1].(string)
	args := []any{p.At.UnixMilli(), s.sealEvent("marketing_confirmed", person, p), person, pending, "", "", "", "", "", ""}
	// Past the validity of the link it was mailed with, a request is not
	// applied by any other link of the person's.
	if pending != "" && !msTime(until).Before(s.now()) {
		pr, err := s.proposal(ctx, person, pending)
		if err != nil {
			return false, err
		}
		if pr != nil {
			args[4], args[5], args[6], args[7], args[8] = pr.contact, pr.lang, pr.entityType, pr.products, pr.digest
			args[9] = s.sealEvent("profile_confirmed", person, p)
		}
	}
	res, err := confirmScript.Run(ctx, s.rdb,
		[]string{personKey(person), personKey(person) + keyConsents, keyMarketing, keyPendingOptins, keySuppressed},
		args...).Text()
	if err != nil {
		return false, intake.Unavailable("confirm consent", err)
	}
	switch res {
	case "changed":
		return false, errChangedMeanwhile
	case "none":
		return false, nil
	}
	return true, nil
}

// proposed is the profile a request proposes, ready for confirmScript.
type proposed struct {
	contact                    []byte // sealed for the person
	lang, entityType, products string
	digest                     string
}

// proposal reads the profile lead proposes to person, or nil when the lead
// is gone (purged or undone): then there is nothing to apply.
func (s *People) proposal(ctx context.Context, person, lead string) (*proposed, error) {
	h, err := s.rdb.HGetAll(ctx, leadKey(lead)).Result()
	if err != nil {
		return nil, intake.Unavailable("load lead", err)
	}
	if len(h) == 0 || h["person"] != person {
		return nil, nil
	}
	plain, err := s.keys.Open(h[sealedRecord], lead)
	if err != nil {
		return nil, fmt.Errorf("lead %s: %w", lead, err)
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("lead %s: %w", lead, err)
	}
	return &proposed{contact: s.sealContact(intake.Contact{Email: rec.Email, Name: rec.Name}, person), lang: h["lang"], entityType: h["entity_type"],
		products: h["products"], digest: s.profileDigest(rec.Name, h["lang"], h["entity_type"], splitList(h["products"]))}, nil
}

// profileDigest is a keyed hash of what a profile says besides the
// address: the name mail uses, its language and the segment fields. Equal
// digests tell that a request proposes nothing new, without opening the
// sealed contact (accept.lua compares them).
func (s db) profileDigest(name, lang, entityType string, products []string) string {
	return s.keys.Index("profile", name, lang, entityType, strings.Join(products, ","))
}

// AsksLink reports whether lead's request asked for a confirmation link
// (accept.lua), the first condition of AwaitsConfirmation: most do not, and
// this is one field, read without opening the lead's record.
func (s *People) AsksLink(ctx context.Context, lead string) (bool, error) {
	asks, err := s.rdb.HGet(ctx, leadKey(lead), "asks_link").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, intake.Unavailable("read consent", err)
	}
	return asks == "1", nil
}

// ackQueuedScript marks a lead's acknowledgement queued if the lead exists.
var ackQueuedScript = script("ack_queued.lua")

// AckQueued records on lead that its acknowledgement was queued as a
// lead:ack task (the lead's ack_queued field, read as Lead.AckQueued): from
// then on that task mails it, and no routing run does. ENotFound when the
// lead is gone; nothing is written then.
func (s *People) AckQueued(ctx context.Context, lead string) error {
	n, err := ackQueuedScript.Run(ctx, s.rdb, []string{leadKey(lead)}).Int()
	if err != nil {
		return intake.Unavailable("mark acknowledgement queued", err)
	}
	if n == 0 {
		return &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	}
	return nil
}

// AwaitsConfirmation reports whether the person's state waits for the
// confirmation link of lead l: l asked for one (accept.lua) and the
// person's opt-in is still pending, or they are a confirmed subscriber
// whose profile l's details would change. Consent is checked when the link
// is sent, not when it was queued.
func (s *People) AwaitsConfirmation(ctx context.Context, l *intake.Lead) (bool, error) {
	var asks *redis.StringCmd
	var state *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		asks = p.HGet(ctx, leadKey(l.ID), "asks_link")
		state = p.HMGet(ctx, personKey(l.Person), "marketing", "profile")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, intake.Unavailable("read consent", err)
	}
	if asks.Val() != "1" {
		return false, nil
	}
	marketing, _ := state.Val()[0].(string)
	digest, _ := state.Val()[1].(string)
	switch marketing {
	case intake.MarketingPending:
		return true, nil
	case intake.MarketingActive:
		return digest != s.profileDigest(l.Name, l.Lang, l.EntityType, l.Products), nil
	}
	return false, nil
}

// LinkSent records that the confirmation link was mailed to person for
// lead, valid until expires: following a link of theirs now applies that
// request's details. Only a mailed link names the request, and at most one
// is mailed a day (ClaimSend), so a request someone else makes after the
// person's own cannot ride on the person's link. Nothing is recorded for a
// person no longer held (erased meanwhile).
func (s *People) LinkSent(ctx context.Context, person, lead string, expires time.Time) error {
	key := personKey(person)
	record := func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, key).Result()
		if err != nil || n == 0 {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, "pending_lead", lead, "pending_until", expires.UnixMilli())
			return nil
		})
		return err
	}
	for range subjectMaxAttempts {
		err := s.rdb.Watch(ctx, record, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the person's record changed between the look and the write: look again
		}
		if err != nil {
			return intake.Unavailable("record confirmation link", err)
		}
		return nil
	}
	return &intake.Error{Code: intake.EUnavailable, Message: "the person's record kept changing; try again"}
}

// withdrawScript ends a person's marketing consent, recording the event,
// and suppresses them when given a reason; both at once, so no campaign
// batch sees one without the other.
var withdrawScript = script("withdraw.lua")

// Withdraw ends person's marketing consent at once and records p in their
// consent history. It reports whether there was consent (or a pending
// opt-in) to withdraw; withdrawing twice is harmless.
func (s *People) Withdraw(ctx context.Context, person string, p intake.Proof) (bool, error) {
	return s.withdraw(ctx, person, p, "")
}

// Suppress puts person on the suppression list for reason (a bounce, a
// spam report, an erasure) and withdraws their marketing consent: no mail
// but a breach notice reaches them again until they confirm a fresh
// opt-in.
func (s *People) Suppress(ctx context.Context, person, reason string, p intake.Proof) error {
	_, err := s.withdraw(ctx, person, p, reason)
	return err
}

func (s *People) withdraw(ctx context.Context, person string, p intake.Proof, suppress string) (bool, error) {
	n, err := withdrawScript.Run(ctx, s.rdb,
		[]string{personKey(person), personKey(person) + keyConsents, keyMarketing, keyPendingOptins, keySuppressed},
		person, p.At.UnixMilli(), s.sealEvent("marketing_withdrawn", person, p), suppress).Int()
	if err != nil {
		return false, intake.Unavailable("withdraw consent", err)
	}
	return n == 1, nil
}

// Suppressed returns why person is on the suppression list ("" when not).
func (s *People) Suppressed(ctx context.Context, person string) (string, error) {
	v, err := s.rdb.HGet(ctx, keySuppressed, person).Result()
	if err == redis.Nil {
		return "", nil
	} else if err != nil {
		return "", intake.Unavailable("read suppression list", err)
	}
	return v, nil
}

// PersonOf returns the person hash of an email address as typed, the way
// leads are filed: for lookups by address (subject requests, provider
// events). ok is false when email is not an address.
func (s *People) PersonOf(email string) (person string, ok bool) {
	key, err := form.NormalizeEmail(email)
	if err != nil {
		return "", false
	}
	return s.keys.Index("email", key), true
}

// ClaimSend marks that a message of kind (an acknowledgement, an opt-in
// request) is about to go to person for lead: the first lead in a window
// wins it, and a retry of that lead's send keeps it until SentTo marks it
// done. So the form cannot be used to mail someone more than once a window;
// a crash between the send and SentTo repeats the message (the retry still
// holds the claim), nothing else doubles it.
func (s *People) ClaimSend(ctx context.Context, kind, person, lead string, window time.Duration) (bool, error) {
	key := keySentPfx + kind + ":" + person
	ok, err := s.rdb.SetNX(ctx, key, lead, window).Result()
	if err != nil {
		return false, intake.Unavailable("claim send", err)
	}
	if ok {
		return true, nil
	}
	holder, err := s.rdb.Get(ctx, key).Result()
	if err != nil && err != redis.Nil {
		return false, intake.Unavailable("claim send", err)
	}
	return holder == lead, nil
}

// sentScript closes a send claim and logs the mail's transfer in one call.
var sentScript = script("sent.lua")

// SentTo marks the message ClaimSend claimed as sent — no later task, even
// of the same lead, sends it again within the window — and, when t is not
// nil, appends t to the lead's disclosure log, in one round trip. ENotFound
// when the lead is gone (the claim is closed all the same).
func (s *People) SentTo(ctx context.Context, kind, person, lead string, t *intake.Transfer) error {
	var transfer []byte
	if t != nil {
		transfer, _ = json.Marshal(t)
	}
	n, err := sentScript.Run(ctx, s.rdb, []string{keySentPfx + kind + ":" + person, leadKey(lead), leadKey(lead) + keyTransfers},
		lead+" sent", transfer).Int()
	if err != nil {
		return intake.Unavailable("mark sent", err)
	}
	if n == 0 {
		return &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	}
	return nil
}

// OptinToken is the token of the link that confirms person's opt-in, valid
// until expires.
func (s *People) OptinToken(person string, expires time.Time) string {
	return s.keys.OptinToken(person, expires)
}

// Held reports whether anything is held about person: a profile or a lead.
func (s *People) Held(ctx context.Context, person string) (bool, error) {
	n, err := s.rdb.Exists(ctx, personKey(person), personKey(person)+keyLeads).Result()
	if err != nil {
		return false, intake.Unavailable("look up person", err)
	}
	return n > 0, nil
}

// PeopleByPhone returns the people who gave phone (E.164) with any request
// held, in the order of their first such request.
func (s *People) PeopleByPhone(ctx context.Context, phone string) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, keyPhonePfx+s.keys.Index("phone", phone), 0, -1).Result()
	if err != nil {
		return nil, intake.Unavailable("look up phone", err)
	}
	leads, err := s.hashFields(ctx, ids, leadKey, "person")
	if err != nil {
		return nil, intake.Unavailable("look up phone", err)
	}
	var people []string
	for _, v := range leads {
		if p := v[0]; p != "" && !slices.Contains(people, p) {
			people = append(people, p)
		}
	}
	return people, nil
}

// blockScript marks the person blocked and moves each of their leads not
// yet blocked to Blocked, keeping the state it had in blocked_from. Lead
// keys are built here, not passed in: a lead accepted a moment before is
// blocked too, and one accepted after enters Blocked itself (Accept).
//
// KEYS: person hash, their lead set, lg:leads, every state index (States
// order). ARGV: now (ms), the position of Blocked's index in KEYS, the
// person hash (to leave the marketing index).
var blockScript = script("block.lua")

// Block stops all processing of person's data but its storage: they are
// flagged blocked (campaigns skip them) and every lead moves to Blocked,
// which the router, the welcome mail and the sales notifications leave
// alone. It returns the leads it moved; ENotFound when nothing is held.
func (s *People) Block(ctx context.Context, person string) ([]string, error) {
	keys := append([]string{personKey(person), personKey(person) + keyLeads, keyAll}, stateKeys()...)
	res, err := blockScript.Run(ctx, s.rdb, keys, s.now().UnixMilli(), 4+slices.Index(intake.States, intake.Blocked), person).Slice()
	if err != nil {
		return nil, intake.Unavailable("block person", err)
	}
	if res[0] == "missing" {
		return nil, intake.NotHeld()
	}
	return stringsOf(res[1]), nil
}

// unblockScript lifts a block: the flag goes, and each Blocked lead goes
// back to the state the block interrupted (Received when unknown); a lead
// back in Received gets a fresh retry window, since it waited through no
// fault of the CRM. A lead whose opt-in request was queued before the
// block has it queued again (the task found the lead blocked).
//
// KEYS: as blockScript, then the admission stream. ARGV: now (ms), the
// person hash, then the state names in States order. Active consent puts
// the person back in the marketing index.
var unblockScript = script("unblock.lua")

// Unblock lifts person's block: leads go back to the state they had, and
// it returns how many, and those back in Received, which the caller queues
// again. ENotFound when nothing is held.
func (s *People) Unblock(ctx context.Context, person string) (restored int, received []string, err error) {
	keys := append(append([]string{personKey(person), personKey(person) + keyLeads, keyAll}, stateKeys()...), keyAdmission)
	args := []any{s.now().UnixMilli(), person}
	for _, st := range intake.States {
		args = append(args, string(st))
	}
	res, err := unblockScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return 0, nil, intake.Unavailable("unblock person", err)
	}
	if res[0] == "missing" {
		return 0, nil, intake.NotHeld()
	}
	n, _ := res[1].(int64)
	return int(n), stringsOf(res[2]), nil
}

// eventSeenTTL is how long an applied provider event is remembered. It must
// outlast every post that can still carry the event: SendGrid retries a
// failed post for up to 24 hours after the event, and the webhook takes a
// post until sendgrid.EventMaxAge (24 h 30 min) after it was signed, so a
// retry signed afresh at the end of SendGrid's window can be replayed until
// about 49 hours after the event. A week covers that with room to spare and
// still keeps the set small (intake/httpapi tests the relation).
const eventSeenTTL = 7 * 24 * time.Hour

func eventSeenKey(keys *seal.Keys, id string) string {
	return keyEventSeenPfx + keys.Index("sg-event", id)
}

// EventSeen reports whether the mail provider's event id was applied
// already (RememberEvent).
func (s *People) EventSeen(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, eventSeenKey(s.keys, id)).Result()
	if err != nil {
		return false, intake.Unavailable("look up SendGrid event", err)
	}
	return n > 0, nil
}

// RememberEvent records that the mail provider's event id was applied, so
// a retried post does not apply it again.
func (s *People) RememberEvent(ctx context.Context, id string) error {
	if err := s.rdb.SetNX(ctx, eventSeenKey(s.keys, id), "1", eventSeenTTL).Err(); err != nil {
		return intake.Unavailable("remember SendGrid event", err)
	}
	return nil
}

// PhoneOf returns the lookup hash of a phone number in E.164, the way
// leads are filed under it.
func (s *People) PhoneOf(phone string) string {
	return s.keys.Index("phone", phone)
}

// --- formux (issue 12): used links say "already done" ---

// MarketingDone reports what a person's links would change: their
// marketing-consent state, and whether a confirmation is waiting (an
// opt-in, or a subscriber's change of details, whose emailed link has not
// been followed). A confirmation link of an active subscriber with nothing
// waiting, or an unsubscribe link of someone withdrawn, changes nothing,
// and its page can say so at once.
func (s *People) MarketingDone(ctx context.Context, person string) (state string, waiting bool, err error) {
	f, err := s.rdb.HMGet(ctx, personKey(person), "marketing", "pending_lead").Result()
	if err != nil {
		return "", false, intake.Unavailable("read consent", err)
	}
	state, _ = f[0].(string)
	lead, _ := f[1].(string)
	return state, lead != "", nil
}

// --- end formux ---
