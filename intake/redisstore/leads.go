package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/redisstore/batch"
)

// Leads are connection requests: accepted, routed, held, failed or blocked.
type Leads struct {
	db
	accept *batch.Script // acceptScript, its calls of one moment in one pipeline
}

const (
	replayWindow = 24 * time.Hour // duplicates and Idempotency-Keys are remembered this long
	seenWindow   = 24 * time.Hour // the window of the repeat counts in Observed
	sealedRecord = "pii"          // the lead hash field holding the sealed personal record (accept.lua spells it too)
)

// record is the sealed part of a lead: everything personal.
type record struct {
	Name    string          `json:"name,omitempty"`
	Phone   string          `json:"phone"`
	Email   string          `json:"email"`
	TaxID   string          `json:"tax_id,omitempty"`
	Message string          `json:"message,omitempty"`
	Consent intake.Consent  `json:"consent"`
	Meta    intake.Metadata `json:"meta"`
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

// acceptScript does every check and write of one submission in one round
// trip, atomically: idempotency replay, rate limits, duplicate, then the lead
// and its indexes, the profile of a person new to us, the person's
// marketing opt-in, and whether the request asks for a confirmation link
// (the lead's asks_link field; see People.AwaitsConfirmation).
//
// It also appends the work it leaves for the workers to the admission
// stream — the lead's routing, or a repeat's opt-in request — so that one
// call both stores and queues (jobs/admit.go moves it into asynq).
//
// KEYS: 1 idempotency, 2 dedupe, 3/4 the per-client and per-mailbox rate
// counters, 5 the lead, 6 lg:leads, 7 the received index, 8 the person, 9
// their leads, 10 the phone index, 11 their consent history, 12..14 the
// 24 h repeat counters (IP, person, BIN/IIN: a duplicate counts on them
// here, a new lead names them for repeatsScript), 15 lg:people, 16 lg:marketing,
// 17 lg:optins:pending, 18 lg:suppressed, 19 lg:people:seq, 20 the lead
// id's void mark (Admitted), 21 the admission stream, 22 the blocked index.
// ARGV: 1 lead id, 2 now (ms), 3 "1" with an Idempotency-Key, 4 the body's
// fingerprint (with a key), 5 the replay window, 6..9 the two limits (count, window),
// 10 "1" when the marketing box is ticked, 11 the sealed opt-in event, 12
// the repeat window, 13 "1" with a BIN/IIN, 14 the opt-in's state, 15 the
// person hash, 16 the sealed contact, 17 language, 18 entity type, 19
// products, 20 the profile digest (profileDigest), 21 the observed request
// (JSON), 22 the phone hash, 23 the sealed record (the sealedRecord field),
// 24 the source label, if any. The script names the lead's fields itself:
// the names are constants, and arguments cost Redis time on every call.
var acceptScript = script("accept.lua")

// Accept stores a submission as a new lead in state Received, or recognises
// it as a duplicate or replay, and queues what the workers are to do with
// it, in one step. An error whose chain holds intake.ErrOutcomeUnknown (the
// call may have run, its answer was lost) is settled with Admitted(a.ID).
func (s *Leads) Accept(ctx context.Context, a intake.Application) (*intake.Admission, error) {
	sub, now, lead := a.Submission, s.now(), a.ID
	if lead == "" {
		id, err := uuid.NewV7() // time-ordered: newest-first listings sort by id
		if err != nil {
			return nil, err
		}
		lead = id.String()
	}
	person := s.keys.Index("email", sub.EmailKey)
	phone := s.keys.Index("phone", sub.Phone)
	rec, err := json.Marshal(record{Name: sub.Name, Phone: sub.Phone, Email: sub.Email, TaxID: sub.TaxID,
		Message: sub.Message, Consent: a.Consent, Meta: a.Meta})
	if err != nil {
		return nil, err
	}
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
	optIn := intake.MarketingPending // confirmed by the emailed link (DOUBLE_OPT_IN)
	if !a.DoubleOptIn {
		optIn = intake.MarketingActive
	}
	idemKey, hasIdem, fingerprint := keyIdemPfx+"-", "0", ""
	if a.IdempotencyKey != "" { // the body's fingerprint only matters beside a key
		idemKey, hasIdem = keyIdemPfx+s.keys.Index("idempotency", a.IdempotencyKey), "1"
		fingerprint = s.keys.Index("fingerprint", form.Fingerprint(sub))
	}
	ms := now.UnixMilli()
	keys := []string{
		idemKey,
		keyDedupePfx + s.keys.Index("dedupe", sub.EmailKey, sub.Phone, sub.EntityType),
		keyRatePfx + "ip:" + s.keys.Index("ip", form.ClientBucket(a.Meta.IP)),
		keyRatePfx + "mailbox:" + s.keys.Index("mailbox", form.Mailbox(sub.EmailKey)),
		leadKey(lead), keyAll, stateKey(intake.Received),
		keyPersonPfx + person, keyPersonPfx + person + keyLeads, keyPhonePfx + phone, keyPersonPfx + person + keyConsents,
		keySeenPfx + "ip:" + s.keys.Index("ip", a.Meta.IP), keySeenPfx + "email:" + person, seenTaxID,
		keyPeople, keyMarketing, keyPendingOptins, keySuppressed, keyPeopleSeq, keyVoidPfx + lead, keyAdmission,
		stateKey(intake.Blocked),
	}
	args := []any{lead, ms, hasIdem, fingerprint, replayWindow.Milliseconds(),
		a.PerIP.N, a.PerIP.Per.Milliseconds(), a.PerEmail.N, a.PerEmail.Per.Milliseconds(),
		boolArg(sub.ConsentMarketing), event, seenWindow.Milliseconds(), hasTaxID, optIn,
		person, s.sealContact(intake.Contact{Email: sub.Email, Name: sub.Name}, person), sub.Lang, sub.EntityType, strings.Join(sub.Products, ","),
		s.profileDigest(sub.Name, sub.Lang, sub.EntityType, sub.Products), observed, phone, s.keys.Seal(rec, lead)}
	if label, ok := intake.SourceLabel(a.Meta.UTMSource); ok { // in clear for filters; the tag itself stays sealed
		args = append(args, label)
	}
	res, err := s.accept.Run(ctx, keys, args...).StringSlice()
	if errors.Is(err, batch.ErrNotSent) { // the call never ran: nothing is stored
		return nil, intake.Unavailable("store lead", err)
	}
	if err != nil {
		// Even an error Redis answered leaves the outcome open: the client
		// re-sends a call whose connection dropped, so the error may be the
		// answer to a second try (LOADING after a restart) of a first that
		// ran.
		return nil, intake.Unavailable("store lead", fmt.Errorf("%w: %w", intake.ErrOutcomeUnknown, err))
	}
	switch res[0] {
	case "void": // only when the caller reused an id it had given up on
		return nil, intake.Unavailable("store lead", fmt.Errorf("lead id %s was given up", lead))
	case "idem_mismatch":
		return nil, &intake.Error{Code: intake.EInvalid, Message: "Idempotency-Key reused with a different body",
			Fields: intake.FieldErrors{"idempotency_key": {Key: "idempotency.reused"}}}
	case "rate":
		left, _ := strconv.ParseInt(res[1], 10, 64)
		return nil, &intake.Error{Code: intake.ERateLimited, Message: "too many submissions", RetryAfter: time.Duration(left) * time.Millisecond}
	case "duplicate":
		return &intake.Admission{ID: res[1], Duplicate: true, State: intake.State(res[2])}, nil
	}
	return &intake.Admission{ID: lead, State: intake.State(res[2])}, nil
}

// voidTTL is how long Admitted keeps a lead id refused: far longer than an
// accept call can wait in a dead connection's buffer for Redis to read it.
const voidTTL = time.Hour

// admittedScript answers whether the accept call of a lead id stored it,
// and when it did not, marks the id void so that the call, should it still
// arrive, stores nothing: the answer is final either way.
var admittedScript = script("admitted.lua")

// Admitted settles an Accept whose answer was lost: the admission of lead
// id when the call stored it, nil when it did not and now never will.
func (s *Leads) Admitted(ctx context.Context, id string) (*intake.Admission, error) {
	st, err := admittedScript.Run(ctx, s.rdb, []string{leadKey(id), keyVoidPfx + id}, voidTTL.Milliseconds()).Text()
	switch {
	case err == redis.Nil:
		return nil, nil
	case err != nil:
		return nil, intake.Unavailable("look for lead", err)
	}
	return &intake.Admission{ID: id, State: intake.State(st)}, nil
}

// unadmitScript deletes the admission entries of destroyed leads: an entry
// the workers have not yet queued must not outlive its lead.
var unadmitScript = script("unadmit.lua")

// unadmit deletes the admission entries of leads ids, after an erasure or a
// purge destroyed them.
func (s db) unadmit(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return unadmitScript.Run(ctx, s.rdb, []string{keyAdmission}, args...).Err()
}

// Get loads a lead with its personal fields decrypted, or ENotFound.
func (s *Leads) Get(ctx context.Context, id string) (*intake.Lead, error) {
	return s.get(ctx, id, false)
}

// repeatsScript counts a new lead's 24 h repeats (IP, person, BIN/IIN) for
// the risk score, once. accept.lua leaves it to the router's first read:
// three counters fewer in the call the web waits for.
//
// KEYS: 1 the lead. ARGV: 1 the repeat window (ms).
var repeatsScript = script("repeats.lua")

// GetForRouting is Get for the router: the lead's repeat counts are taken
// first, in the same round trip (repeatsScript), so Observed holds them.
func (s *Leads) GetForRouting(ctx context.Context, id string) (*intake.Lead, error) {
	return s.get(ctx, id, true)
}

func (s *Leads) get(ctx context.Context, id string, countRepeats bool) (*intake.Lead, error) {
	var counted *redis.Cmd
	var fields *redis.MapStringStringCmd
	var transfers *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if countRepeats {
			counted = repeatsScript.EvalSha(ctx, p, []string{leadKey(id)}, seenWindow.Milliseconds())
		}
		fields = p.HGetAll(ctx, leadKey(id))
		transfers = p.LRange(ctx, leadKey(id)+keyTransfers, 0, -1)
		return nil
	})
	if counted != nil && redis.HasErrorPrefix(counted.Err(), "NOSCRIPT") {
		// A restarted or flushed Redis: the script did not run. Loaded, it
		// runs on its own, then the lead is read as Get reads it.
		if err := repeatsScript.Run(ctx, s.rdb, []string{leadKey(id)}, seenWindow.Milliseconds()).Err(); err != nil {
			return nil, intake.Unavailable("count repeats", err)
		}
		return s.get(ctx, id, false)
	}
	if err != nil {
		return nil, intake.Unavailable("load lead", err)
	}
	h := fields.Val()
	if len(h) == 0 {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	}
	plain, err := s.keys.Open(h[sealedRecord], id)
	if err != nil {
		return nil, fmt.Errorf("lead %s: %w", id, err)
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("lead %s: %w", id, err)
	}
	l := &intake.Lead{ID: id, State: intake.State(h["state"]), EntityType: h["entity_type"], Lang: h["lang"], Person: h["person"],
		Name: rec.Name, Phone: rec.Phone, Email: rec.Email, TaxID: rec.TaxID, Message: rec.Message,
		Consent: rec.Consent, Meta: rec.Meta, CreatedAt: msTime(h["created"]), UpdatedAt: msTime(h["updated"]),
		Route: intake.Route{Since: msTime(h["route_since"]), System: h["route_system"], Ref: h["route_ref"], URL: h["route_url"], At: msTime(h["route_at"]), Error: h["route_error"]}}
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
	l.AckQueued = h["ack_queued"] == "1"
	if h["assign_team"] != "" {
		l.Assignment = &intake.Assignment{Rule: h["assign_rule"], Team: h["assign_team"], Owner: h["assign_owner"],
			CRMUserID: h["assign_crm_user"]}
	}
	for _, t := range transfers.Val() {
		var tr intake.Transfer
		if json.Unmarshal([]byte(t), &tr) == nil {
			l.Transfers = append(l.Transfers, tr)
		}
	}
	return l, nil
}

