package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
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

// BenchmarkPurge measures the retention purge on one private redis-server,
// its sub-benchmarks side by side:
//
//   - purge: Store.Purge removing 200,000 expired leads, each of its own
//     person, in the layout Accept writes, flat out (Share 1): the work
//     itself;
//   - bare-unlink: the same keys removed by pipelined UNLINK and ZREM that
//     know every key beforehand: the floor of any purge;
//   - intake-p99: POST /v1/leads latency at a steady 500 requests a second
//     for 3 s;
//   - intake-p99-during-purge: the same while Store.Purge, as the clock and
//     `leadgate purge` run it (batches of 50, pausing to keep Redis at most
//     half its time), removes 200,000 leads; it reports that purge's rate
//     too.
//
// Each run writes its 200,000 leads first (a few seconds, not measured) and
// reports its own measurements: ns/op is per lead removed, or per request
// for the intake ones, and b.N stays 1.
//
//	make bench   (or: go test -run '^$' -bench Purge -count 6 ./cmd/leadgate)
func BenchmarkPurge(b *testing.B) {
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	ctx := context.Background()
	fill := purgeFixture(b, rdb)
	retention := intake.PurgeOptions{LeadRetention: 30 * 24 * time.Hour, OptinTTL: 7 * 24 * time.Hour}
	purge := func(b *testing.B, o intake.PurgeOptions) time.Duration {
		store := redisstore.New(rdb, nil, time.Now)
		start := time.Now()
		r, err := store.Retention.Purge(ctx, o)
		if err != nil || r.Leads != purgeBenchLeads || r.People != purgeBenchLeads {
			b.Errorf("purge = %+v, %v", r, err)
		}
		return time.Since(start)
	}

	b.Run("purge", func(b *testing.B) {
		for range b.N {
			fill()
			runtime.GC() // the fill's garbage is not the purge's
			flatOut := retention
			flatOut.Share = 1
			d := purge(b, flatOut)
			b.ReportMetric(float64(d.Nanoseconds())/purgeBenchLeads, "ns/op")
			b.ReportMetric(purgeBenchLeads/d.Seconds(), "leads/s")
		}
	})
	b.Run("bare-unlink", func(b *testing.B) {
		for range b.N {
			leads := fill()
			runtime.GC()
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
			b.ReportMetric(float64(d.Nanoseconds())/purgeBenchLeads, "ns/op")
			b.ReportMetric(purgeBenchLeads/d.Seconds(), "leads/s")
			if n := rdb.DBSize(ctx).Val(); n != 0 {
				b.Fatalf("%d keys left", n)
			}
		}
	})

	m := startMain(b, "web", map[string]string{"REDIS_URL": srv.URL,
		"INTAKE_RATE_LIMIT": "100000000/h", "INTAKE_RATE_LIMIT_EMAIL": "100000000/h"})
	post := intakePoster(m.http.Handler)
	b.Run("intake-p99", func(b *testing.B) {
		for range b.N {
			runtime.GC()
			reportLatency(b, measureIntake(b, post, func() { time.Sleep(3 * time.Second) }))
		}
	})
	b.Run("intake-p99-during-purge", func(b *testing.B) {
		for range b.N {
			fill()
			runtime.GC()
			var d time.Duration
			reportLatency(b, measureIntake(b, post, func() { d = purge(b, retention) }))
			b.ReportMetric(purgeBenchLeads/d.Seconds(), "leads/s")
		}
	})
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

// reportLatency reports the median and 99th percentile of ds, in ms.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) < 200 {
		b.Fatalf("only %d requests measured", len(ds))
	}
	slices.Sort(ds)
	pct := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e6 }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric(float64(sum.Nanoseconds())/float64(len(ds)), "ns/op")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(ds)), "requests")
}
