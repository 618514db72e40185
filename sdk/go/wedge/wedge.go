package wedge

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Sentinel errors. Errors from the host come back as proxy-wasm-go-sdk's
// types.ErrorStatus* values, wrapped with the property's name; test them
// with errors.Is.
var (
	// ErrMalformed is returned for a property value whose bytes are not
	// the serialization the helper decodes: an integer that is not 8
	// bytes, a boolean that is not 1, a map whose sizes run past its end,
	// an address that is not "ip:port".
	ErrMalformed = errors.New("malformed property value")
	// ErrEmptyValue is returned by the setters for an empty value:
	// proxy-wasm-go-sdk's SetProperty refuses empty data, so an empty
	// value never reaches the host.
	ErrEmptyValue = errors.New("empty property value")
)

// Property paths, as the segments proxywasm.GetProperty takes (the SDK
// joins them with NUL bytes; Wedge also accepts the dotted form).
var (
	pathPluginName       = []string{"plugin_name"}
	pathPluginRootID     = []string{"plugin_root_id"}
	pathPluginVMID       = []string{"plugin_vm_id"}
	pathRequestPath      = []string{"request", "path"}
	pathRequestURLPath   = []string{"request", "url_path"}
	pathRequestQuery     = []string{"request", "query"}
	pathRequestHost      = []string{"request", "host"}
	pathRequestScheme    = []string{"request", "scheme"}
	pathRequestMethod    = []string{"request", "method"}
	pathRequestProtocol  = []string{"request", "protocol"}
	pathRequestID        = []string{"request", "id"}
	pathRequestReferer   = []string{"request", "referer"}
	pathRequestUserAgent = []string{"request", "useragent"}
	pathRequestHeaders   = []string{"request", "headers"}
	pathRequestTime      = []string{"request", "time"}
	pathRequestDuration  = []string{"request", "duration"}
	pathRequestSize      = []string{"request", "size"}
	pathResponseCode     = []string{"response", "code"}
	pathResponseDetails  = []string{"response", "code_details"}
	pathResponseHeaders  = []string{"response", "headers"}
	pathResponseSize     = []string{"response", "size"}
	pathResponseFlags    = []string{"response", "flags"}
	pathSourceAddress    = []string{"source", "address"}
	pathDestAddress      = []string{"destination", "address"}
	pathConnectionID     = []string{"connection", "id"}
	pathConnectionMTLS   = []string{"connection", "mtls"}
	pathTLSVersion       = []string{"connection", "tls_version"}
	pathSNI              = []string{"connection", "requested_server_name"}
	pathUpstreamAddress  = []string{"upstream", "address"}
	pathWedgeUpstream    = []string{"wedge", "upstream"}
	pathWedgeStatic      = []string{"wedge", "static"}
	pathWedgeStaticPath  = []string{"wedge", "static_path"}
)

// --- Wedge's own -------------------------------------------------------------

// SetUpstream sets wedge.upstream: the upstream pool (a name under
// upstreams: in wedge.yaml) the request is sent to. Set it in
// proxy_on_request_headers (OnHttpRequestHeaders): Wedge routes the
// request as soon as that phase ends, so a value set later has no effect.
// A pool that is not configured fails the request with 500. It returns
// ErrEmptyValue for "", and the host's error (wrapped) otherwise.
func SetUpstream(pool string) error {
	return setString(pathWedgeUpstream, pool)
}

// Upstream returns wedge.upstream: the pool the request goes to, "" until
// a plugin (the built-in router) sets it.
func Upstream() (string, error) { return getString(pathWedgeUpstream) }

// SetStaticMount sets wedge.static: the name of a static mount (one a
// plugin opened with the host call wedge_static_mount, as the built-in
// router does for its static routes) to serve the request from instead of
// an upstream. The file served is wedge.static_path (SetStaticPath) under
// the mount's root, or the request's path when that is unset; a name no
// plugin opened fails the request with 500. It takes effect when set in
// proxy_on_request_headers, or in proxy_on_response_headers of a response
// carrying X-Accel-Redirect (the file then replaces it). It returns
// ErrEmptyValue for "".
func SetStaticMount(name string) error {
	return setString(pathWedgeStatic, name)
}

// StaticMount returns wedge.static: the static mount a plugin chose, or
// "" when none did.
func StaticMount() (string, error) { return getString(pathWedgeStatic) }

// SetStaticPath sets wedge.static_path: the URL path (percent-encoded,
// starting with "/") of the file inside the mount of wedge.static, "/a.css"
// for the file a.css under its root. It returns ErrEmptyValue for "".
func SetStaticPath(p string) error {
	return setString(pathWedgeStaticPath, p)
}

