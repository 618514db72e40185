// Package listen accepts client connections and hands each request to the
// proxy pipeline: HTTP/1.1 through Wedge's own strict parser, HTTP/2 in
// cleartext with prior knowledge (h2c, RFC 9113 §3.3) through
// golang.org/x/net/http2 on the same handler. It enforces the per-connection
// limits (max_connections, max_connections_per_ip, client_header_timeout,
// keepalive_timeout, large_client_header_buffers) and drains on shutdown.
//
// The pipeline is swapped atomically on reload: a connection picks up the
// current proxy.Handler at each request, so no request is dropped.
package listen

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// Server serves client connections on any number of listeners with one
// pipeline. Create it with New.
type Server struct {
	log     *slog.Logger
	current atomic.Pointer[generation]

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[netip.Addr]int
	total     int
	shutting  atomic.Bool
	connWG    sync.WaitGroup

	connsGauge prometheus.Gauge
	refused    *prometheus.CounterVec
}

// generation is one configuration's pipeline and limits, with the HTTP/2
// server its h2c connections run on. An http2.Server is read by its
// connections while they run, so a reload makes a new one instead of
// changing the old.
type generation struct {
	h      *proxy.Handler
	limits config.Limits
	h2     *http2.Server
	// h2base carries h2's graceful-shutdown hook: its Shutdown sends
	// GOAWAY to every connection of h2 (http2.ConfigureServer).
	h2base *http.Server
}

// Options configure a Server.
type Options struct {
	// Logger receives connection-level errors. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the connection metrics. Nil turns them off.
	Registerer prometheus.Registerer
}

// New returns a Server that runs h with limits until SetHandler swaps it.
func New(h *proxy.Handler, limits config.Limits, opt Options) *Server {
	s := &Server{
		log:       opt.Logger,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		perIP:     map[netip.Addr]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.connsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wedge_client_connections", Help: "Client connections open now.",
	})
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wedge_client_connections_refused_total", Help: "Client connections closed at accept, by limit.",
	}, []string{"limit"})
	if opt.Registerer != nil {
		opt.Registerer.MustRegister(s.connsGauge, s.refused)
	}
	s.SetHandler(h, limits)
	return s
}

// SetHandler makes h the pipeline for every request that starts from now
// on, and returns the previous one (nil the first time), which the caller
// closes once it has drained.
func (s *Server) SetHandler(h *proxy.Handler, limits config.Limits) *proxy.Handler {
	g := &generation{h: h, limits: limits, h2: &http2.Server{IdleTimeout: limits.KeepaliveTimeout.Std()}, h2base: &http.Server{}}
	http2.ConfigureServer(g.h2base, g.h2) // only registers the shutdown hook here: no TLS is served through it
	old := s.current.Swap(g)
	if old == nil {
		return nil
	}
	return old.h
}

// Serve accepts connections on ln until Shutdown or a permanent accept
// error. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: back off as net/http does
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c, ok := s.admit(nc)
		if !ok {
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// admit applies max_connections and max_connections_per_ip; a refused
// connection is closed at once, before any byte is read.
func (s *Server) admit(nc net.Conn) (*conn, bool) {
	g := s.current.Load()
	ap := addrPort(nc.RemoteAddr())
	ip := ap.Addr().Unmap()
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		nc.Close()
		return nil, false
	}
	if max := g.limits.MaxConnections; max > 0 && s.total >= max {
		s.mu.Unlock()
		s.refused.WithLabelValues("max_connections").Inc()
		nc.Close()
		return nil, false
	}
	if max := g.limits.MaxConnectionsPerIP; max > 0 && s.perIP[ip] >= max {
		s.mu.Unlock()
		s.refused.WithLabelValues("max_connections_per_ip").Inc()
		nc.Close()
		return nil, false
	}
	s.total++
	s.perIP[ip]++
	c := &conn{srv: s, nc: nc, remote: netip.AddrPortFrom(ip, ap.Port()), local: addrPort(nc.LocalAddr())}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.connsGauge.Inc()
	return c, true
}

func (s *Server) release(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.total--
	if n := s.perIP[c.remote.Addr()] - 1; n > 0 {
		s.perIP[c.remote.Addr()] = n
	} else {
		delete(s.perIP, c.remote.Addr())
	}
	s.mu.Unlock()
	s.connsGauge.Dec()
	s.connWG.Done()
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// Shutdown stops accepting, closes idle connections at once, lets requests
// in flight finish, and returns when every connection is closed or ctx
// ends; then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	s.wakeIdleLocked()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-tick.C:
			// connections that finished a request since are idle now
			s.mu.Lock()
			s.wakeIdleLocked()
			s.mu.Unlock()
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.nc.Close()
			}
			s.mu.Unlock()
			<-done
			return ctx.Err()
		}
	}
}

// serveExchange runs ex through the current pipeline. A reload may close
// the Handler a connection loaded before the exchange was counted; TryServe
// then refuses it and the exchange goes to the Handler that replaced it, so
// no request fails because of a reload. Serve answers 503 when the current
// Handler itself is closed (shutdown).
func (s *Server) serveExchange(ex *proxy.Exchange) {
	for {
		g := s.current.Load()
		if g.h.TryServe(ex) {
			return
		}
		if s.current.Load() == g {
			g.h.Serve(ex)
			return
		}
	}
}

// wakeIdleLocked closes idle HTTP/1.1 connections and sends GOAWAY on
// HTTP/2 ones (which then close once their streams are done). s.mu is held.
func (s *Server) wakeIdleLocked() {
	var bases map[*http.Server]struct{}
	for c := range s.conns {
		c.wakeIfIdle()
		if b := c.h2base.Load(); b != nil {
			if bases == nil {
				bases = map[*http.Server]struct{}{}
			}
			bases[b] = struct{}{}
		}
	}
	for b := range bases {
		// returns at once: b tracks no connection of its own, it only
		// runs the http2 hook that starts a graceful shutdown
		b.Shutdown(context.Background())
	}
}

// ShuttingDown reports whether Shutdown has begun.
func (s *Server) ShuttingDown() bool { return s.shutting.Load() }
