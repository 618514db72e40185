// Package proxy is Wedge's buffering pipeline: for each exchange a
// listener hands it, it reads the whole request body (memory, then a temp
// file) within client_body_timeout and client_max_body_size, forwards the
// request to an upstream pool over HTTP/1.1, reads the whole response at the
// upstream's speed, frees the upstream connection, and only then writes the
// response to the client at the client's speed.
//
// It makes no routing decision: plugins do (the built-in router). A
// plugin names the pool with the wedge.upstream property, or a static
// mount (opened through the wedge_static_mount host call) with
// wedge.static and wedge.static_path, which the pipeline then serves from
// disk without the upstream, also in place of an upstream response that
// carried X-Accel-Redirect when a plugin chose a mount in its response
// phase. A request no plugin routed gets 502 and an error log line.
//
// It follows the shape of net/http/httputil.ReverseProxy (hop-by-hop
// fields stripped per RFC 9110 §7.6.1, X-Forwarded-* set, 502 on upstream
// errors) with nginx's buffering and limits.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/spool"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/upstream"
)

// Options are what a Handler needs besides the configuration.
type Options struct {
	// Logger receives the error log. Nil discards it.
	Logger *slog.Logger
	// AccessLog receives one JSON line per exchange. Nil turns it off.
	AccessLog *slog.Logger
	// Metrics receives the request counters. Nil turns them off.
	Metrics *Metrics
	// Plugins is the process's plugin host, on which the configured chain
	// is loaded. Nil: a configuration with plugins is refused.
	Plugins *pluginhost.Host
	// Builtins returns the .wasm of a built-in plugin (config.Plugin's
	// Builtin: "router", "cache", "compress"), false when this build has
	// none by that name. Nil: a configuration using one is refused. The
	// wedge binary passes plugins.Builtin.
	Builtins func(name string) ([]byte, bool)
	// Cache is the process's cache store for the cache plugin's
	// wedge_cache_* calls (NewCache). Nil: those calls fail.
	Cache *Cache
}

// Handler runs the pipeline for one configuration. A reload builds a new
// Handler beside the old one; the old one is closed once its exchanges are
// done.
type Handler struct {
	limits     config.Limits
	pools      map[string]*upstream.Pool
	chain      *pluginhost.Chain // nil without plugins
	mounts     mountTable        // static mounts plugins opened (wedge_static_mount)
	baseDir    string            // a mount's relative root is relative to it: the config file's directory
	trusted    trustedSet
	serverName string
	log        *slog.Logger
	access     *slog.Logger
	metrics    *Metrics
	cache      *Cache // nil without a cache store
	// constRoutes maps a plugin to the pool it sends every request to,
	// doing nothing else (wedge_constant_route): Wedge sets wedge.upstream
	// in its place without calling it.
	constRoutes sync.Map // plugin name -> pool

	// active counts the exchanges in flight, with closedBit set once
	// Close has begun; drained is closed when it reaches closedBit alone.
	active  atomic.Int64
	drained chan struct{}
}

// closedBit marks Handler.active once the handler is closed.
const closedBit = 1 << 62

// New builds a Handler from a validated configuration: it creates the
// upstream pools (no connection is made yet) and loads the plugin chain,
// whose configure step opens the static mounts plugins ask for.
func New(cfg *config.Config, opt Options) (*Handler, error) {
	h := &Handler{
		limits:     cfg.Limits,
		pools:      make(map[string]*upstream.Pool, len(cfg.Upstreams)),
		serverName: cfg.ServerName,
		log:        opt.Logger,
		access:     opt.AccessLog,
		metrics:    opt.Metrics,
		cache:      opt.Cache,
		drained:    make(chan struct{}),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.serverName == "" {
		h.serverName = "wedge"
	}
	for _, s := range cfg.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("parsing trusted_proxies: %w", err)
		}
		h.trusted = append(h.trusted, p)
	}
	if cfg.File != "" {
		h.baseDir = filepath.Dir(cfg.File)
	}
	for name, u := range cfg.Upstreams {
		p, err := upstream.NewPool(name, u, upstream.Options{ConnectTimeout: cfg.Limits.ProxyConnectTimeout.Std()})
		if err != nil {
			h.closePools()
			return nil, fmt.Errorf("creating upstream %q: %w", name, err)
		}
		h.pools[name] = p
	}
	if len(cfg.Plugins) > 0 {
		if opt.Plugins == nil {
			h.closePools()
			return nil, errors.New("loading plugins: no plugin host")
		}
		chain, err := h.loadChain(context.Background(), opt.Plugins, opt.Builtins, cfg.Plugins)
		if err != nil {
			h.closePools()
			return nil, err
		}
		h.chain = chain
	}
	return h, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Pools returns the upstream pools by name, for metrics.
