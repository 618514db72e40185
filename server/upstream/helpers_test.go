package upstream

import (
	"bufio"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// backend is a test upstream: it accepts connections on 127.0.0.1 or a unix
// socket, answers each line with "pong\n", and counts the connections it
// accepted and those the client closed.
type backend struct {
	ln       net.Listener
	addr     string // as configured: "127.0.0.1:port" or "unix:/path"
	accepted atomic.Int64
	closed   atomic.Int64 // connections that reached EOF from the client

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newBackend(t testing.TB, network string) *backend {
	t.Helper()
	var (
		ln   net.Listener
		err  error
		addr string
	)
	if network == "unix" {
		path := filepath.Join(t.TempDir(), "up.sock")
		ln, err = net.Listen("unix", path)
		addr = "unix:" + path
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			addr = ln.Addr().String()
		}
	}
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	b := &backend{ln: ln, addr: addr, conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go b.handle(c)
	}
}

func (b *backend) handle(c net.Conn) {
	defer b.wg.Done()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.closed.Add(1)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			return
		}
		if line == "two\n" {
			c.Write([]byte("pong\npong\n"))
			continue
		}
		c.Write([]byte("pong\n"))
	}
}

// hangUp closes every connection from the server side.
func (b *backend) hangUp() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func (b *backend) stop() {
	b.ln.Close()
	b.hangUp()
	b.wg.Wait()
}

// waitFor polls cond every millisecond for up to 5 s; it is for effects
// that cross a socket, never for timing assertions.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is an injectable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// servers builds config servers for addrs with the given weight and the
// other fields at their defaults.
func servers(addrs ...string) []config.UpstreamServer {
	out := make([]config.UpstreamServer, len(addrs))
	for i, a := range addrs {
		out[i] = config.UpstreamServer{Address: a, Weight: 1, MaxFails: 1, FailTimeout: config.Duration(10 * time.Second)}
	}
	return out
}

func mustPool(t testing.TB, cfg *config.Upstream, opt Options) *Pool {
	t.Helper()
	p, err := NewPool("app", cfg, opt)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// ping writes a line on c and reads the answer through c.Reader.
func ping(t testing.TB, c *Conn) {
	t.Helper()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatalf("writing: %v", err)
	}
	line, err := c.Reader.ReadString('\n')
	if err != nil || line != "pong\n" {
		t.Fatalf("reading: %q, %v", line, err)
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
