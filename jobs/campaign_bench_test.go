package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/integrations/mail/sendgrid"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/templates"
)

// fanOutPeople is the size of the benchmark's audience.
const fanOutPeople = 100_000

// sendgridFake answers POST /v3/mail/send with 202 and counts requests
// and personalizations, reading each body whole as SendGrid would.
type sendgridFake struct {
	requests, recipients atomic.Int64
}

func (f *sendgridFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path != "/v3/mail/send" || r.Header.Get("Authorization") != "Bearer SG.bench" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.requests.Add(1)
	f.recipients.Add(int64(bytes.Count(body, []byte(`"to":[`))))
	w.WriteHeader(http.StatusAccepted)
}

// BenchmarkCampaignFanOut sends a campaign to 100,000 consenting people
// through the SendGrid driver to a local fake, and in the same run a bare
// loop posts the same request bodies (1000 personalizations with their
// List-Unsubscribe headers and substitutions) to the same fake with no
// Redis at all: the floor of any sender. Recipients/second of both go to
// BENCHMARKS.md.
func BenchmarkCampaignFanOut(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	keys, err := seal.NewKeys(bytes.Repeat([]byte{0x11}, 32), nil, bytes.Repeat([]byte{0x22}, 32))
	if err != nil {
		b.Fatal(err)
	}
	store := redisstore.New(rdb, keys, time.Now)
	people := seedSubscribers(b, rdb, keys, store)
	fake := &sendgridFake{}
	srv := httptest.NewServer(fake)
	b.Cleanup(srv.Close)
	client, err := sendgrid.New("SG.bench", srv.URL, integrations.NewHTTPClient(0))
	if err != nil {
		b.Fatal(err)
	}
	from := mail.Address{Email: "news@example.com", Name: "PaymTech"}
	content := intake.Content{Subject: map[string]string{"ru": "Новости"}, HTML: map[string]string{"ru": "<p>Эквайринг для вашего бизнеса.</p>"},
		Text: map[string]string{"ru": "Эквайринг для вашего бизнеса."}}

	leadgate := func(b *testing.B) {
		c := &jobs.Campaigner{Store: store.Campaigns, Mailer: client, From: from, BaseURL: "https://leads.example.com",
			ASMGroupID: 42, Log: slog.New(slog.DiscardHandler)}
		before := fake.requests.Load()
		var cpu, redisCPU time.Duration
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			id, err := store.Campaigns.CreateCampaign(context.Background(), &intake.Campaign{Kind: intake.KindCampaign, Name: "bench", Content: content}, nil)
			if err != nil {
				b.Fatal(err)
			}
			cpu0, redis0 := processCPU(b), redisServerCPU(b, rdb)
			b.StartTimer()
			if err := c.ProcessTask(context.Background(), campaignTask(id)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu, redisCPU = cpu+processCPU(b)-cpu0, redisCPU+redisServerCPU(b, rdb)-redis0
			camp, _ := store.Campaigns.Campaign(context.Background(), id)
			if camp.Sent != fanOutPeople || camp.State != intake.CampaignDone {
				b.Fatalf("campaign %+v: not everyone was sent to", camp)
			}
			b.StartTimer()
		}
		report(b, fake.requests.Load()-before, cpu, redisCPU)
	}

	bare := func(b *testing.B) {
		e, err := templates.RenderCampaign(templates.CampaignEmail{Lang: templates.RU, Subject: content.Subject["ru"],
			HTML: content.HTML["ru"], Text: content.Text["ru"],
			UnsubscribeURL: "https://leads.example.com/v1/unsubscribe?lang=ru&token=" + templates.UnsubscribeSlot})
		if err != nil {
			b.Fatal(err)
		}
		hc := integrations.NewHTTPClient(0)
		before := fake.requests.Load()
		cpu0 := processCPU(b)
		b.ResetTimer()
		for range b.N {
			for start := 0; start < len(people); start += mail.MaxRecipients {
				batch := people[start:min(start+mail.MaxRecipients, len(people))]
				m := mail.Message{From: from, Subject: e.Subject, Text: e.Text, HTML: e.HTML, Category: "campaign", Ref: "bench",
					ASMGroupID: 42, Headers: map[string]string{"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
					To: make([]mail.Address, len(batch)), PerRecipient: make([]mail.Personal, len(batch))}
				for i, p := range batch {
					m.To[i] = mail.Address{Email: p.email, Name: "Test Testov"}
					m.PerRecipient[i] = mail.Personal{
						Headers:       map[string]string{"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?lang=ru&token=" + p.token + ">"},
						Substitutions: map[string]string{templates.UnsubscribeSlot: p.token}}
				}
				body, err := sendgrid.Build(m)
				if err != nil {
					b.Fatal(err)
				}
				raw, _ := json.Marshal(body)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v3/mail/send", bytes.NewReader(raw))
				req.Header.Set("Authorization", "Bearer SG.bench")
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Fatalf("fake answered %d", resp.StatusCode)
				}
			}
		}
		b.StopTimer()
		report(b, fake.requests.Load()-before, processCPU(b)-cpu0, 0)
	}

	// Alternate which goes first between runs (-fanout.bare-first, as make
	// bench-fanout does), so neither always gets the cooler machine.
	runs := []struct {
		name string
		f    func(*testing.B)
	}{{"leadgate", leadgate}, {"bare-loop", bare}}
	if *bareFirst {
		slices.Reverse(runs)
	}
	for _, r := range runs {
		b.Run(r.name, r.f)
	}
}

