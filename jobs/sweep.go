package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// sweepGrace is how long a lead may sit Received before the sweeper assumes
// its task was lost (a crash between store and enqueue).
const sweepGrace = 2 * time.Minute

// Sweeper queues leads a crash left Received without a task. The task id is
// derived from the lead id, so a lead whose task exists is not queued twice.
type Sweeper struct {
	Leads Leads
	Queue interface {
		EnqueueLead(ctx context.Context, id string) error
	}
	Now func() time.Time
	Log *slog.Logger
}

// sweepPage is how many leads one Redis call of the sweeper lists.
const sweepPage = 500

// ProcessTask handles a lead:sweep task: the clock's, every minute, for
// leads Received past the grace.
func (s *Sweeper) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	return s.Sweep(ctx, s.Now().Add(-sweepGrace))
}

// Sweep makes sure every lead Received before t has a task. It pages
// through them all (a CRM outage can leave thousands waiting on live
// retries; a lost one among them must still be found), and carries on past
// a lead it cannot queue. Recovery calls it as soon as Redis answers after
// an outage or a restart, with t now: every lead still received, since a
// restart may have lost tasks queued long before it.
func (s *Sweeper) Sweep(ctx context.Context, before time.Time) error {
	var errs []error
	checked := 0
	for {
		ids, err := s.Leads.ReceivedBefore(ctx, before, checked, sweepPage)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			if err := s.Queue.EnqueueLead(ctx, id); err != nil {
				errs = append(errs, err)
			}
		}
		checked += len(ids)
		if len(ids) < sweepPage {
			break
		}
	}
	if checked > 0 {
		s.Log.Info("sweep: made sure received leads are queued", "checked", checked, "failed", len(errs))
	}
	return errors.Join(errs...)
}