func (h *Handler) Pools() map[string]*upstream.Pool { return h.pools }

// Close refuses new exchanges (TryServe returns false from now on), waits
// until the exchanges in flight are done or ctx ends, then closes the
// upstream pools. It returns ctx's error when ctx ended first.
func (h *Handler) Close(ctx context.Context) error {
	if old := h.active.Or(closedBit); old == 0 {
		close(h.drained) // nothing in flight; a second Close finds the bit set
	}
	var err error
	select {
	case <-h.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	h.closePools()
	return err
}

// closePools closes what the handler owns: its upstream pools, static
// mounts and plugin chain.
func (h *Handler) closePools() {
	if h.chain != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h.chain.Close(ctx)
		cancel()
	}
	for _, p := range h.pools {
		p.Close()
	}
	h.mounts.close()
}

// exchangeState is the per-exchange scratch space, pooled.
type exchangeState struct {
	h      *Handler
	ex     *Exchange
	body   spool.Spool // request body
	rbody  spool.Spool // response body
	resp   message.Response
	secs   []message.Section
	status int
	// times for the access log
	bodyDone, upstreamStart, upstreamDone, writeDone time.Time
	upstreamAddr                                     string
	upstreamStatus                                   int
	errMsg                                           string
	reqBytes                                         int64
	streamOK                                         bool
	plugins                                          *pluginhost.Stream // nil without plugins
	cache                                            cacheState         // wedge_cache_* (cache.go)
	compress                                         compressState      // wedge_compress_response
}

var statePool = sync.Pool{New: func() any { return new(exchangeState) }}

// Serve runs one exchange to its end: the response is written (or the
// client is gone) when it returns. On a closed Handler it answers 503
// (RFC 9110 §15.6.4) with Retry-After; a listener that may hold a replaced
// Handler calls TryServe instead.
func (h *Handler) Serve(ex *Exchange) {
	if !h.TryServe(ex) {
		st := statePool.Get().(*exchangeState)
		st.h, st.ex = h, ex
		st.failRetryAfter(503, "server shutting down")
		h.release(st)
	}
}

// TryServe runs ex like Serve and returns true, unless h is closed, in
// which case it returns false at once without touching ex, so the caller
// can hand ex to the Handler that replaced h (a reload). Counting the
// exchange and checking for Close is one atomic step, so Close never frees
// the upstream pools under an exchange that has started.
func (h *Handler) TryServe(ex *Exchange) bool {
	if !h.enter() {
		return false
	}
	defer h.leave()
	st := statePool.Get().(*exchangeState)
	st.h, st.ex = h, ex
	st.serve()
	h.release(st)
	return true
}

