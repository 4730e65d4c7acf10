package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/delivery"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/jobs/routing"
)

var (
	_ jobs.Leads = (*fakeLeads)(nil)
	_ jobs.CRM   = (*fakeCRM)(nil)
)

// errUnexpected is what a fake answers when a test did not set the function
// being called: the code under test took a path the test did not expect.
var errUnexpected = errors.New("unexpected call")

// fakeLeads is a jobs.Leads whose methods call the matching field.
type fakeLeads struct {
	GetFn            func(ctx context.Context, id string) (*intake.Lead, error)
	TransitionFn     func(ctx context.Context, id string, t intake.Transition) (intake.State, error)
	ReceivedBeforeFn func(ctx context.Context, t time.Time, offset, n int) ([]string, error)
	LogTransferFn    func(ctx context.Context, id string, t intake.Transfer) error
}

func (f *fakeLeads) Get(ctx context.Context, id string) (*intake.Lead, error) {
	if f.GetFn == nil {
		return nil, fmt.Errorf("Leads.Get: %w", errUnexpected)
	}
	return f.GetFn(ctx, id)
}

// GetForRouting is Get: the repeat counts are the store's to take.
func (f *fakeLeads) GetForRouting(ctx context.Context, id string) (*intake.Lead, error) {
	return f.Get(ctx, id)
}

func (f *fakeLeads) Transition(ctx context.Context, id string, t intake.Transition) (intake.State, error) {
	if f.TransitionFn == nil {
		return "", fmt.Errorf("Leads.Transition: %w", errUnexpected)
	}
	return f.TransitionFn(ctx, id, t)
}

func (f *fakeLeads) ReceivedBefore(ctx context.Context, t time.Time, offset, n int) ([]string, error) {
	if f.ReceivedBeforeFn == nil {
		return nil, fmt.Errorf("Leads.ReceivedBefore: %w", errUnexpected)
	}
	return f.ReceivedBeforeFn(ctx, t, offset, n)
}

func (f *fakeLeads) LogTransfer(ctx context.Context, id string, t intake.Transfer) error {
	if f.LogTransferFn == nil {
		return fmt.Errorf("Leads.LogTransfer: %w", errUnexpected)
	}
	return f.LogTransferFn(ctx, id, t)
}

// fakeCRM is a jobs.CRM whose Push calls PushFn.
type fakeCRM struct {
	PushFn func(ctx context.Context, l crm.Lead) (crm.Receipt, error)
}

func (f *fakeCRM) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	if f.PushFn == nil {
		return crm.Receipt{}, fmt.Errorf("CRM.Push: %w", errUnexpected)
	}
	return f.PushFn(ctx, l)
}

// fakePushes are the marks of CRM pushes, kept in a map: Begin records the
// assignment the router chose through AssignFn, marks a lead and returns
// the earlier mark, as delivery.Pushes does for a Received lead, unless the
// CRM-gone flag is set in rdb (ops.Workers.MarkCRMGone's).
type fakePushes struct {
	// AssignFn answers for the recording of an assignment: the one the
	// lead then has. Nil fails a Begin given one.
	AssignFn func(ctx context.Context, id string, a intake.Assignment) (intake.Assignment, error)

	mu    sync.Mutex
	marks map[string]time.Time
	now   time.Time
	rdb   redis.UniversalClient
	fail  error // answered instead, when set
}

func (f *fakePushes) Begin(ctx context.Context, id string, _ bool, a *intake.Assignment) (delivery.Push, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return delivery.Push{}, f.fail
	}
	var push delivery.Push
	if a != nil {
		if f.AssignFn == nil {
			return delivery.Push{}, fmt.Errorf("Pushes.Begin with an assignment: %w", errUnexpected)
		}
		stored, err := f.AssignFn(ctx, id, *a)
		if err != nil {
			return delivery.Push{}, err
		}
		push.Assignment = stored
	}
	gone, err := f.rdb.Exists(ctx, redisstore.CRMGoneKey).Result()
	if err != nil {
		return delivery.Push{}, intake.Unavailable("mark CRM push", err)
	}
	if gone == 1 {
		return delivery.Push{CRMGone: true}, nil
	}
	push.Earlier = f.marks[id]
	f.marks[id] = f.now
	return push, nil
}

// fakeQueue is the Sweeper's queue; EnqueueLead calls EnqueueLeadFn.
type fakeQueue struct {
	EnqueueLeadFn func(ctx context.Context, id string) error
}

