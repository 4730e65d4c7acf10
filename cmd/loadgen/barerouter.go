package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/jobs"
)

// bareRouteTask is the bare router's task type: its payload is the key of
// the lead hash to route.
const bareRouteTask = "loadgen:route"

// bareRouter is the least any router that hands a lead to sales and
// acknowledges it has to do, as one asynq task a lead: read the lead (one
// round trip), post it to the CRM's webhook, record it routed (one), post
// the acknowledgement to SendGrid, record it mailed (one). What it leaves out
// is what leadgate's routing costs: the hand-over from the admission
// stream, decryption, the risk score, the assignment and its round-robin
// turn, the push mark that makes a redo known, the signature, the send
// claim that keeps a person from being mailed twice, the disclosure log, the
// ack as a task of its own (so a mail failure does not hold the lead back),
// and the opt-in check.
func bareRouter(rdb *redis.Client, crm string) asynq.Handler {
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(ctx context.Context, path string, v any) error {
		body, err := json.Marshal(v)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, crm+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		return nil
	}
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		key := string(t.Payload())
		lead, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		if len(lead) == 0 {
			return fmt.Errorf("%s: no such lead: %w", key, asynq.SkipRetry)
		}
		if err := post(ctx, "/hook", lead); err != nil {
			return err
		}
		if err := rdb.HSet(ctx, key, "state", "routed", "routed_at", time.Now().UnixMilli()).Err(); err != nil {
			return err
		}
		mail := map[string]any{
			"personalizations": []any{map[string]any{"to": []any{map[string]string{"email": lead["email"], "name": lead["name"]}}}},
			"from":             map[string]string{"email": "sales@example.com"},
			"subject":          "We have your request " + key,
			"content":          []any{map[string]string{"type": "text/plain", "value": "Thank you, " + lead["name"] + "."}},
		}
		if err := post(ctx, "/v3/mail/send", mail); err != nil {
			return err
		}
		return rdb.HSet(ctx, key, "mailed_at", time.Now().UnixMilli()).Err()
	})
}

// bareRouterCmd runs the bare router as a process of its own, as `leadgate
// worker` is, so that its CPU is measured alike: an asynq server with the
// worker's own configuration (jobs.ServerConfig) until SIGTERM.
func bareRouterCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("bare-router", flag.ExitOnError)
	url := fs.String("redis", "", "the Redis URL")
	crm := fs.String("crm", "", "the base URL of the webhook receiver and SendGrid")
	fs.Parse(args)
	opts, err := redis.ParseURL(*url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	srv := asynq.NewServerFromRedisClient(rdb, jobs.ServerConfig(5*time.Second, slog.New(slog.DiscardHandler)))
	return srv.Run(bareRouter(rdb, *crm))
}

// bareRound seeds n lead hashes, queues a bare-router task for each, and
// times a bare-router process taking them as workerRound times leadgate's.
func bareRound(ctx context.Context, e *env, rdb *redis.Client, sink *deliveries, crm string, n, pass int) (round, error) {
	client := asynq.NewClientFromRedisClient(rdb)
	for start := 0; start < n; start += 500 {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(start+500, n); i++ {
				sealed := make([]byte, 600) // a sealed record's size, as opaque as one
				rand.Read(sealed)
				p.HSet(ctx, bareLeadKey(pass, i), "state", "received", "name", "Loadgen Bare Person "+strconv.Itoa(i),
					"email", fmt.Sprintf("load-bare-%d-%d@example.com", pass, i), "phone", "+7701"+fmt.Sprintf("%07d", i),
					"entity_type", "legal_entity", "products", "acquiring,payment_links", "lang", "ru", "pii", sealed)
			}
			return nil
		})
		if err != nil {
			return round{}, err
		}
	}
	for i := range n {
		if _, err := client.EnqueueContext(ctx, asynq.NewTask(bareRouteTask, []byte(bareLeadKey(pass, i))), asynq.Queue(jobs.QueueLeads)); err != nil {
			return round{}, err
		}
	}
	sink.reset()
	before, err := readRedisCost(ctx, rdb)
	if err != nil {
		return round{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return round{}, err
	}
	cmd := exec.Command(self, "bare-router", "-redis", e.redisURL, "-crm", crm)
	if err := e.start(cmd, "bare-router.log"); err != nil {
		return round{}, err
	}
	defer (&target{cmd: cmd}).stop()
	r := round{}
	if r.rate, r.cpu, r.peakRSS, err = sink.done(ctx, rdb, n, cmd.Process.Pid); err != nil {
		return round{}, fmt.Errorf("bare router: %w (see %s)", err, filepath.Join(e.dir, "bare-router.log"))
	}
	r.cpu /= time.Duration(n)
	after, err := readRedisCost(ctx, rdb)
	r.redis = before.per(after, n)
	return r, err
}

func bareLeadKey(pass, i int) string { return fmt.Sprintf("loadgen:lead:%d:%d", pass, i) }
