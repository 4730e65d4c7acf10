// Package redistest starts a private redis-server for a test: its own
// temporary directory, a unix socket instead of a port, no persistence
// unless asked for (StartPersistent). Tests never touch a Redis someone else
// runs, and kill only the process they started.
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
	dir    string
	config string // redis.conf as given on stdin
	cmd    *exec.Cmd
}

// Start runs a redis-server for t and stops it when t ends. It fails the test,
// never skips it, when redis-server cannot run: `make test` installs it.
func Start(t testing.TB) *Server { return start(t, `save ""`, "appendonly no") }

// StartPersistent is Start with the persistence production has: an
// append-only file, fsynced every second. A test can Kill the server and
// Restart it on the same file.
func StartPersistent(t testing.TB) *Server {
	return start(t, `save ""`, "appendonly yes", "appendfsync everysec")
}

func start(t testing.TB, persistence ...string) *Server {
	t.Helper()
	// Unix socket paths are limited to ~100 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "lgredis")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Socket: filepath.Join(dir, "redis.sock"), dir: dir}
	s.URL = "unix://" + s.Socket
	s.config = strings.Join(append([]string{
		"port 0",
		"unixsocket " + s.Socket,
		"unixsocketperm 700",
		"dir " + dir,
		"maxmemory-policy noeviction",
		"logfile " + filepath.Join(dir, "redis.log"),
	}, persistence...), "\n")
	t.Cleanup(func() {
		s.Stop()
		os.RemoveAll(dir)
	})
	s.Restart(t)
	return s
}

// Restart starts the server again after Kill or Stop, on the same socket,
// directory and files: a persistent server replays its append-only file.
// It returns once the server answers, and has loaded its files: a large
// dataset may take a minute or two.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: run `make test` (it installs it) or `apt-get install redis-server`")
	}
	os.Remove(s.Socket) // a killed server leaves its socket file behind
	cmd := exec.Command(bin, "-")
	cmd.Stdin = strings.NewReader(s.config)
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	start := time.Now()
	for {
		c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return
		}
		limit := 10 * time.Second
		if strings.HasPrefix(err.Error(), "LOADING") {
			limit = 2 * time.Minute
		}
		if time.Since(start) > limit {
			t.Fatalf("redis-server did not answer within %v: %v\n%s", limit, err, tail(filepath.Join(s.dir, "redis.log")))
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

// Stop kills the server now (SIGKILL, as a crash would: no last write),
// for tests of what happens when Redis goes away. Only the process this
// Server started is signalled; a second Stop does nothing.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
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
