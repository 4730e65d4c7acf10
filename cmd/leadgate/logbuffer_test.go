package main

import (
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config"
)

func TestLineBuffer(t *testing.T) {
	t.Parallel()
	t.Run("lines wait, then all are written in order", func(t *testing.T) {
		t.Parallel()
		var out lockedBuffer
		// A delay far above any pause of a loaded machine, so that "not yet"
		// below cannot be a scheduling accident.
		b := newLineBuffer(&out, time.Second, 1<<10)
		b.Write([]byte("one\n"))
		b.Write([]byte("two\n"))
		if got := out.String(); got != "" {
			t.Fatalf("written before the delay: %q", got)
		}
		for deadline := time.Now().Add(5 * time.Second); out.String() == "" && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if got := out.String(); got != "one\ntwo\n" {
			t.Fatalf("after the delay: %q, want both lines", got)
		}
	})
	t.Run("a full buffer is written at once", func(t *testing.T) {
		t.Parallel()
		var out lockedBuffer
		b := newLineBuffer(&out, time.Hour, 8)
		b.Write([]byte("1234\n"))
		b.Write([]byte("5678\n"))
		if got := out.String(); got != "1234\n5678\n" {
			t.Fatalf("got %q, want both lines once 8 bytes wait", got)
		}
	})
	t.Run("Flush writes what waits", func(t *testing.T) {
		t.Parallel()
		var out lockedBuffer
		b := newLineBuffer(&out, time.Hour, 1<<10)
		b.Write([]byte("last\n"))
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "last\n" {
			t.Fatalf("got %q after Flush", got)
		}
		b.Flush() // nothing waits: no write
		if got := out.String(); got != "last\n" {
			t.Fatalf("got %q after a second Flush", got)
		}
	})
}

// A warning is written at once, with the lines before it, in order.
func TestLoggerFlushesWarnings(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	b := newLineBuffer(&out, time.Hour, 1<<20)
	log := newLogger(b, false).With("part", "test")
	log.Info("first")
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written at once: %q", got)
	}
	log.Warn("second")
	got := out.String()
	first, second := strings.Index(got, "msg=first"), strings.Index(got, "msg=second")
	if first < 0 || second < first || !strings.Contains(got, "part=test") {
		t.Fatalf("after a warning: %q, want both lines in order, with the logger's attributes", got)
	}
}

// Attributes named like personal fields are masked, whoever logs them.
func TestLoggerMasksPersonalFields(t *testing.T) {
	t.Parallel()
	for _, production := range []bool{false, true} {
		var out lockedBuffer
		b := newLineBuffer(&out, time.Hour, 1<<20)
		log := newLogger(b, production)
		log.Warn("test", "email", "test-one@example.com", "phone", "+77010000000", "user_agent", "TestBrowser/1.0", "lead", "lead-id-1")
		got := out.String()
		for _, v := range []string{"test-one@example.com", "+77010000000", "TestBrowser"} {
			if strings.Contains(got, v) {
				t.Errorf("production=%v: the line carries %q: %s", production, v, got)
			}
		}
		if !strings.Contains(got, "lead-id-1") || !strings.Contains(got, "[masked]") {
			t.Errorf("production=%v: %s, want the lead id and masked values", production, got)
		}
	}
}

// TestCloseFlushesTheLog: what a process logs just before it stops is
// written by Close, not lost with the process (the buffer's own timer
// would write it logDelay later, after the process exited).
func TestCloseFlushesTheLog(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LEADGATE_VAR_DIR": t.TempDir()}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	m := &Main{Config: cfg, Stderr: &out}
	if err := m.open("serve", nil); err != nil {
		t.Fatal(err)
	}
	m.Log.Info("last words before stopping")
	m.Close()
	if !strings.Contains(out.String(), "last words before stopping") {
		t.Errorf("log after Close: %q; want the last line written", out.String())
	}
}
