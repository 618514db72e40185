package upstream

import (
	"context"
	"sync"
	"time"
)

// pickStatus is the outcome of a pick.
type pickStatus uint8

const (
	pickOK   pickStatus = iota // a server was picked and its slot taken
	pickFull                   // untried live servers exist, all at max_conns
	pickNone                   // every server is down or tried
)

// pickLocked picks a server for a request that already tried tried and
// takes a slot on it (active++). When every server of the pool is down it
// revives them all and picks again (nginx: "mark them as live for quick
// recovery").
func (p *Pool) pickLocked(tried []*Server, now time.Time) (*Server, pickStatus) {
	var s *Server
	var st pickStatus
	if p.leastConn {
		s, st = p.leastConnLocked(tried, now)
	} else {
		s, st = p.roundRobinLocked(tried, now)
	}
	if st == pickNone && p.allDownLocked(now) {
		for _, s := range p.servers {
			s.fails = 0
			s.downUntil = time.Time{}
		}
		if p.leastConn {
			s, st = p.leastConnLocked(tried, now)
		} else {
			s, st = p.roundRobinLocked(tried, now)
		}
	}
	if s != nil {
		s.active++
	}
	return s, st
}

// usableLocked reports whether s may take the request: live reports that s
// is neither tried nor down, and ok that it is also under max_conns.
func (s *Server) usableLocked(tried []*Server, now time.Time) (live, ok bool) {
	if s.downLocked(now) {
		return false, false
	}
	for _, t := range tried {
		if t == s {
			return false, false
		}
	}
	return true, s.maxConns == 0 || s.active < s.maxConns
}

// roundRobinLocked is nginx's smooth weighted round robin
// (ngx_http_upstream_get_peer): every usable server adds its effective
// weight to its current weight, the highest current weight wins and loses
// the sum of the effective weights. Effective weights lowered by failures
// climb back by one per pick.
func (p *Pool) roundRobinLocked(tried []*Server, now time.Time) (*Server, pickStatus) {
	var best *Server
	total := 0
	live := false
	for _, s := range p.servers {
		l, ok := s.usableLocked(tried, now)
		live = live || l
		if !ok {
			continue
		}
		s.current += s.effective
		total += s.effective
		if s.effective < s.weight {
			s.effective++
		}
		if best == nil || s.current > best.current {
			best = s
		}
	}
	if best == nil {
		if live {
			return nil, pickFull
		}
		return nil, pickNone
	}
	best.current -= total
	return best, pickOK
}

// leastConnLocked is nginx's least_conn (ngx_http_upstream_get_least_conn_peer):
// the usable server with the fewest active requests per unit of weight
// wins; ties are broken by smooth weighted round robin among the tied.
func (p *Pool) leastConnLocked(tried []*Server, now time.Time) (*Server, pickStatus) {
	var best *Server
	first, many := 0, false
	live := false
	for i, s := range p.servers {
		l, ok := s.usableLocked(tried, now)
		live = live || l
		if !ok {
			continue
		}
		switch {
		case best == nil || s.active*best.weight < best.active*s.weight:
			best, first, many = s, i, false
		case s.active*best.weight == best.active*s.weight:
			many = true
		}
	}
	if best == nil {
		if live {
			return nil, pickFull
		}
		return nil, pickNone
	}
	if !many {
		return best, pickOK
	}
	var pick *Server
	total := 0
	for _, s := range p.servers[first:] {
		if _, ok := s.usableLocked(tried, now); !ok || s.active*best.weight != best.active*s.weight {
			continue
		}
		s.current += s.effective
		total += s.effective
		if s.effective < s.weight {
			s.effective++
		}
		if pick == nil || s.current > pick.current {
			pick = s
		}
	}
	pick.current -= total
	return pick, pickOK
}

// downLocked reports whether passive health leaves s out at now.
func (s *Server) downLocked(now time.Time) bool {
	return !s.downUntil.IsZero() && now.Before(s.downUntil)
}

