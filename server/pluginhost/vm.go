package pluginhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// Limits on what one VM may have outstanding. Past them the host call
// answers INTERNAL_FAILURE (or the event is dropped and logged).
const (
	maxHTTPCallsPerVM = 1024
	maxEventsPerVM    = 4096
	minTickPeriod     = time.Millisecond
	rootDoneGrace     = time.Second
)

// errReentrant is the panic (and so the trap) of a guest that makes a host
// call from inside its own allocator while the host is copying into it.
var errReentrant = errors.New("host call made from inside proxy_on_memory_allocate")

// vm is one instance of a plugin: a wazero module with its own linear
// memory, its plugin (root) context, and the stream contexts of the
// requests pinned to it. It is held (mu) only while a callback runs.
type vm struct {
	p    *plugin
	slot int
	log  *slog.Logger
	// lastErr is the last line the guest logged at error level or above
	// (proxy_log, or stderr), kept to explain a failed start-up.
	lastErr string

	mod   api.Module
	mem   api.Memory
	lim   *cappedMemory
	fns   [abi.NumCallbacks]api.Function
	alloc api.Function

	// ctx is passed to every call into the guest; it carries the VM to
	// host calls. Its Done channel is kill, closed once when a deadline
	// passes or the VM is retired. Then killed is set, and the guest traps
	// at its next host call or yield (see hYield). One stable context per
	// VM means no allocation per callback.
	ctx      vmCtx
	kill     chan struct{}
	killOnce sync.Once
	killed   atomic.Bool

	// run counts outer callbacks: it is odd while one runs, and the
	// watchdog sets killedBit in it when that callback ran past runTimeout
	// (see watchdog). wSeen and wSince belong to the watchdog.
	run        atomic.Uint64
	runTimeout atomic.Int64
	wSeen      uint64
	wSince     time.Time

	pinned   atomic.Int32 // streams pinned to this VM
	deadFlag atomic.Bool  // dead, readable without mu

	// Everything below is guarded by mu.
	mu       sync.Mutex
	dead     bool
	depth    int
	stack    [16]uint64
	astack   [1]uint64
	inMalloc bool
	nextID   uint32
	streams  map[uint32]*streamPlugin
	eff      uint32        // effective context id during a callback
	effSP    *streamPlugin // its stream context, nil for the root context
	cur      abi.Callback  // callback running, for buffer availability
	httpRes  *vmEvent      // the response proxy_on_http_call_response reads
	calls    map[uint32]context.CancelFunc
	nextCall uint32
	tick     time.Duration
	doneWait chan struct{} // closed by proxy_done while the root's proxy_on_done said false

	stop      chan struct{}
	kick      chan struct{}
	boxMu     sync.Mutex
	box       []vmEvent
	boxSignal chan struct{}

	stdout, stderr lineLogger
}

// vmKey is the context key under which vmCtx answers its VM.
type vmKey struct{}

// vmCtx is a VM's call context; see vm.ctx.
type vmCtx struct{ v *vm }

