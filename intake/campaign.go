package intake

import (
	"slices"
	"time"
)

// MaxBatchSize is the most people Candidates reads at once: SendGrid takes
// 1000 personalizations a request.
const MaxBatchSize = 1000

// CampaignKind says who a fan-out may reach and under which rules.
type CampaignKind string

// Kinds of campaign.
const (
	KindCampaign     CampaignKind = "campaign"      // marketing: only to people with active, confirmed consent
	KindBreachNotice CampaignKind = "breach_notice" // transactional: to everyone affected but the erased
)

// CampaignState is where a campaign's sending stands.
type CampaignState string

// Campaign states.
const (
	CampaignQueued    CampaignState = "queued"
	CampaignSending   CampaignState = "sending"
	CampaignDone      CampaignState = "done"
	CampaignCancelled CampaignState = "cancelled"
)

// Segment narrows a marketing campaign; an empty field matches everyone.
type Segment struct {
	Lang       string   `json:"lang,omitempty"`
	EntityType string   `json:"entity_type,omitempty"`
	Products   []string `json:"products,omitempty"` // any of them
}

// Content is a campaign's text per language ("kk", "ru", "en"). A
// recipient whose language is missing gets the first present of ru, en,
// kk.
type Content struct {
	Subject map[string]string `json:"subject,omitempty"`
	HTML    map[string]string `json:"html,omitempty"`
	Text    map[string]string `json:"text,omitempty"`
	Message map[string]string `json:"message,omitempty"` // a breach notice's plain text
}

// ContentLang returns the language of c that a recipient speaking lang
// gets, given the languages present in m.
func ContentLang(m map[string]string, lang string) string {
	for _, l := range []string{lang, "ru", "en", "kk"} {
		if m[l] != "" {
			return l
		}
	}
	return ""
}

// Campaign is a campaign or breach notice and its progress.
type Campaign struct {
	ID         string
	Kind       CampaignKind
	Name       string
	State      CampaignState
	Content    Content
	Segment    Segment
	TestTo     string // a campaign's test send goes to this address only; never stored in clear
	All        bool   // a notice to everyone held
	By         string // the admin token's name that created it
	Recipients int    // people the fan-out reached who match: sent + skipped + failed, and those in flight; equal to the three once done
	Sent       int
	Skipped    int // matched, but had no consent (or were blocked, suppressed, erased) when their turn came
	Failed     int
	// FailedReasons counts Failed by reason; the counts add up to Failed.
	FailedReasons map[FailReason]int
	CreatedAt     time.Time
	FinishedAt    time.Time
}

// FailReason says why a recipient of a campaign or notice was not reached:
// a short fixed code, never anything personal.
type FailReason string

// Reasons a recipient was not reached.
const (
	// ReasonInvalidAddress: the stored address breaks the mailable rule
	// (mail.CheckAddress), as data stored before intake applied it can.
	ReasonInvalidAddress FailReason = "invalid_address"
	// ReasonInvalidName: the stored name breaks mail.CheckName (a line
	// separator, a control character).
	ReasonInvalidName FailReason = "invalid_name"
	// ReasonUnreadable: the stored contact could not be decrypted (sealed
	// under a key no longer configured).
	ReasonUnreadable FailReason = "unreadable"
	// ReasonRefused: the provider refused this recipient, or the message,
	// for good (a 4xx).
	ReasonRefused FailReason = "refused"
	// ReasonInvalidMessage: the message itself broke mail.Validate (the
	// sender, the subject): a configuration mistake, the same for everyone.
	ReasonInvalidMessage FailReason = "invalid_message"
	// ReasonUnknownOutcome: a timeout, a lost answer, or a crash between
	// mark and send: maybe sent, so never sent again.
	ReasonUnknownOutcome FailReason = "unknown_outcome"
	// ReasonGaveUp: the send stopped for good (its retries ran out, or the
	// campaign would not render) before it reached them.
	ReasonGaveUp FailReason = "gave_up"
)

// FailedRecipient is one person a campaign or notice did not reach, as the
// privacy and admin roles see them: by keyed person hash and lead ids, never
// an address.
type FailedRecipient struct {
	Person string     `json:"person"`
	Leads  []string   `json:"leads"`
	Reason FailReason `json:"reason"`
}

// Recipient is one person a batch is to be sent to.
type Recipient struct {
	Person string
	Email  string
	Name   string
	Lang   string
	// Number is the store's number for the person, their bit in a
	// campaign's marks: opaque to everyone else, handed back to the store.
	Number string
	// Problem is set when the store already knows this person cannot be
	// mailed (ReasonUnreadable): the sender fails them alone.
	Problem FailReason
	// Batch and Slot are where the store holds a marked person in flight
	// until their outcome is recorded: set by Mark, opaque to everyone
	// else, handed back to the store with the outcome.
	Batch string
	Slot  int
}

// Candidates are the next people of a campaign's walk, read but not yet
// marked: contact and language decrypted, those outside the segment or no
// longer held left out. Each candidate is counted a recipient when marked,
// unless an earlier batch already marked them.
type Candidates struct {
	Recipients []Recipient
	Cursor     string   // the last person walked: where the walk goes on
	Retry      bool     // a chunk of the refused recipients of an earlier attempt, not the walk
	Chunk      []string // Retry: every person of the chunk, those left out of Recipients too; all leave the retry list when marked
	Done       bool     // the walk is over
}

// Batch is what Mark hands out: people marked, to be sent to now. Stopped
// means the campaign was cancelled (or finished) and nobody was marked.
type Batch struct {
	Recipients []Recipient
	Stopped    bool
}

// Matches reports whether a person with this language, entity type and
// products is in the segment.
func (seg Segment) Matches(lang, entity string, products []string) bool {
	if seg.Lang != "" && lang != seg.Lang || seg.EntityType != "" && entity != seg.EntityType {
		return false
	}
	if len(seg.Products) == 0 {
		return true
	}
	for _, p := range products {
		if slices.Contains(seg.Products, p) {
			return true
		}
	}
	return false
}

// Outcome is what became of sending to a batch.
type Outcome string

// Outcomes of sending to a batch.
const (
	OutcomeSent    Outcome = "s" // the provider accepted the message: the mark stays
	OutcomeRefused Outcome = "r" // the provider answered that it did not take it (429, 5xx): safe to send again
	OutcomeFailed  Outcome = "f" // refused for good, or the outcome is unknown: never sent again; always with a FailReason
)
