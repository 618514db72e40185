// Package wedgetest runs a proxy-wasm plugin's .wasm in the real Wedge, in
// process, against made-up requests, and reports what happened: the
// request as the upstream saw it, the response the client got, whether a
// plugin answered locally, what Wedge failed with, and what the plugin
// logged.
//
//	h, err := wedgetest.New(t, wasm, wedgetest.Options{
//		Config:    []byte(`{"pool":"api"}`),
//		Upstreams: map[string]http.Handler{"app": appHandler, "api": apiHandler},
//	})
//	res := h.Do(wedgetest.Request{Method: "GET", Path: "/api/users"})
//	if res.Upstream == nil || res.Upstream.Pool != "api" { ... }
//
// The plugin runs exactly as in production: New starts a
// github.com/wedgeproxy/wedge/server (the same pipeline, plugin host and
// limits as the wedge binary) listening on 127.0.0.1, in front of an
// in-process HTTP server on 127.0.0.1 for each upstream pool. Requests go
// to it over TCP as HTTP/1.1.
//
// # What the harness adds
//
// To know which phases ran, and so tell a local response from an
// upstream's, the chain is [probe, your plugin, probe]: two tiny filters
// (probe.wat) that log the name of each phase they see and change nothing.
// Their records are left out of the logs reported. Each connection
// carries one request (keepalive_requests: 1), so that the connection's
// close tells the harness that proxy_on_log, proxy_on_done and
// proxy_on_delete have run. Requests are run one at a time.
package wedgetest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed" // the probe module
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

//go:generate wat2wasm probe.wat -o probe.wasm

//go:embed probe.wasm
var probeWasm []byte

// Names of the probe plugins around the plugin under test.
const (
	probeFirst = "wedgetest-probe-first"
	probeLast  = "wedgetest-probe-last"
)

// Options configures a Harness. The zero value runs the plugin with an
// empty configuration in front of one pool, "app", whose handler answers
// 200 "ok\n".
type Options struct {
	// Name is the plugin's name (plugin_name, and LogRecord.Plugin).
	// Default: "plugin".
	Name string
	// Config is the plugin configuration proxy_on_configure reads (JSON
	// by Wedge's convention; wedge.yaml's config:). Default: empty.
	Config []byte
	// VMConfig is the VM configuration proxy_on_vm_start reads
	// (wedge.yaml's vm_config:). Default: empty.
	VMConfig []byte
	// PoolSize, CallbackTimeout, PauseTimeout, MemoryLimit and FailOpen
	// are the plugin's pool_size, callback_timeout, pause_timeout,
	// memory_limit (bytes) and fail_open; zero values take Wedge's
	// defaults (GOMAXPROCS VMs, 1s, 60s, 128 MiB, fail closed).
	PoolSize        int
	CallbackTimeout time.Duration
	PauseTimeout    time.Duration
	MemoryLimit     int64
	FailOpen        bool
	// Upstreams are the upstream pools, by name ([a-z0-9_-]+): each is
	// served by its handler on its own 127.0.0.1 port. The handler sees
	// the request exactly as Wedge forwards it (X-Forwarded-For, Via,
	// ...). Default: one pool "app" answering 200 "ok\n".
	Upstreams map[string]http.Handler
	// DefaultUpstream is the pool requests go to when no plugin sets
	// wedge.upstream. Default: "app" when there is such a pool, else the
	// only pool. With several pools and none of them "app", "" leaves
	// routing to the plugin under test.
	//
	// Routing is a plugin's job in Wedge: the harness puts the built-in
	// router first in the chain, with a route per Static mount and a
	// default route to DefaultUpstream, so the plugin under test sees
	// wedge.upstream already set and may change it.
	DefaultUpstream string
	// Static lists static mounts, served by the built-in router's static
	// routes (named after Name, the wedge.static a plugin may set).
	// Roots must be existing directories. They need a DefaultUpstream.
	Static []StaticMount
	// Configure, when set, may change the configuration last, before it
	// is validated: limits, trusted_proxies, more plugins in the chain
	// around the one under test, ... The harness then puts its probes
	// around cfg.Plugins and sets keepalive_requests to 1.
	Configure func(cfg *config.Config)
	// Timeout bounds each Do, from connecting to the connection's close
	// after the log phase. Default: the plugin's pause timeout plus 30s.
	Timeout time.Duration
}

// Request is a request a client sends. Zero fields take defaults.
type Request struct {
	// Method is the request method. Default: "GET".
	Method string
	// Path is the request-target, path and query ("/a?b=1").
	// Default: "/".
	Path string
	// Host is the Host field (request.host, :authority).
	// Default: "example.com".
	Host string
	// Header holds the other fields, written in the order of their sorted
	// names. A Host entry is ignored (use Host). Content-Length is added
	// for a non-empty Body (or a POST, PUT or PATCH) unless Header sets
	// Content-Length or Transfer-Encoding; with "Transfer-Encoding:
	// chunked" Body is sent as one chunk.
	Header http.Header
	// Body is the request body.
	Body []byte
}

// Result is what happened to one request.
type Result struct {
	// Status, Header and Body are the response the client got. Status is
	// 0 when the connection was closed without a response (Reset).
	Status int
	Header http.Header
	Body   []byte
	// Upstream is the request as the upstream pool's handler received
	// it, or nil when it reached no upstream (a local response, a static
	// file, or an error Wedge answered itself).
	Upstream *UpstreamRequest
	// Calls are the requests plugins made with proxy_http_call that
	// reached an upstream pool while the request ran, in arrival order.
	Calls []UpstreamRequest
	// Local reports that a plugin answered with proxy_send_local_response:
	// in a request phase (the upstream was not asked) or in a response
	// phase (the upstream's response was replaced).
	Local bool
	// Static reports that the response is a file from a static mount
	// (wedge.static, a mount matching the path, or an upstream's
	// X-Accel-Redirect).
	Static bool
	// Reset reports that Wedge closed the connection without a response,
	// as it does when a plugin calls proxy_close_stream.
	Reset bool
	// Failure is why Wedge answered with its own error response, as its
	// error log says (for example "plugin: running plugin \"p\": plugin
	// failed: ..." with status 500, or "upstream app: ..." with 502);
	// "" when it did not.
	Failure string
	// Logs are the records plugins (and the plugin host, about them)
	// logged while the request ran, in order.
	Logs []LogRecord
}

// UpstreamRequest is a request as an upstream pool's handler received it.
type UpstreamRequest struct {
	// Pool is the name of the upstream pool.
	Pool string
	// Method, Target (request-target, "/a?b=1"), Host and Proto
	// ("HTTP/1.1") are from the request line and Host field.
	Method, Target, Host, Proto string
	// Header holds the fields, names canonicalized by net/http.
	Header http.Header
	// Body is the whole body.
	Body []byte
}

// LogRecord is one record a plugin logged (proxy_log, or a line on its
// WASI stdout or stderr), or that the plugin host logged about it (a VM
// that failed and was replaced).
type LogRecord struct {
	// Plugin is the plugin's name.
	Plugin string
	// Level is the record's level: proxy_log's trace, debug, info, warn,
	// error and critical are slog.LevelDebug-4, LevelDebug, LevelInfo,
	// LevelWarn, LevelError and LevelError+4; stdout is INFO, stderr
	// ERROR.
	Level slog.Level
	// Message is the text the plugin logged.
	Message string
}

// TB is the part of testing.TB the harness uses; *testing.T and
// *testing.B are TBs.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Failed() bool
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// Harness is a running Wedge with one plugin under test. Its methods may
// be called from several goroutines; requests run one at a time. It is
// shut down when the test ends.
type Harness struct {
	t       TB
	srv     *server.Server
	addr    string
	admin   string
	via     string
	timeout time.Duration
	log     *recorder
	ups     *upstreams

	mu sync.Mutex // one Do at a time
}

