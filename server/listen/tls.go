package listen

import (
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Application protocols negotiated with ALPN (RFC 7301): the IANA
// registry's names.
const (
	alpnH2    = "h2"         // HTTP/2 over TLS, RFC 9113 §3.2
	alpnH1    = "http/1.1"   // RFC 9112
	alpnACME  = "acme-tls/1" // the tls-alpn-01 challenge, RFC 8737 §6.2
	altSvcAge = 2592000      // Alt-Svc "ma": 30 days, as Caddy and quic-go announce
)

// tlsMaxWrite is the largest single write on a TLS connection: a write
// that passes its deadline breaks a *tls.Conn for good, so send_timeout is
// applied per piece of this size instead of per response (pace.Writer).
const tlsMaxWrite = 64 << 10

// ServeTLS accepts connections on ln and serves them over TLS (1.2 and
// 1.3, crypto/tls defaults) until Shutdown or a permanent accept error,
// like Serve. The protocol is the one ALPN settled on: "h2" is HTTP/2
// (RFC 9113 §3.2) through golang.org/x/net/http2, "http/1.1" or none is
// Wedge's own HTTP/1.1, and "acme-tls/1" (RFC 8737) closes the connection
// once the handshake, which answered the challenge through
// tlsConf.GetCertificate, is done.
//
// tlsConf is not modified: when its NextProtos lack "h2" or "http/1.1"
// (certmagic's carry only "acme-tls/1"), a clone with them in front is
// used. The handshake must end within Options.HandshakeTimeout.
// Responses carry Strict-Transport-Security (Options.HSTS) and, while
// ServeQUIC runs, Alt-Svc. It returns nil after Shutdown.
func (s *Server) ServeTLS(ln net.Listener, tlsConf *tls.Config) error {
	return s.serve(ln, withHTTPProtos(tlsConf))
}

// withHTTPProtos returns conf, or a clone of it whose NextProtos start with
// h2 and http/1.1 (in that order of preference: crypto/tls picks the
// server's first protocol the client offers) when either is missing.
func withHTTPProtos(conf *tls.Config) *tls.Config {
	if slices.Contains(conf.NextProtos, alpnH2) && slices.Contains(conf.NextProtos, alpnH1) {
		return conf
	}
	c := conf.Clone()
	protos := []string{alpnH2, alpnH1}
	for _, p := range conf.NextProtos {
		if p != alpnH2 && p != alpnH1 {
			protos = append(protos, p)
		}
	}
	c.NextProtos = protos
	return c
}

// handshake runs the TLS handshake of c under the handshake timeout. It
// reports false when the connection is to be closed: the handshake
// failed, or it was an ACME tls-alpn-01 validation, which the handshake
// itself answered.
func (c *conn) handshake() bool {
	c.nc.SetDeadline(time.Now().Add(c.srv.handshakeTimeout))
	if err := c.tls.Handshake(); err != nil {
		c.srv.tlsFailures.Inc()
		c.srv.log.Debug("TLS handshake failed", "remote", c.remote.String(), "err", err.Error())
		return false
	}
	c.nc.SetDeadline(time.Time{})
	c.tlsState = c.tls.ConnectionState()
	return c.tlsState.NegotiatedProtocol != alpnACME
}

// extraFields are the response fields Wedge adds on secure connections,
// prepared once in the shapes both writers need, so adding them costs no
// allocation per response. Each is added only when the response has no
// field of that name.
type extraFields struct {
	hsts, altSvc string
	// "Name: value\r\n" lines for Wedge's HTTP/1.1 writer
	hstsLine, altSvcLine []byte
	// values for a net/http header map (HTTP/2, HTTP/3); len == cap,
	// so nothing appends to them in place
	hstsStd, altSvcStd []string
}

func newExtraFields(hsts, altSvc string) *extraFields {
	f := &extraFields{hsts: hsts, altSvc: altSvc}
	if hsts != "" {
		f.hstsLine = []byte("Strict-Transport-Security: " + hsts + "\r\n")
		f.hstsStd = []string{hsts}
	}
	if altSvc != "" {
		f.altSvcLine = []byte("Alt-Svc: " + altSvc + "\r\n")
		f.altSvcStd = []string{altSvc}
	}
	return f
}

// altSvcValue is the Alt-Svc field value announcing HTTP/3 on port
// (RFC 7838 §3, RFC 9114 §3.1.1).
func altSvcValue(port int) string {
	return `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(altSvcAge)
}

// appendH1 inserts the fields into head, a complete HTTP/1.1 response
// head ending in an empty line, for a response whose fields are h.
func (f *extraFields) appendH1(head []byte, h message.Header) []byte {
	if f.hsts == "" && f.altSvc == "" {
		return head
	}
	head = head[:len(head)-2] // the empty line goes after the new fields
	if f.hsts != "" && !h.Has("Strict-Transport-Security") {
		head = append(head, f.hstsLine...)
	}
	if f.altSvc != "" && !h.Has("Alt-Svc") {
		head = append(head, f.altSvcLine...)
	}
	return append(head, '\r', '\n')
}

// addStd adds the fields to a net/http header map.
func (f *extraFields) addStd(h http.Header) {
	if f.hsts != "" && len(h["Strict-Transport-Security"]) == 0 {
		h["Strict-Transport-Security"] = f.hstsStd
	}
	if f.altSvc != "" && len(h["Alt-Svc"]) == 0 {
		h["Alt-Svc"] = f.altSvcStd
	}
}
