package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// TestPool_Hammer runs many requests at once against small max_conns, with
// keep-alive, the queue, timeouts, cancellations, failures, a dead server
// and proxy-style retries, and checks that no server ever has more than
// max_conns requests in flight and that nothing leaks.
func TestPool_Hammer(t *testing.T) {
	const maxConns = 3
	ba, bb := newBackend(t, "tcp"), newBackend(t, "unix")
	srv := servers(ba.addr, bb.addr, freeAddr(t))
	for i := range srv {
		srv[i].MaxConns = maxConns
		srv[i].MaxFails = 3
		srv[i].FailTimeout = config.Duration(2 * time.Millisecond)
	}
	p, err := NewPool("app", &config.Upstream{
		Servers:      srv,
		Keepalive:    2,
		MaxQueue:     24,
		QueueTimeout: config.Duration(20 * time.Millisecond),
	}, Options{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var inUse [3]atomic.Int32
	index := map[*Server]int{}
	for i, s := range p.Servers() {
		index[s] = i
	}
	var counts [8]atomic.Int64 // served, dial errors, no server, queue full, queue timeout, canceled
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(10) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(2000))*time.Microsecond)
				}
				var tried []*Server
				for try := 0; try < p.Tries(); try++ {
					c, err := p.Acquire(ctx, tried)
					var de *DialError
					switch {
					case err == nil:
					case errors.As(err, &de):
						counts[1].Add(1)
						tried = append(tried, de.Server)
						continue
					case err == ErrNoServer:
						counts[2].Add(1)
					case err == ErrQueueFull:
						counts[3].Add(1)
					case err == ErrQueueTimeout:
						counts[4].Add(1)
					case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
						counts[5].Add(1)
					default:
						t.Errorf("Acquire: unexpected error %v", err)
					}
					if err != nil {
						break
					}
					i := index[c.Server]
					if n := inUse[i].Add(1); n > maxConns {
						t.Errorf("server %d: %d requests in flight, max_conns %d", i, n, maxConns)
					}
					if rng.IntN(2) == 0 {
						if _, err := c.Write([]byte("ping\n")); err == nil {
							c.Reader.ReadString('\n')
						}
					}
					if rng.IntN(4) == 0 {
						time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
					}
					inUse[i].Add(-1)
					counts[0].Add(1)
					switch rng.IntN(8) {
					case 0:
						c.Fail(errors.New("bad response"))
					case 1:
						c.Fail(context.Canceled)
					case 2:
						c.Release(false)
					default:
						c.Release(true)
					}
					break
				}
				cancel()
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	t.Logf("requests took %v", time.Since(start))
	t.Logf("served %d, dial errors %d, no server %d, queue full %d, queue timeout %d, canceled %d",
		counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load(), counts[4].Load(), counts[5].Load())
	if counts[0].Load() == 0 {
		t.Fatal("nothing served")
	}
	if q := p.Queued(); q != 0 {
		t.Errorf("queued %d at the end", q)
	}
	for _, st := range p.Stats() {
		if st.Active != 0 || st.Idle > 2 {
			t.Errorf("server %s: %+v at the end", st.Addr, st)
		}
	}
	p.Close()
	if _, err := p.Acquire(context.Background(), nil); err != ErrPoolClosed {
		t.Errorf("Acquire after Close: %v", err)
	}
	waitFor(t, "every connection to close", func() bool {
		return p.open.Load() == 0 &&
			ba.closed.Load() == ba.accepted.Load() && bb.closed.Load() == bb.accepted.Load()
	})
	t.Logf("all closed after %v", time.Since(start))
	for _, st := range p.Stats() {
		if st.Idle != 0 {
			t.Errorf("server %s: %d idle after Close", st.Addr, st.Idle)
		}
	}
}
