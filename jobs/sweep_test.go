package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/jobs"
)

// clock is a settable time for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestSweeperQueuesLostLeads(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Truncate(time.Millisecond)
	clk := &clock{t: t0}
	e := setupRedis(t, clk.now)
	ctx := context.Background()

	lost := e.accept(t, 1) // stored, then the process died before enqueuing
	queued := e.accept(t, 2)
	if err := e.queue.EnqueueLead(ctx, queued); err != nil {
		t.Fatal(err)
	}
	routed := e.accept(t, 3)
	if _, err := e.store.Leads.Transition(ctx, routed, intake.Transition{From: intake.Received, To: intake.Routed}); err != nil {
		t.Fatal(err)
	}
	clk.set(t0.Add(90 * time.Second))
	young := e.accept(t, 4) // its web request may still be enqueuing it

	s := &jobs.Sweeper{Leads: e.store.Leads, Queue: e.queue, Now: func() time.Time { return t0.Add(3 * time.Minute) },
		Log: slog.New(slog.DiscardHandler)}
	for i := range 2 { // a second sweep finds the tasks there and adds nothing
		if err := s.ProcessTask(ctx, asynq.NewTask("lead:sweep", nil)); err != nil {
			t.Fatalf("sweep %d: %v", i, err)
		}
	}

	for _, id := range []string{lost, queued} {
		info, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+id)
		if err != nil {
			t.Errorf("task of a lead Received for 3 minutes: %v", err)
			continue
		}
		if info.Type != "lead:route" || info.State != asynq.TaskStatePending {
			t.Errorf("task = %s %s", info.Type, info.State)
		}
	}
	for _, id := range []string{routed, young} {
		if _, err := e.insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+id); !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("GetTaskInfo = %v, want no task for a lead routed or younger than the grace", err)
		}
	}
	pending, err := e.insp.ListPendingTasks(jobs.QueueLeads)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 {
		t.Errorf("%d pending tasks, want 2", len(pending))
	}
}

func TestSweeperAsksForLeadsPastTheGrace(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	var enqueued []string
	leads := &fakeLeads{ReceivedBeforeFn: func(_ context.Context, before time.Time, _, n int) ([]string, error) {
		if want := now.Add(-2 * time.Minute); !before.Equal(want) || n <= 0 {
			t.Errorf("ReceivedBefore(%v, %d), want (%v, a positive batch)", before, n, want)
		}
		return []string{"a", "b"}, nil
	}}
	q := &fakeQueue{EnqueueLeadFn: func(_ context.Context, id string) error {
		enqueued = append(enqueued, id)
		return nil
	}}
	s := &jobs.Sweeper{Leads: leads, Queue: q, Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	if err := s.ProcessTask(context.Background(), asynq.NewTask("lead:sweep", nil)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(enqueued, []string{"a", "b"}) {
		t.Errorf("enqueued %v, want [a b]", enqueued)
	}
}

func TestSweeperReportsErrors(t *testing.T) {
	t.Parallel()
	down := errors.New("redis down")
	for _, tc := range []struct {
		name    string
		list    error
		enqueue error
	}{
		{"listing", down, nil},
		{"enqueuing", nil, down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			leads := &fakeLeads{ReceivedBeforeFn: func(context.Context, time.Time, int, int) ([]string, error) {
				if tc.list != nil {
					return nil, tc.list
				}
				return []string{"a"}, nil
			}}
			q := &fakeQueue{EnqueueLeadFn: func(context.Context, string) error { return tc.enqueue }}
			s := &jobs.Sweeper{Leads: leads, Queue: q, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
			if err := s.ProcessTask(context.Background(), asynq.NewTask("lead:sweep", nil)); !errors.Is(err, down) {
				t.Errorf("ProcessTask = %v, want %v", err, down)
			}
		})
	}
}

// A backlog longer than a page (a CRM outage) is swept page by page, and a
// lead that cannot be queued does not stop the rest.
func TestSweeperPagesAndCarriesOn(t *testing.T) {
	t.Parallel()
	var offsets []int
	leads := &fakeLeads{ReceivedBeforeFn: func(_ context.Context, _ time.Time, offset, n int) ([]string, error) {
		offsets = append(offsets, offset)
		if offset == 0 {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("lead-%d", i)
			}
			return ids, nil
		}
		return []string{"last-1", "last-2"}, nil
	}}
	down := errors.New("redis down")
	var enqueued int
	q := &fakeQueue{EnqueueLeadFn: func(_ context.Context, id string) error {
		if id == "lead-7" {
			return down
		}
		enqueued++
		return nil
	}}
	s := &jobs.Sweeper{Leads: leads, Queue: q, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	err := s.ProcessTask(context.Background(), asynq.NewTask("lead:sweep", nil))
	if !errors.Is(err, down) {
		t.Errorf("ProcessTask = %v, want the failed enqueue reported", err)
	}
	if len(offsets) != 2 || offsets[0] != 0 || offsets[1] == 0 {
		t.Fatalf("pages asked at offsets %v, want two: 0 and after the first page", offsets)
	}
	if want := offsets[1] + 2 - 1; enqueued != want {
		t.Errorf("enqueued %d leads, want %d (all but the failing one)", enqueued, want)
	}
}
