package main

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/jobs"
)

// asynqTasks are the console's view of asynq (console.Tasks) over its
// Inspector: queue sizes as the gauges read them, failed tasks with the
// ids of their payloads, and retrying or deleting one.
type asynqTasks struct{ insp *asynq.Inspector }

var _ console.Tasks = asynqTasks{}

// Sizes counts every queue leadgate uses, one not seen yet as empty.
func (t asynqTasks) Sizes() ([]console.QueueSize, error) {
	known, err := t.insp.Queues()
	if err != nil {
		return nil, err
	}
	out := make([]console.QueueSize, 0, len(jobs.Queues))
	for _, q := range jobs.Queues {
		info, err := queueInfo(t.insp, known, q)
		if err != nil {
			return nil, err
		}
		out = append(out, console.QueueSize{Queue: q, Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled,
			Retry: info.Retry, Archived: info.Archived, Completed: info.Completed})
	}
	return out, nil
}

// Failed lists queue's tasks waiting to retry, then its archived ones.
func (t asynqTasks) Failed(queue string, limit int) ([]console.Task, error) {
	var out []console.Task
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){t.insp.ListRetryTasks, t.insp.ListArchivedTasks} {
		infos, err := list(queue, asynq.PageSize(limit))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return nil, err
		}
		for _, info := range infos {
			out = append(out, taskOf(info))
		}
	}
	return out, nil
}

// Task reads one task of a queue leadgate uses.
func (t asynqTasks) Task(queue, id string) (*console.Task, error) {
	if !slices.Contains(jobs.Queues, queue) {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such queue"}
	}
	info, err := t.insp.GetTaskInfo(queue, id)
	if err != nil {
		return nil, notFound(err)
	}
	task := taskOf(info)
	return &task, nil
}

// Run moves a task waiting to retry, or archived, to run now.
func (t asynqTasks) Run(queue, id string) error { return notFound(t.insp.RunTask(queue, id)) }

// Delete removes a task that is not running.
func (t asynqTasks) Delete(queue, id string) error { return notFound(t.insp.DeleteTask(queue, id)) }

// notFound makes asynq's "no such task or queue" the console's not found.
func notFound(err error) error {
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return &intake.Error{Code: intake.ENotFound, Message: "no such task"}
	}
	return err
}

// taskOf is what the console shows of a task: its payload only for the
// ids it names (every payload is ids only, jobs/tasks.go), nothing else.
func taskOf(info *asynq.TaskInfo) console.Task {
	var ids struct {
		LeadID     string `json:"lead_id"`
		CampaignID string `json:"campaign_id"`
	}
	_ = json.Unmarshal(info.Payload, &ids) // a payload without ids (the clock's tasks) names none
	return console.Task{Queue: info.Queue, ID: info.ID, Type: info.Type, State: info.State.String(),
		LeadID: ids.LeadID, CampaignID: ids.CampaignID, Error: info.LastErr, FailedAt: info.LastFailedAt,
		Retried: info.Retried, MaxRetry: info.MaxRetry}
}
