package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
)

var _ jobs.SalesChannel = (*fakeChannel)(nil)

// fakeChannel is a jobs.SalesChannel whose methods call the matching field.
type fakeChannel struct {
	NameFn   func() string
	NotifyFn func(ctx context.Context, l crm.Lead, r crm.Receipt) error
}

func (f *fakeChannel) Name() string {
	if f.NameFn == nil {
		return "unexpected"
	}
	return f.NameFn()
}

func (f *fakeChannel) Notify(ctx context.Context, l crm.Lead, r crm.Receipt) error {
	if f.NotifyFn == nil {
		return fmt.Errorf("SalesChannel.Notify: %w", errUnexpected)
	}
	return f.NotifyFn(ctx, l, r)
}

func TestRouterNotifiesBeforeRecordingTheRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var calls []string
	f.crm.PushFn = func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
		calls = append(calls, "push "+l.ID)
		return crm.Receipt{System: "webhook", Ref: "wh-42"}, nil
	}
	f.router.Notify = func(_ context.Context, id string) error {
		calls = append(calls, "notify "+id)
		return nil
	}
	f.leads.TransitionFn = func(_ context.Context, id string, tr intake.Transition) (intake.State, error) {
		calls = append(calls, "transition "+id+" to "+string(tr.To))
		return tr.To, nil
	}

	if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	// The notification is queued before the route is recorded: a crash in
	// between retries the route, which queues it again (harmlessly), where
	// the other order could lose it.
	id := f.lead.ID
	if want := []string{"push " + id, "notify " + id, "transition " + id + " to routed"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %q, want %q", calls, want)
	}
}

func TestRouterRetriesWhenTheNotificationIsNotQueued(t *testing.T) {
	t.Parallel()
	f := setup(t)
	down := errors.New("redis: connection pool timeout")
	// The router tries again until the task's context ends (Redis may come
	// back within it); then the task is retried. The context ends at the
	// second try, however long the work before it took; 30 s is a backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tries := 0
	f.router.Notify = func(context.Context, string) error {
		if tries++; tries == 2 {
			cancel()
		}
		return down
	}
	pushes := f.pushRecorder()
	transitions := f.recordTransitions()

	err := f.router.ProcessTask(ctx, f.task())

	if !errors.Is(err, down) || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want the queue's error, retried", err)
	}
	if tries != 2 {
		t.Errorf("Notify tried %d times, want 2: again after the first failure, and no more once the context ended", tries)
	}
	if len(pushes()) != 1 {
		t.Errorf("CRM got %d pushes, want 1", len(pushes()))
	}
	if got := transitions(); len(got) != 0 {
		t.Errorf("transitions = %+v, want none: the lead stays received until its notification is queued", got)
	}
}

func TestRouterNotifiesOnlyRoutedLeads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *fixture)
	}{
		{"held for review", func(_ *testing.T, f *fixture) { makeRisky(f.lead) }},
		{"push failing", func(_ *testing.T, f *fixture) {
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
				return crm.Receipt{}, &integrations.Error{System: "webhook", Op: "push", Status: 503, Kind: integrations.Temporary}
			}
		}},
		{"push refused", func(_ *testing.T, f *fixture) {
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
				return crm.Receipt{}, &integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent}
			}
		}},
		{"CRM disabled", func(t *testing.T, f *fixture) {
			if err := f.rdb.Set(context.Background(), "lg:crm:gone", "2025-03-14T04:00:00Z", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			notified := 0
			f.router.Notify = func(context.Context, string) error {
				notified++
				return nil
			}
			f.recordTransitions()
			tc.change(t, f)
			_ = f.router.ProcessTask(context.Background(), f.task()) // the outcome is other tests' concern
			if notified != 0 {
				t.Errorf("Notify called %d times, want never for a lead not routed", notified)
			}
		})
	}
}

// notifyFixture is a Notifier over fakes, with a fixed clock, and a lead
// the CRM took.
type notifyFixture struct {
	leads    *fakeLeads
	channel  *fakeChannel
	notifier *jobs.Notifier
	now      time.Time
	lead     *intake.Lead
}

