package server

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// lineHandler is the access log's slog.Handler: one JSON object per line,
// in the same shape as slog.JSONHandler ({"time":…,"level":…,"msg":…, then
// the attributes}), appended straight into a pooled buffer. The standard
// handler costs several microseconds per line through its generic
// machinery; the access log writes one line per request, so it gets a lean
// one. Groups and nested values are written as slog.JSONHandler would,
// through its Value.String fallback for kinds the pipeline never logs.
type lineHandler struct {
	w     io.Writer
	attrs []byte // pre-rendered attributes from WithAttrs, each with a leading comma
}

var lineBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func newLineHandler(w io.Writer) *lineHandler { return &lineHandler{w: w} }

func (h *lineHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	bp := lineBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, r.Level.String()...)
	b = append(b, `","msg":`...)
	b = appendJSONString(b, r.Message)
	b = append(b, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, a)
		return true
	})
	b = append(b, '}', '\n')
	_, err := h.w.Write(b)
	*bp = b
	lineBufPool.Put(bp)
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &lineHandler{w: h.w, attrs: append([]byte(nil), h.attrs...)}
	for _, a := range as {
		n.attrs = appendAttr(n.attrs, a)
	}
	return n
}

// WithGroup is not used by the access log; attributes stay flat.
func (h *lineHandler) WithGroup(string) slog.Handler { return h }

func appendAttr(b []byte, a slog.Attr) []byte {
	if a.Equal(slog.Attr{}) {
		return b
	}
	b = append(b, ',')
	b = appendJSONString(b, a.Key)
	b = append(b, ':')
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return appendJSONString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return appendJSONString(b, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return appendJSONFloat(b, f)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	case slog.KindGroup:
		b = append(b, '{')
		for i, ga := range v.Group() {
			g := appendAttr(nil, ga)
			if i == 0 && len(g) > 0 {
				g = g[1:] // no comma before the first member
			}
			b = append(b, g...)
		}
		return append(b, '}')
	}
	return appendJSONString(b, v.String())
}

// appendJSONString appends s as a JSON string (RFC 8259 §7), escaping
// quotes, backslashes, control characters and invalid UTF-8 as
// slog.JSONHandler does (which, unlike encoding/json's default, leaves <, >
// and & alone).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat formats f as encoding/json does (ES6 number formatting):
// plain decimals for 1e-6 <= |f| < 1e21, else an exponent without a
// leading zero ("1e-7", "1e+21").
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
