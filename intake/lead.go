// Package intake is the domain of a connection request: the Lead and its
// consent, validation of what a person typed (BIN/IIN, phone, email), the Redis
// store that keeps leads encrypted, and the public HTTP handlers.
//
// intake knows nothing of asynq or the CRMs: it declares the Queue it needs and
// cmd/leadgate wires an implementation from package jobs.
package intake

import (
	"context"
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
	Route      Route
	Transfers  []Transfer
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

// Queue hands an accepted lead to the workers. Enqueuing the same id twice
// must be harmless.
type Queue interface {
	EnqueueLead(ctx context.Context, id string) error
}
