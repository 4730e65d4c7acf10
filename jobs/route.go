// Package jobs is leadgate's asynq side: typed task payloads that carry only
// ids, the handlers that act on them, the retry policy of outside calls, and
// the clock's schedule.
package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/intake/redisstore/delivery"
	"github.com/paymtech/leadgate/intake/risk"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs/routing"
)

// PurposeSales is recorded in the disclosure log when a lead goes to sales:
// the first purpose of the privacy policy's section 4.
const PurposeSales = "consider the request to connect services (privacy policy, section 4)"

// Leads is what the jobs need of the lead store.
type Leads interface {
	Get(ctx context.Context, id string) (*intake.Lead, error)
	// GetForRouting is Get after the lead's 24 h repeat counts (IP,
	// person, BIN/IIN) are taken, once a lead: intake leaves them to the
	// router, after the 202.
	GetForRouting(ctx context.Context, id string) (*intake.Lead, error)
	Transition(ctx context.Context, id string, t intake.Transition) (intake.State, error)
	ReceivedBefore(ctx context.Context, t time.Time, offset, n int) ([]string, error)
	LogTransfer(ctx context.Context, id string, t intake.Transfer) error
}

// CRM is a sales system leads are handed to. Push must be idempotent per
// lead id: a retry after a crash must not create a second CRM lead. A
// driver that looks an earlier delivery up first says so (crm.Finder);
// through any other, pushing a lead again delivers it again.
type CRM interface {
	Push(ctx context.Context, l crm.Lead) (crm.Receipt, error)
}

// Pushes are the marks set on a lead before each CRM push (delivery.Pushes).
type Pushes interface {
	// Begin records a as lead id's assignment unless it has one (a nil:
	// nothing to record; a retried route keeps its salesperson), marks the
	// lead, still Received, as being pushed now and returns when an earlier
	// push of it began (zero for the first) and the assignment it has — or,
	// marking nothing, that the CRM-gone flag is set (Workers); ENotFound
	// when the lead is gone, EConflict when it is no longer Received.
	// With optin, a lead whose request asks for a confirmation link has
	// its opt-in request queued with the first mark.
	Begin(ctx context.Context, id string, optin bool, a *intake.Assignment) (delivery.Push, error)
}

// Workers are the router's shared records (ops.Workers): the CRM-gone
// flag — set when the CRM endpoint answered 410 Gone, so no lead is sent
// there again until a worker restarts (with, presumably, a fixed endpoint);
// Pushes.Begin reads it — and the teams' round-robin turns.
type Workers interface {
	routing.Turns
	MarkCRMGone(ctx context.Context, at time.Time) (first bool, err error)
}

// Router hands received leads to sales: it scores them for abuse, assigns a
// salesperson, pushes them to the CRM and records the outcome.
type Router struct {
	Leads     Leads
	CRM       CRM
	Pushes    Pushes         // marked before each push, so a redo knows it is one
	Rules     *routing.Rules // who gets which lead
	Workers   Workers        // the round-robin turns and the CRM-gone flag
	Threshold int            // RISK_REVIEW_THRESHOLD: leads scoring at least this go to review
	// Notify queues the sales notification of a routed lead; nil when no
	// notification channel is configured.
	Notify func(ctx context.Context, leadID string) error
	// Welcome acknowledges the lead to the person once it passed the risk
	// check, so bots are never mailed for (Welcomer.AcknowledgeFirst: sent
	// here, or queued when that fails); nil when no mail is sent. The
	// opt-in request, which few leads ask for, is queued only for those, by
	// the push mark (Pushes.Begin) or, when no push was begun or a repeat
	// asked meanwhile, by the move to routed or failed
	// (intake.Transition.QueueOptin): never as a task per lead.
	Welcome func(ctx context.Context, lead *intake.Lead) error
	// Erase queues the CRM deletion of a lead erased while the CRM was
	// taking it (the erasure found no CRM copy to delete yet); nil leaves
	// that copy to an operator.
	Erase  func(ctx context.Context, id, system, ref string) error
	MaxAge time.Duration // RETRY_MAX_AGE: no retries after this since the attempt began
	Now    func() time.Time
	Log    *slog.Logger
}

