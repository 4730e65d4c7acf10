package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
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
	"github.com/paymtech/leadgate/intake/risk"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/jobs/routing"
)

// redisEnv is a lead store and an asynq queue over a private redis-server.
type redisEnv struct {
	rdb    redis.UniversalClient
	store  *redisstore.Store
	ops    *ops.Records // the workers' records on the same Redis
	client *asynq.Client
	queue  *jobs.Queue
	insp   *asynq.Inspector
}

// setupRedis starts a redis-server for t. now is the store's clock.
func setupRedis(t *testing.T, now func() time.Time) *redisEnv {
	t.Helper()
	return setupRedisOn(t, redistest.Start(t), now)
}

// setupRedisOn is setupRedis over a server the test started.
func setupRedisOn(t *testing.T, srv *redistest.Server, now func() time.Time) *redisEnv {
	t.Helper()
	rdb := srv.Client(t)
	keys, err := seal.NewKeys(bytes.Repeat([]byte{0x11}, 32), nil, bytes.Repeat([]byte{0x22}, 32))
	if err != nil {
		t.Fatal(err)
	}
	// The asynq client and inspector share rdb, which the test closes.
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	return &redisEnv{rdb: rdb, store: redisstore.New(rdb, keys, now), ops: ops.New(rdb, now), client: client,
		queue: jobs.NewQueue(client, insp), insp: insp}
}

// accept stores the n-th obviously fake person's request, sent from an
// ordinary browser, and returns its id.
func (e *redisEnv) accept(t *testing.T, n int) string {
	t.Helper()
	return e.acceptObserved(t, n, intake.Observed{})
}

// acceptObserved is accept with what intake observed of the request.
func (e *redisEnv) acceptObserved(t *testing.T, n int, obs intake.Observed) string {
	t.Helper()
	email := fmt.Sprintf("test%d@example.com", n)
	meta := intake.Metadata{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
		Browser: "Firefox", OS: "Linux", Timezone: "Asia/Almaty", PageURL: "https://example.com/connect"}
	adm, err := e.store.Leads.Accept(context.Background(), intake.Application{
		Submission: &intake.Submission{EntityType: intake.SoleProprietor, Name: "Test Testov",
			Phone: fmt.Sprintf("+7701%07d", n), Email: email, EmailKey: email,
			Products: []string{"acquiring"}, Lang: "ru", PageURL: meta.PageURL, Timezone: meta.Timezone},
		Consent: intake.Consent{Processing: true, PolicyVersion: "2025-01", PolicyURL: "https://example.com/privacy",
			GivenAt: time.Now().UTC(), IP: meta.IP, UserAgent: meta.UserAgent, PageURL: meta.PageURL},
		Meta:     meta,
		Observed: obs,
		PerIP:    intake.Limit{N: 100, Per: time.Hour},
		PerEmail: intake.Limit{N: 100, Per: time.Hour},
	})
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if adm.Duplicate || adm.State != intake.Received {
		t.Fatalf("Accept = %+v, want a new Received lead", adm)
	}
	return adm.ID
}

// get loads a lead, failing the test when it cannot.
func (e *redisEnv) get(t *testing.T, id string) *intake.Lead {
	t.Helper()
	l, err := e.store.Leads.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return l
}

// startWorker runs an asynq server with the production configuration over
// e, routing to c with the default rules and review threshold, without
// notifications.
func (e *redisEnv) startWorker(t *testing.T, c jobs.CRM) {
	t.Helper()
	e.serve(t, e.router(c), nil)
}

