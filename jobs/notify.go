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
	"github.com/paymtech/leadgate/integrations/crm"
)

// PurposeNotify is recorded in the disclosure log when sales is told of a lead.
const PurposeNotify = "notify sales of the request (privacy policy, section 4)"

// NotifySales is the payload of a lead:notify task: the lead id only.
type NotifySales struct {
	LeadID string `json:"lead_id"`
}

// Kind names the task type.
func (NotifySales) Kind() string { return "lead:notify" }

// NewNotifySalesTask returns the task that tells sales about lead id. It is
// separate from lead:route: a failing notification never blocks or repeats
// the CRM push.
func NewNotifySalesTask(id string) *asynq.Task {
	payload, _ := json.Marshal(NotifySales{LeadID: id})
	return asynq.NewTask(NotifySales{}.Kind(), payload,
		asynq.TaskID(notifyTaskID(id)), asynq.Queue(QueueLeads),
		// The route queues this just before it records its outcome: a second
		// later the lead is routed, and the notifier rarely has to wait.
		asynq.ProcessIn(time.Second),
		asynq.MaxRetry(25), asynq.Timeout(time.Minute))
}

func notifyTaskID(id string) string { return "lead:notify:" + id }

// SalesChannel is where salespeople hear of new leads (a Telegram chat).
type SalesChannel interface {
	Name() string
	Notify(ctx context.Context, l crm.Lead, r crm.Receipt) error
}

// errNotRoutedYet makes a notification wait for the route that queued it to
// record its outcome (it queues the notification first, so a crash cannot
// lose it).
var errNotRoutedYet = errors.New("lead not recorded as routed yet")

// Notifier tells sales about routed leads.
type Notifier struct {
	Leads   Leads
	Channel SalesChannel
	Now     func() time.Time
	Log     *slog.Logger
}

// ProcessTask handles a lead:notify task.
func (n *Notifier) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var args NotifySales
	if err := json.Unmarshal(t.Payload(), &args); err != nil || args.LeadID == "" {
		return fmt.Errorf("malformed %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	lead, err := n.Leads.Get(ctx, args.LeadID)
	switch {
	case intake.ErrorCode(err) == intake.ENotFound:
		return nil // erased meanwhile
	case err != nil:
		return err
	case lead.State == intake.Received:
		return errNotRoutedYet
	case lead.State != intake.Routed:
		return nil // blocked or failed meanwhile: nothing to tell
	}
	receipt := crm.Receipt{System: lead.Route.System, Ref: lead.Route.Ref, URL: lead.Route.URL}
	if err := n.Channel.Notify(ctx, Document(lead), receipt); err != nil {
		return err
	}
	return n.Leads.LogTransfer(ctx, lead.ID, intake.Transfer{Recipient: n.Channel.Name(), At: n.Now().UTC(),
		Purpose: PurposeNotify})
}
