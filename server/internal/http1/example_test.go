package http1_test

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/http1"
	"github.com/wedgeproxy/wedge/server/internal/message"
)

func ExampleReadRequest() {
	conn := strings.NewReader("POST http://example.com/upload?x=1 HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Content-Type: text/plain\r\n" +
		"Transfer-Encoding: chunked\r\n" +
		"\r\n" +
		"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
	br := bufio.NewReader(conn)

	var req message.Request
	framing, err := http1.ReadRequest(br, http1.HeadLimits{}, &req)
	if err != nil {
		// An *http1.Error carries the status to answer before closing.
		fmt.Println(err)
		return
	}
	fmt.Println(req.Method, req.Target, req.Host, req.Proto, framing)
	fmt.Println(req.Header.Get("Content-Type"))

	var body http1.ChunkedReader
	body.Reset(br, 0)
	b := new(strings.Builder)
	if _, err := fmt.Fprint(b, readAll(&body)); err != nil {
		return
	}
	fmt.Printf("%q\n", b.String())

	// A malformed request: the error says which status to send.
	_, err = http1.ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\n\r\n")), http1.HeadLimits{}, &req)
	fmt.Println(err.(*http1.Error).Status, err)
	// Output:
	// POST /upload?x=1 example.com HTTP/1.1 chunked
	// text/plain
	// "hello world"
	// 400 parsing http/1.1: missing host (status 400)
}

func readAll(r *http1.ChunkedReader) string {
	var sb strings.Builder
	p := make([]byte, 64)
	for {
		n, err := r.Read(p)
		sb.Write(p[:n])
		if err != nil {
			return sb.String()
		}
	}
}
