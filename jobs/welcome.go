package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/templates"
)

// Purposes recorded in the disclosure log when mail leaves for the person.
const (
	PurposeAck   = "acknowledge the request (privacy policy, section 4)"
	PurposeOptin = "confirm the opt-in to product news (privacy policy, section 4)"
)

// sendWindow is how often a person can get an acknowledgement or an opt-in
// request: once a day, so the form cannot be used to mail a stranger.
const sendWindow = 24 * time.Hour

// ackPause is how long, after the mail provider failed an acknowledgement
// sent by the routing task (AcknowledgeFirst), routing queues the
// acknowledgements instead of trying; then one routing task of the process
// tries again, and the pause ends only when the provider answers it. So a
// mail outage slows the handover to sales for one attempt per pause and
// worker process, not for every lead.
const ackPause = 30 * time.Second

// PersonMail is what the welcome mail needs of the person it writes to
// (redisstore.People).
type PersonMail interface {
	ClaimSend(ctx context.Context, kind, person, lead string, window time.Duration) (bool, error)
	// AsksLink reports whether lead's request asked for a confirmation
	// link, without reading the lead's record.
	AsksLink(ctx context.Context, lead string) (bool, error)
	// SentTo closes the claim and, when t is not nil, logs t to the lead's
	// disclosure log, in one call; ENotFound when the lead is gone.
	SentTo(ctx context.Context, kind, person, lead string, t *intake.Transfer) error
	// AwaitsConfirmation reports whether the person's state waits for
	// this lead's confirmation link: a pending opt-in it asked for, or a
	// confirmed subscriber's change of details.
	AwaitsConfirmation(ctx context.Context, l *intake.Lead) (bool, error)
	// AckQueued records on the lead that its acknowledgement was queued as
	// a lead:ack task (Lead.AckQueued); ENotFound when the lead is gone.
	AckQueued(ctx context.Context, lead string) error
	// LinkSent records that the lead's link was mailed: following a link
	// of the person's now applies that request's details.
	LinkSent(ctx context.Context, person, lead string, expires time.Time) error
	OptinToken(person string, expires time.Time) string
}

// Welcomer mails a person about their own request: the acknowledgement, and
// the link that confirms a marketing opt-in.
type Welcomer struct {
	Leads     Leads
	People    PersonMail
	Mailer    mail.Mailer
	From      mail.Address
	BaseURL   string // PUBLIC_BASE_URL: where the confirmation link points
	PolicyURL string // POLICY_URL: the policy of a language PolicyURLs lacks
	// PolicyURLs are POLICY_URL_KK, _RU and _EN by language ("kk", "ru",
	// "en"): an email links the policy in its own language, the one the
	// person read on the form.
	PolicyURLs map[string]string
	// Company is COMPANY_NAME and COMPANY_CONTACT, named in every email as
	// on the pages, so the person knows who holds their data.
	Company  templates.Company
	OptinTTL time.Duration // UNCONFIRMED_OPTIN_TTL: how long the link is valid
	// QueueAck queues a lead:ack task: where an acknowledgement the routing
	// task could not send goes, to be retried (AcknowledgeFirst).
	QueueAck func(ctx context.Context, leadID string) error
	Now      func() time.Time
	Log      *slog.Logger

	pausedUntil atomic.Int64 // Unix ns: AcknowledgeFirst queues until then
}

// Acknowledge handles a lead:ack task.
func (w *Welcomer) Acknowledge(ctx context.Context, t *asynq.Task) error {
	lead, err := w.load(ctx, t)
	if lead == nil || err != nil {
		return err
	}
	_, err = w.acknowledge(ctx, lead)
	return err
}

