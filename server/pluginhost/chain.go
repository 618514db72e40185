package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/meter"
)

// Defaults for PluginSpec's zero fields.
const (
	defaultCallbackTimeout = time.Second
	defaultPauseTimeout    = 60 * time.Second
	defaultMemoryLimit     = 128 << 20
	minStartTimeout        = 5 * time.Second
	// restartBackoff is how long a plugin whose VM could not be created
	// answers with that error before trying again, so a crash loop does
	// not burn the CPU (spec "Plugin crashes").
	restartBackoff = time.Second
)

// Chain is an ordered list of plugins, each compiled once and run as a pool
// of VMs. Requests run through it with streams. A Chain is safe for
// concurrent use; on reload, build a new Chain beside the old one and Close
// the old one.
type Chain struct {
	h       *Host
	plugins []*plugin

	wantsReqBody, wantsRespBody bool

	// baseCtx bounds the chain's HTTP calls; cancel ends them at Close.
	baseCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // VM goroutines and HTTP calls

	closeMu   sync.Mutex
	closed    atomic.Bool
	active    atomic.Int64  // streams made and not yet finished
	drained   chan struct{} // closed once active is 0 after Close
	drainOnce sync.Once
}

// plugin is one PluginSpec of a chain: its compiled module and VM pool.
type plugin struct {
	c            *Chain
	idx          int
	name         string
	spec         PluginSpec
	compiled     wazero.CompiledModule
	has          [abi.NumCallbacks]bool
	allocCb      abi.Callback
	startTimeout time.Duration
	log          *slog.Logger

	mu        sync.Mutex
	cond      sync.Cond
	slots     []*vm
	creating  []bool
	lastErr   error
	lastErrAt time.Time
	closed    bool
}

// NewChain instruments each plugin so that it can be stopped
// (internal/meter), compiles it once (reusing the compilation cache),
// checks its imports and exports, and starts one VM of each at once
// (_initialize, proxy_on_context_create for the root context,
// proxy_on_vm_start, proxy_on_configure), so that a broken plugin fails
// here, with an error naming it and what is wrong and wrapping
// ErrInvalidPlugin. The other VMs of each pool start when load needs them.
func (h *Host) NewChain(ctx context.Context, specs []PluginSpec) (*Chain, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("loading plugin chain: %w", ErrClosed)
	}
	c := &Chain{h: h, drained: make(chan struct{})}
	c.baseCtx, c.cancel = context.WithCancel(context.Background())
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		spec := specs[i]
		if spec.Name == "" {
			c.abort(ctx)
			return nil, fmt.Errorf("loading plugin #%d: %w: no name", i+1, ErrInvalidPlugin)
		}
		if seen[spec.Name] {
			c.abort(ctx)
			return nil, fmt.Errorf("loading plugin %q: %w: name used twice in the chain", spec.Name, ErrInvalidPlugin)
		}
		seen[spec.Name] = true
		p, err := c.load(ctx, i, spec)
		if err != nil {
			c.abort(ctx)
			return nil, fmt.Errorf("loading plugin %q: %w", spec.Name, err)
		}
		c.plugins = append(c.plugins, p)
		c.wantsReqBody = c.wantsReqBody || p.has[abi.CbRequestBody]
		c.wantsRespBody = c.wantsRespBody || p.has[abi.CbResponseBody]
	}
	for _, p := range c.plugins {
		v, err := p.newVM(0)
		if err != nil {
			c.abort(ctx)
			return nil, fmt.Errorf("loading plugin %q: %w", p.name, err)
		}
		p.mu.Lock()
		p.slots[0] = v
		p.mu.Unlock()
		h.metrics.vmDelta(p.name, 1)
	}
	if err := h.addChain(c); err != nil {
		c.abort(ctx)
		return nil, fmt.Errorf("loading plugin chain: %w", err)
	}
	return c, nil
}

// load normalizes spec, compiles its module and checks it.
func (c *Chain) load(ctx context.Context, idx int, spec PluginSpec) (*plugin, error) {
	if spec.RootID == "" {
		spec.RootID = spec.Name
	}
	if spec.PoolSize <= 0 {
		spec.PoolSize = runtime.GOMAXPROCS(0)
	}
	if spec.CallbackTimeout <= 0 {
		spec.CallbackTimeout = defaultCallbackTimeout
	}
	if spec.PauseTimeout <= 0 {
		spec.PauseTimeout = defaultPauseTimeout
	}
	if spec.MemoryLimitBytes <= 0 {
		spec.MemoryLimitBytes = defaultMemoryLimit
	}
	p := &plugin{
		c:            c,
		idx:          idx,
		name:         spec.Name,
		spec:         spec,
		startTimeout: max(10*spec.CallbackTimeout, minStartTimeout),
		log:          c.h.log.With("plugin", spec.Name),
		slots:        make([]*vm, spec.PoolSize),
		creating:     make([]bool, spec.PoolSize),
	}
	p.cond.L = &p.mu
	wasm, err := meter.Instrument(spec.Wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: compiling: %w", ErrInvalidPlugin, err)
	}
	compiled, err := c.h.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: compiling: %w", ErrInvalidPlugin, err)
	}
	p.compiled = compiled
	if err := p.check(); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	return p, nil
}

