package wedge_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/go/wedge"
)

// The emulator is process-wide state of proxy-wasm-go-sdk, so these tests
// do not run in parallel.

func le64(n int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(n)) }

// mapBytes serializes pairs as proxy-wasm maps are (spec "Serialization").
func mapBytes(pairs ...[2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return b
}

// emulate starts a proxytest host holding props (dotted name -> value)
// and stops it when t ends.
func emulate(t *testing.T, props map[string][]byte) proxytest.HostEmulator {
	t.Helper()
	opt := proxytest.NewEmulatorOption()
	for name, v := range props {
		opt = opt.WithProperty(split(name), v)
	}
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	return host
}

// split turns "request.headers.x-a" into the segments the SDK sends,
// keeping the header name whole.
func split(name string) []string {
	var out []string
	start := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			out = append(out, name[start:i])
			start = i + 1
			if len(out) == 2 && out[1] == "headers" {
				break
			}
		}
	}
	return append(out, name[start:])
}

func TestGetters(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	headers := [][2]string{{":authority", "example.com"}, {":path", "/a?b=1"}, {":method", "GET"}, {":scheme", "http"}, {"x-a", "1"}}
	props := map[string][]byte{
		"plugin_name":                      []byte("router"),
		"plugin_root_id":                   []byte("root"),
		"plugin_vm_id":                     []byte("vm"),
		"request.path":                     []byte("/a?b=1"),
		"request.url_path":                 []byte("/a"),
		"request.query":                    []byte("b=1"),
		"request.host":                     []byte("example.com"),
		"request.scheme":                   []byte("http"),
		"request.method":                   []byte("GET"),
		"request.protocol":                 []byte("HTTP/1.1"),
		"request.id":                       []byte("r-1"),
		"request.referer":                  []byte("https://ref.example/"),
		"request.useragent":                []byte("curl/8"),
		"request.headers":                  mapBytes(headers...),
		"request.headers.x-a":              []byte("1"),
		"request.time":                     le64(start.UnixNano()),
		"request.duration":                 le64(int64(1500 * time.Microsecond)),
		"request.size":                     le64(42),
		"response.code":                    le64(404),
		"response.code_details":            []byte("via_upstream"),
		"response.headers":                 mapBytes([2]string{":status", "404"}),
		"response.headers.content-type":    []byte("text/plain"),
		"response.size":                    le64(9),
		"response.flags":                   le64(0),
		"source.address":                   []byte("192.0.2.7:51000"),
		"destination.address":              []byte("[::1]:8080"),
		"connection.id":                    le64(77),
		"connection.mtls":                  {0},
		"connection.tls_version":           []byte("TLSv1.3"),
		"connection.requested_server_name": []byte("example.com"),
		"upstream.address":                 []byte("127.0.0.1:8000"),
		"wedge.upstream":                   []byte("app"),
		"wedge.static":                     []byte("/assets/"),
	}
	emulate(t, props)

	str := func(f func() (string, error)) any { return must(f()) }
	tests := []struct {
		name string
		got  func() any
		want any
	}{
		{"PluginName", func() any { return str(wedge.PluginName) }, "router"},
		{"PluginRootID", func() any { return str(wedge.PluginRootID) }, "root"},
		{"PluginVMID", func() any { return str(wedge.PluginVMID) }, "vm"},
		{"RequestPath", func() any { return str(wedge.RequestPath) }, "/a?b=1"},
		{"RequestURLPath", func() any { return str(wedge.RequestURLPath) }, "/a"},
		{"RequestQuery", func() any { return str(wedge.RequestQuery) }, "b=1"},
		{"RequestHost", func() any { return str(wedge.RequestHost) }, "example.com"},
		{"RequestScheme", func() any { return str(wedge.RequestScheme) }, "http"},
		{"RequestMethod", func() any { return str(wedge.RequestMethod) }, "GET"},
		{"RequestProtocol", func() any { return str(wedge.RequestProtocol) }, "HTTP/1.1"},
		{"RequestID", func() any { return str(wedge.RequestID) }, "r-1"},
		{"RequestReferer", func() any { return str(wedge.RequestReferer) }, "https://ref.example/"},
		{"RequestUserAgent", func() any { return str(wedge.RequestUserAgent) }, "curl/8"},
		{"RequestHeader", func() any { return must(wedge.RequestHeader("x-a")) }, "1"},
		{"RequestHeaders", func() any { return must(wedge.RequestHeaders()) }, headers},
		{"RequestTime", func() any { return must(wedge.RequestTime()).UTC() }, start},
		{"RequestDuration", func() any { return must(wedge.RequestDuration()) }, 1500 * time.Microsecond},
		{"RequestSize", func() any { return must(wedge.RequestSize()) }, int64(42)},
		{"ResponseCode", func() any { return must(wedge.ResponseCode()) }, 404},
		{"ResponseCodeDetails", func() any { return str(wedge.ResponseCodeDetails) }, "via_upstream"},
		{"ResponseHeader", func() any { return must(wedge.ResponseHeader("content-type")) }, "text/plain"},
		{"ResponseHeaders", func() any { return must(wedge.ResponseHeaders()) }, [][2]string{{":status", "404"}}},
		{"ResponseSize", func() any { return must(wedge.ResponseSize()) }, int64(9)},
		{"ResponseFlags", func() any { return must(wedge.ResponseFlags()) }, uint64(0)},
		{"SourceAddress", func() any { return must(wedge.SourceAddress()) }, netip.MustParseAddrPort("192.0.2.7:51000")},
		{"DestinationAddress", func() any { return must(wedge.DestinationAddress()) }, netip.MustParseAddrPort("[::1]:8080")},
		{"ConnectionID", func() any { return must(wedge.ConnectionID()) }, uint64(77)},
		{"ConnectionMTLS", func() any { return must(wedge.ConnectionMTLS()) }, false},
		{"TLSVersion", func() any { return str(wedge.TLSVersion) }, "TLSv1.3"},
		{"RequestedServerName", func() any { return str(wedge.RequestedServerName) }, "example.com"},
		{"UpstreamAddress", func() any { return str(wedge.UpstreamAddress) }, "127.0.0.1:8000"},
		{"Upstream", func() any { return str(wedge.Upstream) }, "app"},
		{"StaticMount", func() any { return str(wedge.StaticMount) }, "/assets/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s: %v", tt.name, r)
				}
			}()
			if got := tt.got(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s() = %#v, want %#v", tt.name, got, tt.want)
			}
		})
	}
}

