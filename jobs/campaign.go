package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
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
	Settle(ctx context.Context, c *intake.Campaign, outcome intake.Outcome, reason intake.FailReason, people []intake.Recipient) error
	SettleLost(ctx context.Context, c *intake.Campaign) (int, error)
	FinishCampaign(ctx context.Context, id string) error
	ClaimTest(ctx context.Context, id string) (bool, error)
	FinishTest(ctx context.Context, id string, sent bool) error
	UnsubscribeToken(person string) string
}

// Campaigner sends campaigns and breach notices. Each recipient is marked
// in Redis before their email goes out, so a crashed or retried batch
// never mails anyone twice: at most once, by design — a crash between mark
// and send loses that email rather than risk a double.
//
// No recipient can fail the others: one whose stored address or name the
// mailable rule refuses (mail.CheckAddress, mail.CheckName; data stored
// before intake applied it), for which the driver refuses the message
// before sending it, and one the provider blames for refusing a whole
// message, are failed alone and the message sent again without them.
// Every person counted a recipient ends as sent, skipped or failed with a
// reason (intake.FailReason), a send that stops for good included, so a
// finished campaign adds up.
type Campaigner struct {
	Store      Campaigns
	Mailer     mail.Mailer
	From       mail.Address
	BaseURL    string            // PUBLIC_BASE_URL without a trailing slash: base of unsubscribe links
	PolicyURL  string            // POLICY_URL: the policy of a language PolicyURLs lacks
	PolicyURLs map[string]string // POLICY_URL_KK, _RU, _EN: each language's email links its own policy
	Company    templates.Company // COMPANY_NAME, COMPANY_CONTACT: named in the wrapper and the breach notice
	ASMGroupID int               // SENDGRID_ASM_GROUP_ID; 0 for none; marketing mail only
	Batch      int               // recipients a batch; 0 means intake.MaxBatchSize
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
	if err != nil {
		return err
	}
	switch state {
	case intake.CampaignCancelled:
		// Cancelled after a crash: what that run left in flight is still
		// counted, as it would have been by the run.
		_, err := c.Store.SettleLost(ctx, camp)
		return err
	case intake.CampaignDone:
		return nil
	}
	renderer := &renderer{c: c, camp: camp, emails: map[string]templates.Email{}}
	if camp.TestTo != "" {
		return c.sendTest(ctx, camp, renderer)
	}
	err = c.fanOut(ctx, camp, renderer)
	if err != nil && lastAttempt(ctx, err) {
		if gerr := c.giveUp(ctx, camp); gerr != nil {
			c.Log.Error("campaign gave up but could not be closed; it stays sending", "campaign", camp.ID, "err", gerr)
		}
	}
	return err
}

// lastAttempt reports whether asynq will not run the task again after it
// returns err: SkipRetry, or a counted failure on the last of its retries.
// Waiting out a rate limit is never the last attempt (it is not counted),
// nor is a worker shutting down (its context cancelled: the task goes back
// to the queue).
func lastAttempt(ctx context.Context, err error) bool {
	if errors.Is(err, asynq.SkipRetry) {
		return true
	}
	if !IsFailure(err) || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	retried, ok := asynq.GetRetryCount(ctx)
	limit, ok2 := asynq.GetMaxRetry(ctx)
	return ok && ok2 && retried >= limit
}