// ProcessTask handles a lead:route task.
func (rt *Router) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var args RouteLead
	if err := json.Unmarshal(t.Payload(), &args); err != nil || args.LeadID == "" {
		return fmt.Errorf("malformed %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	lead, err := rt.Leads.GetForRouting(ctx, args.LeadID)
	switch code := intake.ErrorCode(err); {
	case err == nil:
	case code == intake.ENotFound:
		rt.Log.Info("lead gone before routing (erased or purged)", "lead", args.LeadID)
		return nil
	case code == "": // not the store's own error: the record itself is broken
		return rt.unreadable(ctx, args.LeadID, err)
	default:
		return err // Redis unavailable: retried
	}
	if lead.State != intake.Received {
		return nil // handled by an earlier delivery of this task
	}
	lead.Risk = Assess(lead)
	held := !lead.Released && lead.Risk.Score >= rt.Threshold
	// Whatever failed before (Redis, the rules), nothing retries past MaxAge.
	if retried, _ := asynq.GetRetryCount(ctx); retried > 0 && rt.Now().Sub(lead.Route.Since) >= rt.MaxAge {
		return rt.pushFailed(ctx, lead, !held, &integrations.Error{System: "leadgate", Op: "route", Code: "retry window over",
			Kind: integrations.Permanent})
	}
	if held {
		return rt.holdForReview(ctx, lead)
	}
	if rt.Welcome != nil {
		if err := rt.Welcome(ctx, lead); err != nil {
			return err
		}
	}
	var chosen *intake.Assignment // recorded by Begin, in the same call as the push mark
	if lead.Assignment == nil {
		a, err := rt.Rules.Route(ctx, rt.Workers, routing.Lead{EntityType: lead.EntityType, Products: lead.Products,
			Lang: lead.Lang, Phone: lead.Phone, UTMSource: lead.Meta.UTMSource})
		if err != nil {
			return err
		}
		chosen = &a
	}
	push, err := rt.Pushes.Begin(ctx, lead.ID, rt.Welcome != nil, chosen)
	switch intake.ErrorCode(err) {
	case "":
	case intake.ENotFound:
		rt.Log.Info("lead gone before routing (erased or purged)", "lead", lead.ID)
		return nil
	case intake.EConflict:
		return nil // blocked, or routed by another delivery of this task, meanwhile
	default:
		return err
	}
	if push.CRMGone {
		return rt.pushFailed(ctx, lead, true, &integrations.Error{System: "crm", Op: "push (endpoint disabled after 410 Gone)",
			Status: 410, Code: integrations.CodeGone, Kind: integrations.Permanent})
	}
	if chosen != nil {
		lead.Assignment = &push.Assignment // an earlier delivery's, should it have recorded one meanwhile
	}
	receipt, err := rt.CRM.Push(ctx, Document(lead))
	if err != nil {
		return rt.pushFailed(ctx, lead, true, err)
	}
	if !push.Earlier.IsZero() {
		rt.redone(lead.ID, receipt.System, push.Earlier)
	}
	// From here on the lead is with the CRM: a failure to record that would
	// have the task push it again, so the recording waits out a Redis
	// outage for as long as the task may run.
	if rt.Notify != nil { // before the state changes, so a crash cannot lose it; the notifier waits for the state
		err := untilRecorded(ctx, func() error {
			if err := rt.Notify(ctx, lead.ID); err != nil {
				return intake.Unavailable("queue sales notification", err) // only the queue can fail it
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	now := rt.Now().UTC()
	var state intake.State
	err = untilRecorded(ctx, func() (err error) {
		state, err = rt.Leads.Transition(ctx, lead.ID, intake.Transition{
			From: intake.Received, To: intake.Routed, Risk: &lead.Risk,
			Route:      intake.Route{System: receipt.System, Ref: receipt.Ref, URL: receipt.URL, At: now},
			Transfer:   &intake.Transfer{Recipient: "crm:" + receipt.System, At: now, Purpose: PurposeSales, Ref: receipt.Ref},
			QueueOptin: rt.Welcome != nil,
		})
		return err
	})
	if intake.ErrorCode(err) == intake.ENotFound {
		rt.Log.Warn("lead erased while the CRM took it; asking the CRM to delete its copy", "lead", lead.ID, "crm", receipt.System)
		if rt.Erase == nil {
			return nil
		}
		return rt.Erase(ctx, lead.ID, receipt.System, receipt.Ref)
	}
	if err != nil {
		return err // retried: the CRM push is idempotent, so the lead is not created twice
	}
	rt.Log.Info("lead routed", "lead", lead.ID, "crm", receipt.System, "rule", lead.Assignment.Rule,
		"team", lead.Assignment.Team, "state", state)
	return nil
}

// redone notes a push of a lead that an earlier attempt, begun at earlier,
// may already have delivered: its worker died, or its outcome could not be
// recorded. A CRM that looks the lead up first (crm.Finder) returned that
// earlier delivery; any other got the lead again — the webhook's receiver
// deduplicates by webhook-id — which leadgate_crm_redeliveries_total counts.
func (rt *Router) redone(id, system string, earlier time.Time) {
	if f, ok := rt.CRM.(crm.Finder); ok && f.FindsEarlier() {
		rt.Log.Info("lead pushed again; the CRM looked up the earlier delivery", "lead", id, "crm", system, "earlier", earlier.UTC())
		return
	}
	crmRedeliveries.WithLabelValues(system).Inc()
	rt.Log.Warn("lead delivered again: an earlier attempt may have delivered it; the receiver deduplicates", "lead", id, "crm", system,
		"earlier", earlier.UTC())
}

// recordTick is how often untilRecorded tries again.
const recordTick = 250 * time.Millisecond

// untilRecorded calls record until it succeeds, fails for another reason
// than Redis being unavailable, or ctx ends (asynq ends it with the task's
// deadline or lease).
func untilRecorded(ctx context.Context, record func() error) error {
	for {
		err := record()
		if err == nil || !redisFailure(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(recordTick):
		}
	}
}

// unreadable fails a lead whose record cannot be opened (a data key missing
// from LEADGATE_OLD_DATA_KEYS, say): retrying cannot help, an operator can.
func (rt *Router) unreadable(ctx context.Context, id string, err error) error {
	state, terr := rt.Leads.Transition(ctx, id, intake.Transition{From: intake.Received, To: intake.Failed,
		Route: intake.Route{Error: "lead record unreadable: " + err.Error(), At: rt.Now().UTC()}})
	if terr != nil {
		return terr
	}
	if state == intake.Failed {
		routeFailures.Inc()
		rt.Log.Error("lead failed: its record cannot be read; check LEADGATE_OLD_DATA_KEYS, then redrive", "lead", id, "err", err)
	}
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}

// holdForReview parks a suspicious lead for a person to look at before it
// reaches sales (POST /v1/admin/leads/{id}/redrive releases it).
func (rt *Router) holdForReview(ctx context.Context, lead *intake.Lead) error {
	state, err := rt.Leads.Transition(ctx, lead.ID, intake.Transition{From: intake.Received, To: intake.Review, Risk: &lead.Risk})
	if err != nil {
		return err
	}
	if state == intake.Review {
		leadsHeld.Inc()
		rt.Log.Warn("lead held for review", "lead", lead.ID, "risk", lead.Risk.Score, "signals", lead.Risk.Signals)
	}
	return nil
}

// pushFailed decides between another try and giving up: a permanent refusal,
// or retries past MaxAge, marks the lead failed for an operator to see. A
// failed lead that passed the risk check is still mailed about (Welcome),
// as a repeat of it is (accept.lua): its opt-in request goes with the
// failure.
func (rt *Router) pushFailed(ctx context.Context, lead *intake.Lead, passed bool, err error) error {
	if integrations.IsGone(err) {
		if first, _ := rt.Workers.MarkCRMGone(ctx, rt.Now()); first {
			crmGone.Inc()
			rt.Log.Error("CRM endpoint answered 410 Gone: it is disabled; fix it, restart the workers, then redrive the failed leads",
				"err", err)
		}
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	permanent := integrations.KindOf(err) == integrations.Permanent
	tooOld := rt.Now().Sub(lead.Route.Since) >= rt.MaxAge
	if !permanent && !tooOld && (!ok || retried < maxRetry) {
		rt.Log.Warn("CRM push failed; will retry", "lead", lead.ID, "retried", retried, "err", err)
		return err
	}
	state, terr := rt.Leads.Transition(ctx, lead.ID, intake.Transition{From: intake.Received, To: intake.Failed,
		Risk: &lead.Risk, Route: intake.Route{Error: err.Error(), At: rt.Now().UTC()}, QueueOptin: passed && rt.Welcome != nil})
	if terr != nil {
		return terr // retried, so the failure is recorded once Redis is back
	}
	if state != intake.Failed { // blocked or redriven meanwhile: not ours to fail
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	routeFailures.Inc()
	rt.Log.Error("lead failed: not handed to sales; redrive it once the cause is fixed",
		"lead", lead.ID, "permanent", permanent, "retried", retried, "err", err)
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}

// Assess scores a lead for abuse from what intake observed (privacy policy 2.5).
func Assess(l *intake.Lead) intake.Risk {
	key, _ := form.NormalizeEmail(l.Email) // IDNA ASCII, as the disposable list is
	_, domain, _ := strings.Cut(key, "@")
	a := risk.Assess(risk.Observation{
		EmailDomain: domain, UserAgent: l.Meta.UserAgent, FormAge: l.Observed.FormAge,
		FormTokenInvalid: l.Observed.FormTokenInvalid, HoneypotNearMiss: l.Observed.HoneypotNearMiss,
		ScriptRan: l.Observed.ScriptRan, BrowserPost: l.Observed.BrowserPost,
		SameIP: l.Observed.SameIP, SameEmail: l.Observed.SameEmail, SameTaxID: l.Observed.SameTaxID,
	})
	return intake.Risk{Score: a.Score, Signals: a.Signals}
}

// Document is a lead as a CRM receives it.
func Document(l *intake.Lead) crm.Lead {
	d := crm.Lead{
		ID: l.ID, EntityType: l.EntityType, Name: l.Name, Phone: l.Phone, Email: l.Email, TaxID: l.TaxID,
		Products: l.Products, Message: l.Message, Lang: l.Lang, ReceivedAt: l.CreatedAt,
		Consent: crm.Consent{Processing: l.Consent.Processing, Marketing: l.Consent.Marketing,
			PolicyVersion: l.Consent.PolicyVersion, PolicyURL: l.Consent.PolicyURL, GivenAt: l.Consent.GivenAt},
		Metadata: l.Meta,
		Risk:     l.Risk,
	}
	if l.Assignment != nil {
		a := *l.Assignment
		d.Assignment = &a
	}
	return d
}

var _ intake.Queue = (*Queue)(nil)
