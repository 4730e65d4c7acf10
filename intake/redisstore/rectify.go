package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
)

// rawLead is a lead as stored, for the privacy operations that must rewrite
// or destroy it: its clear fields, the sealed record opened when it can be,
// and what the disclosure log says of the CRM holding it.
type rawLead struct {
	id     string
	fields map[string]string
	rec    *record     // nil when the record cannot be decrypted
	lead   intake.Lead // the CRM fields only (Route, Transfers), for HeldBy
}

// rawLeads reads the leads ids, skipping none: a lead whose hash is gone
// comes back with no fields.
func (s *Subjects) rawLeads(ctx context.Context, ids []string) ([]rawLead, error) {
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
		return nil, intake.Unavailable("load leads", err)
	}
	out := make([]rawLead, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		rl := rawLead{id: id, fields: h}
		rl.lead.Route.System, rl.lead.Route.Ref = h["route_system"], h["route_ref"]
		for _, t := range logs[i].Val() {
			var tr intake.Transfer
			if json.Unmarshal([]byte(t), &tr) == nil {
				rl.lead.Transfers = append(rl.lead.Transfers, tr)
			}
		}
		if plain, err := s.keys.Open(h[sealedRecord], id); err == nil {
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
func (s *Subjects) dedupeKey(rec *record, entityType string) string {
	if rec == nil {
		return noDedupeKey
	}
	key, err := form.NormalizeEmail(rec.Email)
	if err != nil {
		return noDedupeKey
	}
	return keyDedupePfx + s.keys.Index("dedupe", key, rec.Phone, entityType)
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
// count, 11 consent entry count, 12 the profile's new digest ("" to keep),
// then the re-sealed consent entries, then per lead: id, re-sealed record,
// new phone hash ("" to keep), created (ms).
var rectifyScript = script("rectify.lua")

// Rectify corrects what is held about person: every lead's sealed record
// and the profile get the changes. It is the one way besides the person's
// own confirmation link (People.ConfirmMarketing) that a profile changes:
// a privacy officer acting on the person's request. A changed email moves the person to the
// hash of the new address (EConflict when another person holds it);
// ENotFound when nothing is held. The caller passes the correction on to
// the CRMs of Rectification.CRM.
func (s *Subjects) Rectify(ctx context.Context, person string, c intake.Changes) (*intake.Rectification, error) {
	newPerson := person
	if c.Email != nil {
		key, err := form.NormalizeEmail(*c.Email)
		if err != nil {
			return nil, &intake.Error{Code: intake.EInvalid, Message: "changes.email is not one valid address",
				Fields: intake.FieldErrors{"changes.email": {Key: "email.invalid"}}}
		}
		newPerson = s.keys.Index("email", key)
	}
	for range subjectMaxAttempts {
		r, err := s.rectifyOnce(ctx, person, newPerson, c)
		if !errors.Is(err, errChangedMeanwhile) {
			return r, err
		}
	}
	return nil, &intake.Error{Code: intake.EUnavailable, Message: "the person's records kept changing; try again"}
}

// errChangedMeanwhile is a script refusing a plan made from records that
// changed since they were read.
var errChangedMeanwhile = errors.New("records changed meanwhile")

func (s *Subjects) rectifyOnce(ctx context.Context, person, newPerson string, c intake.Changes) (*intake.Rectification, error) {
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
		return nil, intake.Unavailable("load person", err)
	}
	h := profile.Val()
	if len(h) == 0 && len(ids.Val()) == 0 {
		return nil, intake.NotHeld()
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
	var ct intake.Contact
	if h["contact"] != "" || c.Email != nil {
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
		contact = s.sealContact(ct, newPerson)
	}
	// The profile's digest follows the correction, so a later request with
	// the corrected details proposes nothing new, and one with the old
	// details asks for a link again.
	digest := ""
	if len(h) > 0 {
		if c.Name != nil {
			ct.Name = *c.Name
		}
		profileLang := h["lang"]
		if lang != "" {
			profileLang = lang
		}
		digest = s.profileDigest(ct.Name, profileLang, h["entity_type"], splitList(h["products"]))
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
			plain, err := s.keys.Open(sealed, person)
			if err != nil {
				return nil, fmt.Errorf("consent history: %w", err)
			}
			resealed = append(resealed, prefix+" "+string(s.keys.Seal(plain, newPerson)))
		}
	}
	args := []any{s.now().UnixMilli(), person, newPerson, boolArg(moving), len(ids.Val()), consentCount, contact, lang,
		len(campaigns), len(leads), len(resealed), digest}
	args = append(args, resealed...)
	out := &intake.Rectification{Person: newPerson, Moved: moving}
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
		return nil, intake.Unavailable("rectify", err)
	}
	switch res {
	case "changed":
		return nil, errChangedMeanwhile
	case "conflict":
		return nil, &intake.Error{Code: intake.EConflict, Message: "the new email address already belongs to another person; " +
			"export or erase that person's records first",
			Fields: intake.FieldErrors{"changes.email": {Key: "field.invalid"}}}
	}
	return out, nil
}
