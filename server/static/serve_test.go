package static

import (
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// absent in a serveCase's want map means the field must not be present.
const absent = "\x00absent"

type serveCase struct {
	name   string
	method string // "" means GET
	target string
	h      message.Header
	status int
	want   map[string]string // field values; absent means missing
	body   *string           // nil: not checked
}

func str(s string) *string { return &s }

func runServeCases(t *testing.T, m *Mount, cases []serveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r := serve(m, method, tc.target, tc.h)
			defer r.Close()
			if r.Status != tc.status {
				t.Fatalf("status = %d, want %d (header %v)", r.Status, tc.status, r.Header)
			}
			for name, want := range tc.want {
				got, ok := r.Header.Lookup(name)
				switch {
				case want == absent && ok:
					t.Errorf("%s = %q, want absent", name, got)
				case want != absent && got != want:
					t.Errorf("%s = %q, want %q", name, got, want)
				}
				if n := r.Header.Count(name); n > 1 {
					t.Errorf("%s appears %d times", name, n)
				}
			}
			if cl, ok := r.Header.Lookup("Content-Length"); ok {
				if cl != strconv.FormatInt(r.ContentLength, 10) {
					t.Errorf("Content-Length %q but ContentLength %d", cl, r.ContentLength)
				}
			}
			b := body(t, r)
			if method == "HEAD" && len(r.Sections) != 0 {
				t.Errorf("HEAD response has %d sections", len(r.Sections))
			}
			if tc.body != nil && b != *tc.body {
				t.Errorf("body = %q, want %q", b, *tc.body)
			}
		})
	}
}

const lastMod = "Tue, 02 Jan 2024 03:04:05 GMT"

