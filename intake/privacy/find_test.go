package privacy

import (
	"context"
	"slices"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

// Find is a look-up, not a request: it checks what it is given as Handle
// does and records nothing.
func TestFindRecordsNoRequest(t *testing.T) {
	t.Parallel()
	s, st, _ := setup(t)
	ctx := context.Background()
	byEmail, err := s.Find(ctx, " Test.Person@Example.com ", "")
	if err != nil || len(byEmail) != 1 || byEmail[0].Person != "person(test.person@example.com)" {
		t.Fatalf("Find(email) = %v, %v", byEmail, err)
	}
	byPhone, err := s.Find(ctx, "", "8 701 000 00 00")
	if err != nil || len(byPhone) != 2 {
		t.Fatalf("Find(phone) = %d people, %v; want both who gave it", len(byPhone), err)
	}
	for _, bad := range [][2]string{{"", ""}, {"not an address", ""}, {"", "12"}, {"a@example.com", "8 701 000 00 00"}} {
		if _, err := s.Find(ctx, bad[0], bad[1]); intake.ErrorCode(err) != intake.EInvalid {
			t.Errorf("Find(%q, %q) = %v, want EInvalid", bad[0], bad[1], err)
		}
	}
	if len(st.requests) != 0 {
		t.Errorf("Find recorded %d requests, want none", len(st.requests))
	}
	st.work = intake.NotHeld()
	if found, err := s.Find(ctx, "gone@example.com", ""); err != nil || len(found) != 0 {
		t.Errorf("Find(someone erased) = %v, %v; want nobody, no error", found, err)
	}
	if !slices.Contains(st.calls, "subject person(gone@example.com)") {
		t.Errorf("calls %v", st.calls)
	}
}