// giveUp closes a campaign whose send stopped for good, counting everyone
// it did not reach as failed with a reason, so that it reads done and adds
// up: those left in flight as unknown_outcome; those waiting for a retry and
// the rest of the walk as gave_up. These are marked as the walk would have
// marked them (consent checked the same way: whoever no longer has it is
// skipped), so the subject export and any later run agree that nothing was
// sent to them, and then never sent.
func (c *Campaigner) giveUp(ctx context.Context, camp *intake.Campaign) error {
	// The task's context may be the one whose deadline ended the run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	if _, err := c.Store.SettleLost(ctx, camp); err != nil {
		return err
	}
	w, err := c.walker(ctx, camp)
	if err != nil {
		return err
	}
	for {
		cands, err := w.next(ctx)
		if err != nil {
			return err
		}
		if cands.Done {
			break
		}
		b, err := c.Store.Mark(ctx, camp, cands)
		if err != nil {
			return err
		}
		if b.Stopped {
			return nil // cancelled meanwhile
		}
		// Whoever could never have been mailed is failed for that, not
		// for the give-up: the reason tells an operator what to fix.
		byReason := map[intake.FailReason][]intake.Recipient{}
		for _, rc := range b.Recipients {
			reason := mailable(rc)
			if reason == "" {
				reason = intake.ReasonGaveUp
			}
			byReason[reason] = append(byReason[reason], rc)
		}
		for reason, group := range byReason {
			if err := c.Store.Settle(ctx, camp, intake.OutcomeFailed, reason, group); err != nil {
				return err
			}
		}
		campaignMail.WithLabelValues(string(camp.Kind), "failed").Add(float64(len(b.Recipients)))
	}
	c.Log.Error("campaign gave up; whoever it did not reach is counted failed", "campaign", camp.ID)
	return c.Store.FinishCampaign(ctx, camp.ID)
}

// walker reads a campaign's people in the order a run marks them: the
// refused of earlier runs first, a batch at a time, then the walk on from
// its cursor.
type walker struct {
	store  Campaigns
	camp   *intake.Campaign
	n      int
	cursor string
	retry  []string
}

// walker starts reading camp where its last run left off.
func (c *Campaigner) walker(ctx context.Context, camp *intake.Campaign) (*walker, error) {
	n := c.Batch
	if n <= 0 || n > intake.MaxBatchSize {
		n = intake.MaxBatchSize
	}
	_, cursor, retry, err := c.Store.Walk(ctx, camp.ID)
	if err != nil {
		return nil, err
	}
	return &walker{store: c.Store, camp: camp, n: n, cursor: cursor, retry: retry}, nil
}