// TestMount_Serve covers methods, paths, content types and plain 200s.
func TestMount_Serve(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/static", Root: root})
	cases := []serveCase{
		{name: "css", target: "/static/a.css", status: 200, body: str("body{}"), want: map[string]string{
			"Content-Type": "text/css; charset=utf-8", "Content-Length": "6", "ETag": etagOf(6),
			"Last-Modified": lastMod, "Accept-Ranges": "bytes", "Vary": absent, "Content-Encoding": absent,
		}},
		// RFC 9110 §9.3.2: HEAD gets the same fields as GET, no content.
		{name: "head", method: "HEAD", target: "/static/a.css", status: 200, body: str(""), want: map[string]string{
			"Content-Type": "text/css; charset=utf-8", "Content-Length": "6", "ETag": etagOf(6),
			"Last-Modified": lastMod, "Accept-Ranges": "bytes",
		}},
		{name: "query dropped", target: "/static/hello.txt?x=1&y", status: 200, body: str("hello, world\n"),
			want: map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		// nginx serves dotfiles unless told otherwise.
		{name: "dotfile", target: "/static/.hidden", status: 200, body: str("dot"),
			want: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "no extension", target: "/static/noext", status: 200, body: str("raw"),
			want: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "upper-case extension", target: "/static/UPPER.CSS", status: 200,
			want: map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{name: "empty file", target: "/static/empty.txt", status: 200, body: str(""),
			want: map[string]string{"Content-Length": "0", "ETag": etagOf(0)}},
		{name: "percent-encoded name", target: "/static/%61.css", status: 200, body: str("body{}")},
		{name: "encoded space and percent", target: "/static/sp%20ace/f%2520.txt", status: 200, body: str("space")},
		{name: "dot segments inside", target: "/static/dir/../a.css", status: 200, body: str("body{}")},
		{name: "double slash", target: "/static//a.css", status: 200, body: str("body{}")},
		{name: "missing", target: "/static/nope.css", status: 404, body: str("404 Not Found\n"),
			want: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Length": "14"}},
		{name: "missing head", method: "HEAD", target: "/static/nope.css", status: 404, body: str(""),
			want: map[string]string{"Content-Length": "14"}},
		{name: "missing dir", target: "/static/nodir/a.css", status: 404},
		{name: "file as dir", target: "/static/a.css/x", status: 404},
		// nginx: "file/" is 404 (ENOTDIR).
		{name: "file with slash", target: "/static/a.css/", status: 404},
		{name: "dangling symlink", target: "/static/dangling", status: 404},
		// os.Root refuses absolute symlinks, even into the root.
		{name: "absolute symlink inside", target: "/static/abs-in", status: 404},
		{name: "symlink leaving subdir within root", target: "/static/sub/css/up.css", status: 200, body: str("body{}")},
		{name: "nested", target: "/static/sub/css/deep.css", status: 200, body: str("deep{}"),
			want: map[string]string{"Vary": "Accept-Encoding"}},
		{name: "outside prefix", target: "/other/a.css", status: 404},
		{name: "prefix lookalike", target: "/staticx/a.css", status: 404},
		// RFC 9110 §15.5.6: 405 with Allow.
		{name: "post", method: "POST", target: "/static/a.css", status: 405, body: str("405 Method Not Allowed\n"),
			want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "put", method: "PUT", target: "/static/a.css", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "options", method: "OPTIONS", target: "/static/a.css", status: 405},
		{name: "delete", method: "DELETE", target: "/static/a.css", status: 405},
		{name: "methods are case-sensitive", method: "get", target: "/static/a.css", status: 405},
		{name: "bad escape", target: "/static/%zz.css", status: 400, body: str("400 Bad Request\n")},
		{name: "truncated escape", target: "/static/a%2", status: 400},
		{name: "not origin-form", target: "static/a.css", status: 400},
		{name: "asterisk", target: "*", status: 400},
	}
	runServeCases(t, m, cases)
}

// TestMount_ServeDirectory covers nginx index, autoindex and the 301 for a
// directory named without its slash.
func TestMount_ServeDirectory(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/static/", Root: root})
	browse := newTestMount(t, MountConfig{Prefix: "/files/", Root: root, Browse: true})
	custom := newTestMount(t, MountConfig{Prefix: "/c/", Root: root, Index: "sub.txt"})
	runServeCases(t, m, []serveCase{
		{name: "redirect", target: "/static/dir", status: 301,
			want: map[string]string{"Location": "/static/dir/", "Content-Type": "text/plain; charset=utf-8"}},
		{name: "redirect keeps query", target: "/static/dir?x=1&y=%20", status: 301,
			want: map[string]string{"Location": "/static/dir/?x=1&y=%20"}},
		{name: "redirect mount root", target: "/static", status: 301, want: map[string]string{"Location": "/static/"}},
		{name: "redirect re-encodes cleaned path", target: "/static/a/../%64ir", status: 301,
			want: map[string]string{"Location": "/static/dir/"}},
		{name: "redirect encodes space", target: "/static/sp%20ace", status: 301,
			want: map[string]string{"Location": "/static/sp%20ace/"}},
		{name: "redirect drops unsafe query", target: "/static/dir?a\r\nb", status: 301,
			want: map[string]string{"Location": "/static/dir/"}},
		{name: "index", target: "/static/dir/", status: 200, body: str("<h1>dir</h1>"), want: map[string]string{
			"Content-Type": "text/html; charset=utf-8", "ETag": etagOf(12), "Vary": "Accept-Encoding",
		}},
		{name: "index precompressed", target: "/static/dir/", h: hdr("Accept-Encoding", "gzip"), status: 200,
			body: str("GZINDEX"), want: map[string]string{
				"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip", "Vary": "Accept-Encoding",
			}},
		{name: "index via dot", target: "/static/dir/.", status: 200, body: str("<h1>dir</h1>")},
		{name: "index via symlinked dir", target: "/static/dirlink/", status: 200, body: str("<h1>dir</h1>")},
		{name: "no index, no browse", target: "/static/noindex/", status: 403, body: str("403 Forbidden\n")},
		{name: "mount root without index", target: "/static/", status: 403},
	})
	listing := "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of /files/list/</title></head>\n" +
		"<body><h1>Index of /files/list/</h1><hr><pre>\n" +
		"<a href=\"../\">../</a>\n" +
		"<a href=\"./zdir/\">zdir/</a>\n" +
		"<a href=\"./a.txt\">a.txt</a>\n" +
		"<a href=\"./b.txt\">b.txt</a>\n" +
		"<a href=\"./link-in\">link-in</a>\n" +
		"<a href=\"./x%3Cy%3E&amp;%22.txt\">x&lt;y&gt;&amp;&#34;.txt</a>\n" +
		"</pre><hr></body></html>\n"
	runServeCases(t, browse, []serveCase{
		// nginx autoindex: directories first, names sorted and escaped,
		// links that leave the root left out.
		{name: "listing", target: "/files/list/", status: 200, body: str(listing),
			want: map[string]string{"Content-Type": "text/html; charset=utf-8", "Content-Length": strconv.Itoa(len(listing))}},
		{name: "listing head", method: "HEAD", target: "/files/list/", status: 200, body: str(""),
			want: map[string]string{"Content-Length": strconv.Itoa(len(listing))}},
		{name: "index wins over listing", target: "/files/dir/", status: 200, body: str("<h1>dir</h1>")},
		{name: "listing of mount root has no parent link", target: "/files/", status: 200},
	})
	r := serve(browse, "GET", "/files/", nil)
	if b := body(t, r); strings.Contains(b, `href="../"`) || !strings.Contains(b, `href="./list/"`) {
		t.Errorf("mount root listing:\n%s", b)
	}
	r.Close()
	runServeCases(t, custom, []serveCase{
		{name: "custom index", target: "/c/dir/", status: 200, body: str("sub")},
		{name: "custom index missing", target: "/c/list/", status: 403},
	})
}

// TestMount_ServeConditional covers RFC 9110 §13 preconditions.
func TestMount_ServeConditional(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/s/", Root: root})
	e := etagOf(6)
	before := "Mon, 01 Jan 2024 00:00:00 GMT"
	after := "Wed, 03 Jan 2024 00:00:00 GMT"
	notMod := map[string]string{"ETag": e, "Last-Modified": lastMod, "Content-Length": absent, "Content-Type": absent}
	runServeCases(t, m, []serveCase{
		// §13.1.2: If-None-Match, weak comparison.
		{name: "inm match", target: "/s/a.css", h: hdr("If-None-Match", e), status: 304, body: str(""), want: notMod},
		{name: "inm weak match", target: "/s/a.css", h: hdr("If-None-Match", "W/"+e), status: 304},
		{name: "inm list", target: "/s/a.css", h: hdr("If-None-Match", `"x", "y,z" ,`+e), status: 304},
		{name: "inm two fields", target: "/s/a.css", h: hdr("If-None-Match", `"x"`, "If-None-Match", e), status: 304},
		{name: "inm star", target: "/s/a.css", h: hdr("If-None-Match", "*"), status: 304},
		{name: "inm other", target: "/s/a.css", h: hdr("If-None-Match", `"other"`), status: 200, body: str("body{}")},
		{name: "inm malformed", target: "/s/a.css", h: hdr("If-None-Match", "abc"), status: 200},
		{name: "inm head", method: "HEAD", target: "/s/a.css", h: hdr("If-None-Match", e), status: 304},
		// §13.1.3: If-Modified-Since only without If-None-Match.
		{name: "ims equal", target: "/s/a.css", h: hdr("If-Modified-Since", lastMod), status: 304, want: notMod},
		{name: "ims after", target: "/s/a.css", h: hdr("If-Modified-Since", after), status: 304},
		{name: "ims before", target: "/s/a.css", h: hdr("If-Modified-Since", before), status: 200},
		{name: "ims rfc850", target: "/s/a.css", h: hdr("If-Modified-Since", "Tuesday, 02-Jan-24 03:04:05 GMT"), status: 304},
		{name: "ims asctime", target: "/s/a.css", h: hdr("If-Modified-Since", "Tue Jan  2 03:04:05 2024"), status: 304},
		{name: "ims invalid", target: "/s/a.css", h: hdr("If-Modified-Since", "yesterday"), status: 200},
		{name: "ims twice ignored", target: "/s/a.css", h: hdr("If-Modified-Since", lastMod, "If-Modified-Since", lastMod), status: 200},
		{name: "inm mismatch beats ims", target: "/s/a.css", h: hdr("If-None-Match", `"x"`, "If-Modified-Since", after), status: 200},
		// §13.1.1: If-Match, strong comparison.
		{name: "im match", target: "/s/a.css", h: hdr("If-Match", e), status: 200},
		{name: "im star", target: "/s/a.css", h: hdr("If-Match", "*"), status: 200},
		{name: "im other", target: "/s/a.css", h: hdr("If-Match", `"other"`), status: 412, body: str("412 Precondition Failed\n")},
		{name: "im weak never matches", target: "/s/a.css", h: hdr("If-Match", "W/"+e), status: 412},
		// §13.1.4: If-Unmodified-Since only without If-Match.
		{name: "ius before", target: "/s/a.css", h: hdr("If-Unmodified-Since", before), status: 412},
		{name: "ius equal", target: "/s/a.css", h: hdr("If-Unmodified-Since", lastMod), status: 200},
		{name: "ius after", target: "/s/a.css", h: hdr("If-Unmodified-Since", after), status: 200},
		{name: "ius invalid ignored", target: "/s/a.css", h: hdr("If-Unmodified-Since", "nope"), status: 200},
		{name: "im beats ius", target: "/s/a.css", h: hdr("If-Match", e, "If-Unmodified-Since", before), status: 200},
		// §13.2.2: step 1 before step 3.
		{name: "412 before 304", target: "/s/a.css", h: hdr("If-Match", `"x"`, "If-None-Match", e), status: 412},
		{name: "304 carries vary", target: "/s/app.js", h: hdr("If-None-Match", etagOf(20)), status: 304,
			want: map[string]string{"Vary": "Accept-Encoding", "ETag": etagOf(20)}},
		// The sidecar is its own representation with its own tag.
		{name: "sidecar tag", target: "/s/app.js", h: hdr("Accept-Encoding", "br", "If-None-Match", etagOf(2)), status: 304,
			want: map[string]string{"ETag": etagOf(2), "Vary": "Accept-Encoding", "Content-Encoding": absent}},
		{name: "original tag vs sidecar", target: "/s/app.js", h: hdr("Accept-Encoding", "br", "If-None-Match", etagOf(20)), status: 200,
			body: str("BR")},
	})
}

// TestMount_ServeRange covers RFC 9110 §14 byte ranges.
func TestMount_ServeRange(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/s/", Root: root})
	big := make([]byte, 1000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	whole := string(big)
	e := etagOf(1000)
	part := func(rng string, from, to int) map[string]string {
		return map[string]string{"Content-Range": "bytes " + rng + "/1000", "Content-Length": strconv.Itoa(to - from),
			"ETag": e, "Last-Modified": lastMod, "Accept-Ranges": absent, "Content-Type": "application/octet-stream"}
	}
	many := func(n, step int) string {
		var s []string
		for i := range n {
			s = append(s, strconv.Itoa(i*step)+"-"+strconv.Itoa(i*step))
		}
		return "bytes=" + strings.Join(s, ",")
	}
	runServeCases(t, m, []serveCase{
		{name: "first bytes", target: "/s/big.bin", h: hdr("Range", "bytes=0-9"), status: 206, body: str(whole[:10]), want: part("0-9", 0, 10)},
		{name: "suffix", target: "/s/big.bin", h: hdr("Range", "bytes=-500"), status: 206, body: str(whole[500:]), want: part("500-999", 500, 1000)},
		{name: "open end", target: "/s/big.bin", h: hdr("Range", "bytes=990-"), status: 206, body: str(whole[990:]), want: part("990-999", 990, 1000)},
		{name: "last past end", target: "/s/big.bin", h: hdr("Range", "bytes=995-2000"), status: 206, body: str(whole[995:])},
		{name: "huge last", target: "/s/big.bin", h: hdr("Range", "bytes=995-99999999999999999999999"), status: 206, body: str(whole[995:])},
		{name: "suffix past start", target: "/s/big.bin", h: hdr("Range", "bytes=-2000"), status: 206, body: str(whole), want: part("0-999", 0, 1000)},
		{name: "unit case", target: "/s/big.bin", h: hdr("Range", "Bytes=0-0"), status: 206, body: str("a")},
		{name: "spaces", target: "/s/big.bin", h: hdr("Range", "bytes= 1-1 , "), status: 206, body: str("b")},
		{name: "coalesce overlap", target: "/s/big.bin", h: hdr("Range", "bytes=0-10,5-20"), status: 206, body: str(whole[:21]), want: part("0-20", 0, 21)},
		{name: "coalesce adjacent", target: "/s/big.bin", h: hdr("Range", "bytes=10-19,0-9"), status: 206, body: str(whole[:20])},
		{name: "unsatisfiable part dropped", target: "/s/big.bin", h: hdr("Range", "bytes=0-1,2000-3000"), status: 206, body: str("ab")},
		// §15.5.17: 416 with the complete length.
		{name: "unsatisfiable", target: "/s/big.bin", h: hdr("Range", "bytes=1000-"), status: 416,
			body: str("416 Range Not Satisfiable\n"), want: map[string]string{"Content-Range": "bytes */1000"}},
		{name: "zero suffix", target: "/s/big.bin", h: hdr("Range", "bytes=-0"), status: 416},
		{name: "empty file", target: "/s/empty.txt", h: hdr("Range", "bytes=0-"), status: 416, want: map[string]string{"Content-Range": "bytes */0"}},
		// §14.2: an invalid or unknown Range is ignored.
		{name: "last before first", target: "/s/big.bin", h: hdr("Range", "bytes=5-1"), status: 200, body: str(whole),
			want: map[string]string{"Accept-Ranges": "bytes", "Content-Range": absent}},
		{name: "garbage", target: "/s/big.bin", h: hdr("Range", "bytes=abc"), status: 200},
		{name: "other unit", target: "/s/big.bin", h: hdr("Range", "items=0-1"), status: 200},
		{name: "empty set", target: "/s/big.bin", h: hdr("Range", "bytes="), status: 200},
		{name: "bare dash", target: "/s/big.bin", h: hdr("Range", "bytes=-"), status: 200},
		{name: "three numbers", target: "/s/big.bin", h: hdr("Range", "bytes=1-2-3"), status: 200},
		{name: "negative", target: "/s/big.bin", h: hdr("Range", "bytes=-1-2"), status: 200},
		{name: "two fields", target: "/s/big.bin", h: hdr("Range", "bytes=0-1", "Range", "bytes=2-3"), status: 200},
		{name: "two if-range fields", target: "/s/big.bin", h: hdr("Range", "bytes=0-1", "If-Range", e, "If-Range", e), status: 200},
		{name: "over 16 ranges", target: "/s/big.bin", h: hdr("Range", many(17, 10)), status: 200, body: str(whole)},
		// §14.2: Range is defined for GET only.
		{name: "head ignores range", method: "HEAD", target: "/s/big.bin", h: hdr("Range", "bytes=0-9"), status: 200,
			want: map[string]string{"Content-Length": "1000", "Accept-Ranges": "bytes"}},
		// §13.1.5: If-Range.
		{name: "if-range etag", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-Range", e), status: 206, body: str("a")},
		{name: "if-range old etag", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-Range", `"old"`), status: 200},
		{name: "if-range weak", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-Range", "W/"+e), status: 200},
		{name: "if-range date", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-Range", lastMod), status: 206},
		{name: "if-range other date", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-Range", "Mon, 01 Jan 2024 00:00:00 GMT"), status: 200},
		{name: "if-range garbage", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-Range", "soon"), status: 200},
		{name: "if-range without range", target: "/s/big.bin", h: hdr("If-Range", `"old"`), status: 200},
		{name: "not modified before range", target: "/s/big.bin", h: hdr("Range", "bytes=0-0", "If-None-Match", e), status: 304},
		{name: "sidecar single range", target: "/s/app.js", h: hdr("Range", "bytes=1-", "Accept-Encoding", "br"), status: 206, body: str("R"),
			want: map[string]string{"Content-Range": "bytes 1-1/2", "Content-Encoding": "br", "Vary": "Accept-Encoding"}},
		{name: "sidecar multi range ignored", target: "/s/app.js", h: hdr("Range", "bytes=0-0,-1", "Accept-Encoding", "gzip"), status: 200,
			body: str("GZIP-BODY"), want: map[string]string{"Content-Encoding": "gzip"}},
	})

	t.Run("multipart", func(t *testing.T) {
		for _, tc := range []struct {
			rng   string
			parts []string // "first-last"
		}{
			{"bytes=20-29,0-9", []string{"20-29", "0-9"}},
			{"bytes=0-0,-1", []string{"0-0", "999-999"}},
			{"bytes=500-,0-1,600-700", []string{"500-999", "0-1"}},
			{many(16, 10), strings.Split(strings.ReplaceAll(strings.TrimPrefix(many(16, 10), "bytes="), "", ""), ",")},
		} {
			r := serve(m, "GET", "/s/big.bin", hdr("Range", tc.rng))
			if r.Status != 206 {
				t.Fatalf("%s: status %d", tc.rng, r.Status)
			}
			mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/byteranges" || params["boundary"] == "" {
				t.Fatalf("%s: Content-Type %q", tc.rng, r.Header.Get("Content-Type"))
			}
			b := body(t, r)
			if r.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
				t.Errorf("%s: Content-Length %s, body %d", tc.rng, r.Header.Get("Content-Length"), len(b))
			}
			mr := multipart.NewReader(strings.NewReader(b), params["boundary"])
			for i, want := range tc.parts {
				p, err := mr.NextPart()
				if err != nil {
					t.Fatalf("%s: part %d: %v", tc.rng, i, err)
				}
				if got := p.Header.Get("Content-Range"); got != "bytes "+want+"/1000" {
					t.Errorf("%s: part %d Content-Range %q, want %q", tc.rng, i, got, want)
				}
				if got := p.Header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("%s: part %d Content-Type %q", tc.rng, i, got)
				}
				first, last, _ := strings.Cut(want, "-")
				a, _ := strconv.Atoi(first)
				z, _ := strconv.Atoi(last)
				data, _ := io.ReadAll(p)
				if string(data) != whole[a:z+1] {
					t.Errorf("%s: part %d = %q", tc.rng, i, data)
				}
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("%s: extra part or bad end: %v", tc.rng, err)
			}
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		}
	})
}

// TestMount_ServeEncoding covers precompressed sidecars chosen by
// Accept-Encoding (RFC 9110 §12.5.3; nginx gzip_static, brotli_static).
func TestMount_ServeEncoding(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/s/", Root: root})
	js := "text/javascript; charset=utf-8"
	enc := func(coding string, size int) map[string]string {
		return map[string]string{"Content-Encoding": coding, "Content-Type": js, "Vary": "Accept-Encoding",
			"Content-Length": strconv.Itoa(size), "ETag": etagOf(size)}
	}
	plain := map[string]string{"Content-Encoding": absent, "Content-Type": js, "Vary": "Accept-Encoding", "ETag": etagOf(20)}
	ae := func(v ...string) message.Header {
		var h message.Header
		for _, s := range v {
			h.Add("Accept-Encoding", s)
		}
		return h
	}
	runServeCases(t, m, []serveCase{
		{name: "none", target: "/s/app.js", status: 200, body: str("console.log('plain')"), want: plain},
		{name: "gzip", target: "/s/app.js", h: ae("gzip"), status: 200, body: str("GZIP-BODY"), want: enc("gzip", 9)},
		{name: "browser", target: "/s/app.js", h: ae("gzip, deflate, br, zstd"), status: 200, body: str("BR"), want: enc("br", 2)},
		{name: "zstd before gzip", target: "/s/app.js", h: ae("gzip, zstd"), status: 200, body: str("ZSTD!"), want: enc("zstd", 5)},
		{name: "q decides", target: "/s/app.js", h: ae("br;q=0.5, gzip;q=0.9"), status: 200, body: str("GZIP-BODY")},
		{name: "q spaces", target: "/s/app.js", h: ae("br ; q=0.5 , zstd ; Q=0.6"), status: 200, body: str("ZSTD!")},
		{name: "q=0 refuses", target: "/s/app.js", h: ae("br;q=0, gzip"), status: 200, body: str("GZIP-BODY")},
		{name: "star", target: "/s/app.js", h: ae("*"), status: 200, body: str("BR")},
		{name: "star weighs unnamed", target: "/s/app.js", h: ae("*;q=0.1, gzip;q=0.2"), status: 200, body: str("GZIP-BODY")},
		{name: "star with exclusion", target: "/s/app.js", h: ae("*, br;q=0"), status: 200, body: str("ZSTD!")},
		{name: "star q=0", target: "/s/app.js", h: ae("*;q=0"), status: 200, want: plain},
		{name: "identity", target: "/s/app.js", h: ae("identity"), status: 200, want: plain},
		{name: "empty value", target: "/s/app.js", h: ae(""), status: 200, want: plain},
		{name: "x-gzip", target: "/s/app.js", h: ae("x-gzip"), status: 200, body: str("GZIP-BODY")},
		{name: "case", target: "/s/app.js", h: ae("GZIP"), status: 200, body: str("GZIP-BODY")},
		{name: "invalid q drops element", target: "/s/app.js", h: ae("gzip;q=1.5"), status: 200, want: plain},
		{name: "two fields", target: "/s/app.js", h: ae("br;q=0.1", "gzip"), status: 200, body: str("GZIP-BODY")},
		{name: "head", method: "HEAD", target: "/s/app.js", h: ae("br"), status: 200, body: str(""), want: enc("br", 2)},
		{name: "only gz exists, br asked", target: "/s/style.css", h: ae("br"), status: 200, body: str("p{}"),
			want: map[string]string{"Vary": "Accept-Encoding", "Content-Encoding": absent}},
		{name: "only gz exists", target: "/s/style.css", h: ae("br, gzip"), status: 200, body: str("GZ"),
			want: map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/css; charset=utf-8"}},
		{name: "no sidecar no vary", target: "/s/a.css", h: ae("gzip, br"), status: 200, body: str("body{}"),
			want: map[string]string{"Vary": absent, "Content-Encoding": absent}},
		{name: "sidecar needs original", target: "/s/only.txt", h: ae("gzip"), status: 404},
		{name: "sidecar itself", target: "/s/only.txt.gz", h: ae("gzip"), status: 200, body: str("lonely"),
			want: map[string]string{"Content-Type": "application/gzip", "Content-Encoding": absent}},
		{name: "nested", target: "/s/sub/css/deep.css", h: ae("br"), status: 200, body: str("DEEPBR"),
			want: map[string]string{"Content-Encoding": "br", "Content-Type": "text/css; charset=utf-8"}},
		{name: "sidecar symlink leaving subdir", target: "/s/sub/css/linked.css", h: ae("gzip"), status: 200, body: str("GZ"),
			want: map[string]string{"Content-Encoding": "gzip"}},
	})
}

// TestMount_ServeTraversal: nothing outside the root is ever served,
// whatever the target.
func TestMount_ServeTraversal(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/static/", Root: root, Browse: true})
	top := newTestMount(t, MountConfig{Prefix: "/", Root: root, Browse: true})
	allowed := rootFiles(t, root)
	for _, tc := range []struct {
		target string
		status int
		top    bool // serve through the "/" mount
	}{
		{"/static/../outside/secret.txt", 404, false},
		{"/static/../../outside/secret.txt", 404, false},
		{"/static/./../outside/secret.txt", 404, false},
		{"/static/dir/../../outside/secret.txt", 404, false},
		{"/static/../static/../outside/secret.txt", 404, false},
		{"/static//../outside/secret.txt", 404, false},
		{"/static/%2e%2e/outside/secret.txt", 404, false},
		{"/static/%2E%2E/%2e%2E/outside/secret.txt", 404, false},
		{"/static/.%2e/outside/secret.txt", 404, false},
		{"/static/%252e%252e/outside/secret.txt", 404, false}, // double-encoded: a literal "%2e%2e" directory
		{"/static/....//outside/secret.txt", 404, false},
		{"/static/..%2foutside%2fsecret.txt", 400, false},
		{"/static/..%2Foutside/secret.txt", 400, false},
		{"/static/%2e%2e%2foutside%2fsecret.txt", 400, false},
		{"/static/..\\outside\\secret.txt", 400, false},
		{"/static/..%5coutside%5csecret.txt", 400, false},
		{"/static/..%5Coutside/secret.txt", 400, false},
		{"/static/a.css%00", 400, false},
		{"/static/%00../outside/secret.txt", 400, false},
		{"/static/a.css\x00.txt", 400, false},
		{"/static/abs-out", 404, false},
		{"/static/rel-out", 404, false},
		{"/static/dir-out", 404, false},
		{"/static/dir-out/", 404, false},
		{"/static/dir-out/secret.txt", 404, false},
		{"/static/dir-out/dir/secret.txt", 404, false},
		{"/static/list/link-out", 404, false},
		{"/static/sub/css/out.css", 404, false},
		{"//outside/secret.txt", 404, false},
		{"/etc/passwd", 404, false},
		{"/static/" + root + "/../outside/secret.txt", 404, false},
		{"http://h/static/../outside/secret.txt", 400, false},
		{"/../outside/secret.txt", 404, true},
		{"/%2e%2e/outside/secret.txt", 404, true},
		{"/..", 200, true}, // cleans to "/": the listing of the root
		{"/abs-out", 404, true},
		{"/dir-out/secret.txt", 404, true},
		{"/" + root + "/../../outside/secret.txt", 404, true},
	} {
		mm := m
		if tc.top {
			mm = top
		}
		r := serve(mm, "GET", tc.target, nil)
		if r.Status != tc.status {
			t.Errorf("%q: status %d, want %d", tc.target, r.Status, tc.status)
		}
		checkInside(t, tc.target, r, allowed)
		r.Close()
	}
}

// TestMount_ServeConcurrent hammers one mount from many goroutines; run
// with -race.
func TestMount_ServeConcurrent(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/s/", Root: root, Browse: true})
	type req struct {
		target string
		h      message.Header
		want   string
	}
	reqs := []req{
		{"/s/a.css", nil, "body{}"},
		{"/s/app.js", hdr("Accept-Encoding", "br"), "BR"},
		{"/s/sub/css/deep.css", nil, "deep{}"},
		{"/s/big.bin", hdr("Range", "bytes=0-2"), "abc"},
		{"/s/dir/", nil, "<h1>dir</h1>"},
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				rq := reqs[(g+i)%len(reqs)]
				r := serve(m, "GET", rq.target, rq.h)
				if got := body(t, r); got != rq.want {
					t.Errorf("%s = %q", rq.target, got)
				}
				r.Close()
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func TestResponse_Close(t *testing.T) {
	root, _ := testTree(t)
	m := newTestMount(t, MountConfig{Prefix: "/s/", Root: root})
	r := serve(m, "GET", "/s/a.css", nil)
	f := r.Sections[0].File
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.Stat(); err == nil {
		t.Error("file still open after Close")
	}
	var nilResp *Response
	if err := nilResp.Close(); err != nil {
		t.Error(err)
	}
	// After the mount is closed, Serve answers 500.
	m.Close()
	if r := serve(m, "GET", "/s/a.css", nil); r.Status != 500 {
		t.Errorf("closed mount: status %d", r.Status)
	}
	if r := serve(m, "GET", "/s/sub/css/deep.css", nil); r.Status != 500 {
		t.Errorf("closed mount, nested: status %d", r.Status)
	}
}