func (c *vmCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *vmCtx) Done() <-chan struct{}       { return c.v.kill }
func (c *vmCtx) Err() error {
	select {
	case <-c.v.kill:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
func (c *vmCtx) Value(key any) any {
	if _, ok := key.(vmKey); ok {
		return c.v
	}
	return nil
}

// vmFrom returns the VM a host call was made from.
func vmFrom(ctx context.Context) *vm {
	if c, ok := ctx.(*vmCtx); ok {
		return c.v
	}
	v, _ := ctx.Value(vmKey{}).(*vm)
	if v == nil {
		panic("pluginhost: host call outside a plugin callback")
	}
	return v
}

// vmEvent is work for a VM's goroutine: an HTTP call's response or a
// shared queue that got an item.
type vmEvent struct {
	kind  int
	id    uint32 // call id or queue id
	resp  *message.Response
	body  []byte
	err   error
	nHead int
}

const (
	evHTTPResponse = iota
	evQueueReady
)

// newVM instantiates the plugin's module into a new VM for slot and runs
// its start-up: _initialize (and main) or _start, proxy_on_context_create
// for the root context, proxy_on_vm_start and proxy_on_configure.
func (p *plugin) newVM(slot int) (*vm, error) {
	v := &vm{
		p:         p,
		slot:      slot,
		log:       p.log,
		kill:      make(chan struct{}),
		stop:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		boxSignal: make(chan struct{}, 1),
		streams:   make(map[uint32]*streamPlugin),
		nextID:    abi.RootContextID + 1,
		lim:       &cappedMemory{limit: uint64(p.spec.MemoryLimitBytes)},
	}
	v.ctx.v = v
	v.stdout = lineLogger{v: v, level: slog.LevelInfo}
	v.stderr = lineLogger{v: v, level: slog.LevelError}

	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(&v.stdout).
		WithStderr(&v.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	ictx := experimental.WithMemoryAllocator(context.Background(), v.lim)
	mod, err := p.c.h.rt.InstantiateModule(ictx, p.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("%w: instantiating: %w", ErrInvalidPlugin, err)
	}
	v.mod = mod
	v.mem = mod.ExportedMemory(abi.MemoryExport)
	for cb := range abi.NumCallbacks {
		if p.has[cb] {
			v.fns[cb] = mod.ExportedFunction(abi.Callbacks[cb].Name)
		}
	}
	v.alloc = v.fns[p.allocCb]

	p.c.h.watch.add(v)
	p.c.wg.Add(1)
	go v.loop()

	v.mu.Lock()
	err = v.startLocked()
	if err != nil {
		v.retireLocked()
	}
	v.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return v, nil
}

// startLocked runs the start-up callbacks in the order Envoy uses (the
// root context exists before proxy_on_vm_start, which the Rust SDK needs).
func (v *vm) startLocked() error {
	p := v.p
	t := p.startTimeout
	root := abi.RootContextID
	step := func(cb abi.Callback, args ...uint32) (uint32, error) {
		r, err := v.callLocked(cb, t, root, nil, args...)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrInvalidPlugin, abi.Callbacks[cb].Name, err)
		}
		return r, nil
	}
	if p.has[abi.CbInitialize] {
		if _, err := step(abi.CbInitialize); err != nil {
			return err
		}
		if p.has[abi.CbMain] {
			if _, err := step(abi.CbMain, 0, 0); err != nil {
				return err
			}
		}
	} else if p.has[abi.CbStart] {
		if _, err := step(abi.CbStart); err != nil {
			return err
		}
	}
	if _, err := step(abi.CbContextCreate, root, 0); err != nil {
		return err
	}
	if p.has[abi.CbVMStart] {
		ok, err := step(abi.CbVMStart, root, uint32(len(p.spec.VMConfiguration)))
		if err != nil {
			return err
		}
		if ok == 0 {
			return fmt.Errorf("%w: proxy_on_vm_start returned false%s", ErrInvalidPlugin, v.lastErrSuffix())
		}
	}
	if p.has[abi.CbConfigure] {
		v.lastErr = ""
		ok, err := step(abi.CbConfigure, root, uint32(len(p.spec.Configuration)))
		if err != nil {
			return err
		}
		if ok == 0 {
			return fmt.Errorf("%w: proxy_on_configure returned false%s", ErrInvalidPlugin, v.lastErrSuffix())
		}
	}
	return nil
}

// lastErrSuffix is ": " and the guest's last error-level log line, the
// reason a guest gives for failing its start-up, or "".
func (v *vm) lastErrSuffix() string {
	if v.lastErr == "" {
		return ""
	}
	return ": " + v.lastErr
}

// callLocked calls callback cb with args, with eff as the effective
// context (sp its stream context, nil for the root), bounded by timeout.
// It returns the callback's i32 result, 0 when it has none or is not
// exported. Any error poisons the VM: the caller must retire it.
func (v *vm) callLocked(cb abi.Callback, timeout time.Duration, eff uint32, sp *streamPlugin, args ...uint32) (uint32, error) {
	fn := v.fns[cb]
	if fn == nil {
		return 0, nil
	}
	for i, a := range args {
		v.stack[i] = uint64(a)
	}
	r, err := v.callFn(fn, cb, len(args), timeout, eff, sp)
	return uint32(r), err
}

// callFn calls fn with the n parameters in v.stack; see callLocked. cb
// tells host calls which callback runs (for buffer availability).
func (v *vm) callFn(fn api.Function, cb abi.Callback, n int, timeout time.Duration, eff uint32, sp *streamPlugin) (uint64, error) {
	if v.dead {
		return 0, ErrVMLost
	}
	if n == 0 {
		n = 1
	}
	prevEff, prevSP, prevCb := v.eff, v.effSP, v.cur
	v.eff, v.effSP, v.cur = eff, sp, cb
	outer := v.depth == 0
	var run uint64
	if outer {
		// No clock is read here: the watchdog times the callback.
		v.runTimeout.Store(int64(timeout))
		run = v.run.Add(1)
		v.p.c.h.watch.arm()
	}
	v.depth++
	err := fn.CallWithStack(&v.ctx, v.stack[:n])
	v.depth--
	v.eff, v.effSP, v.cur = prevEff, prevSP, prevCb
	if outer && !v.run.CompareAndSwap(run, run+1) {
		// The watchdog stopped the guest, whatever the call returned.
		return 0, fmt.Errorf("%w: %s after %v", ErrCallbackTimeout, fn.Definition().DebugName(), timeout)
	}
	if err != nil {
		return 0, v.classify(err)
	}
	return v.stack[0], nil
}

// killNow stops the VM: a guest running in it traps at its next yield or
// host call.
func (v *vm) killNow() {
	v.killed.Store(true)
	v.killOnce.Do(func() { close(v.kill) })
}

// errStopped is the panic (and so the trap) of a guest whose VM was
// stopped while it ran: its deadline passed, or the VM was retired.
var errStopped = errors.New("plugin VM stopped")

// hYield is meter's yield function (meter.ImportModule, meter.ImportName),
// which the instrumented guest calls about every meter.Budget bytes of
// code it runs. Being Go code, the call lets the Go scheduler preempt the
// goroutine; it traps a guest whose VM was stopped. Called during
// instantiation (a start function) it does nothing.
func hYield(ctx context.Context, _ []uint64) {
	c, ok := ctx.(*vmCtx)
	if !ok {
		v, _ := ctx.Value(vmKey{}).(*vm)
		if v == nil {
			return
		}
		c = &v.ctx
	}
	if c.v.killed.Load() {
		panic(errStopped)
	}
}

// classify turns an error from a call into the guest into one wrapping a
// sentinel, with wazero's message (and wasm stack trace) kept.
func (v *vm) classify(err error) error {
	if v.lim.refused.Load() {
		return fmt.Errorf("%w: memory limit of %d bytes reached: %w", ErrPluginFailed, v.lim.limit, err)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%w: guest exited with code %d", ErrPluginFailed, exit.ExitCode())
	}
	return fmt.Errorf("%w: %w", ErrPluginFailed, err)
}

// reason labels a VM failure for metrics.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrCallbackTimeout):
		return "timeout"
	case errors.Is(err, ErrPluginFailed):
		return "trap"
	}
	return "other"
}

