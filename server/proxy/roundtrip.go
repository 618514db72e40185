package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/http1"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/pace"
	"github.com/wedgeproxy/wedge/server/internal/spool"
	"github.com/wedgeproxy/wedge/server/upstream"
)

// upstreamHeadLimits bounds an upstream's response head.
var upstreamHeadLimits = http1.HeadLimits{MaxLine: 64 << 10, MaxHead: 256 << 10}

var headBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// errUpstreamTimeout marks a failure that gets 504 rather than 502.
var errUpstreamTimeout = errors.New("upstream timed out")

// roundTrip sends the buffered request to pool, retrying on another server
// when a connection cannot be made (nothing was sent, so any method is safe)
// or when a reused keep-alive connection turns out closed before any byte
// of the response (idempotent methods only, as net/http does), then buffers
// the response and writes it to the client.
func (st *exchangeState) roundTrip(pool *upstream.Pool) {
	var triedArr [8]*upstream.Server
	tried := triedArr[:0]
	ctx := context.Background()
	req := &st.ex.Req
	st.upstreamStart = time.Now()
	var lastErr error
	for attempt := 0; attempt < max(pool.Tries(), 1)+1; attempt++ {
		uc, err := pool.Acquire(ctx, tried)
		if err != nil {
			var de *upstream.DialError
			switch {
			case errors.As(err, &de):
				lastErr = err
				st.upstreamAddr = de.Server.Addr()
				tried = append(tried, de.Server)
				continue
			case errors.Is(err, upstream.ErrQueueFull), errors.Is(err, upstream.ErrQueueTimeout):
				st.failRetryAfter(503, "upstream "+pool.Name()+": "+err.Error())
				return
			}
			if lastErr == nil {
				lastErr = err
			}
			break
		}
		st.upstreamAddr = uc.Server.Addr()
		if st.plugins != nil {
			st.plugins.SetUpstreamAddress(st.upstreamAddr)
		}
		retry, err := st.exchange(uc, req)
		if err == nil {
			return
		}
		lastErr = err
		if retry && isIdempotent(req.Method) {
			continue
		}
		break
	}
	if st.serveFallback() { // stale-if-error (wedge_cache_fallback)
		st.errMsg = "upstream " + pool.Name() + ": " + errString(lastErr) + "; served stale from the cache"
		return
	}
	var de *upstream.DialError
	if errors.Is(lastErr, errUpstreamTimeout) || (errors.As(lastErr, &de) && de.Timeout()) {
		st.fail(504, "upstream "+pool.Name()+": "+errString(lastErr))
		return
	}
	st.fail(502, "upstream "+pool.Name()+": "+errString(lastErr))
}

func errString(err error) string {
	if err == nil {
		return "no server available"
	}
	return err.Error()
}

