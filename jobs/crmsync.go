package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// PurposeRectification is recorded in the disclosure log when a correction
// is passed on to the CRM holding the lead: the person's right to have their
// data corrected (privacy policy 9.3).
const PurposeRectification = "rectification passed on (privacy policy, section 9.3)"

// CRMUpdater is a CRM that can correct a lead it holds (bitrix24, amocrm,
// webhook). ref is the Receipt.Ref its Push returned.
type CRMUpdater interface {
	Update(ctx context.Context, l crm.Lead, ref string) error
}

// CRMEraser is a CRM that can be asked to delete a lead it holds (bitrix24,
// webhook; amocrm answers crm.ErrUnsupported).
type CRMEraser interface {
	Erase(ctx context.Context, leadID, ref string) error
}

// CRMSync passes a privacy request on to the CRM holding a copy of the lead:
// a rectification (crm:update) or an erasure (crm:erase). A CRM that cannot
// do it (no such method, or crm.ErrUnsupported), or a copy held by another
// CRM than the configured one, is logged for an operator to handle by hand,
// and not retried: no retry can change it.
type CRMSync struct {
	Leads Leads
	// CRM is the configured driver; its Update and Erase are used when it
	// has them (CRMUpdater, CRMEraser).
	CRM CRM
	// System is the configured driver's name as it records it on a routed
	// lead (Route.System): CRM_DRIVER.
	System string
	// MaxAge is RETRY_MAX_AGE: no retries this long after the request. Zero
	// leaves only the task's retry count as a limit.
	MaxAge time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// ProcessUpdate handles a crm:update task: the lead as it now is goes to
// the CRM holding it, and the transfer is recorded in its disclosure log.
func (c *CRMSync) ProcessUpdate(ctx context.Context, t *asynq.Task) error {
	var args UpdateCRMLead
	if err := json.Unmarshal(t.Payload(), &args); err != nil || args.LeadID == "" {
		return fmt.Errorf("malformed %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	lead, err := c.Leads.Get(ctx, args.LeadID)
	switch code := intake.ErrorCode(err); {
	case err == nil:
	case code == intake.ENotFound:
		c.Log.Info("CRM correction: the lead is gone (erased or purged); nothing to pass on", "lead", args.LeadID)
		return nil
	case code == "": // not the store's own error: the record itself is broken
		c.Log.Error("CRM correction: the lead's record cannot be read; correct the CRM by hand", "lead", args.LeadID, "err", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	default:
		return err // Redis unavailable: retried
	}
	system, ref := lead.HeldBy()
	if !c.handles("correction", lead.ID, system, ref) {
		return nil
	}
	u, ok := c.CRM.(CRMUpdater)
	if !ok {
		c.unsupported("correction", lead.ID, system, ref)
		return nil
	}
	if err := u.Update(ctx, Document(lead), ref); errors.Is(err, crm.ErrUnsupported) {
		c.unsupported("correction", lead.ID, system, ref)
		return nil
	} else if err != nil {
		return c.failed(ctx, "correction", lead.ID, system, args.RequestedAt, err)
	}
	err = c.Leads.LogTransfer(ctx, lead.ID, intake.Transfer{Recipient: "crm:" + system, At: c.Now().UTC(),
		Purpose: PurposeRectification, Ref: ref})
	if err != nil && intake.ErrorCode(err) != intake.ENotFound { // erased meanwhile: no log left to write to
		return err // retried: the correction is sent again, which changes nothing in the CRM
	}
	c.Log.Info("correction passed on to the CRM", "lead", lead.ID, "crm", system)
	return nil
}

// ProcessErase handles a crm:erase task: the CRM is asked to delete its
// copy of a lead erased here. There is no lead left to record it on, so the
// outcome is logged, by ids only.
func (c *CRMSync) ProcessErase(ctx context.Context, t *asynq.Task) error {
	var args EraseCRMLead
	if err := json.Unmarshal(t.Payload(), &args); err != nil || args.LeadID == "" {
		return fmt.Errorf("malformed %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	if !c.handles("erasure", args.LeadID, args.System, args.Ref) {
		return nil
	}
	e, ok := c.CRM.(CRMEraser)
	if !ok {
		c.unsupported("erasure", args.LeadID, args.System, args.Ref)
		return nil
	}
	if err := e.Erase(ctx, args.LeadID, args.Ref); errors.Is(err, crm.ErrUnsupported) {
		c.unsupported("erasure", args.LeadID, args.System, args.Ref)
		return nil
	} else if err != nil {
		return c.failed(ctx, "erasure", args.LeadID, args.System, args.RequestedAt, err)
	}
	c.Log.Info("erasure passed on: the CRM deleted its copy", "lead", args.LeadID, "crm", args.System, "ref", args.Ref)
	return nil
}

// handles reports whether the configured CRM is the one holding the copy;
// otherwise it logs why nothing is passed on.
func (c *CRMSync) handles(what, lead, system, ref string) bool {
	switch system {
	case "":
		c.Log.Info("CRM "+what+": the lead never reached a CRM; nothing to pass on", "lead", lead)
		return false
	case c.System:
		return true
	}
	c.Log.Error("CRM "+what+" not passed on: the copy is in another CRM than the configured one; do it there by hand",
		"lead", lead, "crm", system, "ref", ref, "configured", c.System)
	return false
}

// unsupported logs that the CRM cannot do what was asked: an operator does
// it in the CRM's own interface.
func (c *CRMSync) unsupported(what, lead, system, ref string) {
	c.Log.Warn("CRM "+what+" not passed on: the CRM driver cannot do it; do it in the CRM by hand",
		"lead", lead, "crm", system, "ref", ref)
}

// failed applies the rule for outside calls: a permanent refusal, or
// failing RETRY_MAX_AGE after the request, ends the task (logged for an
// operator); anything else is retried.
func (c *CRMSync) failed(ctx context.Context, what, lead, system string, requested time.Time, err error) error {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	permanent := integrations.KindOf(err) == integrations.Permanent
	tooOld := c.MaxAge > 0 && !requested.IsZero() && c.Now().Sub(requested) >= c.MaxAge
	if !permanent && !tooOld && (!ok || retried < maxRetry) {
		c.Log.Warn("CRM "+what+" failed; will retry", "lead", lead, "crm", system, "retried", retried, "err", err)
		return err
	}
	c.Log.Error("CRM "+what+" failed for good; do it in the CRM by hand", "lead", lead, "crm", system,
		"permanent", permanent, "retried", retried, "err", err)
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}
