package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/jobs"
)

func TestParseArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		command string
		dryRun  bool
		err     string
	}{
		{nil, "serve", false, ""},
		{[]string{"worker"}, "worker", false, ""},
		{[]string{"purge"}, "purge", false, ""},
		{[]string{"purge", "--dry-run"}, "purge", true, ""},
		{[]string{"purge", "--force"}, "", false, "purge takes only --dry-run"},
		{[]string{"purge", "--dry-run", "x"}, "", false, "purge takes only --dry-run"},
		{[]string{"rekey"}, "rekey", false, ""},
		{[]string{"web", "--dry-run"}, "", false, "web takes no arguments"},
		{[]string{"--version"}, "version", false, ""},
		{[]string{"prune"}, "", false, `unknown command "prune"`},
	} {
		command, dryRun, err := parseArgs(tc.args)
		if command != tc.command || dryRun != tc.dryRun || (err == nil) != (tc.err == "") ||
			(err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseArgs(%q) = %q, %v, %v; want %q, %v, error %q", tc.args, command, dryRun, err, tc.command, tc.dryRun, tc.err)
		}
	}
}

// TestPurgeCommand runs the real binary's `leadgate purge [--dry-run]`
// against a Redis holding a lead past retention, with an archived task,
// and a fresh one.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "leadgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	keys, err := seal.NewKeys(bytes.Repeat([]byte{1}, 32), nil, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	accept := func(at time.Time, n string) string {
		t.Helper()
		store := redisstore.New(rdb, keys, func() time.Time { return at })
		email := "test.purge" + n + "@example.com"
		adm, err := store.Leads.Accept(ctx, intake.Application{
			Submission: &intake.Submission{EntityType: intake.LegalEntity, Name: "Test Testov", Phone: "+7701000000" + n,
				Email: email, EmailKey: email, Lang: "ru"},
			Consent: intake.Consent{Processing: true, PolicyVersion: "1"},
			PerIP:   intake.Limit{N: 100, Per: time.Hour}, PerEmail: intake.Limit{N: 100, Per: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		return adm.ID
	}
	expired, fresh := accept(now.Add(-40*24*time.Hour), "1"), accept(now, "2")
	insp := asynq.NewInspectorFromRedisClient(rdb)
	if err := jobs.NewQueue(asynq.NewClientFromRedisClient(rdb), insp).EnqueueLead(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if err := insp.ArchiveTask(jobs.QueueLeads, "lead:route:"+expired); err != nil {
		t.Fatal(err)
	}

	purge := func(env []string, args ...string) (stdout, stderr string, err error) {
		cmd := exec.Command(bin, append([]string{"purge"}, args...)...)
		cmd.Dir = t.TempDir()
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir}, env...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err = cmd.Run()
		return out.String(), errOut.String(), err
	}
	configured := []string{"REDIS_URL=" + srv.URL, "LEAD_RETENTION=30d", "TASK_RETENTION=0s"}
	exists := func(id string) bool { return rdb.Exists(ctx, "lg:lead:"+id).Val() == 1 }

	out, _, err := purge(configured, "--dry-run")
	want := "leads 1, people 1, optins 0, tasks 1, stale keys 0, campaign marks 0 (dry run: nothing removed)\n"
	if err != nil || out != want || !exists(expired) {
		t.Fatalf("purge --dry-run = %q, %v (expired lead kept: %v); want %q", out, err, exists(expired), want)
	}

	// Another purge holds the lock: refused with a reason, nothing removed.
	rdb.Set(ctx, "lg:purge:lock", "the-clock", time.Minute)
	out, errOut, err := purge(configured)
	if err == nil || !strings.Contains(errOut, "another purge is running") || !exists(expired) {
		t.Fatalf("purge while locked = %v, %q %q; want a refusal", err, out, errOut)
	}
	rdb.Del(ctx, "lg:purge:lock")

	out, errOut, err = purge(configured)
	if want := "leads 1, people 1, optins 0, tasks 1, stale keys 0, campaign marks 0\n"; err != nil || out != want {
		t.Fatalf("purge = %q, %v (%s); want %q", out, err, errOut, want)
	}
	if exists(expired) || !exists(fresh) {
		t.Fatalf("after the purge: expired lead exists %v, fresh %v", exists(expired), exists(fresh))
	}
	if _, err := insp.GetTaskInfo(jobs.QueueLeads, "lead:route:"+expired); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("the archived task of the expired lead: %v, want gone", err)
	}
	if strings.Contains(out+errOut, "example.com") || strings.Contains(out+errOut, expired) {
		t.Errorf("the purge printed personal data or ids: %q %q", out, errOut)
	}

	// Development without REDIS_URL: serve's embedded Redis is not reachable
	// from here. A one-line reason, non-zero exit.
	_, errOut, err = purge(nil)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
		!strings.Contains(errOut, "REDIS_URL") || !strings.Contains(errOut, "serve") {
		t.Fatalf("purge without REDIS_URL = %v, %q; want a one-line reason and a failure", err, errOut)
	}
}
