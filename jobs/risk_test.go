package jobs_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
)

func TestAssess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(l *intake.Lead)
		want   intake.Risk
	}{
		{"ordinary browser", func(*intake.Lead) {}, intake.Risk{}},
		{"disposable domain", func(l *intake.Lead) { l.Email = "test@mailinator.com" }, intake.Risk{Score: 40, Signals: []string{"disposable_email"}}},
		{"disposable parent domain in capitals", func(l *intake.Lead) { l.Email = "Test@Inbox.MAILINATOR.com" },
			intake.Risk{Score: 40, Signals: []string{"disposable_email"}}},
		// The list holds IDNA-ASCII names (xn--24-6kch4bfq8b.live): the
		// email is converted before the lookup.
		{"disposable IDN domain", func(l *intake.Lead) { l.Email = "test@вулкан24.live" },
			intake.Risk{Score: 40, Signals: []string{"disposable_email"}}},
		// Full-width letters map to ASCII under IDNA, so they do not hide
		// a listed domain.
		{"disposable domain in full-width letters", func(l *intake.Lead) { l.Email = "test@ｍａｉｌｉｎａｔｏｒ.com" },
			intake.Risk{Score: 40, Signals: []string{"disposable_email"}}},
		{"script and repeats", func(l *intake.Lead) {
			l.Meta.UserAgent = "curl/8.5.0"
			l.Observed = intake.Observed{FormAge: time.Second, SameIP: 12, SameEmail: 3, SameTaxID: 5}
		}, intake.Risk{Score: 100, Signals: []string{"bot_user_agent", "fast_submit", "repeat_ip", "repeat_email", "repeat_tax_id"}}},
		{"forged token and honeypot", func(l *intake.Lead) {
			l.Observed.FormTokenInvalid, l.Observed.HoneypotNearMiss = true, true
		}, intake.Risk{Score: 100, Signals: []string{"forged_form_token", "honeypot_near_miss"}}},
		{"browser post without script, no user agent", func(l *intake.Lead) {
			l.Meta.UserAgent = ""
			l.Observed.ScriptRan = false
		}, intake.Risk{Score: 40, Signals: []string{"no_user_agent", "no_script"}}},
		// An address that does not parse names no domain to look up; the
		// other signals still count.
		{"unparsable email", func(l *intake.Lead) {
			l.Email = "test at mailinator.com"
			l.Observed.FormAge = time.Second
		}, intake.Risk{Score: 40, Signals: []string{"fast_submit"}}},
		// The consent's User-Agent is not what the score looks at.
		{"user agent of the request only", func(l *intake.Lead) { l.Consent.UserAgent = "curl/8.5.0" }, intake.Risk{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := testLead(time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC))
			tc.change(l)
			if got := jobs.Assess(l); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Assess = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRouterRiskReview(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		threshold int
		risky     bool // the lead scores 80 (riskyRisk) rather than 0
		released  bool // a reviewer released it
		want      intake.State
	}{
		{"ordinary lead", 70, false, false, intake.Routed},
		{"risky lead", 70, true, false, intake.Review},
		{"score at the threshold", 80, true, false, intake.Review},
		{"score under the threshold", 81, true, false, intake.Routed},
		{"risky lead released by a reviewer", 70, true, true, intake.Routed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.router.Threshold = tc.threshold
			wantRisk := intake.Risk{}
			if tc.risky {
				makeRisky(f.lead)
				wantRisk = riskyRisk
			}
			f.lead.Released = tc.released
			var pushed []crm.Lead
			f.crm.PushFn = func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
				pushed = append(pushed, l)
				return crm.Receipt{System: "webhook", Ref: "wh-42"}, nil
			}
			assigned := 0
			f.pushes.AssignFn = func(_ context.Context, _ string, a intake.Assignment) (intake.Assignment, error) {
				assigned++
				return a, nil
			}
			transitions := f.recordTransitions()

			if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
				t.Fatalf("ProcessTask: %v", err)
			}

			got := transitions()
			if len(got) != 1 || got[0].From != intake.Received || got[0].To != tc.want {
				t.Fatalf("transitions = %+v, want one from received to %s", got, tc.want)
			}
			if got[0].Risk == nil || !reflect.DeepEqual(*got[0].Risk, wantRisk) {
				t.Errorf("risk recorded = %+v, want %+v", got[0].Risk, wantRisk)
			}
			switch tc.want {
			case intake.Review:
				// Held back entirely: nothing left leadgate, no salesperson's
				// turn was used up.
				want := intake.Transition{From: intake.Received, To: intake.Review, Risk: &wantRisk}
				if !reflect.DeepEqual(got[0], want) {
					t.Errorf("transition = %+v, want %+v", got[0], want)
				}
				if len(pushed) != 0 || assigned != 0 {
					t.Errorf("%d pushes and %d assignments, want none for a lead held for review", len(pushed), assigned)
				}
				if c := f.cursors(t); len(c) != 0 {
					t.Errorf("cursors = %v, want none taken", c)
				}
			case intake.Routed:
				if len(pushed) != 1 || !reflect.DeepEqual(pushed[0].Risk, crm.Risk(wantRisk)) {
					t.Errorf("pushes = %+v, want one with risk %+v", pushed, wantRisk)
				}
				if assigned != 1 {
					t.Errorf("%d assignments, want 1", assigned)
				}
			}
		})
	}
}

func TestRouterHoldForReviewOutcome(t *testing.T) {
	t.Parallel()
	down := &intake.Error{Code: intake.EUnavailable, Message: "change lead state", Err: errors.New("i/o timeout")}
	for _, tc := range []struct {
		name    string
		state   intake.State // what the store answers
		err     error
		wantErr error
	}{
		{"held", intake.Review, nil, nil},
		// The person blocked processing meanwhile: not ours to change.
		{"blocked meanwhile", intake.Blocked, nil, nil},
		// Retried, so the hold is recorded once Redis is back.
		{"store unavailable", "", down, down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			makeRisky(f.lead)
			f.pushes.AssignFn = nil // PushFn is nil too: neither may be called
			f.leads.TransitionFn = func(context.Context, string, intake.Transition) (intake.State, error) {
				return tc.state, tc.err
			}
			err := f.router.ProcessTask(context.Background(), f.task())
			if !errors.Is(err, tc.wantErr) { // with wantErr nil: err must be nil
				t.Errorf("ProcessTask = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, asynq.SkipRetry) || errors.Is(err, errUnexpected) {
				t.Errorf("ProcessTask = %v", err)
			}
		})
	}
}
