package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/meter"
)

// wasiModule is the import module name of WASI preview 1.
const wasiModule = "wasi_snapshot_preview1"

// Host is one wazero runtime with the proxy-wasm host functions, the
// compilation cache, and the state plugins share host-wide: shared data,
// shared queues and metrics. Chains of plugins are made from it.
// A Host is safe for concurrent use.
type Host struct {
	log        *slog.Logger
	dispatcher HTTPDispatcher
	foreign    map[string]ForeignFunction

	rt    wazero.Runtime
	cache wazero.CompilationCache

	// imports are the signatures the host provides, by module and name,
	// for checking a guest's imports at load.
	imports map[string]map[string]api.FunctionDefinition

	shared  sharedData
	queues  sharedQueues
	metrics *metricSet
	watch   *watchdog

	mu     sync.Mutex
	chains map[*Chain]struct{}
	closed bool
}

// New starts a Host: a wazero runtime using the optimizing compiler where
// the platform has one (the interpreter elsewhere), a compilation cache (on
// disk when cfg.CompilationCacheDir is set), the "env" host module with
// every proxy-wasm v0.2.1 host call, WASI preview 1, and the function
// through which instrumented guests yield (so that one in an endless loop
// can be stopped). It fails if the cache directory cannot be made, a foreign
// function is not named wedge_*, or the metrics collector cannot be
// registered.
func New(ctx context.Context, cfg Config) (*Host, error) {
	h := &Host{
		log:        cfg.Logger,
		dispatcher: cfg.Dispatcher,
		foreign:    cfg.ForeignFunctions,
		chains:     make(map[*Chain]struct{}),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	for name := range cfg.ForeignFunctions {
		if !strings.HasPrefix(name, "wedge_") {
			return nil, fmt.Errorf("starting plugin host: foreign function %q: name must start with wedge_", name)
		}
	}
	h.shared.init()
	h.queues.init()
	h.metrics = newMetricSet()
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.metrics); err != nil {
			return nil, fmt.Errorf("starting plugin host: registering metrics: %w", err)
		}
	}

	if cfg.CompilationCacheDir != "" {
		if err := os.MkdirAll(cfg.CompilationCacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("starting plugin host: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CompilationCacheDir)
		if err != nil {
			return nil, fmt.Errorf("starting plugin host: opening compilation cache: %w", err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	// Not WithCloseOnContextDone: guests are instrumented (internal/meter)
	// instead, which costs far less per call; see RATIONALE.md.
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache)
	h.rt = wazero.NewRuntimeWithConfig(ctx, rc)

	if err := h.instantiateHostModules(ctx); err != nil {
		_ = h.rt.Close(ctx)
		_ = h.cache.Close(ctx)
		return nil, fmt.Errorf("starting plugin host: %w", err)
	}
	h.watch = newWatchdog()
	return h, nil
}

// instantiateHostModules registers "env" (the proxy-wasm host calls and a
// few toolchain shims), WASI and meter's yield, and records their
// signatures.
func (h *Host) instantiateHostModules(ctx context.Context) error {
	b := h.rt.NewHostModuleBuilder("env")
	for i := range hostCalls {
		hc := &hostCalls[i]
		b.NewFunctionBuilder().
			WithGoModuleFunction(hc.fn, hc.params, hc.results).
			Export(hc.name)
	}
	envMod, err := b.Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiating env: %w", err)
	}
	wasiMod, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt)
	if err != nil {
		return fmt.Errorf("instantiating WASI: %w", err)
	}
	_ = wasiMod
	meterMod, err := h.rt.NewHostModuleBuilder(meter.ImportModule).
		NewFunctionBuilder().
		WithGoFunction(api.GoFunc(hYield), nil, nil).
		Export(meter.ImportName).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiating %s: %w", meter.ImportModule, err)
	}
	h.imports = map[string]map[string]api.FunctionDefinition{
		"env":              envMod.ExportedFunctionDefinitions(),
		wasiModule:         h.rt.Module(wasiModule).ExportedFunctionDefinitions(),
		meter.ImportModule: meterMod.ExportedFunctionDefinitions(),
	}
	return nil
}

// Close closes every chain still open (each drains as Chain.Close does,
// bounded by ctx), then the runtime and the compilation cache. Plugins'
// metrics stay registered, frozen.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	chains := make([]*Chain, 0, len(h.chains))
	for c := range h.chains {
		chains = append(chains, c)
	}
	h.mu.Unlock()
	var first error
	for _, c := range chains {
		if err := c.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	h.watch.close()
	if err := h.rt.Close(ctx); err != nil && first == nil {
		first = fmt.Errorf("closing plugin host: %w", err)
	}
	if err := h.cache.Close(ctx); err != nil && first == nil {
		first = fmt.Errorf("closing plugin host: %w", err)
	}
	return first
}

func (h *Host) addChain(c *Chain) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.chains[c] = struct{}{}
	return nil
}

func (h *Host) removeChain(c *Chain) {
	h.mu.Lock()
	delete(h.chains, c)
	h.mu.Unlock()
}
