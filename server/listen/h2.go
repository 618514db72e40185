package listen

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/pace"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// bufferedConn is a net.Conn whose first reads drain a bufio.Reader that
// already holds bytes of the connection (the peeked HTTP/2 preface).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// serveH2 serves an HTTP/2 connection that opened with the prior-knowledge
// preface (RFC 9113 §3.3) until it closes.
func (c *conn) serveH2(g *generation) {
	c.nc.SetReadDeadline(time.Time{})
	c.h2base.Store(g.h2base) // Shutdown sends GOAWAY through it (again at each tick, so a late starter gets one too)
	br := bufio.NewReaderSize(c.nc, readerSize)
	// move what the pooled reader already holds in front of the new one
	held, _ := c.br.Peek(c.br.Buffered())
	bc := &bufferedConn{Conn: c.nc, r: bufio.NewReader(io.MultiReader(strings.NewReader(string(held)), br))}
	g.h2.ServeConn(bc, &http2.ServeConnOpts{
		Handler:    &h2Handler{srv: c.srv, remote: c.remote, local: c.local},
		BaseConfig: g.h2base,
	})
}

// serveH2TLS serves an HTTP/2 connection over TLS, chosen by ALPN (RFC
// 9113 §3.2), until it closes. The *tls.Conn goes to the HTTP/2 server
// as it is, so requests see its TLS state (http.Request.TLS).
func (c *conn) serveH2TLS(g *generation) {
	c.h2base.Store(g.h2base)
	g.h2.ServeConn(c.tls, &http2.ServeConnOpts{
		Handler:    &h2Handler{srv: c.srv, remote: c.remote, local: c.local},
		BaseConfig: g.h2base,
	})
}

// h2Handler adapts net/http's handler interface, which HTTP/2 (and, later,
// HTTP/3) servers call, to the pipeline's Exchange.
type h2Handler struct {
	srv           *Server
	remote, local netip.AddrPort
}

// ServeHTTP runs one HTTP/2 stream through the pipeline.
func (hh *h2Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	ServeHTTP(hh.srv, rw, r, hh.remote, hh.local)
}

// ServeHTTP runs one request that arrived through net/http's handler
// interface (HTTP/2, HTTP/3) through s's current pipeline. A request with
// r.TLS set is an https one (Exchange.TLS, X-Forwarded-Proto, :scheme),
// and its response gets the fields of Options.HSTS and, below HTTP/3,
// Alt-Svc.
func ServeHTTP(s *Server, rw http.ResponseWriter, r *http.Request, remote, local netip.AddrPort) {
	g := s.current.Load()
	lim := &g.limits
	rc := http.NewResponseController(rw)
	ex := &proxy.Exchange{
		Req: message.Request{
			Method:        r.Method,
			Target:        r.RequestURI,
			Host:          r.Host,
			Scheme:        "http",
			Proto:         protoName(r),
			ContentLength: r.ContentLength,
		},
		Remote: remote,
		Local:  local,
		TLS:    r.TLS,
		Start:  time.Now(),
	}
	if r.TLS != nil {
		ex.Req.Scheme = "https"
	}
	if ex.Req.Target == "" || ex.Req.Target[0] != '/' {
		if r.URL != nil {
			ex.Req.Target = r.URL.RequestURI()
		}
	}
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	ex.Req.Header = make(message.Header, 0, n+8)
	for k, vs := range r.Header {
		for _, v := range vs {
			ex.Req.Header = append(ex.Req.Header, message.Field{Name: k, Value: v})
		}
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		pr := &pace.Reader{}
		pr.Reset(rc.SetReadDeadline, r.Body, lim.ClientBodyTimeout.Std(), int64(lim.ClientBodyMinRate))
		ex.Body = pr
	}
	w := &stdWriter{rw: rw, rc: rc, idle: lim.SendTimeout.Std(), minRate: int64(lim.SendMinRate), isHead: r.Method == "HEAD"}
	if r.TLS != nil {
		if r.ProtoMajor == 3 {
			w.extra = s.quicFields
		} else {
			w.extra = s.tlsFields.Load()
		}
	}
	ex.W = w
	s.serveExchange(ex)
}

