package jobs

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// The catalogue of tasks: every task type's payload (ids only, never a
// personal value), its Kind (stable: stored in Redis with every task), its
// queue, retry budget and timeout, and its task id, derived from the ids so
// that queuing the same work twice is harmless. queue.go queues them; the
// handlers are registered in mux.go.

// Queues the workers serve, with their weights.
const (
	QueueLeads       = "leads"       // handing leads to sales: first in line
	QueueMail        = "mail"        // campaigns and breach notices: long fan-outs that must not delay leads
	QueueMaintenance = "maintenance" // sweeps, purges and CRM corrections
)

// Queues lists every queue leadgate uses: the worker serves them and the
// purge cleans them.
var Queues = []string{QueueLeads, QueueMail, QueueMaintenance}

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
		asynq.TaskID(routeTaskID(id)), asynq.Queue(QueueLeads),
		asynq.MaxRetry(maxRouteRetries), asynq.Timeout(2*time.Minute))
}

func routeTaskID(id string) string { return "lead:route:" + id }

// NotifySales is the payload of a lead:notify task: the lead id and the
// channel to tell, nothing personal.
type NotifySales struct {
	LeadID  string `json:"lead_id"`
	Channel string `json:"channel"`
}

// Kind names the task type.
func (NotifySales) Kind() string { return "lead:notify" }

// NewNotifySalesTask returns the task that tells sales about lead id on one
// channel. Each channel has its own task, apart from lead:route: a failing
// notification never blocks or repeats the CRM push, nor another channel.
func NewNotifySalesTask(id, channel string) *asynq.Task {
	payload, _ := json.Marshal(NotifySales{LeadID: id, Channel: channel})
	return asynq.NewTask(NotifySales{}.Kind(), payload,
		asynq.TaskID(notifyTaskID(id, channel)), asynq.Queue(QueueLeads),
		// The route queues this just before it records its outcome: a second
		// later the lead is routed, and the notifier rarely has to wait.
		asynq.ProcessIn(time.Second),
		asynq.MaxRetry(25), asynq.Timeout(time.Minute))
}

func notifyTaskID(id, channel string) string { return "lead:notify:" + channel + ":" + id }

// AckLead is the payload of a lead:ack task: the lead id only.
type AckLead struct {
	LeadID string `json:"lead_id"`
}

// Kind names the task type.
func (AckLead) Kind() string { return "lead:ack" }

// RequestOptin is the payload of a lead:optin task: the lead id only.
type RequestOptin struct {
	LeadID string `json:"lead_id"`
}

// Kind names the task type.
func (RequestOptin) Kind() string { return "lead:optin" }

func ackTaskID(id string) string { return "lead:ack:" + id }

func optinTaskID(id string) string { return "lead:optin:" + id }

func newMailTask(kind, taskID, id string) *asynq.Task {
	payload, _ := json.Marshal(AckLead{LeadID: id}) // both payloads are {"lead_id"}
	return asynq.NewTask(kind, payload, asynq.TaskID(taskID), asynq.Queue(QueueLeads),
		asynq.MaxRetry(25), asynq.Timeout(time.Minute))
}

// SendCampaign is the payload of a campaign:send task: the campaign (or
// breach notice) id only.
type SendCampaign struct {
	CampaignID string `json:"campaign_id"`
}

// Kind names the task type.
func (SendCampaign) Kind() string { return "campaign:send" }

func sendCampaignTaskID(id string) string { return "campaign:send:" + id }

// NewSendCampaignTask returns the fan-out task of campaign (or notice) id.
// One task walks all its recipients; a retry or a restarted worker resumes
// where the marks say it stopped.
func NewSendCampaignTask(id string) *asynq.Task {
	payload, _ := json.Marshal(SendCampaign{CampaignID: id})
	return asynq.NewTask(SendCampaign{}.Kind(), payload, asynq.TaskID(sendCampaignTaskID(id)),
		asynq.Queue(QueueMail), asynq.MaxRetry(50), asynq.Timeout(6*time.Hour))
}

// UpdateCRMLead is the payload of a crm:update task: pass a rectified lead
// on to the CRM that holds it. RequestedAt starts the RETRY_MAX_AGE window.
type UpdateCRMLead struct {
	LeadID      string    `json:"lead_id"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// Kind names the task type.
func (UpdateCRMLead) Kind() string { return "crm:update" }

// EraseCRMLead is the payload of a crm:erase task: ask the CRM to delete a
// lead erased here. System and Ref are the CRM's own names for it; nothing
// personal. RequestedAt starts the RETRY_MAX_AGE window.
type EraseCRMLead struct {
	LeadID      string    `json:"lead_id"`
	System      string    `json:"system"`
	Ref         string    `json:"ref"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// Kind names the task type.
func (EraseCRMLead) Kind() string { return "crm:erase" }

func crmUpdateTaskID(id string) string { return "crm:update:" + id }

func crmEraseTaskID(id string) string { return "crm:erase:" + id }

// NewUpdateCRMLeadTask returns the crm:update task of lead id, requested
// at at. Its task id is derived from the lead id.
func NewUpdateCRMLeadTask(id string, at time.Time) *asynq.Task {
	payload, _ := json.Marshal(UpdateCRMLead{LeadID: id, RequestedAt: at.UTC()})
	return asynq.NewTask(UpdateCRMLead{}.Kind(), payload, asynq.TaskID(crmUpdateTaskID(id)),
		asynq.Queue(QueueMaintenance), asynq.MaxRetry(25), asynq.Timeout(time.Minute))
}

// NewEraseCRMLeadTask returns the crm:erase task of lead id, held by system
// as ref, requested at at. Its task id is derived from the lead id.
func NewEraseCRMLeadTask(id, system, ref string, at time.Time) *asynq.Task {
	payload, _ := json.Marshal(EraseCRMLead{LeadID: id, System: system, Ref: ref, RequestedAt: at.UTC()})
	return asynq.NewTask(EraseCRMLead{}.Kind(), payload, asynq.TaskID(crmEraseTaskID(id)),
		asynq.Queue(QueueMaintenance), asynq.MaxRetry(25), asynq.Timeout(time.Minute))
}

// PurgeLeads is the payload of the clock's lead:purge task: none, the
// handler's configuration says what is stale.
type PurgeLeads struct{}

// Kind names the task type.
func (PurgeLeads) Kind() string { return "lead:purge" }

// SweepLeads is the payload of the clock's lead:sweep task.
type SweepLeads struct{}

// Kind names the task type.
func (SweepLeads) Kind() string { return "lead:sweep" }
