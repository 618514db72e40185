package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// filterCase is one exchange through the filter: what the client sends,
// what the upstream answers, and what the client must get. The same table
// runs natively (proxytest, TestFilter_Native) and as the built .wasm in
// Wedge (TestFilter_Wasm).
type filterCase struct {
	name   string
	config string // the plugin's configuration; "" for the defaults

	method string   // default GET
	ae     []string // Accept-Encoding lines; nil: no field
	reqCC  string   // the request's Cache-Control

	status  int         // default 200
	header  [][2]string // the upstream's fields (Content-Length is added for a body)
	size    int         // body length; the body is compressible text
	chunked bool        // Wedge only: the upstream sends the body chunked
	stream  bool        // Wedge only: X-Accel-Buffering: no (Wedge streams it)
	native  bool        // native only: net/http upstreams drop Content-Type from a 304

	// What the client gets. absent means the field must be missing.
	ce, vary, etag string
	// gone lists fields that must be removed.
	gone []string
	// level is the level the host must be asked for (0: the default).
	level int
}

const absent = "<absent>"

const customConfig = `{"encodings":["gzip","br"],"levels":{"gzip":1,"br":2},"types":["text/html","*/*+json"],"min_length":0}`

var html = [][2]string{{"content-type", "text/html; charset=utf-8"}}

func withHTML(f ...[2]string) [][2]string { return append(append([][2]string{}, html...), f...) }

