package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

var purged = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadgate_purged_total",
	Help: "Records removed by the retention purge, by kind (leads, people, optins, tasks, stale_keys, campaign_marks). stale_keys above zero is a bug: those keys should expire on their own.",
}, []string{"kind"})

// ErrPurgeRunning is Purger.Purge's answer while another purge holds the
// lock (the clock's, or a second clock's, or an operator's).
var ErrPurgeRunning = errors.New("another purge is running")

// Purge lock: one purge at a time across every process. The lock is short
// and renewed while the purge runs, so a crashed purge holds it for at most
// purgeLockTTL.
const (
	purgeLockTTL      = 2 * time.Minute
	purgeLockRenew    = 30 * time.Second
	defaultPurgeBatch = 25 // tasks a call: one call stays well under a millisecond
)

// Purger is the retention purge: the lead store's records past retention
// (redisstore.Retention), then the queue's residues — completed and
// archived asynq tasks older than TaskRetention in every queue of Queues,
// which asynq itself keeps for months (its archive holds failed tasks 90
// days).
type Purger struct {
	Store          PurgeStore
	Audit          AuditLog
	Workers        PurgeWorkers
	Redis          redis.UniversalClient // asynq's Redis: its task sets are read and trimmed
	LeadRetention  time.Duration         // LEAD_RETENTION
	OptinTTL       time.Duration         // UNCONFIRMED_OPTIN_TTL
	TaskRetention  time.Duration         // TASK_RETENTION
	AuditRetention time.Duration         // AUDIT_RETENTION; zero means its default (1095 days)
	Batch          int                   // records per Redis call; zero means the store's default (PurgeOptions.Batch) and 25 tasks
	Now            func() time.Time
	Log            *slog.Logger
}

// PurgeStore is what the purge removes from the lead store
// (redisstore.Retention).
type PurgeStore interface {
	Purge(ctx context.Context, o intake.PurgeOptions) (intake.PurgeReport, error)
}

// AuditLog is the audit log (ops.Audit): the purge trims it to its
// retention, so old events go even when nobody calls the admin API (which
// trims as it appends), and records a purge that removed something, as
// proof it was done.
type AuditLog interface {
	Trim(ctx context.Context, retention time.Duration) error
	Append(ctx context.Context, ev intake.AuditEvent, retention time.Duration) error
}

// PurgeWorkers are the purge lock and the trimming of asynq's task sets
// (ops.Workers).
type PurgeWorkers interface {
	TakePurgeLock(ctx context.Context, owner string, ttl time.Duration) (bool, error)
	RenewPurgeLock(ctx context.Context, owner string, ttl time.Duration) error
	ReleasePurgeLock(ctx context.Context, owner string) error
	RemoveTasks(ctx context.Context, set, taskKeyPrefix string, before time.Time, batch int) (int, error)
}

// PurgeReport is what one purge removed (or, in a dry run, would remove):
// counts only.
type PurgeReport struct {
	intake.PurgeReport
	Tasks int // completed and archived queue tasks
}

// String is the report as one line for an operator, e.g. "leads 12,
// people 3, optins 2, tasks 40, stale keys 0, campaign marks 1".
func (r PurgeReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "leads %d, people %d, optins %d, tasks %d, stale keys %d, campaign marks %d",
		r.Leads, r.People, r.Optins, r.Tasks, r.StaleKeys, r.Campaigns)
	if r.ConsentKept > 0 {
		fmt.Fprintf(&b, "; %d people past retention kept for their marketing consent", r.ConsentKept)
	}
	if r.DryRun {
		b.WriteString(" (dry run: nothing removed)")
	}
	return b.String()
}

// ProcessTask handles the clock's lead:purge task. When another purge
// holds the lock (a second clock, an operator's `leadgate purge`) this one
// does nothing: the next run catches up, since a purge is idempotent.
func (p *Purger) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	r, err := p.Purge(ctx, false)
	if errors.Is(err, ErrPurgeRunning) {
		p.Log.Info("purge: another purge is running; skipped")
		return nil
	}
	attrs := []any{"leads", r.Leads, "people", r.People, "optins", r.Optins, "tasks", r.Tasks,
		"stale_keys", r.StaleKeys, "campaign_marks", r.Campaigns, "kept_for_consent", r.ConsentKept}
	if err != nil {
		p.Log.Error("purge failed; the next run continues", append(attrs, "err", err)...)
		return err
	}
	if r.StaleKeys > 0 {
		p.Log.Warn("purge: short-lived keys had no TTL (a bug: they should expire on their own)", "stale_keys", r.StaleKeys)
	}
	p.Log.Info("purge", attrs...)
	return nil
}