// must panics on an error, for the table above (recovered per case).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSetUpstream(t *testing.T) {
	host := emulate(t, map[string][]byte{"wedge.upstream": []byte("app")})
	if err := wedge.SetUpstream("api"); err != nil {
		t.Fatalf("SetUpstream: %v", err)
	}
	got, err := host.GetProperty([]string{"wedge", "upstream"})
	if err != nil || string(got) != "api" {
		t.Errorf("host sees wedge.upstream = %q, %v; want \"api\"", got, err)
	}
	if up, err := wedge.Upstream(); err != nil || up != "api" {
		t.Errorf("Upstream() = %q, %v; want \"api\"", up, err)
	}
	if err := wedge.SetUpstream(""); !errors.Is(err, wedge.ErrEmptyValue) {
		t.Errorf("SetUpstream(\"\") = %v, want ErrEmptyValue", err)
	}
}

func TestSetStaticMount(t *testing.T) {
	host := emulate(t, nil)
	if err := wedge.SetStaticMount("/assets/"); err != nil {
		t.Fatalf("SetStaticMount: %v", err)
	}
	got, err := host.GetProperty([]string{"wedge", "static"})
	if err != nil || string(got) != "/assets/" {
		t.Errorf("host sees wedge.static = %q, %v; want \"/assets/\"", got, err)
	}
	if err := wedge.SetStaticMount(""); !errors.Is(err, wedge.ErrEmptyValue) {
		t.Errorf("SetStaticMount(\"\") = %v, want ErrEmptyValue", err)
	}
}

func TestSetStaticPath(t *testing.T) {
	host := emulate(t, nil)
	if err := wedge.SetStaticPath("/a%20b.css"); err != nil {
		t.Fatalf("SetStaticPath: %v", err)
	}
	got, err := host.GetProperty([]string{"wedge", "static_path"})
	if err != nil || string(got) != "/a%20b.css" {
		t.Errorf("host sees wedge.static_path = %q, %v", got, err)
	}
	if p, err := wedge.StaticPath(); err != nil || p != "/a%20b.css" {
		t.Errorf("StaticPath() = %q, %v", p, err)
	}
	if err := wedge.SetStaticPath(""); !errors.Is(err, wedge.ErrEmptyValue) {
		t.Errorf("SetStaticPath(\"\") = %v, want ErrEmptyValue", err)
	}
}

func TestSetStreamProperty(t *testing.T) {
	emulate(t, nil)
	if err := wedge.SetStreamProperty("auth.user", []byte("alice")); err != nil {
		t.Fatalf("SetStreamProperty: %v", err)
	}
	if v, err := wedge.StreamProperty("auth.user"); err != nil || string(v) != "alice" {
		t.Errorf("StreamProperty = %q, %v; want \"alice\"", v, err)
	}
	if err := wedge.SetStreamProperty("auth.user", nil); !errors.Is(err, wedge.ErrEmptyValue) {
		t.Errorf("SetStreamProperty(nil) = %v, want ErrEmptyValue", err)
	}
}

func TestErrors(t *testing.T) {
	emulate(t, map[string][]byte{
		"response.code":   {1, 2, 3},
		"connection.mtls": {0, 0},
		"source.address":  []byte("not an address"),
		"request.headers": {9, 0, 0, 0},
	})
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"missing", second(wedge.RequestPath()), types.ErrorStatusNotFound},
		{"missing stream property", second(wedge.StreamProperty("nope")), types.ErrorStatusNotFound},
		{"short integer", second(wedge.ResponseCode()), wedge.ErrMalformed},
		{"long boolean", second(wedge.ConnectionMTLS()), wedge.ErrMalformed},
		{"bad address", second(wedge.SourceAddress()), wedge.ErrMalformed},
		{"truncated map", second(wedge.RequestHeaders()), wedge.ErrMalformed},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }
