package intake

import "time"

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

// SubjectKind is what a data-subject request asks for.
type SubjectKind string

// Subject-request kinds, as recorded and listed.
const (
	SubjectExport   SubjectKind = "export"
	SubjectRectify  SubjectKind = "rectify"
	SubjectBlock    SubjectKind = "block"
	SubjectUnblock  SubjectKind = "unblock"
	SubjectErase    SubjectKind = "erase"
	SubjectWithdraw SubjectKind = "withdraw"
)

// SubjectRequest is the record of one data-subject request: what was asked,
// when it was received and is due, who handled it and how it ended. It
// holds no personal value.
type SubjectRequest struct {
	Reference  string      `json:"reference"`
	Kind       SubjectKind `json:"kind"`
	Scope      string      `json:"scope,omitempty"` // a withdrawal's scope: marketing or processing
	ReceivedAt time.Time   `json:"received_at"`
	DueAt      time.Time   `json:"due_at"`
	ClosedAt   time.Time   `json:"closed_at,omitzero"`
	Subject    string      `json:"-"` // SubjectKey of whom it concerns
	By         string      `json:"by"`
	Outcome    string      `json:"outcome,omitempty"`
}

// Scopes of a withdrawal of consent.
const (
	ScopeMarketing  = "marketing"  // product news only
	ScopeProcessing = "processing" // processing as a whole: the person is blocked and their marketing consent withdrawn
)
