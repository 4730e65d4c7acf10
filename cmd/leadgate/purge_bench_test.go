package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/seal"
)

// purgeBenchLeads is how many expired leads each purge benchmark removes.
const purgeBenchLeads = 200_000

// intakeRate is the requests a second the intake benchmarks post: far above
// what the website sends (the default limit is 20 an hour per IP), well
// below what saturates two cores.
const intakeRate = 500

// purgeRounds is how many paired rounds BenchmarkPurge runs: make
// bench-purge asks for 5 (-purge.rounds 5), make bench runs one a count.
var purgeRounds = flag.Int("purge.rounds", 1, "paired rounds of BenchmarkPurge")

// purgeWindow is how long intake is measured in each round, alone and
// while the paced purge runs (which is cut off then: it would take longer).
const purgeWindow = 5 * time.Second

// BenchmarkPurge measures the retention purge on one private redis-server,
// in paired rounds. It writes 200,000 expired leads (each of its own
// person, in the layout Accept writes) once and saves them to the server's
// RDB file; each measurement starts from a restart of the server, which
// loads that file (quicker than writing them again). Each round:
//
//   - flat out: Store.Purge removing them all (Share 1, so batches of 25),
//     against the same keys removed by pipelined UNLINK and ZREM that know
//     every key beforehand (the floor of any purge), in alternating order;
//   - intake: POST /v1/leads latency at a steady 500 requests a second for
//     5 s, alone and while Store.Purge runs as the clock and `leadgate
//     purge` run it (default share and batch: half of Redis, 4 leads a
//     call; it is stopped after the 5 s), in alternating order, on one
//     load of the leads.
//
// It prints every round, the medians and the medians of the per-round
// ratios, and Redis's time by command during the paced purges (INFO
// commandstats); it reports the median ratios as p99-ratio (intake p99
// during the purge over without) and flat-out-ratio (leads/s of the purge
// over bare UNLINK's).
//
//	make bench-purge   (or: go test -run '^$' -bench '^BenchmarkPurge$' -benchtime 1x ./cmd/leadgate -purge.rounds 5)
func BenchmarkPurge(b *testing.B) {
	srv := redistest.Start(b)
	// Writing, saving or loading 800,000 keys may take longer than
	// go-redis's default 3 s on a busy machine.
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, ReadTimeout: time.Minute})
	defer rdb.Close()
	ctx := context.Background()
	fill := purgeFixture(b, rdb)
	m := startMain(b, "web", map[string]string{"REDIS_URL": srv.URL,
		"INTAKE_RATE_LIMIT": "100000000/h", "INTAKE_RATE_LIMIT_EMAIL": "100000000/h"})
	post := intakePoster(m.http.Handler)
	leads := fill()
	if err := rdb.Save(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	restore := func() {
		srv.Stop()
		srv.Restart(b) // loads the saved leads
		for range 20 { // web's and this client's connections died with the server
			post(b)
		}
		runtime.GC() // the last phase's garbage is not the next one's
	}
	retention := intake.PurgeOptions{LeadRetention: 30 * 24 * time.Hour, OptinTTL: 7 * 24 * time.Hour}
	store := redisstore.New(rdb, nil, time.Now)

	flatOut := func() float64 {
		restore()
		o := retention
		o.Share = 1
		start := time.Now()
		r, err := store.Retention.Purge(ctx, o)
		d := time.Since(start)
		if err != nil || r.Leads != purgeBenchLeads || r.People != purgeBenchLeads {
			b.Fatalf("purge = %+v, %v", r, err)
		}
		return purgeBenchLeads / d.Seconds()
	}
	bare := func() float64 {
		restore()
		start := time.Now()
		for chunk := range slices.Chunk(leads, 500) {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, l := range chunk {
					p.Unlink(ctx, "lg:lead:"+l.id, "lg:person:"+l.person, "lg:person:"+l.person+":leads", "lg:phone:"+l.phone)
					p.ZRem(ctx, "lg:leads", l.id)
					p.ZRem(ctx, "lg:leads:state:received", l.id)
					p.ZRem(ctx, "lg:people", l.person)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(start)
		first, last := leads[0], leads[len(leads)-1]
		if n := rdb.Exists(ctx, "lg:lead:"+first.id, "lg:person:"+first.person, "lg:lead:"+last.id, "lg:phone:"+last.phone).Val(); n != 0 {
			b.Fatalf("%d keys of the leads left", n)
		}
		return purgeBenchLeads / d.Seconds()
	}

	alone := func() []time.Duration {
		return measureIntake(b, post, func() { time.Sleep(purgeWindow) })
	}
	stats := map[string]commandStat{} // Redis's time by command during the paced purges
	var pacedRates []float64
	during := func() []time.Duration {
		if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		var r intake.PurgeReport
		var d time.Duration
		ds := measureIntake(b, post, func() {
			wctx, cancel := context.WithTimeout(ctx, purgeWindow)
			defer cancel()
			start := time.Now()
			var err error
			r, err = store.Retention.Purge(wctx, retention)
			d = time.Since(start)
			if err != nil && wctx.Err() == nil {
				b.Fatalf("paced purge: %v", err)
			}
		})
		addCommandStats(b, rdb, stats)
		pacedRates = append(pacedRates, float64(r.Leads)/d.Seconds())
		return ds
	}

	for range b.N {
		var flat, unlink, flatRatios, p50s, p99s, p50sDuring, p99sDuring, p99Ratios []float64
		for round := range *purgeRounds {
			// Alternating which goes first, so that neither always runs
			// on a machine just warmed (or slowed) by the other.
			var f, u float64
			if round%2 == 0 {
				f, u = flatOut(), bare()
			} else {
				u, f = bare(), flatOut()
			}
			var a, d []time.Duration
			restore()
			if round%2 == 0 {
				a, d = alone(), during()
			} else {
				d, a = during(), alone()
			}
			a50, a99 := percentiles(b, a)
			d50, d99 := percentiles(b, d)
			flat, unlink, flatRatios = append(flat, f), append(unlink, u), append(flatRatios, f/u)
			p50s, p99s, p50sDuring, p99sDuring = append(p50s, a50), append(p99s, a99), append(p50sDuring, d50), append(p99sDuring, d99)
			p99Ratios = append(p99Ratios, d99/a99)
			fmt.Printf("round %d: flat out %.0f leads/s, bare UNLINK %.0f: %.2f | intake p50/p99 alone %.2f/%.2f ms, "+
				"during the paced purge (%.0f leads/s) %.2f/%.2f ms: p99 %.2f× | load %s\n",
				round+1, f, u, f/u, a50, a99, pacedRates[len(pacedRates)-1], d50, d99, d99/a99, loadAverage())
		}
		fmt.Printf("medians of %d: flat out %.0f leads/s, bare UNLINK %.0f, ratio %.2f | intake p50/p99 alone %.2f/%.2f ms, "+
			"during the paced purge (%.0f leads/s) %.2f/%.2f ms, p99 ratio %.2f (targets: flat out >= 0.5, p99 ratio <= 1.5)\n",
			*purgeRounds, median(flat), median(unlink), median(flatRatios), median(p50s), median(p99s),
			median(pacedRates), median(p50sDuring), median(p99sDuring), median(p99Ratios))
		printCommandStats(stats)
		b.ReportMetric(median(flatRatios), "flat-out-ratio")
		b.ReportMetric(median(p99Ratios), "p99-ratio")
		b.ReportMetric(median(p99sDuring), "p99-during-ms")
		b.ReportMetric(median(p99s), "p99-alone-ms")
		b.ReportMetric(0, "ns/op")
	}
}

// commandStat is one line of INFO commandstats: calls and microseconds.
type commandStat struct{ calls, usec int64 }

// addCommandStats adds the server's INFO commandstats since the last
// CONFIG RESETSTAT to stats.
func addCommandStats(b *testing.B, rdb redis.UniversalClient, stats map[string]commandStat) {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		var s commandStat
		fmt.Sscanf(rest, "calls=%d,usec=%d", &s.calls, &s.usec)
		old := stats[name]
		stats[name] = commandStat{old.calls + s.calls, old.usec + s.usec}
	}
}

// printCommandStats prints the commands that took most of Redis's time,
// with their calls and mean duration: the profile of the paced purge's
// windows (intake's accept script is an evalsha too).
func printCommandStats(stats map[string]commandStat) {
	names := slices.SortedFunc(maps.Keys(stats), func(x, y string) int { return cmp.Compare(stats[y].usec, stats[x].usec) })
	fmt.Println("Redis time during the paced purge windows (INFO commandstats, all rounds; commands inside scripts count in their script too):")
	for _, n := range names[:min(8, len(names))] {
		s := stats[n]
		fmt.Printf("  %-12s %9d calls %9.1f ms %7.2f µs/call\n", n, s.calls, float64(s.usec)/1e3, float64(s.usec)/float64(s.calls))
	}
}

// loadAverage is the 1-, 5- and 15-minute load average (Linux), or "?".
func loadAverage() string {
	s, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(s))
	return strings.Join(f[:3], " ")
}