func protoName(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "HTTP/2.0"
	case 3:
		return "HTTP/3.0"
	}
	return "HTTP/" + strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}

// stdWriter answers through a net/http ResponseWriter.
type stdWriter struct {
	rw      http.ResponseWriter
	rc      *http.ResponseController
	idle    time.Duration
	minRate int64
	isHead  bool
	written int64
	start   time.Time
	extra   *extraFields // nil in cleartext
}

// connection-specific fields are not allowed in HTTP/2 and HTTP/3
// (RFC 9113 §8.2.2); the pipeline already removed hop-by-hop ones.
func (w *stdWriter) copyHeader(resp *message.Response) {
	h := w.rw.Header()
	for _, f := range resp.Header {
		if strings.EqualFold(f.Name, "Connection") || strings.EqualFold(f.Name, "Transfer-Encoding") ||
			strings.EqualFold(f.Name, "Keep-Alive") {
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		h[k] = append(h[k], f.Value)
	}
	if w.extra != nil && resp.Status >= 200 {
		w.extra.addStd(h)
	}
}

func (w *stdWriter) WriteResponse(resp *message.Response, body []message.Section) error {
	w.copyHeader(resp)
	var n int64
	for _, s := range body {
		n += s.Len()
	}
	bodyOK := resp.Status >= 200 && resp.Status != 204 && resp.Status != 304
	if bodyOK && (!w.isHead || n > 0) { // HEAD keeps the length it came with, as in HTTP/1.1
		w.rw.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	}
	w.rw.WriteHeader(resp.Status)
	if !bodyOK || w.isHead {
		return nil
	}
	for _, s := range body {
		if err := w.writeSection(s); err != nil {
			return err
		}
	}
	return nil
}

func (w *stdWriter) writeSection(s message.Section) error {
	if s.File == nil {
		_, err := w.write(s.Data)
		return err
	}
	sr := io.NewSectionReader(s.File, s.Offset, s.Length)
	bp := sectionBufPool.Get().(*[]byte)
	defer sectionBufPool.Put(bp)
	buf := *bp
	for {
		n, err := sr.Read(buf)
		if n > 0 {
			if _, werr := w.write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sectionBufPool holds the buffers that copy file sections to HTTP/2 and
// HTTP/3 streams, which cannot use sendfile.
var sectionBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// write writes under send_timeout between writes and send_min_rate.
func (w *stdWriter) write(p []byte) (int, error) {
	now := time.Now()
	if w.start.IsZero() {
		w.start = now
	} else if w.minRate > 0 {
		if el := now.Sub(w.start); el > w.idle && float64(w.written) < float64(w.minRate)*el.Seconds() {
			return 0, pace.ErrTooSlow
		}
	}
	if w.idle > 0 {
		w.rc.SetWriteDeadline(now.Add(w.idle))
	}
	n, err := w.rw.Write(p)
	w.written += int64(n)
	return n, err
}

func (w *stdWriter) WriteHead(resp *message.Response) error {
	w.copyHeader(resp)
	if resp.ContentLength < 0 {
		w.rw.Header().Del("Content-Length")
	}
	w.rw.WriteHeader(resp.Status)
	return w.rc.Flush()
}

func (w *stdWriter) Write(p []byte) (int, error) {
	if w.isHead {
		return len(p), nil
	}
	n, err := w.write(p)
	if err != nil {
		return n, err
	}
	return n, w.rc.Flush()
}

func (w *stdWriter) EndStream() error { return nil }

func (w *stdWriter) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, proxy.ErrHijackNotSupported
}

func (w *stdWriter) BytesWritten() int64 { return w.written }