var filterCases = []filterCase{
	{name: "gzip", ae: []string{"gzip"}, header: html, size: 4096, ce: "gzip", vary: "Accept-Encoding"},
	{name: "br", ae: []string{"br"}, header: html, size: 4096, ce: "br", vary: "Accept-Encoding"},
	{name: "zstd", ae: []string{"zstd"}, header: html, size: 4096, ce: "zstd", vary: "Accept-Encoding"},
	{name: "browser picks server order", ae: []string{"gzip, deflate, br, zstd"}, header: html, size: 4096, ce: "zstd", vary: "Accept-Encoding"},
	{name: "q-values", ae: []string{"zstd;q=0.1, br;q=0.5, gzip;q=0.9"}, header: html, size: 4096, ce: "gzip", vary: "Accept-Encoding"},
	{name: "two Accept-Encoding lines", ae: []string{"gzip;q=0.2", "br"}, header: html, size: 4096, ce: "br", vary: "Accept-Encoding"},
	{name: "wildcard", ae: []string{"*"}, header: html, size: 4096, ce: "zstd", vary: "Accept-Encoding"},
	{name: "x-gzip", ae: []string{"x-gzip"}, header: html, size: 4096, ce: "gzip", vary: "Accept-Encoding"},
	{name: "no Accept-Encoding", header: html, size: 4096, ce: absent, vary: "Accept-Encoding"},
	{name: "empty Accept-Encoding", ae: []string{""}, header: html, size: 4096, ce: absent, vary: "Accept-Encoding"},
	{name: "gzip refused", ae: []string{"gzip;q=0"}, header: html, size: 4096, ce: absent, vary: "Accept-Encoding"},
	{name: "identity preferred", ae: []string{"identity, gzip;q=0.5"}, header: html, size: 4096, ce: absent, vary: "Accept-Encoding"},
	{name: "identity;q=0 and nothing offered: identity anyway", ae: []string{"deflate, identity;q=0"}, header: html, size: 4096, ce: absent, vary: "Accept-Encoding"},
	{name: "identity;q=0 with gzip", ae: []string{"identity;q=0, gzip"}, header: html, size: 4096, ce: "gzip", vary: "Accept-Encoding"},

	{name: "Vary merged", ae: []string{"gzip"}, header: withHTML([2]string{"vary", "Origin"}), size: 4096, ce: "gzip", vary: "Origin, Accept-Encoding"},
	{name: "Vary kept", ae: []string{"gzip"}, header: withHTML([2]string{"vary", "accept-encoding"}), size: 4096, ce: "gzip", vary: "accept-encoding"},
	{name: "Vary star", ae: []string{"gzip"}, header: withHTML([2]string{"vary", "*"}), size: 4096, ce: "gzip", vary: "*"},
	{name: "strong ETag weakened", ae: []string{"gzip"}, header: withHTML([2]string{"etag", `"v1"`}), size: 4096, ce: "gzip", vary: "Accept-Encoding", etag: `W/"v1"`},
	{name: "weak ETag kept", ae: []string{"gzip"}, header: withHTML([2]string{"etag", `W/"v1"`}), size: 4096, ce: "gzip", vary: "Accept-Encoding", etag: `W/"v1"`},
	{name: "malformed ETag removed", ae: []string{"gzip"}, header: withHTML([2]string{"etag", `v1`}), size: 4096, ce: "gzip", vary: "Accept-Encoding", etag: absent},
	{name: "ETag of an uncompressed response kept", ae: []string{"deflate"}, header: withHTML([2]string{"etag", `"v1"`}), size: 4096, ce: absent, vary: "Accept-Encoding", etag: `"v1"`},
	{name: "Accept-Ranges and digests removed", ae: []string{"gzip"},
		header: withHTML([2]string{"accept-ranges", "bytes"}, [2]string{"content-md5", "x"}, [2]string{"repr-digest", "sha-256=:x:"}),
		size:   4096, ce: "gzip", vary: "Accept-Encoding", gone: []string{"accept-ranges", "content-md5", "repr-digest"}},
	{name: "Content-Encoding identity replaced", ae: []string{"gzip"}, header: withHTML([2]string{"content-encoding", "identity"}), size: 4096, ce: "gzip", vary: "Accept-Encoding"},
	{name: "404 page compressed", ae: []string{"gzip"}, status: 404, header: html, size: 4096, ce: "gzip", vary: "Accept-Encoding"},

	{name: "already encoded", ae: []string{"gzip"}, header: withHTML([2]string{"content-encoding", "br"}), size: 4096, ce: "br", vary: absent},
	{name: "206", ae: []string{"gzip"}, status: 206, header: withHTML([2]string{"content-range", "bytes 0-4095/10000"}, [2]string{"etag", `"v1"`}), size: 4096, ce: absent, vary: absent, etag: `"v1"`},
	{name: "Content-Range on a 200", ae: []string{"gzip"}, header: withHTML([2]string{"content-range", "bytes 0-4095/4096"}), size: 4096, ce: absent, vary: absent},
	{name: "no-transform", ae: []string{"gzip"}, header: withHTML([2]string{"cache-control", "public, No-Transform"}), size: 4096, ce: absent, vary: absent},
	{name: "request no-transform", ae: []string{"gzip"}, reqCC: "no-transform", header: html, size: 4096, ce: absent, vary: "Accept-Encoding"},
	{name: "no Content-Type", ae: []string{"gzip"}, size: 4096, ce: absent, vary: absent},
	{name: "image/png", ae: []string{"gzip"}, header: [][2]string{{"content-type", "image/png"}}, size: 4096, ce: absent, vary: absent},
	{name: "problem+json", ae: []string{"gzip"}, header: [][2]string{{"content-type", "application/problem+json"}}, size: 4096, ce: "gzip", vary: "Accept-Encoding"},
	{name: "below min_length", ae: []string{"gzip"}, header: html, size: 511, ce: absent, vary: absent},
	{name: "at min_length", ae: []string{"gzip"}, header: html, size: 512, ce: "gzip", vary: "Accept-Encoding"},
	{name: "empty body", ae: []string{"gzip"}, header: html, size: 0, ce: absent, vary: absent},
	{name: "chunked below min_length", ae: []string{"gzip"}, header: html, size: 300, chunked: true, ce: absent, vary: absent},
	{name: "chunked above min_length", ae: []string{"gzip"}, header: html, size: 4096, chunked: true, ce: "gzip", vary: "Accept-Encoding"},
	{name: "204", ae: []string{"gzip"}, status: 204, header: html, ce: absent, vary: absent},
	{name: "304 gets the 200's ETag and Vary", ae: []string{"gzip"}, status: 304, header: [][2]string{{"etag", `"v1"`}}, ce: absent, vary: "Accept-Encoding", etag: `W/"v1"`},
	{name: "304 of an image", native: true, ae: []string{"gzip"}, status: 304, header: [][2]string{{"etag", `"v1"`}, {"content-type", "image/png"}}, ce: absent, vary: absent, etag: `"v1"`},
	{name: "HEAD gets GET's fields", method: "HEAD", ae: []string{"gzip"}, header: withHTML([2]string{"etag", `"v1"`}), size: 4096,
		ce: "gzip", vary: "Accept-Encoding", etag: `W/"v1"`, gone: []string{"content-length"}},
	{name: "HEAD of a small body", method: "HEAD", ae: []string{"gzip"}, header: html, size: 100, ce: absent, vary: absent},
	{name: "streamed: the host refuses, nothing claimed", ae: []string{"gzip"}, header: html, size: 4096, stream: true, ce: absent, vary: "Accept-Encoding"},

	{name: "custom: gzip level 1", config: customConfig, ae: []string{"zstd, gzip"}, header: html, size: 100, ce: "gzip", vary: "Accept-Encoding", level: 1},
	{name: "custom: br level 2", config: customConfig, ae: []string{"br"}, header: html, size: 100, ce: "br", vary: "Accept-Encoding", level: 2},
	{name: "custom: zstd not offered", config: customConfig, ae: []string{"zstd"}, header: html, size: 100, ce: absent, vary: "Accept-Encoding"},
	{name: "custom: text/plain not listed", config: customConfig, ae: []string{"gzip"}, header: [][2]string{{"content-type", "text/plain"}}, size: 100, ce: absent, vary: absent},
	{name: "custom: +json listed", config: customConfig, ae: []string{"gzip"}, header: [][2]string{{"content-type", "application/vnd.api+json"}}, size: 100, ce: "gzip", vary: "Accept-Encoding", level: 1},
}

