package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisCost is what a redis-server did between two looks (INFO): the
// reads it processed (one per round trip, a pipeline being one), the
// calls of each command (those scripts make counted too) and its CPU time.
type redisCost struct {
	reads float64
	cpu   float64 // seconds, user + system
	calls map[string]float64
}

// readRedisCost reads the counters behind redisCost.
func readRedisCost(ctx context.Context, rdb *redis.Client) (redisCost, error) {
	info, err := rdb.Info(ctx, "stats", "cpu", "commandstats").Result()
	if err != nil {
		return redisCost{}, err
	}
	c := redisCost{calls: map[string]float64{}}
	for line := range strings.Lines(info) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case name == "total_reads_processed":
			c.reads, _ = strconv.ParseFloat(value, 64)
		case name == "used_cpu_user" || name == "used_cpu_sys":
			s, _ := strconv.ParseFloat(value, 64)
			c.cpu += s
		case strings.HasPrefix(name, "cmdstat_"): // calls=N,usec=…
			calls, _, _ := strings.Cut(strings.TrimPrefix(value, "calls="), ",")
			c.calls[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseFloat(calls, 64)
		}
	}
	return c, nil
}

// per is the cost from c to later, divided by n (leads or tasks).
func (c redisCost) per(later redisCost, n int) redisCost {
	d := redisCost{reads: (later.reads - c.reads) / float64(n), cpu: (later.cpu - c.cpu) / float64(n), calls: map[string]float64{}}
	for name, calls := range later.calls {
		if v := (calls - c.calls[name]) / float64(n); v > 0 {
			d.calls[name] = v
		}
	}
	return d
}

// String is the per-unit cost: round trips, redis-server CPU, and the
// commands called most often.
func (c redisCost) String() string {
	names := slices.SortedFunc(maps.Keys(c.calls), func(a, b string) int {
		return cmp.Or(cmp.Compare(c.calls[b], c.calls[a]), cmp.Compare(a, b))
	})
	var total float64
	for _, v := range c.calls {
		total += v
	}
	var top []string
	for _, name := range names[:min(len(names), 8)] {
		top = append(top, fmt.Sprintf("%s %.1f", name, c.calls[name]))
	}
	return fmt.Sprintf("%.1f round trips, %.0f µs redis-server CPU, %.1f commands (%s)", c.reads, c.cpu*1e6, total, strings.Join(top, ", "))
}