// malloc allocates size bytes in guest memory with the guest's allocator,
// from inside a host call. A failing allocator fails the whole callback.
func (v *vm) malloc(size uint32) uint32 {
	if v.inMalloc {
		panic(errReentrant)
	}
	v.inMalloc = true
	v.astack[0] = uint64(size)
	err := v.alloc.CallWithStack(&v.ctx, v.astack[:])
	v.inMalloc = false
	if err != nil {
		panic(err)
	}
	return uint32(v.astack[0])
}

// failLocked retires the VM after a failed callback, logging why.
func (v *vm) failLocked(err error) {
	if v.dead {
		return
	}
	v.log.Error("plugin VM failed; replacing it", "vm", v.slot, "error", err)
	v.p.c.h.metrics.failure(v.p.name, reason(err))
	v.retireLocked()
}

// retireLocked marks the VM dead, takes it out of its pool, wakes the
// streams paused on it, cancels its HTTP calls, stops its goroutine and
// closes its module.
func (v *vm) retireLocked() {
	if v.dead {
		return
	}
	v.dead = true
	v.deadFlag.Store(true)
	v.killNow()
	v.p.c.h.watch.remove(v)
	v.p.removeVM(v)
	for _, sp := range v.streams {
		if sp.paused {
			sp.s.signal()
		}
	}
	for id, cancel := range v.calls {
		cancel()
		delete(v.calls, id)
	}
	close(v.stop)
	if v.mod != nil {
		_ = v.mod.Close(context.Background())
	}
	if v.doneWait != nil {
		close(v.doneWait)
		v.doneWait = nil
	}
}

