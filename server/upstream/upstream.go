// Package upstream keeps Wedge's upstream pools, like nginx's `upstream`
// block: servers reached over TCP ("host:port") or a unix socket
// ("unix:/path"), keep-alive connection reuse, balancing (smooth weighted
// round robin or least_conn), max_conns with a FIFO queue (queue, timeout)
// and passive health (max_fails, fail_timeout).
//
// The package does not speak HTTP. The proxy calls Pool.Acquire, writes the
// request to the Conn it gets, reads the response through Conn.Reader, and
// hands the connection back with Conn.Release (success) or Conn.Fail (a
// failure that counts against the server).
//
// # Notes
//
// Passive health follows nginx's max_fails and fail_timeout, with nginx's
// two special cases:
//   - A pool with a single server never marks it down (nginx ignores
//     max_fails for a lone server): the request always goes to it, and a dead
//     server yields a *DialError, not ErrNoServer.
//   - When every server of the pool is down, they are all marked live again
//     (nginx "mark them as live for quick recovery") and the request is tried
//     at once. nginx answers that one request 502 and lets the next ones try;
//     Wedge tries this one too, since the proxy bounds the attempts with
//     `tries` and the tried list anyway.
//
// After its down period a server is on probation, as in nginx: one more
// failure before a success marks it down again for FailTimeout.
//
// Waiters in the queue are woken only when a slot frees (a release, a
// failure, a failed dial), never by polling; a down server that comes back
// while requests wait is used by the next slot release or new request.
package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// Errors returned by Pool.Acquire. They are returned as they are (not
// wrapped), so the proxy can compare them cheaply under overload.
var (
	// ErrNoServer means every server is down (passive health) or already
	// in the tried list. The proxy answers 502.
	ErrNoServer = errors.New("picking an upstream server: every server is down or already tried")
	// ErrQueueFull means max_queue requests are already waiting for a free
	// slot. The proxy answers 503.
	ErrQueueFull = errors.New("queueing for an upstream server: queue is full")
	// ErrQueueTimeout means the request waited queue_timeout for a free
	// slot. The proxy answers 503 with Retry-After.
	ErrQueueTimeout = errors.New("queueing for an upstream server: queue timeout expired")
	// ErrPoolClosed means the pool was closed (reload or shutdown).
	ErrPoolClosed = errors.New("acquiring an upstream connection: pool is closed")
)

// Defaults used when a config field is zero (config.Defaults normally fills
// them in first).
const (
	defaultConnectTimeout   = 60 * time.Second
	defaultKeepalive        = 32
	defaultKeepaliveTimeout = 60 * time.Second
	defaultQueueTimeout     = 60 * time.Second
	defaultMaxQueue         = 1024
	defaultFailTimeout      = 10 * time.Second
)

// checkAfter is how long a connection idles before Acquire checks that the
// server has not closed it. A connection idle for less is trusted without
// the system call: app servers close idle keep-alive connections after
// seconds (gunicorn 2 s, uvicorn and Node 5 s), and a busy pool reuses its
// connections within milliseconds.
const checkAfter = 500 * time.Millisecond

// Options are the settings of a Pool that do not come from config.Upstream.
type Options struct {
	// ConnectTimeout bounds dialing one server (nginx
	// proxy_connect_timeout, config Limits.ProxyConnectTimeout). Zero means
	// 60 s. A dial that runs past it fails with a *DialError whose Timeout
	// reports true.
	ConnectTimeout time.Duration
	// Now returns the current time, for passive health and keep-alive
	// staleness; nil means time.Now. Tests inject a fake clock. The queue
	// timeout and the background reaper of idle connections use real
	// timers.
	Now func() time.Time
}

// Pool is one upstream pool (nginx `upstream` block). It is safe for
// concurrent use; one mutex guards all of its state.
type Pool struct {
	name             string
	servers          []*Server
	leastConn        bool
	single           bool
	keepalive        int // idle conns kept per server; 0 means no reuse
	keepaliveTimeout time.Duration
	queueTimeout     time.Duration
	maxQueue         int
	tries            int
	dialer           net.Dialer
	now              func() time.Time

	mu          sync.Mutex
	closed      bool
	head, tail  *waiter // FIFO queue of requests waiting for a slot
	queued      int
	reaper      *time.Timer // closes stale idle conns
	reaperArmed bool

	open atomic.Int64 // connections dialed and not yet closed
}

// Server is one member of a pool (nginx `server` in `upstream`). Its state
// is guarded by the pool's mutex.
type Server struct {
	pool        *Pool
	addr        string // as configured
	network     string // "tcp" or "unix"
	address     string // "host:port" or the socket path
	weight      int
	maxConns    int
	maxFails    int
	failTimeout time.Duration

	current   int       // smooth round robin: current weight
	effective int       // smooth round robin: effective weight (lowered by failures)
	active    int       // requests in flight, counting reserved slots
	idle      []*Conn   // idle conns, oldest first (LIFO: reuse from the end)
	fails     int       // failures in the current window
	window    time.Time // when the current failure window began
	downUntil time.Time // left out of balancing until then
}