// exchange runs one request/response on uc. It returns retry=true when the
// failure happened on a reused connection before any byte of the response
// came back (the upstream had closed it while idle). On success the
// response has been written to the client.
func (st *exchangeState) exchange(uc *upstream.Conn, req *message.Request) (retry bool, err error) {
	lim := &st.h.limits
	if err := st.writeRequest(uc, req); err != nil {
		uc.Fail(err)
		return uc.Reused, err
	}
	br := uc.Reader
	resp := &st.resp
	var framing http1.Framing
	for {
		uc.Conn.SetReadDeadline(time.Now().Add(lim.ProxyReadTimeout.Std()))
		framing, err = http1.ReadResponse(br, upstreamHeadLimits, req.Method, resp)
		if err != nil {
			uc.Fail(err)
			if isTimeout(err) {
				return false, errUpstreamTimeout
			}
			if uc.Reused && (errors.Is(err, io.EOF) || isConnReset(err)) {
				return true, err
			}
			return false, err
		}
		if resp.Status >= 200 || resp.Status == 101 {
			break
		}
		// 1xx interim responses (100 Continue, 103 Early Hints) are not relayed:
		// Wedge answered Expect itself and the client gets one final response.
	}
	st.upstreamStatus = resp.Status
	reusable := framing != http1.UntilClose && !resp.Header.HasToken("Connection", "close") &&
		resp.Proto == "HTTP/1.1"
	body := st.bodyReader(uc, framing)
	streaming := wantsStreaming(resp) // before prepareResponse drops X-Accel-Buffering
	prepareResponse(resp, st.h.serverName)
	if streaming {
		resp.Header.Del("X-Accel-Redirect") // a stream is relayed as it comes: no file in its place
		st.upstreamDone = time.Now()
		if st.plugins != nil && !st.pluginOutcome(st.plugins.OnResponseHeaders(context.Background(), resp), false) {
			uc.Release(false)
			return false, nil
		}
		st.stream(resp, body, nil)
		uc.Release(reusable && st.streamOK)
		return false, nil
	}
	st.rbody.Reset(st.h.respSpoolOptions())
	if body != nil {
		if _, err := st.rbody.ReadFrom(body); err != nil {
			if errors.Is(err, spool.ErrTooLarge) {
				// past proxy_max_temp_file_size: relay the rest as it comes (nginx does the same)
				st.upstreamDone = time.Now()
				st.stream(resp, body, &st.rbody)
				uc.Release(reusable && st.streamOK)
				return false, nil
			}
			uc.Fail(err)
			if isTimeout(err) {
				return false, errUpstreamTimeout
			}
			return false, err
		}
	}
	// The whole response is here: free the upstream before the client is written to.
	uc.Release(reusable)
	if body != nil {
		resp.ContentLength = st.rbody.Len() // known now even if it came chunked (response.size)
	}
	st.upstreamDone = time.Now()
	st.status = resp.Status
	if !st.responsePhases(resp) {
		return false, nil
	}
	st.secs = st.rbody.Sections(st.secs[:0])
	st.writeResponse(resp, st.secs)
	return false, nil
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// writeRequest sends the request head and buffered body.
func (st *exchangeState) writeRequest(uc *upstream.Conn, req *message.Request) error {
	var arr [8]message.Section
	return sendRequest(uc, req, st.body.Sections(arr[:0]), st.h.limits.ProxySendTimeout.Std())
}

// sendRequest writes req's head and body to uc in one vectored write (or
// sendfile for a spilled body), with idle as the longest wait between two
// writes that make progress (proxy_send_timeout; 0: the conn's deadline).
func sendRequest(uc *upstream.Conn, req *message.Request, body []message.Section, idle time.Duration) error {
	bp := headBufPool.Get().(*[]byte)
	head := http1.AppendRequestHead((*bp)[:0], req)
	var w pace.Writer
	w.Reset(uc.Conn, idle, 0)
	_, err := w.WriteSections(head, body)
	*bp = head[:0]
	headBufPool.Put(bp)
	return err
}

// bodyReader returns the response body as a reader bounded by
// proxy_read_timeout between reads, or nil when there is none.
func (st *exchangeState) bodyReader(uc *upstream.Conn, framing http1.Framing) io.Reader {
	var src io.Reader
	switch framing {
	case http1.NoBody:
		return nil
	case http1.Length:
		if st.resp.ContentLength == 0 {
			return nil
		}
		src = &exactReader{r: uc.Reader, n: st.resp.ContentLength}
	case http1.Chunked:
		cr := new(http1.ChunkedReader)
		cr.Reset(uc.Reader, 64<<10)
		src = cr
	default:
		src = uc.Reader
	}
	pr := new(pace.Reader)
	pr.Reset(uc.Conn.SetReadDeadline, src, st.h.limits.ProxyReadTimeout.Std(), 0)
	return pr
}

// exactReader reads exactly n bytes, failing with io.ErrUnexpectedEOF if
// the upstream closes early (a truncated response must not look complete).
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	if e.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// prepareResponse turns the upstream's response head into the client's:
// hop-by-hop fields out, Via in, Date added where missing (RFC 9110 §6.6.1).
// X-Accel-Redirect stays for the response phases (responsePhases removes
// it).
func prepareResponse(resp *message.Response, pseudonym string) {
	removeHopByHop(&resp.Header, resp.Status == 101)
	resp.Header.Del("X-Accel-Buffering")
	if !resp.Header.Has("Date") {
		resp.Header.Add("Date", httpDate())
	}
	addVia(&resp.Header, resp.Proto, pseudonym)
}

// wantsStreaming reports whether a response is relayed as it comes instead
// of buffered: the upstream asked for it (nginx's X-Accel-Buffering: no) or
// it is a server-sent event stream.
func wantsStreaming(resp *message.Response) bool {
	if v, ok := resp.Header.Lookup("X-Accel-Buffering"); ok && strings.EqualFold(strings.TrimSpace(v), "no") {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	return len(ct) >= 17 && strings.EqualFold(ct[:17], "text/event-stream")
}

// stream relays a response as it arrives: the head at once, then each read
// flushed to the client. prefix holds bytes already buffered (the part that
// fit before proxy_max_temp_file_size was reached).
func (st *exchangeState) stream(resp *message.Response, body io.Reader, prefix *spool.Spool) {
	st.status = resp.Status
	// Content-Length (if any) was removed with the framing; the length is
	// known only when the upstream declared it.
	if resp.ContentLength >= 0 && body != nil {
		resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	} else {
		resp.ContentLength = -1
	}
	w := st.ex.W
	if err := w.WriteHead(resp); err != nil {
		st.clientGone(err)
		return
	}
	if prefix != nil && prefix.Len() > 0 {
		for _, s := range prefix.Sections(nil) {
			if err := writeSection(w, s); err != nil {
				st.clientGone(err)
				return
			}
		}
	}
	if body != nil {
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		for {
			n, err := body.Read(*bp)
			if n > 0 {
				if _, werr := w.Write((*bp)[:n]); werr != nil {
					st.clientGone(werr)
					return
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				st.errMsg = "streaming from upstream: " + err.Error()
				st.ex.CloseAfter = true
				return
			}
		}
	}
	if err := w.EndStream(); err != nil {
		st.clientGone(err)
		return
	}
	st.streamOK = true
	st.writeDone = time.Now()
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func writeSection(w ResponseWriter, s message.Section) error {
	if s.File == nil {
		_, err := w.Write(s.Data)
		return err
	}
	_, err := io.Copy(writerOnly{w}, io.NewSectionReader(s.File, s.Offset, s.Length))
	return err
}

type writerOnly struct{ io.Writer }

// serveUpgrade tunnels a protocol upgrade (WebSocket, RFC 6455 §4; RFC 9110
// §7.8): the handshake goes to the upstream, and after a 101 both
// connections are spliced together until either side closes.
func (st *exchangeState) serveUpgrade(pool *upstream.Pool) {
	h, ex := st.h, st.ex
	req := &ex.Req
	if ex.Body != nil && req.ContentLength != 0 {
		st.fail(400, "upgrade request with a body")
		return
	}
	upg := req.Header.Get("Upgrade")
	removeHopByHop(&req.Header, true)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upg)
	setForwarded(req, ex.Remote.Addr(), h.trusted.contains(ex.Remote.Addr()))
	addVia(&req.Header, req.Proto, h.serverName)
	st.upstreamStart = time.Now()
	uc, err := pool.Acquire(context.Background(), nil)
	if err != nil {
		st.fail(502, "upstream "+pool.Name()+": "+err.Error())
		return
	}
	st.upstreamAddr = uc.Server.Addr()
	if err := st.writeRequest(uc, req); err != nil {
		uc.Fail(err)
		st.fail(502, "upstream "+pool.Name()+": "+err.Error())
		return
	}
	uc.Conn.SetReadDeadline(time.Now().Add(h.limits.ProxyReadTimeout.Std()))
	resp := &st.resp
	framing, err := http1.ReadResponse(uc.Reader, upstreamHeadLimits, req.Method, resp)
	if err != nil {
		uc.Fail(err)
		if isTimeout(err) {
			st.fail(504, "upstream "+pool.Name()+": "+err.Error())
		} else {
			st.fail(502, "upstream "+pool.Name()+": "+err.Error())
		}
		return
	}
	st.upstreamStatus = resp.Status
	if resp.Status != 101 {
		// refused: an ordinary response, buffered as usual
		st.rbody.Reset(h.respSpoolOptions())
		if body := st.bodyReader(uc, framing); body != nil {
			if _, err := st.rbody.ReadFrom(body); err != nil {
				uc.Fail(err)
				st.fail(502, "upstream "+pool.Name()+": "+err.Error())
				return
			}
		}
		uc.Release(false)
		st.upstreamDone = time.Now()
		prepareResponse(resp, h.serverName)
		st.status = resp.Status
		ex.CloseAfter = true
		st.writeResponse(resp, st.rbody.Sections(st.secs[:0]))
		return
	}
	st.upstreamDone = time.Now()
	prepareResponse(resp, h.serverName)
	st.status = 101
	resp.ContentLength = 0
	if err := ex.W.WriteHead(resp); err != nil {
		uc.Release(false)
		st.clientGone(err)
		return
	}
	cc, cbr, err := ex.W.Hijack()
	if err != nil {
		uc.Release(false)
		st.errMsg = "hijacking client connection: " + err.Error()
		return
	}
	ex.CloseAfter = true
	tunnel(cc, cbr, uc.Conn, uc.Reader)
	uc.Release(false)
	st.writeDone = time.Now()
}

// tunnel copies bytes both ways until either side closes, then closes both.
func tunnel(client net.Conn, cbr *bufio.Reader, up net.Conn, ubr *bufio.Reader) {
	client.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, cbr)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(client, ubr)
		if cw, ok := client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	// give the other direction a moment to drain its half-close, then cut
	t := time.AfterFunc(5*time.Second, func() { client.Close(); up.Close() })
	<-done
	t.Stop()
	client.Close()
	up.Close()
}
