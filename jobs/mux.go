package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/paymtech/leadgate/integrations"
)

var (
	routeFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadgate_leads_failed_total",
		Help: "Leads that could not be handed to sales and wait for an operator's redrive.",
	})
	leadsHeld = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadgate_leads_review_total",
		Help: "Leads held for review because their risk score reached RISK_REVIEW_THRESHOLD.",
	})
	crmGone = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadgate_crm_endpoint_gone_total",
		Help: "Times the CRM endpoint answered 410 Gone and was disabled until the workers restart.",
	})
	// taskErrors is what alerts on an outside system need: which system
	// (the System of the *integrations.Error, "internal" for any other
	// error, Redis's included) and how it failed, by task type. A rate
	// limit is counted too, although it is no failure to asynq: a CRM or
	// SendGrid throttling us for long delays every lead.
	taskErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadgate_task_errors_total",
		Help: "Task attempts that returned an error, by task type, outside system (internal for none) and kind (temporary, rate_limited, permanent).",
	}, []string{"task", "system", "kind"})
	crmRedeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadgate_crm_redeliveries_total",
		Help: "Leads delivered again to a CRM that cannot look up an earlier delivery (the webhook: receivers deduplicate by webhook-id), after an attempt that may have delivered them.",
	}, []string{"system"})
)

// countTaskError counts one failed attempt of a task of type task in taskErrors.
func countTaskError(task string, err error) {
	system, kind := "internal", integrations.KindOf(err)
	if e, ok := errors.AsType[*integrations.Error](err); ok {
		system = e.System
	}
	taskErrors.WithLabelValues(task, system, strings.ReplaceAll(kind.String(), " ", "_")).Inc()
}

// Handlers are the workers' task handlers; a nil one is not registered
// (no sales notification channel configured, no mail sent).
type Handlers struct {
	Router     *Router
	Sweeper    *Sweeper
	Notifier   *Notifier
	Welcomer   *Welcomer
	Purger     *Purger
	CRMSync    *CRMSync
	Campaigner *Campaigner
	// Recovery holds every task's end while Redis does not answer (its
	// Await); nil leaves that to asynq.
	Recovery *Recovery
}

// NewMux registers every task handler of h explicitly.
func NewMux(h Handlers) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	if h.Recovery != nil {
		mux.Use(h.Recovery.Await)
	}
	if h.Router != nil {
		mux.Handle(RouteLead{}.Kind(), h.Router)
	}
	if h.Sweeper != nil {
		mux.Handle(SweepLeads{}.Kind(), h.Sweeper)
	}
	if h.Notifier != nil {
		mux.Handle(NotifySales{}.Kind(), h.Notifier)
	}
	if h.Welcomer != nil {
		mux.HandleFunc(AckLead{}.Kind(), h.Welcomer.Acknowledge)
		mux.HandleFunc(RequestOptin{}.Kind(), h.Welcomer.RequestConfirmation)
	}
	if h.Purger != nil {
		mux.Handle(PurgeLeads{}.Kind(), h.Purger)
	}
	if h.CRMSync != nil {
		mux.HandleFunc(UpdateCRMLead{}.Kind(), h.CRMSync.ProcessUpdate)
		mux.HandleFunc(EraseCRMLead{}.Kind(), h.CRMSync.ProcessErase)
	}
	if h.Campaigner != nil {
		mux.Handle(SendCampaign{}.Kind(), h.Campaigner)
	}
	return mux
}

// ServerConfig is the worker configuration: our queues, the retry rule, and
// error logs that name the task but never its payload.
func ServerConfig(retryBase time.Duration, log *slog.Logger) asynq.Config {
	return asynq.Config{
		Concurrency:     20, // tasks wait on outside HTTP calls, not on CPU
		Queues:          map[string]int{QueueLeads: 6, QueueMail: 3, QueueMaintenance: 1},
		RetryDelayFunc:  RetryDelay(retryBase),
		IsFailure:       IsFailure,
		ShutdownTimeout: 20 * time.Second,
		// A retry or a Retry-After wait is due to the second, not asynq's default 5 s.
		DelayedTaskCheckInterval: time.Second,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			countTaskError(t.Type(), err)
			log.Warn("task failed", "type", t.Type(), "task", id, "err", err)
		}),
		Logger:   AsynqLogger(log),
		LogLevel: asynq.WarnLevel,
	}
}

// purgeUnique is how long the clock's lead:purge task is unique: two
// clocks fire at the same tick and only one task is queued. It is released
// once the task succeeds; the purge lock (Purger) keeps runs from
// overlapping whatever happens to the queue.
const purgeUnique = time.Minute

// Schedule registers the clock's periodic tasks: the sweeper every minute
// and the retention purge at purgeSpec (PURGE_SCHEDULE, a cron spec).
func Schedule(s *asynq.Scheduler, purgeSpec string) error {
	_, err := s.Register("@every 1m", asynq.NewTask(SweepLeads{}.Kind(), nil),
		asynq.Queue(QueueMaintenance), asynq.Unique(50*time.Second), asynq.MaxRetry(0))
	if err != nil {
		return err
	}
	_, err = s.Register(purgeSpec, asynq.NewTask(PurgeLeads{}.Kind(), nil),
		asynq.Queue(QueueMaintenance), asynq.Unique(purgeUnique), asynq.MaxRetry(0))
	if err != nil {
		return fmt.Errorf("PURGE_SCHEDULE %q: %w", purgeSpec, err)
	}
	return nil
}

// AsynqLogger sends asynq's own logs to slog.
func AsynqLogger(log *slog.Logger) asynq.Logger { return asynqLogger{log} }

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) {
	msg := fmt.Sprint(args...)
	// asynq's Scheduler tries to close a Redis client it was given and
	// complains that it may not; the client is ours and closed by us.
	if strings.Contains(msg, "redis connection is shared") {
		return
	}
	a.l.Error(msg)
}

// Fatal is asynq giving up entirely; like log.Fatal, it ends the process.
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...))
	os.Exit(1)
}
