package jobs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/crm/amocrm"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24"
	"github.com/paymtech/leadgate/integrations/crm/file"
	"github.com/paymtech/leadgate/integrations/crm/webhook"
	"github.com/paymtech/leadgate/jobs"
)

// The drivers that can pass a privacy request on do so through the methods
// CRMSync looks for: a renamed or re-typed method would silently turn into
// "the CRM cannot do it".
var (
	_ jobs.CRMUpdater = (*bitrix24.Client)(nil)
	_ jobs.CRMUpdater = (*amocrm.Client)(nil)
	_ jobs.CRMUpdater = (*webhook.Client)(nil)
	_ jobs.CRMEraser  = (*bitrix24.Client)(nil)
	_ jobs.CRMEraser  = (*amocrm.Client)(nil)
	_ jobs.CRMEraser  = (*webhook.Client)(nil)
)

// fakeSyncCRM is a CRM that can also correct and delete leads.
type fakeSyncCRM struct {
	fakeCRM
	UpdateFn func(ctx context.Context, l crm.Lead, ref string) error
	EraseFn  func(ctx context.Context, leadID, ref string) error
}

func (f *fakeSyncCRM) Update(ctx context.Context, l crm.Lead, ref string) error {
	if f.UpdateFn == nil {
		return fmt.Errorf("CRM.Update: %w", errUnexpected)
	}
	return f.UpdateFn(ctx, l, ref)
}

func (f *fakeSyncCRM) Erase(ctx context.Context, leadID, ref string) error {
	if f.EraseFn == nil {
		return fmt.Errorf("CRM.Erase: %w", errUnexpected)
	}
	return f.EraseFn(ctx, leadID, ref)
}

// syncFixture is a CRMSync over fakes holding one lead routed to Bitrix24.
type syncFixture struct {
	leads     *fakeLeads
	crm       *fakeSyncCRM
	sync      *jobs.CRMSync
	lead      *intake.Lead
	now       time.Time
	transfers []intake.Transfer
	logs      *bytes.Buffer
}

func setupSync(t *testing.T) *syncFixture {
	t.Helper()
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60))
	f := &syncFixture{leads: &fakeLeads{}, crm: &fakeSyncCRM{}, now: now, lead: testLead(now), logs: &bytes.Buffer{}}
	f.lead.State = intake.Routed
	f.lead.Route = intake.Route{System: "bitrix24", Ref: "42", At: now.Add(-time.Hour)}
	f.lead.Assignment = &intake.Assignment{Rule: "fallback", Team: "sales", Owner: "sales"}
	f.leads.GetFn = func(_ context.Context, id string) (*intake.Lead, error) {
		if id != f.lead.ID {
			return nil, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
		}
		l := *f.lead
		return &l, nil
	}
	f.leads.LogTransferFn = func(_ context.Context, id string, tr intake.Transfer) error {
		if id != f.lead.ID {
			return &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
		}
		f.transfers = append(f.transfers, tr)
		return nil
	}
	f.sync = &jobs.CRMSync{Leads: f.leads, CRM: f.crm, System: "bitrix24", MaxAge: maxAge,
		Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(f.logs, nil))}
	return f
}

func (f *syncFixture) update() error {
	return f.sync.ProcessUpdate(context.Background(), jobs.NewUpdateCRMLeadTask(f.lead.ID, f.now.Add(-time.Minute)))
}

func (f *syncFixture) erase(system, ref string) error {
	return f.sync.ProcessErase(context.Background(), jobs.NewEraseCRMLeadTask(f.lead.ID, system, ref, f.now.Add(-time.Minute)))
}

// checkLogs fails when the logs carry the lead's personal data.
func (f *syncFixture) checkLogs(t *testing.T) {
	t.Helper()
	for _, v := range []string{f.lead.Name, f.lead.Phone, f.lead.Email, f.lead.TaxID, f.lead.Message} {
		if strings.Contains(f.logs.String(), v) {
			t.Errorf("logs carry personal data: %s", f.logs)
		}
	}
}

