package upstream

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

func TestServer_PassiveHealth(t *testing.T) {
	// Steps act on server a of a pool {a, b}: "fail" and "ok" hand back a
	// connection to a with Fail or Release, "wait" advances the clock by
	// 5 s. After each step a's Down and Fails are checked.
	type step struct {
		do        string
		wantDown  bool
		wantFails int
	}
	tests := []struct {
		name     string
		maxFails int
		steps    []step
	}{
		{"max_fails 2 within fail_timeout", 2, []step{
			{"fail", false, 1}, {"wait", false, 1}, {"fail", true, 2},
			{"wait", true, 2}, {"wait", false, 2}, // down for 10 s
		}},
		{"probation", 2, []step{
			{"fail", false, 1}, {"fail", true, 2}, {"wait", true, 2}, {"wait", false, 2},
			{"fail", true, 3}, // one failure after the down period is enough
			{"wait", true, 3}, {"wait", false, 3},
			{"ok", false, 0}, {"fail", false, 1},
		}},
		{"window passes", 2, []step{
			{"fail", false, 1}, {"wait", false, 1}, {"wait", false, 1}, {"wait", false, 1},
			{"fail", false, 1}, // 15 s later: a new window
			{"fail", true, 2},
		}},
		{"success resets", 2, []step{
			{"fail", false, 1}, {"ok", false, 0}, {"fail", false, 1}, {"ok", false, 0},
		}},
		{"max_fails 1", 1, []step{
			{"fail", true, 1}, {"wait", true, 1}, {"wait", false, 1}, {"ok", false, 0},
		}},
		{"max_fails 0 never down", 0, []step{
			{"fail", false, 1}, {"fail", false, 2}, {"fail", false, 3}, {"ok", false, 0},
		}},
		{"canceled does not count", 1, []step{
			{"cancel", false, 0}, {"fail", true, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ba, bb := newBackend(t, "tcp"), newBackend(t, "tcp")
			srv := servers(ba.addr, bb.addr)
			srv[0].MaxFails = tt.maxFails
			clk := newFakeClock()
			p := mustPool(t, &config.Upstream{Servers: srv}, Options{Now: clk.Now})
			a, b := p.Servers()[0], p.Servers()[1]
			for i, st := range tt.steps {
				switch st.do {
				case "wait":
					clk.Advance(5 * time.Second)
				default:
					p.mu.Lock()
					down := a.downLocked(clk.Now())
					p.mu.Unlock()
					if down {
						t.Fatalf("step %d: test bug: %s on a down server", i, st.do)
					}
					c, err := p.Acquire(t.Context(), []*Server{b})
					if err != nil || c.Server != a {
						t.Fatalf("step %d: Acquire: %v", i, err)
					}
					switch st.do {
					case "fail":
						c.Fail(errors.New("reset"))
					case "cancel":
						c.Fail(fmt.Errorf("writing request: %w", context.Canceled))
					default:
						c.Release(true)
					}
				}
				got := p.Stats()[0]
				if got.Down != st.wantDown || got.Fails != st.wantFails {
					t.Fatalf("step %d (%s): down %v fails %d, want down %v fails %d", i, st.do, got.Down, got.Fails, st.wantDown, st.wantFails)
				}
				if got.Down {
					// Balancing leaves a out.
					for range 3 {
						c, err := p.Acquire(t.Context(), nil)
						if err != nil || c.Server != b {
							t.Fatalf("step %d: picked %v (%v) while a is down", i, c.Server, err)
						}
						c.Release(true)
					}
					if _, err := p.Acquire(t.Context(), []*Server{b}); err != ErrNoServer {
						t.Fatalf("step %d: Acquire with b tried: %v, want ErrNoServer", i, err)
					}
				}
			}
		})
	}
}

func TestServer_PassiveHealthSingle(t *testing.T) {
	// nginx never marks a lone server down.
	b := newBackend(t, "tcp")
	p := mustPool(t, &config.Upstream{Servers: servers(b.addr)}, Options{})
	for i := range 3 {
		c, err := p.Acquire(t.Context(), nil)
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		c.Fail(errors.New("bad response"))
	}
	if st := p.Stats()[0]; st.Down || st.Fails != 3 {
		t.Errorf("stats %+v, want up with 3 failures", st)
	}
}

func TestServer_PassiveHealthAllDown(t *testing.T) {
	// When every server is down they are all revived and tried again.
	ba, bb := newBackend(t, "tcp"), newBackend(t, "tcp")
	clk := newFakeClock()
	p := mustPool(t, &config.Upstream{Servers: servers(ba.addr, bb.addr)}, Options{Now: clk.Now})
	a, b := p.Servers()[0], p.Servers()[1]
	for _, tried := range [][]*Server{{b}, {a}} {
		c, err := p.Acquire(t.Context(), tried)
		if err != nil {
			t.Fatal(err)
		}
		c.Fail(errors.New("reset"))
	}
	if st := p.Stats(); !st[0].Down || !st[1].Down {
		t.Fatalf("stats %+v, want both down", st)
	}
	c, err := p.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatalf("Acquire with every server down: %v", err)
	}
	if st := p.Stats(); st[0].Down || st[1].Down || st[0].Fails+st[1].Fails != 0 {
		t.Errorf("stats %+v, want both revived", st)
	}
	c.Release(true)
	// The tried list still holds.
	if _, err := p.Acquire(t.Context(), []*Server{a, b}); err != ErrNoServer {
		t.Errorf("Acquire with both tried: %v, want ErrNoServer", err)
	}
}
