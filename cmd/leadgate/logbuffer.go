package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logDelay is the longest a log line below a warning waits to be written.
const logDelay = 200 * time.Millisecond

// lineBuffer gathers log lines into fewer writes. A web logs two lines a
// request (the access log and the lead's); a write(2) each was 4–6 % of its
// CPU under load (perf, loadgen bench). A line waits at most delay, or
// until size bytes are waiting; Flush writes what waits at once (Main.Close
// calls it, and the logger after a warning or an error). A process killed
// outright can lose its last delay of informational lines, never a warning.
type lineBuffer struct {
	out   io.Writer
	delay time.Duration
	size  int

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // armed while lines wait
}

func newLineBuffer(out io.Writer, delay time.Duration, size int) *lineBuffer {
	return &lineBuffer{out: out, delay: delay, size: size}
}

// Write takes whole lines (slog's handlers write one record a call).
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.size {
		return len(p), b.flushLocked()
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.delay, func() { b.Flush() })
	}
	return len(p), nil
}

// Flush writes every waiting line.
func (b *lineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *lineBuffer) flushLocked() error {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.out.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// flushing is a slog handler writing to a lineBuffer that flushes it after
// a warning or an error, so those (and the lines before them) are never
// held back.
type flushing struct {
	slog.Handler
	buf *lineBuffer
}

func (f flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		f.buf.Flush()
	}
	return err
}

func (f flushing) WithAttrs(as []slog.Attr) slog.Handler {
	return flushing{f.Handler.WithAttrs(as), f.buf}
}

func (f flushing) WithGroup(name string) slog.Handler {
	return flushing{f.Handler.WithGroup(name), f.buf}
}