func setupNotifier(t *testing.T) *notifyFixture {
	t.Helper()
	now := time.Date(2025, 3, 14, 9, 31, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60))
	l := testLead(now)
	l.State = intake.Routed
	l.Assignment = &intake.Assignment{Rule: "pos-legal", Team: "enterprise", Owner: "olga", CRMUserID: "7"}
	l.Route = intake.Route{Since: l.CreatedAt, System: "bitrix24", Ref: "17",
		URL: "https://example.bitrix24.kz/crm/lead/details/17/", At: now.Add(-time.Second).UTC()}
	f := &notifyFixture{leads: &fakeLeads{}, channel: &fakeChannel{NameFn: func() string { return "telegram" }},
		now: now, lead: l}
	f.leads.GetFn = func(_ context.Context, id string) (*intake.Lead, error) {
		if id != f.lead.ID {
			return nil, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
		}
		c := *f.lead
		return &c, nil
	}
	f.notifier = &jobs.Notifier{Leads: f.leads, Channels: []jobs.SalesChannel{f.channel}, Now: func() time.Time { return now },
		Log: slog.New(slog.DiscardHandler)}
	return f
}

func (f *notifyFixture) task() *asynq.Task { return jobs.NewNotifySalesTask(f.lead.ID, "telegram") }

