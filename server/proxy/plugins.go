package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/internal/http1"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/spool"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/upstream"
)

// loadChain compiles the configured plugins into a chain on host. Every
// module is checked and one VM of each started before anything listens, so
// a broken plugin fails start-up (or the reload) with its name.
func (h *Handler) loadChain(ctx context.Context, host *pluginhost.Host, builtins func(string) ([]byte, bool), plugins []config.Plugin) (*pluginhost.Chain, error) {
	specs := make([]pluginhost.PluginSpec, 0, len(plugins))
	for _, p := range plugins {
		var wasm []byte
		if p.Builtin != "" {
			var ok bool
			if builtins != nil {
				wasm, ok = builtins(p.Builtin)
			}
			if !ok {
				return nil, fmt.Errorf("loading plugin %q: no built-in plugin %q in this build", p.Name, p.Builtin)
			}
		} else {
			var err error
			if wasm, err = os.ReadFile(p.Path); err != nil {
				return nil, fmt.Errorf("loading plugin %q: %w", p.Name, err)
			}
		}
		specs = append(specs, pluginhost.PluginSpec{
			Name:             p.Name,
			Wasm:             wasm,
			Configuration:    p.Config,
			VMConfiguration:  p.VMConfig,
			RootID:           p.RootID,
			VMID:             p.VMID,
			PoolSize:         p.PoolSize,
			CallbackTimeout:  p.CallbackTimeout.Std(),
			PauseTimeout:     p.PauseTimeout.Std(),
			MemoryLimitBytes: int64(p.MemoryLimit),
			FailOpen:         p.FailOpen,
			Attachment:       h,
		})
	}
	return host.NewChain(ctx, specs)
}

// requestSeq numbers requests for the plugins' request id (request.id,
// logs) when the client sent no X-Request-Id; the plugin host formats the
// number only when something reads it.
var requestSeq atomic.Uint64

