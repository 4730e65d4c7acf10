// Command leadgate takes connection requests from the company website,
// validates and stores them, and hands them to sales.
//
//	leadgate [serve]        web + worker + clock in one process
//	leadgate web            HTTP only
//	leadgate worker         task processing only (scale this out)
//	leadgate clock          periodic tasks (run exactly one)
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
	command := "serve"
	if len(args) > 0 {
		command = args[0]
	}
	if len(args) > 1 {
		return fmt.Errorf("%s takes no arguments", command)
	}
	switch command {
	case "version", "--version", "-v":
		fmt.Printf("leadgate %s (commit %s)\n", version, commit())
		return nil
	case "help", "--help", "-h":
		fmt.Print(usage)
		return nil
	case "serve", "web", "worker", "clock":
	default:
		return fmt.Errorf("unknown command %q\n%s", command, usage)
	}
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	m := &Main{Config: cfg, Stdout: os.Stdout}
	if err := m.Run(ctx, Role(command)); err != nil {
		m.Close()
		return err
	}
	<-ctx.Done()
	return m.Close()
}

const usage = `usage: leadgate [serve|web|worker|clock|version]
  serve    web + worker + clock in one process (default)
  web      HTTP only
  worker   task processing only
  clock    periodic tasks; run exactly one
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
