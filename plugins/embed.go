// Package plugins holds Wedge's built-in plugins, proxy-wasm filters
// written with proxy-wasm-go-sdk (router, cache, compress: one main
// package each, with its own README), and embeds their built .wasm files
// in the wedge binary.
//
// The .wasm files are committed and rebuilt with `task plugins:build`:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o plugins/NAME/NAME.wasm ./plugins/NAME
//
// A build with -trimpath is reproducible with the same Go toolchain, so
// TestBuiltinsUpToDate (and `task check`) rebuilds them and fails when a
// committed file differs from its source.
//
// The server never imports this package: main.go hands Builtin to
// server.Options.Builtins.
package plugins

import (
	"embed"
	"slices"
)

// Names are the built-in plugins, in the order of the default chain
// (config.DefaultChain): router, then cache, then compress.
var Names = []string{"router", "cache", "compress"}

// wasm holds NAME/NAME.wasm for each built-in plugin.
//
//go:embed router/router.wasm cache/cache.wasm compress/compress.wasm
var wasm embed.FS

// Builtin returns the .wasm of the built-in plugin name ("router",
// "cache", "compress"), a fresh copy, and false for any other name.
func Builtin(name string) ([]byte, bool) {
	if !slices.Contains(Names, name) {
		return nil, false
	}
	b, err := wasm.ReadFile(name + "/" + name + ".wasm")
	if err != nil {
		return nil, false
	}
	return b, true
}
