package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/templates"
)

var campaignMail = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadgate_campaign_emails_total",
	Help: "Campaign and breach-notice emails by outcome: sent, refused (to be sent again), failed.",
}, []string{"kind", "outcome"})

// Campaigns is what the fan-out needs of the store.
type Campaigns interface {
	Campaign(ctx context.Context, id string) (*intake.Campaign, error)
	StartCampaign(ctx context.Context, id string) (intake.CampaignState, error)
	Walk(ctx context.Context, id string) (state intake.CampaignState, cursor string, retry []string, err error)
	Candidates(ctx context.Context, c *intake.Campaign, cursor string, n int) (*intake.Candidates, error)
	RetryCandidates(ctx context.Context, c *intake.Campaign, people []string) (*intake.Candidates, error)
	Mark(ctx context.Context, c *intake.Campaign, cands *intake.Candidates) (*intake.Batch, error)
	Settle(ctx context.Context, c *intake.Campaign, outcome intake.Outcome, people []intake.Recipient) error
	FinishCampaign(ctx context.Context, id string) error
	ClaimTest(ctx context.Context, id string) (bool, error)
	FinishTest(ctx context.Context, id string, sent bool) error
	UnsubscribeToken(person string) string
}

// Campaigner sends campaigns and breach notices. Each recipient is marked
// in Redis before their email goes out, so a crashed or retried batch
// never mails anyone twice: at most once, by design — a crash between mark
// and send loses that email rather than risk a double.
type Campaigner struct {
	Store      Campaigns
	Mailer     mail.Mailer
	From       mail.Address
	BaseURL    string // PUBLIC_BASE_URL without a trailing slash: base of unsubscribe links
	PolicyURL  string
	ASMGroupID int // SENDGRID_ASM_GROUP_ID; 0 for none; marketing mail only
	Batch      int // recipients a batch; 0 means intake.MaxBatchSize
	Log        *slog.Logger
}

// ProcessTask handles a campaign:send task.
func (c *Campaigner) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p SendCampaign
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.CampaignID == "" {
		return fmt.Errorf("campaign:send: bad payload: %w", asynq.SkipRetry)
	}
	camp, err := c.Store.Campaign(ctx, p.CampaignID)
	if intake.ErrorCode(err) == intake.ENotFound {
		return nil // purged
	} else if err != nil {
		return err
	}
	state, err := c.Store.StartCampaign(ctx, camp.ID)
	if err != nil || state == intake.CampaignDone || state == intake.CampaignCancelled {
		return err
	}
	renderer := &renderer{c: c, camp: camp, emails: map[string]templates.Email{}}
	if camp.TestTo != "" {
		return c.sendTest(ctx, camp, renderer)
	}
	return c.fanOut(ctx, camp, renderer)
}

// sendTest sends a campaign to its test address alone, without consent
// checks (it is marketing's own mailbox) but still once only.
func (c *Campaigner) sendTest(ctx context.Context, camp *intake.Campaign, r *renderer) error {
	ok, err := c.Store.ClaimTest(ctx, camp.ID)
	if err != nil || !ok {
		return err
	}
	msg, err := r.message(intake.ContentLang(camp.Content.Subject, ""), []intake.Recipient{{Email: camp.TestTo}})
	if err == nil {
		err = c.Mailer.Send(ctx, msg)
	}
	if err != nil {
		c.Log.Error("campaign test send failed", "campaign", camp.ID, "err", err)
	}
	return c.Store.FinishTest(ctx, camp.ID, err == nil)
}

