package upstream

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// readerSize is the size in bytes of the buffered reader bound to each
// upstream connection.
const readerSize = 8 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// Conn is a connection to one upstream server, lent by Pool.Acquire for one
// exchange (request written, whole response read).
//
// Read the response through Reader, not Conn.Read: bytes it has buffered
// would be lost. Set the deadlines the exchange needs (proxy_send_timeout,
// proxy_read_timeout) before using it: a reused Conn keeps those of its
// previous exchange (clearing them on every release would cost a runtime
// call per request). Hand the Conn back with exactly
// one Release or Fail and do not touch it, its Reader or bytes returned by
// its Reader afterwards: it may already be lent to another request.
type Conn struct {
	net.Conn
	// Reader is an 8 KiB buffered reader bound to the connection. It and
	// its buffer are pooled and stay with the connection while it idles.
	Reader *bufio.Reader
	// Server is the server the connection goes to; append it to the
	// tried list to retry elsewhere.
	Server *Server
	// Reused reports that the connection was kept alive from an earlier
	// exchange. A reused connection can still have been closed by the
	// server just now; the proxy may retry an idempotent request that
	// fails on one before any response byte arrives.
	Reused bool

	inUse     bool      // lent out; guarded by the pool's mutex
	idleSince time.Time // when it went idle
	check     connCheck // liveness check of an idle connection
}

// Release hands c back after an exchange the server handled (any status
// code): it records a success for passive health and frees the max_conns
// slot, waking the next queued request. With reusable (the response was
// read to its end and neither side asked to close) the connection goes to
// its server's idle list, most recent last, capped at keepalive (the oldest
// is closed) and closed once idle longer than keepalive_timeout; it is
// closed instead when keepalive is -1, the pool is closed, or Reader still
// holds unread bytes. Calls after the first do nothing.
func (c *Conn) Release(reusable bool) {
	s := c.Server
	p := s.pool
	if reusable && (p.keepalive == 0 || c.Reader == nil || c.Reader.Buffered() != 0) {
		reusable = false
	}
	p.mu.Lock()
	if !c.inUse {
		p.mu.Unlock()
		return
	}
	c.inUse = false
	c.Reused = false
	s.active--
	s.succeedLocked()
	var evict *Conn
	now := p.now()
	if reusable && !p.closed {
		c.idleSince = now
		if len(s.idle) >= p.keepalive {
			evict = s.idle[0]
			n := copy(s.idle, s.idle[1:])
			s.idle[n] = nil
			s.idle = s.idle[:n]
		}
		s.idle = append(s.idle, c)
		p.armReaperLocked()
	} else {
		reusable = false
	}
	if p.head != nil {
		p.dispatchLocked(now)
	}
	p.mu.Unlock()
	if !reusable {
		c.closeConn()
	}
	if evict != nil {
		evict.closeConn()
	}
}

// Fail hands c back after an exchange that failed in a way that counts
// against the server (reset, timeout, malformed response; nginx
// proxy_next_upstream error/timeout/invalid_header): it records a failure
// for passive health (max_fails, fail_timeout), closes the connection and
// frees the max_conns slot, waking the next queued request. An err that is
// context.Canceled (the client left) does not count against the server.
// Calls after the first, or after Release, do nothing.
func (c *Conn) Fail(err error) {
	s := c.Server
	p := s.pool
	p.mu.Lock()
	if !c.inUse {
		p.mu.Unlock()
		return
	}
	c.inUse = false
	s.active--
	now := p.now()
	if !errors.Is(err, context.Canceled) {
		s.failLocked(now, p.single)
	}
	if p.head != nil {
		p.dispatchLocked(now)
	}
	p.mu.Unlock()
	c.closeConn()
}

// Close is Release(false): it closes the connection, frees its slot and
// counts a success. It returns nil. It shadows net.Conn's Close so that a
// Conn closed as an io.Closer never leaks its slot.
func (c *Conn) Close() error {
	c.Release(false)
	return nil
}

// closeConn closes the socket and returns the reader to its pool.
func (c *Conn) closeConn() {
	c.Conn.Close()
	c.check = connCheck{}
	if c.Reader != nil {
		c.Reader.Reset(nil)
		readerPool.Put(c.Reader)
		c.Reader = nil
	}
	c.Server.pool.open.Add(-1)
}

// popIdleLocked takes the most recently used idle connection of s and
// marks it in use, or returns nil. When that one is stale (idle for
// keepalive_timeout or more) so are all older ones: they are all detached
// and returned as stale, for the caller to close without the lock.
func (s *Server) popIdleLocked(now time.Time) (c *Conn, stale []*Conn) {
	n := len(s.idle)
	if n == 0 {
		return nil, nil
	}
	c = s.idle[n-1]
	if now.Sub(c.idleSince) >= s.pool.keepaliveTimeout {
		stale = s.idle
		s.idle = nil
		return nil, stale
	}
	s.idle[n-1] = nil
	s.idle = s.idle[:n-1]
	c.inUse = true
	return c, nil
}

// armReaperLocked makes sure the reaper will run while idle connections
// exist. The reaper is a timer, not a goroutine.
func (p *Pool) armReaperLocked() {
	if p.reaperArmed {
		return
	}
	p.reaperArmed = true
	if p.reaper == nil {
		p.reaper = time.AfterFunc(p.keepaliveTimeout, p.reap)
	} else {
		p.reaper.Reset(p.keepaliveTimeout)
	}
}

// reap closes the idle connections that have been idle for
// keepalive_timeout and re-arms for the oldest of the rest (nginx closes
// idle upstream connections on a timer too).
func (p *Pool) reap() {
	p.mu.Lock()
	if p.closed || !p.reaperArmed {
		p.mu.Unlock()
		return
	}
	now := p.now()
	var stale []*Conn
	next := time.Duration(-1)
	for _, s := range p.servers {
		n := 0
		for n < len(s.idle) && now.Sub(s.idle[n].idleSince) >= p.keepaliveTimeout {
			n++
		}
		if n > 0 {
			stale = append(stale, s.idle[:n]...)
			m := copy(s.idle, s.idle[n:])
			clear(s.idle[m:])
			s.idle = s.idle[:m]
		}
		if len(s.idle) > 0 {
			d := p.keepaliveTimeout - now.Sub(s.idle[0].idleSince)
			if next < 0 || d < next {
				next = d
			}
		}
	}
	if next >= 0 {
		p.reaper.Reset(min(max(next, time.Millisecond), p.keepaliveTimeout))
	} else {
		p.reaperArmed = false
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.closeConn()
	}
}