// router is the production Router over e: default rules, threshold 70.
func (e *redisEnv) router(c jobs.CRM) *jobs.Router {
	return &jobs.Router{Leads: e.store.Leads, CRM: c, Pushes: delivery.New(e.rdb, time.Now), Rules: routing.Default(), Workers: e.ops.Workers, Threshold: 70,
		MaxAge: time.Hour, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
}

// serve runs an asynq server with the production configuration over e and
// the handlers given; n may be nil. Only asynq's polling intervals are
// shortened (they default to seconds), so retries happen within the test's
// time.
func (e *redisEnv) serve(t *testing.T, r *jobs.Router, n *jobs.Notifier) {
	t.Helper()
	e.serveHandlers(t, jobs.Handlers{Router: r, Notifier: n})
}

// serveHandlers is serve with the handlers given, and the sweeper.
func (e *redisEnv) serveHandlers(t *testing.T, h jobs.Handlers) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	h.Sweeper = e.sweeper()
	cfg := jobs.ServerConfig(10*time.Millisecond, log)
	cfg.TaskCheckInterval = 10 * time.Millisecond
	cfg.DelayedTaskCheckInterval = 10 * time.Millisecond
	srv := asynq.NewServerFromRedisClient(e.rdb, cfg)
	if err := srv.Start(jobs.NewMux(h)); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(srv.Shutdown)
}

// sweeper is the production Sweeper over e.
func (e *redisEnv) sweeper() *jobs.Sweeper {
	return &jobs.Sweeper{Leads: e.store.Leads, Queue: e.queue, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
}

// waitFor polls cond every 20 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUpTo(t, 10*time.Second, what, cond)
}

// waitUpTo polls cond every 20 ms for up to d.
func waitUpTo(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// taskGone reports whether the lead's task has left the queue, which a
// task does once it succeeds.
func (e *redisEnv) taskGone(t *testing.T, id string) bool {
	t.Helper()
	_, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+id)
	if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	return err != nil
}

// scriptedCRM answers pushes in turn from answers (the last one repeats)
// and records each push with the retry count asynq gave the handler.
type scriptedCRM struct {
	fakeCRM
	mu      sync.Mutex
	pushes  []crm.Lead
	retried []int
}

// newScriptedCRM returns a CRM answering errs in turn and then accepting
// every push with a receipt; a nil entry in errs is an acceptance too.
func newScriptedCRM(errs ...error) *scriptedCRM {
	c := &scriptedCRM{}
	c.PushFn = func(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
		n, _ := asynq.GetRetryCount(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		attempt := len(c.pushes)
		c.pushes = append(c.pushes, l)
		c.retried = append(c.retried, n)
		if attempt < len(errs) && errs[attempt] != nil {
			return crm.Receipt{}, errs[attempt]
		}
		return crm.Receipt{System: "webhook", Ref: "wh-" + l.ID}, nil
	}
	return c
}

// seen returns the pushes so far and the retry count of each.
func (c *scriptedCRM) seen() ([]crm.Lead, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pushes), slices.Clone(c.retried)
}

// checkPushes fails unless every push was the same document of lead id.
func checkPushes(t *testing.T, pushes []crm.Lead, id string) {
	t.Helper()
	for i, p := range pushes {
		if p.ID != id || p.Phone != "+77010000001" || p.Email != "test1@example.com" || !p.Consent.Processing {
			t.Errorf("push %d = %+v, not the lead accepted", i, p)
		}
		if !reflect.DeepEqual(p, pushes[0]) {
			t.Errorf("push %d differs from push 0:\n%+v\n%+v", i, p, pushes[0])
		}
	}
}

// checkRouted fails unless lead id is Routed to the scripted CRM, assigned
// by the default rules, with one entry in its disclosure log.
func (e *redisEnv) checkRouted(t *testing.T, id string) {
	t.Helper()
	l := e.get(t, id)
	if l.State != intake.Routed || l.Route.System != "webhook" || l.Route.Ref != "wh-"+id || l.Route.At.IsZero() || l.Route.Error != "" {
		t.Errorf("lead state %s, route %+v; want routed to webhook", l.State, l.Route)
	}
	if l.Assignment == nil || *l.Assignment != defaultAssignment {
		t.Errorf("assignment = %+v, want %+v", l.Assignment, defaultAssignment)
	}
	if len(l.Transfers) != 1 {
		t.Fatalf("transfers = %+v, want one", l.Transfers)
	}
	if tr := l.Transfers[0]; tr.Recipient != "crm:webhook" || tr.Purpose != jobs.PurposeSales || tr.Ref != "wh-"+id || tr.At.IsZero() {
		t.Errorf("transfer = %+v", tr)
	}
}

