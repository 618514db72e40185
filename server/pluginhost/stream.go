package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// Stream is one request's pass through a chain: it holds the request's
// context in each plugin (proxy_on_context_create), pinned to one VM of
// each plugin for its whole life, and runs the phases.
//
// A Stream is used by one goroutine, the one running the request: call the
// phases in order (OnRequestHeaders, OnRequestBody, OnResponseHeaders,
// OnResponseBody, each at most once, the body phases only when there is a
// body), then Finish exactly once. The Stream keeps the request, response
// and bodies it was given until the phase (bodies) or Finish (heads)
// returns, and plugins read and edit them only while a phase runs; between
// phases the caller owns them.
type Stream struct {
	c    *Chain
	info StreamInfo

	plugins []streamPlugin
	inline  [4]streamPlugin

	// active is the index of the plugin whose callbacks may touch the
	// stream's messages now (its phase is running or paused), -1 for none.
	// Host calls from other plugins' VMs (their ticks, HTTP call
	// responses) are refused, which keeps the messages single-owner.
	active atomic.Int32
	wake   chan struct{}

	ok       bool // counted in the chain's active streams
	finished bool

	// Below: written by host calls of the active plugin, under its VM's
	// mutex, and by the stream's goroutine between callbacks.
	req       *message.Request
	resp      *message.Response
	reqBody   Body
	respBody  Body
	phase     abi.Callback
	local     *LocalResponse
	localN    int // local responses sent so far
	localFrom int // plugin that answered locally in a request phase, -1
	closeReq  bool
	upstream  string
	static    string
	staticP   string
	upAddr    string
	props     map[string][]byte
}

// streamPlugin is a stream's context in one plugin.
type streamPlugin struct {
	s      *Stream
	idx    int
	vm     *vm
	id     uint32 // context id in vm, 0 before creation
	failed bool   // skipped for the rest of the stream (failed with fail_open, or left out by the RequestHook)
	// guarded by vm.mu:
	paused  bool
	resumed bool
}

// streamPool recycles Streams: Finish returns its Stream here, once no VM
// holds a reference to it any more.
var streamPool = sync.Pool{New: func() any { return new(Stream) }}

// NewStream starts a request's stream. info may be nil. It never fails; on
// a closed chain the phases answer ErrClosed.
func (c *Chain) NewStream(info *StreamInfo) *Stream {
	s := streamPool.Get().(*Stream)
	s.c, s.localFrom = c, -1
	if info != nil {
		s.info = *info
	}
	if s.info.Start.IsZero() {
		s.info.Start = time.Now()
	}
	s.upstream = s.info.DefaultUpstream
	n := len(c.plugins)
	switch {
	case n <= len(s.inline):
		s.plugins = s.inline[:n]
	case n <= cap(s.plugins):
		s.plugins = s.plugins[:n]
	default:
		s.plugins = make([]streamPlugin, n)
	}
	for i := range s.plugins {
		s.plugins[i] = streamPlugin{s: s, idx: i}
	}
	s.active.Store(-1)
	s.ok = c.streamStarted()
	return s
}

// requestID returns StreamInfo.ID, formatting it from Seq the first time.
// It is called only by the stream's owner of the moment (see Stream).
func (s *Stream) requestID() string {
	if s.info.ID == "" && s.info.Seq != 0 {
		var b [16]byte
		s.info.ID = string(strconv.AppendUint(b[:0], s.info.Seq, 36))
	}
	return s.info.ID
}

// recycle clears a finished stream and pools it, keeping its buffers.
func (s *Stream) recycle() {
	plugins, wake, props := s.plugins, s.wake, s.props
	if cap(plugins) <= len(s.inline) {
		plugins = nil // the inline array
	} else {
		clear(plugins[:cap(plugins)])
		plugins = plugins[:0]
	}
	clear(s.inline[:])
	clear(props)
	select {
	case <-wake:
	default:
	}
	*s = Stream{plugins: plugins, wake: wake, props: props}
	streamPool.Put(s)
}

// answer records lr as the stream's local response; the phase running
// ends with it (step compares localN).
func (s *Stream) answer(lr *LocalResponse) {
	s.local = lr
	s.localN++
}

// Info returns the StreamInfo the stream was made with.
func (s *Stream) Info() *StreamInfo { return &s.info }

// Upstream returns wedge.upstream: the upstream pool a plugin chose with
// proxy_set_property, or StreamInfo.DefaultUpstream.
func (s *Stream) Upstream() string { return s.upstream }