func TestCRMSyncTasksCarryOnlyIDs(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60))
	for _, c := range []struct {
		task       *asynq.Task
		kind, want string
	}{
		{jobs.NewUpdateCRMLeadTask("lead-1", at), "crm:update", `{"lead_id":"lead-1","requested_at":"2026-11-24T05:00:00Z"}`},
		{jobs.NewEraseCRMLeadTask("lead-1", "bitrix24", "42", at), "crm:erase",
			`{"lead_id":"lead-1","system":"bitrix24","ref":"42","requested_at":"2026-11-24T05:00:00Z"}`},
	} {
		if c.task.Type() != c.kind || string(c.task.Payload()) != c.want {
			t.Errorf("task %s %s, want %s %s", c.task.Type(), c.task.Payload(), c.kind, c.want)
		}
	}
	if (jobs.UpdateCRMLead{}).Kind() != "crm:update" || (jobs.EraseCRMLead{}).Kind() != "crm:erase" {
		t.Error("task kinds changed: tasks already queued would be orphaned")
	}
}

func TestCRMSyncUpdate(t *testing.T) {
	t.Parallel()
	f := setupSync(t)
	var got []crm.Lead
	f.crm.UpdateFn = func(_ context.Context, l crm.Lead, ref string) error {
		if ref != "42" {
			t.Errorf("Update ref = %q, want the CRM's own 42", ref)
		}
		got = append(got, l)
		return nil
	}
	if err := f.update(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], jobs.Document(f.lead)) {
		t.Fatalf("Update got %+v, want the lead's document as routed", got)
	}
	want := []intake.Transfer{{Recipient: "crm:bitrix24", At: f.now.UTC(), Purpose: jobs.PurposeRectification, Ref: "42"}}
	if !reflect.DeepEqual(f.transfers, want) {
		t.Errorf("disclosure log %+v, want %+v", f.transfers, want)
	}
	f.checkLogs(t)

	// A lead whose push was made but not recorded as routed (it was blocked
	// meanwhile) is known to the CRM by its disclosure log.
	f.lead.Route = intake.Route{}
	f.lead.Transfers = []intake.Transfer{{Recipient: "crm:bitrix24", At: f.now, Purpose: jobs.PurposeSales, Ref: "42"}}
	if err := f.update(); err != nil || len(got) != 2 {
		t.Errorf("update of a lead known by its disclosure log = %v (%d calls)", err, len(got))
	}
}

func TestCRMSyncNothingToPassOn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		change func(f *syncFixture)
	}{
		{"lead erased or purged", func(f *syncFixture) {
			f.leads.GetFn = func(context.Context, string) (*intake.Lead, error) {
				return nil, &intake.Error{Code: intake.ENotFound, Message: "no such lead"}
			}
		}},
		{"lead never reached a CRM", func(f *syncFixture) { f.lead.Route = intake.Route{} }},
		{"lead held by another CRM", func(f *syncFixture) { f.lead.Route.System = "amocrm" }},
		{"driver without Update", func(f *syncFixture) { f.sync.CRM = &fakeCRM{} }},
		{"driver answers unsupported", func(f *syncFixture) {
			f.crm.UpdateFn = func(context.Context, crm.Lead, string) error { return crm.ErrUnsupported }
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := setupSync(t)
			c.change(f)
			if err := f.update(); err != nil {
				t.Errorf("update = %v, want nil: nothing any retry could pass on", err)
			}
			if len(f.transfers) != 0 {
				t.Errorf("disclosure log %+v, want nothing: no data left", f.transfers)
			}
			f.checkLogs(t)
		})
	}
}

