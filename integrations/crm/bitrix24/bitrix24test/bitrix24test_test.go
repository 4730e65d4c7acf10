package bitrix24test_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24/bitrix24test"
)

func lead(n int) crm.Lead {
	return crm.Lead{
		ID: fmt.Sprintf("01964c2e-7b1a-7cc3-9f7e-%012d", n), EntityType: "sole_proprietor", Name: "Test Testov",
		Phone: fmt.Sprintf("+7701000%04d", n), Email: fmt.Sprintf("lead%03d@example.com", n), Lang: "ru",
		Assignment: &crm.Assignment{Rule: "default", Team: "sales", Owner: "Test Managerov", CRMUserID: "17"},
	}
}

func driver(t *testing.T, s *bitrix24test.Server) *bitrix24.Client {
	t.Helper()
	c, err := bitrix24.New(s.URL(), s.HTTPClient())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// TestFaults checks that each canned fault is what the driver takes it for,
// and that a committed fault keeps the lead.
func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      func() *bitrix24test.Fault
		kind       integrations.Kind
		code       string
		retryAfter bool // a wait is asked for
		stored     int  // leads kept after the failed add
	}{
		{"query limit", bitrix24test.QueryLimit, integrations.RateLimited, "QUERY_LIMIT_EXCEEDED", true, 0},
		{"operation time limit", func() *bitrix24test.Fault { return bitrix24test.OperationLimit(time.Now().Add(30 * time.Second)) },
			integrations.RateLimited, "OPERATION_TIME_LIMIT", true, 0},
		{"internal error", bitrix24test.InternalError, integrations.Temporary, "INTERNAL_SERVER_ERROR", false, 0},
		{"stored, then internal error", func() *bitrix24test.Fault {
			f := bitrix24test.InternalError()
			f.Commit = true
			return f
		}, integrations.Temporary, "INTERNAL_SERVER_ERROR", false, 1},
		{"stored, then connection lost", func() *bitrix24test.Fault {
			return &bitrix24test.Fault{Commit: true, Drop: true}
		}, integrations.Temporary, "", false, 1},
	}
	for _, tt := range tests {
		for _, tls := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s tls=%v", tt.name, tls), func(t *testing.T) {
				t.Parallel()
				opts := []bitrix24test.Option{bitrix24test.WithFaults(func(method string, n int) *bitrix24test.Fault {
					if method == "crm.lead.add" && n == 1 {
						return tt.fault()
					}
					return nil
				})}
				if tls {
					opts = append(opts, bitrix24test.TLS())
				}
				s := bitrix24test.NewServer(t, opts...)
				c := driver(t, s)
				_, err := c.Push(context.Background(), lead(1))
				e, ok := errors.AsType[*integrations.Error](err)
				if !ok || e.Kind != tt.kind || (tt.code != "" && e.Code != tt.code) || (e.RetryAfter > 0) != tt.retryAfter {
					t.Fatalf("first Push = %#v, want %v %q", err, tt.kind, tt.code)
				}
				if n := len(s.Leads()); n != tt.stored {
					t.Fatalf("after the fault the fake holds %d leads, want %d", n, tt.stored)
				}
				r, err := c.Push(context.Background(), lead(1))
				if err != nil {
					t.Fatalf("retry Push: %v", err)
				}
				leads := s.Leads()
				if len(leads) != 1 || leads[0].ID != r.Ref || leads[0].Fields["ORIGIN_ID"] != lead(1).ID {
					t.Fatalf("leads = %+v, want the one lead %s", leads, r.Ref)
				}
				if got, want := s.Count("crm.lead.add"), 2-tt.stored; got != want {
					t.Errorf("%d adds, want %d", got, want)
				}
			})
		}
	}
}

