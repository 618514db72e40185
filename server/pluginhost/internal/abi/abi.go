// Package abi writes down the proxy-wasm ABI v0.2.1 as the host sees it:
// the status codes, enums, callback and host-call names with their wasm
// signatures, and the serialization of header maps and property values.
//
// Everything here follows the specification at
// github.com/proxy-wasm/spec, abi-versions/v0.2.1/README.md ("the spec");
// section names below are that document's headings. Integers in guest
// memory are little-endian; pointers and size_t are 32-bit (wasm32).
//
// The package holds no state and imports nothing from wazero, so the plugin
// host, its tests and the fuzzers can share it.
package abi

// Status is proxy_status_t, the result of every proxy_* host call
// (spec "Types").
type Status uint32

// Status codes (spec "proxy_status_t"). 5, 9 and 11 are unassigned.
const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCASMismatch          Status = 8
	StatusInternalFailure      Status = 10
	StatusUnimplemented        Status = 12
)

// String returns the status name as the spec spells it.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusNotFound:
		return "NOT_FOUND"
	case StatusBadArgument:
		return "BAD_ARGUMENT"
	case StatusSerializationFailure:
		return "SERIALIZATION_FAILURE"
	case StatusParseFailure:
		return "PARSE_FAILURE"
	case StatusInvalidMemoryAccess:
		return "INVALID_MEMORY_ACCESS"
	case StatusEmpty:
		return "EMPTY"
	case StatusCASMismatch:
		return "CAS_MISMATCH"
	case StatusInternalFailure:
		return "INTERNAL_FAILURE"
	case StatusUnimplemented:
		return "UNIMPLEMENTED"
	}
	return "UNKNOWN"
}

// Action is proxy_action_t, returned by the stream callbacks.
// Hosts treat any value other than ActionContinue as a pause, as Envoy does.
const (
	ActionContinue uint32 = 0
	ActionPause    uint32 = 1
)

// LogLevel is proxy_log_level_t.
const (
	LogTrace    uint32 = 0
	LogDebug    uint32 = 1
	LogInfo     uint32 = 2
	LogWarn     uint32 = 3
	LogError    uint32 = 4
	LogCritical uint32 = 5
)

// BufferType is proxy_buffer_type_t, the buffer_id of proxy_get_buffer_bytes,
// proxy_set_buffer_bytes and proxy_get_buffer_status.
const (
	BufferHTTPRequestBody      uint32 = 0
	BufferHTTPResponseBody     uint32 = 1
	BufferDownstreamData       uint32 = 2
	BufferUpstreamData         uint32 = 3
	BufferHTTPCallResponseBody uint32 = 4
	BufferGRPCCallMessage      uint32 = 5
	BufferVMConfiguration      uint32 = 6
	BufferPluginConfiguration  uint32 = 7
	BufferForeignFunctionArgs  uint32 = 8
	bufferTypeCount                   = 9
)

// ValidBuffer reports whether id is a buffer_id the spec defines.
func ValidBuffer(id uint32) bool { return id < bufferTypeCount }

// MapType is proxy_map_type_t, the map_id of the header map host calls.
const (
	MapHTTPRequestHeaders       uint32 = 0
	MapHTTPRequestTrailers      uint32 = 1
	MapHTTPResponseHeaders      uint32 = 2
	MapHTTPResponseTrailers     uint32 = 3
	MapGRPCInitialMetadata      uint32 = 4
	MapGRPCTrailingMetadata     uint32 = 5
	MapHTTPCallResponseHeaders  uint32 = 6
	MapHTTPCallResponseTrailers uint32 = 7
	mapTypeCount                       = 8
)

// ValidMap reports whether id is a map_id the spec defines.
func ValidMap(id uint32) bool { return id < mapTypeCount }

// StreamType is proxy_stream_type_t, the argument of proxy_continue_stream
// and proxy_close_stream.
const (
	StreamHTTPRequest  uint32 = 0
	StreamHTTPResponse uint32 = 1
	StreamDownstream   uint32 = 2
	StreamUpstream     uint32 = 3
)

// MetricType is proxy_metric_type_t.
const (
	MetricCounter   uint32 = 0
	MetricGauge     uint32 = 1
	MetricHistogram uint32 = 2
)

// WASI errno values the spec names (wasi_errno_t).
const (
	ErrnoSuccess uint32 = 0
	ErrnoBadf    uint32 = 8
	ErrnoFault   uint32 = 21
	ErrnoInval   uint32 = 28
	ErrnoNotsup  uint32 = 58
)