func TestCRMSyncUpdateFailures(t *testing.T) {
	t.Parallel()
	permanent := &integrations.Error{System: "bitrix24", Op: "crm.lead.update", Status: 400, Kind: integrations.Permanent}
	temporary := &integrations.Error{System: "bitrix24", Op: "crm.lead.update", Status: 502, Kind: integrations.Temporary}
	limited := &integrations.Error{System: "bitrix24", Op: "crm.lead.update", Status: 429, Kind: integrations.RateLimited}
	gone := &integrations.Error{System: "webhook", Op: "update", Status: 410, Code: integrations.CodeGone, Kind: integrations.Permanent}
	for _, c := range []struct {
		name      string
		err       error
		requested time.Duration // before now
		final     bool          // SkipRetry
	}{
		{"permanent refusal", permanent, time.Minute, true},
		{"endpoint gone", gone, time.Minute, true},
		{"temporary failure", temporary, time.Minute, false},
		{"rate limited", limited, time.Minute, false},
		{"temporary past RETRY_MAX_AGE", temporary, maxAge + time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := setupSync(t)
			f.crm.UpdateFn = func(context.Context, crm.Lead, string) error { return c.err }
			err := f.sync.ProcessUpdate(context.Background(), jobs.NewUpdateCRMLeadTask(f.lead.ID, f.now.Add(-c.requested)))
			if !errors.Is(err, c.err) || errors.Is(err, asynq.SkipRetry) != c.final {
				t.Errorf("update = %v, want %v with SkipRetry %v", err, c.err, c.final)
			}
			if len(f.transfers) != 0 {
				t.Errorf("a failed update was logged as a transfer: %+v", f.transfers)
			}
			assertNoPII(t, err, f.lead)
			f.checkLogs(t)
		})
	}

	f := setupSync(t)
	f.leads.GetFn = func(context.Context, string) (*intake.Lead, error) {
		return nil, &intake.Error{Code: intake.EUnavailable, Message: "load lead"}
	}
	if err := f.update(); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("Redis unavailable = %v, want a retry", err)
	}
	f.leads.GetFn = func(context.Context, string) (*intake.Lead, error) { return nil, errors.New("open sealed value") }
	if err := f.update(); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("unreadable lead = %v, want SkipRetry", err)
	}
	if err := f.sync.ProcessUpdate(context.Background(), asynq.NewTask("crm:update", []byte(`{`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("malformed payload = %v, want SkipRetry", err)
	}
}

func TestCRMSyncErase(t *testing.T) {
	t.Parallel()
	f := setupSync(t)
	var got []string
	f.crm.EraseFn = func(_ context.Context, id, ref string) error {
		got = append(got, id+" "+ref)
		return nil
	}
	// The lead is gone by now: the task alone names it.
	f.leads.GetFn = nil
	if err := f.erase("bitrix24", "42"); err != nil {
		t.Fatal(err)
	}
	if want := f.lead.ID + " 42"; len(got) != 1 || got[0] != want {
		t.Fatalf("Erase got %q, want %q", got, want)
	}
	if !strings.Contains(f.logs.String(), f.lead.ID) {
		t.Errorf("the erasure is not logged by lead id: %s", f.logs)
	}
	for _, c := range []struct {
		name, system string
		crm          jobs.CRM
	}{
		{"another CRM", "amocrm", f.crm},
		{"never in a CRM", "", f.crm},
		{"driver without Erase", "bitrix24", &fakeCRM{}},
		{"driver answers unsupported", "bitrix24", &fakeSyncCRM{EraseFn: func(context.Context, string, string) error {
			return crm.ErrUnsupported
		}}},
	} {
		f.sync.CRM = c.crm
		if err := f.erase(c.system, "42"); err != nil {
			t.Errorf("%s: erase = %v, want nil", c.name, err)
		}
	}
	if len(got) != 1 {
		t.Errorf("Erase called %d times, want once", len(got))
	}
	if !strings.Contains(f.logs.String(), "by hand") {
		t.Errorf("an erasure not passed on is not logged for an operator: %s", f.logs)
	}

	permanent := &integrations.Error{System: "bitrix24", Op: "crm.lead.delete", Status: 403, Kind: integrations.Permanent}
	temporary := &integrations.Error{System: "bitrix24", Op: "crm.lead.delete", Status: 500, Kind: integrations.Temporary}
	for _, c := range []struct {
		err   error
		final bool
	}{{permanent, true}, {temporary, false}} {
		f.sync.CRM = &fakeSyncCRM{EraseFn: func(context.Context, string, string) error { return c.err }}
		if err := f.erase("bitrix24", "42"); !errors.Is(err, c.err) || errors.Is(err, asynq.SkipRetry) != c.final {
			t.Errorf("erase failing with %v = %v, want SkipRetry %v", c.err, err, c.final)
		}
	}
	f.checkLogs(t)
}

// TestCRMSyncWithWebhookDriver passes a correction and an erasure through
// the real webhook driver: lead.updated carries the lead as it now is,
// lead.erased only its id.
func TestCRMSyncWithWebhookDriver(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		json.Unmarshal(body, &ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a-test-key-of-thirty-two-bytes!!"))
	client, err := webhook.New(srv.URL, secret, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	f := setupSync(t)
	f.sync.CRM, f.sync.System = client, webhook.System
	f.lead.Route = intake.Route{System: webhook.System, Ref: f.lead.ID}
	f.lead.Email = "test.testova@example.com"
	if err := f.update(); err != nil {
		t.Fatal(err)
	}
	if err := f.erase(webhook.System, f.lead.ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0]["type"] != webhook.EventLeadUpdated || events[1]["type"] != webhook.EventLeadErased {
		t.Fatalf("events = %v", events)
	}
	if data := events[0]["data"].(map[string]any); data["email"] != "test.testova@example.com" || data["id"] != f.lead.ID {
		t.Errorf("lead.updated data = %v", data)
	}
	if data := events[1]["data"].(map[string]any); len(data) != 1 || data["id"] != f.lead.ID {
		t.Errorf("lead.erased data = %v, want only the id", data)
	}
	if len(f.transfers) != 1 || f.transfers[0].Recipient != "crm:webhook" {
		t.Errorf("disclosure log %+v", f.transfers)
	}
}

func TestCRMSyncFileDriverCannot(t *testing.T) {
	t.Parallel()
	var d any = file.New(t.TempDir())
	if _, ok := d.(jobs.CRMUpdater); ok {
		t.Error("the file driver now updates: CRMSync passes corrections to it")
	}
	if _, ok := d.(jobs.CRMEraser); ok {
		t.Error("the file driver now erases: CRMSync passes erasures to it")
	}
}

func TestMuxDispatchesCRMSync(t *testing.T) {
	t.Parallel()
	f := setupSync(t)
	var calls []string
	f.crm.UpdateFn = func(context.Context, crm.Lead, string) error { calls = append(calls, "update"); return nil }
	f.crm.EraseFn = func(context.Context, string, string) error { calls = append(calls, "erase"); return nil }
	ctx := context.Background()
	mux := jobs.NewMux(jobs.Handlers{CRMSync: f.sync})
	if err := mux.ProcessTask(ctx, jobs.NewUpdateCRMLeadTask(f.lead.ID, f.now)); err != nil {
		t.Error(err)
	}
	if err := mux.ProcessTask(ctx, jobs.NewEraseCRMLeadTask(f.lead.ID, "bitrix24", "42", f.now)); err != nil {
		t.Error(err)
	}
	if strings.Join(calls, ",") != "update,erase" {
		t.Errorf("handlers saw %v", calls)
	}
	without := jobs.NewMux(jobs.Handlers{})
	if err := without.ProcessTask(ctx, jobs.NewUpdateCRMLeadTask(f.lead.ID, f.now)); err == nil {
		t.Error("crm:update handled without a CRMSync")
	}
}
