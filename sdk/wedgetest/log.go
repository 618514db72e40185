package wedgetest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// record is one record of Wedge's error log, with the attributes the
// harness reads.
type record struct {
	level  slog.Level
	msg    string
	plugin string // plugin records: the plugin's name
	remote string // "request failed": the client's address
	reason string // "request failed": why; "refused request": err
	attrs  string // everything, for the log dump of a failed test
}

// recorder keeps every record of Wedge's error log.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

func (r *recorder) add(rec record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

func (r *recorder) since(mark int) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs[mark:])
}

// tail renders the last n records, one per line.
func (r *recorder) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.recs[max(0, len(r.recs)-n):] {
		fmt.Fprintf(&b, "%s %s%s\n", rec.level, rec.msg, rec.attrs)
	}
	return b.String()
}

// logHandler is the slog.Handler of Wedge's error log: every level is on
// (so plugins see log level trace), and records go to a recorder. Groups
// are flattened.
type logHandler struct {
	r     *recorder
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message}
	var b strings.Builder
	set := func(a slog.Attr) bool {
		v := a.Value.Resolve().String()
		switch a.Key {
		case "plugin":
			rec.plugin = v
		case "remote":
			rec.remote = v
		case "reason":
			rec.reason = v
		case "err":
			if rec.reason == "" {
				rec.reason = v
			}
		}
		fmt.Fprintf(&b, " %s=%q", a.Key, v)
		return true
	}
	for _, a := range h.attrs {
		set(a)
	}
	r.Attrs(set)
	rec.attrs = b.String()
	h.r.add(rec)
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{r: h.r, attrs: slices.Concat(h.attrs, attrs)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }
