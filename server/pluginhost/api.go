package pluginhost

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Sentinel errors. Errors returned by this package wrap one of them (or a
// context error) with %w, so callers test them with errors.Is.
var (
	// ErrClosed is returned for work on a Host or Chain after Close.
	ErrClosed = errors.New("plugin host closed")
	// ErrInvalidPlugin wraps every reason a plugin fails to load: a module
	// that does not compile, a missing or mistyped export, an import the
	// host does not provide, or a false from proxy_on_vm_start or
	// proxy_on_configure.
	ErrInvalidPlugin = errors.New("invalid plugin")
	// ErrPluginFailed wraps the failure of a callback: a trap, a
	// proc_exit, or a memory cap the guest ran into. The VM is replaced.
	ErrPluginFailed = errors.New("plugin failed")
	// ErrCallbackTimeout is returned when a callback ran past
	// PluginSpec.CallbackTimeout. The VM is stopped and replaced.
	ErrCallbackTimeout = errors.New("plugin callback timed out")
	// ErrPauseTimeout is returned when a plugin paused a stream
	// (proxy_action_t PAUSE) and did not resume it within
	// PluginSpec.PauseTimeout.
	ErrPauseTimeout = errors.New("plugin paused the stream for too long")
	// ErrVMLost is returned for a stream whose plugin context lived in a VM
	// that another request made fail: its state is gone with that VM.
	ErrVMLost = errors.New("plugin VM was replaced during the stream")
	// ErrStreamClosed is returned when a plugin called proxy_close_stream:
	// the proxy should reset the client connection (or stream) without
	// answering.
	ErrStreamClosed = errors.New("plugin closed the stream")
)

// Config configures a Host. The zero value is usable: an in-memory
// compilation cache, slog.Default, no metrics export, and proxy_http_call
// answering INTERNAL_FAILURE.
type Config struct {
	// CompilationCacheDir is a directory where wazero keeps compiled
	// plugins between runs, so a restart compiles a Go guest in tens of
	// milliseconds instead of about a second. It is created if missing.
	// Empty: compiled code is cached in memory only, for this Host.
	CompilationCacheDir string
	// Logger receives plugin logs (proxy_log, and WASI stdout at INFO and
	// stderr at ERROR, as the spec's fd_write asks) and the host's own
	// events (a VM that failed and was replaced). Each record carries the
	// plugin name and, inside a request, the request ID.
	// Nil: slog.Default().
	Logger *slog.Logger
	// Registerer, when set, gets one collector that exports the metrics
	// plugins define with proxy_define_metric, named "wedge_" plus the
	// metric name with characters outside [a-zA-Z0-9_:] turned into "_",
	// labelled plugin="<name>", and the host's own
	// wedge_plugin_vm_failures_total{plugin,reason} and
	// wedge_plugin_vms{plugin}.
	Registerer prometheus.Registerer
	// Dispatcher sends the requests plugins make with proxy_http_call.
	// Nil: proxy_http_call answers INTERNAL_FAILURE.
	Dispatcher HTTPDispatcher
	// ForeignFunctions are the functions guests may call by name with
	// proxy_call_foreign_function. Every name must start with "wedge_".
	// Unknown names answer NOT_FOUND, as the spec says.
	ForeignFunctions map[string]ForeignFunction
}

// HTTPDispatcher sends one HTTP request to a named upstream pool for
// proxy_http_call and returns the whole response. It is called from its own
// goroutine, never while a VM is held, so it may block until timeout.
//
// A dispatcher that also has a method HasUpstream(name string) bool lets
// proxy_http_call answer BAD_ARGUMENT for an unknown pool at once, as the
// spec asks; otherwise an unknown pool is reported to the plugin as a
// failed call (proxy_on_http_call_response with num_headers 0).
type HTTPDispatcher interface {
	// Dispatch sends req (origin-form Target, Host from :authority) with
	// body to the pool named upstream. timeout is the plugin's, or 60s when
	// it gave 0. The response body is returned whole.
	Dispatch(ctx context.Context, upstream string, req *message.Request, body []byte, timeout time.Duration) (*message.Response, []byte, error)
}

// ForeignFunction is a host function guests call with
// proxy_call_foreign_function (spec "Foreign function interface"). call
// says who called; it and call.Stream must not be kept after the call
// (Streams are recycled). args is a view of guest memory, valid only
// during the call. The result is copied into the guest. A non-nil error
// answers INTERNAL_FAILURE and is logged with the plugin's name. It runs
// while the VM is held and must not block.
type ForeignFunction func(call *ForeignCall, args []byte) ([]byte, error)

// ForeignCall describes the caller of a ForeignFunction.
type ForeignCall struct {
	// Plugin is the calling plugin's PluginSpec.Name.
	Plugin string
	// Attachment is the calling plugin's PluginSpec.Attachment: what the
	// embedder tied to the plugin (for instance the configuration
	// generation it belongs to), so a function called from a root context
	// (proxy_on_configure, a tick) still knows where it runs.
	Attachment any
	// Stream is the stream of the calling HTTP context, or nil when the
	// plugin (root) context calls. Its Info().Attachment is what the
	// embedder tied to the request.
	Stream *Stream
}

// PluginSpec describes one plugin of a chain.
type PluginSpec struct {
	// Name identifies the plugin in errors, logs, metrics and the
	// plugin_name property. Required, unique within a chain.
	Name string
	// Wasm is the module: a proxy-wasm v0.2.x guest exporting memory, an
	// allocator (proxy_on_memory_allocate or malloc),
	// proxy_on_context_create and an ABI marker.
	Wasm []byte
	// Configuration is handed to proxy_on_configure as the
	// PLUGIN_CONFIGURATION buffer (JSON by Wedge's convention).
	Configuration []byte
	// VMConfiguration is handed to proxy_on_vm_start as the
	// VM_CONFIGURATION buffer.
	VMConfiguration []byte
	// RootID is the plugin_root_id property. Default: Name.
	RootID string
	// VMID is the plugin_vm_id property and the namespace that
	// proxy_resolve_shared_queue looks queues up in. Default: "".
	VMID string
	// PoolSize is how many VMs (instances) run the plugin; a request is
	// pinned to one of them for its life. Default: GOMAXPROCS.
	PoolSize int
	// CallbackTimeout bounds one callback; a guest still running then is
	// stopped, at most 20ms later, and its VM replaced. Start-up callbacks
	// (_initialize, proxy_on_vm_start, proxy_on_configure) get ten times as
	// long, at least 5s. Default: 1s.
	CallbackTimeout time.Duration
	// PauseTimeout bounds how long a plugin may hold a stream paused
	// before proxy_continue_stream. The phase's context bounds it too.
	// Default: 60s.
	PauseTimeout time.Duration
	// MemoryLimitBytes caps each VM's linear memory; a memory.grow past it
	// fails, which guests usually turn into a trap. Default: 128 MiB.
	MemoryLimitBytes int64
	// FailOpen, when true, skips the plugin for the rest of a request whose
	// callback failed, instead of failing the request.
	FailOpen bool
	// Attachment is handed, untouched, to the foreign functions this
	// plugin calls (ForeignCall.Attachment). Nil is fine.
	Attachment any
}

// StreamInfo is what the plugin host knows of a request's connection,
// exposed to guests as properties.
type StreamInfo struct {
	// ID identifies the request in logs; it is request.id when the
	// request has no x-request-id field. Empty: Seq in base 36, formatted
	// only when a log record or a plugin needs it.
	ID string
	// Seq is a number unique to the request within the process, the ID
	// when ID is empty. It lets a request that nothing logs about cost no
	// formatting.
	Seq uint64
	// Source is the client's address (source.address, source.port).
	Source netip.AddrPort
	// Destination is the local address the client reached
	// (destination.address, destination.port).
	Destination netip.AddrPort
	// ConnectionID identifies the client connection (connection.id).
	ConnectionID uint64
	// TLSVersion is connection.tls_version, as Envoy spells it
	// ("TLSv1.2", "TLSv1.3"); empty for plain text.
	TLSVersion string
	// SNI is connection.requested_server_name.
	SNI string
	// DefaultUpstream is the initial value of wedge.upstream.
	DefaultUpstream string
	// Start is when the request's first byte arrived (request.time).
	// Zero: when NewStream was called.
	Start time.Time
	// Attachment is the embedder's per-request state, handed untouched to
	// foreign functions through ForeignCall.Stream.Info(). Nil is fine.
	Attachment any
	// RequestHook, when set, may answer the request in a plugin's place
	// before that plugin's proxy_on_request_headers runs. Nil is fine.
	RequestHook RequestHook
}

// RequestHook lets the embedder answer a request in a plugin's place, or
// leave the plugin out of it: the cache store serves a fresh entry its
// plugin marked as servable without asking it (wedge_cache_store's
// fresh_ms), and passes requests for a key the plugin found uncacheable
// (wedge_cache_pass).
type RequestHook interface {
	// BeforeRequestHeaders is called, on the stream's goroutine and
	// outside any callback, before plugin's proxy_on_request_headers
	// (only for plugins that export it). A non-nil answer ends the phase
	// as if the plugin had called proxy_send_local_response with it in
	// that callback: the callback does not run, no context of the stream
	// is made in the plugin, and the response phases run for the plugins
	// before it. skip (with a nil answer) leaves the plugin out of the
	// whole stream: none of its callbacks runs for it. The hook may set
	// wedge.upstream meanwhile (Stream.SetUpstream).
	BeforeRequestHeaders(plugin string) (answer *LocalResponse, skip bool)
}

// Outcome is the result of one phase of a chain.
type Outcome struct {
	// Local is set when a plugin answered with proxy_send_local_response:
	// the proxy sends it instead of going upstream (request phases) or
	// instead of the upstream's response (response phases).
	Local *LocalResponse
	// Err is set when a plugin that is not FailOpen failed (trap, timeout,
	// pause timeout: the proxy answers 500), closed the stream
	// (ErrStreamClosed), or when ctx ended while a plugin held the stream.
	Err error
}

// LocalResponse is a response a plugin made with proxy_send_local_response.
type LocalResponse struct {
	// Status is the status code, 100 to 999 (200 when the plugin gave 0).
	Status int
	// Header holds the fields the plugin gave, without pseudo-fields.
	Header message.Header
	// Body is the content the plugin gave.
	Body []byte
	// Details is the plugin's status_code_details, for logs
	// (response.code_details).
	Details string
}

// Body is a buffered message body as the proxy holds it: in memory, or
// spilled to an unlinked temporary file. Plugins read it by range with
// proxy_get_buffer_bytes and edit it with proxy_set_buffer_bytes.
// The host calls it only while the phase it was given to runs, and never
// concurrently, though not always from the phase's goroutine (a plugin
// may edit it from proxy_on_http_call_response while it holds the stream
// paused).
type Body interface {
	// Len returns the body's length in bytes.
	Len() int64
	// ReadAt reads len(p) bytes at off, as io.ReaderAt does. p is guest
	// memory: it must not be kept after the call.
	ReadAt(p []byte, off int64) (int, error)
	// Replace replaces length bytes at start with data, the three
	// operations of proxy_set_buffer_bytes: prepend (0, 0), append
	// (Len(), 0) and replace. start and length are already clamped to the
	// body. data is guest memory: it must be copied, not kept.
	Replace(start, length int64, data []byte) error
}