func (f *fakeQueue) EnqueueLead(ctx context.Context, id string) error {
	if f.EnqueueLeadFn == nil {
		return fmt.Errorf("Queue.EnqueueLead: %w", errUnexpected)
	}
	return f.EnqueueLeadFn(ctx, id)
}

// fixture is a Router over fakes and a private Redis, with a fixed clock.
type fixture struct {
	leads  *fakeLeads
	crm    *fakeCRM
	pushes *fakePushes
	redis  *redistest.Server
	rdb    redis.UniversalClient
	ops    *ops.Records // over rdb: the router's workers part
	router *jobs.Router
	now    time.Time
	lead   *intake.Lead // what leads.Get answers (a copy of) unless a test changes GetFn
}

const maxAge = 72 * time.Hour

// defaultAssignment is what routing.Default gives every lead.
var defaultAssignment = intake.Assignment{Rule: routing.FallbackRule, Team: "sales", Owner: "sales"}

// setup returns a Router whose store holds one Received lead, with the
// default routing rules and review threshold. Begin records the assignment
// it is given, as the real one does for a lead without an assignment. The
// clock is in Almaty's zone so that a missing conversion to UTC shows.
func setup(t *testing.T) *fixture {
	t.Helper()
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60))
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	f := &fixture{leads: &fakeLeads{}, crm: &fakeCRM{}, pushes: &fakePushes{marks: map[string]time.Time{}, now: now, rdb: rdb}, redis: srv, rdb: rdb, now: now, lead: testLead(now)}
	f.ops = ops.New(f.rdb, time.Now)
	f.leads.GetFn = func(_ context.Context, id string) (*intake.Lead, error) {
		if id != f.lead.ID {
			return nil, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
		}
		// A copy, as a store returns: what the router sets on it does not
		// change what the test expects.
		l := *f.lead
		return &l, nil
	}
	f.pushes.AssignFn = func(_ context.Context, _ string, a intake.Assignment) (intake.Assignment, error) { return a, nil }
	f.router = &jobs.Router{Leads: f.leads, CRM: f.crm, Pushes: f.pushes, Rules: routing.Default(), Workers: f.ops.Workers, Threshold: 70,
		MaxAge: maxAge, Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	return f
}

// task is the lead:route task of the fixture's lead.
func (f *fixture) task() *asynq.Task { return jobs.NewRouteLeadTask(f.lead.ID) }

// recordTransitions makes the store accept every transition and returns
// the transitions so far.
func (f *fixture) recordTransitions() func() []intake.Transition {
	var got []intake.Transition
	f.leads.TransitionFn = func(_ context.Context, _ string, tr intake.Transition) (intake.State, error) {
		got = append(got, tr)
		return tr.To, nil
	}
	return func() []intake.Transition { return got }
}

// cursors returns the round-robin counters in Redis, key to value.
func (f *fixture) cursors(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := f.rdb.Keys(ctx, "lg:route:cursor:*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	got := make(map[string]string, len(keys))
	for _, k := range keys {
		got[k] = f.rdb.Get(ctx, k).Val()
	}
	return got
}

// testLead is a Received lead of an obviously fake person, every field set
// except the assignment, which routing makes. It is what an ordinary
// browser sends: nothing in it raises the risk score.
func testLead(now time.Time) *intake.Lead {
	given := now.Add(-time.Minute).UTC()
	return &intake.Lead{
		ID: "01959a3c-8f00-7000-8000-000000000001", State: intake.Received, EntityType: intake.LegalEntity,
		Name: "Test Testov", Phone: "+77010000000", Email: "test@example.com", TaxID: "123456789012",
		Products: []string{"acquiring", "pos"}, Message: "Please call after ten", Lang: "ru",
		Consent: intake.Consent{Processing: true, Marketing: true, PolicyVersion: "2025-01",
			PolicyURL: "https://example.com/privacy", GivenAt: given, IP: "203.0.113.7",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", PageURL: "https://example.com/connect"},
		Meta: intake.Metadata{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
			Browser: "Firefox", OS: "Linux", Timezone: "Asia/Almaty", PageURL: "https://example.com/connect",
			UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "spring",
			Cookies: map[string]string{"_ga": "GA1.1.123.456"}},
		CreatedAt: given, UpdatedAt: given,
		Observed: intake.Observed{FormAge: 40 * time.Second, ScriptRan: true, BrowserPost: true,
			SameIP: 1, SameEmail: 1, SameTaxID: 1},
		Route: intake.Route{Since: given},
	}
}

// makeRisky turns l into a lead scoring 80: a disposable address, and a form
// posted a second after it was shown.
func makeRisky(l *intake.Lead) {
	l.Email = "test@mailinator.com"
	l.Observed.FormAge = time.Second
}

// riskyRisk is the assessment of a lead makeRisky changed.
var riskyRisk = intake.Risk{Score: 80, Signals: []string{"disposable_email", "fast_submit"}}

// assertNoPII fails when err's message carries the lead's personal data.
func assertNoPII(t *testing.T, err error, l *intake.Lead) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range []string{l.Name, l.Phone, l.Email, l.TaxID, l.Message} {
		if v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("error %q carries personal data", err)
		}
	}
}

