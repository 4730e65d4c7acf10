package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
)

func TestRouterDisablesAGoneCRM(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// Three leads in turn; the store holds a copy of the fixture's lead
	// under each id.
	f.leads.GetFn = func(_ context.Context, id string) (*intake.Lead, error) {
		l := *f.lead
		l.ID = id
		return &l, nil
	}
	gone := &integrations.Error{System: "webhook", Op: "push", Status: 410, Code: integrations.CodeGone, Kind: integrations.Permanent}
	answer := error(gone)
	var pushed []string
	f.crm.PushFn = func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
		pushed = append(pushed, l.ID)
		if answer != nil {
			return crm.Receipt{}, answer
		}
		return crm.Receipt{System: "webhook", Ref: "wh-" + l.ID}, nil
	}
	transitions := f.recordTransitions()
	first, second, third := "01959a3c-8f00-7000-8000-000000000001", "01959a3c-8f00-7000-8000-000000000002", "01959a3c-8f00-7000-8000-000000000003"

	// The endpoint answers 410: the lead fails and the CRM is disabled.
	err := f.router.ProcessTask(ctx, jobs.NewRouteLeadTask(first))
	if !errors.Is(err, gone) || !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("first lead: ProcessTask = %v, want the 410 wrapped with SkipRetry", err)
	}
	if got := transitions(); len(got) != 1 || got[0].To != intake.Failed || got[0].Route.Error != gone.Error() {
		t.Fatalf("first lead: transitions = %+v, want it failed with the 410", got)
	}
	flag, err := f.rdb.Get(ctx, "lg:crm:gone").Result()
	if err != nil {
		t.Fatalf("lg:crm:gone after a 410: %v", err)
	}
	if want := f.now.UTC().Format(time.RFC3339); flag != want {
		t.Errorf("lg:crm:gone = %q, want when it went, %q", flag, want)
	}

	// The next lead fails at once, without a call to the disabled endpoint,
	// even though it would now answer.
	answer = nil
	err = f.router.ProcessTask(ctx, jobs.NewRouteLeadTask(second))
	ierr, ok := errors.AsType[*integrations.Error](err)
	if !ok || !integrations.IsGone(err) || ierr.Status != 410 || integrations.KindOf(err) != integrations.Permanent || !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("second lead: ProcessTask = %v, want a permanent %s error wrapped with SkipRetry", err, integrations.CodeGone)
	}
	assertNoPII(t, err, f.lead)
	if len(pushed) != 1 {
		t.Errorf("CRM got pushes for %q, want only the first lead's", pushed)
	}
	if got := transitions(); len(got) != 2 || got[1].To != intake.Failed || got[1].Route.Error == "" {
		t.Fatalf("second lead: transitions = %+v, want it failed with the reason", got)
	}

	// A starting worker clears the flag: the next lead is pushed.
	if err := f.ops.Workers.ClearCRMGone(ctx); err != nil {
		t.Fatalf("ClearCRMGone: %v", err)
	}
	if n := f.rdb.Exists(ctx, "lg:crm:gone").Val(); n != 0 {
		t.Error("ClearCRMGone left lg:crm:gone set")
	}
	if err := f.router.ProcessTask(ctx, jobs.NewRouteLeadTask(third)); err != nil {
		t.Errorf("third lead: ProcessTask = %v", err)
	}
	if len(pushed) != 2 || pushed[1] != third {
		t.Errorf("CRM got pushes for %q, want the first and third leads'", pushed)
	}
	if got := transitions(); len(got) != 3 || got[2].To != intake.Routed {
		t.Errorf("third lead: transitions = %+v, want it routed", got)
	}
}

func TestRouterA410WithoutTheGoneCodeFailsOneLead(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// Only the webhook driver reads 410 as "stop sending"
	// (integrations.CodeGone); a CRM API's 410 is about the one call.
	refused := &integrations.Error{System: "bitrix24", Op: "crm.lead.add", Status: 410, Kind: integrations.Permanent}
	f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) { return crm.Receipt{}, refused }
	transitions := f.recordTransitions()
	if err := f.router.ProcessTask(context.Background(), f.task()); !errors.Is(err, refused) || !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want the 410 wrapped with SkipRetry", err)
	}
	if got := transitions(); len(got) != 1 || got[0].To != intake.Failed {
		t.Errorf("transitions = %+v, want the lead failed", got)
	}
	if n := f.rdb.Exists(context.Background(), "lg:crm:gone").Val(); n != 0 {
		t.Error("lg:crm:gone set by a 410 without integrations.CodeGone")
	}
}
