package main

import (
	"io"
	"sync"
	"time"
)

// lineBuffer gathers log lines into fewer writes. The access log writes a
// line per request; one write(2) each was 3–4 % of the web's CPU under load
// (perf, loadgen bench). A line waits at most delay, or until size bytes
// are waiting; Flush writes what waits at once (Main.Close calls it). A
// crash can lose the last delay of access lines, never another log's:
// only the access log is buffered.
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
