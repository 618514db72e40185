package http1

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// browserRequest is a typical ~600-byte request from a desktop browser.
const browserRequest = "GET /articles/2024/http-parsing?utm_source=news&page=2 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\n" +
	"sec-ch-ua-platform: \"Linux\"\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Referer: https://www.example.com/articles/\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Cookie: session=4f2a9c1e8b7d6a5f; theme=dark\r\n" +
	"\r\n"

func BenchmarkReadRequest(b *testing.B) {
	rd := strings.NewReader(browserRequest)
	br := bufio.NewReaderSize(rd, 4096)
	var req message.Request
	b.SetBytes(int64(len(browserRequest)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(browserRequest)
		br.Reset(rd)
		if _, err := ReadRequest(br, HeadLimits{}, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadResponse(b *testing.B) {
	const resp = "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"Content-Length: 15320\r\n" +
		"Cache-Control: private, max-age=0\r\n" +
		"Date: Mon, 06 May 2024 10:00:00 GMT\r\n" +
		"Set-Cookie: session=4f2a9c1e8b7d6a5f; Path=/; HttpOnly; Secure\r\n" +
		"Vary: Accept-Encoding\r\n" +
		"X-Request-Id: 9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d\r\n" +
		"\r\n"
	rd := strings.NewReader(resp)
	br := bufio.NewReaderSize(rd, 4096)
	var r message.Response
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(resp)
		br.Reset(rd)
		if _, err := ReadResponse(br, HeadLimits{}, "GET", &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponseHead(b *testing.B) {
	h := hdr(
		"Content-Type", "text/html; charset=utf-8",
		"Content-Length", "15320",
		"Cache-Control", "private, max-age=0",
		"Date", "Mon, 06 May 2024 10:00:00 GMT",
		"Set-Cookie", "session=4f2a9c1e8b7d6a5f; Path=/; HttpOnly; Secure",
		"Vary", "Accept-Encoding",
		"X-Request-Id", "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
	)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResponseHead(buf[:0], 200, "", h)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendRequestHead(b *testing.B) {
	var req message.Request
	if _, err := ReadRequest(bufio.NewReader(strings.NewReader(browserRequest)), HeadLimits{}, &req); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequestHead(buf[:0], &req)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkChunkedReader decodes a 1 MiB body sent in 16 KiB chunks, and
// one sent in 100-byte chunks.
func BenchmarkChunkedReader(b *testing.B) {
	for _, chunk := range []int{16 << 10, 100} {
		var wire bytes.Buffer
		cw := NewChunkedWriter(&wire)
		data := bytes.Repeat([]byte("x"), chunk)
		for n := 0; n < 1<<20; n += chunk {
			cw.Write(data)
		}
		cw.Close()
		in := wire.Bytes()
		b.Run(sizeName(chunk), func(b *testing.B) {
			rd := bytes.NewReader(in)
			br := bufio.NewReaderSize(rd, 32<<10)
			var r ChunkedReader
			p := make([]byte, 32<<10)
			b.SetBytes(1 << 20)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(in)
				br.Reset(rd)
				r.Reset(br, 0)
				for {
					_, err := r.Read(p)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return "chunk=" + itoa(n>>10) + "KiB"
	}
	return "chunk=" + itoa(n) + "B"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
