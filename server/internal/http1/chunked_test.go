package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readChunked decodes in through a bufio.Reader of size bufSize, reading
// with a buffer of readSize bytes, and returns the data and the error that
// ended it (nil for io.EOF) and what is left in the stream.
func readChunked(in string, bufSize, readSize, maxTrailer int) (data string, rest string, err error) {
	br := bufio.NewReaderSize(strings.NewReader(in), bufSize)
	var r ChunkedReader
	r.Reset(br, maxTrailer)
	var out bytes.Buffer
	p := make([]byte, readSize)
	for i := 0; ; i++ {
		n, err := r.Read(p)
		out.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return out.String(), "", err
		}
		if i > 1<<20 {
			return out.String(), "", errors.New("no progress")
		}
	}
	b, _ := io.ReadAll(br)
	return out.String(), string(b), nil
}

type chunkedTest struct {
	name       string
	in         string
	maxTrailer int
	want       string
	status     int   // *Error status expected
	err        error // other error expected
}

var chunkedTests = []chunkedTest{
	// RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF.
	{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", want: "hello"},
	{name: "several chunks", in: "5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n", want: "hello world!"},
	{name: "hex sizes both cases", in: "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n", want: "01234567890123456789a"},
	{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", want: "hello"},
	{name: "empty body", in: "0\r\n\r\n", want: ""},
	{name: "data with CRLF inside", in: "4\r\n\r\n\r\n\r\n0\r\n\r\n", want: "\r\n\r\n"},
	{name: "rest left in stream", in: "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", want: "a"},
	// RFC 9112 §7.1.1: chunk extensions are parsed and discarded.
	{name: "extension name only", in: "5;foo\r\nhello\r\n0\r\n\r\n", want: "hello"},
	{name: "extension token value", in: "5;foo=bar;baz\r\nhello\r\n0;last=1\r\n\r\n", want: "hello"},
	{name: "extension quoted value", in: "5;foo=\"a b;c\\\"d\"\r\nhello\r\n0\r\n\r\n", want: "hello"},
	{name: "extension BWS", in: "5 ; foo = bar ;baz\r\nhello\r\n0\r\n\r\n", want: "hello"},
	{name: "extension quoted then BWS", in: "5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", want: "hello"},
	{name: "extension without name", in: "5;\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "extension bad name", in: "5;f(o)\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "extension empty value", in: "5;foo=\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "extension unterminated quote", in: "5;foo=\"bar\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "extension CTL in quote", in: "5;foo=\"b\x01r\"\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "extension trailing whitespace", in: "5;foo \r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "extension bare LF", in: "5;foo\nhello\r\n0\r\n\r\n", status: 400},
	// Trailer section (§7.1.2): checked, discarded, bounded.
	{name: "trailers discarded", in: "5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\nrest", want: "hello"},
	{name: "trailer obs-fold", in: "0\r\nX: a\r\n b\r\n\r\n", status: 400},
	{name: "trailer no colon", in: "0\r\nX\r\n\r\n", status: 400},
	{name: "trailer bad name", in: "0\r\nX Y: a\r\n\r\n", status: 400},
	{name: "trailer NUL", in: "0\r\nX: a\x00\r\n\r\n", status: 400},
	{name: "trailer bare LF", in: "0\r\nX: a\n\r\n", status: 400},
	{name: "trailer bare LF end", in: "0\r\n\n", status: 400},
	{name: "trailer too large", in: "0\r\nX: " + strings.Repeat("a", 100) + "\r\n\r\n", maxTrailer: 64, status: 431},
	{name: "trailer at limit", in: "0\r\nX: " + strings.Repeat("a", 57) + "\r\n\r\n", maxTrailer: 64, want: ""},
	// Malformed sizes.
	{name: "empty size", in: "\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size not hex", in: "g\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size with sign", in: "+5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size with 0x", in: "0x5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size leading space", in: " 5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size trailing space", in: "5 \r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size bare LF", in: "5\nhello\r\n0\r\n\r\n", status: 400},
	{name: "size bare CR", in: "5\rhello\r\n0\r\n\r\n", status: 400},
	{name: "size underscore", in: "1_0\r\n0123456789abcdef\r\n0\r\n\r\n", status: 400},
	{name: "last chunk bare LF", in: "5\r\nhello\r\n0\n\r\n", status: 400},
	// Huge sizes.
	{name: "size max int64 then truncated", in: "7fffffffffffffff\r\nabc", want: "abc", err: io.ErrUnexpectedEOF},
	{name: "size 2^63", in: "8000000000000000\r\nabc", status: 400},
	{name: "size 17 digits", in: "10000000000000000\r\nabc", status: 400},
	{name: "size many leading zeros", in: strings.Repeat("0", 40) + "1\r\na\r\n0\r\n\r\n", want: "a"},
	{name: "size line too long", in: "1;" + strings.Repeat("a", 5000) + "\r\na\r\n0\r\n\r\n", status: 400},
	// Data must be followed by CRLF.
	{name: "data too long", in: "3\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "data followed by LF only", in: "5\r\nhello\n0\r\n\r\n", status: 400},
	{name: "data followed by CR only", in: "5\r\nhello\r0\r\n\r\n", status: 400},
	// Truncation.
	{name: "truncated in size", in: "5", err: io.ErrUnexpectedEOF},
	{name: "truncated after size CR", in: "5\r", err: io.ErrUnexpectedEOF},
	{name: "truncated in data", in: "5\r\nhel", want: "hel", err: io.ErrUnexpectedEOF},
	{name: "truncated before data CRLF", in: "5\r\nhello", want: "hello", err: io.ErrUnexpectedEOF},
	{name: "truncated in data CRLF", in: "5\r\nhello\r", want: "hello", err: io.ErrUnexpectedEOF},
	{name: "truncated before last chunk", in: "5\r\nhello\r\n", want: "hello", err: io.ErrUnexpectedEOF},
	{name: "truncated before final CRLF", in: "5\r\nhello\r\n0\r\n", want: "hello", err: io.ErrUnexpectedEOF},
	{name: "truncated in trailer", in: "0\r\nX: a", err: io.ErrUnexpectedEOF},
	{name: "empty input", in: "", err: io.ErrUnexpectedEOF},
}

func TestChunkedReader_Read(t *testing.T) {
	for _, tt := range chunkedTests {
		t.Run(tt.name, func(t *testing.T) {
			for _, sizes := range [][2]int{{16, 1}, {16, 7}, {4096, 3}, {4096, 1 << 16}} {
				data, rest, err := readChunked(tt.in, sizes[0], sizes[1], tt.maxTrailer)
				switch {
				case tt.status != 0:
					if got := errStatus(err); got != tt.status {
						t.Fatalf("sizes %v: err = %v, want status %d", sizes, err, tt.status)
					}
					continue
				case tt.err != nil:
					if err != tt.err {
						t.Fatalf("sizes %v: err = %v, want %v", sizes, err, tt.err)
					}
				case err != nil:
					t.Fatalf("sizes %v: err = %v", sizes, err)
				}
				if data != tt.want {
					t.Errorf("sizes %v: data = %q, want %q", sizes, data, tt.want)
				}
				if tt.err == nil {
					// The reader stops right after the body.
					wantRest := tt.in[strings.LastIndex(tt.in, "\r\n\r\n")+4:]
					if rest != wantRest {
						t.Errorf("sizes %v: rest = %q, want %q", sizes, rest, wantRest)
					}
				}
			}
		})
	}
}

// TestChunkedReader_sticky checks that errors and io.EOF repeat.
func TestChunkedReader_sticky(t *testing.T) {
	var r ChunkedReader
	r.Reset(bufio.NewReader(strings.NewReader("x\r\n")), 0)
	p := make([]byte, 8)
	_, err1 := r.Read(p)
	_, err2 := r.Read(p)
	if errStatus(err1) != 400 || err1 != err2 {
		t.Errorf("errors %v, %v", err1, err2)
	}
	r.Reset(bufio.NewReader(strings.NewReader("0\r\n\r\n")), 0)
	for i := 0; i < 3; i++ {
		if n, err := r.Read(p); n != 0 || err != io.EOF {
			t.Errorf("read %d: %d, %v", i, n, err)
		}
	}
	var zero ChunkedReader
	if _, err := zero.Read(p); err == nil {
		t.Error("zero ChunkedReader read without error")
	}
}

// TestChunkedReader_overhead checks that long extensions on tiny chunks
// are refused while one-byte chunks are not.
func TestChunkedReader_overhead(t *testing.T) {
	ext := ";" + strings.Repeat("x", 1000)
	in := strings.Repeat("1"+ext+"\r\na\r\n", 100) + "0\r\n\r\n"
	if _, _, err := readChunked(in, 4096, 4096, 0); errStatus(err) != 400 {
		t.Errorf("extension flood: err = %v, want 400", err)
	}
	in = strings.Repeat("1\r\na\r\n", 100000) + "0\r\n\r\n"
	if data, _, err := readChunked(in, 4096, 4096, 0); err != nil || len(data) != 100000 {
		t.Errorf("one-byte chunks: %d bytes, err = %v", len(data), err)
	}
}

// TestChunkedReader_noBlock checks that Read returns the data it has
// instead of blocking for framing that has not arrived.
func TestChunkedReader_noBlock(t *testing.T) {
	pr, pw := io.Pipe()
	var r ChunkedReader
	r.Reset(bufio.NewReader(pr), 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.Write([]byte("5\r\nhello"))
	}()
	p := make([]byte, 64)
	n, err := r.Read(p)
	if err != nil || string(p[:n]) != "hello" {
		t.Fatalf("got %q, %v", p[:n], err)
	}
	<-done
	go pw.Write([]byte("\r\n0\r\n\r\n"))
	if n, err := io.ReadFull(&r, p[:1]); n != 0 && err != io.EOF {
		t.Fatalf("end: %d, %v", n, err)
	}
	pw.Close()
}

func TestChunkedWriter_Write(t *testing.T) {
	var buf bytes.Buffer
	cw := NewChunkedWriter(&buf)
	for _, s := range []string{"hello", "", " ", strings.Repeat("x", 300)} {
		if n, err := cw.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	want := "5\r\nhello\r\n1\r\n \r\n12c\r\n" + strings.Repeat("x", 300) + "\r\n0\r\n\r\n"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
	if _, err := cw.Write([]byte("late")); err == nil {
		t.Error("Write after Close succeeded")
	}
	cw.Reset(&buf)
	buf.Reset()
	cw.Write([]byte("ab"))
	cw.Close()
	if buf.String() != "2\r\nab\r\n0\r\n\r\n" {
		t.Errorf("after Reset: %q", buf.String())
	}
	// Errors of the underlying writer are wrapped.
	cw.Reset(iotest.TruncateWriter(io.Discard, 0))
	if _, err := cw.Write([]byte("x")); err != nil {
		t.Errorf("truncate writer: %v", err)
	}
	errW := errors.New("boom")
	cw.Reset(errWriter{errW})
	if _, err := cw.Write([]byte("x")); !errors.Is(err, errW) {
		t.Errorf("err = %v, want wrapping %v", err, errW)
	}
	cw.Reset(errWriter{errW})
	if err := cw.Close(); !errors.Is(err, errW) {
		t.Errorf("Close err = %v, want wrapping %v", err, errW)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestRoundTrip_chunked writes bodies with ChunkedWriter and reads them back.
func TestRoundTrip_chunked(t *testing.T) {
	for _, sizes := range [][]int{{1}, {1, 2, 3}, {4096, 1, 70000}, {0, 0, 5}} {
		var wire bytes.Buffer
		cw := NewChunkedWriter(&wire)
		var want bytes.Buffer
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte('a' + i)}, n)
			want.Write(p)
			cw.Write(p)
		}
		cw.Close()
		data, rest, err := readChunked(wire.String(), 4096, 1000, 0)
		if err != nil || data != want.String() || rest != "" {
			t.Errorf("sizes %v: %d bytes, rest %q, err %v", sizes, len(data), rest, err)
		}
	}
}