// New starts Wedge in process with wasm as its plugin (wasm is written to
// a file under t.TempDir, as wedge.yaml's path: would name it), in front of
// opt.Upstreams, and shuts it down in t.Cleanup. Loading the plugin is
// Wedge's own: an error wraps what Wedge refused, for example a module
// without proxy_on_context_create ("invalid plugin"), so a test can check
// that a broken plugin fails to start.
func New(t TB, wasm []byte, opt Options) (*Harness, error) {
	t.Helper()
	dir := t.TempDir()
	if opt.Name == "" {
		opt.Name = "plugin"
	}
	wasmPath := filepath.Join(dir, "plugin.wasm")
	probePath := filepath.Join(dir, "probe.wasm")
	if err := os.WriteFile(wasmPath, wasm, 0o600); err != nil {
		return nil, fmt.Errorf("writing plugin: %w", err)
	}
	if err := os.WriteFile(probePath, probeWasm, 0o600); err != nil {
		return nil, fmt.Errorf("writing probe: %w", err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("making temp_path: %w", err)
	}

	h := &Harness{t: t, log: &recorder{}}
	handlers := opt.Upstreams
	if len(handlers) == 0 {
		handlers = map[string]http.Handler{"app": okHandler}
	}
	ups, err := startUpstreams(handlers)
	if err != nil {
		return nil, err
	}
	h.ups = ups

	cfg := &config.Config{
		Listen:    []config.Listener{{Address: "127.0.0.1:0"}},
		Admin:     config.Admin{Address: "127.0.0.1:0"},
		Log:       config.Log{Access: "off", Level: "debug"},
		Upstreams: make(map[string]*config.Upstream, len(handlers)),
		Plugins: []config.Plugin{{
			Name:            opt.Name,
			Path:            wasmPath,
			Config:          config.JSONValue(opt.Config),
			VMConfig:        config.JSONValue(opt.VMConfig),
			PoolSize:        opt.PoolSize,
			CallbackTimeout: config.Duration(opt.CallbackTimeout),
			PauseTimeout:    config.Duration(opt.PauseTimeout),
			MemoryLimit:     config.Size(opt.MemoryLimit),
			FailOpen:        opt.FailOpen,
		}},
	}
	cfg.Limits.TempPath = tmp
	for name, addr := range ups.addrs {
		cfg.Upstreams[name] = &config.Upstream{Servers: []config.UpstreamServer{{Address: addr}}}
	}
	def := opt.DefaultUpstream
	if _, ok := handlers["app"]; ok && def == "" {
		def = "app"
	}
	if def == "" && len(handlers) == 1 {
		for name := range handlers {
			def = name
		}
	}
	if def != "" || len(opt.Static) > 0 {
		router, err := routerPlugin(def, opt.Static)
		if err != nil {
			ups.close()
			return nil, err
		}
		cfg.Plugins = append([]config.Plugin{router}, cfg.Plugins...)
	}
	if opt.Configure != nil {
		opt.Configure(cfg)
	}
	probe := func(name string) config.Plugin {
		return config.Plugin{Name: name, Path: probePath, PoolSize: 1}
	}
	cfg.Plugins = slices.Concat([]config.Plugin{probe(probeFirst)}, cfg.Plugins, []config.Plugin{probe(probeLast)})
	cfg.Limits.KeepaliveRequests = 1
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		ups.close()
		return nil, fmt.Errorf("validating configuration: %w", err)
	}
	h.via = cfg.ServerName
	h.timeout = opt.Timeout
	if h.timeout <= 0 {
		h.timeout = 30 * time.Second
		for _, p := range cfg.Plugins {
			h.timeout = max(h.timeout, p.PauseTimeout.Std()+30*time.Second)
		}
	}

	srv, err := server.New(cfg, server.Options{Logger: slog.New(&logHandler{r: h.log}), Builtins: plugins.Builtin})
	if err != nil {
		ups.close()
		return nil, fmt.Errorf("starting wedge: %w", err)
	}
	if err := srv.Start(); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ups.close()
		return nil, fmt.Errorf("starting wedge: %w", err)
	}
	h.srv = srv
	h.addr = srv.Addrs()[0].String()
	h.admin = srv.AdminAddr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("wedgetest: shutting Wedge down: %v", err)
		}
		ups.close()
		if t.Failed() {
			t.Logf("wedgetest: Wedge's log (last 50 records):\n%s", h.log.tail(50))
		}
	})
	return h, nil
}

