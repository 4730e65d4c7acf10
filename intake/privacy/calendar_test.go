package privacy

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var referencePattern = regexp.MustCompile(`^SR-\d{8}-[0-9A-F]{6}$`)

func TestDueDate(t *testing.T) {
	t.Parallel()
	at := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, Almaty) }
	due := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 23, 59, 59, 0, Almaty) }
	for _, c := range []struct {
		name     string
		received time.Time
		n        int
		want     time.Time
	}{
		{"Tuesday", at(2026, 11, 24, 15), 3, due(2026, 11, 27)},
		{"Friday: over the weekend", at(2026, 11, 20, 10), 3, due(2026, 11, 25)},
		{"Saturday counts from Monday", at(2026, 11, 21, 10), 3, due(2026, 11, 25)},
		{"Sunday late", at(2026, 11, 22, 23), 1, due(2026, 11, 23)},
		{"Independence Day", at(2026, 12, 14, 9), 3, due(2026, 12, 18)},
		{"year end", at(2026, 12, 30, 9), 3, due(2027, 1, 5)},
		{"Orthodox Christmas", at(2027, 1, 6, 9), 1, due(2027, 1, 8)},
		{"Nauryz and Women's Day", at(2027, 3, 5, 9), 3, due(2027, 3, 11)},
		{"Nauryz", at(2027, 3, 19, 9), 3, due(2027, 3, 26)},
		{"May holidays", at(2026, 4, 30, 9), 3, due(2026, 5, 6)},
		{"Republic Day", at(2027, 10, 22, 9), 1, due(2027, 10, 26)},
		{"zero means the default", at(2026, 11, 24, 15), 0, due(2026, 11, 27)},
		// 20:00 UTC on Friday is already Saturday in Almaty.
		{"Almaty's date, not UTC's", time.Date(2026, 11, 20, 20, 0, 0, 0, time.UTC), 1, due(2026, 11, 23)},
		{"UTC still Thursday", time.Date(2026, 11, 19, 18, 59, 0, 0, time.UTC), 1, due(2026, 11, 20)},
	} {
		if got := DueDate(c.received, c.n); !got.Equal(c.want) {
			t.Errorf("%s: dueDate(%v, %d) = %v, want %v", c.name, c.received, c.n, got, c.want)
		}
	}
	if !isWorkingDay(at(2026, 11, 24, 0)) || isWorkingDay(at(2026, 12, 16, 12)) || isWorkingDay(at(2026, 11, 29, 12)) {
		t.Error("isWorkingDay is wrong about a Tuesday, Independence Day (a Wednesday) or a Sunday")
	}
	ref := newReference(time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC))
	if !referencePattern.MatchString(ref) || !strings.HasPrefix(ref, "SR-20261124-") {
		t.Errorf("reference %q, want SR-<Almaty date>-<6 hex>", ref)
	}
}
