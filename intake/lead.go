// Package intake is the domain of a connection request: the Lead and its
// states, consent and its proof, people and their marketing consent,
// campaigns, data-subject requests, roles and tokens, the one Error type with
// its codes, and the ports the rest of leadgate implements (Queue).
//
// It does no I/O. Its subpackages do the work: form validates what a person
// typed, seal encrypts, redisstore keeps everything in Redis, privacy runs
// data-subject requests, httpapi serves the form and the admin API. jobs
// implements the Queue, and cmd/leadgate wires them together.
package intake

import (
	"strings"
	"time"
)

// State is where a lead is on its way to sales. The lead's state, not the
// queue's archive, is the truth about what happened to it.
type State string

// The states of a lead.
const (
	Received State = "received" // stored and queued, not yet handed to sales
	Routed   State = "routed"   // accepted by the CRM
	Review   State = "review"   // held for a human before it goes to sales
	Failed   State = "failed"   // refused permanently or out of retries; an operator acts
	Blocked  State = "blocked"  // the person asked to block processing
)

// States lists every state, for indexes and validation.
var States = []State{Received, Routed, Review, Failed, Blocked}

// Entity types a request can come from.
const (
	LegalEntity    = "legal_entity"
	SoleProprietor = "sole_proprietor"
)

// Lead is one connection request as stored: what the person submitted, the
// proof of their consent, what the server recorded about the request, and
// what happened to it since.
type Lead struct {
	ID         string
	State      State
	Person     string // the keyed hash of the normalised email: who this is, without saying
	EntityType string
	Name       string
	Phone      string // E.164
	Email      string // as typed, trimmed
	TaxID      string // 12 digits, or empty
	Products   []string
	Message    string
	Lang       string
	Consent    Consent
	Meta       Metadata
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Observed   Observed
	Risk       Risk        // set when the lead was first assessed
	Released   bool        // a reviewer released it to sales: the risk check is skipped
	AckQueued  bool        // its acknowledgement was queued as a lead:ack task, which mails it: no routing run does
	Assignment *Assignment // set when the lead was first assigned; nil before
	Route      Route
	Transfers  []Transfer
}

// Observed is what intake saw of a request for the anti-fraud score
// (privacy policy 2.5). Nothing personal: timings, flags and counts.
type Observed struct {
	FormAge          time.Duration `json:"form_age"`           // page render to post; 0 when no form token came
	FormTokenInvalid bool          `json:"form_token_invalid"` // a token came with a bad signature or an impossible age
	HoneypotNearMiss bool          `json:"honeypot_near_miss"` // the honeypot came filled with whitespace only
	ScriptRan        bool          `json:"script_ran"`         // the page's script filled the timezone
	BrowserPost      bool          `json:"browser_post"`       // the browser's own form post, not a script's
	// The repeat counts: requests in 24 h, this one included, as the router
	// found them when it first read the lead (a duplicate's, or a blocked
	// person's lead's, as intake did): duplicates posted before the router
	// came count too. Counting after the 202 keeps three counters out of the
	// call the web waits for (redisstore, repeats.lua).
	SameIP    int `json:"same_ip"`     // from the IP
	SameEmail int `json:"same_email"`  // from the person
	SameTaxID int `json:"same_tax_id"` // naming the BIN/IIN; 0 without one
}

// Risk is a lead's anti-fraud score, 0–100, and the signals that raised it.
type Risk struct {
	Score   int      `json:"score"`
	Signals []string `json:"signals,omitempty"`
}

// Assignment is who in sales gets the lead, as the routing rules decided.
type Assignment struct {
	Rule  string `json:"rule"`
	Team  string `json:"team"`
	Owner string `json:"owner"` // the salesperson's name in the routing rules
	// CRMUserID is the owner's user id in the CRM (Bitrix24 ASSIGNED_BY_ID,
	// amoCRM responsible_user_id); empty leaves the CRM's default.
	CRMUserID string `json:"crm_user_id,omitempty"`
}

// Consent is the proof an auditor asks for: what the person agreed to, under
// which policy, when, and from where.
type Consent struct {
	Processing    bool      `json:"processing"`
	Marketing     bool      `json:"marketing"` // opt-in requested; double opt-in confirms it later
	PolicyVersion string    `json:"policy_version"`
	PolicyURL     string    `json:"policy_url"`
	GivenAt       time.Time `json:"given_at"`
	IP            string    `json:"ip"`
	UserAgent     string    `json:"user_agent"`
	PageURL       string    `json:"page_url,omitempty"`
}

// Metadata is what the server records with a request, as policy 2.3 lists:
// IP, browser and operating system, time of access, timezone, page address,
// allow-listed cookies; plus the campaign tags the page passed on.
type Metadata struct {
	IP          string            `json:"ip"`
	UserAgent   string            `json:"user_agent,omitempty"`
	Browser     string            `json:"browser,omitempty"`
	OS          string            `json:"os,omitempty"`
	Timezone    string            `json:"timezone,omitempty"`
	PageURL     string            `json:"page_url,omitempty"`
	UTMSource   string            `json:"utm_source,omitempty"`
	UTMMedium   string            `json:"utm_medium,omitempty"`
	UTMCampaign string            `json:"utm_campaign,omitempty"`
	Cookies     map[string]string `json:"cookies,omitempty"`
}

// Route is the outcome of handing the lead to sales.
type Route struct {
	Since  time.Time `json:"since"`            // when the current attempt began; retries stop RETRY_MAX_AGE later
	System string    `json:"system,omitempty"` // CRM driver that took it
	Ref    string    `json:"ref,omitempty"`    // the CRM's reference
	URL    string    `json:"url,omitempty"`    // a link to the lead in the CRM
	At     time.Time `json:"at,omitzero"`
	Error  string    `json:"error,omitempty"` // why it failed; never personal data
}

// Transfer is one entry of the lead's disclosure log: each time its data
// leaves leadgate, to whom, when and why.
type Transfer struct {
	Recipient string    `json:"recipient"`
	At        time.Time `json:"at"`
	Purpose   string    `json:"purpose"`
	Ref       string    `json:"ref,omitempty"`
}

// Transition is one change of a lead's state.
type Transition struct {
	From     State     // required current state; "" accepts any
	To       State     // new state
	Risk     *Risk     // recorded when the lead was assessed on the way
	Route    Route     // recorded when To is Routed or Failed
	Transfer *Transfer // appended to the disclosure log when data left
	// QueueOptin queues the lead's opt-in request with the change, when its
	// request asks for a confirmation link and the push mark did not queue
	// it already: in the same step, so a repeat that adds the opt-in while
	// the lead is being routed is not missed, and a crash after the change
	// cannot lose the request.
	QueueOptin bool
}

// Page is one page of a lead listing.
type Page struct {
	Leads []*Lead
	Next  string // cursor of the next page; "" on the last
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