// SetUpstream sets wedge.upstream as a plugin writing the property would.
// Only the stream's owner may call it, between callbacks (a RequestHook
// does, when it answers for a plugin that always picks the same pool).
func (s *Stream) SetUpstream(pool string) { s.upstream = pool }

// StaticMount returns wedge.static: the static mount a plugin chose to
// serve the request from, or "".
func (s *Stream) StaticMount() string { return s.static }

// StaticPath returns wedge.static_path: the URL path of the file inside
// the mount of wedge.static that a plugin chose, or "" (the request's
// path).
func (s *Stream) StaticPath() string { return s.staticP }

// SetUpstreamAddress records the address of the upstream server the
// request went to ("10.0.0.2:8000" or a unix socket path), the
// upstream.address property of the response phases.
func (s *Stream) SetUpstreamAddress(addr string) { s.upAddr = addr }

// OnRequestHeaders runs proxy_on_request_headers in chain order, before the
// body is read. Plugins see req's fields plus the pseudo-fields :method,
// :path (req.Target), :authority (req.Host) and :scheme, and may change
// all of them. end_of_stream is true when req.ContentLength is 0.
//
// It returns when every plugin continued, when one answered with
// proxy_send_local_response (Outcome.Local; the plugins after it do not
// run, and the response phases later run only the plugins before it), or
// when one failed and is not FailOpen (Outcome.Err). A plugin that pauses
// holds the call until it resumes the stream (proxy_continue_stream,
// typically from proxy_on_http_call_response), answers, PauseTimeout
// passes (a failure of the plugin) or ctx ends (Outcome.Err is ctx's
// error).
func (s *Stream) OnRequestHeaders(ctx context.Context, req *message.Request) Outcome {
	s.req = req
	return s.run(ctx, abi.CbRequestHeaders)
}

// OnRequestBody runs proxy_on_request_body in chain order once the whole
// body is buffered (end_of_stream true, body_size body.Len()), for the
// plugins that export it. Plugins read body by range and may edit it; the
// proxy must recompute Content-Length from body.Len() afterwards. The
// outcome is as for OnRequestHeaders.
func (s *Stream) OnRequestBody(ctx context.Context, req *message.Request, body Body) Outcome {
	s.req = req
	s.reqBody = orEmpty(body)
	out := s.run(ctx, abi.CbRequestBody)
	s.reqBody = nil
	return out
}

// OnResponseHeaders runs proxy_on_response_headers in reverse chain order
// on the buffered response (resp is the upstream's, or the local response
// an earlier phase returned). Plugins see resp's fields plus :status.
// When a request phase answered locally, only the plugins before the one
// that answered run. A plugin may replace the response with
// proxy_send_local_response (Outcome.Local): the proxy sends that instead
// and the remaining plugins do not run.
func (s *Stream) OnResponseHeaders(ctx context.Context, resp *message.Response) Outcome {
	s.resp = resp
	return s.run(ctx, abi.CbResponseHeaders)
}

// OnResponseBody runs proxy_on_response_body in reverse chain order on the
// whole buffered response body (end_of_stream true), as OnResponseHeaders
// does.
func (s *Stream) OnResponseBody(ctx context.Context, resp *message.Response, body Body) Outcome {
	s.resp = resp
	s.respBody = orEmpty(body)
	out := s.run(ctx, abi.CbResponseBody)
	s.respBody = nil
	return out
}

// Finish ends the stream after the response was sent: in chain order, each
// plugin's context gets proxy_on_log, proxy_on_done and proxy_on_delete
// (Envoy's order; the heads are still readable in proxy_on_log), and the
// pinned VMs are released. A failure here is logged only. The Stream must
// not be used afterwards, not even to call Finish again: it is recycled
// for another request.
func (s *Stream) Finish(ctx context.Context) {
	if s.finished {
		return
	}
	s.finished = true
	s.phase = abi.CbLog
	for i := range s.plugins {
		sp := &s.plugins[i]
		v := sp.vm
		if v == nil {
			continue
		}
		v.mu.Lock()
		if !v.dead && sp.id != 0 {
			s.active.Store(int32(i))
			t := v.p.spec.CallbackTimeout
			var err error
			for _, cb := range [...]abi.Callback{abi.CbLog, abi.CbDone, abi.CbDelete} {
				if _, err = v.callLocked(cb, t, sp.id, sp, sp.id); err != nil {
					break
				}
			}
			delete(v.streams, sp.id)
			s.active.Store(-1)
			if err != nil {
				v.failLocked(err)
			}
		}
		v.mu.Unlock()
		v.pinned.Add(-1)
		sp.vm = nil
	}
	if s.ok {
		s.c.streamDone()
	}
	s.recycle()
}