// AcknowledgeFirst acknowledges a lead from the routing task that has just
// read it and passed its risk check: one attempt, on the task's first run,
// and otherwise a lead:ack task (QueueAck), which retries. A task of its
// own cost every lead about four more Redis round trips — queued, taken,
// read again, done: 14.1 a routed lead before, 9.5 since (BENCHMARKS.md).
// A run never sends beside the lead:ack task an earlier run queued (the
// send claim lets any sender of the lead through): a retry only queues,
// and so does a run that finds the lead marked as queued (queueAck) — a
// run requeued after its worker died, or a redrive, is a first run again.
// A run for a lead whose acknowledgement is logged as sent does nothing.
// Failures count as lead:ack's, for the mail alerts; a refusal for good is
// not queued, as a task would fare no better.
func (w *Welcomer) AcknowledgeFirst(ctx context.Context, lead *intake.Lead) error {
	if mailed(lead, PurposeAck) { // a routing retry after the CRM failed: nothing to queue
		return nil
	}
	if retried, _ := asynq.GetRetryCount(ctx); retried > 0 || lead.AckQueued || !w.mayTry() {
		return w.queueAck(ctx, lead)
	}
	// Only the provider's answer — the mail taken, or refused for good —
	// ends a pause: a try that mailed nothing (sent already, the claim
	// another lead's) does not show the provider back.
	answered, err := w.acknowledge(ctx, lead)
	if answered {
		w.pausedUntil.Store(0)
	}
	_, fromProvider := errors.AsType[*integrations.Error](err)
	if err == nil || intake.ErrorCode(err) == intake.ENotFound { // erased meanwhile: nobody to acknowledge
		return nil
	}
	countTaskError(AckLead{}.Kind(), err)
	switch {
	case errors.Is(err, asynq.SkipRetry): // a mail refusal is logged by send; what else refuses is the template
		if !fromProvider {
			w.Log.Error("acknowledgement cannot be rendered; not sent", "lead", lead.ID, "err", err)
		}
		return nil
	case fromProvider:
		w.pausedUntil.Store(w.Now().Add(ackPause).UnixNano())
		w.Log.Warn("acknowledgement not sent by routing; queued, and queued without trying for a while", "lead", lead.ID,
			"pause", ackPause, "err", err)
	}
	return w.queueAck(ctx, lead)
}

// queueAck hands the acknowledgement of lead to a lead:ack task (QueueAck),
// marking the lead first (PersonMail.AckQueued) so that no later routing
// run sends it beside the task; a lead an earlier run marked is not marked
// again. The mark goes before the task: a crash between the two leaves the
// mark, and the next run queues the task.
func (w *Welcomer) queueAck(ctx context.Context, lead *intake.Lead) error {
	if !lead.AckQueued {
		err := w.People.AckQueued(ctx, lead.ID)
		if intake.ErrorCode(err) == intake.ENotFound {
			return nil // erased meanwhile: nobody to acknowledge
		} else if err != nil {
			return err
		}
	}
	return w.QueueAck(ctx, lead.ID)
}

// mayTry reports whether the routing task may send an acknowledgement
// itself: no pause after a provider failure, or the first task to find it
// over, which tries while the others keep queuing (the pause renewed for
// them until the provider answers it; a try that reaches no provider
// leaves it renewed, so another task tries a pause later).
func (w *Welcomer) mayTry() bool {
	until := w.pausedUntil.Load()
	if until == 0 {
		return true
	}
	now := w.Now()
	return now.UnixNano() >= until && w.pausedUntil.CompareAndSwap(until, now.Add(ackPause).UnixNano())
}