// median is the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// benchLead names the keys of one lead written by purgeFixture.
type benchLead struct{ id, person, phone string }

// purgeFixture returns a function that writes purgeBenchLeads leads, each
// of its own person, last changed 40 days ago, exactly as Accept lays out a
// new lead (it copies the hashes Accept wrote for one), and returns them.
func purgeFixture(b *testing.B, rdb redis.UniversalClient) func() []benchLead {
	ctx := context.Background()
	keys, err := seal.NewKeys(bytes.Repeat([]byte{1}, 32), nil, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		b.Fatal(err)
	}
	old := time.Now().Add(-40 * 24 * time.Hour)
	store := redisstore.New(rdb, keys, func() time.Time { return old })
	adm, err := store.Leads.Accept(ctx, intake.Application{
		Submission: &intake.Submission{EntityType: intake.LegalEntity, Name: "Test Testov", Phone: "+77010000000",
			Email: "test.testov@example.com", EmailKey: "test.testov@example.com", TaxID: "210840004064",
			Products: []string{"acquiring"}, Message: "A test request of a benchmark", Lang: "ru"},
		Consent: intake.Consent{Processing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy",
			GivenAt: old, IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", PageURL: "https://example.com/connect"},
		Meta: intake.Metadata{IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", Browser: "Firefox",
			OS: "Linux", Timezone: "Asia/Almaty", PageURL: "https://example.com/connect"},
		PerIP: intake.Limit{N: 10, Per: time.Hour}, PerEmail: intake.Limit{N: 10, Per: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	lead := rdb.HGetAll(ctx, "lg:lead:"+adm.ID).Val()
	person := rdb.HGetAll(ctx, "lg:person:"+lead["person"]).Val()
	width := len(lead["person"])
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	if width != 40 {
		b.Fatalf("person hashes are %d characters; fillScript writes 40", width)
	}
	args := []any{0, 0, old.UnixMilli(), 2 * len(lead)}
	for f, v := range lead {
		args = append(args, f, v)
	}
	for f, v := range person {
		args = append(args, f, v)
	}
	return func() []benchLead {
		leads := make([]benchLead, purgeBenchLeads)
		for i := range leads {
			leads[i] = benchLead{id: fmt.Sprintf("01960000-0000-7000-8000-%012d", i),
				person: fmt.Sprintf("%040x", i), phone: fmt.Sprintf("%040x", 1<<40+i)}
		}
		for from := 0; from < purgeBenchLeads; from += 5000 {
			args[0], args[1] = from, min(from+5000, purgeBenchLeads)
			if err := fillScript.Run(ctx, rdb, nil, args...).Err(); err != nil {
				b.Fatal(err)
			}
		}
		return leads
	}
}

// fillScript writes the leads ARGV[1] to ARGV[2]-1 as benchLead names them,
// last changed at ARGV[3] (ms), each a copy of a lead hash (the ARGV[4]
// values after it, field and value) and its person's hash (the rest). In
// Redis itself: from the client it takes longer than the purge.
var fillScript = redis.NewScript(`
local score, nl = ARGV[3], tonumber(ARGV[4])
local lead, person = {}, {}
for i = 5, 4 + nl do lead[#lead + 1] = ARGV[i] end
for i = 5 + nl, #ARGV do person[#person + 1] = ARGV[i] end
for n = tonumber(ARGV[1]), tonumber(ARGV[2]) - 1 do
  local id = string.format('01960000-0000-7000-8000-%012d', n)
  local p = string.format('%040x', n)
  local ph = string.format('%040x', 1099511627776 + n)
  for i = 1, #lead, 2 do
    if lead[i] == 'person' then lead[i + 1] = p elseif lead[i] == 'phone' then lead[i + 1] = ph end
  end
  redis.call('HSET', 'lg:lead:' .. id, unpack(lead))
  redis.call('ZADD', 'lg:leads', score, id)
  redis.call('ZADD', 'lg:leads:state:received', score, id)
  redis.call('HSET', 'lg:person:' .. p, unpack(person))
  redis.call('ZADD', 'lg:person:' .. p .. ':leads', score, id)
  redis.call('ZADD', 'lg:phone:' .. ph, score, id)
  redis.call('ZADD', 'lg:people', score, p)
end
return 0
`)

// intakePoster returns a function that posts one unique valid request to h
// and returns how long the answer took.
func intakePoster(h http.Handler) func(b *testing.B) time.Duration {
	var seq atomic.Int64
	return func(b *testing.B) time.Duration {
		n := seq.Add(1)
		body := fmt.Appendf(nil, `{"entity_type":"legal_entity","name":"Test Testov","phone":"8 701 %03d %02d %02d",`+
			`"email":"test.purge%d@example.com","products":["acquiring"],"consent_processing":true}`,
			n/10000%1000, n/100%100, n%100, n)
		req := httptest.NewRequest(http.MethodPost, "/v1/leads", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return d
	}
}

// measureIntake posts requests at a steady rate (intakeRate a second,
// each in its own goroutine: a slow answer does not hold the next request
// back) for as long as during runs, and returns every latency.
func measureIntake(b *testing.B, post func(*testing.B) time.Duration, during func()) []time.Duration {
	done := make(chan struct{})
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / intakeRate)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				wg.Go(func() {
					d := post(b)
					mu.Lock()
					all = append(all, d)
					mu.Unlock()
				})
			}
		}
	})
	during()
	close(done)
	wg.Wait()
	return all
}

// percentiles returns the median and 99th percentile of ds, in ms.
func percentiles(b *testing.B, ds []time.Duration) (p50, p99 float64) {
	if len(ds) < 200 {
		b.Fatalf("only %d requests measured", len(ds))
	}
	slices.Sort(ds)
	pct := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e6 }
	return pct(0.50), pct(0.99)
}
