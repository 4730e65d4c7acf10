package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/jobs"
)

const day = 24 * time.Hour

// purgeEnv is a store with one lead past a 30-day retention and one fresh,
// and queue residues of both in asynq: archived route tasks, completed
// tasks (one kept by its own long retention), a scheduled task.
type purgeEnv struct {
	*redisEnv
	clk            *clock
	expired, fresh string
	log            *bytes.Buffer // what the purgers logged
	logger         *slog.Logger  // one handler, so purgers at once write log in turn
}

func setupPurge(t *testing.T) *purgeEnv {
	t.Helper()
	now := time.Now().Truncate(time.Millisecond)
	clk := &clock{t: now.Add(-31 * day)}
	p := &purgeEnv{redisEnv: setupRedis(t, clk.now), clk: clk, log: &bytes.Buffer{}}
	p.logger = slog.New(slog.NewTextHandler(p.log, nil))
	ctx := context.Background()
	p.expired = p.accept(t, 1)
	clk.set(now)
	p.fresh = p.accept(t, 2)
	for _, id := range []string{p.expired, p.fresh} {
		if err := p.queue.EnqueueLead(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := p.insp.ArchiveTask(jobs.QueueLeads, "lead:route:"+id); err != nil {
			t.Fatalf("ArchiveTask: %v", err)
		}
	}
	if _, err := p.client.Enqueue(jobs.NewNotifySalesTask(p.fresh, "telegram"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// Completed tasks exist only with asynq.Retention: one expiring within
	// the hour, one kept 90 days, both naming the expired lead.
	srv := asynq.NewServerFromRedisClient(p.rdb, asynq.Config{Queues: map[string]int{jobs.QueueMaintenance: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:done", func(context.Context, *asynq.Task) error { return nil })
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []time.Duration{time.Hour, 90 * day} {
		id := fmt.Sprintf("test:done:%s:%v", p.expired, keep)
		if _, err := p.client.Enqueue(asynq.NewTask("test:done", fmt.Appendf(nil, `{"lead_id":%q}`, p.expired)),
			asynq.TaskID(id), asynq.Queue(jobs.QueueMaintenance), asynq.Retention(keep)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a completed task", func() bool {
			info, err := p.insp.GetTaskInfo(jobs.QueueMaintenance, id)
			return err == nil && info.State == asynq.TaskStateCompleted
		})
	}
	srv.Shutdown()
	return p
}

// purger is the production Purger over p with a 30-day lead retention;
// its task clock is the store's.
func (p *purgeEnv) purger(taskRetention time.Duration) *jobs.Purger {
	return &jobs.Purger{Store: p.store.Retention, Audit: p.ops.Audit, Workers: p.ops.Workers, Redis: p.rdb, LeadRetention: 30 * day, OptinTTL: 7 * day,
		TaskRetention: taskRetention, Batch: 2, Now: p.clk.now, Log: p.logger}
}

// tasks counts the archived, completed and scheduled tasks of every queue.
func (p *purgeEnv) tasks(t *testing.T) (archived, completed, scheduled int) {
	t.Helper()
	queues, err := p.insp.Queues() // the ones that exist so far
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		info, err := p.insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		archived, completed, scheduled = archived+info.Archived, completed+info.Completed, scheduled+info.Scheduled
	}
	return archived, completed, scheduled
}

// keysHolding lists the keys whose name or value contains s, reading every
// key in Redis whole. Keys that expire within a day on their own are left
// out: Redis's clock does not follow the test's.
func keysHolding(t *testing.T, rdb redis.UniversalClient, s string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if ttl := rdb.PTTL(ctx, k).Val(); ttl > 0 && ttl <= 25*time.Hour {
			continue
		}
		var v []string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			v = []string{rdb.Get(ctx, k).Val()}
		case "hash":
			for f, x := range rdb.HGetAll(ctx, k).Val() {
				v = append(v, f, x)
			}
		case "list":
			v = rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			v = rdb.SMembers(ctx, k).Val()
		case "zset":
			v = rdb.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				v = append(v, fmt.Sprint(m.Values))
			}
		default:
			t.Fatalf("key %s has type %s", k, typ)
		}
		if strings.Contains(k, s) || strings.Contains(strings.Join(v, "\n"), s) {
			found = append(found, k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

func purgedTotal(t *testing.T, kind string) float64 {
	t.Helper()
	return counterValue(t, "leadgate_purged_total", "kind", kind)
}

// counterValue is the value of the counter name whose label has value, as
// the default registry holds it (0 when never counted).
func counterValue(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestPurgerRemovesLeadsThenTheirTasks(t *testing.T) {
	t.Parallel()
	p := setupPurge(t)
	ctx := context.Background()
	if a, c, s := p.tasks(t); a != 2 || c != 2 || s != 1 {
		t.Fatalf("set up %d archived, %d completed, %d scheduled tasks; want 2, 2, 1", a, c, s)
	}

	// Today: the lead is past retention, its tasks are young.
	young := p.purger(7 * day)
	dry, err := young.Purge(ctx, true)
	if err != nil || dry.Leads != 1 || dry.Tasks != 0 || !dry.DryRun {
		t.Fatalf("dry run = %+v, %v; want 1 lead, 0 tasks", dry, err)
	}
	if _, err := p.store.Leads.Get(ctx, p.expired); err != nil {
		t.Fatalf("the dry run removed the lead: %v", err)
	}
	leadsBefore := purgedTotal(t, "leads")
	r, err := young.Purge(ctx, false)
	if err != nil || r.Leads != 1 || r.People != 1 || r.Tasks != 0 {
		t.Fatalf("purge = %+v, %v; want 1 lead, 1 person, 0 tasks", r, err)
	}
	if got := purgedTotal(t, "leads"); got < leadsBefore+1 {
		t.Errorf("leadgate_purged_total{kind=leads} = %v, want at least %v", got, leadsBefore+1)
	}
	if _, err := p.store.Leads.Get(ctx, p.expired); intake.ErrorCode(err) != intake.ENotFound {
		t.Fatalf("Get(expired) = %v, want ENotFound", err)
	}
	if a, c, _ := p.tasks(t); a != 2 || c != 2 {
		t.Fatalf("young tasks: %d archived, %d completed left; want all kept", a, c)
	}

	// Eight days on, the clock's task: the queue residues are past
	// TASK_RETENTION (one completed task only by its completion time).
	p.clk.set(p.clk.now().Add(8 * day))
	h := jobs.Handlers{Purger: p.purger(7 * day)}
	if err := jobs.NewMux(h).ProcessTask(ctx, asynq.NewTask("lead:purge", nil)); err != nil {
		t.Fatalf("lead:purge: %v", err)
	}
	if a, c, s := p.tasks(t); a != 0 || c != 0 || s != 1 {
		t.Fatalf("after the purge: %d archived, %d completed, %d scheduled; want 0, 0, 1", a, c, s)
	}
	if keys := keysHolding(t, p.rdb, p.expired); len(keys) > 0 {
		t.Errorf("the expired lead's id is still in %q", keys)
	}
	if l, err := p.store.Leads.Get(ctx, p.fresh); err != nil || l.Name != "Test Testov" {
		t.Errorf("fresh lead = %v, %v", l, err)
	}
	logged := p.log.String()
	if !strings.Contains(logged, "msg=purge") || !strings.Contains(logged, "tasks=4") ||
		strings.Contains(logged, p.expired) || strings.Contains(logged, "example.com") {
		t.Errorf("log = %q; want the purge's counts and nothing else", logged)
	}
	var purges []string
	for _, m := range p.rdb.XRange(ctx, "lg:audit", "-", "+").Val() {
		if m.Values["role"] == "system" && m.Values["name"] == "purge" {
			purges = append(purges, fmt.Sprint(m.Values["detail"]))
		}
	}
	if len(purges) != 2 || !strings.Contains(strings.Join(purges, " | "), "tasks=4") {
		t.Errorf("audit log purges = %q, want the two purges that removed something", purges)
	}

	// Nothing more to do: no change, no audit event.
	r, err = p.purger(7*day).Purge(ctx, false)
	if err != nil || r.Leads+r.People+r.Optins+r.Tasks+r.StaleKeys+r.Campaigns != 0 {
		t.Errorf("a third purge = %+v, %v; want nothing", r, err)
	}
}

func TestPurgerLock(t *testing.T) {
	t.Parallel()
	p := setupPurge(t)
	ctx := context.Background()
	if err := p.rdb.Set(ctx, "lg:purge:lock", "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.purger(7*day).Purge(ctx, false); !errors.Is(err, jobs.ErrPurgeRunning) {
		t.Fatalf("Purge while locked = %v, want ErrPurgeRunning", err)
	}
	if err := p.purger(7*day).ProcessTask(ctx, asynq.NewTask("lead:purge", nil)); err != nil {
		t.Fatalf("lead:purge while locked = %v, want a skip", err)
	}
	if r, err := p.purger(7*day).Purge(ctx, true); err != nil || r.Leads != 1 {
		t.Fatalf("dry run while locked = %+v, %v; want it counted", r, err)
	}
	if _, err := p.store.Leads.Get(ctx, p.expired); err != nil {
		t.Fatalf("a locked-out purge removed the lead: %v", err)
	}
	p.rdb.Del(ctx, "lg:purge:lock")

	// Two clocks' tasks at once: one purges, the other skips or finds
	// nothing left; neither fails, and the lock is released after.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = p.purger(7*day).ProcessTask(ctx, asynq.NewTask("lead:purge", nil)) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("two purges at once: %v, %v", errs[0], errs[1])
	}
	if _, err := p.store.Leads.Get(ctx, p.expired); intake.ErrorCode(err) != intake.ENotFound {
		t.Fatalf("Get(expired) after two purges = %v, want ENotFound", err)
	}
	if n := p.rdb.Exists(ctx, "lg:purge:lock").Val(); n != 0 {
		t.Error("the purge lock was not released")
	}
}

func TestPurgeReportString(t *testing.T) {
	t.Parallel()
	r := jobs.PurgeReport{PurgeReport: intake.PurgeReport{Leads: 12, People: 3, Optins: 2, ConsentKept: 5, DryRun: true}, Tasks: 40}
	want := "leads 12, people 3, optins 2, tasks 40, stale keys 0, campaign marks 0; " +
		"5 people past retention kept for their marketing consent (dry run: nothing removed)"
	if got := r.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
