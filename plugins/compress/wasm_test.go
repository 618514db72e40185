package main

import (
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

// TestFilter_Wasm runs filterCases through compress.wasm (built from this
// directory: see main.go) in the real Wedge, in front of an upstream that
// answers each case, and decodes what the client gets.
func TestFilter_Wasm(t *testing.T) {
	wasm, err := os.ReadFile("compress.wasm")
	if err != nil {
		t.Fatalf("compress.wasm is built from this directory (see main.go): %v", err)
	}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("case"))
		if err != nil || i < 0 || i >= len(filterCases) {
			http.Error(w, "no such case", 400)
			return
		}
		serveCase(w, &filterCases[i])
	})
	harnesses := map[string]*wedgetest.Harness{} // one Wedge per configuration, for the whole test
	for _, tc := range filterCases {
		if harnesses[tc.config] != nil {
			continue
		}
		h, err := wedgetest.New(t, wasm, wedgetest.Options{
			Name:      "compress",
			Config:    []byte(tc.config),
			Upstreams: map[string]http.Handler{"app": upstream},
		})
		if err != nil {
			t.Fatalf("loading compress.wasm with %q: %v", tc.config, err)
		}
		harnesses[tc.config] = h
	}
	for i := range filterCases {
		tc := &filterCases[i]
		if tc.native {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			h := harnesses[tc.config]
			req := wedgetest.Request{Method: tc.methodOr(), Path: "/page?case=" + strconv.Itoa(i), Header: http.Header{}}
			for _, v := range tc.ae {
				req.Header.Add("Accept-Encoding", v)
			}
			if tc.reqCC != "" {
				req.Header.Set("Cache-Control", tc.reqCC)
			}
			res := h.Do(req)
			if res.Status != tc.statusOr() || res.Failure != "" {
				t.Fatalf("status %d (%s), want %d; logs %v", res.Status, res.Failure, tc.statusOr(), res.Logs)
			}
			checkFields(t, tc, func(name string) (string, bool) {
				v, ok := res.Header[textproto.CanonicalMIMEHeaderKey(name)]
				if !ok {
					return "", false
				}
				return v[0], true
			})
			switch {
			case tc.compressed():
				if n := res.Header.Get("Content-Length"); n != strconv.Itoa(len(res.Body)) {
					t.Errorf("Content-Length %q for %d bytes", n, len(res.Body))
				}
				if got := decode(t, tc.ce, res.Body); !bytes.Equal(got, body(tc.size)) {
					t.Errorf("decoded %d bytes, not the %d the upstream sent", len(got), tc.size)
				}
			case tc.methodOr() == "HEAD" || !tc.hasBody():
				if len(res.Body) != 0 {
					t.Errorf("%d body bytes", len(res.Body))
				}
			case !bytes.Equal(res.Body, body(tc.size)):
				t.Errorf("body of %d bytes changed (%d bytes)", tc.size, len(res.Body))
			}
		})
	}
}

// serveCase answers as the upstream of tc.
func serveCase(w http.ResponseWriter, tc *filterCase) {
	h := w.Header()
	h["Content-Type"] = nil // no sniffing: a case without Content-Type has none
	for _, f := range tc.header {
		h.Add(f[0], f[1])
	}
	if tc.stream {
		h.Set("X-Accel-Buffering", "no")
	}
	b := body(tc.size)
	if !tc.hasBody() {
		w.WriteHeader(tc.statusOr())
		return
	}
	if !tc.chunked {
		h.Set("Content-Length", strconv.Itoa(len(b)))
	}
	w.WriteHeader(tc.statusOr())
	if tc.chunked {
		w.(http.Flusher).Flush() // the head goes out without a length: chunked
	}
	w.Write(b)
}

// decode decodes a body sent with content coding ce.
func decode(t *testing.T, ce string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected coding %q", ce)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", ce, err)
	}
	return out
}
