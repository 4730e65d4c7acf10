package intake

import "time"

// PurgeOptions says what a retention pass removes. Zero values are safe: a
// zero LeadRetention or OptinTTL keeps those records (zero would otherwise
// mean "destroy everything now", which is never what an unset field meant).
type PurgeOptions struct {
	// LeadRetention is LEAD_RETENTION: a lead with no submission, state
	// change or admin action for this long is destroyed, and so is a person
	// left with no lead and no marketing consent. Zero keeps leads.
	LeadRetention time.Duration
	// OptinTTL is UNCONFIRMED_OPTIN_TTL: a marketing opt-in not confirmed
	// within it is dropped. Zero keeps pending opt-ins.
	OptinTTL time.Duration
	// CampaignRetention is LEAD_RETENTION: the recipient marks of a
	// campaign finished this long ago are dropped (the campaign's counters
	// stay). The marks are also each person's record of the emails sent to
	// them (Store.MailSent), so they last as long as a request would. Zero
	// drops them as soon as the campaign is finished.
	CampaignRetention time.Duration
	// DryRun counts what would go and removes nothing.
	DryRun bool
	// Batch is how many records one Redis call handles. It bounds how long
	// Redis serves nobody else: Redis runs one script at a time, and every
	// intake request waits for the one running. Zero means 4 for a paced
	// pass, which is not in a hurry, and 25 flat out (Share 1), where fewer
	// calls a record count for more; more than 5000 is cut to 5000.
	Batch int
	// Share is the most of the time the purge keeps Redis working for it:
	// after its calls it pauses so that they take at most this share of the
	// pass's time. Zero means 0.5; 1 runs flat out. A catch-up purge of
	// many records then leaves intake most of Redis (and, where Redis shares
	// the machine, of the CPU) at the price of taking longer.
	Share float64
}

// The pacing a zero PurgeOptions field means, and the bound on Batch.
const (
	defaultPurgeShare = 0.5
	pacedPurgeBatch   = 4    // about 0.2 ms of Redis a call for leads on a slow machine (10: 0.45 ms): what an intake request waits behind
	flatOutPurgeBatch = 25   // about 0.4-1 ms
	maxPurgeBatch     = 5000 // a larger Batch is cut to this: one script must stay short
)

// Pacing returns the share of Redis's time and the records a call that a
// pass with o keeps to: the fields' values, or the defaults they describe.
func (o PurgeOptions) Pacing() (share float64, batch int) {
	share = o.Share
	if share <= 0 || share > 1 {
		share = defaultPurgeShare
	}
	batch = o.Batch
	if batch <= 0 {
		batch = pacedPurgeBatch
		if share == 1 {
			batch = flatOutPurgeBatch
		}
	}
	return share, min(batch, maxPurgeBatch)
}

// PurgeReport counts what a retention pass removed (or, in a dry run, would
// remove). Counts only: a report never names a person or a lead.
type PurgeReport struct {
	Leads     int // leads destroyed with their disclosure logs and index entries
	People    int // people left with no lead and no marketing consent, destroyed
	Optins    int // unconfirmed opt-ins dropped
	StaleKeys int // short-lived keys that had lost their TTL (a bug: they should expire on their own)
	Campaigns int // finished campaigns whose recipient marks were dropped
	// ConsentKept counts people whose requests are all past retention but
	// who are kept for their marketing consent alone: consent to product
	// news outlives the request it came with, so their contact and consent
	// history stay until they withdraw it.
	ConsentKept int
	DryRun      bool
}
