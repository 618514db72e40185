package listen

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// routerWasm is the built-in router as committed: Wedge makes no routing
// decision of its own, so every test pipeline runs it (server/ never
// imports package plugins; the tests read the file).
const routerWasm = "../../plugins/router/router.wasm"

var testPlugins struct {
	once sync.Once
	h    *pluginhost.Host
	err  error
}

// proxyOptions returns pipeline options with a plugin host shared by the
// package's tests (the router is compiled once).
func proxyOptions(t testing.TB) proxy.Options {
	t.Helper()
	testPlugins.once.Do(func() {
		testPlugins.h, testPlugins.err = pluginhost.New(context.Background(), pluginhost.Config{
			CompilationCacheDir: filepath.Join(os.TempDir(), "wedge-listen-test-wasm"),
			ForeignFunctions:    proxy.ForeignFunctions(),
			Logger:              slog.New(slog.DiscardHandler),
		})
	})
	if testPlugins.err != nil {
		t.Fatal(testPlugins.err)
	}
	return proxy.Options{Plugins: testPlugins.h}
}

// routeAll makes the chain the router alone, with routes (JSON), so the
// tests see the pipeline without the cache and compress of the default
// chain.
func routeAll(cfg *config.Config, routes string) {
	cfg.Plugins = []config.Plugin{{Name: "router", Path: routerWasm, Config: config.JSONValue(routes), PoolSize: 1}}
	cfg.ApplyDefaults()
}
