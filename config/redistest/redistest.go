// Package redistest starts a private redis-server for a test: its own
// temporary directory, a unix socket instead of a port, no persistence. Tests
// never touch a Redis someone else runs.
package redistest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running private redis-server.
type Server struct {
	URL    string // unix:///…/redis.sock, for REDIS_URL
	Socket string
	bin    string
	config string // what redis-server reads on stdin
	dir    string
	cmd    *exec.Cmd
}

// Start runs a redis-server for t and stops it when t ends. It fails the test,
// never skips it, when redis-server cannot run: `make test` installs it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: run `make test` (it installs it) or `apt-get install redis-server`")
	}
	// Unix socket paths are limited to ~100 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "lgredis")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Socket: filepath.Join(dir, "redis.sock"), bin: bin, dir: dir}
	s.URL = "unix://" + s.Socket
	s.config = strings.Join([]string{
		"port 0",
		"unixsocket " + s.Socket,
		"unixsocketperm 700",
		"dir " + dir,
		`save ""`,
		"appendonly no",
		"maxmemory-policy noeviction",
		"logfile " + filepath.Join(dir, "redis.log"),
	}, "\n")
	t.Cleanup(func() {
		s.Stop()
		os.RemoveAll(dir)
	})
	s.run(t)
	return s
}

// run starts the server process and waits until it answers.
func (s *Server) run(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-")
	s.cmd.Stdin = strings.NewReader(s.config)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer within 10 s: %v\n%s", err, tail(filepath.Join(s.dir, "redis.log")))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a new client of the server, closed when t ends.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket})
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop kills the server now, for tests of what happens when Redis goes away.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// Restart starts the server again after Stop, on the same socket. It kept
// nothing (no persistence): it comes back empty, as a Redis that lost its
// data would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.run(t)
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
