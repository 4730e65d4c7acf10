package jobs_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs/routing"
)

// testRules send legal entities asking for POS terminals to enterprise and
// everyone else to smb, whose two members take turns.
const testRules = `{
  "teams": {
    "smb":        {"members": [{"name": "aigerim", "crm_user_id": "12"}, {"name": "daniyar", "crm_user_id": "15"}]},
    "enterprise": {"members": [{"name": "olga", "crm_user_id": "7"}]}
  },
  "rules": [{"name": "pos-legal", "match": {"entity_type": ["legal_entity"], "products": ["pos"]}, "team": "enterprise"}],
  "fallback": {"team": "smb"}
}`

// setupRules is setup with testRules.
func setupRules(t *testing.T) *fixture {
	t.Helper()
	f := setup(t)
	rules, err := routing.Parse([]byte(testRules))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	f.router.Rules = rules
	return f
}

// pushRecorder makes the CRM accept every push and returns the pushes so far.
func (f *fixture) pushRecorder() func() []crm.Lead {
	var got []crm.Lead
	f.crm.PushFn = func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
		got = append(got, l)
		return crm.Receipt{System: "webhook", Ref: "wh-" + l.ID}, nil
	}
	return func() []crm.Lead { return got }
}

func TestRouterAssigns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		change  func(l *intake.Lead)
		cursor  string // a value of smb's counter set before routing; "" for none
		want    intake.Assignment
		cursors map[string]string
	}{
		{"matching rule", func(*intake.Lead) {}, "",
			intake.Assignment{Rule: "pos-legal", Team: "enterprise", Owner: "olga", CRMUserID: "7"},
			map[string]string{"lg:route:cursor:enterprise": "1"}},
		{"fallback", func(l *intake.Lead) { l.EntityType = intake.SoleProprietor }, "",
			intake.Assignment{Rule: "fallback", Team: "smb", Owner: "aigerim", CRMUserID: "12"},
			map[string]string{"lg:route:cursor:smb": "1"}},
		// Other workers took turns before: the counter in Redis is shared.
		{"next turn", func(l *intake.Lead) { l.EntityType = intake.SoleProprietor }, "1",
			intake.Assignment{Rule: "fallback", Team: "smb", Owner: "daniyar", CRMUserID: "15"},
			map[string]string{"lg:route:cursor:smb": "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setupRules(t)
			tc.change(f.lead)
			if tc.cursor != "" {
				if err := f.rdb.Set(context.Background(), "lg:route:cursor:smb", tc.cursor, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			pushes := f.pushRecorder()
			var assigned []intake.Assignment
			f.pushes.AssignFn = func(_ context.Context, id string, a intake.Assignment) (intake.Assignment, error) {
				if id != f.lead.ID {
					t.Errorf("Assign of lead %q, want %q", id, f.lead.ID)
				}
				assigned = append(assigned, a)
				return a, nil
			}
			transitions := f.recordTransitions()

			if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
				t.Fatalf("ProcessTask: %v", err)
			}

			if len(assigned) != 1 || assigned[0] != tc.want {
				t.Errorf("assigned %+v, want %+v", assigned, tc.want)
			}
			want := crm.Assignment(tc.want)
			if p := pushes(); len(p) != 1 || p[0].Assignment == nil || *p[0].Assignment != want {
				t.Errorf("pushes = %+v, want one assigned to %+v", p, want)
			} else if !reflect.DeepEqual(p[0].Risk, crm.Risk{}) {
				t.Errorf("pushed risk = %+v, want the ordinary lead's", p[0].Risk)
			}
			if got := f.cursors(t); !reflect.DeepEqual(got, tc.cursors) {
				t.Errorf("cursors = %v, want %v", got, tc.cursors)
			}
			if got := transitions(); len(got) != 1 || got[0].To != intake.Routed {
				t.Errorf("transitions = %+v, want one to routed", got)
			}
		})
	}
}

func TestRouterUsesTheStoredAssignment(t *testing.T) {
	t.Parallel()
	f := setupRules(t)
	// An earlier delivery of the task assigned the lead and crashed before
	// the lead was read again: the store keeps the first assignment.
	earlier := intake.Assignment{Rule: "fallback", Team: "smb", Owner: "daniyar", CRMUserID: "15"}
	f.pushes.AssignFn = func(context.Context, string, intake.Assignment) (intake.Assignment, error) { return earlier, nil }
	pushes := f.pushRecorder()
	f.recordTransitions()

	if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	if p := pushes(); len(p) != 1 || p[0].Assignment == nil || *p[0].Assignment != crm.Assignment(earlier) {
		t.Errorf("pushes = %+v, want one assigned to %+v", p, earlier)
	}
}

func TestRouterKeepsAnAssignment(t *testing.T) {
	t.Parallel()
	f := setupRules(t)
	// The rules would send this lead to enterprise now; it was assigned
	// before (a retry, or a redrive), and keeps its salesperson.
	kept := intake.Assignment{Rule: "fallback", Team: "smb", Owner: "daniyar", CRMUserID: "15"}
	f.lead.Assignment = &kept
	f.pushes.AssignFn = nil
	pushes := f.pushRecorder()
	f.recordTransitions()

	if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	if p := pushes(); len(p) != 1 || p[0].Assignment == nil || *p[0].Assignment != crm.Assignment(kept) {
		t.Errorf("pushes = %+v, want one assigned to %+v", p, kept)
	}
	if got := f.cursors(t); len(got) != 0 {
		t.Errorf("cursors = %v, want no turn taken", got)
	}
}

func TestRouterRetriesWhenTheAssignmentIsNotRecorded(t *testing.T) {
	t.Parallel()
	f := setupRules(t)
	down := &intake.Error{Code: intake.EUnavailable, Message: "assign lead", Err: errors.New("i/o timeout")}
	f.pushes.AssignFn = func(context.Context, string, intake.Assignment) (intake.Assignment, error) {
		return intake.Assignment{}, down
	}
	pushes := f.pushRecorder()
	transitions := f.recordTransitions()

	err := f.router.ProcessTask(context.Background(), f.task())

	if !errors.Is(err, down) || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want the store's error, retried", err)
	}
	if p := pushes(); len(p) != 0 {
		t.Errorf("CRM got %d pushes, want none without an owner recorded", len(p))
	}
	if got := transitions(); len(got) != 0 {
		t.Errorf("transitions = %+v, want none", got)
	}
}