// transitionScript moves a lead from one state to another atomically with
// its state indexes, bookkeeping fields, disclosure log and, when asked,
// its opt-in request's admission entry — only if it is still in the
// expected state, so a late retry cannot undo a block.
var transitionScript = script("transition.lua")

// Transition applies t and returns the lead's state afterwards: t.To, or the
// state it was found in when that was not t.From (then only t.Transfer is
// recorded). It returns ENotFound when the lead is gone (erased or purged).
func (s *Leads) Transition(ctx context.Context, id string, t intake.Transition) (intake.State, error) {
	idx := slices.Index(intake.States, t.To)
	if idx < 0 {
		return "", fmt.Errorf("unknown state %q", t.To)
	}
	keys := []string{leadKey(id), keyAll, keyAdmission}
	for _, st := range intake.States {
		keys = append(keys, stateKey(st))
	}
	var transfer []byte
	if t.Transfer != nil {
		transfer, _ = json.Marshal(t.Transfer)
	}
	args := []any{id, string(t.To), idx + 1, s.now().UnixMilli(), string(t.From), transfer, boolArg(t.QueueOptin),
		"route_system", t.Route.System, "route_ref", t.Route.Ref, "route_url", t.Route.URL, "route_error", t.Route.Error}
	if !t.Route.At.IsZero() {
		args = append(args, "route_at", t.Route.At.UnixMilli())
	}
	if t.Risk != nil {
		args = append(args, "risk_score", t.Risk.Score, "risk_signals", strings.Join(t.Risk.Signals, ","))
	}
	res, err := transitionScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return "", intake.Unavailable("change lead state", err)
	}
	if res[0] == "missing" {
		return "", &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	}
	return intake.State(res[1]), nil
}

