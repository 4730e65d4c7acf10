package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// fanOutRun is one sub-benchmark's figures from one run of
// BenchmarkCampaignFanOut (jobs/campaign_bench_test.go).
type fanOutRun struct {
	rate     float64 // recipients/s
	cpu      float64 // cpu-ms/op: the benchmark process
	redisCPU float64 // redis-cpu-ms/op: redis-server
}

// benchFanOutCmd runs BenchmarkCampaignFanOut from a compiled test binary
// of package jobs once a round, each run 100,000-recipient campaigns
// through leadgate and the bare loop one after the other on the same
// machine, alternating which goes first, and prints each round, the
// medians and the median of the paired ratios.
func benchFanOutCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-fanout", flag.ExitOnError)
	bin := fs.String("test", "", "the test binary of package jobs (go test -c ./jobs)")
	rounds := fs.Int("rounds", 3, "paired rounds")
	fs.Parse(args)
	if *bin == "" {
		return errors.New("-test: the jobs test binary is required")
	}
	fmt.Printf("fan-out: %d paired rounds of BenchmarkCampaignFanOut (each: a warm-up campaign of 100,000 recipients, then two measured)\n", *rounds)
	var lgRates, bareRates, ratios []float64
	for i := range *rounds {
		load0 := loadAverage()
		// 2x: go test runs each sub-benchmark once before the runs it
		// reports. Without that run, whichever went first after the
		// seeding was up to half as fast.
		cmd := exec.CommandContext(ctx, *bin, "-test.run", "^$", "-test.bench", "^BenchmarkCampaignFanOut$",
			"-test.benchtime", "2x", "-fanout.bare-first="+strconv.FormatBool(i%2 == 1))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("round %d: %w\n%s", i+1, err, out.String())
		}
		runs := parseFanOut(out.String())
		lg, okLg := runs["leadgate"]
		bare, okBare := runs["bare-loop"]
		if !okLg || !okBare || lg.rate <= 0 || bare.rate <= 0 {
			return fmt.Errorf("round %d: no recipients/s for both in the output:\n%s", i+1, out.String())
		}
		first := "leadgate"
		if i%2 == 1 {
			first = "bare-loop"
		}
		fmt.Printf("round %d (%s first, load %s → %s)  leadgate %7.0f recipients/s (cpu %4.0f ms, redis-server %4.0f ms)  bare-loop %7.0f recipients/s (cpu %4.0f ms)  ratio %.2f\n",
			i+1, first, load0, loadAverage(), lg.rate, lg.cpu, lg.redisCPU, bare.rate, bare.cpu, lg.rate/bare.rate)
		lgRates, bareRates, ratios = append(lgRates, lg.rate), append(bareRates, bare.rate), append(ratios, lg.rate/bare.rate)
	}
	ratio := median(ratios)
	fmt.Printf("medians: leadgate %.0f recipients/s, bare-loop %.0f recipients/s, ratio %.2f (median of the paired rounds; target >= 0.5: %s)\n",
		median(lgRates), median(bareRates), ratio, map[bool]string{true: "holds", false: "NOT MET"}[ratio >= 0.5])
	return nil
}

// parseFanOut reads the sub-benchmarks' lines of go test -bench output
// ("BenchmarkCampaignFanOut/leadgate-2  1  1072000000 ns/op  93300
// recipients/s  …": a name, the iterations, then value and unit pairs),
// by sub-benchmark name without the GOMAXPROCS suffix.
func parseFanOut(out string) map[string]fanOutRun {
	runs := map[string]fanOutRun{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name, ok := strings.CutPrefix(f[0], "BenchmarkCampaignFanOut/")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		var r fanOutRun
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			switch f[j+1] {
			case "recipients/s":
				r.rate = v
			case "cpu-ms/op":
				r.cpu = v
			case "redis-cpu-ms/op":
				r.redisCPU = v
			}
		}
		runs[name] = r
	}
	return runs
}

// loadAverage is the one-minute load average (/proc/loadavg), which every
// figure here is read beside: the machine is shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
