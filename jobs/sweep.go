package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
)

// SweepLeads is the payload of the clock's lead:sweep task.
type SweepLeads struct{}

// Kind names the task type.
func (SweepLeads) Kind() string { return "lead:sweep" }

// sweepGrace is how long a lead may sit Received before the sweeper assumes
// its task was lost (a crash between store and enqueue).
const sweepGrace = 2 * time.Minute

// Sweeper queues leads a crash left Received without a task. The task id is
// derived from the lead id, so a lead whose task exists is not queued twice.
type Sweeper struct {
	Leads Leads
	Queue intake.Queue
	Now   func() time.Time
	Log   *slog.Logger
}

// ProcessTask handles a lead:sweep task.
func (s *Sweeper) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	ids, err := s.Leads.ReceivedBefore(ctx, s.Now().Add(-sweepGrace), 1000)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.Queue.EnqueueLead(ctx, id); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		s.Log.Info("sweep: re-queued received leads", "count", len(ids))
	}
	return nil
}
