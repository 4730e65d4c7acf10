package intake

import "context"

// Queue hands work to the workers: accepted leads, mail fan-outs and the
// corrections a privacy request sends after a lead.
type Queue interface {
	// EnqueueLead queues the lead's routing. Enqueuing the same id twice is
	// harmless, and a lead routed before (a redrive) is queued again.
	EnqueueLead(ctx context.Context, id string) error
	// EnqueueCampaign queues the fan-out of a campaign or breach notice.
	EnqueueCampaign(ctx context.Context, id string) error
	// EnqueueCRMUpdate queues passing a rectified lead on to the CRM
	// that holds it.
	EnqueueCRMUpdate(ctx context.Context, id string) error
	// EnqueueCRMErase queues asking the CRM to delete a lead erased here;
	// system and ref name it there (Route.System, Route.Ref), since the
	// lead itself is gone by then.
	EnqueueCRMErase(ctx context.Context, id, system, ref string) error
}
