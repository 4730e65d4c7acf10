// Command leadgate takes connection requests from the company website,
// validates and stores them, and hands them to sales.
//
//	leadgate [serve]        web + worker + clock in one process
//	leadgate web            HTTP only
//	leadgate worker         task processing only (scale this out)
//	leadgate clock          periodic tasks (run exactly one)
//	leadgate purge [--dry-run]  one retention pass now; prints counts
//	leadgate rekey          re-encrypt records under the current data key
//	leadgate version        version and commit
//
// Configuration is the environment (and .env); see .env.example.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/paymtech/leadgate/config"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "leadgate:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	command, dryRun, err := parseArgs(args)
	if err != nil {
		return err
	}
	switch command {
	case "version":
		fmt.Printf("leadgate %s (commit %s)\n", version, commit())
		return nil
	case "help":
		fmt.Print(usage)
		return nil
	}
	collectLessOften() // before .env is loaded: the runtime never sees a GOGC there
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	m := &Main{Config: cfg, Stdout: os.Stdout}
	switch command {
	case "purge":
		err := m.purge(ctx, os.Stdout, dryRun)
		m.Close()
		return err
	case "rekey":
		err := m.rekey(ctx, os.Stdout)
		m.Close()
		return err
	}
	if err := m.Run(ctx, Role(command)); err != nil {
		m.Close()
		return err
	}
	<-ctx.Done()
	return m.Close()
}

// gcPercent is the garbage collector's target when the process environment
// has no GOGC: the heap may grow to five times what is live between
// collections instead of Go's twice. A web's live heap is a few MiB and
// each request leaves ~20 KiB behind, so at Go's default it collected many
// times a second under load. Measured (BENCHMARKS.md): the web's rate
// against the baseline 0.48–0.50 → 0.54–0.58 in alternating runs, for ~30
// MiB more RSS. GOGC, and GOMEMLIMIT in a tight container, still rule when
// set in the process environment (the runtime reads them at start, before
// any .env): this yields to GOGC.
const gcPercent = 400

func collectLessOften() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// parseArgs returns the command that args name ("serve" when none; "version"
// and "help" for their flag spellings) and whether purge was asked for a
// dry run.
func parseArgs(args []string) (command string, dryRun bool, err error) {
	command = "serve"
	if len(args) > 0 {
		command, args = args[0], args[1:]
	}
	switch command {
	case "version", "--version", "-v":
		command = "version"
	case "help", "--help", "-h":
		command = "help"
	case "purge":
		if len(args) > 0 && args[0] == "--dry-run" {
			dryRun, args = true, args[1:]
		}
		if len(args) > 0 {
			return "", false, fmt.Errorf("purge takes only --dry-run\n%s", usage)
		}
	case "serve", "web", "worker", "clock", "rekey":
	default:
		return "", false, fmt.Errorf("unknown command %q\n%s", command, usage)
	}
	if len(args) > 0 {
		return "", false, fmt.Errorf("%s takes no arguments", command)
	}
	return command, dryRun, nil
}

const usage = `usage: leadgate [serve|web|worker|clock|purge [--dry-run]|rekey|version]
  serve    web + worker + clock in one process (default)
  web      HTTP only
  worker   task processing only
  clock    periodic tasks; run exactly one
  purge    one retention pass now (--dry-run: count, remove nothing); prints counts
  rekey    re-encrypt records under the current LEADGATE_DATA_KEY
  version  print version and commit
`

func commit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
