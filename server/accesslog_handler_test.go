package server

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestLineHandler_matchesJSONHandler checks that the access log's handler
// writes byte for byte what slog.JSONHandler writes, for every kind of
// value the pipeline logs and for strings that need escaping. (For ±Inf
// and NaN, which JSON cannot hold, JSONHandler writes an error string and
// lineHandler the value's name as a string.)
func TestLineHandler_matchesJSONHandler(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name  string
		attrs []slog.Attr
	}{
		{"none", nil},
		{"access line", []slog.Attr{
			slog.String("remote", "127.0.0.1"), slog.String("method", "GET"), slog.String("uri", "/a?b=c&d=<e>"),
			slog.Int("status", 200), slog.Int64("bytes_sent", 1024), slog.Float64("total_s", 0.000123),
			slog.Float64("upstream_s", 0), slog.Bool("ok", true), slog.Uint64("n", 7),
		}},
		{"escapes", []slog.Attr{
			slog.String("q", "\"quoted\" \\ back\nnew\rret\ttab \x01 \x7f"),
			slog.String("bad utf8", "a\xffb"), slog.String("seps", "x\u2028y\u2029z"),
			slog.String("unicode", "héllo, 世界"), slog.String("key \"odd\"", "v"),
		}},
		{"floats", []slog.Attr{
			slog.Float64("big", 1e21), slog.Float64("small", 1e-7), slog.Float64("int", 3),
		}},
		{"time and duration", []slog.Attr{slog.Time("at", at), slog.Duration("d", 1500*time.Millisecond)}},
		{"empty attr skipped", []slog.Attr{{}, slog.String("after", "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got bytes.Buffer
			r := slog.NewRecord(at, slog.LevelInfo, "access", 0)
			r.AddAttrs(tt.attrs...)
			if err := slog.NewJSONHandler(&want, nil).Handle(context.Background(), r.Clone()); err != nil {
				t.Fatal(err)
			}
			if err := newLineHandler(&got).Handle(context.Background(), r.Clone()); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
		})
	}
}

func BenchmarkAccessLine(b *testing.B) {
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{
		{"lineHandler", newLineHandler(discard{})},
		{"slog.JSONHandler", slog.NewJSONHandler(discard{}, nil)},
	} {
		b.Run(h.name, func(b *testing.B) {
			l := slog.New(h.h)
			b.ReportAllocs()
			for b.Loop() {
				l.LogAttrs(context.Background(), slog.LevelInfo, "access",
					slog.String("remote", "127.0.0.1"), slog.String("method", "GET"), slog.String("uri", "/small"),
					slog.String("host", "127.0.0.1:18080"), slog.String("proto", "HTTP/1.1"), slog.Int("status", 200),
					slog.Int64("bytes_sent", 1024), slog.Int64("request_length", 0), slog.String("upstream", "127.0.0.1:19001"),
					slog.Int("upstream_status", 200), slog.Float64("read_client_s", 0.0000123),
					slog.Float64("upstream_s", 0.000234), slog.Float64("write_client_s", 0.0000345), slog.Float64("total_s", 0.000456))
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
