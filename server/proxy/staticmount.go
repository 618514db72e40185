package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/static"
)

// MountSpec is the argument of wedge_static_mount, as JSON: a static mount
// a plugin (the router) asks the host to open when it is configured, and
// names later, per request, with wedge.static.
type MountSpec struct {
	// Name identifies the mount in wedge.static; unique per configuration
	// (opening the same name again with the same fields is a no-op, as
	// every VM of a plugin configures itself).
	Name string `json:"name"`
	// Root is the directory served, relative to the configuration file's
	// directory (the working directory for a configuration without one).
	Root string `json:"root"`
	// Index is the file served for a directory; default index.html.
	Index string `json:"index,omitempty"`
	// Browse lists a directory without an index file (else 403).
	Browse bool `json:"browse,omitempty"`
	// Internal marks a mount meant for X-Accel-Redirect targets. The
	// host does not enforce it (the plugin decides what it serves); it is
	// kept for the logs and the documentation of intent.
	Internal bool `json:"internal,omitempty"`
	// ResponseHeaders edit every response served from the mount: remove,
	// then set, then add (names case-insensitive).
	ResponseHeaders *HeaderEdits `json:"response_headers,omitempty"`
}

// HeaderEdits are field edits applied in the order remove, set, add.
type HeaderEdits struct {
	Add    map[string]string `json:"add,omitempty"`
	Set    map[string]string `json:"set,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// mountEntry is an open mount.
type mountEntry struct {
	spec  MountSpec
	raw   []byte // spec as JSON, to tell a repeat from a clash
	m     *static.Mount
	edits [][3]string // {op, name, value}, op "r", "s" or "a", in order
}

// mountTable holds the mounts of one Handler. Written at configure time
// (and when a VM is replaced), read by every static request.
type mountTable struct {
	mu     sync.RWMutex
	m      map[string]*mountEntry
	closed bool
}

func (t *mountTable) get(name string) (*mountEntry, bool) {
	t.mu.RLock()
	e, ok := t.m[name]
	t.mu.RUnlock()
	return e, ok
}

func (t *mountTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.m {
		e.m.Close()
	}
	t.m, t.closed = nil, true
}

// staticMountResult is what wedge_static_mount returns: {} on success,
// {"error": "..."} when the mount cannot be opened.
type staticMountResult struct {
	Error string `json:"error,omitempty"`
}

// wedgeStaticMount implements wedge_static_mount (sdk/README.md, "Wedge
// host calls"): args is a MountSpec as JSON; the result is
// {"error": "..."} when the mount cannot be opened (no such directory, a
// name already opened with other fields), {} otherwise. Malformed JSON
// fails the call (INTERNAL_FAILURE). Meant for proxy_on_configure; it may
// be called from a request context too.
func wedgeStaticMount(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	h, err := callHandler(call)
	if err != nil {
		return nil, err
	}
	var spec MountSpec
	d := json.NewDecoder(bytes.NewReader(args))
	d.DisallowUnknownFields()
	if err := d.Decode(&spec); err != nil {
		return nil, fmt.Errorf("decoding wedge_static_mount arguments: %w", err)
	}
	res := staticMountResult{}
	if err := h.openMount(spec); err != nil {
		res.Error = err.Error()
	}
	return json.Marshal(res)
}

// openMount opens spec's directory under h's base directory and records
// it, unless the same name is already open with the same spec.
func (h *Handler) openMount(spec MountSpec) error {
	if spec.Name == "" {
		return errors.New("a mount needs a name")
	}
	if spec.Root == "" {
		return errors.New("root: the directory to serve is required")
	}
	canon, _ := json.Marshal(spec)
	t := &h.mounts
	t.mu.RLock()
	e, ok := t.m[spec.Name]
	t.mu.RUnlock()
	if ok {
		if bytes.Equal(e.raw, canon) {
			return nil
		}
		return fmt.Errorf("static mount %q is already open with other settings (root %q)", spec.Name, e.spec.Root)
	}
	root := spec.Root
	if !filepath.IsAbs(root) && h.baseDir != "" {
		root = filepath.Join(h.baseDir, root)
	}
	m, err := static.New(static.MountConfig{Prefix: "/", Root: root, Index: spec.Index, Browse: spec.Browse, Internal: spec.Internal})
	if err != nil {
		return err
	}
	ne := &mountEntry{spec: spec, raw: canon, m: m, edits: compileEdits(spec.ResponseHeaders)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		m.Close()
		return errors.New("the configuration is closed")
	}
	if e, ok := t.m[spec.Name]; ok { // a VM opened it meanwhile
		m.Close()
		if bytes.Equal(e.raw, canon) {
			return nil
		}
		return fmt.Errorf("static mount %q is already open with other settings (root %q)", spec.Name, e.spec.Root)
	}
	if t.m == nil {
		t.m = make(map[string]*mountEntry)
	}
	t.m[spec.Name] = ne
	return nil
}

func compileEdits(e *HeaderEdits) [][3]string {
	if e == nil {
		return nil
	}
	var out [][3]string
	for _, n := range e.Remove {
		out = append(out, [3]string{"r", n, ""})
	}
	for _, k := range sortedKeys(e.Set) {
		out = append(out, [3]string{"s", k, e.Set[k]})
	}
	for _, k := range sortedKeys(e.Add) {
		out = append(out, [3]string{"a", k, e.Add[k]})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		if isToken(k) && !strings.ContainsAny(m[k], "\r\n\x00") {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func applyEdits(h *message.Header, edits [][3]string) {
	for _, e := range edits {
		switch e[0] {
		case "r":
			h.Del(e[1])
		case "s":
			h.Set(e[1], e[2])
		case "a":
			h.Add(e[1], e[2])
		}
	}
}

// chosenMount returns the open mount a plugin chose with wedge.static, or
// nil when none did. A name no plugin opened (wedge_static_mount) is
// answered 500: nil and answered true.
func (st *exchangeState) chosenMount() (me *mountEntry, answered bool) {
	if st.plugins == nil {
		return nil, false
	}
	name := st.plugins.StaticMount()
	if name == "" {
		return nil, false
	}
	me, ok := st.h.mounts.get(name)
	if !ok {
		st.fail(500, fmt.Sprintf("plugin chose static mount %q, which no plugin opened (wedge_static_mount)", name))
		return nil, true
	}
	return me, false
}

// serveStatic answers from the mount me: the file at p inside it, or at
// the request's own path when p is "".
func (st *exchangeState) serveStatic(me *mountEntry, req *message.Request, p string) {
	if st.ex.Body != nil && req.ContentLength != 0 {
		st.ex.CloseAfter = true // a body on GET/HEAD to a file is not read
	}
	if p == "" {
		p, _, _ = strings.Cut(req.Target, "?")
	}
	st.sendStatic(me.m.ServePath(req, p), nil, me.edits)
}

// accelFields are the upstream fields kept on the file served for its
// X-Accel-Redirect (nginx keeps the ones describing the download).
var accelFields = [...]string{"Content-Disposition", "Set-Cookie", "Cache-Control", "Expires"}

// serveAccelIfChosen serves the file a plugin chose during the response
// phases of an upstream response (wedge.static set there: the router
// matched the upstream's X-Accel-Redirect against its internal routes),
// in place of that response, keeping the upstream fields that describe
// the download. It reports whether it answered.
func (st *exchangeState) serveAccelIfChosen(up *message.Response) bool {
	me, answered := st.chosenMount()
	if me == nil {
		return answered
	}
	req := st.ex.Req
	p := st.plugins.StaticPath()
	if xa := up.Header.Get("X-Accel-Redirect"); xa != "" {
		req.Target = xa // the client sees the file at the redirect's URI
		if p == "" {
			p, _, _ = strings.Cut(xa, "?")
		}
	}
	if req.Method != "HEAD" {
		req.Method = "GET"
	}
	var keep message.Header
	for _, name := range accelFields {
		for _, v := range up.Header.Values(name) {
			keep.Add(name, v)
		}
	}
	st.upstreamDone = time.Now()
	st.sendStatic(me.m.ServePath(&req, p), keep, me.edits)
	return true
}

func (st *exchangeState) sendStatic(r *static.Response, extra message.Header, edits [][3]string) {
	defer r.Close()
	resp := &st.resp
	*resp = message.Response{Status: r.Status, Proto: "HTTP/1.1", Header: r.Header, ContentLength: r.ContentLength}
	for _, f := range extra {
		resp.Header.Set(f.Name, f.Value)
	}
	applyEdits(&resp.Header, edits)
	if !resp.Header.Has("Date") {
		resp.Header.Add("Date", httpDate())
	}
	st.secs = st.secs[:0]
	for _, s := range r.Sections {
		st.secs = append(st.secs, message.Section{Data: s.Data, File: s.File, Offset: s.Offset, Length: s.Length})
	}
	st.writeResponse(resp, st.secs)
}