// inState reports whether lead id is in state s.
func (e *redisEnv) inState(t *testing.T, id string, s intake.State) func() bool {
	return func() bool { return e.get(t, id).State == s }
}

func TestWorkerRetriesTemporaryFailures(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	id := e.accept(t, 1)
	ctx := context.Background()
	for range 2 { // the second enqueue is a harmless no-op
		if err := e.queue.EnqueueLead(ctx, id); err != nil {
			t.Fatalf("EnqueueLead: %v", err)
		}
	}
	info, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+id)
	if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	if info.Type != "lead:route" || info.State != asynq.TaskStatePending || info.MaxRetry != 500 || info.Timeout != 2*time.Minute {
		t.Errorf("task = type %s, state %s, max retry %d, timeout %v", info.Type, info.State, info.MaxRetry, info.Timeout)
	}
	if pending, err := e.insp.ListPendingTasks(jobs.QueueLeads); err != nil || len(pending) != 1 {
		t.Fatalf("pending tasks = %d (%v), want 1", len(pending), err)
	}

	temporary := &integrations.Error{System: "webhook", Op: "push", Status: 502, Kind: integrations.Temporary}
	c := newScriptedCRM(temporary, temporary)
	e.startWorker(t, c)

	waitFor(t, "the lead routed and its task done", func() bool {
		return e.inState(t, id, intake.Routed)() && e.taskGone(t, id)
	})
	e.checkRouted(t, id)
	pushes, retried := c.seen()
	if len(pushes) != 3 {
		t.Fatalf("CRM got %d pushes, want 3", len(pushes))
	}
	checkPushes(t, pushes, id)
	if !slices.Equal(retried, []int{0, 1, 2}) {
		t.Errorf("retry counts = %v, want [0 1 2]: temporary failures count", retried)
	}
}

func TestWorkerWaitsOutRateLimits(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	id := e.accept(t, 1)
	// With MaxRetry 2, five rate-limited attempts would exhaust the task if
	// they counted as failures.
	if _, err := e.client.Enqueue(jobs.NewRouteLeadTask(id), asynq.MaxRetry(2)); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	limited := &integrations.Error{System: "webhook", Op: "push", Status: 429, Kind: integrations.RateLimited,
		RetryAfter: 20 * time.Millisecond}
	c := newScriptedCRM(limited, limited, limited, limited, limited)
	e.startWorker(t, c)

	waitFor(t, "the lead routed and its task done", func() bool {
		return e.inState(t, id, intake.Routed)() && e.taskGone(t, id)
	})
	e.checkRouted(t, id)
	pushes, retried := c.seen()
	if len(pushes) != 6 {
		t.Fatalf("CRM got %d pushes, want 6", len(pushes))
	}
	checkPushes(t, pushes, id)
	if !slices.Equal(retried, []int{0, 0, 0, 0, 0, 0}) {
		t.Errorf("retry counts = %v, want all 0: rate limits are not failures", retried)
	}
}