// next reads the next batch; Done when nobody is left.
func (w *walker) next(ctx context.Context) (*intake.Candidates, error) {
	if len(w.retry) > 0 {
		chunk := w.retry[:min(w.n, len(w.retry))]
		w.retry = w.retry[len(chunk):]
		return w.store.RetryCandidates(ctx, w.camp, chunk)
	}
	cands, err := w.store.Candidates(ctx, w.camp, w.cursor, w.n)
	if err == nil && !cands.Done {
		w.cursor = cands.Cursor
	}
	return cands, err
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
	// A run that crashed between marking and settling left people in
	// flight: perhaps sent, so counted failed and never sent again.
	if n, err := c.Store.SettleLost(ctx, camp); err != nil {
		return err
	} else if n > 0 {
		c.Log.Warn("campaign recipients left in flight by an earlier run counted failed (unknown_outcome)", "campaign", camp.ID, "recipients", n)
	}
	w, err := c.walker(ctx, camp)
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
			cands, readErr = w.next(readCtx)
			if readErr != nil || cands.Done {
				return
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
			c.settle(ctx, camp, intake.OutcomeRefused, "", b.recipients)
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
	// Every batch was settled, unless recording an outcome failed: those
	// are counted as lost rather than left open.
	if _, err := c.Store.SettleLost(ctx, camp); err != nil {
		return err
	}
	return c.Store.FinishCampaign(ctx, camp.ID)
}

// batch is one marked batch on its way to be sent.
type batch struct {
	recipients []intake.Recipient
	err        error
}

// maxBlamed bounds how many recipients of one message the provider may
// refuse one by one (each refusal names one, and the message goes again
// without them). Beyond it the refusals are not about individual people,
// and the rest of the group is failed as refused.
const maxBlamed = 20

// send mails one batch, one message per content language, and settles each
// recipient's mark by the outcome. Recipients the store could not read are
// failed alone first; those the mailable rule refuses, when a message is
// refused for them (see sendGroup). It returns an error that stops the run
// when the provider refused (retry later: the refused ones go first) or
// the outcome is unknown.
func (c *Campaigner) send(ctx context.Context, camp *intake.Campaign, r *renderer, recipients []intake.Recipient) error {
	groups := map[string][]intake.Recipient{}
	readable := c.failAlone(ctx, camp, recipients, func(rc intake.Recipient) intake.FailReason { return rc.Problem })
	for _, rc := range readable {
		l := r.lang(rc.Lang)
		if groups[l] == nil { // room for all: a batch is often one language, and growing it by doubling copied it twice over
			groups[l] = make([]intake.Recipient, 0, len(readable))
		}
		groups[l] = append(groups[l], rc)
	}
	var stop error
	for _, lang := range slices.Sorted(maps.Keys(groups)) {
		group := groups[lang]
		if stop != nil {
			c.settle(ctx, camp, intake.OutcomeRefused, "", group)
			continue
		}
		stop = c.sendGroup(ctx, camp, r, lang, group)
	}
	return stop
}

// failAlone fails those of group that why finds a reason for, each with
// that reason, and returns the others.
func (c *Campaigner) failAlone(ctx context.Context, camp *intake.Campaign, group []intake.Recipient, why func(intake.Recipient) intake.FailReason) []intake.Recipient {
	if !slices.ContainsFunc(group, func(rc intake.Recipient) bool { return why(rc) != "" }) {
		return group // nearly always: no copy of a thousand recipients
	}
	var rest []intake.Recipient
	failed := map[intake.FailReason][]intake.Recipient{}
	for _, rc := range group {
		if reason := why(rc); reason != "" {
			failed[reason] = append(failed[reason], rc)
		} else {
			rest = append(rest, rc)
		}
	}
	for _, reason := range slices.Sorted(maps.Keys(failed)) {
		c.Log.Warn("campaign recipients not mailable as stored; failed alone", "campaign", camp.ID, "reason", reason, "recipients", len(failed[reason]))
		c.settle(ctx, camp, intake.OutcomeFailed, reason, failed[reason])
	}
	return rest
}

// mailable is why rc cannot be mailed as stored, or "": the rule intake
// applies (mail.CheckAddress, mail.CheckName), checked again because data
// stored before intake applied it may break it, and the store's own finding
// (a contact it could not decrypt).
func mailable(rc intake.Recipient) intake.FailReason {
	switch {
	case rc.Problem != "":
		return rc.Problem
	case mail.CheckAddress(rc.Email) != nil:
		return intake.ReasonInvalidAddress
	case mail.CheckName(rc.Name) != nil:
		return intake.ReasonInvalidName
	}
	return ""
}

// sendGroup sends one language's message to group and settles them by the
// outcome; its error stops the run (see send). A message the driver refuses
// as invalid is sent again without those the mailable rule refuses, each
// failed alone. A permanent refusal that the provider blames on one
// recipient (mail.RecipientError) fails that one alone and sends the
// message again to the rest. A refused request sent nothing, so neither
// can double anyone.
func (c *Campaigner) sendGroup(ctx context.Context, camp *intake.Campaign, r *renderer, lang string, group []intake.Recipient) error {
	for blamed, checked := 0, false; len(group) > 0; {
		msg, err := r.message(lang, group)
		if err != nil { // a campaign that cannot render is refused for everyone
			c.settle(ctx, camp, intake.OutcomeFailed, intake.ReasonGaveUp, group)
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		err = c.Mailer.Send(ctx, msg)
		if errors.Is(err, mail.ErrInvalid) && !checked {
			// Refused before anything was sent (the driver's Validate
			// applies the mailable rule to every recipient): only now is
			// the rule checked here, to fail those who break it alone and
			// send the rest again. Checking every batch beforehand cost a
			// third address conversion a recipient.
			checked = true
			if rest := c.failAlone(ctx, camp, group, mailable); len(rest) < len(group) {
				group = rest
				continue
			}
		}
		permanent := integrations.KindOf(err) == integrations.Permanent
		if re, ok := errors.AsType[*mail.RecipientError](err); ok && permanent && re.Index >= 0 && re.Index < len(group) && blamed < maxBlamed {
			blamed++
			c.Log.Warn("campaign recipient refused by the provider; sending to the rest", "campaign", camp.ID, "err", err)
			c.settle(ctx, camp, intake.OutcomeFailed, intake.ReasonRefused, group[re.Index:re.Index+1])
			group = slices.Delete(slices.Clone(group), re.Index, re.Index+1)
			continue
		}
		switch {
		case err == nil:
			c.settle(ctx, camp, intake.OutcomeSent, "", group)
			return nil
		case permanent:
			reason := intake.ReasonRefused
			if errors.Is(err, mail.ErrInvalid) {
				reason = intake.ReasonInvalidMessage
			}
			c.Log.Error("campaign batch refused", "campaign", camp.ID, "recipients", len(group), "err", err)
			c.settle(ctx, camp, intake.OutcomeFailed, reason, group)
			return nil
		case integrations.Unsent(err):
			c.settle(ctx, camp, intake.OutcomeRefused, "", group)
			return err
		default: // timeout, reset: SendGrid may have taken it
			c.Log.Error("campaign batch outcome unknown; not sent again", "campaign", camp.ID, "recipients", len(group), "err", err)
			c.settle(ctx, camp, intake.OutcomeFailed, intake.ReasonUnknownOutcome, group)
			return err
		}
	}
	return nil
}

// settle records an outcome (with its reason when failed); a failure to
// record it is logged, since the marks already keep anyone from a second
// email, and the people stay in flight, to be counted as lost.
func (c *Campaigner) settle(ctx context.Context, camp *intake.Campaign, outcome intake.Outcome, reason intake.FailReason, group []intake.Recipient) {
	campaignMail.WithLabelValues(string(camp.Kind), map[intake.Outcome]string{intake.OutcomeSent: "sent",
		intake.OutcomeRefused: "refused", intake.OutcomeFailed: "failed"}[outcome]).Add(float64(len(group)))
	// Not the task's context: a worker shutting down must still record
	// what it did not send, or those people are lost to the retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.Store.Settle(ctx, camp, outcome, reason, group); err != nil {
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

// render renders the campaign's content in lang, with UnsubscribeSlot
// where each recipient's token goes.
func (r *renderer) render(lang string) (templates.Email, error) {
	if r.camp.Kind == intake.KindBreachNotice {
		return templates.RenderBreach(templates.BreachEmail{Lang: templates.Lang(lang),
			Message: r.camp.Content.Message[lang], PolicyURL: policyURLFor(r.c.PolicyURLs, r.c.PolicyURL, lang),
			Company: r.c.Company})
	}
	return templates.RenderCampaign(templates.CampaignEmail{Lang: templates.Lang(lang),
		Subject: r.camp.Content.Subject[lang], HTML: r.camp.Content.HTML[lang], Text: r.camp.Content.Text[lang],
		UnsubscribeURL: r.unsubscribeURL(lang, templates.UnsubscribeSlot),
		PolicyURL:      policyURLFor(r.c.PolicyURLs, r.c.PolicyURL, lang), Company: r.c.Company})
}

// Preview renders camp's content in lang as a recipient gets it, the
// wrapper and its unsubscribe link included, with the token a test send
// carries ("-": nobody to unsubscribe). The console shows it before
// anything is sent, so it goes through the very renderer that sends.
func (c *Campaigner) Preview(camp *intake.Campaign, lang string) (templates.Email, error) {
	r := &renderer{c: c, camp: camp}
	e, err := r.render(lang)
	if err != nil {
		return templates.Email{}, err
	}
	slot := func(s string) string { return strings.ReplaceAll(s, templates.UnsubscribeSlot, "-") }
	e.HTML, e.Text = slot(e.HTML), slot(e.Text)
	return e, nil
}

// message builds the email of one language to recipients: marketing mail
// carries each person's own List-Unsubscribe (RFC 8058 one-click) and the
// unsubscribe group; a notice is transactional and carries neither.
func (r *renderer) message(lang string, recipients []intake.Recipient) (mail.Message, error) {
	e, ok := r.emails[lang]
	if !ok {
		var err error
		if e, err = r.render(lang); err != nil {
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
	link := r.unsubscribeURL(lang, "") // once a message: each recipient adds their token
	for i, rc := range recipients {
		token := "-"
		if rc.Person != "" { // a test send has no person to unsubscribe
			token = r.c.Store.UnsubscribeToken(rc.Person)
		}
		m.PerRecipient[i] = mail.Personal{
			Headers:       map[string]string{"List-Unsubscribe": "<" + link + token + ">"},
			Substitutions: map[string]string{templates.UnsubscribeSlot: token},
		}
	}
	return m, nil
}