// okHandler is the default upstream.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
})

// URL returns "http://127.0.0.1:port", Wedge's address, for clients of
// your own (whose requests Do does not report on).
func (h *Harness) URL() string { return "http://" + h.addr }

// Do sends req to Wedge on a new connection, waits for the response and
// for the connection's close (the log phase has then run), and reports
// what happened. A request that cannot be sent, or that gets no answer
// within Options.Timeout, fails the test (t.Fatalf), so call Do from the
// test's goroutine.
func (h *Harness) Do(req Request) *Result {
	h.t.Helper()
	res, err := h.do(req)
	if err != nil {
		h.t.Fatalf("wedgetest: %s %s: %v", req.Method, req.Path, err)
	}
	return res
}

func (h *Harness) do(req Request) (*Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if req.Host == "" {
		req.Host = "example.com"
	}
	logMark, upMark := h.log.len(), h.ups.len()

	conn, err := net.DialTimeout("tcp", h.addr, h.timeout)
	if err != nil {
		return nil, fmt.Errorf("connecting to wedge: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(h.timeout))
	client := conn.LocalAddr().String()
	if _, err := conn.Write(appendRequest(nil, &req)); err != nil {
		return nil, fmt.Errorf("sending request: %w", err)
	}
	res := &Result{}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: req.Method})
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(br, &http.Request{Method: req.Method}) // 100 Continue: the final one follows
	}
	switch {
	case err == nil:
		res.Status, res.Header = resp.StatusCode, resp.Header
		res.Body, err = io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("reading response body: %w", err)
		}
	case isTimeout(err):
		return nil, fmt.Errorf("no response within %v: %w", h.timeout, err)
	default:
		res.Reset = true // closed (or reset) before a status line
	}
	// The server closes the connection once the exchange, log phase
	// included, is over.
	if _, err := io.Copy(io.Discard, br); err != nil && isTimeout(err) {
		return nil, fmt.Errorf("connection still open %v after the request: %w", h.timeout, err)
	}

	logs := h.log.since(logMark)
	calls := h.ups.since(upMark)
	var ran struct{ firstBody, firstResp, lastHead, lastBody bool }
	for _, r := range logs {
		switch r.plugin {
		case probeFirst:
			ran.firstBody = ran.firstBody || r.msg == "request_body"
			ran.firstResp = ran.firstResp || r.msg == "response_headers"
		case probeLast:
			ran.lastHead = ran.lastHead || r.msg == "request_headers"
			ran.lastBody = ran.lastBody || r.msg == "request_body"
		case "":
			if (r.msg == "request failed" || r.msg == "refused request") && r.remote == client {
				res.Failure = r.reason
			}
		default:
			res.Logs = append(res.Logs, LogRecord{Plugin: r.plugin, Level: r.level, Message: r.msg})
		}
	}
	accel := false
	for _, c := range calls {
		if res.Upstream == nil && isProxied(c.req.Header, h.via) {
			u := c.req
			res.Upstream = &u
			accel = c.accel
			continue
		}
		res.Calls = append(res.Calls, c.req)
	}
	if !res.Reset && res.Failure == "" {
		switch {
		case res.Upstream != nil && accel:
			res.Static = true
		case res.Upstream != nil:
			// Response phases run in reverse order and the first probe
			// comes last: it misses them only when a plugin answered.
			res.Local = !ran.firstResp
		case !ran.lastHead:
			res.Local = true // answered in proxy_on_request_headers
		case ran.firstBody && !ran.lastBody:
			res.Local = true // answered in proxy_on_request_body
		case !ran.firstBody:
			res.Static = true // routed to a static mount after the headers
		}
	}
	return res, nil
}

