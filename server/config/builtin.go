package config

import "encoding/json"

// Builtins are the names builtin: takes: the plugins compiled into the
// wedge binary (package plugins embeds them; the server gets them through
// its Options).
var Builtins = []string{"router", "cache", "compress"}

// DefaultChain is the plugin chain of a configuration that has no
// plugins: and one upstream pool: the built-in router with a single
// (default) route to pool, then the built-in cache, then the built-in
// compress, each with its default configuration. In YAML:
//
//	plugins:
//	  - name: router
//	    builtin: router
//	    config: {routes: [{upstream: POOL}]}
//	  - {name: cache, builtin: cache}
//	  - {name: compress, builtin: compress}
func DefaultChain(pool string) []Plugin {
	routes, _ := json.Marshal(map[string]any{"routes": []map[string]string{{"upstream": pool}}})
	return []Plugin{
		{Name: "router", Builtin: "router", Config: routes},
		{Name: "cache", Builtin: "cache"},
		{Name: "compress", Builtin: "compress"},
	}
}

// removedFields are top-level keys that older configurations used, with
// what replaced them; the decoder refuses them with this message.
var removedFields = map[string]string{
	"static": "static mounts moved into the router plugin's routes: " +
		"plugins: [{name: router, builtin: router, config: {routes: [{path: /static/, strip_prefix: /static, static: {root: DIR}}, {upstream: POOL}]}}, " +
		"{name: cache, builtin: cache}, {name: compress, builtin: compress}] " +
		"(internal: true on a route for X-Accel-Redirect targets; see plugins/router/README.md)",
	"default_upstream": "the default upstream moved into the router plugin's routes: a route without conditions is the default, " +
		"e.g. plugins: [{name: router, builtin: router, config: {routes: [{upstream: POOL}]}}, " +
		"{name: cache, builtin: cache}, {name: compress, builtin: compress}] (see plugins/router/README.md)",
}
