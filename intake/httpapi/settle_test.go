package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// lostAnswers is the lead store behind a connection that drops: every
// accept call loses its answer — after running (ran) or before — and the
// first failLookups look-ups fail too (-1: all of them).
type lostAnswers struct {
	*redisstore.Leads
	ran         bool
	failLookups int
	lookups     atomic.Int32
}

func (l *lostAnswers) Accept(ctx context.Context, a intake.Application) (*intake.Admission, error) {
	if l.ran {
		if _, err := l.Leads.Accept(ctx, a); err != nil {
			return nil, err
		}
	}
	return nil, intake.Unavailable("store lead", fmt.Errorf("%w: %w", intake.ErrOutcomeUnknown, io.ErrUnexpectedEOF))
}

func (l *lostAnswers) Admitted(ctx context.Context, id string) (*intake.Admission, error) {
	if n := int(l.lookups.Add(1)); l.failLookups < 0 || n <= l.failLookups {
		return nil, intake.Unavailable("look for lead", io.EOF)
	}
	return l.Leads.Admitted(ctx, id)
}

// TestSubmitSettlesALostAnswer: the web knows the id it gave the lead, so
// after a lost answer it looks: 202 when the lead was stored (and so
// queued), 503 when it was not (and then it never will be), and 503
// counted in leadgate_admission_unknown_total when Redis does not answer
// within the budget. The cases where Redis answers have a budget no busy
// machine exhausts (the stored lead needs three look-ups and 150 ms of
// pauses); only the one where it never answers is held to a short one. The
// cases share the counter, so they run in turn.
func TestSubmitSettlesALostAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		ran         bool
		failLookups int
		budget      time.Duration
		status      int
		unknown     float64
	}{
		{"stored, found after two failed look-ups", true, 2, 5 * time.Second, http.StatusAccepted, 0},
		{"not stored", false, 0, 5 * time.Second, http.StatusServiceUnavailable, 0},
		{"Redis never answers", true, -1, 400 * time.Millisecond, http.StatusServiceUnavailable, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sf := setupStore(t)
			leads := &lostAnswers{Leads: sf.store.Leads, ran: c.ran, failLookups: c.failLookups}
			opts := Options{PublicOrigin: "https://leads.example.kz", DefaultLang: "ru", Products: []string{"acquiring"},
				PerIP: intake.Limit{N: 100, Per: time.Hour}, PerEmail: intake.Limit{N: 100, Per: time.Hour},
				SettleBudget: c.budget}
			srv := sf.server(&fakeQueue{}, opts, slog.New(slog.DiscardHandler))
			srv.Leads = leads
			mux := http.NewServeMux()
			srv.Register(mux)
			ts := httptest.NewServer(mux)
			t.Cleanup(ts.Close)

			before := unknownCount(t)
			start := time.Now()
			resp := post(t, ts.URL, "application/json", validJSON, nil)
			took := time.Since(start)
			body := decode(t, resp)
			if resp.StatusCode != c.status {
				t.Fatalf("answer %d %v, want %d", resp.StatusCode, body, c.status)
			}
			if got := unknownCount(t) - before; got != c.unknown {
				t.Errorf("leadgate_admission_unknown_total grew by %v, want %v", got, c.unknown)
			}
			// Only "Redis never answers" can break this bound: a case with a 5 s
			// budget that ran it out answers 503 and failed above.
			if took > max(c.budget, 5*time.Second) { // the budget, and room for a busy machine
				t.Errorf("answered after %v; the look-ups are bounded by a %v budget", took, c.budget)
			}
			stored := sf.admitted(t, "route")
			switch {
			case c.status == http.StatusAccepted:
				if len(stored) != 1 || body["id"] != stored[0] || body["duplicate"] != nil {
					t.Fatalf("202 %v for the stored lead %v", body, stored)
				}
			case !c.ran:
				if len(stored) != 0 {
					t.Fatalf("a lead answered 503 was queued: %v", stored)
				}
				// The call arriving late, after the look-up, stores nothing.
				late := intake.Application{ID: leadID(t, sf, leads), Submission: fakePerson(),
					PerIP: opts.PerIP, PerEmail: opts.PerEmail}
				if _, err := sf.store.Leads.Accept(context.Background(), late); intake.ErrorCode(err) != intake.EUnavailable {
					t.Fatalf("the late call = %v, want it refused", err)
				}
				if got := sf.admitted(t, "route"); len(got) != 0 {
					t.Fatalf("the late call queued %v", got)
				}
			}
		})
	}
}

// leadID is the id the web gave the lead it looked for: the one void mark
// the look-up left.
func leadID(t *testing.T, sf storeFixture, leads *lostAnswers) string {
	t.Helper()
	if leads.lookups.Load() == 0 {
		t.Fatal("the web did not look for its lead")
	}
	keys, err := sf.rdb.Keys(context.Background(), "lg:void:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("void marks %v, %v; want one", keys, err)
	}
	return keys[0][len("lg:void:"):]
}

// unknownCount reads leadgate_admission_unknown_total as /metrics shows it.
func unknownCount(t *testing.T) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "leadgate_admission_unknown_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("leadgate_admission_unknown_total is not registered")
	return 0
}