// Addr returns the server's address as configured: "host:port" or
// "unix:/path".
func (s *Server) Addr() string { return s.addr }

// String returns Addr.
func (s *Server) String() string { return s.addr }

// ServerStats is a snapshot of one server, for metrics and the admin page.
type ServerStats struct {
	// Addr is the server's configured address.
	Addr string
	// Active is the number of requests in flight (slots taken, counting
	// dials under way).
	Active int
	// Idle is the number of idle keep-alive connections.
	Idle int
	// Down reports whether passive health leaves the server out now.
	Down bool
	// Fails is the number of failures counted since the last success or
	// the start of the current fail_timeout window.
	Fails int
}

// NewPool builds the pool named name from cfg, whose defaults should
// already be applied (config.Defaults); a zero field still means its
// default. It checks every address: "host:port" with a numeric port 1-65535
// (IPv6 in brackets; a name is resolved at each dial) or "unix:/path" with
// an absolute path. It dials nothing: connections are made
// on demand by Acquire.
//
// Errors: "creating upstream pool %q: ..." for a nil cfg, no servers, a bad
// address, a negative weight, max_conns, max_fails or duration, keepalive
// below -1, or a balance other than "round_robin" and "least_conn".
func NewPool(name string, cfg *config.Upstream, opt Options) (*Pool, error) {
	if cfg == nil {
		return nil, fmt.Errorf("creating upstream pool %q: no configuration", name)
	}
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("creating upstream pool %q: no servers", name)
	}
	p := &Pool{
		name:             name,
		keepalive:        cfg.Keepalive,
		keepaliveTimeout: cfg.KeepaliveTimeout.Std(),
		queueTimeout:     cfg.QueueTimeout.Std(),
		maxQueue:         cfg.MaxQueue,
		tries:            cfg.Tries,
		now:              opt.Now,
	}
	switch cfg.Balance {
	case "", "round_robin":
	case "least_conn":
		p.leastConn = true
	default:
		return nil, fmt.Errorf("creating upstream pool %q: balance %q: want round_robin or least_conn", name, cfg.Balance)
	}
	switch {
	case p.keepalive == 0:
		p.keepalive = defaultKeepalive
	case p.keepalive == -1:
		p.keepalive = 0
	case p.keepalive < -1:
		return nil, fmt.Errorf("creating upstream pool %q: keepalive %d: want -1 or more", name, cfg.Keepalive)
	}
	if p.keepaliveTimeout < 0 || p.queueTimeout < 0 || p.maxQueue < 0 || p.tries < 0 || opt.ConnectTimeout < 0 {
		return nil, fmt.Errorf("creating upstream pool %q: negative keepalive_timeout, queue_timeout, max_queue, tries or connect timeout", name)
	}
	if p.keepaliveTimeout == 0 {
		p.keepaliveTimeout = defaultKeepaliveTimeout
	}
	if p.queueTimeout == 0 {
		p.queueTimeout = defaultQueueTimeout
	}
	if p.maxQueue == 0 {
		p.maxQueue = defaultMaxQueue
	}
	if p.tries == 0 || p.tries > len(cfg.Servers) {
		p.tries = len(cfg.Servers)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.dialer.Timeout = opt.ConnectTimeout
	if p.dialer.Timeout == 0 {
		p.dialer.Timeout = defaultConnectTimeout
	}

	p.servers = make([]*Server, len(cfg.Servers))
	for i, sc := range cfg.Servers {
		network, address, err := parseAddress(sc.Address)
		if err != nil {
			return nil, fmt.Errorf("creating upstream pool %q: server %d: %w", name, i, err)
		}
		if sc.Weight < 0 || sc.MaxConns < 0 || sc.MaxFails < 0 || sc.FailTimeout < 0 {
			return nil, fmt.Errorf("creating upstream pool %q: server %q: negative weight, max_conns, max_fails or fail_timeout", name, sc.Address)
		}
		s := &Server{
			pool:        p,
			addr:        sc.Address,
			network:     network,
			address:     address,
			weight:      sc.Weight,
			maxConns:    sc.MaxConns,
			maxFails:    sc.MaxFails,
			failTimeout: sc.FailTimeout.Std(),
		}
		if s.weight == 0 {
			s.weight = 1
		}
		if s.failTimeout == 0 {
			s.failTimeout = defaultFailTimeout
		}
		s.effective = s.weight
		if p.keepalive > 0 {
			s.idle = make([]*Conn, 0, min(p.keepalive, 64))
		}
		p.servers[i] = s
	}
	p.single = len(p.servers) == 1
	return p, nil
}

// parseAddress splits a configured address into a network and a dial
// address: "unix:/path" gives ("unix", "/path"), "host:port" ("tcp",
// "host:port").
func parseAddress(addr string) (network, address string, err error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("parsing address %q: unix socket path must be absolute", addr)
		}
		return "unix", path, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("parsing address %q: %w", addr, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("parsing address %q: empty host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("parsing address %q: port %q: want 1-65535", addr, port)
	}
	return "tcp", addr, nil
}