// isProxied reports whether an upstream request is the proxied one rather
// than a plugin's proxy_http_call: Wedge adds itself to Via (RFC 9110
// §7.6.3) on the requests it forwards.
func isProxied(h http.Header, pseudonym string) bool {
	vias := h.Values("Via")
	if len(vias) == 0 {
		return false
	}
	last := vias[len(vias)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	_, by, _ := strings.Cut(strings.TrimSpace(last), " ")
	by, _, _ = strings.Cut(by, " ")
	return by == pseudonym
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// appendRequest writes req as an HTTP/1.1 request.
func appendRequest(b []byte, req *Request) []byte {
	b = fmt.Appendf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.Path, req.Host)
	names := make([]string, 0, len(req.Header))
	for name := range req.Header {
		if !strings.EqualFold(name, "Host") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	chunked := false
	framed := false
	for _, name := range names {
		for _, v := range req.Header[name] {
			b = fmt.Appendf(b, "%s: %s\r\n", name, v)
		}
		switch {
		case strings.EqualFold(name, "Content-Length"):
			framed = true
		case strings.EqualFold(name, "Transfer-Encoding"):
			framed = true
			chunked = strings.Contains(strings.ToLower(strings.Join(req.Header[name], ",")), "chunked")
		}
	}
	if !framed && (len(req.Body) > 0 || req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH") {
		b = fmt.Appendf(b, "Content-Length: %d\r\n", len(req.Body))
	}
	b = append(b, "\r\n"...)
	if !chunked {
		return append(b, req.Body...)
	}
	if len(req.Body) > 0 {
		b = fmt.Appendf(b, "%x\r\n", len(req.Body))
		b = append(append(b, req.Body...), "\r\n"...)
	}
	return append(b, "0\r\n\r\n"...)
}

// Logs returns every record plugins logged (and the plugin host logged
// about them) since New, including those outside requests: start-up
// (proxy_on_vm_start, proxy_on_configure), ticks, HTTP call responses.
func (h *Harness) Logs() []LogRecord {
	var out []LogRecord
	for _, r := range h.log.since(0) {
		if r.plugin != "" && r.plugin != probeFirst && r.plugin != probeLast {
			out = append(out, LogRecord{Plugin: r.plugin, Level: r.level, Message: r.msg})
		}
	}
	return out
}

// Metric returns the value of the Prometheus series name on Wedge's
// /metrics, summed over the series whose labels include the given
// name-value pairs: Metric("wedge_plugin_vm_failures_total", "plugin",
// "auth") counts the auth plugin's VM failures for every reason, and
// Metric("wedge_hits") reads a counter the plugin defined as "hits" with
// proxy_define_metric. A series that does not exist counts as 0. It fails
// the test if /metrics cannot be read.
func (h *Harness) Metric(name string, labels ...string) float64 {
	h.t.Helper()
	v, err := h.metric(name, labels)
	if err != nil {
		h.t.Fatalf("wedgetest: reading metric %s: %v", name, err)
	}
	return v
}

func (h *Harness) metric(name string, labels []string) (float64, error) {
	if len(labels)%2 != 0 {
		return 0, errors.New("labels must be name-value pairs")
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + h.admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		s, ok := parseSample(sc.Text())
		if !ok || s.name != name {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				match = false
				break
			}
		}
		if match {
			sum += s.value
		}
	}
	return sum, sc.Err()
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseSample parses one line of the Prometheus text format (version
// 0.0.4): name{label="value",...} value [timestamp]. Comments and lines
// it cannot read report false.
func parseSample(line string) (sample, bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return sample{}, false
	}
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return sample{}, false
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return sample{}, false
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				val.WriteByte(rest[j])
			}
			if j >= len(rest) {
				return sample{}, false
			}
			s.labels[key] = val.String()
			rest = rest[j+1:]
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return sample{}, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return sample{}, false
	}
	s.value = v
	return s, true
}

