// Package pluginhost runs Wedge's WASM plugins: a proxy-wasm ABI v0.2.1
// host (github.com/proxy-wasm/spec, abi-versions/v0.2.1/README.md) on
// wazero. Filters written with any proxy-wasm SDK (Go, Rust, C++,
// AssemblyScript) run unmodified, and a misbehaving plugin fails only the
// request it was handling.
//
// # Use
//
// A Host is one wazero runtime with its compilation cache and the state
// plugins share host-wide (shared data, shared queues, metrics). A Chain is
// an ordered list of plugins, each compiled once and run as a pool of VMs;
// NewChain fails, naming the plugin, if one does not load. Each request
// gets a Stream, which runs the phases:
//
//	s := chain.NewStream(&pluginhost.StreamInfo{ID: id, Source: src, DefaultUpstream: "app"})
//	defer s.Finish(ctx)                          // proxy_on_log, _done, _delete
//	out := s.OnRequestHeaders(ctx, req)          // before the body is read
//	out = s.OnRequestBody(ctx, req, body)        // whole body, end_of_stream true
//	// ... upstream s.Upstream(), or the static mount s.StaticMount() ...
//	out = s.OnResponseHeaders(ctx, resp)         // reverse chain order
//	out = s.OnResponseBody(ctx, resp, respBody)  // reverse chain order
//
// Each phase returns an Outcome: nothing (go on), a LocalResponse to send
// instead, or an error (a plugin failed and is not fail-open: answer 500;
// or ErrStreamClosed: reset the stream). A plugin that pauses
// (proxy_action_t PAUSE) holds the phase call until it resumes with
// proxy_continue_stream, answers, or runs out of time.
//
// # Host calls
//
// Every proxy_* function of ABI v0.2.1 is provided: logging, clocks, ticks,
// header maps with the pseudo-fields :method, :path, :authority, :scheme
// and :status, buffers (read by range, so a body spilled to disk is never
// loaded whole), proxy_send_local_response, properties, shared data with
// compare-and-swap, shared queues, metrics, proxy_http_call to a named
// upstream through an HTTPDispatcher, contexts, and
// proxy_call_foreign_function for wedge_* functions. gRPC calls and TCP
// streams answer UNIMPLEMENTED. WASI preview 1 is wazero's, with stdout and
// stderr turned into log records, real clocks and crypto/rand. The v0.1.0
// names SDKs still import (proxy_get_configuration, proxy_continue_request,
// proxy_continue_response, proxy_clear_route_cache) and the shims their
// toolchains import (AssemblyScript's env.abort and env.seed, Emscripten's
// env.emscripten_notify_memory_growth) are provided too.
//
// # Properties
//
// proxy_get_property answers Envoy's attribute names, serialized as Envoy
// does (strings as bytes, integers as 8 bytes little-endian, maps as header
// maps): plugin_name, plugin_root_id, plugin_vm_id; request.path,
// request.url_path, request.host, request.scheme, request.method,
// request.headers (and request.headers.<name>), request.referer,
// request.useragent, request.id, request.protocol, request.query,
// request.time, request.duration, request.size; response.code,
// response.code_details, response.headers (and response.headers.<name>),
// response.size, response.flags; source.address, source.port,
// destination.address, destination.port (addresses as "ip:port", as Envoy);
// connection.id, connection.mtls, connection.tls_version,
// connection.requested_server_name; upstream.address, upstream.port.
// Wedge's own, readable and writable by plugins: wedge.upstream (the
// upstream pool the request goes to) and wedge.static (the static mount to
// serve it from). proxy_set_property on any other name outside request.*
// and response.* stores a value later plugins of the same request read back.
//
// # Isolation
//
// Every pointer and length a guest passes is bounds-checked; a bad one
// answers INVALID_MEMORY_ACCESS, as the spec says, and a broken contract
// the host cannot answer (a failing allocator, a host call from inside the
// allocator) traps that VM. A callback has a deadline
// (PluginSpec.CallbackTimeout: guests are instrumented at load so that the
// host gets control back regularly, and a watchdog stops a guest in an
// endless loop), a VM has a memory cap
// (PluginSpec.MemoryLimitBytes), and a trap, a timeout or the cap fails the
// request (or skips the plugin, with FailOpen) and the VM is thrown away;
// the next request gets a fresh one.
//
// See RATIONALE.md for the design and the alternatives not taken.
package pluginhost