func TestNewNotifySalesTaskCarriesOnlyTheID(t *testing.T) {
	t.Parallel()
	task := jobs.NewNotifySalesTask("01959a3c-8f00-7000-8000-000000000001", "telegram")
	if task.Type() != "lead:notify" {
		t.Errorf("type = %q", task.Type())
	}
	if got, want := string(task.Payload()), `{"lead_id":"01959a3c-8f00-7000-8000-000000000001","channel":"telegram"}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
}

func TestNotifierNotifies(t *testing.T) {
	t.Parallel()
	f := setupNotifier(t)
	var calls []string
	var docs []crm.Lead
	var receipts []crm.Receipt
	f.channel.NotifyFn = func(_ context.Context, l crm.Lead, r crm.Receipt) error {
		calls = append(calls, "notify")
		docs, receipts = append(docs, l), append(receipts, r)
		return nil
	}
	var transfers []intake.Transfer
	f.leads.LogTransferFn = func(_ context.Context, id string, tr intake.Transfer) error {
		if id != f.lead.ID {
			t.Errorf("LogTransfer of lead %q, want %q", id, f.lead.ID)
		}
		calls = append(calls, "log transfer")
		transfers = append(transfers, tr)
		return nil
	}

	if err := f.notifier.ProcessTask(context.Background(), f.task()); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}

	if want := []string{"notify", "log transfer"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %q, want %q", calls, want)
	}
	if len(docs) != 1 || !reflect.DeepEqual(docs[0], jobs.Document(f.lead)) {
		t.Errorf("channel got %+v, want Document(lead)", docs)
	}
	wantReceipt := crm.Receipt{System: "bitrix24", Ref: "17", URL: "https://example.bitrix24.kz/crm/lead/details/17/"}
	if len(receipts) != 1 || receipts[0] != wantReceipt {
		t.Errorf("receipts = %+v, want %+v", receipts, wantReceipt)
	}
	want := intake.Transfer{Recipient: "telegram", At: f.now.UTC(), Purpose: jobs.PurposeNotify}
	if len(transfers) != 1 || transfers[0] != want {
		t.Errorf("transfers = %+v, want %+v", transfers, want)
	}
}

func TestNotifierSkipsLeadsNotToNotify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		state intake.State // "" for a lead that is gone
	}{
		{"gone", ""},
		{"failed", intake.Failed},
		{"blocked", intake.Blocked},
		{"review", intake.Review},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setupNotifier(t)
			id := f.lead.ID
			if tc.state == "" {
				id = "01959a3c-8f00-7000-8000-0000000000ff" // erased or purged
			} else {
				f.lead.State = tc.state
			}
			// NotifyFn and LogTransferFn stay nil: calling them is an error.
			if err := f.notifier.ProcessTask(context.Background(), jobs.NewNotifySalesTask(id, "telegram")); err != nil {
				t.Errorf("ProcessTask = %v, want nil", err)
			}
		})
	}
}

func TestNotifierWaitsForTheRoute(t *testing.T) {
	t.Parallel()
	f := setupNotifier(t)
	f.lead.State = intake.Received // the route queued the notification and is recording its outcome
	err := f.notifier.ProcessTask(context.Background(), f.task())
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want an error, retried", err)
	}
	if errors.Is(err, errUnexpected) {
		t.Errorf("ProcessTask notified or logged a transfer: %v", err)
	}
	if jobs.IsFailure(err) {
		t.Error("waiting for the route counts as a failure; it must not use up retries")
	}
	assertNoPII(t, err, f.lead)
}

func TestNotifierRetriesFailures(t *testing.T) {
	t.Parallel()
	down := &intake.Error{Code: intake.EUnavailable, Message: "redis", Err: errors.New("i/o timeout")}
	refused := &integrations.Error{System: "telegram", Op: "sendMessage", Status: 502, Kind: integrations.Temporary}
	for _, tc := range []struct {
		name             string
		get, notify, log error // what the store's Get, the channel and the store's LogTransfer answer
		want             error
		transfers        int // LogTransfer calls, at least
	}{
		{"store unavailable", down, nil, nil, down, 0},
		{"channel failing", nil, refused, nil, refused, 0},
		// The record is tried again while Redis is away, until the task's
		// deadline; then the task is retried and the channel called again: a
		// second message beats an unrecorded disclosure.
		{"transfer not recorded", nil, nil, down, down, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setupNotifier(t)
			if tc.get != nil {
				f.leads.GetFn = func(context.Context, string) (*intake.Lead, error) { return nil, tc.get }
			}
			f.channel.NotifyFn = func(context.Context, crm.Lead, crm.Receipt) error { return tc.notify }
			transfers := 0
			f.leads.LogTransferFn = func(context.Context, string, intake.Transfer) error {
				transfers++
				return tc.log
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second) // the task's deadline
			defer cancel()
			err := f.notifier.ProcessTask(ctx, f.task())
			if !errors.Is(err, tc.want) || errors.Is(err, asynq.SkipRetry) {
				t.Errorf("ProcessTask = %v, want %v, retried", err, tc.want)
			}
			if transfers < tc.transfers || tc.transfers == 0 && transfers != 0 {
				t.Errorf("%d transfers logged, want %d or more", transfers, tc.transfers)
			}
		})
	}
}

func TestNotifierMalformedPayload(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{``, `not json`, `{}`, `{"lead_id":""}`} {
		t.Run(payload, func(t *testing.T) {
			t.Parallel()
			f := setupNotifier(t)
			f.leads.GetFn = nil // the store must not be asked
			err := f.notifier.ProcessTask(context.Background(), asynq.NewTask("lead:notify", []byte(payload)))
			if !errors.Is(err, asynq.SkipRetry) || errors.Is(err, errUnexpected) {
				t.Errorf("ProcessTask = %v, want SkipRetry before the store is asked", err)
			}
		})
	}
}

func TestNotifierSkipsUnknownChannel(t *testing.T) {
	t.Parallel()
	f := setupNotifier(t)
	err := f.notifier.ProcessTask(context.Background(), jobs.NewNotifySalesTask(f.lead.ID, "email"))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("task for a channel no longer configured = %v, want SkipRetry", err)
	}
}

// A channel's permanent refusal (a chat not found) is recorded, not retried,
// and nothing is logged as transferred.
func TestNotifierGivesUpOnPermanentRefusal(t *testing.T) {
	t.Parallel()
	f := setupNotifier(t)
	refused := &integrations.Error{System: "telegram", Op: "sendMessage", Status: 400, Code: "chat_not_found",
		Kind: integrations.Permanent}
	f.channel.NotifyFn = func(context.Context, crm.Lead, crm.Receipt) error { return refused }
	err := f.notifier.ProcessTask(context.Background(), f.task())
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, refused) {
		t.Fatalf("ProcessTask = %v, want the refusal with SkipRetry", err)
	}
}
