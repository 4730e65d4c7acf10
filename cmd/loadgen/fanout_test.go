package main

import "testing"

// TestParseFanOut reads both sub-benchmarks' figures from go test's
// output, whatever else it prints around them.
func TestParseFanOut(t *testing.T) {
	t.Parallel()
	out := `goos: linux
pkg: github.com/paymtech/leadgate/jobs
BenchmarkCampaignFanOut/bare-loop-2         	       1	1577105864 ns/op	     63407 recipients/s	       100.0 requests/op	       610.0 cpu-ms/op	         0 redis-cpu-ms/op
BenchmarkCampaignFanOut/leadgate-2         	       1	6590618845 ns/op	     15173 recipients/s	       100.0 requests/op	      1210 cpu-ms/op	       540.0 redis-cpu-ms/op	587619464 B/op
PASS
`
	got := parseFanOut(out)
	want := map[string]fanOutRun{"leadgate": {rate: 15173, cpu: 1210, redisCPU: 540}, "bare-loop": {rate: 63407, cpu: 610}}
	if len(got) != len(want) || got["leadgate"] != want["leadgate"] || got["bare-loop"] != want["bare-loop"] {
		t.Errorf("parseFanOut = %+v, want %+v", got, want)
	}
}