func TestKindsAreStable(t *testing.T) {
	t.Parallel()
	// Task types are stored in Redis with every queued task: renaming one
	// orphans the tasks already queued.
	if got := (jobs.RouteLead{}).Kind(); got != "lead:route" {
		t.Errorf("RouteLead kind = %q", got)
	}
	if got := (jobs.SweepLeads{}).Kind(); got != "lead:sweep" {
		t.Errorf("SweepLeads kind = %q", got)
	}
	if got := (jobs.NotifySales{}).Kind(); got != "lead:notify" {
		t.Errorf("NotifySales kind = %q", got)
	}
}

func TestNewRouteLeadTaskCarriesOnlyTheID(t *testing.T) {
	t.Parallel()
	task := jobs.NewRouteLeadTask("01959a3c-8f00-7000-8000-000000000001")
	if task.Type() != "lead:route" {
		t.Errorf("type = %q", task.Type())
	}
	if got, want := string(task.Payload()), `{"lead_id":"01959a3c-8f00-7000-8000-000000000001"}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
}

func TestDocument(t *testing.T) {
	t.Parallel()
	want := crm.Lead{
		ID: "01959a3c-8f00-7000-8000-000000000001", EntityType: "legal_entity", Name: "Test Testov",
		Phone: "+77010000000", Email: "test@example.com", TaxID: "123456789012",
		Products: []string{"acquiring", "pos"}, Message: "Please call after ten", Lang: "ru",
		ReceivedAt: time.Date(2025, 3, 14, 9, 29, 0, 0, time.UTC),
		Consent: crm.Consent{Processing: true, Marketing: true, PolicyVersion: "2025-01",
			PolicyURL: "https://example.com/privacy", GivenAt: time.Date(2025, 3, 14, 9, 29, 0, 0, time.UTC)},
		Metadata: crm.Metadata{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
			Browser: "Firefox", OS: "Linux", Timezone: "Asia/Almaty", PageURL: "https://example.com/connect",
			UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: "spring",
			Cookies: map[string]string{"_ga": "GA1.1.123.456"}},
	}
	for _, tc := range []struct {
		name       string
		assignment *intake.Assignment
		risk       intake.Risk
		want       func(d *crm.Lead)
	}{
		{"assigned", &intake.Assignment{Rule: "pos-legal", Team: "enterprise", Owner: "olga", CRMUserID: "7"},
			intake.Risk{Score: 10, Signals: []string{"no_script"}},
			func(d *crm.Lead) {
				d.Assignment = &crm.Assignment{Rule: "pos-legal", Team: "enterprise", Owner: "olga", CRMUserID: "7"}
				d.Risk = crm.Risk{Score: 10, Signals: []string{"no_script"}}
			}},
		// A lead routed before routing rules existed has no assignment.
		{"not assigned", nil, intake.Risk{}, func(*crm.Lead) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := testLead(time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC))
			l.Assignment, l.Risk = tc.assignment, tc.risk
			w := want
			tc.want(&w)
			if got := jobs.Document(l); !reflect.DeepEqual(got, w) {
				t.Errorf("Document =\n%+v\nwant\n%+v", got, w)
			}
		})
	}
}

func TestRouterRoutes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var pushed []crm.Lead
	f.crm.PushFn = func(_ context.Context, l crm.Lead) (crm.Receipt, error) {
		pushed = append(pushed, l)
		return crm.Receipt{System: "webhook", Ref: "wh-42", URL: "https://crm.example.com/leads/wh-42"}, nil
	}
	var assigned []intake.Assignment
	f.pushes.AssignFn = func(_ context.Context, id string, a intake.Assignment) (intake.Assignment, error) {
		if id != f.lead.ID {
			t.Errorf("Assign of lead %q, want %q", id, f.lead.ID)
		}
		assigned = append(assigned, a)
		return a, nil
	}
	var transitions []intake.Transition
	f.leads.TransitionFn = func(_ context.Context, id string, tr intake.Transition) (intake.State, error) {
		if id != f.lead.ID {
			t.Errorf("Transition of lead %q, want %q", id, f.lead.ID)
		}
		transitions = append(transitions, tr)
		return tr.To, nil
	}

	if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}

	if len(pushed) != 1 {
		t.Fatalf("CRM got %d pushes, want 1", len(pushed))
	}
	p := pushed[0]
	if p.ID != f.lead.ID || p.Phone != "+77010000000" || p.Email != "test@example.com" || p.Name != "Test Testov" {
		t.Errorf("pushed identity = %q %q %q %q", p.ID, p.Phone, p.Email, p.Name)
	}
	wantConsent := crm.Consent{Processing: true, Marketing: true, PolicyVersion: "2025-01",
		PolicyURL: "https://example.com/privacy", GivenAt: f.lead.Consent.GivenAt}
	if p.Consent != wantConsent {
		t.Errorf("pushed consent = %+v, want %+v", p.Consent, wantConsent)
	}
	if p.Metadata.IP != "203.0.113.7" || p.Metadata.UTMCampaign != "spring" || p.Metadata.Cookies["_ga"] != "GA1.1.123.456" {
		t.Errorf("pushed metadata = %+v", p.Metadata)
	}
	wantAssignment := crm.Assignment{Rule: "fallback", Team: "sales", Owner: "sales"}
	if p.Assignment == nil || *p.Assignment != wantAssignment {
		t.Errorf("pushed assignment = %+v, want %+v", p.Assignment, wantAssignment)
	}
	if !reflect.DeepEqual(p.Risk, crm.Risk{}) {
		t.Errorf("pushed risk = %+v, want none", p.Risk)
	}
	routed := *f.lead
	routed.Assignment = &defaultAssignment
	if !reflect.DeepEqual(p, jobs.Document(&routed)) {
		t.Errorf("pushed %+v, want Document(lead)", p)
	}
	if !slices.Equal(assigned, []intake.Assignment{defaultAssignment}) {
		t.Errorf("assigned %+v, want %+v", assigned, defaultAssignment)
	}
	if got := f.cursors(t); !reflect.DeepEqual(got, map[string]string{"lg:route:cursor:sales": "1"}) {
		t.Errorf("cursors = %v, want the sales team's taken once", got)
	}

	at := f.now.UTC()
	want := intake.Transition{From: intake.Received, To: intake.Routed, Risk: &intake.Risk{},
		Route:    intake.Route{System: "webhook", Ref: "wh-42", URL: "https://crm.example.com/leads/wh-42", At: at},
		Transfer: &intake.Transfer{Recipient: "crm:webhook", At: at, Purpose: jobs.PurposeSales, Ref: "wh-42"}}
	if len(transitions) != 1 || !reflect.DeepEqual(transitions[0], want) {
		t.Errorf("transitions = %+v, want one %+v (transfer %+v)", transitions, want, *want.Transfer)
	}
}

func TestRouterSkipsLeadsNotToRoute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		state intake.State // "" for a lead that is gone
	}{
		{"gone", ""},
		{"routed", intake.Routed},
		{"failed", intake.Failed},
		{"blocked", intake.Blocked},
		{"review", intake.Review},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			id := f.lead.ID
			if tc.state == "" {
				id = "01959a3c-8f00-7000-8000-0000000000ff" // erased or purged
			} else {
				f.lead.State = tc.state
			}
			pushes := 0
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
				pushes++
				return crm.Receipt{System: "webhook"}, nil
			}
			f.pushes.AssignFn = nil
			if err := f.router.ProcessTask(context.Background(), jobs.NewRouteLeadTask(id)); err != nil {
				t.Errorf("ProcessTask = %v, want nil", err)
			}
			if pushes != 0 {
				t.Errorf("CRM got %d pushes, want none", pushes)
			}
			if got := f.cursors(t); len(got) != 0 {
				t.Errorf("cursors = %v, want none taken", got)
			}
		})
	}
}

func TestRouterStoreUnavailableRetries(t *testing.T) {
	t.Parallel()
	f := setup(t)
	down := &intake.Error{Code: intake.EUnavailable, Message: "load lead", Err: errors.New("connection refused")}
	f.leads.GetFn = func(context.Context, string) (*intake.Lead, error) { return nil, down }
	err := f.router.ProcessTask(context.Background(), f.task())
	if !errors.Is(err, down) || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want the store's error, retried", err)
	}
}

// A record that cannot be opened (a data key missing from
// LEADGATE_OLD_DATA_KEYS) fails the lead at once: retrying cannot help.
func TestRouterFailsUnreadableLeads(t *testing.T) {
	t.Parallel()
	f := setup(t)
	broken := errors.New("lead x: open sealed value: cipher: message authentication failed")
	f.leads.GetFn = func(context.Context, string) (*intake.Lead, error) { return nil, broken }
	transitions := f.recordTransitions()
	err := f.router.ProcessTask(context.Background(), f.task())
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask = %v, want SkipRetry", err)
	}
	got := transitions()
	if len(got) != 1 || got[0].From != intake.Received || got[0].To != intake.Failed ||
		!strings.Contains(got[0].Route.Error, "unreadable") {
		t.Fatalf("transitions = %+v, want one received → failed naming the unreadable record", got)
	}
}

func TestRouterRetriesWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	pushes := 0
	f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
		pushes++
		return crm.Receipt{System: "webhook"}, nil
	}
	transitions := f.recordTransitions()
	f.redis.Stop()

	err := f.router.ProcessTask(context.Background(), f.task())

	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want an error, retried", err)
	}
	if pushes != 0 {
		t.Errorf("CRM got %d pushes, want none while the gone flag cannot be read", pushes)
	}
	if got := transitions(); len(got) != 0 {
		t.Errorf("transitions = %+v, want none", got)
	}
}

func TestRouterMalformedPayload(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{``, `not json`, `{}`, `{"lead_id":""}`, `null`, `{"lead_id":42}`} {
		t.Run(payload, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.leads.GetFn = nil // the store must not be asked
			err := f.router.ProcessTask(context.Background(), asynq.NewTask("lead:route", []byte(payload)))
			if !errors.Is(err, asynq.SkipRetry) {
				t.Errorf("ProcessTask = %v, want SkipRetry", err)
			}
			if errors.Is(err, errUnexpected) {
				t.Errorf("ProcessTask reached the store: %v", err)
			}
		})
	}
}

func TestRouterRetriesWhileYoung(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		since time.Duration // age of the attempt
	}{
		{"temporary", &integrations.Error{System: "webhook", Op: "push", Status: 503, Kind: integrations.Temporary}, time.Minute},
		{"rate limited", &integrations.Error{System: "bitrix24", Op: "crm.lead.add", Status: 429, Kind: integrations.RateLimited, RetryAfter: time.Second}, time.Minute},
		{"plain error", errors.New("connection reset"), time.Minute},
		{"just under max age", &integrations.Error{System: "webhook", Op: "push", Code: "timeout", Kind: integrations.Temporary}, maxAge - time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.lead.Route.Since = f.now.Add(-tc.since)
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) { return crm.Receipt{}, tc.err }
			// TransitionFn stays nil: recording anything would be wrong.
			err := f.router.ProcessTask(context.Background(), f.task())
			if !errors.Is(err, tc.err) {
				t.Errorf("ProcessTask = %v, want the CRM's error", err)
			}
			if errors.Is(err, asynq.SkipRetry) {
				t.Errorf("ProcessTask = %v: SkipRetry while the lead is young", err)
			}
			if errors.Is(err, errUnexpected) {
				t.Errorf("ProcessTask changed the lead's state: %v", err)
			}
		})
	}
}

func TestRouterGivesUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		since time.Duration
	}{
		{"permanent", &integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent}, time.Minute},
		{"temporary at max age", &integrations.Error{System: "webhook", Op: "push", Status: 502, Kind: integrations.Temporary}, maxAge},
		{"temporary past max age", &integrations.Error{System: "webhook", Op: "push", Code: "timeout", Kind: integrations.Temporary}, maxAge + time.Hour},
		{"rate limited past max age", &integrations.Error{System: "bitrix24", Op: "crm.lead.add", Status: 429, Kind: integrations.RateLimited}, maxAge + time.Hour},
		{"plain error past max age", errors.New("connection reset"), maxAge + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.lead.Route.Since = f.now.Add(-tc.since)
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) { return crm.Receipt{}, tc.err }
			transitions := f.recordTransitions()

			err := f.router.ProcessTask(context.Background(), f.task())

			if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, tc.err) {
				t.Errorf("ProcessTask = %v, want the CRM's error wrapped with SkipRetry", err)
			}
			assertNoPII(t, err, f.lead)
			want := intake.Transition{From: intake.Received, To: intake.Failed, Risk: &intake.Risk{},
				Route: intake.Route{Error: tc.err.Error(), At: f.now.UTC()}}
			if got := transitions(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Errorf("transitions = %+v, want one %+v", got, want)
			}
			if n := f.rdb.Exists(context.Background(), "lg:crm:gone").Val(); n != 0 {
				t.Error("a failure other than 410 Gone disabled the CRM")
			}
		})
	}
}

// After the CRM took the lead, a Redis outage does not send the task round
// again (which would push again): recording the outcome is retried for as
// long as the task may run.
func TestRouterWaitsOutRedisToRecordThePush(t *testing.T) {
	t.Parallel()
	down := &intake.Error{Code: intake.EUnavailable, Message: "change lead state", Err: errors.New("connection refused")}
	f := setup(t)
	pushes := 0
	f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
		pushes++
		return crm.Receipt{System: "webhook", Ref: f.lead.ID}, nil
	}
	notified := 0
	f.router.Notify = func(context.Context, string) error {
		notified++
		if notified < 3 {
			return errors.New("dial unix redis.sock: connect: connection refused")
		}
		return nil
	}
	tries := 0
	f.leads.TransitionFn = func(_ context.Context, _ string, tr intake.Transition) (intake.State, error) {
		tries++
		if tries < 3 {
			return "", down
		}
		return tr.To, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.router.ProcessTask(ctx, f.task()); err != nil {
		t.Fatalf("ProcessTask = %v, want the outcome recorded once Redis answered", err)
	}
	if pushes != 1 || notified != 3 || tries != 3 {
		t.Errorf("pushes, notification tries, transition tries = %d, %d, %d; want 1, 3, 3", pushes, notified, tries)
	}
}

// When the task's context ends first (its deadline, or asynq's lease ended
// because Redis stayed down), the error is returned for a retry: the lead
// stays Received and the redo pushes again, marked as a redo.
func TestRouterRetriesWhenTheOutcomeIsNotRecorded(t *testing.T) {
	t.Parallel()
	down := &intake.Error{Code: intake.EUnavailable, Message: "change lead state", Err: errors.New("i/o timeout")}
	for _, tc := range []struct {
		name   string
		result error // what the CRM answers
		tries  int   // transitions tried before the error is returned
	}{
		// The push succeeded: the router tries to record it until the
		// context ends; the retry pushes again, which the CRM takes
		// idempotently, and then records the transfer.
		{"routed", nil, 2},
		// The failure must be recorded once Redis is back, not lost: the
		// retry records it.
		{"failed", &integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
				return crm.Receipt{System: "webhook", Ref: "wh-42"}, tc.result
			}
			// The context ends at the second try, however long the work
			// before it took; 30 s is a backstop.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tries := 0
			f.leads.TransitionFn = func(context.Context, string, intake.Transition) (intake.State, error) {
				if tries++; tries == 2 {
					cancel()
				}
				return "", down
			}
			err := f.router.ProcessTask(ctx, f.task())
			if !errors.Is(err, down) || errors.Is(err, asynq.SkipRetry) {
				t.Errorf("ProcessTask = %v, want the store's error, retried", err)
			}
			if tries != tc.tries {
				t.Errorf("transition tried %d times, want %d", tries, tc.tries)
			}
		})
	}
}

func TestRouterAsksTheCRMToDeleteALeadErasedDuringThePush(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
		return crm.Receipt{System: "bitrix24", Ref: "4242"}, nil
	}
	f.leads.TransitionFn = func(context.Context, string, intake.Transition) (intake.State, error) {
		return "", &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
	}
	var asked []string
	f.router.Erase = func(_ context.Context, id, system, ref string) error {
		asked = append(asked, id+" "+system+" "+ref)
		return nil
	}
	if err := f.router.ProcessTask(context.Background(), f.task()); err != nil {
		t.Fatalf("ProcessTask = %v", err)
	}
	if len(asked) != 1 || !strings.HasSuffix(asked[0], " bitrix24 4242") {
		t.Errorf("erase requests %q, want one for bitrix24 4242", asked)
	}
}
