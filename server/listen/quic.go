package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// errRefused rejects a QUIC connection attempt past a connection limit,
// before its handshake.
var errRefused = errors.New("connection limit reached")

// ServeQUIC serves HTTP/3 (RFC 9114) over QUIC (RFC 9000) on pc until
// Shutdown or a permanent error, through quic-go's http3.Server and the
// same pipeline as Serve. tlsConf gives the certificates (its NextProtos
// are replaced by "h3", http3.ConfigureTLSConfig; QUIC always runs TLS
// 1.3). pc is closed when ServeQUIC returns.
//
// Limits: max_connections and max_connections_per_ip count QUIC
// connections with TCP ones (an attempt past them is refused before its
// handshake); the handshake must end within Options.HandshakeTimeout; a
// connection idle for keepalive_timeout is closed; a request head is at
// most large_client_header_buffers (number × size) bytes. The idle timeout
// is the one of the configuration current when ServeQUIC starts; requests
// follow reloads as on every listener. 0-RTT is refused: a 0-RTT request
// can be replayed (RFC 9001 §9.2) and the app behind Wedge would not know.
//
// While it runs, responses over TLS (ServeTLS) announce it with Alt-Svc.
// On Shutdown every connection gets GOAWAY (RFC 9114 §5.2), requests in
// flight finish, and idle connections are closed. It returns nil after
// Shutdown.
func (s *Server) ServeQUIC(pc net.PacketConn, tlsConf *tls.Config) error {
	lim := &s.current.Load().limits
	idle := lim.KeepaliveTimeout.Std()
	local := addrPort(pc.LocalAddr())
	tr := &quic.Transport{
		Conn: pc,
		ConnContext: func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
			ap := addrPort(ci.RemoteAddr)
			ip := ap.Addr().Unmap()
			s.mu.Lock()
			limit := s.limitReachedLocked(ip)
			s.mu.Unlock()
			if limit != "" {
				s.refused.WithLabelValues(limit).Inc()
			}
			if limit != "" || s.shutting.Load() {
				return nil, errRefused
			}
			qc := &quicConn{remote: netip.AddrPortFrom(ip, ap.Port()), local: local}
			return context.WithValue(ctx, quicConnKey{}, qc), nil
		},
	}
	ln, err := tr.Listen(http3.ConfigureTLSConfig(tlsConf), &quic.Config{
		HandshakeIdleTimeout: s.handshakeTimeout,
		MaxIdleTimeout:       idle,
		Allow0RTT:            false,
	})
	if err != nil {
		tr.Close()
		pc.Close()
		return fmt.Errorf("listening for QUIC on %s: %w", pc.LocalAddr(), err)
	}
	bufs := lim.LargeClientHeaderBuffers
	h3 := &http3.Server{
		Handler:        h3Handler{s},
		IdleTimeout:    idle,
		MaxHeaderBytes: bufs.Number * int(bufs.Size),
		Logger:         s.log,
	}
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		tr.Close()
		pc.Close()
	}()
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.h3s[h3] = struct{}{}
	s.mu.Unlock()
	s.announceHTTP3(int(local.Port()))
	for {
		qc, err := ln.Accept(context.Background())
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			return fmt.Errorf("accepting QUIC connections on %s: %w", pc.LocalAddr(), err)
		}
		c, _ := qc.Context().Value(quicConnKey{}).(*quicConn)
		if c == nil || !s.admitQUIC(c, qc) {
			qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeExcessiveLoad), "")
			continue
		}
		wg.Go(func() {
			defer s.releaseQUIC(c)
			h3.ServeQUICConn(qc)
			c.close() // ServeQUICConn leaves that to its caller
		})
	}
}

// announceHTTP3 makes responses over TLS carry Alt-Svc for port, or for
// Options.HTTP3Port when set; the first ServeQUIC to call it wins.
func (s *Server) announceHTTP3(port int) {
	if s.http3Port != 0 {
		port = s.http3Port
	}
	if port == 0 {
		return
	}
	for {
		old := s.tlsFields.Load()
		if old.altSvc != "" {
			return
		}
		if s.tlsFields.CompareAndSwap(old, newExtraFields(old.hsts, altSvcValue(port))) {
			return
		}
	}
}

// quicConn is one HTTP/3 client connection.
type quicConn struct {
	qc            *quic.Conn
	remote, local netip.AddrPort
	active        atomic.Int32  // requests in the pipeline now
	started       atomic.Uint64 // requests begun so far
	// what Shutdown saw at its previous look, under Server.mu
	seen   uint64
	looked bool
}

// quicConnKey is the context key under which a QUIC connection's context
// (and so every request's) carries its *quicConn.
type quicConnKey struct{}

func (c *quicConn) close() {
	c.qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
}

// closeIfIdle closes c when no request was in the pipeline or began since
// the previous call (Shutdown calls it every tick after GOAWAY, so a
// request whose stream opened just before GOAWAY is given a tick to reach
// the handler). Server.mu is held.
func (c *quicConn) closeIfIdle() {
	n := c.started.Load()
	if c.looked && n == c.seen && c.active.Load() == 0 {
		c.close()
	}
	c.seen, c.looked = n, true
}

func (s *Server) admitQUIC(c *quicConn, qc *quic.Conn) bool {
	s.mu.Lock()
	if !s.reserveLocked(c.remote.Addr(), true) {
		s.mu.Unlock()
		return false
	}
	c.qc = qc
	s.quicConns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.connsGauge.Inc()
	return true
}

func (s *Server) releaseQUIC(c *quicConn) {
	s.mu.Lock()
	delete(s.quicConns, c)
	s.unreserveLocked(c.remote.Addr())
	s.mu.Unlock()
	s.connsGauge.Dec()
	s.connWG.Done()
}

// h3Handler runs HTTP/3 requests through the pipeline, with the addresses
// of the connection they came on.
type h3Handler struct{ s *Server }

func (h h3Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(quicConnKey{}).(*quicConn)
	if c == nil { // not from ServeQUIC's transport: cannot happen
		http.Error(rw, "no connection", http.StatusInternalServerError)
		return
	}
	c.active.Add(1) // before started: see closeIfIdle
	c.started.Add(1)
	defer c.active.Add(-1)
	ServeHTTP(h.s, rw, r, c.remote, c.local)
}
