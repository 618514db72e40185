package static_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/static"
)

// A proxy matches the request path against the table, lets the mount
// resolve the request, writes the head and the sections, then closes the
// response.
func Example() {
	dir, _ := os.MkdirTemp("", "static-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "app.css"), []byte("body{color:red}"), 0o644)

	table, err := static.NewTable([]static.MountConfig{{Prefix: "/static/", Root: dir}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer table.Close()

	req := &message.Request{
		Method: "GET",
		Target: "/static/app.css?v=2",
		Header: message.Header{{Name: "Range", Value: "bytes=5-"}},
	}
	m, ok := table.Match(req.Path())
	if !ok {
		return
	}
	resp := m.Serve(req)
	defer resp.Close()

	fmt.Println(resp.Status)
	for _, f := range resp.Header {
		if f.Name != "ETag" && f.Name != "Last-Modified" {
			fmt.Printf("%s: %s\n", f.Name, f.Value)
		}
	}
	for _, s := range resp.Sections {
		if s.File != nil {
			// A real proxy uses sendfile here.
			io.Copy(os.Stdout, io.NewSectionReader(s.File, s.Offset, s.Length))
		} else {
			os.Stdout.Write(s.Data)
		}
	}
	fmt.Println()
	// Output:
	// 206
	// Content-Type: text/css; charset=utf-8
	// Content-Length: 10
	// Content-Range: bytes 5-14/15
	// color:red}
}
