package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// UpdateCRMLead is the payload of a crm:update task: pass a rectified lead
// on to the CRM that holds it.
type UpdateCRMLead struct {
	LeadID string `json:"lead_id"`
}

// Kind names the task type.
func (UpdateCRMLead) Kind() string { return "crm:update" }

// EraseCRMLead is the payload of a crm:erase task: ask the CRM to delete a
// lead erased here. System and Ref are the CRM's own names for it; nothing
// personal.
type EraseCRMLead struct {
	LeadID string `json:"lead_id"`
	System string `json:"system"`
	Ref    string `json:"ref"`
}

// Kind names the task type.
func (EraseCRMLead) Kind() string { return "crm:erase" }

// EnqueueCRMUpdate queues the crm:update task of a rectified lead. A second
// rectification while one is queued is carried by the queued one: it reads
// the lead when it runs.
func (q *Queue) EnqueueCRMUpdate(ctx context.Context, id string) error {
	payload, _ := json.Marshal(UpdateCRMLead{LeadID: id})
	taskID := "crm:update:" + id
	return q.enqueueIn(ctx, QueueMaintenance, asynq.NewTask(UpdateCRMLead{}.Kind(), payload, asynq.TaskID(taskID),
		asynq.Queue(QueueMaintenance), asynq.MaxRetry(25), asynq.Timeout(time.Minute)), taskID)
}

// EnqueueCRMErase queues the crm:erase task of an erased lead.
func (q *Queue) EnqueueCRMErase(ctx context.Context, id, system, ref string) error {
	payload, _ := json.Marshal(EraseCRMLead{LeadID: id, System: system, Ref: ref})
	taskID := "crm:erase:" + id
	return q.enqueueIn(ctx, QueueMaintenance, asynq.NewTask(EraseCRMLead{}.Kind(), payload, asynq.TaskID(taskID),
		asynq.Queue(QueueMaintenance), asynq.MaxRetry(25), asynq.Timeout(time.Minute)), taskID)
}
