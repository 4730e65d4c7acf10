package redisstore

import (
	"strconv"

	"github.com/paymtech/leadgate/intake"
)

// The Redis schema: every key leadgate keeps is under "lg:", and this file
// lists every pattern. Personal values appear in keys only as seal.Keys.Index
// hashes ("<hash>" below); ids are UUIDs. The Lua scripts in scripts/ build
// some of the same keys from an id they read (lg:lead:<id>, lg:person:<hash>,
// lg:phone:<hash>, lg:campaign:<id>, lg:leads:state:<state>); keys_test.go
// checks that no other file names an lg: key.
const (
	// Leads.
	keyLeadPrefix = "lg:lead:"        // hash per lead id: clear bookkeeping fields + sealedRecord; "pushing": when the latest CRM push began (ms, package delivery)
	keyTransfers  = ":transfers"      // list after a lead key: the disclosure log (JSON transfers)
	keyAll        = "lg:leads"        // zset id → last change (ms): the purge's time index
	keyStatePfx   = "lg:leads:state:" // zset per state, id → time it entered the state (ms)
	keyPhonePfx   = "lg:phone:"       // zset per phone hash: its lead ids
	keyDedupePfx  = "lg:dedupe:"      // string per person+phone+entity hash: lead id of a repeat, 24 h
	keyIdemPfx    = "lg:idem:"        // string per Idempotency-Key hash: "<lead id> <fingerprint hash>", 24 h
	keyRatePfx    = "lg:rate:"        // + "ip:<hash>" (an IPv4 address, an IPv6 /64) / "mailbox:<hash>" (plus-tags and Gmail dots dropped): submissions this window
	keySeenPfx    = "lg:seen:"        // + "ip:", "email:", "taxid:" hash: accepted requests in 24 h, risk signals
	keySentPfx    = "lg:sent:"        // + "<kind>:<person>": the lead whose ack or opt-in mail was sent this window
	keyVoidPfx    = "lg:void:"        // string per lead id whose accept call lost its answer and that the web then refused (503): never stored later, 1 h

	// Admission: accept.lua appends the work a submission hands to the
	// workers (route <lead id>, or optin <lead id>) to this stream, in the
	// same step as it stores the lead; the workers' drain (jobs/admit.go)
	// reads it in one consumer group (admission.Group), queues each entry's
	// asynq task and then deletes the entry.
	keyAdmission = "lg:admission"

	// People: a person is the keyed hash of their normalised email
	// (Lead.Person). lg:person:<hash> holds their profile (contact, sealed;
	// language, entity type, products; "profile", a keyed digest of name,
	// language and segment fields): the first request's, changed only by a
	// confirmation link or a rectification. Also their number n (their bit
	// in campaign marks), their marketing-consent state, the blocked flag,
	// and "pending_lead"/"pending_until": the request whose confirmation
	// link was mailed last, and until when that link is valid. A lead's
	// "asks_link" field says its request asked for such a link, its
	// "optin_queued" that the opt-in request was queued for it, and its
	// "ack_queued" that its acknowledgement was queued as a lead:ack task
	// (People.AckQueued).
	keyPersonPfx     = "lg:person:"        // hash per person
	keyLeads         = ":leads"            // zset after a person key: the person's lead ids
	keyConsents      = ":consents"         // list after a person key: "<lead id|-> <sealed consent event>"
	keyPeople        = "lg:people"         // zset person → last submission (ms): everyone held, for notices and the purge
	keyMarketing     = "lg:marketing"      // zset person → 0: who may get product news now — active consent, not blocked, suppressed or erased; campaigns walk it in lexical order
	keyPendingOptins = "lg:optins:pending" // zset person → opt-in time (ms): unconfirmed, dropped after UNCONFIRMED_OPTIN_TTL
	keyPeopleSeq     = "lg:people:seq"     // counter: the last person number given (a person's bit in campaign marks)
	keySuppressed    = "lg:suppressed"     // hash person → reason (erased, bounce, dropped, spamreport): never mailed again
	keyEventSeenPfx  = "lg:sgevent:"       // string per SendGrid sg_event_id hash: the event was applied, 7 days

	// Campaigns and breach notices (one fan-out engine sends both).
	keyCampaigns        = "lg:campaigns" // zset id → created (ms)
	keyCampaignPfx      = "lg:campaign:" // hash per campaign: kind, state, content, counters (and "reason:<code>" counts of the failed), cursor, retry list
	keyCampaignMarks    = ":marks"       // bitmap after a campaign key, by person number: 1 = marked (then sent, failed, or lost in a crash)
	keyCampaignFails    = ":failed"      // hash after a campaign key: person → reason code (invalid_address, refused, gave_up …), marked or walked but never sent
	keyCampaignInFlight = ":inflight"    // hash after a campaign key: batch number → a byte a slot ('1': marked, not yet settled), a space, the batch's people comma-separated; what a crash leaves is settled as unknown_outcome
	keyCampaignTo       = ":to"          // zset after a campaign key: person → 0, a notice's recipients

	// Data-subject requests: named by reference; the subject only by
	// SubjectKey, which links back to nothing without the index key.
	keySubjectRequests   = "lg:subject:requests" // zset reference → received (ms)
	keySubjectRequestPfx = "lg:subject:request:" // hash per reference: kind, scope, received, due, closed, subject, by, outcome

	// The audit log.
	keyAudit        = "lg:audit"          // stream of audit events (role, name, action, target, status, detail)
	keyAuditRefused = "lg:audit:refused:" // + unix minute: unauthenticated admin calls counted, 2 min TTL

	// The console (intake/redisstore/sessions): sessions by a digest of
	// their cookie's id, so a copy of Redis holds no id that would open one,
	// and sign-in attempts per client.
	keyConsoleSessionPfx = "lg:console:session:" // hash per session id digest: role, name, csrf, created, seen, handle:<h> → person hash (privacy console); TTL the idle limit
	keyConsoleLoginPfx   = "lg:console:login:"   // counter per client address hash: sign-in attempts this window

	// Workers.
	keyPurgeLock    = "lg:purge:lock"    // string: the running purge's owner token, renewed while it runs
	keyCRMGone      = "lg:crm:gone"      // string: the CRM endpoint answered 410 Gone (time); no pushes until a worker starts
	keyRouteTurnPfx = "lg:route:cursor:" // counter per sales team: its round-robin position
	keyThrottlePfx  = "lg:throttle:"     // zset per outside system ("amocrm"): its calls admitted in the last window (µs, Redis clock), with a TTL

	keyAllPattern = "lg:*" // every key leadgate keeps, for SCAN

	// Slots of script key lists that must name a key no record uses.
	noIndexKey  = keyPhonePfx + "-"  // an index entry that does not exist
	noDedupeKey = keyDedupePfx + "-" // a dedupe key that cannot be computed
)

