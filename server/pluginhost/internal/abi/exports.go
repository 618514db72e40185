package abi

// Callback identifies a function the guest exports and the host calls
// (spec "Callbacks exposed by the Wasm module"). All of them are optional
// except where Required says otherwise.
type Callback int

// The callbacks, in the order of the spec. Every parameter and result is an
// i32 (wasm32 pointers, size_t, uint32_t and bool all lower to i32).
const (
	CbInitialize           Callback = iota // _initialize: () -> ()
	CbStart                                // _start: () -> (), only without _initialize
	CbMain                                 // main(unused, unused) -> unused, only with _initialize
	CbMemoryAllocate                       // proxy_on_memory_allocate(size) -> ptr
	CbMalloc                               // malloc(size) -> ptr, only without proxy_on_memory_allocate
	CbContextCreate                        // proxy_on_context_create(context_id, parent_context_id)
	CbDone                                 // proxy_on_done(context_id) -> bool
	CbLog                                  // proxy_on_log(context_id)
	CbDelete                               // proxy_on_delete(context_id)
	CbVMStart                              // proxy_on_vm_start(unused, vm_configuration_size) -> bool
	CbConfigure                            // proxy_on_configure(plugin_context_id, plugin_configuration_size) -> bool
	CbTick                                 // proxy_on_tick(plugin_context_id)
	CbNewConnection                        // proxy_on_new_connection(context_id) -> action
	CbDownstreamData                       // proxy_on_downstream_data(context_id, data_size, end_of_stream) -> action
	CbDownstreamClose                      // proxy_on_downstream_connection_close(context_id, peer_type)
	CbUpstreamData                         // proxy_on_upstream_data(context_id, data_size, end_of_stream) -> action
	CbUpstreamClose                        // proxy_on_upstream_connection_close(context_id, peer_type)
	CbRequestHeaders                       // proxy_on_request_headers(context_id, num_headers, end_of_stream) -> action
	CbRequestBody                          // proxy_on_request_body(context_id, body_size, end_of_stream) -> action
	CbRequestTrailers                      // proxy_on_request_trailers(context_id, num_trailers) -> action
	CbResponseHeaders                      // proxy_on_response_headers(context_id, num_headers, end_of_stream) -> action
	CbResponseBody                         // proxy_on_response_body(context_id, body_size, end_of_stream) -> action
	CbResponseTrailers                     // proxy_on_response_trailers(context_id, num_trailers) -> action
	CbHTTPCallResponse                     // proxy_on_http_call_response(plugin_context_id, call_id, num_headers, body_size, num_trailers)
	CbGRPCInitialMetadata                  // proxy_on_grpc_receive_initial_metadata(plugin_context_id, call_id, num_elements)
	CbGRPCReceive                          // proxy_on_grpc_receive(plugin_context_id, call_id, message_size)
	CbGRPCTrailingMetadata                 // proxy_on_grpc_receive_trailing_metadata(plugin_context_id, call_id, num_elements)
	CbGRPCClose                            // proxy_on_grpc_close(plugin_context_id, call_id, status_code)
	CbQueueReady                           // proxy_on_queue_ready(plugin_context_id, queue_id)
	CbForeignFunction                      // proxy_on_foreign_function(plugin_context_id, function_id, arguments_size)
	NumCallbacks
)

// CallbackSig is the name and i32 arity of one callback.
type CallbackSig struct {
	Name    string
	Params  int // number of i32 parameters
	Results int // 0 or 1 i32 result
}

// Callbacks lists every callback's export name and signature, indexed by
// Callback.
var Callbacks = [NumCallbacks]CallbackSig{
	CbInitialize:           {"_initialize", 0, 0},
	CbStart:                {"_start", 0, 0},
	CbMain:                 {"main", 2, 1},
	CbMemoryAllocate:       {"proxy_on_memory_allocate", 1, 1},
	CbMalloc:               {"malloc", 1, 1},
	CbContextCreate:        {"proxy_on_context_create", 2, 0},
	CbDone:                 {"proxy_on_done", 1, 1},
	CbLog:                  {"proxy_on_log", 1, 0},
	CbDelete:               {"proxy_on_delete", 1, 0},
	CbVMStart:              {"proxy_on_vm_start", 2, 1},
	CbConfigure:            {"proxy_on_configure", 2, 1},
	CbTick:                 {"proxy_on_tick", 1, 0},
	CbNewConnection:        {"proxy_on_new_connection", 1, 1},
	CbDownstreamData:       {"proxy_on_downstream_data", 3, 1},
	CbDownstreamClose:      {"proxy_on_downstream_connection_close", 2, 0},
	CbUpstreamData:         {"proxy_on_upstream_data", 3, 1},
	CbUpstreamClose:        {"proxy_on_upstream_connection_close", 2, 0},
	CbRequestHeaders:       {"proxy_on_request_headers", 3, 1},
	CbRequestBody:          {"proxy_on_request_body", 3, 1},
	CbRequestTrailers:      {"proxy_on_request_trailers", 2, 1},
	CbResponseHeaders:      {"proxy_on_response_headers", 3, 1},
	CbResponseBody:         {"proxy_on_response_body", 3, 1},
	CbResponseTrailers:     {"proxy_on_response_trailers", 2, 1},
	CbHTTPCallResponse:     {"proxy_on_http_call_response", 5, 0},
	CbGRPCInitialMetadata:  {"proxy_on_grpc_receive_initial_metadata", 3, 0},
	CbGRPCReceive:          {"proxy_on_grpc_receive", 3, 0},
	CbGRPCTrailingMetadata: {"proxy_on_grpc_receive_trailing_metadata", 3, 0},
	CbGRPCClose:            {"proxy_on_grpc_close", 3, 0},
	CbQueueReady:           {"proxy_on_queue_ready", 2, 0},
	CbForeignFunction:      {"proxy_on_foreign_function", 3, 0},
}

// ABI version markers (spec "proxy_abi_version_0_2_1"): a guest exports one
// of them, as a () -> () function that is never called. v0.2.0 and v0.2.1
// share every signature, so the host accepts both; proxy-wasm-go-sdk still
// exports the v0.2.0 marker.
const (
	MarkerV010 = "proxy_abi_version_0_1_0"
	MarkerV020 = "proxy_abi_version_0_2_0"
	MarkerV021 = "proxy_abi_version_0_2_1"
)

// MemoryExport is the name under which a guest must export its memory.
const MemoryExport = "memory"

// RootContextID is the context id Wedge gives the plugin (root) context in
// every VM. Stream context ids start above it. The spec leaves ids to the
// host; only 0 is reserved (a parent_context_id of 0 means "no parent").
const RootContextID uint32 = 1
