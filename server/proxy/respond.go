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
