package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// PurposeNotify is recorded in the disclosure log when sales is told of a lead.
const PurposeNotify = "notify sales of the request (privacy policy, section 4)"

// SalesChannel is where salespeople hear of new leads: a Telegram chat, an
// email address.
type SalesChannel interface {
	Name() string // stable: it names the channel in tasks and the disclosure log
	Notify(ctx context.Context, l crm.Lead, r crm.Receipt) error
}

// errNotRoutedYet makes a notification wait for the route that queued it to
// record its outcome (it queues the notification first, so a crash cannot
// lose it).
var errNotRoutedYet = errors.New("lead not recorded as routed yet")

// Notifier tells sales about routed leads.
type Notifier struct {
	Leads    Leads
	Channels []SalesChannel
	Now      func() time.Time
	Log      *slog.Logger
}

// Names lists the channels' names, for queuing a task per channel.
func (n *Notifier) Names() []string {
	names := make([]string, len(n.Channels))
	for i, c := range n.Channels {
		names[i] = c.Name()
	}
	return names
}

// ProcessTask handles a lead:notify task.
func (n *Notifier) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var args NotifySales
	if err := json.Unmarshal(t.Payload(), &args); err != nil || args.LeadID == "" {
		return fmt.Errorf("malformed %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	i := slices.IndexFunc(n.Channels, func(c SalesChannel) bool { return c.Name() == args.Channel })
	if i < 0 { // the channel was configured away since the task was queued
		return fmt.Errorf("no sales channel %q: %w", args.Channel, asynq.SkipRetry)
	}
	channel := n.Channels[i]
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
	if err := channel.Notify(ctx, Document(lead), receipt); err != nil {
		if integrations.KindOf(err) == integrations.Permanent { // a chat not found, a bad address: recorded, not retried
			n.Log.Error("sales notification refused", "lead", lead.ID, "channel", channel.Name(), "err", err)
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return err
	}
	// The record waits while Redis is away (untilRecorded); a failure past
	// the task's deadline retries the task, and sales may get the message
	// twice: better than a disclosure missing from the log.
	at := n.Now().UTC()
	return untilRecorded(ctx, func() error {
		return n.Leads.LogTransfer(ctx, lead.ID, intake.Transfer{Recipient: channel.Name(), At: at, Purpose: PurposeNotify})
	})
}
