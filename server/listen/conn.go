package listen

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/internal/http1"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/pace"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// readerSize is the size of a connection's read buffer, in bytes. Longer
// head lines are still read (up to large_client_header_buffers): the parser
// collects them across buffer refills.
const readerSize = 4 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// h2Preface is the HTTP/2 connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// connection states, for Shutdown
const (
	stateIdle   = iota // waiting for a request's first byte
	stateActive        // reading a request or serving it
)

// conn is one client connection speaking HTTP/1.1 (or HTTP/2 once it
// turns out to), in cleartext or over TLS.
type conn struct {
	srv *Server
	nc  net.Conn // tls when over TLS, else the accepted connection
	tls *tls.Conn
	// tlsState is the handshake's result, which every request on the
	// connection points to (Exchange.TLS)
	tlsState tls.ConnectionState
	remote   netip.AddrPort
	local    netip.AddrPort
	state    atomic.Int32
	br       *bufio.Reader
	linger   bool                        // the client may still be sending: close with lingerClose
	h2base   atomic.Pointer[http.Server] // set while the connection speaks HTTP/2

	ex   proxy.Exchange
	w    h1Writer
	body bodyReader
}

// wakeIfIdle makes an idle connection's pending read return at once, so it
// closes (used by Shutdown).
func (c *conn) wakeIfIdle() {
	if c.state.Load() == stateIdle {
		c.nc.SetReadDeadline(time.Now())
	}
}

func (c *conn) serve() {
	defer c.srv.release(c)
	if c.tls != nil {
		if !c.handshake() {
			c.nc.Close()
			return
		}
		if c.tlsState.NegotiatedProtocol == alpnH2 {
			c.state.Store(stateActive) // Shutdown sends GOAWAY instead of cutting reads
			c.serveH2TLS(c.srv.current.Load())
			c.nc.Close()
			return
		}
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.nc)
	hijacked := c.loop()
	if !hijacked {
		if c.linger {
			lingerClose(c.nc)
		} else {
			c.nc.Close()
		}
	}
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
}

// loop serves requests until the connection is done. It reports whether
// the connection was handed over (upgrade), in which case it is not closed
// here.
func (c *conn) loop() (hijacked bool) {
	for served := 0; ; served++ {
		g := c.srv.current.Load()
		lim := &g.limits
		idle := lim.KeepaliveTimeout.Std()
		if served == 0 {
			idle = lim.ClientHeaderTimeout.Std()
		}
		c.state.Store(stateIdle)
		if c.srv.shutting.Load() {
			return false
		}
		c.nc.SetReadDeadline(time.Now().Add(idle))
		first, err := c.br.Peek(1)
		if err != nil {
			return false // idle timeout, shutdown or the client closed: nothing to answer
		}
		c.state.Store(stateActive)
		start := time.Now()
		c.nc.SetReadDeadline(start.Add(lim.ClientHeaderTimeout.Std()))
		// over TLS, HTTP/2 is chosen by ALPN only (RFC 9113 §3.3)
		if served == 0 && first[0] == 'P' && c.tls == nil && c.mayBeH2Preface() {
			if p, err := c.br.Peek(len(h2Preface)); err == nil && string(p) == h2Preface {
				c.serveH2(g)
				return false
			}
		}
		// re-read the generation: a reload may have happened while idle
		g = c.srv.current.Load()
		lim = &g.limits
		ex := &c.ex
		hdr := ex.Req.Header[:0]
		*ex = proxy.Exchange{Req: message.Request{Header: hdr}}
		bufs := lim.LargeClientHeaderBuffers
		framing, err := http1.ReadRequest(c.br, http1.HeadLimits{MaxLine: int(bufs.Size), MaxHead: bufs.Number * int(bufs.Size)}, &ex.Req)
		if err != nil {
			c.refuse(err, start)
			return false
		}
		ex.Req.Scheme = "http"
		if c.tls != nil {
			ex.Req.Scheme = "https"
			ex.TLS = &c.tlsState
		}
		ex.Remote, ex.Local, ex.Start = c.remote, c.local, start
		keepAlive := http1.KeepAlive(ex.Req.Proto, ex.Req.Header) && served+1 < lim.KeepaliveRequests
		c.body.reset(c, framing, &ex.Req, lim)
		if framing != http1.NoBody && ex.Req.ContentLength != 0 {
			ex.Body = &c.body
		}
		c.w.reset(c, ex, lim, keepAlive)
		ex.W = &c.w
		c.srv.serveExchange(ex)
		if c.w.hijacked {
			return true
		}
		if ex.CloseAfter || !c.w.keepAlive || c.w.failed || !c.body.finished() {
			c.linger = !c.body.finished() && !c.w.failed
			return false
		}
	}
}

