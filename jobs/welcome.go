package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
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

// PersonMail is what the welcome mail needs of the person it writes to
// (redisstore.People).
type PersonMail interface {
	ClaimSend(ctx context.Context, kind, person, lead string, window time.Duration) (bool, error)
	SentTo(ctx context.Context, kind, person, lead string) error
	Marketing(ctx context.Context, person string) (string, error)
	OptinToken(person string, expires time.Time) string
}

// Welcomer mails a person about their own request: the acknowledgement, and
// the link that confirms a marketing opt-in.
type Welcomer struct {
	Leads     Leads
	People    PersonMail
	Mailer    mail.Mailer
	From      mail.Address
	BaseURL   string        // PUBLIC_BASE_URL: where the confirmation link points
	PolicyURL string        // POLICY_URL
	OptinTTL  time.Duration // UNCONFIRMED_OPTIN_TTL: how long the link is valid
	Now       func() time.Time
	Log       *slog.Logger
}

// Acknowledge handles a lead:ack task.
func (w *Welcomer) Acknowledge(ctx context.Context, t *asynq.Task) error {
	lead, err := w.load(ctx, t)
	if lead == nil || err != nil {
		return err
	}
	email, err := templates.RenderAck(templates.AckEmail{Lang: templates.Lang(lead.Lang), RequestID: lead.ID,
		EntityType: lead.EntityType, Products: lead.Products, PolicyURL: w.PolicyURL})
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return w.send(ctx, lead, "ack", email, PurposeAck)
}

// RequestConfirmation handles a lead:optin task: it mails the link only
// while the person's opt-in is still pending — consent is checked when the
// email is sent, not when it was queued.
func (w *Welcomer) RequestConfirmation(ctx context.Context, t *asynq.Task) error {
	lead, err := w.load(ctx, t)
	if lead == nil || err != nil { // not lead.Consent.Marketing: a repeat may add the opt-in to the first lead's person
		return err
	}
	if state, err := w.People.Marketing(ctx, lead.Person); err != nil || state != intake.MarketingPending {
		return err
	}
	link := w.BaseURL + "/v1/optin/confirm?" + url.Values{
		"token": {w.People.OptinToken(lead.Person, w.Now().Add(w.OptinTTL))}, "lang": {lead.Lang}}.Encode()
	email, err := templates.RenderOptin(templates.OptinEmail{Lang: templates.Lang(lead.Lang), ConfirmURL: link,
		ValidFor: w.OptinTTL, PolicyURL: w.PolicyURL})
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return w.send(ctx, lead, "optin", email, PurposeOptin)
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
// sendWindow (the claim is taken before the send and closed after it: a
// crash can repeat or lose it, nothing else doubles it), and records the
// transfer.
func (w *Welcomer) send(ctx context.Context, lead *intake.Lead, kind string, e templates.Email, purpose string) error {
	for _, t := range lead.Transfers {
		if t.Recipient == "mail" && t.Purpose == purpose {
			return nil // sent already: a route retry or a redrive queued the task again after the window
		}
	}
	ok, err := w.People.ClaimSend(ctx, kind, lead.Person, lead.ID, sendWindow)
	if err != nil || !ok {
		return err
	}
	err = w.Mailer.Send(ctx, mail.Message{From: w.From, To: []mail.Address{{Email: lead.Email}},
		Subject: e.Subject, Text: e.Text, HTML: e.HTML, Category: kind, Ref: lead.ID})
	if integrations.KindOf(err) == integrations.Permanent {
		w.Log.Error("mail refused", "lead", lead.ID, "kind", kind, "err", err)
		if serr := w.People.SentTo(ctx, kind, lead.Person, lead.ID); serr != nil { // closed: a requeued task must not try again
			w.Log.Error("mail refused and not marked; a requeued task may try again", "lead", lead.ID, "kind", kind, "err", serr)
		}
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	} else if err != nil {
		return err
	}
	if err := w.People.SentTo(ctx, kind, lead.Person, lead.ID); err != nil {
		w.Log.Error("mail sent but not marked; a retry may send it again", "lead", lead.ID, "kind", kind, "err", err)
	}
	return w.Leads.LogTransfer(ctx, lead.ID, intake.Transfer{Recipient: "mail", At: w.Now().UTC(), Purpose: purpose})
}
