package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/compress"
	"github.com/wedgeproxy/wedge/server/internal/http1"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/spool"
	"github.com/wedgeproxy/wedge/server/pluginhost"
)

// compressState is an exchange's dealings with wedge_compress_response
// (part of the pooled exchangeState; the zero value is "none").
type compressState struct {
	// buffered is set when the response phases run on a buffered
	// response (responsePhases), the only kind whose body the host can
	// still transform; a streamed response's headers phase leaves it
	// false.
	buffered bool
	// coding and level are what the plugin asked for; coding 0: nothing.
	coding compress.Coding
	level  int
}

// compressArgs are wedge_compress_response's arguments.
type compressArgs struct {
	Encoding string `json:"encoding"`
	Level    *int   `json:"level"`
}

// refusedNotBuffered is wedge_compress_response's answer outside the
// response phases of a buffered response: a streamed response (or a call
// from a request phase) cannot be compressed. It is an answer, not an
// error: streaming is an ordinary case the plugin cannot see coming.
var refusedNotBuffered = []byte(`{"refused":"no buffered response: the response is streamed, or this is not a response phase"}`)

// parseCompressArgs decodes wedge_compress_response's JSON arguments,
// {"encoding": "gzip"|"br"|"zstd", "level": N}, level optional (the
// coding's default, compress.Coding.DefaultLevel). Unknown fields, an
// unknown encoding and a level outside the coding's range are errors.
func parseCompressArgs(args []byte) (compress.Coding, int, error) {
	var a compressArgs
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return 0, 0, fmt.Errorf("decoding arguments: %w", err)
	}
	if dec.More() {
		return 0, 0, errors.New("decoding arguments: data after the JSON object")
	}
	c, ok := compress.ParseCoding(a.Encoding)
	if !ok {
		return 0, 0, fmt.Errorf("encoding %q: %w (want gzip, br or zstd)", a.Encoding, compress.ErrCoding)
	}
	level := c.DefaultLevel()
	if a.Level != nil {
		level = *a.Level
	}
	if err := c.CheckLevel(level); err != nil {
		return 0, 0, err
	}
	return c, level, nil
}

// callCompressResponse is wedge_compress_response: the plugin asks the
// host to compress the response body with a coding once every response
// phase ran (see afterResponsePhases). It answers nothing when the host
// will, or {"refused": reason} when it cannot (a streamed response); the
// plugin then leaves the fields alone. Otherwise the plugin sets
// Content-Encoding and the other fields itself; the host compresses only
// if the response's last content coding is then the one asked for, and
// sets Content-Length. Bad arguments and a call from a root context are
// errors (INTERNAL_FAILURE).
func callCompressResponse(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	st, err := callExchange(call)
	if err != nil {
		return nil, fmt.Errorf("wedge_compress_response: %w", err)
	}
	c, level, err := parseCompressArgs(args)
	if err != nil {
		return nil, fmt.Errorf("wedge_compress_response: %w", err)
	}
	if !st.compress.buffered {
		return refusedNotBuffered, nil
	}
	st.compress.coding, st.compress.level = c, level
	return nil, nil
}

// compressResponse carries out wedge_compress_response: it compresses
// st.rbody (memory chunks or a temp file, read section by section) into a
// new spool under the same limits (past proxy_buffer_size in a temp file;
// no cap: the body already fit), replaces st.rbody with it and sets
// Content-Length. It does nothing when no plugin asked, for a response
// without a body (HEAD, 204, 304: the plugin sets the fields only), or
// when Content-Encoding does not end with the coding asked for (a plugin
// that failed or was skipped with fail_open half way: the body is then
// sent as labelled). It reports false when it answered 500 instead (a
// temp file could not be written).
func (st *exchangeState) compressResponse(resp *message.Response) bool {
	c := st.compress.coding
	if c == 0 || !http1.BodyAllowed(resp.Status, st.ex.Req.Method) {
		return true
	}
	if last := lastCoding(resp.Header); last != c.String() {
		st.h.log.LogAttrs(nil, slog.LevelWarn, "not compressing: Content-Encoding does not name the coding asked for",
			slog.String("asked", c.String()), slog.String("content_encoding", last),
			slog.String("uri", st.ex.Req.Target))
		return true
	}
	opt := st.h.respSpoolOptions()
	opt.MaxFile = -1
	out := spool.New(opt)
	if err := encodeBody(out, &st.rbody, c, st.compress.level, st.secs[:0]); err != nil {
		out.Close()
		st.fail(500, "compressing response: "+err.Error())
		return false
	}
	st.rbody.Close()
	st.rbody = *out
	resp.ContentLength = st.rbody.Len()
	resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	return true
}

// encodeBody writes in's body compressed with c at level to out. secs is
// scratch space for in's sections.
func encodeBody(out io.Writer, in *spool.Spool, c compress.Coding, level int, secs []message.Section) error {
	w, err := compress.NewWriter(out, c, level, in.Len())
	if err != nil {
		return err
	}
	secs = in.Sections(secs)
	defer clear(secs)
	for _, s := range secs {
		if s.File == nil {
			_, err = w.Write(s.Data)
		} else {
			bp := copyBufPool.Get().(*[]byte)
			_, err = io.CopyBuffer(w, io.NewSectionReader(s.File, s.Offset, s.Length), *bp)
			copyBufPool.Put(bp)
		}
		if err != nil {
			w.Abandon()
			return fmt.Errorf("writing %s: %w", c, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("finishing %s: %w", c, err)
	}
	return nil
}

// lastCoding returns the last content coding Content-Encoding lists
// (RFC 9110 §8.4: codings are listed in the order applied), lower-cased,
// or "" when there is none.
func lastCoding(h message.Header) string {
	vs := h.Values("Content-Encoding")
	for i := len(vs) - 1; i >= 0; i-- {
		for v := vs[i]; v != ""; {
			j := strings.LastIndexByte(v, ',')
			if e := strings.TrimSpace(v[j+1:]); e != "" {
				return strings.ToLower(e)
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return ""
}
