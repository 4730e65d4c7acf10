package intake

import (
	"time"
)

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

// MailRecord is a campaign or notice email sent to a person, for the
// subject export (see Store.MailSent). Acknowledgements and opt-in
// requests are in their lead's disclosure log.
type MailRecord struct {
	Kind CampaignKind `json:"kind"`
	Ref  string       `json:"ref"` // the campaign or notice id
	At   time.Time    `json:"at"`  // when its sending began
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
