package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// SendCampaign is the payload of a campaign:send task: the campaign (or
// breach notice) id only.
type SendCampaign struct {
	CampaignID string `json:"campaign_id"`
}

// Kind names the task type.
func (SendCampaign) Kind() string { return "campaign:send" }

// EnqueueCampaign queues the fan-out of a campaign or breach notice. One
// task walks all its recipients; a retry or a restarted worker resumes where
// the marks say it stopped.
func (q *Queue) EnqueueCampaign(ctx context.Context, id string) error {
	payload, _ := json.Marshal(SendCampaign{CampaignID: id})
	taskID := "campaign:send:" + id
	return q.enqueueIn(ctx, QueueMail, asynq.NewTask(SendCampaign{}.Kind(), payload, asynq.TaskID(taskID),
		asynq.Queue(QueueMail), asynq.MaxRetry(50), asynq.Timeout(6*time.Hour)), taskID)
}
