//go:build unix

package upstream

import (
	"syscall"
	"time"
)

// connCheck tells whether an idle connection is still usable before it is
// lent again, with one non-blocking read(2) on its socket: EAGAIN means
// open and quiet; EOF means the server closed it (an app server's own
// keep-alive timeout, a worker restart); bytes mean it sent something
// unasked (an early 408). nginx learns the same from the event loop while
// the connection idles; Go has no such hook without a goroutine per idle
// connection. Everything it needs is made once per connection, so the
// check does not allocate.
type connCheck struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // bound to read, made once
	buf [1]byte
	err error
}

func (k *connCheck) read(fd uintptr) bool {
	_, k.err = syscall.Read(int(fd), k.buf[:])
	return true
}

// initCheck prepares the liveness check of a freshly dialed connection.
func (c *Conn) initCheck() {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.check.rc = rc
	c.check.fn = c.check.read
}

// alive reports whether an idle connection may be lent again. Its data
// are consumed only when it will be closed anyway.
func (c *Conn) alive() bool {
	k := &c.check
	if k.rc == nil {
		return true
	}
	// Clear the deadlines the last exchange left, or the read would fail
	// at once.
	if c.Conn.SetDeadline(time.Time{}) != nil {
		return false
	}
	if err := k.rc.Read(k.fn); err != nil {
		return false
	}
	err := k.err
	k.err = nil
	// Without an error, read returned 0 (EOF) or unasked bytes: either way
	// the connection is not reusable.
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}

// hasLiveCheck tells tests that alive detects a closed connection.
const hasLiveCheck = true