// Name returns the pool's name, the key of config.Config.Upstreams.
func (p *Pool) Name() string { return p.name }

// Tries returns how many servers to try at most for one request (nginx
// proxy_next_upstream_tries): config `tries`, or every server once when it
// is zero, and never more than the number of servers.
func (p *Pool) Tries() int { return p.tries }

// Servers returns the pool's servers in configuration order. The slice is
// shared: do not modify it.
func (p *Pool) Servers() []*Server { return p.servers }

// Acquire picks a server that is not in tried, not down and under its
// max_conns, and returns a connection to it: the most recently used idle
// one (LIFO; stale ones are discarded: idle for keepalive_timeout, or, when
// idle for 500 ms or more, found closed by the server) or a new one dialed
// within ConnectTimeout.
//
// When every eligible server is at max_conns the call waits in a FIFO queue
// until a slot frees, ctx is done (ctx.Err() is returned), or queue_timeout
// passes (ErrQueueTimeout); ErrQueueFull if max_queue requests already wait.
// ErrNoServer if every server is down or tried; ErrPoolClosed after Close.
//
// A failed dial counts against the server (passive health), frees the slot
// and returns a *DialError; the proxy may call Acquire again with the server
// appended to tried. tried is not kept past the call.
//
// The Conn must be handed back with exactly one Release or Fail.
func (p *Pool) Acquire(ctx context.Context, tried []*Server) (*Conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	now := p.now()
	if p.head != nil {
		// Slots may have come free for waiters (a server back from down):
		// they go first.
		p.dispatchLocked(now)
	}
	s, st := p.pickLocked(tried, now)
	switch st {
	case pickNone:
		p.mu.Unlock()
		return nil, ErrNoServer
	case pickFull:
		var err error
		if s, err = p.waitLocked(ctx, tried); err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.closed { // closed after the slot was handed over
			s.active--
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		now = p.now()
	}
	for {
		c, stale := s.popIdleLocked(now)
		p.mu.Unlock()
		for _, sc := range stale {
			sc.closeConn()
		}
		if c == nil {
			return p.dial(ctx, s)
		}
		if now.Sub(c.idleSince) < checkAfter || c.alive() {
			c.Reused = true
			return c, nil
		}
		c.closeConn()
		p.mu.Lock()
	}
}

// Close closes the pool: idle connections are closed now, connections in
// use when they are released, waiting requests get ErrPoolClosed, and later
// Acquire calls too. It returns nil; calling it again does nothing.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var idle []*Conn
	for _, s := range p.servers {
		idle = append(idle, s.idle...)
		clear(s.idle)
		s.idle = s.idle[:0]
	}
	for w := p.head; w != nil; {
		next := w.next
		p.unlinkLocked(w)
		w.err = ErrPoolClosed
		w.ready <- struct{}{}
		w = next
	}
	if p.reaper != nil {
		p.reaper.Stop()
	}
	p.reaperArmed = false
	p.mu.Unlock()
	for _, c := range idle {
		c.closeConn()
	}
	return nil
}

// Stats returns a snapshot of every server, in configuration order.
func (p *Pool) Stats() []ServerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	st := make([]ServerStats, len(p.servers))
	for i, s := range p.servers {
		st[i] = ServerStats{
			Addr:   s.addr,
			Active: s.active,
			Idle:   len(s.idle),
			Down:   s.downLocked(now),
			Fails:  s.fails,
		}
	}
	return st
}

// Queued returns the number of requests waiting for a free slot.
func (p *Pool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// DialError is a failure to connect to one server: refused, unreachable,
// or past ConnectTimeout. It has counted against the server already.
type DialError struct {
	// Server is the server that could not be reached.
	Server *Server
	// Err is the dialer's error.
	Err error
}

// Error returns "dialing upstream server %q: <Err>".
func (e *DialError) Error() string {
	return "dialing upstream server " + strconv.Quote(e.Server.addr) + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the dial ran past its connect timeout (or the
// request's deadline); the proxy answers 504 when its last try timed out,
// 502 otherwise.
func (e *DialError) Timeout() bool {
	var ne net.Error
	if errors.As(e.Err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(e.Err, context.DeadlineExceeded)
}

// dial connects to s, whose slot is already taken. On failure it frees the
// slot and, unless ctx is done (the client left), records a failure.
func (p *Pool) dial(ctx context.Context, s *Server) (*Conn, error) {
	nc, err := p.dialer.DialContext(ctx, s.network, s.address)
	if err != nil {
		p.mu.Lock()
		s.active--
		now := p.now()
		if ctx.Err() == nil {
			s.failLocked(now, p.single)
		}
		if p.head != nil {
			p.dispatchLocked(now)
		}
		p.mu.Unlock()
		return nil, &DialError{Server: s, Err: err}
	}
	p.open.Add(1)
	c := &Conn{Conn: nc, Server: s, inUse: true}
	c.Reader = readerPool.Get().(*bufio.Reader)
	c.Reader.Reset(nc)
	c.initCheck()
	return c, nil
}
