package intake

import "testing"

// TestPurgePacing: a zero field means its default; a paced pass takes
// smaller calls than a flat-out one, since what intake waits behind is one
// call; a Batch beyond the bound is cut to it.
func TestPurgePacing(t *testing.T) {
	for _, c := range []struct {
		name  string
		o     PurgeOptions
		share float64
		batch int
	}{
		{"zero values: paced at half", PurgeOptions{}, 0.5, 4},
		{"flat out", PurgeOptions{Share: 1}, 1, 25},
		{"a share of its own", PurgeOptions{Share: 0.25}, 0.25, 4},
		{"a share above the whole", PurgeOptions{Share: 2}, 0.5, 4},
		{"a batch of its own", PurgeOptions{Batch: 7, Share: 1}, 1, 7},
		{"a batch beyond the bound", PurgeOptions{Batch: 1_000_000}, 0.5, 5000},
	} {
		if share, batch := c.o.Pacing(); share != c.share || batch != c.batch {
			t.Errorf("%s: Pacing() = %v, %d; want %v, %d", c.name, share, batch, c.share, c.batch)
		}
	}
}