// Purge runs one retention pass now. A dry run only counts and takes no
// lock; a real one holds the purge lock throughout (or returns
// ErrPurgeRunning), trims the audit log to AuditRetention and, when it
// removed anything or failed, records itself there (role "system", name
// "purge", the counts as detail).
func (p *Purger) Purge(ctx context.Context, dryRun bool) (PurgeReport, error) {
	if !dryRun {
		release, err := p.lock(ctx)
		if err != nil {
			return PurgeReport{}, err
		}
		defer release()
	}
	var r PurgeReport
	var err error
	r.PurgeReport, err = p.Store.Purge(ctx, intake.PurgeOptions{LeadRetention: p.LeadRetention, OptinTTL: p.OptinTTL,
		CampaignRetention: p.LeadRetention, DryRun: dryRun, Batch: p.Batch})
	r.DryRun = dryRun
	if err == nil {
		r.Tasks, err = p.purgeTasks(ctx, dryRun)
	}
	if dryRun {
		if err != nil {
			return r, fmt.Errorf("purge: %w", err)
		}
		return r, nil
	}
	if err == nil {
		err = p.Audit.Trim(ctx, p.AuditRetention)
	}
	counts := map[string]int{"leads": r.Leads, "people": r.People, "optins": r.Optins,
		"tasks": r.Tasks, "stale_keys": r.StaleKeys, "campaign_marks": r.Campaigns}
	removed := 0
	for kind, n := range counts {
		purged.WithLabelValues(kind).Add(float64(n))
		removed += n
	}
	if removed > 0 || err != nil {
		ev := intake.AuditEvent{Role: intake.RoleSystem, Name: "purge", Action: "purge", Status: 200,
			Detail: fmt.Sprintf("leads=%d people=%d optins=%d tasks=%d stale_keys=%d campaign_marks=%d",
				r.Leads, r.People, r.Optins, r.Tasks, r.StaleKeys, r.Campaigns)}
		if err != nil {
			ev.Status = 500
		}
		// Not ctx: an interrupted purge is recorded too.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if aerr := p.Audit.Append(actx, ev, 0); aerr != nil {
			err = errors.Join(err, fmt.Errorf("record the audit event: %w", aerr))
		}
	}
	if err != nil {
		return r, fmt.Errorf("purge: %w", err)
	}
	return r, nil
}

// lock takes the purge lock (SET NX PX) and keeps renewing it until the
// returned release is called.
func (p *Purger) lock(ctx context.Context) (release func(), err error) {
	token := make([]byte, 16)
	rand.Read(token)
	owner := hex.EncodeToString(token)
	ok, err := p.Workers.TakePurgeLock(ctx, owner, purgeLockTTL)
	if err != nil {
		return nil, fmt.Errorf("purge lock: %w", err)
	}
	if !ok {
		return nil, ErrPurgeRunning
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(purgeLockRenew)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := p.Workers.RenewPurgeLock(context.Background(), owner, purgeLockTTL); err != nil {
					p.Log.Warn("purge: could not renew the lock", "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		// Not ctx: a cancelled purge must still let the next one run.
		if err := p.Workers.ReleasePurgeLock(context.Background(), owner); err != nil {
			p.Log.Warn("purge: could not release the lock; it expires by itself", "err", err)
		}
	}, nil
}

// purgeTasks removes the completed and archived tasks of every queue that
// are older than TaskRetention. asynq keeps them in
// asynq:{queue}:archived (score: when archived, Unix seconds) and
// asynq:{queue}:completed (score: when the completed task expires, Unix
// seconds), each task in the hash asynq:{queue}:t:{id}. The Inspector can
// only delete all of them or one at a time, so the archived set and the
// completed tasks already past their expiry are trimmed by score in
// batches; completed tasks kept longer (asynq.Retention beyond
// TaskRetention) are found by their completion time through the Inspector.
func (p *Purger) purgeTasks(ctx context.Context, dryRun bool) (int, error) {
	batch := p.Batch
	if batch <= 0 {
		batch = defaultPurgeBatch
	}
	cutoff := p.Now().Add(-p.TaskRetention)
	max := fmt.Sprint(cutoff.Unix())
	insp := asynq.NewInspectorFromRedisClient(p.Redis)
	total := 0
	for _, q := range Queues {
		prefix := asynqPrefix(q)
		for _, set := range []string{prefix + "archived", prefix + "completed"} {
			if dryRun {
				n, err := p.Redis.ZCount(ctx, set, "-inf", max).Result()
				if err != nil {
					return total, err
				}
				total += int(n)
				continue
			}
			for {
				n, err := p.Workers.RemoveTasks(ctx, set, prefix+"t:", cutoff, batch)
				if err != nil {
					return total, err
				}
				total += n
				if n < batch {
					break
				}
			}
		}
		n, err := p.purgeCompletedEarly(ctx, insp, q, cutoff, batch, dryRun)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// purgeCompletedEarly removes completed tasks of queue q that completed
// before cutoff but are kept longer by their own retention. Leadgate sets
// no asynq.Retention today, so the set is normally empty and this is one
// cheap call.
func (p *Purger) purgeCompletedEarly(ctx context.Context, insp *asynq.Inspector, q string, cutoff time.Time, batch int, dryRun bool) (int, error) {
	var old []string
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		tasks, err := insp.ListCompletedTasks(q, asynq.PageSize(batch), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return 0, nil
		} else if err != nil {
			return 0, err
		}
		for _, t := range tasks {
			// Those expiring by cutoff were counted (or removed) by score.
			if t.CompletedAt.Before(cutoff) && t.CompletedAt.Add(t.Retention).Unix() > cutoff.Unix() {
				old = append(old, t.ID)
			}
		}
		if len(tasks) < batch {
			break
		}
	}
	if dryRun {
		return len(old), nil
	}
	n := 0
	for _, id := range old {
		err := insp.DeleteTask(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) {
			continue // gone meanwhile: asynq's janitor, or another purge
		} else if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