// body returns n bytes of compressible HTML.
func body(n int) []byte {
	line := []byte("<li><a href=\"/items/42\">Item forty-two</a> is in stock: 3 left.</li>\n")
	b := bytes.Repeat(line, n/len(line)+1)
	return b[:n]
}

// defaultLevel returns the level the host must be asked for.
func (c *filterCase) wantLevel() int {
	if c.level != 0 {
		return c.level
	}
	return defaultLevels[c.ce]
}

func (c *filterCase) methodOr() string {
	if c.method == "" {
		return "GET"
	}
	return c.method
}

func (c *filterCase) statusOr() int {
	if c.status == 0 {
		return 200
	}
	return c.status
}

// hasBody reports whether the upstream's response has a body.
func (c *filterCase) hasBody() bool {
	s := c.statusOr()
	return s != 204 && s != 304 && s >= 200
}

// TestFilter_Native runs filterCases through the filter in
// proxy-wasm-go-sdk's emulator, with a wedge_compress_response that
// records its arguments.
func TestFilter_Native(t *testing.T) {
	for _, tc := range filterCases {
		if tc.stream || tc.chunked {
			continue // Wedge's behaviour, not the filter's
		}
		t.Run(tc.name, func(t *testing.T) {
			resp := [][2]string{{":status", strconv.Itoa(tc.statusOr())}}
			resp = append(resp, tc.header...)
			opt := proxytest.NewEmulatorOption().WithVMContext(&vmContext{}).
				WithPluginConfiguration([]byte(tc.config))
			if tc.hasBody() {
				resp = append(resp, [2]string{"content-length", strconv.Itoa(tc.size)})
				if tc.methodOr() != "HEAD" {
					var size [8]byte
					binary.LittleEndian.PutUint64(size[:], uint64(tc.size))
					opt = opt.WithProperty([]string{"response", "size"}, size[:])
				}
			}
			host, reset := proxytest.NewHostEmulator(opt)
			defer reset()
			var calls []string
			host.RegisterForeignFunction(compressFunc, func(args []byte) []byte {
				calls = append(calls, string(args))
				return []byte{'{', '}'} // the emulator cannot return an empty result
			})
			if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
				t.Fatalf("StartPlugin: %v; logs %v", st, host.GetErrorLogs())
			}
			id := host.InitializeHttpContext()
			req := [][2]string{{":method", tc.methodOr()}, {":path", "/"}, {":authority", "example.com"}}
			for _, v := range tc.ae {
				req = append(req, [2]string{"accept-encoding", v})
			}
			if tc.reqCC != "" {
				req = append(req, [2]string{"cache-control", tc.reqCC})
			}
			host.CallOnRequestHeaders(id, req, true)
			if a := host.CallOnResponseHeaders(id, resp, !tc.hasBody()); a != types.ActionContinue {
				t.Fatalf("OnHttpResponseHeaders returned %v", a)
			}
			got := host.GetCurrentResponseHeaders(id)
			checkFields(t, &tc, func(name string) (string, bool) { return lookup(got, name) })

			wantCall := tc.compressed()
			switch {
			case wantCall && len(calls) != 1:
				t.Fatalf("host calls %v, want one", calls)
			case wantCall:
				var a struct {
					Encoding string
					Level    int
				}
				if err := json.Unmarshal([]byte(calls[0]), &a); err != nil || a.Encoding != tc.ce || a.Level != tc.wantLevel() {
					t.Errorf("host asked for %s, want %s level %d", calls[0], tc.ce, tc.wantLevel())
				}
				if _, ok := lookup(got, "content-length"); ok {
					t.Error("Content-Length kept")
				}
			case len(calls) != 0:
				t.Errorf("host asked %v, want nothing", calls)
			}
		})
	}
}

// compressed reports whether the body must be compressed.
func (c *filterCase) compressed() bool {
	orig, _ := lookup(c.header, "content-encoding")
	return c.ce != absent && c.ce != orig && c.hasBody() && c.methodOr() != "HEAD"
}

// checkFields checks the fields the client gets against tc.
func checkFields(t *testing.T, tc *filterCase, get func(string) (string, bool)) {
	t.Helper()
	for _, f := range []struct{ name, want string }{{"content-encoding", tc.ce}, {"vary", tc.vary}, {"etag", tc.etag}} {
		if f.want == "" {
			continue
		}
		v, ok := get(f.name)
		switch {
		case f.want == absent && ok:
			t.Errorf("%s: %q, want none", f.name, v)
		case f.want != absent && v != f.want:
			t.Errorf("%s: %q (present %v), want %q", f.name, v, ok, f.want)
		}
	}
	for _, name := range tc.gone {
		if v, ok := get(name); ok {
			t.Errorf("%s: %q, want it removed", name, v)
		}
	}
}
