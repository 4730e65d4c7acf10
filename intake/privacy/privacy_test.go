package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// The store's parts satisfy the workflow's interfaces.
var (
	_ Records = (*redisstore.Subjects)(nil)
	_ People  = (*redisstore.People)(nil)
)

// fakeStore keeps request records in memory and answers the person
// operations with what a test sets; every call is logged in calls.
type fakeStore struct {
	requests  map[string]intake.SubjectRequest
	clashes   int // OpenSubjectRequest answers EConflict this many times first
	calls     []string
	held      bool
	work      error // what the person operations answer
	erasure   *intake.Erasure
	rect      *intake.Rectification
	unblocked []string
	proof     intake.Proof
}

func newFakeStore() *fakeStore {
	return &fakeStore{requests: map[string]intake.SubjectRequest{}, held: true}
}

func (f *fakeStore) SubjectKey(kind, lookup string) string { return "subject:" + kind + ":" + lookup }
func (f *fakeStore) OpenSubjectRequest(_ context.Context, r intake.SubjectRequest) error {
	if f.clashes > 0 {
		f.clashes--
		return &intake.Error{Code: intake.EConflict, Message: "reference taken"}
	}
	f.requests[r.Reference] = r
	return nil
}
func (f *fakeStore) SubjectRequest(_ context.Context, ref string) (*intake.SubjectRequest, error) {
	r, ok := f.requests[ref]
	if !ok {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such subject request"}
	}
	return &r, nil
}
func (f *fakeStore) CloseSubjectRequest(_ context.Context, ref, outcome string, at time.Time) error {
	r := f.requests[ref]
	r.ClosedAt, r.Outcome = at, outcome
	f.requests[ref] = r
	return nil
}
func (f *fakeStore) NoteSubjectRequest(_ context.Context, ref, outcome string) error {
	r := f.requests[ref]
	r.Outcome = outcome
	f.requests[ref] = r
	return nil
}
func (f *fakeStore) SubjectRequests(context.Context, intake.RequestsOf, string, int) ([]intake.SubjectRequest, string, error) {
	return nil, "", nil
}
func (f *fakeStore) Subject(_ context.Context, person string) (*intake.Subject, error) {
	f.calls = append(f.calls, "subject "+person)
	if f.work != nil {
		return nil, f.work
	}
	return &intake.Subject{Person: person, Leads: []*intake.Lead{{ID: "lead-1"}, {ID: "lead-2"}}}, nil
}
func (f *fakeStore) Rectify(_ context.Context, person string, c intake.Changes) (*intake.Rectification, error) {
	f.calls = append(f.calls, "rectify "+person)
	return f.rect, f.work
}
func (f *fakeStore) Erase(ctx context.Context, person string, before func(context.Context, []intake.CRMCopy) error) (*intake.Erasure, error) {
	if f.work != nil {
		return nil, f.work
	}
	if err := before(ctx, f.erasure.CRM); err != nil {
		return nil, err
	}
	f.calls = append(f.calls, "erase "+person)
	return f.erasure, nil
}
func (f *fakeStore) PersonOf(email string) (string, bool) { return "person(" + email + ")", true }
func (f *fakeStore) PhoneOf(phone string) string          { return "phone(" + phone + ")" }
func (f *fakeStore) Held(context.Context, string) (bool, error) {
	return f.held, nil
}
func (f *fakeStore) PeopleByPhone(_ context.Context, phone string) ([]string, error) {
	return []string{"a", "b"}, nil
}
func (f *fakeStore) Block(_ context.Context, person string) ([]string, error) {
	f.calls = append(f.calls, "block "+person)
	return []string{"lead-1"}, f.work
}
func (f *fakeStore) Unblock(_ context.Context, person string) (int, []string, error) {
	f.calls = append(f.calls, "unblock "+person)
	return 2, f.unblocked, f.work
}
func (f *fakeStore) Withdraw(_ context.Context, person string, p intake.Proof) (bool, error) {
	f.calls = append(f.calls, "withdraw "+person)
	f.proof = p
	return true, f.work
}

// fakeQueue records what was queued; fail makes every enqueue fail.
type fakeQueue struct {
	queued []string
	fail   bool
}

func (q *fakeQueue) add(what string) error {
	if q.fail {
		return errors.New("queue down")
	}
	q.queued = append(q.queued, what)
	return nil
}
func (q *fakeQueue) EnqueueLead(_ context.Context, id string) error { return q.add("lead " + id) }
func (q *fakeQueue) EnqueueCRMUpdate(_ context.Context, id string) error {
	return q.add("update " + id)
}
func (q *fakeQueue) EnqueueCRMErase(_ context.Context, id, system, ref string) error {
	return q.add("erase " + id + " " + system + " " + ref)
}

func setup(t *testing.T) (*Service, *fakeStore, *fakeQueue) {
	t.Helper()
	st, q := newFakeStore(), &fakeQueue{}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) // a Tuesday
	return &Service{Records: st, People: st, Queue: q, Now: func() time.Time { return now },
		Log: slog.New(slog.DiscardHandler)}, st, q
}