// run runs one phase over the chain.
func (s *Stream) run(ctx context.Context, cb abi.Callback) Outcome {
	if !s.ok || s.finished {
		return Outcome{Err: ErrClosed}
	}
	s.phase = cb
	switch cb {
	case abi.CbRequestHeaders, abi.CbRequestBody:
		for i := range s.plugins {
			if stop, out := s.step(ctx, i, cb); stop {
				return out
			}
		}
	default:
		end := len(s.plugins)
		if s.localFrom >= 0 {
			end = s.localFrom
		}
		for i := end - 1; i >= 0; i-- {
			if stop, out := s.step(ctx, i, cb); stop {
				return out
			}
		}
	}
	return Outcome{}
}

// step runs callback cb of plugin i, creating the stream's context in it
// first. stop reports that the phase ends here with out.
func (s *Stream) step(ctx context.Context, i int, cb abi.Callback) (stop bool, out Outcome) {
	sp := &s.plugins[i]
	p := s.c.plugins[i]
	if sp.failed || !p.has[cb] {
		return false, Outcome{}
	}
	if cb == abi.CbRequestHeaders && sp.id == 0 && s.info.RequestHook != nil {
		lr, skip := s.info.RequestHook.BeforeRequestHeaders(p.name)
		switch {
		case lr != nil:
			s.answer(lr)
			s.localFrom = i
			return true, Outcome{Local: lr}
		case skip:
			sp.failed = true // left out: no context, no callback
			return false, Outcome{}
		}
	}
	v, err := s.lock(sp, p)
	if err != nil {
		return s.fail(sp, err)
	}
	t := p.spec.CallbackTimeout
	if sp.id == 0 {
		sp.id = v.newContextID()
		v.streams[sp.id] = sp
		if _, err = v.callLocked(abi.CbContextCreate, t, sp.id, sp, sp.id, abi.RootContextID); err != nil {
			v.failLocked(err)
			v.mu.Unlock()
			return s.fail(sp, err)
		}
	}
	s.active.Store(int32(i))
	localN := s.localN
	sp.resumed = false
	a1, a2 := s.args(cb)
	action, err := v.callLocked(cb, t, sp.id, sp, sp.id, a1, a2)
	var werr error
	if err == nil && action != abi.ActionContinue && s.localN == localN && !s.closeReq && !sp.resumed {
		werr = s.waitLocked(ctx, sp, v, localN)
	}
	sp.paused, sp.resumed = false, false
	s.active.Store(-1)
	if err != nil {
		v.failLocked(err)
	}
	v.mu.Unlock()
	switch {
	case err != nil:
		return s.fail(sp, err)
	case werr != nil:
		if errors.Is(werr, ErrPauseTimeout) || errors.Is(werr, ErrVMLost) {
			return s.fail(sp, werr)
		}
		return true, Outcome{Err: fmt.Errorf("waiting on plugin %q: %w", p.name, werr)}
	case s.closeReq:
		return true, Outcome{Err: fmt.Errorf("running plugin %q: %w", p.name, ErrStreamClosed)}
	case s.localN != localN:
		if cb == abi.CbRequestHeaders || cb == abi.CbRequestBody {
			s.localFrom = i
		}
		return true, Outcome{Local: s.local}
	}
	return false, Outcome{}
}

// maxRepin bounds how often a stream is pinned again because the VM it
// was given died before the stream used it.
const maxRepin = 8

// lock pins sp to a VM of p if it is not yet, and locks that VM. A VM
// that died before the stream made its context there is replaced by
// pinning again; one that died holding the stream's context is ErrVMLost.
func (s *Stream) lock(sp *streamPlugin, p *plugin) (*vm, error) {
	for tries := 0; ; tries++ {
		v := sp.vm
		if v == nil {
			var err error
			if v, err = p.pin(); err != nil {
				return nil, err
			}
			sp.vm = v
		}
		v.mu.Lock()
		if !v.dead {
			return v, nil
		}
		v.mu.Unlock()
		if sp.id != 0 || tries >= maxRepin {
			return nil, ErrVMLost
		}
		v.pinned.Add(-1)
		sp.vm = nil
	}
}