// StaticPath returns wedge.static_path, or "" when no plugin set it.
func StaticPath() (string, error) { return getString(pathWedgeStaticPath) }

// SetStreamProperty stores value under name for the rest of the request:
// plugins later in the chain (and later phases) read it back with
// StreamProperty, as Envoy's filter state. name must not be one of the
// properties this package reads nor start with "request." or
// "response." (BAD_ARGUMENT); a request holds at most 256 of them, each
// at most 64 KiB. Names under "wedge." are reserved for Wedge's own.
// It returns ErrEmptyValue for an empty value.
func SetStreamProperty(name string, value []byte) error {
	if len(value) == 0 {
		return fmt.Errorf("setting property %s: %w", name, ErrEmptyValue)
	}
	if err := proxywasm.SetProperty([]string{name}, value); err != nil {
		return fmt.Errorf("setting property %s: %w", name, err)
	}
	return nil
}

// StreamProperty returns what a plugin stored under name with
// SetStreamProperty for this request (NOT_FOUND when none did).
func StreamProperty(name string) ([]byte, error) {
	b, err := proxywasm.GetProperty([]string{name})
	if err != nil {
		return nil, fmt.Errorf("getting property %s: %w", name, err)
	}
	return b, nil
}

// --- the plugin ----------------------------------------------------------------

// PluginName returns plugin_name: the plugin's name: in wedge.yaml.
func PluginName() (string, error) { return getString(pathPluginName) }

// PluginRootID returns plugin_root_id: root_id: in wedge.yaml, by
// default the plugin's name.
func PluginRootID() (string, error) { return getString(pathPluginRootID) }

// PluginVMID returns plugin_vm_id: vm_id: in wedge.yaml, by default "".
func PluginVMID() (string, error) { return getString(pathPluginVMID) }

// --- the request -----------------------------------------------------------------

// RequestPath returns request.path: the request-target with its query
// ("/a/b?x=1"), as :path, after any plugin's rewrite.
func RequestPath() (string, error) { return getString(pathRequestPath) }

// RequestURLPath returns request.url_path: the path without the query
// ("/a/b").
func RequestURLPath() (string, error) { return getString(pathRequestURLPath) }

// RequestQuery returns request.query: the query without its "?" ("x=1"),
// "" when there is none.
func RequestQuery() (string, error) { return getString(pathRequestQuery) }

// RequestHost returns request.host: the :authority (the Host field),
// "example.com" or "example.com:8080".
func RequestHost() (string, error) { return getString(pathRequestHost) }

// RequestScheme returns request.scheme: "http" or "https".
func RequestScheme() (string, error) { return getString(pathRequestScheme) }

// RequestMethod returns request.method: "GET", "POST", ...
func RequestMethod() (string, error) { return getString(pathRequestMethod) }

// RequestProtocol returns request.protocol as Envoy spells it:
// "HTTP/1.0", "HTTP/1.1", "HTTP/2" or "HTTP/3".
func RequestProtocol() (string, error) { return getString(pathRequestProtocol) }

// RequestID returns request.id: the client's X-Request-Id when it sent
// one, else the id Wedge gave the request (the one in its logs).
func RequestID() (string, error) { return getString(pathRequestID) }

// RequestReferer returns request.referer: the Referer field, "" when
// absent.
func RequestReferer() (string, error) { return getString(pathRequestReferer) }

// RequestUserAgent returns request.useragent: the User-Agent field, ""
// when absent.
func RequestUserAgent() (string, error) { return getString(pathRequestUserAgent) }

// RequestHeader returns request.headers.<name>: the first value of the
// request field name (case-insensitive; "host" and pseudo-fields such as
// ":path" included). A field that is absent is NOT_FOUND.
func RequestHeader(name string) (string, error) {
	return getString([]string{"request", "headers", name})
}

// RequestHeaders returns request.headers: every request field as
// name-value pairs, the pseudo-fields :authority, :path, :method and
// :scheme first, names in lower case, in the order received.
func RequestHeaders() ([][2]string, error) { return getMap(pathRequestHeaders) }

// RequestTime returns request.time: when the request's first byte arrived.
func RequestTime() (time.Time, error) {
	n, err := getInt(pathRequestTime)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n), nil
}

// RequestDuration returns request.duration: the time since the request's
// first byte arrived.
func RequestDuration() (time.Duration, error) {
	n, err := getInt(pathRequestDuration)
	return time.Duration(n), err
}

// RequestSize returns request.size: the request body's length in bytes
// (its buffered length in proxy_on_request_body, its Content-Length
// before). NOT_FOUND before the body is read when the length is not
// declared (a chunked body).
func RequestSize() (int64, error) { return getInt(pathRequestSize) }

