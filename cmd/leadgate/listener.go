package main

import (
	"net"
	"sync/atomic"
	"time"
)

// drainingListener is web's listener. Closing a listening socket resets the
// connections the kernel has completed but nobody has accepted yet: their
// clients sent a request and see the connection reset. So Close, which
// http.Server.Shutdown calls, only makes Accept stop waiting; Accept then
// hands Serve what is already queued (each gets its answer, then its
// connection closes) and closes the socket once the queue is empty, or
// after maxDrain. A connection that arrives in the instant of the close may
// still be reset: SHUTDOWN_DELAY, with a load balancer that reads /readyz,
// sees that none arrives by then.
type drainingListener struct {
	*net.TCPListener
	closedAt atomic.Int64 // Unix ns of Close; 0 while open
}

// maxDrain bounds how long a closed listener keeps accepting what is
// queued; drainPoll is how long it waits for one more queued connection.
const (
	maxDrain  = time.Second
	drainPoll = 10 * time.Millisecond
)

func (l *drainingListener) Accept() (net.Conn, error) {
	if l.closedAt.Load() != 0 {
		// A deadline in the past fails Accept before it asks the
		// kernel; one just ahead takes what is queued.
		l.TCPListener.SetDeadline(time.Now().Add(drainPoll))
	}
	c, err := l.TCPListener.Accept()
	at := l.closedAt.Load()
	if at == 0 {
		return c, err
	}
	if err == nil && time.Since(time.Unix(0, at)) < maxDrain {
		return c, nil
	}
	if c != nil {
		c.Close()
	}
	l.TCPListener.Close()
	return nil, net.ErrClosed
}

func (l *drainingListener) Close() error {
	l.closedAt.CompareAndSwap(0, time.Now().UnixNano())
	return l.TCPListener.SetDeadline(time.Now()) // Accept no longer waits
}