const officer = "privacy-officer"

func TestHandleRecordsAndClosesARequest(t *testing.T) {
	t.Parallel()
	s, st, _ := setup(t)
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectExport, Email: " Test.Testov@Example.com ", By: officer})
	if err != nil {
		t.Fatal(err)
	}
	req := ans.Request
	if req.Kind != intake.SubjectExport || req.By != officer || req.Subject != "subject:email:person(test.testov@example.com)" {
		t.Errorf("request %+v: want an export by the officer about the person's normalised address", req)
	}
	if want := time.Date(2026, 11, 27, 23, 59, 59, 0, Almaty); !req.DueAt.Equal(want) {
		t.Errorf("due %v, want %v (three working days)", req.DueAt, want)
	}
	rec := st.requests[req.Reference]
	if rec.ClosedAt.IsZero() || rec.Outcome != "exported: people=1 leads=2" || req.Outcome != rec.Outcome {
		t.Errorf("record %+v: want it closed with the export's counts", rec)
	}
	if len(ans.People) != 1 || ans.People[0].Person != "person(test.testov@example.com)" {
		t.Errorf("people %+v, want the one person", ans.People)
	}
}

func TestHandleRefusesBadAsksBeforeRecording(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		ask   Ask
		field string
	}{
		{"no email", Ask{Kind: intake.SubjectErase}, "email"},
		{"two addresses", Ask{Kind: intake.SubjectBlock, Email: "a@example.com, b@example.com"}, "email"},
		{"email and phone", Ask{Kind: intake.SubjectExport, Email: "a@example.com", Phone: "+77010000000"}, "phone"},
		{"not a phone", Ask{Kind: intake.SubjectExport, Phone: "12"}, "phone"},
		{"no scope", Ask{Kind: intake.SubjectWithdraw, Email: "a@example.com", Scope: "all"}, "scope"},
		{"nothing to change", Ask{Kind: intake.SubjectRectify, Email: "a@example.com"}, "changes"},
		{"a bad correction", Ask{Kind: intake.SubjectRectify, Email: "a@example.com",
			Changes: map[string]json.RawMessage{"lang": []byte(`"de"`)}}, "changes.lang"},
		{"a name the mailer refuses", Ask{Kind: intake.SubjectRectify, Email: "a@example.com",
			Changes: map[string]json.RawMessage{"name": []byte(`"Тест\u2028Тестов"`)}}, "changes.name"},
	} {
		s, st, _ := setup(t)
		ans, err := s.Handle(context.Background(), tc.ask)
		var e *intake.Error
		if ans != nil || !errors.As(err, &e) || e.Code != intake.EInvalid || e.Fields[tc.field].Key == "" {
			t.Errorf("%s: %+v, %v; want a validation error on %s", tc.name, ans, err, tc.field)
		}
		if len(st.requests) != 0 || len(st.calls) != 0 {
			t.Errorf("%s: recorded %v and did %v; want nothing", tc.name, st.requests, st.calls)
		}
	}
}

func TestFailedRequestStaysOpenAndIsFinishedByReference(t *testing.T) {
	t.Parallel()
	s, st, q := setup(t)
	st.erasure = &intake.Erasure{Leads: []string{"lead-1"}, CRM: []intake.CRMCopy{{Lead: "lead-1", System: "bitrix24", Ref: "42"}}}
	q.fail = true
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectErase, Email: "test.testov@example.com"})
	if intake.ErrorCode(err) != intake.EUnavailable || ans == nil {
		t.Fatalf("Handle = %+v, %v; want unavailable with the request", ans, err)
	}
	ref := ans.Request.Reference
	if rec := st.requests[ref]; !rec.ClosedAt.IsZero() || rec.Outcome != "failed: unavailable" {
		t.Fatalf("record %+v: want it open with the failure noted", rec)
	}
	if slices.Contains(st.calls, "erase person(test.testov@example.com)") {
		t.Fatal("destroyed the records although the CRM erasure could not be queued")
	}

	q.fail = false
	again, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectErase, Email: "test.testov@example.com", Reference: ref})
	if err != nil || again.Request.Reference != ref || len(st.requests) != 1 {
		t.Fatalf("again = %+v, %v; want the same request finished", again, err)
	}
	if rec := st.requests[ref]; rec.ClosedAt.IsZero() || rec.Outcome != "erased: leads=1 crm_erasures=1" {
		t.Errorf("record %+v: want it closed with the counts", rec)
	}
	if !slices.Equal(q.queued, []string{"erase lead-1 bitrix24 42"}) {
		t.Errorf("queued %v, want the CRM erasure", q.queued)
	}
	if again.Result["leads_erased"] != 1 || again.Result["crm_erasures"] != 1 {
		t.Errorf("result %v", again.Result)
	}

	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectErase, Email: "test.testov@example.com", Reference: ref}); intake.ErrorCode(err) != intake.EConflict {
		t.Errorf("a closed request again: %v, want conflict", err)
	}
	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectBlock, Email: "test.testov@example.com", Reference: ref}); intake.ErrorCode(err) != intake.EInvalid {
		t.Errorf("a reference of another kind: %v, want invalid", err)
	}
	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectErase, Email: "other@example.com", Reference: ref}); intake.ErrorCode(err) != intake.EInvalid {
		t.Errorf("a reference about someone else: %v, want invalid", err)
	}
	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectErase, Email: "test.testov@example.com", Reference: "SR-20261124-000000"}); intake.ErrorCode(err) != intake.EInvalid {
		t.Errorf("an unknown reference: %v, want invalid", err)
	}
}

