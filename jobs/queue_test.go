package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/jobs"
)

const queueLeadID = "01959a3c-8f00-7000-8000-000000000001"

// taskState returns the state of the task with id in the leads queue, or
// 0 when there is none.
func (e *redisEnv) taskState(t *testing.T, id string) asynq.TaskState {
	t.Helper()
	info, err := e.insp.GetTaskInfo(jobs.QueueLeads, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return 0
	} else if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	return info.State
}

func TestQueueEnqueueLead(t *testing.T) {
	t.Parallel()
	const taskID = "lead:route:" + queueLeadID
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *redisEnv)
		want  asynq.TaskState
	}{
		// A failed attempt's task is kept archived under the lead's task id:
		// it must not block a redrive.
		{"archived", func(t *testing.T, e *redisEnv) {
			if _, err := e.client.Enqueue(jobs.NewRouteLeadTask(queueLeadID)); err != nil {
				t.Fatal(err)
			}
			if err := e.insp.ArchiveTask(jobs.QueueLeads, taskID); err != nil {
				t.Fatalf("ArchiveTask: %v", err)
			}
		}, asynq.TaskStatePending},
		{"pending", func(t *testing.T, e *redisEnv) {
			if err := e.queue.EnqueueLead(context.Background(), queueLeadID); err != nil {
				t.Fatal(err)
			}
		}, asynq.TaskStatePending},
		// A live task does the work; it is not replaced.
		{"scheduled", func(t *testing.T, e *redisEnv) {
			if _, err := e.client.Enqueue(jobs.NewRouteLeadTask(queueLeadID), asynq.ProcessIn(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, asynq.TaskStateScheduled},
		// The queue itself does not exist yet in a fresh Redis.
		{"none", func(*testing.T, *redisEnv) {}, asynq.TaskStatePending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setupRedis(t, time.Now)
			tc.setup(t, e)

			if err := e.queue.EnqueueLead(context.Background(), queueLeadID); err != nil {
				t.Fatalf("EnqueueLead: %v", err)
			}

			info, err := e.insp.GetTaskInfo(jobs.QueueLeads, taskID)
			if err != nil {
				t.Fatalf("GetTaskInfo: %v", err)
			}
			if info.State != tc.want || info.Type != "lead:route" || info.MaxRetry != 500 {
				t.Errorf("task = %s %s, max retry %d; want a %s lead:route with the usual options", info.Type, info.State, info.MaxRetry, tc.want)
			}
		})
	}
}

func TestQueueEnqueueNotify(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	for range 2 { // the second enqueue is a harmless no-op
		if err := e.queue.EnqueueNotify(context.Background(), queueLeadID, "telegram"); err != nil {
			t.Fatalf("EnqueueNotify: %v", err)
		}
	}
	info, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:notify:telegram:"+queueLeadID)
	if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	// Scheduled a second ahead: the route records its outcome meanwhile.
	if info.Type != "lead:notify" || info.State != asynq.TaskStateScheduled || info.MaxRetry != 25 || info.Timeout != time.Minute {
		t.Errorf("task = type %s, state %s, max retry %d, timeout %v", info.Type, info.State, info.MaxRetry, info.Timeout)
	}
	if got, want := string(info.Payload), `{"lead_id":"`+queueLeadID+`","channel":"telegram"}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
	if scheduled, err := e.insp.ListScheduledTasks(jobs.QueueLeads); err != nil || len(scheduled) != 1 {
		t.Errorf("scheduled tasks = %d (%v), want 1", len(scheduled), err)
	}
}
