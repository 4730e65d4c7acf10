package intake

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
	// ID is the id the lead gets if it is new: chosen by the caller (a
	// time-ordered UUID), so that a caller whose Accept lost its answer can
	// still ask whether the lead was stored. Empty: the store chooses one.
	ID             string
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
}
