package upstream

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

func TestNewPool(t *testing.T) {
	ok := func(addr string) config.UpstreamServer { return config.UpstreamServer{Address: addr} }
	tests := []struct {
		name    string
		cfg     *config.Upstream
		wantErr string // "" for success
	}{
		{"tcp", &config.Upstream{Servers: []config.UpstreamServer{ok("127.0.0.1:8000")}}, ""},
		{"ipv6", &config.Upstream{Servers: []config.UpstreamServer{ok("[::1]:8000")}}, ""},
		{"name", &config.Upstream{Servers: []config.UpstreamServer{ok("app.internal:80")}}, ""},
		{"unix", &config.Upstream{Servers: []config.UpstreamServer{ok("unix:/run/app.sock")}}, ""},
		{"least_conn", &config.Upstream{Balance: "least_conn", Servers: []config.UpstreamServer{ok("127.0.0.1:1")}}, ""},
		{"no reuse", &config.Upstream{Keepalive: -1, Servers: []config.UpstreamServer{ok("127.0.0.1:1")}}, ""},
		{"nil", nil, "no configuration"},
		{"no servers", &config.Upstream{}, "no servers"},
		{"no port", &config.Upstream{Servers: []config.UpstreamServer{ok("127.0.0.1")}}, "missing port"},
		{"port zero", &config.Upstream{Servers: []config.UpstreamServer{ok("127.0.0.1:0")}}, "want 1-65535"},
		{"port name", &config.Upstream{Servers: []config.UpstreamServer{ok("127.0.0.1:http")}}, "want 1-65535"},
		{"port big", &config.Upstream{Servers: []config.UpstreamServer{ok("127.0.0.1:65536")}}, "want 1-65535"},
		{"no host", &config.Upstream{Servers: []config.UpstreamServer{ok(":80")}}, "empty host"},
		{"unix empty", &config.Upstream{Servers: []config.UpstreamServer{ok("unix:")}}, "absolute"},
		{"unix relative", &config.Upstream{Servers: []config.UpstreamServer{ok("unix:app.sock")}}, "absolute"},
		{"balance", &config.Upstream{Balance: "random", Servers: []config.UpstreamServer{ok("127.0.0.1:1")}}, "balance"},
		{"keepalive", &config.Upstream{Keepalive: -2, Servers: []config.UpstreamServer{ok("127.0.0.1:1")}}, "keepalive"},
		{"weight", &config.Upstream{Servers: []config.UpstreamServer{{Address: "127.0.0.1:1", Weight: -1}}}, "negative"},
		{"max_conns", &config.Upstream{Servers: []config.UpstreamServer{{Address: "127.0.0.1:1", MaxConns: -1}}}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPool("app", tt.cfg, Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewPool: %v", err)
				}
				if p.Name() != "app" || p.Tries() != 1 || p.Servers()[0].Addr() != tt.cfg.Servers[0].Address {
					t.Errorf("Name %q, Tries %d, Addr %q", p.Name(), p.Tries(), p.Servers()[0].Addr())
				}
				p.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), `creating upstream pool "app": `) {
				t.Fatalf("NewPool error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPool_Tries(t *testing.T) {
	for _, tt := range []struct{ tries, servers, want int }{{0, 3, 3}, {2, 3, 2}, {5, 2, 2}} {
		cfg := &config.Upstream{Tries: tt.tries}
		for i := range tt.servers {
			cfg.Servers = append(cfg.Servers, config.UpstreamServer{Address: "127.0.0.1:" + string(rune('1'+i))})
		}
		if got := mustPool(t, cfg, Options{}).Tries(); got != tt.want {
			t.Errorf("tries %d, %d servers: Tries() = %d, want %d", tt.tries, tt.servers, got, tt.want)
		}
	}
}

func TestPool_Acquire_Keepalive(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			b := newBackend(t, network)
			p := mustPool(t, &config.Upstream{Servers: servers(b.addr)}, Options{})
			ctx := t.Context()

			c1, err := p.Acquire(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c1.Reused || c1.Server != p.Servers()[0] {
				t.Errorf("first conn: Reused %v, Server %v", c1.Reused, c1.Server)
			}
			ping(t, c1)
			first := c1.Conn
			c1.Release(true)

			c2, err := p.Acquire(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !c2.Reused || c2.Conn != first {
				t.Errorf("second conn: Reused %v, same socket %v", c2.Reused, c2.Conn == first)
			}
			ping(t, c2)
			c2.Release(true)
			if got := b.accepted.Load(); got != 1 {
				t.Errorf("backend accepted %d connections, want 1", got)
			}
			if st := p.Stats()[0]; st.Idle != 1 || st.Active != 0 {
				t.Errorf("stats %+v, want 1 idle, 0 active", st)
			}
		})
	}
}

func TestPool_Acquire_KeepaliveLIFOAndCap(t *testing.T) {
	b := newBackend(t, "tcp")
	p := mustPool(t, &config.Upstream{Keepalive: 2, Servers: servers(b.addr)}, Options{})
	ctx := t.Context()
	var cs []*Conn
	for range 3 {
		c, err := p.Acquire(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	socks := []net.Conn{cs[0].Conn, cs[1].Conn, cs[2].Conn}
	for _, c := range cs {
		c.Release(true) // the third release evicts the first (oldest)
	}
	waitFor(t, "the evicted connection to close", func() bool { return b.closed.Load() == 1 })
	if st := p.Stats()[0]; st.Idle != 2 {
		t.Fatalf("idle %d, want 2", st.Idle)
	}
	c, err := p.Acquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn != socks[2] {
		t.Errorf("reused connection is not the most recently released one")
	}
	c2, err := p.Acquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Conn != socks[1] {
		t.Errorf("second reused connection is not the next most recent one")
	}
	c.Release(true)
	c2.Release(true)
}

func TestPool_Acquire_NoReuse(t *testing.T) {
	tests := []struct {
		name      string
		keepalive int
		release   func(c *Conn)
	}{
		{"keepalive -1", -1, func(c *Conn) { c.Release(true) }},
		{"not reusable", 0, func(c *Conn) { c.Release(false) }},
		{"Close", 0, func(c *Conn) { c.Close() }},
		{"unread bytes", 0, func(c *Conn) {
			c.Write([]byte("two\n"))
			c.Reader.ReadString('\n') // the second "pong\n" stays buffered
			waitFor(t, "the second line", func() bool { c.Reader.Peek(1); return c.Reader.Buffered() > 0 })
			c.Release(true)
		}},
		{"Fail", 0, func(c *Conn) { c.Fail(errors.New("bad response")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, "tcp")
			srv := servers(b.addr)
			srv[0].MaxFails = 0
			p := mustPool(t, &config.Upstream{Keepalive: tt.keepalive, Servers: srv}, Options{})
			c, err := p.Acquire(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.release(c)
			waitFor(t, "the connection to close", func() bool { return b.closed.Load() == 1 })
			if st := p.Stats()[0]; st.Idle != 0 || st.Active != 0 {
				t.Errorf("stats %+v, want nothing idle or active", st)
			}
			if c, err = p.Acquire(t.Context(), nil); err != nil || c.Reused {
				t.Fatalf("next Acquire: %v, reused %v", err, c != nil && c.Reused)
			}
			c.Release(false)
		})
	}
}

func TestPool_Acquire_Stale(t *testing.T) {
	t.Run("keepalive_timeout", func(t *testing.T) {
		b := newBackend(t, "tcp")
		clk := newFakeClock()
		p := mustPool(t, &config.Upstream{KeepaliveTimeout: config.Duration(time.Minute), Servers: servers(b.addr)}, Options{Now: clk.Now})
		ctx := t.Context()
		c1, _ := p.Acquire(ctx, nil)
		c2, _ := p.Acquire(ctx, nil)
		c1.Release(true)
		clk.Advance(30 * time.Second)
		c2.Release(true)
		clk.Advance(30 * time.Second) // c1 is stale now, c2 not yet
		c, err := p.Acquire(ctx, nil)
		if err != nil || !c.Reused {
			t.Fatalf("Acquire: %v, reused %v; want c2 reused", err, c != nil && c.Reused)
		}
		c.Release(true)
		clk.Advance(time.Minute) // now both are stale
		c, err = p.Acquire(ctx, nil)
		if err != nil || c.Reused {
			t.Fatalf("Acquire: %v, reused %v; want a new connection", err, c != nil && c.Reused)
		}
		waitFor(t, "stale connections to close", func() bool { return b.closed.Load() == 2 })
		c.Release(true)
	})
	t.Run("closed by server", func(t *testing.T) {
		b := newBackend(t, "tcp")
		clk := newFakeClock()
		p := mustPool(t, &config.Upstream{Servers: servers(b.addr)}, Options{Now: clk.Now})
		c, err := p.Acquire(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ping(t, c)
		c.SetReadDeadline(time.Now().Add(-time.Second)) // left by the last exchange
		c.Release(true)
		// Idle for less than checkAfter: trusted as it is.
		c, err = p.Acquire(t.Context(), nil)
		if err != nil || !c.Reused {
			t.Fatalf("Acquire: %v, reused %v; want reused", err, c != nil && c.Reused)
		}
		c.Release(true)
		clk.Advance(checkAfter)
		// Still open: checked and reused, despite the expired deadline.
		c, err = p.Acquire(t.Context(), nil)
		if err != nil || !c.Reused {
			t.Fatalf("Acquire: %v, reused %v; want reused", err, c != nil && c.Reused)
		}
		c.Release(true)
		clk.Advance(checkAfter)
		b.hangUp()
		if !hasLiveCheck {
			t.Skip("no liveness check on this platform")
		}
		p.mu.Lock()
		idle := p.servers[0].idle[0]
		p.mu.Unlock()
		waitFor(t, "the FIN to arrive", func() bool { return !idle.alive() })
		c, err = p.Acquire(t.Context(), nil)
		if err != nil || c.Reused {
			t.Fatalf("Acquire: %v, reused %v; want a new connection", err, c != nil && c.Reused)
		}
		ping(t, c)
		c.Release(true)
		if got := b.accepted.Load(); got != 2 {
			t.Errorf("accepted %d, want 2", got)
		}
	})
	t.Run("reaper", func(t *testing.T) {
		b := newBackend(t, "tcp")
		p := mustPool(t, &config.Upstream{KeepaliveTimeout: config.Duration(20 * time.Millisecond), Servers: servers(b.addr)}, Options{})
		c, err := p.Acquire(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Release(true)
		waitFor(t, "the reaper to close the idle connection", func() bool { return b.closed.Load() == 1 })
		if st := p.Stats()[0]; st.Idle != 0 {
			t.Errorf("idle %d after reaping", st.Idle)
		}
	})
}

func TestPool_Acquire_DialError(t *testing.T) {
	dead := freeAddr(t)
	b := newBackend(t, "tcp")
	clk := newFakeClock()
	p := mustPool(t, &config.Upstream{Servers: servers(dead, b.addr)}, Options{Now: clk.Now})
	c, err := p.Acquire(t.Context(), nil)
	var de *DialError
	if !errors.As(err, &de) {
		t.Fatalf("Acquire: %v, %v; want a *DialError", c, err)
	}
	if de.Server.Addr() != dead || de.Timeout() || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("DialError %v: server %q, timeout %v", de, de.Server.Addr(), de.Timeout())
	}
	if !strings.HasPrefix(err.Error(), `dialing upstream server "`+dead+`": `) {
		t.Errorf("message %q", err)
	}
	st := p.Stats()
	if !st[0].Down || st[0].Fails != 1 || st[0].Active != 0 {
		t.Errorf("dead server stats %+v, want down with 1 failure", st[0])
	}
	c, err = p.Acquire(t.Context(), []*Server{de.Server})
	if err != nil || c.Server.Addr() != b.addr {
		t.Fatalf("retry: %v", err)
	}
	c.Release(true)

	t.Run("unix", func(t *testing.T) {
		p := mustPool(t, &config.Upstream{Servers: servers("unix:" + t.TempDir() + "/none.sock")}, Options{})
		_, err := p.Acquire(t.Context(), nil)
		if !errors.As(err, &de) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Acquire: %v; want a *DialError wrapping ENOENT", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		p := mustPool(t, &config.Upstream{Servers: servers(dead, b.addr)}, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := p.Acquire(ctx, nil)
		if !errors.As(err, &de) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire: %v; want a *DialError wrapping context.Canceled", err)
		}
		if st := p.Stats()[0]; st.Fails != 0 {
			t.Errorf("a canceled dial counted against the server: %+v", st)
		}
	})
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestDialError_Timeout(t *testing.T) {
	s := &Server{addr: "127.0.0.1:9"}
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, true},
		{context.DeadlineExceeded, true},
		{syscall.ECONNREFUSED, false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		e := &DialError{Server: s, Err: tt.err}
		if got := e.Timeout(); got != tt.want {
			t.Errorf("Timeout() for %v = %v, want %v", tt.err, got, tt.want)
		}
		if !errors.Is(e, tt.err) {
			t.Errorf("errors.Is(%v) false", tt.err)
		}
	}
}

func TestPool_Close(t *testing.T) {
	b := newBackend(t, "tcp")
	srv := servers(b.addr)
	srv[0].MaxConns = 2
	p := mustPool(t, &config.Upstream{Servers: srv}, Options{})
	ctx := t.Context()
	idle, _ := p.Acquire(ctx, nil)
	busy, err := p.Acquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	idle.Release(true)
	if idle, err = p.Acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Both slots are taken: a third request waits, and gets the slot that
	// the release of idle frees.
	type result struct {
		c   *Conn
		err error
	}
	res := make(chan result, 1)
	acquire := func() {
		c, err := p.Acquire(ctx, nil)
		res <- result{c, err}
	}
	go acquire()
	waitFor(t, "the waiter to queue", func() bool { return p.Queued() == 1 })
	idle.Release(true)
	r := <-res
	if r.err != nil || !r.c.Reused {
		t.Fatalf("waiter: %v", r.err)
	}
	waiterConn := r.c
	go acquire()
	waitFor(t, "the waiter to queue", func() bool { return p.Queued() == 1 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != ErrPoolClosed {
		t.Errorf("queued Acquire after Close: %v, want ErrPoolClosed", r.err)
	}
	if _, err := p.Acquire(ctx, nil); err != ErrPoolClosed {
		t.Errorf("Acquire after Close: %v, want ErrPoolClosed", err)
	}
	ping(t, busy) // a conn in use keeps working
	busy.Release(true)
	waiterConn.Fail(errors.New("gone"))
	waitFor(t, "every connection to close", func() bool {
		return p.open.Load() == 0 && b.closed.Load() == b.accepted.Load()
	})
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConn_Release_Twice(t *testing.T) {
	b := newBackend(t, "tcp")
	p := mustPool(t, &config.Upstream{Servers: servers(b.addr)}, Options{})
	c, err := p.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(false)
	c.Release(true)
	c.Fail(errors.New("late"))
	c.Close()
	if st := p.Stats()[0]; st.Active != 0 || st.Idle != 0 || st.Fails != 0 {
		t.Errorf("stats %+v after repeated hand-backs", st)
	}
}
