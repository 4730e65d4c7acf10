package intake

import "context"

// Submission is a validated form (intake/form): values trimmed, phone in
// E.164, the email in its matching form alongside what was typed.
type Submission struct {
	EntityType       string
	Name             string
	Phone            string
	Email            string
	EmailKey         string // form.NormalizeEmail(Email): who the person is
	TaxID            string
	Products         []string
	Message          string
	Lang             string
	ConsentMarketing bool
	PageURL          string
	Timezone         string
	UTMSource        string
	UTMMedium        string
	UTMCampaign      string
	RedirectURL      string
}

// Application is what the store needs to accept one submission.
type Application struct {
	Submission     *Submission
	Consent        Consent
	Meta           Metadata
	Observed       Observed // what intake saw; the Same* counts are filled by the store
	IdempotencyKey string   // optional
	DoubleOptIn    bool     // a marketing opt-in waits for the emailed link (DOUBLE_OPT_IN)
	PerIP          Limit
	PerEmail       Limit
}

// Admission is the outcome of accepting an Application.
type Admission struct {
	ID        string
	Duplicate bool  // a repeat within 24 h, or a replayed Idempotency-Key: nothing new was stored
	State     State // the lead's state now
	// Undo removes a newly accepted lead whose enqueue failed. It keeps the
	// lead when a repeat was already answered with it, and if Redis is gone
	// too: the lead then stays Received and the sweeper queues it, so it is
	// never lost — at worst routed although this request saw an error. It
	// does nothing for a duplicate.
	Undo func(context.Context) error
}
