package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// env is what bench and soak run against: one private redis-server and the
// processes they start on it, all under one temporary directory. Every
// child dies with the load tool (dieWithTool), whatever ends it; close stops
// them and removes the directory.
type env struct {
	dir      string
	redisURL string
	redisPID int
	children []*exec.Cmd
}

// target is a started HTTP process under load.
type target struct {
	name    string
	url     string // base URL
	metrics string // its /metrics URL
	cmd     *exec.Cmd
}

func (t *target) pid() int { return t.cmd.Process.Pid }

// newEnv starts a redis-server on a unix socket in a new temporary
// directory for a command that runs the leadgate binary bin on it (which
// the user must name): no port (never 6379), no persistence, noeviction as
// production has it.
func newEnv(bin string) (*env, error) {
	if bin == "" {
		return nil, errors.New("-leadgate: the leadgate binary is required")
	}
	dir, err := os.MkdirTemp("", "loadgen")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command("redis-server", "-")
	cmd.Stdin = strings.NewReader(strings.Join([]string{"port 0", "unixsocket " + sock, "unixsocketperm 700",
		"dir " + dir, `save ""`, "appendonly no", "maxmemory-policy noeviction", "logfile " + filepath.Join(dir, "redis.log")}, "\n"))
	if err := e.start(cmd, "redis.out"); err != nil {
		e.close()
		return nil, fmt.Errorf("redis-server (apt-get install redis-server): %w", err)
	}
	e.redisURL, e.redisPID = "unix://"+sock, cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return e, nil
		}
		if time.Now().After(deadline) {
			e.close()
			return nil, fmt.Errorf("redis-server did not listen within 10 s (see %s)", filepath.Join(dir, "redis.log"))
		}
	}
}

// start runs cmd with its output in the file named out in e's directory.
func (e *env) start(cmd *exec.Cmd, out string) error {
	f, err := os.Create(filepath.Join(e.dir, out))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	dieWithTool(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	e.children = append(e.children, cmd)
	return nil
}

// startLeadgate runs `leadgate web` from the binary bin on e's Redis, with
// the load tool's address trusted as a proxy (so X-Forwarded-For gives each
// request its own client) and metrics on a listener of their own; each of
// extra (NAME=value) adds to its environment.
func (e *env) startLeadgate(bin string, extra ...string) (*target, error) {
	addr, metrics := freeAddr(), freeAddr()
	cmd := exec.Command(bin, "web")
	cmd.Env = append(os.Environ(), "LEADGATE_ENV=development", "REDIS_URL="+e.redisURL, "LEADGATE_ADDR="+addr,
		"METRICS_ADDR="+metrics, "TRUSTED_PROXIES=127.0.0.1/32", "LEADGATE_VAR_DIR="+filepath.Join(e.dir, "var"))
	cmd.Env = append(cmd.Env, extra...)
	return e.startTarget("leadgate", cmd, addr, metrics)
}

// startBaseline runs this program's baseline command on e's Redis.
func (e *env) startBaseline() (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr := freeAddr()
	cmd := exec.Command(self, "baseline", "-addr", addr, "-redis", e.redisURL)
	return e.startTarget("baseline", cmd, addr, addr)
}

func (e *env) startTarget(name string, cmd *exec.Cmd, addr, metrics string) (*target, error) {
	if err := e.start(cmd, name+".log"); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	t := &target{name: name, url: "http://" + addr, metrics: "http://" + metrics + "/metrics", cmd: cmd}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(t.metrics); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not answer within 30 s (see %s)", name, filepath.Join(e.dir, name+".log"))
		}
	}
}

// stop ends t with SIGTERM, as a deploy does.
func (t *target) stop() {
	t.cmd.Process.Signal(syscall.SIGTERM)
	t.cmd.Wait()
}

// flush empties the private redis-server (never a shared one: e started
// it), so that the next run starts from the same keyspace as every other:
// an empty one, grown only by its own writes.
func (e *env) flush(ctx context.Context) error {
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		return err
	}
	opts.ReadTimeout = time.Minute // freeing a few million keys
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	return rdb.FlushAll(ctx).Err()
}

func (e *env) close() {
	for _, c := range e.children {
		c.Process.Kill()
		c.Wait()
	}
	os.RemoveAll(e.dir)
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err) // no loopback at all: nothing here can run
	}
	defer ln.Close()
	return ln.Addr().String()
}
