package static

import (
	"os"
	"strconv"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Response is what [Mount.Serve] resolved a request into. The proxy writes
// Status and Header, then each of Sections in order, then calls Close.
//
// Header holds, as they apply: Content-Type, Content-Length,
// Last-Modified, ETag, Accept-Ranges, Content-Range, Content-Encoding,
// Vary, Location and Allow. It holds no Date or Server field; the proxy adds
// those. A 304 response has no Content-Length field and no body
// (RFC 9110 §15.4.5).
type Response struct {
	// Status is the status code: 200, 206, 301, 304, 400, 403, 404, 405,
	// 412, 416 or 500.
	Status int
	// Header holds the response's fields. Its values may share memory
	// with other responses; the proxy may change the slice (Set, Add,
	// Del) but must not mutate the bytes behind the strings.
	Header message.Header
	// Sections is the body in order. It is nil for HEAD, for 304 and for
	// any response without a body. Data sections may share memory with
	// other responses and must not be modified.
	Sections []Section
	// ContentLength is the body's length in bytes, the sum of the
	// sections' lengths. For HEAD it is the length a GET would have sent,
	// and matches the Content-Length field; it is 0 for 304.
	ContentLength int64

	file   *os.File // the file the File sections read, closed by Close
	fields [8]message.Field
	secs   [1]Section
}

// Section is one piece of a response body: either the bytes of Data, or,
// when File is not nil, Length bytes of File starting at byte Offset.
//
// File is owned by the [Response]: the proxy must not close it. Several
// sections may share one File. The proxy may read with ReadAt
// (io.NewSectionReader) or move the file offset: f.Seek(Offset,
// io.SeekStart) then conn.ReadFrom(io.LimitReader(f, Length)) takes the
// net package's sendfile path on a *net.TCPConn or *net.UnixConn.
type Section struct {
	Data   []byte
	File   *os.File
	Offset int64
	Length int64
}

// Len returns the section's length in bytes.
func (s *Section) Len() int64 {
	if s.File != nil {
		return s.Length
	}
	return int64(len(s.Data))
}

// Close closes the file behind the File sections, if any. It is safe to
// call more than once and on a nil Response; only the first call closes.
func (r *Response) Close() error {
	if r == nil || r.file == nil {
		return nil
	}
	f := r.file
	r.file = nil
	return f.Close()
}

func newResponse(status int) *Response {
	r := &Response{Status: status}
	r.Header = r.fields[:0]
	return r
}

// setBody makes data the whole body. For HEAD only the length is kept.
func (r *Response) setBody(data []byte, head bool) {
	r.ContentLength = int64(len(data))
	if !head && len(data) > 0 {
		r.secs[0] = Section{Data: data}
		r.Sections = r.secs[:1]
	}
}

// statusText holds the reason phrases of the statuses Serve produces
// (RFC 9110 §15).
var statusText = map[int]string{
	301: "Moved Permanently",
	400: "Bad Request",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	412: "Precondition Failed",
	416: "Range Not Satisfiable",
	500: "Internal Server Error",
}

// errorBody holds, per status, the small text body and its length as a
// string, built once so that error responses allocate nothing but the
// Response itself.
type errorBody struct {
	body []byte
	clen string
}

var errorBodies = func() map[int]errorBody {
	m := make(map[int]errorBody, len(statusText))
	for code, text := range statusText {
		b := []byte(strconv.Itoa(code) + " " + text + "\n")
		m[code] = errorBody{body: b, clen: strconv.Itoa(len(b))}
	}
	return m
}()

const textPlain = "text/plain; charset=utf-8"

// errorResponse returns a response with status and its short text body, so
// the proxy can send it as it is.
func errorResponse(status int, head bool) *Response {
	r := newResponse(status)
	eb, ok := errorBodies[status]
	if !ok {
		eb = errorBodies[500]
		r.Status = 500
	}
	r.Header = append(r.Header,
		message.Field{Name: "Content-Type", Value: textPlain},
		message.Field{Name: "Content-Length", Value: eb.clen},
	)
	r.setBody(eb.body, head)
	return r
}