// args returns the second and third arguments of a stream callback.
func (s *Stream) args(cb abi.Callback) (uint32, uint32) {
	switch cb {
	case abi.CbRequestHeaders:
		return uint32(requestMapLen(s.req)), b2u(s.req.ContentLength == 0)
	case abi.CbRequestBody:
		return clampU32(s.reqBody.Len()), 1
	case abi.CbResponseHeaders:
		return uint32(len(s.resp.Header) + 1), b2u(s.resp.ContentLength == 0)
	case abi.CbResponseBody:
		return clampU32(s.respBody.Len()), 1
	}
	return 0, 0
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// waitLocked holds the stream paused by plugin sp until it is resumed,
// answered or closed, its VM dies, PauseTimeout passes or ctx ends. v.mu
// is held on entry and on return, released while waiting.
func (s *Stream) waitLocked(ctx context.Context, sp *streamPlugin, v *vm, localN int) error {
	sp.paused = true
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	select {
	case <-s.wake:
	default:
	}
	timer := time.NewTimer(v.p.spec.PauseTimeout)
	defer timer.Stop()
	for {
		v.mu.Unlock()
		var cause error
		select {
		case <-s.wake:
		case <-ctx.Done():
			cause = ctx.Err()
		case <-timer.C:
			cause = fmt.Errorf("%w (%v)", ErrPauseTimeout, v.p.spec.PauseTimeout)
		}
		v.mu.Lock()
		switch {
		case v.dead:
			return ErrVMLost
		case sp.resumed || s.localN != localN || s.closeReq:
			return nil
		case cause != nil:
			return cause
		}
	}
}

// signal wakes the stream's goroutine if it waits on a pause. Called with
// the paused plugin's VM mutex held.
func (s *Stream) signal() {
	if s.wake == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// fail handles a failure of plugin sp: it is skipped for the rest of the
// stream; with FailOpen the phase goes on, otherwise it stops with the
// error.
func (s *Stream) fail(sp *streamPlugin, err error) (bool, Outcome) {
	sp.failed = true
	p := s.c.plugins[sp.idx]
	if p.spec.FailOpen {
		p.log.Warn("plugin failed; skipping it for this request (fail_open)", "request", s.requestID(), "error", err)
		return false, Outcome{}
	}
	return true, Outcome{Err: fmt.Errorf("running plugin %q: %w", p.name, err)}
}

// streamFor returns the stream context a host call may work on: the
// effective context's, if its plugin is the stream's active one.
func (v *vm) streamFor() *streamPlugin {
	sp := v.effSP
	if sp == nil || sp.s.active.Load() != int32(sp.idx) {
		return nil
	}
	return sp
}

// emptyBody stands for a nil Body.
type emptyBody struct{}

func (emptyBody) Len() int64                        { return 0 }
func (emptyBody) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (emptyBody) Replace(int64, int64, []byte) error {
	return errors.New("the body is empty and read-only")
}

func orEmpty(b Body) Body {
	if b == nil {
		return emptyBody{}
	}
	return b
}

// Resume resumes the stream if the plugin named plugin holds it paused, as
// if that plugin had called proxy_continue_stream, and reports whether it
// did. It lets the embedder end a pause a plugin asked it to end (through
// a foreign function: a cache waiting for another request's fill). It may
// be called from any goroutine, but never from a ForeignFunction (it locks
// the plugin's VM), and only while the caller knows the stream is not
// finished (Finish recycles it): the embedder withdraws its wake-up under
// its own lock before the stream's phase returns to it.
func (s *Stream) Resume(plugin string) bool { return s.wakePaused(plugin, nil) }

// Respond answers the stream if the plugin named plugin holds it paused,
// as if that plugin had called proxy_send_local_response with lr, and
// reports whether it did. The phase then ends with Outcome.Local = lr
// (from a request phase, the response phases later run for the plugins
// before this one). The same rules as Resume apply.
func (s *Stream) Respond(plugin string, lr *LocalResponse) bool { return s.wakePaused(plugin, lr) }

func (s *Stream) wakePaused(plugin string, lr *LocalResponse) bool {
	for i, p := range s.c.plugins {
		if p.name != plugin {
			continue
		}
		sp := &s.plugins[i]
		v := sp.vm
		if v == nil {
			return false
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if !sp.paused || v.dead || s.active.Load() != int32(i) {
			return false
		}
		if lr != nil {
			s.answer(lr)
		} else {
			sp.resumed = true
		}
		s.signal()
		return true
	}
	return false
}
