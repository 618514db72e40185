package upstream

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// balancePool builds a pool whose servers are never dialed, for pick tests.
func balancePool(t *testing.T, balance string, weights, maxConns []int) *Pool {
	t.Helper()
	cfg := &config.Upstream{Balance: balance}
	for i, w := range weights {
		sc := config.UpstreamServer{Address: fmt.Sprintf("127.0.0.1:%d", 10001+i), Weight: w, MaxFails: 1, FailTimeout: config.Duration(10 * time.Second)}
		if maxConns != nil {
			sc.MaxConns = maxConns[i]
		}
		cfg.Servers = append(cfg.Servers, sc)
	}
	return mustPool(t, cfg, Options{})
}

// picks picks n times and returns the servers as letters ("a" is the first
// server). With hold the slots stay taken, as for requests in flight.
func picks(t *testing.T, p *Pool, n int, hold bool, tried []*Server) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for range n {
		s, st := p.pickLocked(tried, p.now())
		if st != pickOK {
			b.WriteByte('-')
			continue
		}
		for i, x := range p.servers {
			if x == s {
				b.WriteByte(byte('a' + i))
			}
		}
		if !hold {
			s.active--
		}
	}
	return b.String()
}

func TestPool_Acquire_RoundRobin(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		maxConns []int
		hold     bool
		n        int
		want     string
	}{
		{name: "equal", weights: []int{1, 1, 1}, n: 9, want: "abcabcabc"},
		// The sequence nginx documents for its smooth weighted round robin.
		{name: "smooth 5-1-1", weights: []int{5, 1, 1}, n: 14, want: "aabacaaaabacaa"},
		{name: "2-1", weights: []int{2, 1}, n: 6, want: "abaaba"},
		{name: "single", weights: []int{3}, n: 3, want: "aaa"},
		{name: "max_conns skips full", weights: []int{1, 1}, maxConns: []int{1, 0}, hold: true, n: 4, want: "abbb"},
		{name: "all full", weights: []int{1, 1}, maxConns: []int{1, 2}, hold: true, n: 4, want: "abb-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := balancePool(t, "round_robin", tt.weights, tt.maxConns)
			if got := picks(t, p, tt.n, tt.hold, nil); got != tt.want {
				t.Errorf("picks = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPool_Acquire_RoundRobinDistribution(t *testing.T) {
	tests := []struct {
		weights []int
		n       int
	}{
		{[]int{1, 1}, 1000},
		{[]int{3, 2, 1}, 600},
		{[]int{10, 1}, 1100},
		{[]int{1, 2, 3, 4}, 1000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			p := balancePool(t, "round_robin", tt.weights, nil)
			seq := picks(t, p, tt.n, false, nil)
			total := 0
			for _, w := range tt.weights {
				total += w
			}
			for i, w := range tt.weights {
				got := strings.Count(seq, string(rune('a'+i)))
				if want := tt.n * w / total; got != want {
					t.Errorf("server %c: %d picks, want %d", 'a'+i, got, want)
				}
			}
		})
	}
}

func TestPool_Acquire_LeastConn(t *testing.T) {
	tests := []struct {
		name       string
		weights    []int
		active     []int // in flight before the picks
		hold       bool
		n          int
		want       string // "" to check wantActive only
		wantActive []int
	}{
		{name: "ties round robin", weights: []int{1, 1, 1}, n: 6, want: "abcabc"},
		{name: "ties weighted", weights: []int{2, 1}, n: 6, want: "abaaba"},
		{name: "fewest first", weights: []int{1, 1, 1}, active: []int{5, 0, 3}, hold: true, n: 4, want: "bbbb"},
		{name: "fills evenly", weights: []int{1, 1, 1}, active: []int{5, 0, 0}, hold: true, n: 10, wantActive: []int{5, 5, 5}},
		{name: "per weight", weights: []int{3, 1}, hold: true, n: 8, wantActive: []int{6, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := balancePool(t, "least_conn", tt.weights, nil)
			for i, a := range tt.active {
				p.servers[i].active = a
			}
			got := picks(t, p, tt.n, tt.hold, nil)
			if tt.want != "" && got != tt.want {
				t.Errorf("picks = %q, want %q", got, tt.want)
			}
			for i, w := range tt.wantActive {
				if a := p.servers[i].active; a != w {
					t.Errorf("server %c: active %d, want %d (picks %q)", 'a'+i, a, w, got)
				}
			}
		})
	}
}

func TestPool_Acquire_Tried(t *testing.T) {
	for _, balance := range []string{"round_robin", "least_conn"} {
		t.Run(balance, func(t *testing.T) {
			p := balancePool(t, balance, []int{1, 1, 1}, nil)
			a, b, c := p.servers[0], p.servers[1], p.servers[2]
			if got := picks(t, p, 4, false, []*Server{a}); strings.Contains(got, "a") || len(got) != 4 {
				t.Errorf("tried a: picks %q", got)
			}
			if got := picks(t, p, 2, false, []*Server{a, c}); got != "bb" {
				t.Errorf("tried a, c: picks %q, want bb", got)
			}
			if got := picks(t, p, 1, false, []*Server{c, b, a}); got != "-" {
				t.Errorf("tried all: picks %q, want -", got)
			}
			_, err := p.Acquire(t.Context(), []*Server{a, b, c})
			if err != ErrNoServer {
				t.Errorf("Acquire with all tried: %v, want ErrNoServer", err)
			}
		})
	}
}
