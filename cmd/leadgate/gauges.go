package main

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/jobs"
)

// leadCounter counts leads by state (redisstore.Leads).
type leadCounter interface {
	Count(ctx context.Context, st intake.State) (int64, error)
}

// gauges are read from Redis when /metrics is scraped: whether Redis
// answers, how many leads are in each state, and how many tasks in each
// queue and state. Redis is the truth whichever process did the work, so
// an alert on failed leads fires even when a separate worker failed them.
// Only web and serve register them (Main.registry), so a sum across
// processes never counts a lead twice.
type gauges struct {
	redis pinger
	leads leadCounter
	insp  *asynq.Inspector
	log   *slog.Logger
}

var (
	redisUpDesc = prometheus.NewDesc("leadgate_redis_up", "1 when Redis answered a PING at scrape, else 0 (and no other gauge is read).", nil, nil)
	leadsDesc   = prometheus.NewDesc("leadgate_leads", "Leads by state, read from Redis at scrape.", []string{"state"}, nil)
	tasksDesc   = prometheus.NewDesc("leadgate_queue_tasks", "Queue tasks by queue and state, read from Redis at scrape.",
		[]string{"queue", "state"}, nil)
)

// scrapeTimeout bounds the Redis reads of one scrape: Prometheus gives up
// on a slow target anyway, and a scrape must not pile up on a sick Redis.
const scrapeTimeout = 5 * time.Second

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- redisUpDesc
	ch <- leadsDesc
	ch <- tasksDesc
}

// Collect reads the numbers now. A failed read leaves its series out of
// this scrape (Prometheus then sees them absent, which an alert can catch)
// rather than reporting a zero that would look like good news.
func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	// Readiness as a number: /readyz answers the load balancer, this the
	// alert. A Redis that does not answer would only time out every read
	// below, so they are left out.
	if err := g.redis.Ping(ctx); err != nil {
		g.log.Warn("metrics: Redis not reachable", "err", err)
		ch <- prometheus.MustNewConstMetric(redisUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(redisUpDesc, prometheus.GaugeValue, 1)
	for _, st := range intake.States {
		n, err := g.leads.Count(ctx, st)
		if err != nil {
			g.log.Warn("metrics: leads not counted", "state", st, "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(leadsDesc, prometheus.GaugeValue, float64(n), string(st))
	}
	known, err := g.insp.Queues() // a queue asynq has not seen yet has no info to read
	if err != nil {
		g.log.Warn("metrics: queues not listed", "err", err)
		return
	}
	for _, q := range jobs.Queues {
		info, err := queueInfo(g.insp, known, q)
		if err != nil {
			g.log.Warn("metrics: queue not read", "queue", q, "err", err)
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed} {
			ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(n), q, state)
		}
	}
}

// queueInfo reads queue q's counts; a queue not among known (asynq has not
// seen it yet, and would answer an error) has nothing queued: all zero.
func queueInfo(insp *asynq.Inspector, known []string, q string) (*asynq.QueueInfo, error) {
	if !slices.Contains(known, q) {
		return &asynq.QueueInfo{Queue: q}, nil
	}
	return insp.GetQueueInfo(q)
}