func TestWorkerGivesUp(t *testing.T) {
	t.Parallel()
	permanent := &integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent}
	temporary := &integrations.Error{System: "webhook", Op: "push", Code: "timeout", Kind: integrations.Temporary}
	for _, tc := range []struct {
		name     string
		err      error
		opts     []asynq.Option
		attempts int
	}{
		{"permanent", permanent, nil, 1},
		// asynq tells the handler the retry count and limit only inside a
		// server; the task's own limit of 500 is lowered for the test.
		{"out of retries", temporary, []asynq.Option{asynq.MaxRetry(1)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setupRedis(t, time.Now)
			id := e.accept(t, 1)
			if _, err := e.client.Enqueue(jobs.NewRouteLeadTask(id), tc.opts...); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			c := newScriptedCRM(tc.err, tc.err, tc.err)
			e.startWorker(t, c)

			var archived *asynq.TaskInfo
			waitFor(t, "the lead failed and its task archived", func() bool {
				tasks, err := e.insp.ListArchivedTasks(jobs.QueueLeads)
				if err != nil {
					t.Fatalf("ListArchivedTasks: %v", err)
				}
				for _, task := range tasks {
					if task.ID == "lead:route:"+id {
						archived = task
					}
				}
				return archived != nil && e.inState(t, id, intake.Failed)()
			})
			l := e.get(t, id)
			if l.Route.Error != tc.err.Error() || l.Route.At.IsZero() || l.Route.System != "" {
				t.Errorf("route = %+v, want the error %q recorded", l.Route, tc.err)
			}
			if len(l.Transfers) != 0 {
				t.Errorf("transfers = %+v, want none: nothing left leadgate", l.Transfers)
			}
			if pushes, _ := c.seen(); len(pushes) != tc.attempts {
				t.Errorf("CRM got %d pushes, want %d", len(pushes), tc.attempts)
			}
			assertNoPII(t, errors.New(archived.LastErr), l)
		})
	}
}

func TestWorkerRedrivesAFailedLead(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	id := e.accept(t, 1)
	ctx := context.Background()
	if err := e.queue.EnqueueLead(ctx, id); err != nil {
		t.Fatalf("EnqueueLead: %v", err)
	}
	// Refused once (a misconfigured CRM field, say), accepted after the fix.
	c := newScriptedCRM(&integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent})
	e.startWorker(t, c)
	waitFor(t, "the lead failed and its task archived", func() bool {
		return e.inState(t, id, intake.Failed)() && e.taskState(t, "lead:route:"+id) == asynq.TaskStateArchived
	})

	// What POST /v1/admin/leads/{id}/redrive does.
	if _, err := e.store.Leads.Redrive(ctx, id); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	if err := e.queue.EnqueueLead(ctx, id); err != nil {
		t.Fatalf("EnqueueLead: %v", err)
	}

	waitFor(t, "the lead routed and its task done", func() bool {
		return e.inState(t, id, intake.Routed)() && e.taskGone(t, id)
	})
	e.checkRouted(t, id)
	pushes, _ := c.seen()
	if len(pushes) != 2 {
		t.Fatalf("CRM got %d pushes, want 2", len(pushes))
	}
	checkPushes(t, pushes, id)
}

func TestWorkerHoldsRiskyLeadsForReview(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	// Posted a second after the form was shown, with a forged form token.
	id := e.acceptObserved(t, 1, intake.Observed{FormAge: time.Second, FormTokenInvalid: true})
	ctx := context.Background()
	if err := e.queue.EnqueueLead(ctx, id); err != nil {
		t.Fatalf("EnqueueLead: %v", err)
	}
	c := newScriptedCRM()
	e.startWorker(t, c)
	waitFor(t, "the lead held for review and its task done", func() bool {
		return e.inState(t, id, intake.Review)() && e.taskGone(t, id)
	})
	wantRisk := intake.Risk{Score: 90, Signals: []string{"fast_submit", "forged_form_token"}}
	l := e.get(t, id)
	if !reflect.DeepEqual(l.Risk, wantRisk) || l.Assignment != nil || len(l.Transfers) != 0 {
		t.Errorf("held lead: risk %+v, assignment %+v, transfers %+v; want risk %+v, no assignment, nothing sent",
			l.Risk, l.Assignment, l.Transfers, wantRisk)
	}
	if pushes, _ := c.seen(); len(pushes) != 0 {
		t.Errorf("CRM got %d pushes, want none", len(pushes))
	}
	if n := e.rdb.Exists(ctx, "lg:route:cursor:sales").Val(); n != 0 {
		t.Error("a held lead took a salesperson's turn")
	}

	// A reviewer releases it.
	if _, err := e.store.Leads.Redrive(ctx, id); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	if err := e.queue.EnqueueLead(ctx, id); err != nil {
		t.Fatalf("EnqueueLead: %v", err)
	}
	waitFor(t, "the released lead routed", e.inState(t, id, intake.Routed))
	e.checkRouted(t, id)
	if l := e.get(t, id); !reflect.DeepEqual(l.Risk, wantRisk) {
		t.Errorf("routed lead's risk = %+v, want %+v", l.Risk, wantRisk)
	}
	if pushes, _ := c.seen(); len(pushes) != 1 || !reflect.DeepEqual(pushes[0].Risk, crm.Risk(wantRisk)) {
		t.Errorf("pushes = %+v, want one carrying the risk", pushes)
	}
}