func tlsVersionName(cs *tls.ConnectionState) string {
	if cs == nil {
		return ""
	}
	switch cs.Version {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return ""
}

// startPlugins opens the request's plugin stream and runs
// proxy_on_request_headers. It reports false when the exchange is already
// answered (a local response, or a failed plugin).
func (st *exchangeState) startPlugins() bool {
	h, ex := st.h, st.ex
	info := &pluginhost.StreamInfo{
		ID:          ex.Req.Header.Get("X-Request-Id"),
		Seq:         requestSeq.Add(1),
		Source:      ex.Remote,
		Destination: ex.Local,
		Start:       ex.Start,
		TLSVersion:  tlsVersionName(ex.TLS),
		Attachment:  st,
		RequestHook: st,
	}
	if ex.TLS != nil {
		info.SNI = ex.TLS.ServerName
	}
	st.plugins = h.chain.NewStream(info)
	out := st.plugins.OnRequestHeaders(context.Background(), &ex.Req)
	st.withdrawWait() // a cache wait (wedge_cache_fill) ends with the phase
	return st.pluginOutcome(out, true)
}

// BeforeRequestHeaders implements pluginhost.RequestHook: a fresh stored
// entry the plugin marked is served in its place, and a key it found
// uncacheable is passed without it (fastHit).
//
// A plugin that sends every request to one pool and does nothing else
// (wedge_constant_route) is not called: Wedge sets wedge.upstream for it.
func (st *exchangeState) BeforeRequestHeaders(plugin string) (*pluginhost.LocalResponse, bool) {
	if pool, ok := st.h.constRoutes.Load(plugin); ok {
		st.plugins.SetUpstream(pool.(string))
		return nil, true
	}
	return st.fastHit(plugin)
}

// wedgeConstantRoute implements wedge_constant_route, called by a plugin
// (root context, typically in proxy_on_configure) whose every request
// decision is the same: set wedge.upstream to one pool, and nothing else
// (no other property, no field edit, no local response, no interest in
// the response). From then on Wedge sets wedge.upstream at the plugin's
// place in the chain itself and leaves the plugin out of every request:
// none of its HTTP callbacks runs.
//
//	args:   {"upstream": "<pool>"}
//	result: {}
//
// An unknown pool is refused (INTERNAL_FAILURE), and the plugin keeps
// being called.
func wedgeConstantRoute(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	h, err := callHandler(call)
	if err != nil {
		return nil, err
	}
	var a struct {
		Upstream string `json:"upstream"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, fmt.Errorf("decoding wedge_constant_route arguments: %w", err)
	}
	if _, ok := h.pools[a.Upstream]; !ok {
		return nil, fmt.Errorf("wedge_constant_route: no upstream pool %q", a.Upstream)
	}
	h.constRoutes.Store(call.Plugin, a.Upstream)
	return []byte(`{}`), nil
}

// pluginOutcome acts on a phase's outcome. It reports true when the
// exchange goes on, false when it was answered here: a local response
// (which, from a request phase, still runs the response phases of the
// plugins before the one that answered), or a failure (500).
func (st *exchangeState) pluginOutcome(out pluginhost.Outcome, requestPhase bool) bool {
	switch {
	case out.Err != nil:
		if errors.Is(out.Err, pluginhost.ErrStreamClosed) {
			st.ex.CloseAfter = true
			st.status = 499
			st.errMsg = "plugin closed the stream"
			return false
		}
		st.ex.CloseAfter = st.ex.CloseAfter || requestPhase && st.ex.Body != nil
		st.fail(500, "plugin: "+out.Err.Error())
		return false
	case out.Local != nil:
		st.sendLocal(out.Local, requestPhase)
		return false
	}
	return true
}

// sendLocal answers with a plugin's local response.
func (st *exchangeState) sendLocal(lr *pluginhost.LocalResponse, runResponsePhases bool) {
	if st.ex.Body != nil && st.bodyDone.IsZero() {
		st.ex.CloseAfter = true // the request body is left unread
	}
	resp := &st.resp
	*resp = message.Response{Status: lr.Status, Proto: "HTTP/1.1", Header: lr.Header, ContentLength: int64(len(lr.Body))}
	if !resp.Header.Has("Date") {
		resp.Header.Add("Date", httpDate())
	}
	if len(lr.Body) > 0 && !resp.Header.Has("Content-Type") {
		// As Envoy's local replies: a body the plugin did not type is text.
		resp.Header.Add("Content-Type", "text/plain")
	}
	// A body the cache plugin armed (wedge_cache_serve) goes out from the
	// store, without passing through any guest.
	cached, fromCache := st.takeServe()
	if fromCache = fromCache && len(lr.Body) == 0; fromCache {
		resp.Header.Del("Content-Length")
		if st.ex.Req.Method == "HEAD" {
			resp.Header.Add("Content-Length", strconv.FormatInt(cached.Len(), 10))
		}
	}
	st.errMsg = lr.Details
	st.rbody.Reset(st.h.respSpoolOptions())
	if len(lr.Body) > 0 {
		st.rbody.Write(lr.Body)
	}
	if runResponsePhases {
		if !st.responsePhases(resp) {
			return
		}
	}
	if fromCache {
		resp.ContentLength = cached.Len()
		st.secs = append(st.secs[:0], cached)
	} else {
		st.secs = st.rbody.Sections(st.secs[:0])
	}
	st.writeResponse(resp, st.secs)
}

// requestBodyPhase runs proxy_on_request_body on the buffered body, unless
// the request has none (proxy_on_request_headers told the plugins so with
// end_of_stream).
func (st *exchangeState) requestBodyPhase() bool {
	if st.plugins == nil || !st.h.chain.WantsRequestBody() || st.ex.Req.ContentLength == 0 {
		return true
	}
	return st.pluginOutcome(st.plugins.OnRequestBody(context.Background(), &st.ex.Req, &st.body), true)
}

// responsePhases runs proxy_on_response_headers and, when a plugin wants
// it and there is a body, proxy_on_response_body on the buffered response
// in st.rbody. An X-Accel-Redirect field is visible to the plugins and
// removed afterwards; when a plugin chose a static mount meanwhile
// (wedge.static), the file is served instead (serveAccelIfChosen). It
// reports false when the exchange was answered otherwise (a local
// response or a file replaced the upstream's, or a plugin failed).
func (st *exchangeState) responsePhases(resp *message.Response) bool {
	if st.plugins == nil {
		resp.Header.Del("X-Accel-Redirect")
		return true
	}
	st.compress.buffered = true // the body can still be transformed (wedge_compress_response)
	if !st.pluginOutcome(st.plugins.OnResponseHeaders(context.Background(), resp), false) {
		return false
	}
	if st.h.chain.WantsResponseBody() && resp.ContentLength != 0 && http1.BodyAllowed(resp.Status, st.ex.Req.Method) {
		if !st.pluginOutcome(st.plugins.OnResponseBody(context.Background(), resp, &st.rbody), false) {
			return false
		}
	}
	if resp.Header.Has("X-Accel-Redirect") {
		if st.serveAccelIfChosen(resp) {
			return false
		}
		resp.Header.Del("X-Accel-Redirect")
	}
	return st.afterResponsePhases(resp)
}

// serveStaticIfChosen serves the request from the static mount a plugin
// chose in its request phase (wedge.static, a mount some plugin opened
// with wedge_static_mount, and wedge.static_path, the path inside it). It
// reports whether it answered.
func (st *exchangeState) serveStaticIfChosen() bool {
	me, answered := st.chosenMount()
	if me == nil {
		return answered
	}
	st.serveStatic(me, &st.ex.Req, st.plugins.StaticPath())
	return true
}

// route returns the pool a plugin named in wedge.upstream. Wedge makes no
// routing decision of its own: a request no plugin routed is answered 502
// with an error log line (the chain has no router, or the router's
// configuration sends nothing there), as is a pool that is not configured
// (500: a plugin's mistake).
func (st *exchangeState) route() (*upstream.Pool, bool) {
	var name string
	if st.plugins != nil {
		name = st.plugins.Upstream()
	}
	if name == "" {
		why := "no route: no plugin chose an upstream (wedge.upstream) or a static mount (wedge.static); " +
			"put the built-in router in plugins: (builtin: router)"
		st.h.log.LogAttrs(context.Background(), slog.LevelError, "request not routed",
			slog.String("reason", why), slog.String("method", st.ex.Req.Method), slog.String("uri", st.ex.Req.Target))
		st.errMsg = why
		st.writeError(502, nil)
		return nil, false
	}
	p, ok := st.h.pools[name]
	if !ok {
		st.fail(500, fmt.Sprintf("plugin chose upstream %q, which is not configured", name))
		return nil, false
	}
	return p, true
}

// Dispatch sends a plugin's proxy_http_call to the pool named upstream and
// returns the whole response (at most 16 MiB). It implements
// pluginhost.HTTPDispatcher.
func (h *Handler) Dispatch(ctx context.Context, pool string, req *message.Request, body []byte, timeout time.Duration) (*message.Response, []byte, error) {
	p, ok := h.pools[pool]
	if !ok {
		return nil, nil, fmt.Errorf("dispatching http call: no upstream named %q", pool)
	}
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var triedArr [8]*upstream.Server
	tried := triedArr[:0]
	for attempt := 0; attempt <= p.Tries(); attempt++ {
		uc, err := p.Acquire(ctx, tried)
		if err != nil {
			var de *upstream.DialError
			if errors.As(err, &de) {
				tried = append(tried, de.Server)
				continue
			}
			return nil, nil, fmt.Errorf("dispatching http call to %q: %w", pool, err)
		}
		resp, rb, err := fetch(uc, req, body, deadline)
		if err != nil {
			uc.Fail(err)
			return nil, nil, fmt.Errorf("dispatching http call to %q: %w", pool, err)
		}
		return resp, rb, nil
	}
	return nil, nil, fmt.Errorf("dispatching http call to %q: %w", pool, upstream.ErrNoServer)
}

// HasUpstream reports whether a pool is configured, so proxy_http_call can
// refuse an unknown one at once.
func (h *Handler) HasUpstream(name string) bool { _, ok := h.pools[name]; return ok }

const maxDispatchBody = 16 << 20

// fetch runs one whole exchange on uc for a dispatched call.
func fetch(uc *upstream.Conn, req *message.Request, body []byte, deadline time.Time) (*message.Response, []byte, error) {
	out := *req
	out.Header = out.Header.Clone()
	out.Header.Del("Content-Length")
	out.Header.Del("Transfer-Encoding")
	if len(body) > 0 || methodHasBody(out.Method) {
		out.Header.Add("Content-Length", strconv.Itoa(len(body)))
	}
	if out.Proto == "" {
		out.Proto = "HTTP/1.1"
	}
	uc.Conn.SetDeadline(deadline)
	if err := sendRequest(uc, &out, []message.Section{{Data: body}}, 0); err != nil {
		return nil, nil, err
	}
	resp := new(message.Response)
	var framing http1.Framing
	var err error
	for {
		framing, err = http1.ReadResponse(uc.Reader, upstreamHeadLimits, out.Method, resp)
		if err != nil {
			return nil, nil, err
		}
		if resp.Status >= 200 {
			break
		}
	}
	var rb []byte
	switch framing {
	case http1.Length:
		if resp.ContentLength > maxDispatchBody {
			return nil, nil, errors.New("response body over 16 MiB")
		}
		rb = make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(uc.Reader, rb); err != nil {
			return nil, nil, err
		}
	case http1.Chunked, http1.UntilClose:
		var cr http1.ChunkedReader
		src := io.Reader(uc.Reader)
		if framing == http1.Chunked {
			cr.Reset(uc.Reader, 64<<10)
			src = &cr
		}
		rb, err = io.ReadAll(io.LimitReader(src, maxDispatchBody+1))
		if err != nil {
			return nil, nil, err
		}
		if len(rb) > maxDispatchBody {
			return nil, nil, errors.New("response body over 16 MiB")
		}
	}
	removeHopByHop(&resp.Header, false)
	uc.Conn.SetDeadline(time.Time{})
	uc.Release(framing != http1.UntilClose && http1.KeepAlive(resp.Proto, resp.Header))
	return resp, rb, nil
}

// respSpoolOptions bounds a response body buffer (proxy_buffer_size, then
// a temp file up to proxy_max_temp_file_size).
func (h *Handler) respSpoolOptions() spool.Options {
	return spool.Options{
		MemLimit: int64(h.limits.ProxyBufferSize),
		MaxFile:  int64(h.limits.ProxyMaxTempFileSize),
		Dir:      h.limits.TempPath,
	}
}
