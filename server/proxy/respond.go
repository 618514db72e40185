package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/static"
)

// writeResponse sends a buffered response to the client.
func (st *exchangeState) writeResponse(resp *message.Response, body []message.Section) {
	st.status = resp.Status
	if err := st.ex.W.WriteResponse(resp, body); err != nil {
		st.clientGone(err)
		return
	}
	st.writeDone = time.Now()
}

// clientGone records a failed write to the client: the connection is done.
func (st *exchangeState) clientGone(err error) {
	st.ex.CloseAfter = true
	if st.errMsg == "" {
		st.errMsg = "writing response: " + err.Error()
	}
	if isTimeout(err) {
		st.errMsg = "send_timeout: " + err.Error()
	}
}

// fail answers with Wedge's own error response and records why.
func (st *exchangeState) fail(status int, why string) {
	st.errMsg = why
	st.h.log.LogAttrs(nil, slog.LevelWarn, "request failed",
		slog.Int("status", status), slog.String("reason", why),
		slog.String("method", st.ex.Req.Method), slog.String("uri", st.ex.Req.Target),
		slog.String("remote", st.ex.Remote.String()))
	st.writeError(status, nil)
}

// failRetryAfter answers 503 with Retry-After (RFC 9110 §10.2.3).
func (st *exchangeState) failRetryAfter(status int, why string) {
	st.errMsg = why
	st.h.log.LogAttrs(nil, slog.LevelWarn, "request failed",
		slog.Int("status", status), slog.String("reason", why),
		slog.String("method", st.ex.Req.Method), slog.String("uri", st.ex.Req.Target))
	st.writeError(status, message.Header{{Name: "Retry-After", Value: "5"}})
}

func (st *exchangeState) writeError(status int, extra message.Header) {
	resp := &st.resp
	body := ErrorBody(status)
	*resp = message.Response{
		Status:        status,
		Proto:         "HTTP/1.1",
		ContentLength: int64(len(body)),
		Header: append(resp.Header[:0],
			message.Field{Name: "Content-Type", Value: "text/plain; charset=utf-8"},
			message.Field{Name: "Date", Value: httpDate()},
		),
	}
	resp.Header = append(resp.Header, extra...)
	if status == 408 || status == 413 || status == 400 || status == 431 {
		st.ex.CloseAfter = true
	}
	if st.ex.CloseAfter {
		resp.Header.Add("Connection", "close")
	}
	st.secs = append(st.secs[:0], message.Section{Data: body})
	st.writeResponse(resp, st.secs)
}

// ErrorBody returns the body of Wedge's own error responses: the status
// line as plain text, e.g. "502 Bad Gateway\n".
func ErrorBody(status int) []byte {
	return []byte(strconv.Itoa(status) + " " + http.StatusText(status) + "\n")
}

// serveStatic answers from a static mount.
func (st *exchangeState) serveStatic(m *static.Mount, req *message.Request) {
	if st.ex.Body != nil && req.ContentLength != 0 {
		st.ex.CloseAfter = true // a body on GET/HEAD to a file is not read
	}
	st.sendStatic(m.Serve(req), nil)
}

// serveAccelRedirect answers with the file an upstream named in
// X-Accel-Redirect (nginx's internal redirect), keeping the upstream fields
// that describe the download.
func (st *exchangeState) serveAccelRedirect(m *static.Mount, uri string, up *message.Response) {
	req := st.ex.Req
	req.Target = uri
	if req.Method != "HEAD" {
		req.Method = "GET"
	}
	var keep message.Header
	for _, name := range [...]string{"Content-Disposition", "Set-Cookie", "Cache-Control", "Expires"} {
		for _, v := range up.Header.Values(name) {
			keep.Add(name, v)
		}
	}
	st.upstreamDone = time.Now()
	st.sendStatic(m.Serve(&req), keep)
}

func (st *exchangeState) sendStatic(r *static.Response, extra message.Header) {
	defer r.Close()
	resp := &st.resp
	*resp = message.Response{Status: r.Status, Proto: "HTTP/1.1", Header: r.Header, ContentLength: r.ContentLength}
	for _, f := range extra {
		resp.Header.Set(f.Name, f.Value)
	}
	if !resp.Header.Has("Date") {
		resp.Header.Add("Date", httpDate())
	}
	st.secs = st.secs[:0]
	for _, s := range r.Sections {
		st.secs = append(st.secs, message.Section{Data: s.Data, File: s.File, Offset: s.Offset, Length: s.Length})
	}
	st.writeResponse(resp, st.secs)
}

// finish writes the access-log line and counts the exchange.
func (st *exchangeState) finish() {
	h := st.h
	end := time.Now()
	if st.status == 0 {
		st.status = 499
	}
	if h.metrics != nil {
		h.metrics.observe(st, end)
	}
	if h.access == nil {
		return
	}
	ex := st.ex
	var readClient, upstreamWait, writeClient time.Duration
	if !st.bodyDone.IsZero() {
		readClient = st.bodyDone.Sub(ex.Start)
	}
	if !st.upstreamDone.IsZero() {
		upstreamWait = st.upstreamDone.Sub(st.upstreamStart)
	}
	if !st.writeDone.IsZero() {
		from := st.upstreamDone
		if from.IsZero() {
			from = st.bodyDone
		}
		if from.IsZero() {
			from = ex.Start
		}
		writeClient = st.writeDone.Sub(from)
	}
	attrs := [...]slog.Attr{
		slog.String("remote", ex.Remote.Addr().String()),
		slog.String("method", ex.Req.Method),
		slog.String("uri", ex.Req.Target),
		slog.String("host", ex.Req.Host),
		slog.String("proto", ex.Req.Proto),
		slog.Int("status", st.status),
		slog.Int64("bytes_sent", ex.W.BytesWritten()),
		slog.Int64("request_length", st.reqBytes),
		slog.String("upstream", st.upstreamAddr),
		slog.Int("upstream_status", st.upstreamStatus),
		slog.Float64("read_client_s", readClient.Seconds()),
		slog.Float64("upstream_s", upstreamWait.Seconds()),
		slog.Float64("write_client_s", writeClient.Seconds()),
		slog.Float64("total_s", end.Sub(ex.Start).Seconds()),
		slog.String("error", st.errMsg),
	}
	n := len(attrs)
	if st.errMsg == "" {
		n--
	}
	h.access.LogAttrs(nil, slog.LevelInfo, "access", attrs[:n]...)
}

// httpDate returns the current time as an IMF-fixdate (RFC 9110 §5.6.7),
// recomputed at most once a second.
func httpDate() string {
	now := time.Now().Unix()
	if c := dateCache.Load(); c != nil && c.unix == now {
		return c.s
	}
	c := &cachedDate{unix: now, s: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(c)
	return c.s
}

type cachedDate struct {
	unix int64
	s    string
}

var dateCache atomic.Pointer[cachedDate]

// Refused records a request that a listener refused before it reached the
// pipeline (a malformed or oversized head, a head that did not arrive within
// client_header_timeout): one access-log line and the status counter, as
// for any other request.
func (h *Handler) Refused(remote netip.AddrPort, status int, start time.Time, reason string) {
	now := time.Now()
	if h.metrics != nil {
		h.metrics.count(status)
		h.metrics.duration.Observe(now.Sub(start).Seconds())
	}
	if h.access == nil {
		return
	}
	h.access.LogAttrs(context.Background(), slog.LevelInfo, "access",
		slog.String("remote", remote.Addr().String()),
		slog.Int("status", status),
		slog.Float64("total_s", now.Sub(start).Seconds()),
		slog.String("error", reason))
}
