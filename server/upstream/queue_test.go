package upstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// queuePool is a pool over one backend per max_conns entry.
func queuePool(t *testing.T, cfg config.Upstream, maxConns ...int) *Pool {
	t.Helper()
	for _, m := range maxConns {
		b := newBackend(t, "tcp")
		sc := servers(b.addr)[0]
		sc.MaxConns = m
		cfg.Servers = append(cfg.Servers, sc)
	}
	return mustPool(t, &cfg, Options{})
}

type acquired struct {
	id  int
	c   *Conn
	err error
}

// acquireAsync starts Acquire in a goroutine and waits until it has queued
// (the queue length reaches queued).
func acquireAsync(t *testing.T, ctx context.Context, p *Pool, id int, tried []*Server, queued int, out chan<- acquired) {
	t.Helper()
	go func() {
		c, err := p.Acquire(ctx, tried)
		out <- acquired{id, c, err}
	}()
	waitFor(t, "the request to queue", func() bool { return p.Queued() == queued })
}

func TestPool_Acquire_QueueFIFO(t *testing.T) {
	p := queuePool(t, config.Upstream{}, 1)
	ctx := t.Context()
	c0, err := p.Acquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan acquired, 8)
	for i := 1; i <= 4; i++ {
		acquireAsync(t, ctx, p, i, nil, i, out)
	}
	c0.Release(true)
	for want := 1; want <= 4; want++ {
		r := <-out
		if r.err != nil || r.id != want {
			t.Fatalf("got request %d (%v), want %d", r.id, r.err, want)
		}
		if st := p.Stats()[0]; st.Active != 1 {
			t.Fatalf("active %d while one request holds the slot", st.Active)
		}
		ping(t, r.c)
		r.c.Release(true)
	}
	if q := p.Queued(); q != 0 {
		t.Errorf("queued %d at the end", q)
	}
}

func TestPool_Acquire_QueueTimeout(t *testing.T) {
	p := queuePool(t, config.Upstream{QueueTimeout: config.Duration(20 * time.Millisecond)}, 1)
	c0, err := p.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Release(true)
	if _, err := p.Acquire(t.Context(), nil); err != ErrQueueTimeout {
		t.Fatalf("Acquire: %v, want ErrQueueTimeout", err)
	}
	if q := p.Queued(); q != 0 {
		t.Errorf("queued %d after the timeout", q)
	}
}

func TestPool_Acquire_QueueFull(t *testing.T) {
	p := queuePool(t, config.Upstream{MaxQueue: 2}, 1)
	c0, err := p.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan acquired, 2)
	acquireAsync(t, ctx, p, 1, nil, 1, out)
	acquireAsync(t, ctx, p, 2, nil, 2, out)
	if _, err := p.Acquire(t.Context(), nil); err != ErrQueueFull {
		t.Fatalf("Acquire: %v, want ErrQueueFull", err)
	}
	cancel()
	for range 2 {
		if r := <-out; !errors.Is(r.err, context.Canceled) {
			t.Errorf("request %d: %v, want context.Canceled", r.id, r.err)
		}
	}
	if q := p.Queued(); q != 0 {
		t.Errorf("queued %d after cancel", q)
	}
	c0.Release(true)
}

func TestPool_Acquire_QueueCancel(t *testing.T) {
	p := queuePool(t, config.Upstream{}, 1)
	c0, err := p.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(t.Context())
	out := make(chan acquired, 2)
	acquireAsync(t, ctx1, p, 1, nil, 1, out)
	acquireAsync(t, t.Context(), p, 2, nil, 2, out)
	cancel1()
	if r := <-out; r.id != 1 || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("request %d: %v, want 1 canceled", r.id, r.err)
	}
	if q := p.Queued(); q != 1 {
		t.Fatalf("queued %d after cancel, want 1", q)
	}
	c0.Release(true)
	r := <-out
	if r.id != 2 || r.err != nil {
		t.Fatalf("request %d: %v, want 2 served", r.id, r.err)
	}
	r.c.Release(true)
}

func TestPool_Acquire_QueueTried(t *testing.T) {
	p := queuePool(t, config.Upstream{}, 1, 1)
	ctx := t.Context()
	a, b := p.Servers()[0], p.Servers()[1]
	ca, err := p.Acquire(ctx, []*Server{b})
	if err != nil || ca.Server != a {
		t.Fatal(err)
	}
	cb, err := p.Acquire(ctx, []*Server{a})
	if err != nil || cb.Server != b {
		t.Fatal(err)
	}
	out := make(chan acquired, 2)
	acquireAsync(t, ctx, p, 1, []*Server{a}, 1, out) // only b will do
	acquireAsync(t, ctx, p, 2, nil, 2, out)

	ca.Release(true) // request 1 cannot use a: request 2 gets it
	r := <-out
	if r.id != 2 || r.err != nil || r.c.Server != a {
		t.Fatalf("request %d got %v (%v), want 2 on a", r.id, r.c, r.err)
	}
	r.c.Release(true)
	cb.Release(true)
	r = <-out
	if r.id != 1 || r.err != nil || r.c.Server != b {
		t.Fatalf("request %d got %v (%v), want 1 on b", r.id, r.c, r.err)
	}
	r.c.Release(true)
}

func TestPool_Acquire_QueueNoServerLeft(t *testing.T) {
	p := queuePool(t, config.Upstream{}, 1, 1)
	ctx := t.Context()
	a, b := p.Servers()[0], p.Servers()[1]
	ca, _ := p.Acquire(ctx, []*Server{b})
	cb, _ := p.Acquire(ctx, []*Server{a})
	if ca == nil || cb == nil {
		t.Fatal("Acquire failed")
	}
	out := make(chan acquired, 1)
	acquireAsync(t, ctx, p, 1, []*Server{a}, 1, out)
	cb.Fail(errors.New("reset")) // b goes down: nothing is left for request 1
	if r := <-out; r.err != ErrNoServer {
		t.Fatalf("queued request: %v, want ErrNoServer", r.err)
	}
	ca.Release(true)
}