// mayBeH2Preface reports whether the bytes that have arrived start like
// the HTTP/2 preface. It waits for the first 3 bytes only ("PRI" is no
// HTTP/1.1 method in use), so a complete HTTP/1.1 request shorter than the
// 24-byte preface, such as "POST / HTTP/1.0\r\n\r\n", is not held until
// client_header_timeout waiting for bytes that never come.
func (c *conn) mayBeH2Preface() bool {
	p, err := c.br.Peek(3)
	return err == nil && string(p) == h2Preface[:3]
}

// refuse answers a request whose head could not be read: 408 for a
// timeout, the parser's status for a malformed head, nothing when the
// client went away.
func (c *conn) refuse(err error, start time.Time) {
	var pe *http1.Error
	status := 0
	switch {
	case errors.As(err, &pe):
		status = pe.Status
	case isTimeout(err):
		if c.srv.shutting.Load() {
			return
		}
		status = 408
	default:
		return // EOF or reset
	}
	c.srv.log.Warn("refused request", "status", status, "remote", c.remote.String(), "err", err.Error())
	body := proxy.ErrorBody(status)
	resp := message.Response{Status: status, Header: message.Header{
		{Name: "Content-Type", Value: "text/plain; charset=utf-8"},
		{Name: "Content-Length", Value: strconv.Itoa(len(body))},
		{Name: "Connection", Value: "close"},
	}}
	head := http1.AppendResponseHead(nil, resp.Status, "", resp.Header)
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(append(head, body...)); err == nil {
		c.linger = true // the rest of the request may still be coming
	}
	c.srv.current.Load().h.Refused(c.remote, status, start, err.Error())
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// bodyReader delivers an HTTP/1.1 request body, de-chunked, under
// client_body_timeout and client_body_min_rate, and sends "100 Continue"
// before its first read when the client asked for it (RFC 9110 §10.1.1).
type bodyReader struct {
	c        *conn
	framing  http1.Framing
	left     int64 // Length framing: bytes still to read
	chunked  http1.ChunkedReader
	paced    pace.Reader
	cont     bool // 100 Continue still to send
	eof      bool
	minRate  int64
	idle     time.Duration
	src      io.Reader
	pacedSet bool
}

func (b *bodyReader) reset(c *conn, framing http1.Framing, req *message.Request, lim *config.Limits) {
	b.c, b.framing, b.eof, b.pacedSet = c, framing, false, false
	b.cont = req.Proto == "HTTP/1.1" && req.Header.HasToken("Expect", "100-continue")
	b.idle, b.minRate = lim.ClientBodyTimeout.Std(), int64(lim.ClientBodyMinRate)
	switch framing {
	case http1.Length:
		b.left = req.ContentLength
		b.eof = b.left == 0
		b.src = lengthReader{b}
	case http1.Chunked:
		b.chunked.Reset(c.br, 64<<10)
		b.src = &b.chunked
	default:
		b.eof = true
		b.src = nil
	}
}

type lengthReader struct{ b *bodyReader }

func (l lengthReader) Read(p []byte) (int, error) {
	b := l.b
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.c.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.cont {
		b.cont = false
		b.c.nc.SetWriteDeadline(time.Now().Add(b.idle))
		if _, err := b.c.nc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
			return 0, err
		}
	}
	if !b.pacedSet {
		b.paced.Reset(b.c.nc.SetReadDeadline, b.src, b.idle, b.minRate)
		b.pacedSet = true
	}
	n, err := b.paced.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// finished reports whether the body was read to its end, so the next
// request on the connection starts where this one ended. A body nobody
// asked for (e.g. a 100-continue request that got a final status first)
// leaves the connection unusable.
func (b *bodyReader) finished() bool {
	if b.eof {
		return true
	}
	if b.framing == http1.Length && b.left == 0 {
		return true
	}
	return false
}

// h1Writer writes responses on an HTTP/1.1 connection.
type h1Writer struct {
	c         *conn
	ex        *proxy.Exchange
	pw        pace.Writer
	head      []byte
	keepAlive bool
	isHead    bool
	http10    bool
	chunked   bool
	hijacked  bool
	failed    bool
	written   int64
}

func (w *h1Writer) reset(c *conn, ex *proxy.Exchange, lim *config.Limits, keepAlive bool) {
	head := w.head[:0]
	*w = h1Writer{c: c, ex: ex, head: head, keepAlive: keepAlive,
		isHead: ex.Req.Method == "HEAD", http10: ex.Req.Proto == "HTTP/1.0"}
	w.pw.Reset(c.nc, lim.SendTimeout.Std(), int64(lim.SendMinRate))
	if c.tls != nil {
		w.pw.MaxWrite = tlsMaxWrite
	}
}

// appendHead makes w.head the head of resp, with the fields added to
// every response over TLS (Strict-Transport-Security, Alt-Svc).
func (w *h1Writer) appendHead(resp *message.Response) {
	w.head = http1.AppendResponseHead(w.head[:0], resp.Status, resp.Reason, resp.Header)
	if w.c.tls != nil && resp.Status >= 200 {
		w.head = w.c.srv.tlsFields.Load().appendH1(w.head, resp.Header)
	}
}

// connectionField sets Connection for the keep-alive decision made now.
func (w *h1Writer) connectionField(h *message.Header) {
	if w.ex.CloseAfter || w.c.srv.shutting.Load() {
		w.keepAlive = false
	}
	if !w.keepAlive {
		if !h.HasToken("Connection", "close") {
			h.Set("Connection", "close")
		}
	} else if w.http10 {
		h.Set("Connection", "keep-alive")
	}
}

func (w *h1Writer) WriteResponse(resp *message.Response, body []message.Section) error {
	if http1.BodyAllowed(resp.Status, "") {
		var n int64
		for _, s := range body {
			n += s.Len()
		}
		// A response to HEAD keeps the Content-Length it came with (the
		// upstream's or the static file's, RFC 9110 §9.3.2) unless Wedge
		// made the body itself (an error page).
		if !w.isHead || n > 0 {
			resp.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		}
		if w.isHead {
			body = nil
		}
	} else {
		body = nil
	}
	w.connectionField(&resp.Header)
	w.appendHead(resp)
	n, err := w.pw.WriteSections(w.head, body)
	w.written += max(0, n-int64(len(w.head)))
	if err != nil {
		w.failed = true
	}
	return err
}

func (w *h1Writer) WriteHead(resp *message.Response) error {
	if resp.Status == 101 {
		w.head = http1.AppendResponseHead(w.head[:0], resp.Status, resp.Reason, resp.Header)
		_, err := w.pw.Write(w.head)
		if err != nil {
			w.failed = true
		}
		return err
	}
	if http1.BodyAllowed(resp.Status, "") && !w.isHead && resp.ContentLength < 0 {
		if w.http10 {
			w.keepAlive = false // the end of the body is the end of the connection
		} else {
			resp.Header.Set("Transfer-Encoding", "chunked")
			w.chunked = true
		}
	}
	w.connectionField(&resp.Header)
	w.appendHead(resp)
	_, err := w.pw.Write(w.head)
	if err != nil {
		w.failed = true
	}
	return err
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if w.isHead || len(p) == 0 {
		return len(p), nil
	}
	var err error
	if w.chunked {
		var sz [18]byte
		hdr := strconv.AppendInt(sz[:0], int64(len(p)), 16)
		hdr = append(hdr, '\r', '\n')
		bufs := net.Buffers{hdr, p, crlf}
		_, err = w.pw.WriteBuffers(&bufs)
	} else {
		_, err = w.pw.Write(p)
	}
	if err != nil {
		w.failed = true
		return 0, err
	}
	w.written += int64(len(p))
	return len(p), nil
}

var crlf = []byte("\r\n")

func (w *h1Writer) EndStream() error {
	if !w.chunked {
		return nil
	}
	_, err := w.pw.Write([]byte("0\r\n\r\n"))
	if err != nil {
		w.failed = true
	}
	return err
}

func (w *h1Writer) Hijack() (net.Conn, *bufio.Reader, error) {
	w.hijacked = true
	// hand over a reader of its own: the pooled one goes back to the pool
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(peekAll(w.c.br)), w.c.nc))
	return w.c.nc, br, nil
}

func peekAll(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return append([]byte(nil), b...)
}

func (w *h1Writer) BytesWritten() int64 { return w.written }

// Lingering close, nginx's lingering_time and lingering_timeout: after a
// response to a request whose body (or rest) was not read, the write side
// is shut down and what the client still sends is read and dropped for a
// while, so the client reads the response instead of a reset (a close
// with unread data makes the kernel send RST, which can destroy the
// response in flight).
const (
	lingeringTime    = 30 * time.Second
	lingeringTimeout = 5 * time.Second
)

func lingerClose(nc net.Conn) {
	defer nc.Close()
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	bp := discardPool.Get().(*[]byte)
	defer discardPool.Put(bp)
	end := time.Now().Add(lingeringTime)
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		d := now.Add(lingeringTimeout)
		if d.After(end) {
			d = end
		}
		nc.SetReadDeadline(d)
		if _, err := nc.Read(*bp); err != nil {
			return
		}
	}
}

var discardPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