// enter counts an exchange (or a background task, such as a cache
// refresh) of h, so Close waits for it before closing the pools; it
// reports false on a closed Handler.
func (h *Handler) enter() bool {
	for {
		n := h.active.Load()
		if n&closedBit != 0 {
			return false
		}
		if h.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// leave ends what enter began.
func (h *Handler) leave() {
	if h.active.Add(-1) == closedBit {
		close(h.drained) // the last exchange of a closed handler
	}
}

// release logs and counts a finished exchange and pools its state.
func (h *Handler) release(st *exchangeState) {
	st.cacheRelease() // before Finish recycles the stream a fill may wake
	if st.plugins != nil {
		st.plugins.Finish(context.Background()) // proxy_on_log, proxy_on_done, proxy_on_delete
	}
	st.finish()
	st.body.Close()
	st.rbody.Close()
	clear(st.secs)
	secs := st.secs[:0]
	*st = exchangeState{secs: secs}
	statePool.Put(st)
}

func (st *exchangeState) serve() {
	h, ex := st.h, st.ex
	req := &ex.Req
	if h.chain != nil && !st.startPlugins() {
		return
	}
	if st.serveStaticIfChosen() {
		return
	}
	if isUpgrade(req) {
		if pool, ok := st.route(); ok {
			st.serveUpgrade(pool)
		}
		return
	}
	if !st.readBody() || !st.requestBodyPhase() {
		return
	}
	// wedge.upstream is read after the body phase, so a plugin may route on the body.
	pool, ok := st.route()
	if !ok {
		return
	}
	st.forwardRequest()
	st.roundTrip(pool)
}

// readBody buffers the whole request body: memory up to
// client_body_buffer_size, then a temp file; client_max_body_size -> 413.
func (st *exchangeState) readBody() bool {
	lim := &st.h.limits
	ex := st.ex
	max := int64(lim.ClientMaxBodySize)
	if max > 0 && ex.Req.ContentLength > max {
		ex.CloseAfter = true // the body is left unread
		st.fail(413, "request body larger than client_max_body_size")
		return false
	}
	st.body.Reset(spool.Options{MemLimit: int64(lim.ClientBodyBufferSize), MaxFile: -1, Dir: lim.TempPath})
	if ex.Body != nil {
		r := ex.Body
		if max > 0 {
			r = io.LimitReader(r, max+1)
		}
		n, err := st.body.ReadFrom(r)
		st.reqBytes = n
		if err != nil {
			ex.CloseAfter = true
			st.failClientRead(err)
			return false
		}
		if max > 0 && n > max {
			ex.CloseAfter = true
			st.fail(413, "request body larger than client_max_body_size")
			return false
		}
	}
	st.bodyDone = time.Now()
	return true
}

// failClientRead answers a request whose body could not be read.
func (st *exchangeState) failClientRead(err error) {
	var se statusError
	switch {
	case isTimeout(err):
		st.fail(408, "reading request body: "+err.Error())
	case errors.As(err, &se):
		st.fail(se.HTTPStatus(), "reading request body: "+err.Error())
	case errors.Is(err, spool.ErrTooLarge):
		st.fail(413, "request body over the temp file limit")
	default:
		// the client went away: nobody to answer (nginx logs 499)
		st.status = 499
		st.errMsg = "reading request body: " + err.Error()
	}
}

// statusError is an error that carries the status the client should get,
// as *http1.Error does.
type statusError interface {
	error
	HTTPStatus() int
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// forwardRequest turns the client's request into the upstream's, in place.
func (st *exchangeState) forwardRequest() {
	h, ex := st.h, st.ex
	req := &ex.Req
	removeHopByHop(&req.Header, false)
	req.Header.Del("Expect") // answered by Wedge (RFC 9110 §10.1.1)
	req.Header.Del("Content-Length")
	if n := st.body.Len(); n > 0 || methodHasBody(req.Method) {
		req.Header.Add("Content-Length", strconv.FormatInt(n, 10))
	}
	req.ContentLength = st.body.Len()
	setForwarded(req, ex.Remote.Addr(), h.trusted.contains(ex.Remote.Addr()))
	addVia(&req.Header, req.Proto, h.serverName)
}

func methodHasBody(m string) bool {
	return m == "POST" || m == "PUT" || m == "PATCH"
}

// isIdempotent reports whether a request may be sent again (RFC 9110 §9.2.2).
func isIdempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func isUpgrade(req *message.Request) bool {
	return req.Header.Has("Upgrade") && req.Header.HasToken("Connection", "upgrade") && req.Proto == "HTTP/1.1"
}