// fanOut walks the campaign's recipients in three stages, each a batch
// ahead of the next, so Redis and SendGrid are both busy: reading the next
// people (contacts, languages: nothing changes), marking them (the one
// atomic check of consent), sending. Only marking changes anything, in
// walk order; a batch read but not marked when the run stops is read again
// by the next run. A refused or uncertain send stops the run with an error,
// and asynq retries it after the provider's wait (RetryDelay honours
// Retry-After and X-RateLimit-Reset); the refused go first then.
func (c *Campaigner) fanOut(ctx context.Context, camp *intake.Campaign, r *renderer) error {
	n := c.Batch
	if n <= 0 {
		n = intake.MaxBatchSize
	}
	_, cursor, retry, err := c.Store.Walk(ctx, camp.ID)
	if err != nil {
		return err
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	reads := make(chan *intake.Candidates)
	var readErr error
	go func() { // stage 1: read
		defer close(reads)
		for {
			var cands *intake.Candidates
			if len(retry) > 0 {
				cands, readErr = c.Store.RetryCandidates(readCtx, camp, retry)
				retry = nil
			} else {
				cands, readErr = c.Store.Candidates(readCtx, camp, cursor, n)
			}
			if readErr != nil || cands.Done {
				return
			}
			if !cands.Retry {
				cursor = cands.Cursor
			}
			select {
			case reads <- cands:
			case <-readCtx.Done():
				return
			}
		}
	}()
	// Unbuffered: at most one batch is marked ahead of the one being sent,
	// so a cancel or a refusal leaves at most one more batch marked.
	batches := make(chan batch)
	var cancelled bool
	go func() { // stage 2: mark, in walk order
		defer close(batches)
		for cands := range reads {
			if readCtx.Err() != nil {
				continue // the run stopped: left unmarked, read again next run
			}
			b, err := c.Store.Mark(ctx, camp, cands)
			switch {
			case err != nil:
				stopReading()
				batches <- batch{err: err}
			case b.Stopped:
				cancelled = true
				stopReading() // nothing more is marked
			default:
				batches <- batch{recipients: b.Recipients}
			}
		}
	}()
	var stop error
	for b := range batches { // stage 3: send
		switch {
		case b.err != nil:
			stop = b.err
		case stop != nil:
			// Marked, and the run stopped before its send: settled as
			// refused (certainly unsent), so the retry sends them, consent
			// checked again.
			c.settle(ctx, camp, intake.OutcomeRefused, b.recipients)
		default:
			if stop = c.send(ctx, camp, r, b.recipients); stop != nil {
				stopReading()
			}
		}
	}
	// Both goroutines are done: reads closed before batches.
	if stop == nil && !cancelled && readErr != nil {
		stop = readErr
	}
	if stop != nil || cancelled {
		return stop
	}
	return c.Store.FinishCampaign(ctx, camp.ID)
}

// batch is one marked batch on its way to be sent.
type batch struct {
	recipients []intake.Recipient
	err        error
}

// send mails one batch, one message per content language, and settles each
// recipient's mark by the outcome. It returns an error that stops the run
// when the provider refused (retry later: the refused ones go first) or the
// outcome is unknown.
func (c *Campaigner) send(ctx context.Context, camp *intake.Campaign, r *renderer, recipients []intake.Recipient) error {
	groups := map[string][]intake.Recipient{}
	for _, rc := range recipients {
		l := r.lang(rc.Lang)
		groups[l] = append(groups[l], rc)
	}
	var stop error
	for lang, group := range groups {
		if stop != nil {
			c.settle(ctx, camp, intake.OutcomeRefused, group)
			continue
		}
		msg, err := r.message(lang, group)
		if err != nil { // a campaign that cannot render is refused for everyone
			c.settle(ctx, camp, intake.OutcomeFailed, group)
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		err = c.Mailer.Send(ctx, msg)
		switch {
		case err == nil:
			c.settle(ctx, camp, intake.OutcomeSent, group)
		case integrations.KindOf(err) == integrations.Permanent:
			c.Log.Error("campaign batch refused", "campaign", camp.ID, "recipients", len(group), "err", err)
			c.settle(ctx, camp, intake.OutcomeFailed, group)
		case integrations.Unsent(err):
			c.settle(ctx, camp, intake.OutcomeRefused, group)
			stop = err
		default: // timeout, reset: SendGrid may have taken it
			c.Log.Error("campaign batch outcome unknown; not sent again", "campaign", camp.ID, "recipients", len(group), "err", err)
			c.settle(ctx, camp, intake.OutcomeFailed, group)
			stop = err
		}
	}
	return stop
}

// settle records an outcome; a failure to record it is logged, since the
// marks already keep anyone from a second email.
func (c *Campaigner) settle(ctx context.Context, camp *intake.Campaign, outcome intake.Outcome, group []intake.Recipient) {
	campaignMail.WithLabelValues(string(camp.Kind), map[intake.Outcome]string{intake.OutcomeSent: "sent",
		intake.OutcomeRefused: "refused", intake.OutcomeFailed: "failed"}[outcome]).Add(float64(len(group)))
	// Not the task's context: a worker shutting down must still record
	// what it did not send, or those people are lost to the retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.Store.Settle(ctx, camp, outcome, group); err != nil {
		c.Log.Error("campaign outcome not recorded; the marks still prevent doubles", "campaign", camp.ID, "err", err)
	}
}

// renderer renders a campaign once per language and builds its messages.
type renderer struct {
	c      *Campaigner
	camp   *intake.Campaign
	emails map[string]templates.Email
}

// lang is the content language a recipient speaking lang gets.
func (r *renderer) lang(lang string) string {
	if r.camp.Kind == intake.KindBreachNotice {
		return intake.ContentLang(r.camp.Content.Message, lang)
	}
	return intake.ContentLang(r.camp.Content.Subject, lang)
}

// unsubscribeURL is the link with a recipient's token, or the slot that
// substitutions fill.
func (r *renderer) unsubscribeURL(lang, token string) string {
	return r.c.BaseURL + "/v1/unsubscribe?" + url.Values{"lang": {lang}}.Encode() + "&token=" + token
}

// message builds the email of one language to recipients: marketing mail
// carries each person's own List-Unsubscribe (RFC 8058 one-click) and the
// unsubscribe group; a notice is transactional and carries neither.
func (r *renderer) message(lang string, recipients []intake.Recipient) (mail.Message, error) {
	e, ok := r.emails[lang]
	if !ok {
		var err error
		if r.camp.Kind == intake.KindBreachNotice {
			e, err = templates.RenderBreach(templates.BreachEmail{Lang: templates.Lang(lang),
				Message: r.camp.Content.Message[lang], PolicyURL: r.c.PolicyURL})
		} else {
			e, err = templates.RenderCampaign(templates.CampaignEmail{Lang: templates.Lang(lang),
				Subject: r.camp.Content.Subject[lang], HTML: r.camp.Content.HTML[lang], Text: r.camp.Content.Text[lang],
				UnsubscribeURL: r.unsubscribeURL(lang, templates.UnsubscribeSlot), PolicyURL: r.c.PolicyURL})
		}
		if err != nil {
			return mail.Message{}, err
		}
		r.emails[lang] = e
	}
	m := mail.Message{From: r.c.From, Subject: e.Subject, Text: e.Text, HTML: e.HTML,
		To: make([]mail.Address, len(recipients)), Category: string(r.camp.Kind), Ref: r.camp.ID}
	for i, rc := range recipients {
		m.To[i] = mail.Address{Email: rc.Email, Name: rc.Name}
	}
	if r.camp.Kind == intake.KindBreachNotice {
		return m, nil
	}
	m.ASMGroupID = r.c.ASMGroupID
	m.Headers = map[string]string{"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
	m.PerRecipient = make([]mail.Personal, len(recipients))
	for i, rc := range recipients {
		token := "-"
		if rc.Person != "" { // a test send has no person to unsubscribe
			token = r.c.Store.UnsubscribeToken(rc.Person)
		}
		m.PerRecipient[i] = mail.Personal{
			Headers:       map[string]string{"List-Unsubscribe": "<" + r.unsubscribeURL(lang, token) + ">"},
			Substitutions: map[string]string{templates.UnsubscribeSlot: token},
		}
	}
	return m, nil
}
