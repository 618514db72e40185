package static

import (
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// BenchmarkServe measures resolving one request into a response, the file
// opened and closed, with a browser's Accept-Encoding.
func BenchmarkServe(b *testing.B) {
	root, _ := testTree(b)
	m, err := New(MountConfig{Prefix: "/static/", Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	browser := message.Header{{Name: "Accept-Encoding", Value: "gzip, deflate, br, zstd"}}
	for _, bc := range []struct {
		name   string
		target string
		h      message.Header
		status int
	}{
		{"200", "/static/a.css", browser, 200},
		{"200-no-ae", "/static/a.css", nil, 200},
		{"200-nested", "/static/sub/css/plain.css", browser, 200},
		{"200-nested-sidecar", "/static/sub/css/deep.css", browser, 200},
		{"200-sidecar", "/static/app.js", browser, 200},
		{"304", "/static/a.css", append(browser.Clone(), message.Field{Name: "If-None-Match", Value: etagOf(6)}), 304},
		{"206", "/static/big.bin", append(browser.Clone(), message.Field{Name: "Range", Value: "bytes=0-99"}), 206},
		{"404", "/static/missing.css", browser, 404},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := &message.Request{Method: "GET", Target: bc.target, Header: bc.h}
			b.ReportAllocs()
			for b.Loop() {
				r := m.Serve(req)
				if r.Status != bc.status {
					b.Fatalf("status %d", r.Status)
				}
				r.Close()
			}
		})
	}
}

func BenchmarkTable_Match(b *testing.B) {
	root, _ := testTree(b)
	tb, err := NewTable([]MountConfig{{Prefix: "/static/", Root: root}, {Prefix: "/media/", Root: root}})
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tb.Match("/static/css/app.css?v=3"); !ok {
			b.Fatal("no match")
		}
	}
}