// check validates the compiled module against the ABI: every import is one
// the host provides with the same signature, memory and the required
// callbacks are exported, every callback it exports has the ABI's
// signature, and its initial memory fits MemoryLimitBytes.
func (p *plugin) check() error {
	cm := p.compiled
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		provided, ok := p.c.h.imports[mod][name]
		if !ok {
			return fmt.Errorf("%w: imports %s.%s, which the host does not provide", ErrInvalidPlugin, mod, name)
		}
		if !slices.Equal(def.ParamTypes(), provided.ParamTypes()) || !slices.Equal(def.ResultTypes(), provided.ResultTypes()) {
			return fmt.Errorf("%w: imports %s.%s as %s; the host's is %s", ErrInvalidPlugin, mod, name,
				sigString(def.ParamTypes(), def.ResultTypes()), sigString(provided.ParamTypes(), provided.ResultTypes()))
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		return fmt.Errorf("%w: imports memory %s.%s; a proxy-wasm guest must define and export its own", ErrInvalidPlugin, mod, name)
	}
	mem, ok := cm.ExportedMemories()[abi.MemoryExport]
	if !ok {
		return fmt.Errorf("%w: does not export %q", ErrInvalidPlugin, abi.MemoryExport)
	}
	if minBytes := uint64(mem.Min()) * 65536; minBytes > uint64(p.spec.MemoryLimitBytes) {
		return fmt.Errorf("%w: initial memory of %d bytes exceeds the limit of %d", ErrInvalidPlugin, minBytes, p.spec.MemoryLimitBytes)
	}
	exports := cm.ExportedFunctions()
	_, v020 := exports[abi.MarkerV020]
	_, v021 := exports[abi.MarkerV021]
	if !v020 && !v021 {
		if _, v010 := exports[abi.MarkerV010]; v010 {
			return fmt.Errorf("%w: built for proxy-wasm ABI v0.1.0; Wedge runs v0.2.x guests", ErrInvalidPlugin)
		}
		return fmt.Errorf("%w: exports no ABI marker (%s or %s)", ErrInvalidPlugin, abi.MarkerV021, abi.MarkerV020)
	}
	for cb := range abi.NumCallbacks {
		sig := abi.Callbacks[cb]
		def, ok := exports[sig.Name]
		if !ok {
			continue
		}
		if !i32Sig(def, sig.Params, sig.Results) {
			return fmt.Errorf("%w: exports %s as %s; the ABI says %s", ErrInvalidPlugin, sig.Name,
				sigString(def.ParamTypes(), def.ResultTypes()), sigString(i32s(sig.Params), i32s(sig.Results)))
		}
		p.has[cb] = true
	}
	switch {
	case p.has[abi.CbMemoryAllocate]:
		p.allocCb = abi.CbMemoryAllocate
	case p.has[abi.CbMalloc]:
		p.allocCb = abi.CbMalloc
	default:
		return fmt.Errorf("%w: exports no allocator (proxy_on_memory_allocate or malloc)", ErrInvalidPlugin)
	}
	if !p.has[abi.CbContextCreate] {
		return fmt.Errorf("%w: does not export proxy_on_context_create", ErrInvalidPlugin)
	}
	if !p.has[abi.CbInitialize] {
		p.has[abi.CbMain] = false // main runs only after _initialize (spec "main")
	}
	return nil
}

func i32Sig(def api.FunctionDefinition, params, results int) bool {
	pt, rt := def.ParamTypes(), def.ResultTypes()
	if len(pt) != params || len(rt) != results {
		return false
	}
	for _, t := range pt {
		if t != api.ValueTypeI32 {
			return false
		}
	}
	for _, t := range rt {
		if t != api.ValueTypeI32 {
			return false
		}
	}
	return true
}

func i32s(n int) []api.ValueType {
	ts := make([]api.ValueType, n)
	for i := range ts {
		ts[i] = api.ValueTypeI32
	}
	return ts
}

func sigString(params, results []api.ValueType) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, t := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	b.WriteString(") -> (")
	for i, t := range results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	b.WriteByte(')')
	return b.String()
}

