package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
)

// Queue enqueues lead tasks; it is the intake.Queue of web processes.
type Queue struct {
	client    *asynq.Client
	inspector *asynq.Inspector
}

// NewQueue returns a Queue over an asynq client and inspector.
func NewQueue(c *asynq.Client, i *asynq.Inspector) *Queue { return &Queue{client: c, inspector: i} }

// EnqueueCampaign queues the fan-out of a campaign or breach notice. One
// task walks all its recipients; a retry or a restarted worker resumes where
// the marks say it stopped.
func (q *Queue) EnqueueCampaign(ctx context.Context, id string) error {
	return q.enqueueIn(ctx, QueueMail, NewSendCampaignTask(id), sendCampaignTaskID(id))
}

// EnqueueCRMUpdate queues the crm:update task of a rectified lead. A second
// rectification while one is queued is carried by the queued one: it reads
// the lead when it runs.
func (q *Queue) EnqueueCRMUpdate(ctx context.Context, id string) error {
	return q.enqueueIn(ctx, QueueMaintenance, NewUpdateCRMLeadTask(id, time.Now()), crmUpdateTaskID(id))
}

// EnqueueCRMErase queues the crm:erase task of an erased lead.
func (q *Queue) EnqueueCRMErase(ctx context.Context, id, system, ref string) error {
	return q.enqueueIn(ctx, QueueMaintenance, NewEraseCRMLeadTask(id, system, ref, time.Now()), crmEraseTaskID(id))
}

// EnqueueLead queues the lead:route task of id. A live task for the lead
// (pending, scheduled, retrying or running) is left to do the work; the
// archived task of a failed attempt is replaced, so a redriven lead — or a
// received one the sweeper finds — is never blocked by it.
func (q *Queue) EnqueueLead(ctx context.Context, id string) error {
	return q.enqueue(ctx, NewRouteLeadTask(id), routeTaskID(id))
}

// EnqueueNotify queues the sales notifications of a routed lead, one task
// per channel.
func (q *Queue) EnqueueNotify(ctx context.Context, id string, channels ...string) error {
	for _, c := range channels {
		if err := q.enqueue(ctx, NewNotifySalesTask(id, c), notifyTaskID(id, c)); err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) enqueue(ctx context.Context, t *asynq.Task, taskID string) error {
	return q.enqueueIn(ctx, QueueLeads, t, taskID)
}

// enqueueIn enqueues t, whose id is taskID, on queue; a live task of that id
// is left to do the work and an archived one is replaced.
func (q *Queue) enqueueIn(ctx context.Context, queue string, t *asynq.Task, taskID string) error {
	_, err := q.client.EnqueueContext(ctx, t)
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	info, err := q.inspector.GetTaskInfo(queue, taskID)
	if err == nil && info.State != asynq.TaskStateArchived {
		return nil
	}
	if err := q.inspector.DeleteTask(queue, taskID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return err
	}
	if _, err := q.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	return nil
}

// EnqueueAck queues the acknowledgement of a lead that passed the risk check
// when the routing task did not send it (Welcomer.QueueAck, the fallback of
// AcknowledgeFirst).
func (q *Queue) EnqueueAck(ctx context.Context, id string) error {
	return q.enqueue(ctx, newMailTask(AckLead{}.Kind(), ackTaskID(id), id), ackTaskID(id))
}

// EnqueueOptin queues the double opt-in request of a lead whose person
// ticked the marketing box (the drain, for an admission entry). Whether it
// goes out is decided when it is sent, by the person's pending state — not
// this lead's box or DOUBLE_OPT_IN: a repeat may have added the opt-in, and
// a suppressed person must confirm afresh even without double opt-in.
func (q *Queue) EnqueueOptin(ctx context.Context, id string) error {
	return q.enqueue(ctx, newMailTask(RequestOptin{}.Kind(), optinTaskID(id), id), optinTaskID(id))
}
