package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/jobs"
)

func TestMuxDispatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		notifier bool
		want     []string // what the handlers saw
		unknown  []string // task types the mux must refuse
	}{
		{"with a notifier", true, []string{"get lead-1", "sweep", "get lead-2"}, []string{"lead:unknown"}},
		{"without a notifier", false, []string{"get lead-1", "sweep"}, []string{"lead:unknown", "lead:notify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			leads := &fakeLeads{
				GetFn: func(_ context.Context, id string) (*intake.Lead, error) {
					got = append(got, "get "+id)
					return nil, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
				},
				ReceivedBeforeFn: func(context.Context, time.Time, int, int) ([]string, error) {
					got = append(got, "sweep")
					return nil, nil
				},
			}
			log := slog.New(slog.DiscardHandler)
			var n *jobs.Notifier
			if tc.notifier {
				n = &jobs.Notifier{Leads: leads, Channels: []jobs.SalesChannel{&fakeChannel{NameFn: func() string { return "telegram" }}}, Now: time.Now, Log: log}
			}
			mux := jobs.NewMux(jobs.Handlers{
				Router:   &jobs.Router{Leads: leads, CRM: &fakeCRM{}, MaxAge: time.Hour, Now: time.Now, Log: log},
				Sweeper:  &jobs.Sweeper{Leads: leads, Queue: &fakeQueue{}, Now: time.Now, Log: log},
				Notifier: n})
			ctx := context.Background()
			if err := mux.ProcessTask(ctx, jobs.NewRouteLeadTask("lead-1")); err != nil {
				t.Errorf("lead:route: %v", err)
			}
			if err := mux.ProcessTask(ctx, asynq.NewTask("lead:sweep", nil)); err != nil {
				t.Errorf("lead:sweep: %v", err)
			}
			if tc.notifier {
				if err := mux.ProcessTask(ctx, jobs.NewNotifySalesTask("lead-2", "telegram")); err != nil {
					t.Errorf("lead:notify: %v", err)
				}
			}
			for _, kind := range tc.unknown {
				if err := mux.ProcessTask(ctx, asynq.NewTask(kind, []byte(`{"lead_id":"lead-3"}`))); err == nil {
					t.Errorf("%s was handled", kind)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("handlers saw %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServerConfig(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	cfg := jobs.ServerConfig(5*time.Second, slog.New(slog.NewTextHandler(&logged, nil)))
	if want := map[string]int{"leads": 6, "mail": 3, "maintenance": 1}; !maps.Equal(cfg.Queues, want) {
		t.Errorf("queues = %v, want %v", cfg.Queues, want)
	}
	limited := &integrations.Error{System: "webhook", Op: "push", Status: 429, Kind: integrations.RateLimited}
	if cfg.IsFailure(limited) {
		t.Error("IsFailure counts a rate limit as a failure")
	}
	if d := cfg.RetryDelayFunc(0, limited, nil); d < 22500*time.Millisecond || d > 37500*time.Millisecond {
		t.Errorf("first retry after %v, want about the 30s floor of rate limits without Retry-After", d)
	}
	task := asynq.NewTask("lead:route", []byte(`{"lead_id":"payload-marker"}`))
	cfg.ErrorHandler.HandleError(context.Background(), task, errors.New("webhook push: HTTP 502 (temporary)"))
	if line := logged.String(); !strings.Contains(line, "lead:route") || strings.Contains(line, "payload-marker") {
		t.Errorf("error log %q: want the task type and not its payload", line)
	}
}

// TestServerConfigCountsTaskErrors: every error a task returns is counted
// by the system that failed and how, so that alerts can tell a CRM's
// refusals from SendGrid's rate limits and from our own Redis errors.
func TestServerConfigCountsTaskErrors(t *testing.T) {
	t.Parallel()
	cfg := jobs.ServerConfig(5*time.Second, slog.New(slog.DiscardHandler))
	// A type of its own, no other test's nor an earlier run's (go test
	// -count=N runs this again in the same process, on the same counters).
	task := asynq.NewTask(fmt.Sprintf("test:count-errors:%d", time.Now().UnixNano()), nil)
	for _, err := range []error{
		&integrations.Error{System: "webhook", Op: "push", Status: 429, Kind: integrations.RateLimited},
		fmt.Errorf("route: %w", &integrations.Error{System: "webhook", Op: "push", Status: 429, Kind: integrations.RateLimited}),
		&integrations.Error{System: "sendgrid", Op: "mail.send", Status: 400, Kind: integrations.Permanent},
		errors.New("redis: connection refused"),
	} {
		cfg.ErrorHandler.HandleError(context.Background(), task, err)
	}
	got := map[string]float64{}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "leadgate_task_errors_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["task"] == task.Type() {
				got[labels["system"]+" "+labels["kind"]] = m.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{"webhook rate_limited": 2, "sendgrid permanent": 1, "internal temporary": 1}; !maps.Equal(got, want) {
		t.Errorf("leadgate_task_errors_total for %s = %v, want %v", task.Type(), got, want)
	}
}

func TestSchedule(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	s := asynq.NewSchedulerFromRedisClient(e.rdb, &asynq.SchedulerOpts{
		HeartbeatInterval: 20 * time.Millisecond, // how soon entries show in Redis
		LogLevel:          asynq.FatalLevel,      // Shutdown complains that it may not close the shared client
	})
	if err := jobs.Schedule(s, "@every 90m"); err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)

	var entries []*asynq.SchedulerEntry
	waitFor(t, "the scheduler's entries", func() bool {
		var err error
		entries, err = e.insp.SchedulerEntries()
		if err != nil {
			t.Fatalf("SchedulerEntries: %v", err)
		}
		return len(entries) > 0
	})
	got := map[string]string{} // task type → spec and sorted options
	for _, entry := range entries {
		var opts []string
		for _, o := range entry.Opts {
			opts = append(opts, o.String())
		}
		slices.Sort(opts)
		got[entry.Task.Type()] = entry.Spec + " " + strings.Join(opts, " ")
	}
	want := map[string]string{
		"lead:sweep": `@every 1m MaxRetry(0) Queue("maintenance") Unique(50s)`,
		"lead:purge": `@every 90m MaxRetry(0) Queue("maintenance") Unique(1m0s)`,
	}
	if !maps.Equal(got, want) {
		t.Errorf("entries = %q, want %q", got, want)
	}

	bad := asynq.NewSchedulerFromRedisClient(e.rdb, &asynq.SchedulerOpts{LogLevel: asynq.FatalLevel})
	if err := jobs.Schedule(bad, "every hour"); err == nil || !strings.Contains(err.Error(), "PURGE_SCHEDULE") {
		t.Errorf("Schedule with a malformed spec = %v, want an error naming PURGE_SCHEDULE", err)
	}
}
