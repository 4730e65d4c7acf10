// Package jobs is leadgate's asynq side: typed task payloads that carry only
// ids, the handlers that act on them, the retry policy of outside calls, and
// the clock's schedule.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// Queues the workers serve, with their weights.
const (
	QueueLeads       = "leads"       // handing leads to sales: first in line
	QueueMaintenance = "maintenance" // sweeps and purges
)

// PurposeSales is recorded in the disclosure log when a lead goes to sales:
// the first purpose of the privacy policy's section 4.
const PurposeSales = "consider the request to connect services (privacy policy, section 4)"

// RouteLead is the payload of a lead:route task: the lead id, nothing personal.
type RouteLead struct {
	LeadID string `json:"lead_id"`
}

// Kind names the task type; stable, it is stored in Redis with every task.
func (RouteLead) Kind() string { return "lead:route" }

// maxRouteRetries is a backstop only: RETRY_MAX_AGE is what ends retries.
const maxRouteRetries = 500

// NewRouteLeadTask returns the task that hands lead id to sales. Its task id
// is derived from the lead id, so enqueuing it twice is harmless.
func NewRouteLeadTask(id string) *asynq.Task {
	payload, _ := json.Marshal(RouteLead{LeadID: id})
	return asynq.NewTask(RouteLead{}.Kind(), payload,
		asynq.TaskID("lead:route:"+id), asynq.Queue(QueueLeads),
		asynq.MaxRetry(maxRouteRetries), asynq.Timeout(2*time.Minute))
}

// Leads is what the jobs need of the lead store.
type Leads interface {
	Get(ctx context.Context, id string) (*intake.Lead, error)
	Transition(ctx context.Context, id string, t intake.Transition) (intake.State, error)
	ReceivedBefore(ctx context.Context, t time.Time, n int) ([]string, error)
}

// CRM is a sales system leads are handed to. Push must be idempotent per
// lead id: a retry after a crash must not create a second CRM lead.
type CRM interface {
	Push(ctx context.Context, l crm.Lead) (crm.Receipt, error)
}

// Router hands received leads to the CRM and records the outcome.
type Router struct {
	Leads  Leads
	CRM    CRM
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
	lead, err := rt.Leads.Get(ctx, args.LeadID)
	if intake.ErrorCode(err) == intake.ENotFound {
		rt.Log.Info("lead gone before routing (erased or purged)", "lead", args.LeadID)
		return nil
	} else if err != nil {
		return err
	}
	if lead.State != intake.Received {
		return nil // handled by an earlier delivery of this task
	}
	receipt, err := rt.CRM.Push(ctx, Document(lead))
	if err != nil {
		return rt.pushFailed(ctx, lead, err)
	}
	now := rt.Now().UTC()
	state, err := rt.Leads.Transition(ctx, lead.ID, intake.Transition{
		From: intake.Received, To: intake.Routed,
		Route:    intake.Route{System: receipt.System, Ref: receipt.Ref, At: now},
		Transfer: &intake.Transfer{Recipient: "crm:" + receipt.System, At: now, Purpose: PurposeSales, Ref: receipt.Ref},
	})
	if err != nil {
		return err // retried: the CRM push is idempotent, so the lead is not created twice
	}
	rt.Log.Info("lead routed", "lead", lead.ID, "crm", receipt.System, "state", state)
	return nil
}

// pushFailed decides between another try and giving up: a permanent refusal,
// or retries past MaxAge, marks the lead failed for an operator to see.
func (rt *Router) pushFailed(ctx context.Context, lead *intake.Lead, err error) error {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	permanent := integrations.KindOf(err) == integrations.Permanent
	tooOld := rt.Now().Sub(lead.Route.Since) >= rt.MaxAge
	if !permanent && !tooOld && (!ok || retried < maxRetry) {
		rt.Log.Warn("CRM push failed; will retry", "lead", lead.ID, "retried", retried, "err", err)
		return err
	}
	state, terr := rt.Leads.Transition(ctx, lead.ID, intake.Transition{From: intake.Received, To: intake.Failed,
		Route: intake.Route{Error: err.Error(), At: rt.Now().UTC()}})
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

// Document is a lead as a CRM receives it.
func Document(l *intake.Lead) crm.Lead {
	return crm.Lead{
		ID: l.ID, EntityType: l.EntityType, Name: l.Name, Phone: l.Phone, Email: l.Email, TaxID: l.TaxID,
		Products: l.Products, Message: l.Message, Lang: l.Lang, ReceivedAt: l.CreatedAt,
		Consent: crm.Consent{Processing: l.Consent.Processing, Marketing: l.Consent.Marketing,
			PolicyVersion: l.Consent.PolicyVersion, PolicyURL: l.Consent.PolicyURL, GivenAt: l.Consent.GivenAt},
		Metadata: crm.Metadata{IP: l.Meta.IP, UserAgent: l.Meta.UserAgent, Browser: l.Meta.Browser, OS: l.Meta.OS,
			Timezone: l.Meta.Timezone, PageURL: l.Meta.PageURL, UTMSource: l.Meta.UTMSource,
			UTMMedium: l.Meta.UTMMedium, UTMCampaign: l.Meta.UTMCampaign, Cookies: l.Meta.Cookies},
	}
}

// Queue enqueues lead tasks; it is the intake.Queue of web processes.
type Queue struct {
	client *asynq.Client
}

var _ intake.Queue = (*Queue)(nil)

// NewQueue returns a Queue over an asynq client.
func NewQueue(c *asynq.Client) *Queue { return &Queue{client: c} }

// EnqueueLead queues the lead:route task of id; a task already queued for
// the lead is success.
func (q *Queue) EnqueueLead(ctx context.Context, id string) error {
	_, err := q.client.EnqueueContext(ctx, NewRouteLeadTask(id))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}