// allDownLocked reports whether every server of the pool is down.
func (p *Pool) allDownLocked(now time.Time) bool {
	for _, s := range p.servers {
		if !s.downLocked(now) {
			return false
		}
	}
	return true
}

// failLocked records a failure at now (nginx max_fails, fail_timeout):
// max_fails failures within fail_timeout of the first mark the server down
// for fail_timeout. A server back from down keeps its count, so one more
// failure before a success marks it down again (nginx's probation). A lone
// server is never marked down. Each failure also lowers the effective
// weight by weight/max_fails, as nginx does.
func (s *Server) failLocked(now time.Time, single bool) {
	if s.fails > 0 && (s.maxFails == 0 || s.fails < s.maxFails) && now.Sub(s.window) > s.failTimeout {
		s.fails = 0 // the window passed without reaching max_fails
	}
	if s.fails == 0 {
		s.window = now
	}
	s.fails++
	if s.maxFails == 0 || single {
		return
	}
	s.effective -= s.weight / s.maxFails
	if s.effective < 0 {
		s.effective = 0
	}
	if s.fails >= s.maxFails {
		s.downUntil = now.Add(s.failTimeout)
	}
}

// succeedLocked records a success: the failure count starts again. A down
// period under way runs its course.
func (s *Server) succeedLocked() { s.fails = 0 }

// waiter is a request queued for a slot. It is linked in the pool's FIFO
// list while it waits; whoever unlinks it sets server or err and sends on
// ready, all under the pool's mutex.
type waiter struct {
	next, prev *waiter
	linked     bool
	tried      []*Server
	server     *Server // the slot handed over
	err        error   // ErrNoServer or ErrPoolClosed
	ready      chan struct{}
	timer      *time.Timer
}

var waiterPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ready: make(chan struct{}, 1), timer: t}
}}

func (p *Pool) pushLocked(w *waiter) {
	w.linked = true
	w.prev = p.tail
	if p.tail == nil {
		p.head = w
	} else {
		p.tail.next = w
	}
	p.tail = w
	p.queued++
}

func (p *Pool) unlinkLocked(w *waiter) {
	if w.prev == nil {
		p.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		p.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.next, w.prev, w.linked = nil, nil, false
	p.queued--
}

// waitLocked queues the caller until dispatchLocked hands it a slot. It is
// called with p.mu held and returns with it released.
func (p *Pool) waitLocked(ctx context.Context, tried []*Server) (*Server, error) {
	if p.queued >= p.maxQueue {
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	w := waiterPool.Get().(*waiter)
	w.tried = tried
	p.pushLocked(w)
	p.mu.Unlock()

	w.timer.Reset(p.queueTimeout)
	var err error
	select {
	case <-w.ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-w.timer.C:
		err = ErrQueueTimeout
	}
	w.timer.Stop()

	p.mu.Lock()
	if w.linked {
		p.unlinkLocked(w) // left before anyone served it
	} else if err != nil {
		<-w.ready // served while leaving: take the signal
		switch {
		case w.server != nil && err == ErrQueueTimeout:
			err = nil // the slot came just in time: use it
		case w.server != nil:
			w.server.active-- // the caller is gone: pass the slot on
			p.dispatchLocked(p.now())
		}
	}
	s := w.server
	if err == nil {
		err = w.err
	}
	p.mu.Unlock()
	*w = waiter{ready: w.ready, timer: w.timer}
	waiterPool.Put(w)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// dispatchLocked hands free slots to waiters in FIFO order, and
// ErrNoServer to those no server can take any more. It stops at the first
// waiter with an empty tried list that finds every server full, since no
// later waiter can be served either.
func (p *Pool) dispatchLocked(now time.Time) {
	for w := p.head; w != nil; {
		next := w.next
		s, st := p.pickLocked(w.tried, now)
		switch st {
		case pickOK:
			p.unlinkLocked(w)
			w.server = s
			w.ready <- struct{}{}
		case pickNone:
			p.unlinkLocked(w)
			w.err = ErrNoServer
			w.ready <- struct{}{}
		case pickFull:
			if len(w.tried) == 0 {
				return
			}
		}
		w = next
	}
}
