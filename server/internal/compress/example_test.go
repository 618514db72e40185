package compress_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/wedgeproxy/wedge/server/internal/compress"
)

// ExampleNewWriter compresses a body with gzip at level 6 and decodes it.
func ExampleNewWriter() {
	body := strings.Repeat("<p>hello, wedge</p>\n", 100)
	c, _ := compress.ParseCoding("gzip")
	var out bytes.Buffer
	w, err := compress.NewWriter(&out, c, c.DefaultLevel(), int64(len(body)))
	if err != nil {
		panic(err)
	}
	io.WriteString(w, body)
	if err := w.Close(); err != nil { // ends the stream; the encoder goes back to its pool
		panic(err)
	}
	r, _ := gzip.NewReader(&out)
	back, _ := io.ReadAll(r)
	fmt.Println(len(body), "bytes, decoded equal:", string(back) == body)
	// Output: 2000 bytes, decoded equal: true
}