func TestWorkerNotifiesSales(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	id := e.accept(t, 1)
	ctx := context.Background()
	if err := e.queue.EnqueueLead(ctx, id); err != nil {
		t.Fatalf("EnqueueLead: %v", err)
	}
	var mu sync.Mutex
	var notified []crm.Lead
	var receipts []crm.Receipt
	channel := &fakeChannel{
		NameFn: func() string { return "telegram" },
		NotifyFn: func(_ context.Context, l crm.Lead, r crm.Receipt) error {
			mu.Lock()
			defer mu.Unlock()
			notified, receipts = append(notified, l), append(receipts, r)
			return nil
		},
	}
	r := e.router(newScriptedCRM())
	r.Notify = func(ctx context.Context, id string) error { return e.queue.EnqueueNotify(ctx, id, "telegram") }
	e.serve(t, r, &jobs.Notifier{Leads: e.store.Leads, Channels: []jobs.SalesChannel{channel}, Now: time.Now, Log: slog.New(slog.DiscardHandler)})

	waitFor(t, "the lead routed and sales told", func() bool {
		return len(e.get(t, id).Transfers) == 2
	})
	l := e.get(t, id)
	if l.State != intake.Routed {
		t.Errorf("state = %s, want routed", l.State)
	}
	if tr := l.Transfers[1]; tr.Recipient != "telegram" || tr.Purpose != jobs.PurposeNotify || tr.At.IsZero() {
		t.Errorf("second transfer = %+v, want the notification", tr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notified) != 1 || notified[0].ID != id || notified[0].Assignment == nil || *notified[0].Assignment != crm.Assignment(defaultAssignment) {
		t.Errorf("channel got %+v, want the routed lead once", notified)
	}
	if want := (crm.Receipt{System: "webhook", Ref: "wh-" + id}); len(receipts) != 1 || receipts[0] != want {
		t.Errorf("receipts = %+v, want %+v", receipts, want)
	}
}

// The router takes a new lead's repeat counts as it first reads it, once:
// the fifth lead from one address within a day goes to sales with the
// repeat_ip signal, and routing a lead again does not count it again.
func TestRoutingCountsRepeats(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	ctx := context.Background()
	c := newScriptedCRM()
	r := e.router(c)
	var ids []string
	for n := range 5 { // all from 203.0.113.7
		ids = append(ids, e.accept(t, n+1))
	}
	for _, id := range append(ids, ids[4]) { // the last one twice: a retried task
		if err := r.ProcessTask(ctx, jobs.NewRouteLeadTask(id)); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		if got := e.get(t, id).Observed.SameIP; got != i+1 {
			t.Errorf("lead %d: same_ip %d, want %d", i+1, got, i+1)
		}
	}
	pushes, _ := c.seen()
	if last := pushes[len(pushes)-1]; last.ID != ids[4] || !slices.Contains(last.Risk.Signals, risk.SignalRepeatIP) {
		t.Errorf("last push %s with signals %v, want %s with %s", last.ID, last.Risk.Signals, ids[4], risk.SignalRepeatIP)
	}
}