// acknowledge mails the acknowledgement of lead; answered as send's.
func (w *Welcomer) acknowledge(ctx context.Context, lead *intake.Lead) (answered bool, err error) {
	email, err := templates.RenderAck(templates.AckEmail{Lang: templates.Lang(lead.Lang), RequestID: lead.ID,
		EntityType: lead.EntityType, Products: lead.Products, PolicyURL: policyURLFor(w.PolicyURLs, w.PolicyURL, lead.Lang),
		Company: w.Company})
	if err != nil {
		return false, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return w.send(ctx, lead, "ack", email, PurposeAck, nil)
}

// RequestConfirmation handles a lead:optin task: it mails the confirmation
// link while the person's state waits for this lead's — an opt-in still
// pending, or a confirmed subscriber's request with other details than
// their profile (a change of name, language or segment reaches campaigns
// only through the link, since anyone who knows an address can post a
// request with it). Consent is checked when the email is sent, not when it
// was queued. The link names the person only; once it is mailed, the
// person's state records which request it was for, and following it
// applies that request's details.
func (w *Welcomer) RequestConfirmation(ctx context.Context, t *asynq.Task) error {
	// A repeat's tick queues this task even for a person already
	// subscribed, whose request asks for no link: one field says so,
	// without reading and decrypting the lead's record and then the
	// person's state.
	var args RequestOptin
	if json.Unmarshal(t.Payload(), &args) == nil && args.LeadID != "" { // a malformed payload is load's to report
		if asks, err := w.People.AsksLink(ctx, args.LeadID); err != nil || !asks {
			return err
		}
	}
	lead, err := w.load(ctx, t)
	if lead == nil || err != nil { // not lead.Consent.Marketing: a repeat may add the opt-in to the first lead's person
		return err
	}
	if awaits, err := w.People.AwaitsConfirmation(ctx, lead); err != nil || !awaits {
		return err
	}
	expires := w.Now().Add(w.OptinTTL)
	link := w.BaseURL + "/v1/optin/confirm?" + url.Values{
		"token": {w.People.OptinToken(lead.Person, expires)}, "lang": {lead.Lang}}.Encode()
	email, err := templates.RenderOptin(templates.OptinEmail{Lang: templates.Lang(lead.Lang), ConfirmURL: link,
		ValidFor: w.OptinTTL, PolicyURL: policyURLFor(w.PolicyURLs, w.PolicyURL, lead.Lang), Company: w.Company})
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	_, err = w.send(ctx, lead, "optin", email, PurposeOptin, func(ctx context.Context) error {
		return w.People.LinkSent(ctx, lead.Person, lead.ID, expires)
	})
	return err
}

// load returns the lead a task names, or nil when it is not to be mailed:
// gone, blocked, or held as suspect.
func (w *Welcomer) load(ctx context.Context, t *asynq.Task) (*intake.Lead, error) {
	var args AckLead
	if err := json.Unmarshal(t.Payload(), &args); err != nil || args.LeadID == "" {
		return nil, fmt.Errorf("malformed %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	lead, err := w.Leads.Get(ctx, args.LeadID)
	if intake.ErrorCode(err) == intake.ENotFound {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if lead.State == intake.Blocked || lead.State == intake.Review {
		return nil, nil
	}
	return lead, nil
}

// send mails one message of kind to the lead's person, at most once per
// sendWindow (the claim is taken before the send and closed after it), and
// records the transfer (the claim closed and the transfer logged in one
// call). sent, when not nil, runs once the mail is handed over, before the
// claim is closed. Once the mail is out, what records it
// waits while Redis is away (untilRecorded, up to the task's deadline):
// a retry, still holding the claim, would mail the person again. Only a
// crash, or an outage longer than the task's deadline, can repeat it.
// answered reports whether the mail provider answered Send: took the mail
// or refused it for good (AcknowledgeFirst's sign that it is reachable).
func (w *Welcomer) send(ctx context.Context, lead *intake.Lead, kind string, e templates.Email, purpose string,
	sent func(context.Context) error) (answered bool, err error) {
	if mailed(lead, purpose) {
		return false, nil // sent already: a route retry or a redrive queued the task again after the window
	}
	ok, err := w.People.ClaimSend(ctx, kind, lead.Person, lead.ID, sendWindow)
	if err != nil || !ok {
		return false, err
	}
	err = w.Mailer.Send(ctx, mail.Message{From: w.From, To: []mail.Address{{Email: lead.Email}},
		Subject: e.Subject, Text: e.Text, HTML: e.HTML, Category: kind, Ref: lead.ID})
	if integrations.KindOf(err) == integrations.Permanent {
		w.Log.Error("mail refused", "lead", lead.ID, "kind", kind, "err", err)
		if serr := w.People.SentTo(ctx, kind, lead.Person, lead.ID, nil); serr != nil { // closed: a requeued task must not try again
			w.Log.Error("mail refused and not marked; a requeued task may try again", "lead", lead.ID, "kind", kind, "err", serr)
		}
		return true, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	} else if err != nil {
		return false, err
	}
	if sent != nil {
		if err := untilRecorded(ctx, func() error { return sent(ctx) }); err != nil {
			return true, err
		}
	}
	transfer := &intake.Transfer{Recipient: "mail", At: w.Now().UTC(), Purpose: purpose}
	err = untilRecorded(ctx, func() error { return w.People.SentTo(ctx, kind, lead.Person, lead.ID, transfer) })
	if redisFailure(err) {
		w.Log.Error("mail sent but not marked; a retry may send it again", "lead", lead.ID, "kind", kind, "err", err)
	}
	return true, err
}

// mailed reports whether lead's disclosure log holds a mail for purpose:
// the message was sent.
func mailed(lead *intake.Lead, purpose string) bool {
	for _, t := range lead.Transfers {
		if t.Recipient == "mail" && t.Purpose == purpose {
			return true
		}
	}
	return false
}

// policyURLFor is the policy of lang from byLang, or fallback (POLICY_URL)
// when that language has none.
func policyURLFor(byLang map[string]string, fallback, lang string) string {
	if u := byLang[lang]; u != "" {
		return u
	}
	return fallback
}