// shutdown ends a healthy VM: proxy_on_done for the root context (waiting
// a little for proxy_done when it answers false), proxy_on_delete, then
// retire.
func (v *vm) shutdown(ctx context.Context) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		return
	}
	root := abi.RootContextID
	t := v.p.spec.CallbackTimeout
	done, err := v.callLocked(abi.CbDone, t, root, nil, root)
	if err != nil {
		v.failLocked(err)
		return
	}
	if v.fns[abi.CbDone] != nil && done == 0 {
		wait := make(chan struct{})
		v.doneWait = wait
		v.mu.Unlock()
		timer := time.NewTimer(rootDoneGrace)
		select {
		case <-wait:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		v.mu.Lock()
		v.doneWait = nil
		if v.dead {
			return
		}
	}
	if _, err := v.callLocked(abi.CbDelete, t, root, nil, root); err != nil {
		v.failLocked(err)
		return
	}
	v.retireLocked()
}

// loop is the VM's goroutine: it delivers ticks, HTTP call responses and
// queue notifications, each as a callback holding the VM.
func (v *vm) loop() {
	defer v.p.c.wg.Done()
	var ticker *time.Ticker
	var tickC <-chan time.Time
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-v.stop:
			return
		case <-v.kick:
			v.mu.Lock()
			d := v.tick
			v.mu.Unlock()
			switch {
			case d <= 0 && ticker != nil:
				ticker.Stop()
				ticker, tickC = nil, nil
			case d > 0 && ticker == nil:
				ticker = time.NewTicker(d)
				tickC = ticker.C
			case d > 0:
				ticker.Reset(d)
			}
		case <-tickC:
			v.mu.Lock()
			if !v.dead {
				root := abi.RootContextID
				if _, err := v.callLocked(abi.CbTick, v.p.spec.CallbackTimeout, root, nil, root); err != nil {
					v.failLocked(err)
				}
			}
			v.mu.Unlock()
		case <-v.boxSignal:
			for {
				v.boxMu.Lock()
				if len(v.box) == 0 {
					v.boxMu.Unlock()
					break
				}
				ev := v.box[0]
				v.box[0] = vmEvent{}
				v.box = v.box[1:]
				v.boxMu.Unlock()
				v.handle(&ev)
			}
		}
	}
}

// post queues an event for the VM's goroutine.
func (v *vm) post(ev vmEvent) {
	if v.deadFlag.Load() {
		return
	}
	v.boxMu.Lock()
	if len(v.box) >= maxEventsPerVM {
		v.boxMu.Unlock()
		v.log.Warn("plugin VM event queue full; dropping event", "vm", v.slot)
		return
	}
	v.box = append(v.box, ev)
	v.boxMu.Unlock()
	select {
	case v.boxSignal <- struct{}{}:
	default:
	}
}

func (v *vm) handle(ev *vmEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead {
		return
	}
	root := abi.RootContextID
	t := v.p.spec.CallbackTimeout
	var err error
	switch ev.kind {
	case evHTTPResponse:
		if _, ok := v.calls[ev.id]; !ok {
			return // cancelled
		}
		delete(v.calls, ev.id)
		nh, bodyLen := 0, 0
		if ev.err == nil && ev.resp != nil {
			nh = len(ev.resp.Header) + 1 // + :status
			bodyLen = len(ev.body)
		} else if ev.err != nil {
			v.log.Debug("plugin HTTP call failed", "vm", v.slot, "error", ev.err)
		}
		ev.nHead = nh
		v.httpRes = ev
		_, err = v.callLocked(abi.CbHTTPCallResponse, t, root, nil, root, ev.id, uint32(nh), clampU32(int64(bodyLen)), 0)
		v.httpRes = nil
	case evQueueReady:
		_, err = v.callLocked(abi.CbQueueReady, t, root, nil, root, ev.id)
	}
	if err != nil {
		v.failLocked(err)
	}
}

// newContextID returns an unused stream context id. Ids grow and wrap,
// skipping 0, the root's id and ids still in use.
func (v *vm) newContextID() uint32 {
	for {
		id := v.nextID
		v.nextID++
		if id <= abi.RootContextID {
			continue
		}
		if _, used := v.streams[id]; !used {
			return id
		}
	}
}

func clampU32(n int64) uint32 {
	if n > 1<<31-1 {
		return 1<<31 - 1 // SDKs read size_t as int32
	}
	if n < 0 {
		return 0
	}
	return uint32(n)
}
