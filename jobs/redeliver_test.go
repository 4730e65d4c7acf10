package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/crm"
)

// finderCRM is a CRM that looks an earlier delivery up first, as Bitrix24
// and amoCRM do.
type finderCRM struct{ fakeCRM }

func (finderCRM) FindsEarlier() bool { return true }

var _ crm.Finder = finderCRM{}

func redeliveries(t *testing.T, system string) float64 {
	t.Helper()
	return counterValue(t, "leadgate_crm_redeliveries_total", "system", system)
}

// A push that finds an earlier attempt's mark delivers the lead again
// through a CRM that cannot look it up: counted, under the CRM's name. The
// first push, and any push through a CRM that looks up, is not.
func TestRouterCountsRedeliveries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		system  string // unique per case: the counter is the process's
		earlier bool
		finder  bool
		want    float64
	}{
		{"first push", "test-first", false, false, 0},
		{"redo", "test-redo", true, false, 1},
		{"redo through a finder", "test-finder", true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			push := func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
				return crm.Receipt{System: tc.system, Ref: l.ID}, nil
			}
			if tc.finder {
				f.router.CRM = &finderCRM{fakeCRM{PushFn: push}}
			} else {
				f.crm.PushFn = push
			}
			if tc.earlier {
				f.pushes.marks[f.lead.ID] = f.now.Add(-time.Minute)
			}
			f.recordTransitions()
			before := redeliveries(t, tc.system) // non-zero in a second run of go test -count=N
			if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
				t.Fatalf("ProcessTask = %v", err)
			}
			if got := redeliveries(t, tc.system) - before; got != tc.want {
				t.Errorf("leadgate_crm_redeliveries_total{system=%q} rose by %v, want %v", tc.system, got, tc.want)
			}
			if !f.pushes.marks[f.lead.ID].Equal(f.now) {
				t.Errorf("mark = %v, want this attempt's time %v", f.pushes.marks[f.lead.ID], f.now)
			}
		})
	}
}

// A lead the mark finds no longer Received (blocked, or routed by another
// delivery meanwhile) or gone is not pushed.
func TestRouterPushesOnlyWhatTheMarkAllows(t *testing.T) {
	t.Parallel()
	for _, code := range []intake.Code{intake.EConflict, intake.ENotFound} {
		t.Run(string(code), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.pushes.fail = &intake.Error{Code: code, Message: "test"}
			// f.crm.PushFn is unset: a push fails the task with errUnexpected.
			if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
				t.Errorf("ProcessTask = %v, want nil and no push", err)
			}
		})
	}
}