// pin picks the VM a new stream's context goes to: the least loaded live
// one, or a new one in an empty slot when every live VM already has
// streams. VMs that failed were taken out of their slots, so the next pin
// replaces them.
func (p *plugin) pin() (*vm, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closed {
			return nil, ErrClosed
		}
		var best *vm
		var bestLoad int32
		empty, creating := -1, false
		for i, v := range p.slots {
			if v == nil {
				if p.creating[i] {
					creating = true
				} else if empty < 0 {
					empty = i
				}
				continue
			}
			if v.deadFlag.Load() {
				creating = true // being retired: its slot empties soon
				continue
			}
			if l := v.pinned.Load(); best == nil || l < bestLoad {
				best, bestLoad = v, l
			}
		}
		if best != nil && (bestLoad == 0 || empty < 0) {
			best.pinned.Add(1)
			return best, nil
		}
		if empty >= 0 {
			if p.lastErr != nil && time.Since(p.lastErrAt) < restartBackoff {
				if best != nil {
					best.pinned.Add(1)
					return best, nil
				}
				return nil, p.lastErr
			}
			p.creating[empty] = true
			p.mu.Unlock()
			v, err := p.newVM(empty)
			p.mu.Lock()
			p.creating[empty] = false
			p.cond.Broadcast()
			if err != nil {
				p.log.Error("starting plugin VM failed", "vm", empty, "error", err)
				p.lastErr, p.lastErrAt = err, time.Now()
				if best != nil && !best.deadFlag.Load() {
					best.pinned.Add(1)
					return best, nil
				}
				return nil, err
			}
			p.lastErr = nil
			if p.closed {
				p.mu.Unlock()
				v.shutdown(context.Background())
				p.mu.Lock()
				return nil, ErrClosed
			}
			p.slots[empty] = v
			p.c.h.metrics.vmDelta(p.name, 1)
			v.pinned.Add(1)
			return v, nil
		}
		if !creating {
			return nil, errors.New("plugin pool has no slots") // PoolSize >= 1 makes this unreachable
		}
		p.cond.Wait()
	}
}

// removeVM takes a retired VM out of its slot.
func (p *plugin) removeVM(v *vm) {
	p.mu.Lock()
	if p.slots[v.slot] == v {
		p.slots[v.slot] = nil
		p.c.h.metrics.vmDelta(p.name, -1)
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

// vmAt returns the live VM in slot, or else any live VM of the pool (each
// ran the same start-up, so each registered the same queues), or nil.
func (p *plugin) vmAt(slot int) *vm {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if slot < len(p.slots) && p.slots[slot] != nil {
		return p.slots[slot]
	}
	for _, v := range p.slots {
		if v != nil && !v.deadFlag.Load() {
			return v
		}
	}
	return nil
}

// shutdown stops every VM of the pool.
func (p *plugin) shutdown(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	for p.anyCreating() {
		p.cond.Wait()
	}
	vms := slices.Clone(p.slots)
	p.mu.Unlock()
	p.cond.Broadcast()
	for _, v := range vms {
		if v != nil {
			v.shutdown(ctx)
		}
	}
}

func (p *plugin) anyCreating() bool {
	return slices.Contains(p.creating, true)
}

// WantsRequestBody reports whether any plugin exports
// proxy_on_request_body, so that the proxy may skip OnRequestBody (and
// keeping the body readable for it) when none does. Every
// proxy-wasm-go-sdk guest exports it.
func (c *Chain) WantsRequestBody() bool { return c.wantsReqBody }

// WantsResponseBody reports whether any plugin exports
// proxy_on_response_body.
func (c *Chain) WantsResponseBody() bool { return c.wantsRespBody }

// Close drains the chain: new streams fail with ErrClosed, streams already
// made run to Finish (bounded by ctx), then every VM gets proxy_on_done and
// proxy_on_delete for its root context and is closed, and outstanding HTTP
// calls are cancelled. It returns ctx's error if draining was cut short.
func (c *Chain) Close(ctx context.Context) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	var err error
	if c.active.Load() > 0 {
		select {
		case <-c.drained:
		case <-ctx.Done():
			err = fmt.Errorf("draining plugin chain: %w", ctx.Err())
		}
	}
	c.abort(ctx)
	c.h.removeChain(c)
	return err
}

// abort stops every VM and waits for the chain's goroutines (bounded by
// ctx), then releases the compiled modules.
func (c *Chain) abort(ctx context.Context) {
	for _, p := range c.plugins {
		p.shutdown(ctx)
	}
	c.cancel()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	for _, p := range c.plugins {
		_ = p.compiled.Close(context.Background())
	}
}

// streamStarted counts a new stream, unless the chain is closed. Atomics
// rather than a mutex: this runs twice per request.
func (c *Chain) streamStarted() bool {
	c.active.Add(1)
	if c.closed.Load() {
		c.streamDone()
		return false
	}
	return true
}

func (c *Chain) streamDone() {
	if c.active.Add(-1) == 0 && c.closed.Load() {
		c.drainOnce.Do(func() { close(c.drained) })
	}
}