// shortLived are the prefixes of keys that are always written with a TTL.
// One without is a bug somewhere (or a crash between a pipelined write and
// its EXPIRE); the purge removes it and counts it so an operator notices.
var shortLived = []string{keyRatePfx, keyDedupePfx, keyIdemPfx, keySeenPfx, keySentPfx, keyVoidPfx, keyEventSeenPfx, keyAuditRefused,
	keyThrottlePfx, keyConsoleSessionPfx, keyConsoleLoginPfx}

func leadKey(id string) string            { return keyLeadPrefix + id }
func stateKey(s intake.State) string      { return keyStatePfx + string(s) }
func personKey(person string) string      { return keyPersonPfx + person }
func campaignKey(id string) string        { return keyCampaignPfx + id }
func subjectRequestKey(ref string) string { return keySubjectRequestPfx + ref }

// The keys of the operations' records (package ops), exported because ops
// is a package of its own and keys are spelled only here.
const (
	AuditStream  = keyAudit     // the audit log
	PurgeLockKey = keyPurgeLock // the purge lock
	CRMGoneKey   = keyCRMGone   // the CRM-gone flag
	// AdmissionStream is the hand-over from the accept script to the
	// workers (package admission).
	AdmissionStream = keyAdmission
)

// LeadKey is the hash of lead id, for the subpackages that keep a field of
// it (delivery's mark of a CRM push); exported because keys are spelled
// only here.
func LeadKey(id string) string { return leadKey(id) }

// AuditRefusedKey counts the unauthenticated admin calls of one minute
// (Unix seconds / 60).
func AuditRefusedKey(minute int64) string { return keyAuditRefused + strconv.FormatInt(minute, 10) }

// RouteTurnKey is a sales team's round-robin counter.
func RouteTurnKey(team string) string { return keyRouteTurnPfx + team }

// ThrottleKey is the window of calls admitted to an outside system.
func ThrottleKey(system string) string { return keyThrottlePfx + system }

// SessionKey is the key of a console session, named by the digest of its
// id (sessions.Store computes it); exported because the session store is a
// package of its own and keys are spelled only here.
func SessionKey(digest string) string { return keyConsoleSessionPfx + digest }

// LoginAttemptsKey is the counter of console sign-in attempts from one
// client, named by a keyed hash of its address.
func LoginAttemptsKey(clientHash string) string { return keyConsoleLoginPfx + clientHash }

// stateKeys lists every state index, in the order of intake.States.
func stateKeys() []string {
	keys := make([]string, len(intake.States))
	for i, st := range intake.States {
		keys[i] = stateKey(st)
	}
	return keys
}

// perPersonKeys are the short-lived keys named by a person hash: the
// submission rate counter as it was named before it counted mailboxes
// (none is written now; erase.lua and rectify.lua count on four keys, and
// clear or move one left from before), the 24 h repeat count, and the
// claims of the once-a-day acknowledgement and opt-in request. The
// per-mailbox counter cannot be named from a person hash (several people
// share a mailbox); like the per-IP one it lasts only its window.
func perPersonKeys(person string) []string {
	keys := []string{keyRatePfx + "email:" + person, keySeenPfx + "email:" + person}
	for _, kind := range []string{"ack", "optin"} {
		keys = append(keys, keySentPfx+kind+":"+person)
	}
	return keys
}