// bareFirst runs the bare loop before leadgate.
var bareFirst = flag.Bool("fanout.bare-first", false, "BenchmarkCampaignFanOut: run bare-loop before leadgate")

// report gives recipients/s (what BENCHMARKS.md compares) and, per
// campaign, the CPU time of this process (sender, fake and GC: the fake's
// share is the same for both) and of redis-server. CPU time is what a run
// costs whatever else shares the machine, so it shows a cut when the
// rates are noisy.
func report(b *testing.B, requests int64, cpu, redisCPU time.Duration) {
	b.ReportMetric(float64(fanOutPeople*b.N)/b.Elapsed().Seconds(), "recipients/s")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(redisCPU.Milliseconds())/float64(b.N), "redis-cpu-ms/op")
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisServerCPU is the user and system CPU time redis-server has used
// (INFO cpu).
func redisServerCPU(b *testing.B, rdb redis.UniversalClient) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for line := range strings.SplitSeq(info, "\r\n") {
		name, v, _ := strings.Cut(line, ":")
		if name == "used_cpu_user" || name == "used_cpu_sys" {
			s, _ := strconv.ParseFloat(v, 64)
			sum += s
		}
	}
	return time.Duration(sum * float64(time.Second))
}

type subscriberRow struct{ person, email, token string }

// seedSubscribers writes 100,000 people with active, confirmed marketing
// consent in the layout Accept and ConfirmMarketing leave (a person hash
// with the sealed contact, language, number and state, and the marketing
// index),
// pipelined, since accepting them one by one would take longer than the
// benchmark. TestCampaignSendsOncePerConsentingPersonWithUnsubscribe
// covers the real path.
func seedSubscribers(b *testing.B, rdb redis.UniversalClient, keys *seal.Keys, store *redisstore.Store) []subscriberRow {
	b.Helper()
	ctx := context.Background()
	rows := make([]subscriberRow, fanOutPeople)
	pipe := rdb.Pipeline()
	for n := range rows {
		email := fmt.Sprintf("test.testov%d@example.com", n)
		person, _ := store.People.PersonOf(email)
		contact, _ := intake.Contact{Email: email, Name: "Test Testov"}.MarshalBinary()
		pipe.HSet(ctx, "lg:person:"+person, "contact", keys.Seal(contact, person), "lang", "ru",
			"entity_type", intake.LegalEntity, "products", "acquiring", "marketing", intake.MarketingActive, "n", n+1)
		pipe.ZAdd(ctx, "lg:marketing", redis.Z{Member: person})
		rows[n] = subscriberRow{person: person, email: email, token: store.Campaigns.UnsubscribeToken(person)}
		if pipe.Len() >= 2000 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	if state, _ := store.People.Marketing(ctx, rows[0].person); state != intake.MarketingActive {
		b.Fatalf("seeded person has consent %q", state)
	}
	return rows
}