// TestConcurrentPushes pushes from many goroutines at once against a portal
// failing every third call, as the workers of an end-to-end test do.
func TestConcurrentPushes(t *testing.T) {
	t.Parallel()
	s := bitrix24test.NewServer(t, bitrix24test.WithFaults(func(method string, n int) *bitrix24test.Fault {
		if n%3 != 0 {
			return nil
		}
		f := bitrix24test.InternalError()
		f.Commit = method == "crm.lead.add"
		return f
	}))
	c := driver(t, s)
	const leads = 30
	var wg sync.WaitGroup
	refs := make([]string, leads)
	for i := range leads {
		wg.Go(func() {
			for attempt := 0; ; attempt++ {
				r, err := c.Push(context.Background(), lead(i))
				if err == nil {
					refs[i] = r.Ref
					return
				}
				if integrations.KindOf(err) == integrations.Permanent || attempt == 20 {
					t.Errorf("Push %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	stored := s.Leads()
	if len(stored) != leads {
		t.Fatalf("the fake holds %d leads, want %d", len(stored), leads)
	}
	for i, ref := range refs {
		l, ok := s.Lead(ref)
		if !ok || l.Fields["ORIGIN_ID"] != lead(i).ID || len(l.Email) != 1 || l.Email[0].Value != lead(i).Email {
			t.Errorf("lead %d: Receipt %q holds %+v", i, ref, l)
		}
	}
	calls := s.Calls()
	if got := s.Count("crm.lead.list") + s.Count("crm.settings.mode.get") + s.Count("crm.lead.add"); got != len(calls) {
		t.Errorf("counts add up to %d, %d calls recorded", got, len(calls))
	}
}

// TestCloseEndsStalledCalls checks that a stalled answer does not keep Close
// waiting when the caller has no timeout of its own (a stalled answer also
// ends when the caller gives up: the driver's TestTimeouts).
func TestCloseEndsStalledCalls(t *testing.T) {
	t.Parallel()
	s := bitrix24test.NewServer(t, bitrix24test.WithFaults(func(string, int) *bitrix24test.Fault {
		return &bitrix24test.Fault{Stall: true}
	}))
	c := driver(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := c.Push(context.Background(), lead(1))
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); s.Count("crm.lead.list") == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call never arrived")
		}
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waits for the stalled call")
	}
	if err := <-done; err == nil {
		t.Error("Push of a stalled call succeeded")
	}
}

func TestRejectsOtherSecrets(t *testing.T) {
	t.Parallel()
	s := bitrix24test.NewServer(t)
	url := strings.Replace(s.URL(), bitrix24test.Secret, "another"+bitrix24test.Secret, 1)
	resp, err := s.HTTPClient().Post(url+"crm.lead.list.json", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || s.Count("crm.lead.list") != 0 {
		t.Errorf("a call with another secret: status %d, counted %d; want 401, not counted", resp.StatusCode, s.Count("crm.lead.list"))
	}
}

// TestSimpleModeConverts checks the fake's simple mode as the REST tutorial
// describes it: the lead stays, CONVERTED, and a deal, contact and company
// made from it carry its id in LEAD_ID and are linked to one another; a
// lead without a name is not converted.
func TestSimpleModeConverts(t *testing.T) {
	t.Parallel()
	s := bitrix24test.NewServer(t, bitrix24test.SimpleMode())
	c := driver(t, s)
	l := lead(1)
	l.EntityType = "legal_entity"
	r, err := c.Push(context.Background(), l)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	got, _ := s.Lead(r.Ref)
	deals := s.All(bitrix24test.TypeDeal)
	contacts := s.All(bitrix24test.TypeContact)
	companies := s.All(bitrix24test.TypeCompany)
	if got.Fields["STATUS_ID"] != "CONVERTED" || len(deals) != 1 || len(contacts) != 1 || len(companies) != 1 {
		t.Fatalf("lead %+v; %d deals, %d contacts, %d companies, want one of each", got, len(deals), len(contacts), len(companies))
	}
	for _, e := range []bitrix24test.Entity{deals[0], contacts[0], companies[0]} {
		if e.Fields["LEAD_ID"] != r.Ref {
			t.Errorf("entity %s LEAD_ID = %q, want %s", e.ID, e.Fields["LEAD_ID"], r.Ref)
		}
	}
	if deals[0].Fields["CONTACT_ID"] != contacts[0].ID || deals[0].Fields["COMPANY_ID"] != companies[0].ID ||
		contacts[0].Fields["COMPANY_ID"] != companies[0].ID || contacts[0].Email[0].Value != l.Email {
		t.Errorf("deal %+v, contact %+v, company %+v: want them linked, the contact with the lead's email", deals[0], contacts[0], companies[0])
	}
	if want := []string{contacts[0].ID}; !slices.Equal(s.ContactIDs(bitrix24test.TypeCompany, companies[0].ID), want) {
		t.Errorf("company contacts = %v, want %v", s.ContactIDs(bitrix24test.TypeCompany, companies[0].ID), want)
	}

	unnamed := lead(2)
	unnamed.Name = ""
	r, err = c.Push(context.Background(), unnamed)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got, _ := s.Lead(r.Ref); got.Fields["STATUS_ID"] != "NEW" || len(s.All(bitrix24test.TypeDeal)) != 1 {
		t.Errorf("a lead without a name: %+v, %d deals; want it left a NEW lead", got, len(s.All(bitrix24test.TypeDeal)))
	}
}
