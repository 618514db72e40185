package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// uploadResult is what testdata/app.py's /upload answers.
type uploadResult struct {
	Len              int64   `json:"len"`
	SHA256           string  `json:"sha256"`
	ContentLength    *string `json:"content_length"`
	TransferEncoding *string `json:"transfer_encoding"`
}

// TestBodiesByteForByte sends request bodies, fixed-length and chunked,
// through Wedge to Gunicorn and fetches responses, Content-Length and
// chunked from Gunicorn, of 0 B to 200 MiB, and checks every byte (by
// SHA-256), that the app got a Content-Length and never a
// Transfer-Encoding (Wedge de-chunks), that the client got a
// Content-Length, and that temp_path is empty after each exchange.
func TestBodiesByteForByte(t *testing.T) {
	g := startGunicorn(t, 2)
	w := startWedge(t, g.Addr, func(c *config.Config) {
		c.Limits.ClientMaxBodySize = 256 << 20
	})
	c := normalClient(3 * time.Minute)

	sizes := []int64{0, 1, 64 << 10, 10 << 20, 200 << 20}
	for _, n := range sizes {
		long := func(t *testing.T) {
			if n > 10<<20 && testing.Short() {
				t.Skip("skipped in -short mode: 200 MiB bodies")
			}
		}
		t.Run(fmt.Sprintf("upload/fixed/%d", n), func(t *testing.T) {
			long(t)
			req, err := http.NewRequest("POST", w.URL("/upload"), &patternReader{n: n})
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = n
			if n == 0 {
				req.Body = http.NoBody
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			checkUpload(t, resp, n)
			w.assertTempEmpty(t)
		})
		t.Run(fmt.Sprintf("upload/chunked/%d", n), func(t *testing.T) {
			long(t)
			conn, err := net.Dial("tcp", w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Minute))
			if err := writeChunked(conn, "PUT", "/upload", n); err != nil {
				t.Fatalf("writing chunked request: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkUpload(t, resp, n)
			w.assertTempEmpty(t)
		})
		for _, chunked := range []bool{false, true} {
			name := "fixed"
			q := ""
			if chunked {
				name, q = "chunked", "&chunked=1"
			}
			t.Run(fmt.Sprintf("download/%s/%d", name, n), func(t *testing.T) {
				long(t)
				resp, err := c.Get(w.URL("/big?n=" + strconv.FormatInt(n, 10) + q))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				if resp.ContentLength != n || len(resp.TransferEncoding) != 0 {
					t.Errorf("client got Content-Length %d, Transfer-Encoding %q; want %d and none (Wedge buffers)",
						resp.ContentLength, resp.TransferEncoding, n)
				}
				h := sha256.New()
				got, err := io.Copy(h, resp.Body)
				if err != nil {
					t.Fatalf("reading body after %d bytes: %v", got, err)
				}
				if got != n {
					t.Fatalf("got %d bytes, want %d", got, n)
				}
				if sum, want := hex.EncodeToString(h.Sum(nil)), patternSHA256(n); sum != want {
					t.Fatalf("body SHA-256 %s, want %s", sum, want)
				}
				w.assertTempEmpty(t)
			})
		}
	}
	assertServing(t, w)
}

// checkUpload checks the app's answer to an upload of the first n bytes
// of the pattern.
func checkUpload(t *testing.T, resp *http.Response, n int64) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var r uploadResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	if r.Len != n {
		t.Errorf("app read %d bytes, want %d", r.Len, n)
	}
	if want := patternSHA256(n); r.SHA256 != want {
		t.Errorf("app got SHA-256 %s, want %s", r.SHA256, want)
	}
	if r.ContentLength == nil || *r.ContentLength != strconv.FormatInt(n, 10) {
		t.Errorf("app saw Content-Length %v, want %d", deref(r.ContentLength), n)
	}
	if r.TransferEncoding != nil {
		t.Errorf("app saw Transfer-Encoding %q, want none (Wedge de-chunks)", *r.TransferEncoding)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// writeChunked writes a request whose body is the first n bytes of the
// pattern in chunks of varying sizes (RFC 9112 §7.1), the first with a
// chunk extension, ending with a trailer field.
func writeChunked(c net.Conn, method, path string, n int64) error {
	bw := bufio.NewWriterSize(c, 64<<10)
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		method, path, c.RemoteAddr())
	sizes := [...]int64{1, 7, 100, 4096, 65536, 1 << 20}
	r := &patternReader{n: n}
	buf := make([]byte, 1<<20)
	for i := 0; r.off < n; i++ {
		k := min(sizes[i%len(sizes)], n-r.off)
		ext := ""
		if i == 0 {
			ext = ";name=value"
		}
		fmt.Fprintf(bw, "%x%s\r\n", k, ext)
		io.ReadFull(r, buf[:k])
		bw.Write(buf[:k])
		bw.WriteString("\r\n")
	}
	bw.WriteString("0\r\nX-Trailer: done\r\n\r\n")
	return bw.Flush()
}