// --- upstreams -------------------------------------------------------------------

// upstreams are the in-process upstream servers, one per pool, and what
// they received.
type upstreams struct {
	addrs   map[string]string
	servers []*http.Server

	mu   sync.Mutex
	reqs []upstreamCall
}

type upstreamCall struct {
	req   UpstreamRequest
	accel bool // the handler answered with X-Accel-Redirect
}

func startUpstreams(handlers map[string]http.Handler) (*upstreams, error) {
	u := &upstreams{addrs: make(map[string]string, len(handlers))}
	for name, hd := range handlers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			u.close()
			return nil, fmt.Errorf("starting upstream %q: %w", name, err)
		}
		srv := &http.Server{Handler: u.record(name, hd), ReadHeaderTimeout: time.Minute}
		u.servers = append(u.servers, srv)
		u.addrs[name] = ln.Addr().String()
		go srv.Serve(ln)
	}
	return u, nil
}

// record wraps an upstream's handler to keep what it received.
func (u *upstreams) record(pool string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "wedgetest: reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		req := UpstreamRequest{Pool: pool, Method: r.Method, Target: r.RequestURI, Host: r.Host, Proto: r.Proto,
			Header: r.Header.Clone(), Body: body}
		r.Body = io.NopCloser(bytes.NewReader(body))
		defer func() {
			u.mu.Lock()
			u.reqs = append(u.reqs, upstreamCall{req: req, accel: w.Header().Get("X-Accel-Redirect") != ""})
			u.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

func (u *upstreams) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstreams) since(mark int) []upstreamCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs[mark:])
}

func (u *upstreams) close() {
	for _, s := range u.servers {
		s.Close()
	}
}

// StaticMount is a directory the harness's router serves at a path
// prefix (plugins/router: a route with path.prefix, strip_prefix and
// static).
type StaticMount struct {
	// Name is the mount's name, the value of wedge.static for it.
	// Default: "routes[i]", i its index in Options.Static.
	Name string
	// Prefix is the URL path prefix, e.g. "/files/"; the file for
	// "/files/a.txt" is Root+"/a.txt".
	Prefix string
	// Root is the directory served.
	Root string
	// Index is the file served for a directory; default index.html.
	Index string
	// Browse lists a directory without an index file.
	Browse bool
	// Internal serves the mount only for X-Accel-Redirect targets.
	Internal bool
}

// routerName is the harness's built-in router in the chain.
const routerName = "wedgetest-router"

// routerPlugin is the built-in router with a route per mount, then a
// default route to pool ("" for none).
func routerPlugin(pool string, mounts []StaticMount) (config.Plugin, error) {
	if len(mounts) > 0 && pool == "" {
		return config.Plugin{}, errors.New("wedgetest: Static needs a DefaultUpstream")
	}
	routes := make([]map[string]any, 0, len(mounts)+1)
	for _, m := range mounts {
		if !strings.HasPrefix(m.Prefix, "/") {
			return config.Plugin{}, fmt.Errorf("wedgetest: static prefix %q must start with \"/\"", m.Prefix)
		}
		r := map[string]any{
			"path":     map[string]string{"prefix": m.Prefix},
			"static":   map[string]any{"root": m.Root, "index": m.Index, "browse": m.Browse},
			"internal": m.Internal,
		}
		if m.Name != "" {
			r["name"] = m.Name
		}
		if p := strings.TrimSuffix(m.Prefix, "/"); p != "" {
			r["strip_prefix"] = p
		}
		routes = append(routes, r)
	}
	routes = append(routes, map[string]any{"upstream": pool})
	conf, err := json.Marshal(map[string]any{"routes": routes})
	if err != nil {
		return config.Plugin{}, err
	}
	return config.Plugin{Name: routerName, Builtin: "router", Config: conf, PoolSize: 1}, nil
}