func TestNothingHeldClosesTheRequest(t *testing.T) {
	t.Parallel()
	s, st, _ := setup(t)
	st.work = intake.NotHeld()
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectBlock, Email: "test.testov@example.com"})
	if intake.ErrorCode(err) != intake.ENotFound || ans == nil {
		t.Fatalf("Handle = %+v, %v; want not found with the request", ans, err)
	}
	if rec := st.requests[ans.Request.Reference]; rec.ClosedAt.IsZero() || rec.Outcome != "nothing held" {
		t.Errorf("record %+v: want it closed, nothing held", rec)
	}
}

func TestWithdrawProcessingBlocksAndWithdraws(t *testing.T) {
	t.Parallel()
	s, st, _ := setup(t)
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectWithdraw, Email: "test.testov@example.com", Scope: " Processing "})
	if err != nil {
		t.Fatal(err)
	}
	p := "person(test.testov@example.com)"
	if !slices.Equal(st.calls, []string{"block " + p, "withdraw " + p}) {
		t.Errorf("calls %v, want block then withdraw", st.calls)
	}
	if st.proof.Source != withdrawalSource || st.proof.At.IsZero() {
		t.Errorf("proof %+v, want the request as its source", st.proof)
	}
	if ans.Request.Scope != intake.ScopeProcessing || ans.Result["leads_blocked"] != 1 || ans.Result["marketing_withdrawn"] != true {
		t.Errorf("answer %+v %v", ans.Request, ans.Result)
	}

	st.held = false
	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectWithdraw, Email: "nobody@example.com", Scope: "marketing"}); intake.ErrorCode(err) != intake.ENotFound {
		t.Errorf("withdrawing for someone not held: %v, want not found", err)
	}
}

func TestUnblockRequeuesReceivedLeads(t *testing.T) {
	t.Parallel()
	s, st, q := setup(t)
	st.unblocked = []string{"lead-1", "lead-2"}
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectUnblock, Email: "test.testov@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.queued, []string{"lead lead-1", "lead lead-2"}) || ans.Result["requeued"] != 2 || ans.Result["leads_restored"] != 2 {
		t.Errorf("queued %v, result %v", q.queued, ans.Result)
	}
}

func TestRectifyCountsCorrectionsNotQueued(t *testing.T) {
	t.Parallel()
	s, st, q := setup(t)
	st.rect = &intake.Rectification{Leads: []string{"lead-1", "lead-2"}, CRM: []string{"lead-1"}}
	q.fail = true
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectRectify, Email: "test.testov@example.com",
		Changes: map[string]json.RawMessage{"name": []byte(`"Тест Тестов"`), "lang": []byte(`"KK"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Result["crm_updates"] != 0 || ans.Result["crm_updates_not_queued"] != 1 ||
		!slices.Equal(ans.Result["changed"].([]string), []string{"lang", "name"}) {
		t.Errorf("result %v", ans.Result)
	}
	if want := "rectified: fields=lang,name leads=2 crm_updates=0 crm_updates_not_queued=1"; ans.Request.Outcome != want {
		t.Errorf("outcome %q, want %q", ans.Request.Outcome, want)
	}
}

func TestExportByPhoneNamesThePhone(t *testing.T) {
	t.Parallel()
	s, st, _ := setup(t)
	ans, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectExport, Phone: "8 701 000 00 00"})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Request.Subject != "subject:phone:phone(+77010000000)" || len(ans.People) != 2 {
		t.Errorf("request %+v with %d people; want it filed under the phone, both people", ans.Request, len(ans.People))
	}
	if !slices.Equal(st.calls, []string{"subject a", "subject b"}) {
		t.Errorf("calls %v", st.calls)
	}
}

func TestReferenceClashDrawsAgain(t *testing.T) {
	t.Parallel()
	s, st, _ := setup(t)
	st.clashes = 2
	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectBlock, Email: "test.testov@example.com"}); err != nil {
		t.Fatalf("two clashes: %v, want a third reference to be drawn", err)
	}
	st.clashes = 3
	if _, err := s.Handle(context.Background(), Ask{Kind: intake.SubjectBlock, Email: "test.testov@example.com"}); intake.ErrorCode(err) != intake.EConflict {
		t.Errorf("three clashes: %v, want the conflict", err)
	}
}