// ReceivedBefore lists up to n leads still Received since before t, oldest
// first, skipping the first offset: leads a crash may have left unqueued,
// for the sweeper.
func (s *Leads) ReceivedBefore(ctx context.Context, t time.Time, offset, n int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, stateKey(intake.Received), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10), Offset: int64(offset), Count: int64(n)}).Result()
	if err != nil {
		return nil, intake.Unavailable("list received leads", err)
	}
	return ids, nil
}

// redriveScript sends a failed lead to sales again, or releases a lead held
// for review: back to received, with a fresh retry window.
var redriveScript = script("redrive.lua")

// Redrive moves a Failed or Review lead back to Received and returns the
// state it had; the caller requeues it. Other states are EConflict.
func (s *Leads) Redrive(ctx context.Context, id string) (intake.State, error) {
	keys := []string{leadKey(id), keyAll, stateKey(intake.Received)}
	for _, st := range intake.States {
		if st != intake.Received {
			keys = append(keys, stateKey(st))
		}
	}
	res, err := redriveScript.Run(ctx, s.rdb, keys, id, s.now().UnixMilli()).StringSlice()
	if err != nil {
		return "", intake.Unavailable("redrive lead", err)
	}
	switch res[0] {
	case "missing":
		return "", &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	case "conflict":
		return intake.State(res[1]), &intake.Error{Code: intake.EConflict, Message: "only failed or review leads can be redriven; this one is " + res[1]}
	}
	return intake.State(res[1]), nil
}

// logTransferScript appends to a lead's disclosure log if the lead exists.
var logTransferScript = script("log_transfer.lua")

// LogTransfer records that the lead's data left leadgate outside a state
// change (a sales notification, say). ENotFound when the lead is gone.
func (s *Leads) LogTransfer(ctx context.Context, id string, t intake.Transfer) error {
	b, _ := json.Marshal(t)
	n, err := logTransferScript.Run(ctx, s.rdb, []string{leadKey(id), leadKey(id) + keyTransfers}, b).Int()
	if err != nil {
		return intake.Unavailable("log transfer", err)
	}
	if n == 0 {
		return &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	}
	return nil
}

// Count is how many leads are in state st now: the console's home shows
// how many wait for review or a redrive.
func (s *Leads) Count(ctx context.Context, st intake.State) (int64, error) {
	n, err := s.rdb.ZCard(ctx, stateKey(st)).Result()
	if err != nil {
		return 0, intake.Unavailable("count leads", err)
	}
	return n, nil
}
