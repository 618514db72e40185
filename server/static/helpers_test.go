package static

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// testMtime is the modification time given to every file of the test tree.
var testMtime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

const secret = "TOP-SECRET-OUTSIDE-ROOT"

// testTree builds, under a temp dir, "outside/" holding a secret file and
// "root/" holding the served tree, and returns both paths.
func testTree(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	big := make([]byte, 1000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	files := map[string]string{
		"outside/secret.txt":       secret,
		"outside/dir/secret.txt":   secret,
		"root/a.css":               "body{}",
		"root/hello.txt":           "hello, world\n",
		"root/big.bin":             string(big),
		"root/empty.txt":           "",
		"root/.hidden":             "dot",
		"root/noext":               "raw",
		"root/UPPER.CSS":           "up",
		"root/app.js":              "console.log('plain')",
		"root/app.js.br":           "BR",
		"root/app.js.zst":          "ZSTD!",
		"root/app.js.gz":           "GZIP-BODY",
		"root/style.css":           "p{}",
		"root/style.css.gz":        "GZ",
		"root/only.txt.gz":         "lonely",
		"root/dir/index.html":      "<h1>dir</h1>",
		"root/dir/index.html.gz":   "GZINDEX",
		"root/dir/sub.txt":         "sub",
		"root/list/b.txt":          "b",
		"root/list/a.txt":          "a",
		"root/list/zdir/x.txt":     "x",
		"root/list/x<y>&\".txt":    "esc",
		"root/noindex/file.txt":    "f",
		"root/sub/css/deep.css":    "deep{}",
		"root/sub/css/deep.css.br": "DEEPBR",
		"root/sub/css/linked.css":  "linked{}",
		"root/sub/css/plain.css":   "plain{}",
		"root/sp ace/f%20.txt":     "space",
	}
	for name, data := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/abs-out":               filepath.Join(outside, "secret.txt"),
		"root/rel-out":               "../outside/secret.txt",
		"root/dir-out":               "../outside",
		"root/list/link-in":          "../a.css",
		"root/list/link-out":         "../../outside/secret.txt",
		"root/dirlink":               "dir",
		"root/sub/css/up.css":        "../../a.css",
		"root/sub/css/out.css":       "../../../outside/secret.txt",
		"root/abs-in":                filepath.Join(root, "a.css"),
		"root/dangling":              "nope",
		"root/sub/css/linked.css.gz": "../../style.css.gz",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, testMtime, testMtime)
		}
		return nil
	})
	return root, outside
}

func newTestMount(t testing.TB, cfg MountConfig) *Mount {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// etagOf is the ETag Serve must give a test-tree file of size bytes.
func etagOf(size int) string {
	return fmt.Sprintf(`"%x-%x"`, testMtime.Unix(), size)
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) message.Header {
	var h message.Header
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// body reads every section of r.
func body(t testing.TB, r *Response) string {
	t.Helper()
	var sb strings.Builder
	var n int64
	for _, s := range r.Sections {
		if s.File != nil {
			if _, err := io.Copy(&sb, io.NewSectionReader(s.File, s.Offset, s.Length)); err != nil {
				t.Fatal(err)
			}
		} else {
			sb.Write(s.Data)
		}
		n += s.Len()
	}
	if len(r.Sections) > 0 && n != r.ContentLength {
		t.Errorf("sections sum to %d bytes, ContentLength %d", n, r.ContentLength)
	}
	return sb.String()
}

func serve(m *Mount, method, target string, h message.Header) *Response {
	return m.Serve(&message.Request{Method: method, Target: target, Header: h})
}