// --- the response ----------------------------------------------------------------

// ResponseCode returns response.code: the response status code. It is
// NOT_FOUND before proxy_on_response_headers.
func ResponseCode() (int, error) {
	n, err := getInt(pathResponseCode)
	return int(n), err
}

// ResponseCodeDetails returns response.code_details: "via_upstream" for
// an upstream's response, or the details a plugin gave
// proxy_send_local_response for a local one.
func ResponseCodeDetails() (string, error) { return getString(pathResponseDetails) }

// ResponseHeader returns response.headers.<name>: the first value of the
// response field name (case-insensitive; ":status" included).
func ResponseHeader(name string) (string, error) {
	return getString([]string{"response", "headers", name})
}

// ResponseHeaders returns response.headers: :status then every response
// field, names in lower case.
func ResponseHeaders() ([][2]string, error) { return getMap(pathResponseHeaders) }

// ResponseSize returns response.size: the response body's length in
// bytes (its buffered length in proxy_on_response_body).
func ResponseSize() (int64, error) { return getInt(pathResponseSize) }

// ResponseFlags returns response.flags, Envoy's response flags; Wedge
// always answers 0 once there is a response.
func ResponseFlags() (uint64, error) {
	n, err := getInt(pathResponseFlags)
	return uint64(n), err
}

// --- the connection ----------------------------------------------------------------

// SourceAddress returns source.address: the client's address and port.
func SourceAddress() (netip.AddrPort, error) { return getAddrPort(pathSourceAddress) }

// DestinationAddress returns destination.address: the local address and
// port the client connected to.
func DestinationAddress() (netip.AddrPort, error) { return getAddrPort(pathDestAddress) }

// ConnectionID returns connection.id: a number identifying the client
// connection.
func ConnectionID() (uint64, error) {
	n, err := getInt(pathConnectionID)
	return uint64(n), err
}

// ConnectionMTLS returns connection.mtls: whether the client presented a
// certificate; always false in Wedge today.
func ConnectionMTLS() (bool, error) {
	b, err := proxywasm.GetProperty(pathConnectionMTLS)
	if err != nil {
		return false, fmt.Errorf("getting property connection.mtls: %w", err)
	}
	v, err := decodeBool(b)
	if err != nil {
		return false, fmt.Errorf("decoding property connection.mtls: %w", err)
	}
	return v, nil
}

// TLSVersion returns connection.tls_version: "TLSv1.2" or "TLSv1.3";
// NOT_FOUND on a plain-text connection.
func TLSVersion() (string, error) { return getString(pathTLSVersion) }

// RequestedServerName returns connection.requested_server_name: the TLS
// SNI the client sent; NOT_FOUND on a plain-text connection.
func RequestedServerName() (string, error) { return getString(pathSNI) }

// UpstreamAddress returns upstream.address: the upstream server the
// request went to ("10.0.0.2:8000", or "unix:/run/app.sock"). It is
// NOT_FOUND before the upstream is chosen (request phases) and for local
// responses.
func UpstreamAddress() (string, error) { return getString(pathUpstreamAddress) }

// --- plumbing ------------------------------------------------------------------

func dotted(path []string) string { return strings.Join(path, ".") }

func getString(path []string) (string, error) {
	b, err := proxywasm.GetProperty(path)
	if err != nil {
		return "", fmt.Errorf("getting property %s: %w", dotted(path), err)
	}
	return string(b), nil
}

func setString(path []string, v string) error {
	if v == "" {
		return fmt.Errorf("setting property %s: %w", dotted(path), ErrEmptyValue)
	}
	if err := proxywasm.SetProperty(path, []byte(v)); err != nil {
		return fmt.Errorf("setting property %s: %w", dotted(path), err)
	}
	return nil
}

func getInt(path []string) (int64, error) {
	b, err := proxywasm.GetProperty(path)
	if err != nil {
		return 0, fmt.Errorf("getting property %s: %w", dotted(path), err)
	}
	n, err := decodeInt64(b)
	if err != nil {
		return 0, fmt.Errorf("decoding property %s: %w", dotted(path), err)
	}
	return n, nil
}

func getMap(path []string) ([][2]string, error) {
	b, err := proxywasm.GetProperty(path)
	if err != nil {
		return nil, fmt.Errorf("getting property %s: %w", dotted(path), err)
	}
	m, err := decodeMap(b)
	if err != nil {
		return nil, fmt.Errorf("decoding property %s: %w", dotted(path), err)
	}
	return m, nil
}

func getAddrPort(path []string) (netip.AddrPort, error) {
	s, err := getString(path)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("decoding property %s: %w: %q is not ip:port", dotted(path), ErrMalformed, s)
	}
	return ap, nil
}
