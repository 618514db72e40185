// Package listen accepts client connections and hands each request to the
// proxy pipeline: HTTP/1.1 through Wedge's own strict parser, HTTP/2 in
// cleartext with prior knowledge (h2c, RFC 9113 §3.3) or over TLS chosen
// by ALPN (RFC 7301, RFC 9113 §3.2) through golang.org/x/net/http2, and
// HTTP/3 over QUIC (RFC 9114) through quic-go, all on the same handler. It
// enforces the per-connection limits (max_connections,
// max_connections_per_ip, client_header_timeout, keepalive_timeout,
// large_client_header_buffers, the TLS handshake timeout), announces
// HTTP/3 with Alt-Svc (RFC 7838) and drains on shutdown.
//
// The pipeline is swapped atomically on reload: a connection picks up the
// current proxy.Handler at each request, so no request is dropped.
package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// Server serves client connections on any number of listeners with one
// pipeline. Create it with New.
type Server struct {
	log     *slog.Logger
	current atomic.Pointer[generation]

	handshakeTimeout time.Duration
	http3Port        int
	// tlsFields is what every HTTP/1.1 and HTTP/2 response over TLS
	// carries: Strict-Transport-Security when configured, Alt-Svc once
	// ServeQUIC serves. Replaced whole, read once per response.
	tlsFields atomic.Pointer[extraFields]
	// quicFields is the same for HTTP/3 responses (no Alt-Svc).
	quicFields *extraFields

	mu        sync.Mutex
	listeners map[io.Closer]struct{}
	conns     map[*conn]struct{}
	quicConns map[*quicConn]struct{}
	h3s       map[*http3.Server]struct{}
	perIP     map[netip.Addr]int
	total     int
	shutting  atomic.Bool
	connWG    sync.WaitGroup

	connsGauge  prometheus.Gauge
	refused     *prometheus.CounterVec
	tlsFailures prometheus.Counter
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
	// HandshakeTimeout bounds a TLS handshake over TCP, from accept to
	// its end, and a QUIC handshake (quic.Config.HandshakeIdleTimeout); a
	// client past it is closed without a response. Zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// HSTS, when not empty, is the value of a Strict-Transport-Security
	// field (RFC 6797 §6.1, e.g. "max-age=31536000; includeSubDomains")
	// added to every response served over TLS or QUIC that has none. It
	// is never sent over cleartext (RFC 6797 §7.2).
	HSTS string
	// HTTP3Port is the UDP port announced in Alt-Svc (RFC 7838 §3,
	// `h3=":PORT"; ma=2592000`) on responses over TLS, for a port mapped
	// by a firewall or container. Zero means the port of the first
	// packet connection given to ServeQUIC. Nothing is announced until
	// ServeQUIC runs.
	HTTP3Port int
}

// DefaultHandshakeTimeout is the TLS and QUIC handshake timeout when
// Options.HandshakeTimeout is zero.
const DefaultHandshakeTimeout = 10 * time.Second

// New returns a Server that runs h with limits until SetHandler swaps it.
func New(h *proxy.Handler, limits config.Limits, opt Options) *Server {
	s := &Server{
		log:              opt.Logger,
		handshakeTimeout: opt.HandshakeTimeout,
		http3Port:        opt.HTTP3Port,
		listeners:        map[io.Closer]struct{}{},
		conns:            map[*conn]struct{}{},
		quicConns:        map[*quicConn]struct{}{},
		h3s:              map[*http3.Server]struct{}{},
		perIP:            map[netip.Addr]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.handshakeTimeout <= 0 {
		s.handshakeTimeout = DefaultHandshakeTimeout
	}
	s.tlsFields.Store(newExtraFields(opt.HSTS, ""))
	s.quicFields = newExtraFields(opt.HSTS, "")
	s.connsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wedge_client_connections", Help: "Client connections open now.",
	})
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wedge_client_connections_refused_total", Help: "Client connections closed at accept, by limit.",
	}, []string{"limit"})
	s.tlsFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wedge_tls_handshake_failures_total", Help: "TLS handshakes over TCP that failed or timed out.",
	})
	if opt.Registerer != nil {
		opt.Registerer.MustRegister(s.connsGauge, s.refused, s.tlsFailures)
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
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, nil) }

// serve is Serve, with TLS on every connection when tlsConf is not nil.
func (s *Server) serve(ln net.Listener, tlsConf *tls.Config) error {
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
		c, ok := s.admit(nc, tlsConf)
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
// connection is closed at once, before any byte is read. With tlsConf
// the connection is wrapped for a server-side handshake, which runs on
// the connection's own goroutine.
func (s *Server) admit(nc net.Conn, tlsConf *tls.Config) (*conn, bool) {
	ap := addrPort(nc.RemoteAddr())
	ip := ap.Addr().Unmap()
	s.mu.Lock()
	if !s.reserveLocked(ip, true) {
		s.mu.Unlock()
		nc.Close()
		return nil, false
	}
	c := &conn{srv: s, nc: nc, remote: netip.AddrPortFrom(ip, ap.Port()), local: addrPort(nc.LocalAddr())}
	if tlsConf != nil {
		c.tls = tls.Server(nc, tlsConf)
		c.nc = c.tls
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.connsGauge.Inc()
	return c, true
}

// reserveLocked counts a new connection from ip against max_connections
// and max_connections_per_ip. It reports false when shutdown has begun or
// a limit is reached, and then counts the refusal if count is set. s.mu
// is held.
func (s *Server) reserveLocked(ip netip.Addr, count bool) bool {
	if s.shutting.Load() {
		return false
	}
	if limit := s.limitReachedLocked(ip); limit != "" {
		if count {
			s.refused.WithLabelValues(limit).Inc()
		}
		return false
	}
	s.total++
	s.perIP[ip]++
	return true
}

// limitReachedLocked names the connection limit a new connection from ip
// would pass, or returns "". s.mu is held.
func (s *Server) limitReachedLocked(ip netip.Addr) string {
	lim := &s.current.Load().limits
	if max := lim.MaxConnections; max > 0 && s.total >= max {
		return "max_connections"
	}
	if max := lim.MaxConnectionsPerIP; max > 0 && s.perIP[ip] >= max {
		return "max_connections_per_ip"
	}
	return ""
}

// unreserveLocked undoes reserveLocked. s.mu is held.
func (s *Server) unreserveLocked(ip netip.Addr) {
	s.total--
	if n := s.perIP[ip] - 1; n > 0 {
		s.perIP[ip] = n
	} else {
		delete(s.perIP, ip)
	}
}

func (s *Server) release(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.unreserveLocked(c.remote.Addr())
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
	// GOAWAY on every HTTP/3 connection; the servers' own wait is cut
	// short when Shutdown returns (their connections are tracked here)
	h3ctx, h3cancel := context.WithCancel(ctx)
	defer h3cancel()
	for h3 := range s.h3s {
		go h3.Shutdown(h3ctx)
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
			for qc := range s.quicConns {
				qc.close()
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

// wakeIdleLocked closes idle HTTP/1.1 and HTTP/3 connections and sends
// GOAWAY on HTTP/2 ones (which then close once their streams are done).
// s.mu is held.
func (s *Server) wakeIdleLocked() {
	for qc := range s.quicConns {
		qc.closeIfIdle()
	}
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
