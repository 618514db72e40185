// Package plugintest is `wedge plugin test`: it runs a plugin's .wasm in
// the real Wedge (through sdk/wedgetest) against the requests a YAML file
// describes, prints what the plugin did to each (the pool the request
// reached, the fields it changed on the way up and down, its local
// response, its HTTP calls, its logs) and checks the file's expectations,
// so a plugin author in any language can test without writing Go.
//
// The file (sdk/README.md "Testing"; examples/*/plugintest.yaml):
//
//	plugin: as-abtest.wasm        # relative to the file; --plugin overrides
//	name: abtest                  # plugin_name; default: the .wasm's base name
//	config: {pool: b, share: 20}  # wedge.yaml's config:, any YAML, given as JSON; --config FILE overrides
//	vm_config: {}                 # wedge.yaml's vm_config:
//	callback_timeout: 1s          # and pause_timeout, pool_size, fail_open, as in wedge.yaml
//	upstreams:                    # the pools and how each answers; default {app: {}}
//	  app: {status: 200, headers: {content-type: text/plain}, body: "a\n"}
//	  b: {body: "b\n"}
//	  auth: {down: true}          # closes each connection without answering
//	default_upstream: app         # default: app if there is one, else the only pool
//	cases:
//	  - name: bucket 10 sees B
//	    request: {method: GET, path: /, host: example.com, headers: {cookie: wedge_ab=10}, body: ""}
//	    upstreams: {b: {status: 500}}       # this case's answers, replacing the file's for these pools
//	    expect:
//	      status: 200
//	      upstream: b                       # the pool the request reached; "none": none
//	      local: false                      # a plugin answered with proxy_send_local_response
//	      request_headers: {x-ab-variant: b}    # at the upstream; null: absent
//	      response_headers: {set-cookie: null}  # at the client
//	      body: "b\n"
//	      calls: [auth]                     # pools of the proxy_http_calls, in order
//	      logs: ["variant b"]               # each a substring of some log message
package plugintest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

// File is a test file.
type File struct {
	Plugin          string            `yaml:"plugin"`
	Name            string            `yaml:"name"`
	Config          any               `yaml:"config"`
	VMConfig        any               `yaml:"vm_config"`
	CallbackTimeout string            `yaml:"callback_timeout"`
	PauseTimeout    string            `yaml:"pause_timeout"`
	PoolSize        int               `yaml:"pool_size"`
	FailOpen        bool              `yaml:"fail_open"`
	Upstreams       map[string]Answer `yaml:"upstreams"`
	DefaultUpstream string            `yaml:"default_upstream"`
	Cases           []Case            `yaml:"cases"`
}

// Answer is how an upstream pool answers every request (the proxied one
// and proxy_http_calls alike).
type Answer struct {
	// Status defaults to 200.
	Status int `yaml:"status"`
	// Headers are the response's fields; Content-Type defaults to
	// "text/plain; charset=utf-8".
	Headers map[string]string `yaml:"headers"`
	// Body defaults to "ok\n" for a 200 without headers, else "".
	Body *string `yaml:"body"`
	// Down closes each connection without an answer.
	Down bool `yaml:"down"`
}

// Case is one request and what to expect of it.
type Case struct {
	Name      string            `yaml:"name"`
	Request   Request           `yaml:"request"`
	Upstreams map[string]Answer `yaml:"upstreams"`
	Expect    Expect            `yaml:"expect"`
}

// Request is the request a client sends.
type Request struct {
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Host    string            `yaml:"host"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
}

// Expect holds a case's expectations; absent ones are not checked.
type Expect struct {
	Status          int                `yaml:"status"`
	Upstream        *string            `yaml:"upstream"`
	Local           *bool              `yaml:"local"`
	RequestHeaders  map[string]*string `yaml:"request_headers"`
	ResponseHeaders map[string]*string `yaml:"response_headers"`
	Body            *string            `yaml:"body"`
	Calls           []string           `yaml:"calls"`
	Logs            []string           `yaml:"logs"`
}

// Load reads and checks a test file. Errors name the file and line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading test file: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Plugin != "" && !filepath.IsAbs(f.Plugin) {
		f.Plugin = filepath.Join(filepath.Dir(path), f.Plugin)
	}
	return f, nil
}

// Parse decodes a test file, refusing unknown keys (yaml.v3 reports
// "line N: field x not found in type ..."), a file without cases, pools
// a case names that the file does not declare, and bad durations. A case
// without a request sends GET /.
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty test file")
		}
		return nil, fmt.Errorf("parsing test file: %w", err)
	}
	if len(f.Cases) == 0 {
		return nil, errors.New("no cases")
	}
	for name := range f.Upstreams {
		if !validPool(name) {
			return nil, fmt.Errorf("upstream %q: want a name of [a-z0-9_-]", name)
		}
	}
	for i, c := range f.Cases {
		for name := range c.Upstreams {
			if _, ok := f.Upstreams[name]; !ok && !(len(f.Upstreams) == 0 && name == "app") {
				return nil, fmt.Errorf("case %d (%s): upstream %q is not among the file's upstreams", i+1, c.Name, name)
			}
		}
		if c.Expect.Status < 0 || c.Expect.Status > 999 {
			return nil, fmt.Errorf("case %d (%s): expect.status %d out of range", i+1, c.Name, c.Expect.Status)
		}
	}
	for _, d := range []string{f.CallbackTimeout, f.PauseTimeout} {
		if d != "" {
			if _, err := time.ParseDuration(d); err != nil {
				return nil, fmt.Errorf("parsing duration: %w", err)
			}
		}
	}
	return &f, nil
}

func validPool(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Options override what the file says.
type Options struct {
	// Plugin is the .wasm to run instead of the file's plugin:.
	Plugin string
	// Config is the plugin configuration (JSON) instead of the file's
	// config:; nil keeps the file's.
	Config []byte
}

// Report is the outcome of a run.
type Report struct {
	Cases, Failed int
}

// Run loads the plugin, runs every case against it in order and writes
// what happened to out. It returns an error when the plugin cannot be
// read or Wedge refuses it; failed expectations are counted in the
// Report and printed.
func Run(f *File, opt Options, out io.Writer) (Report, error) {
	wasmPath := f.Plugin
	if opt.Plugin != "" {
		wasmPath = opt.Plugin
	}
	if wasmPath == "" {
		return Report{}, errors.New("no plugin: name it with plugin: in the file or --plugin")
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return Report{}, fmt.Errorf("reading plugin: %w", err)
	}
	name := f.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(wasmPath), filepath.Ext(wasmPath))
	}
	wo := wedgetest.Options{Name: name, PoolSize: f.PoolSize, FailOpen: f.FailOpen, DefaultUpstream: f.DefaultUpstream}
	if f.PoolSize == 0 {
		wo.PoolSize = 1
	}
	if wo.Config, err = toJSON(f.Config); err != nil {
		return Report{}, fmt.Errorf("converting config to JSON: %w", err)
	}
	if opt.Config != nil {
		wo.Config = opt.Config
	}
	if wo.VMConfig, err = toJSON(f.VMConfig); err != nil {
		return Report{}, fmt.Errorf("converting vm_config to JSON: %w", err)
	}
	wo.CallbackTimeout, _ = time.ParseDuration(f.CallbackTimeout)
	wo.PauseTimeout, _ = time.ParseDuration(f.PauseTimeout)

	pools := f.Upstreams
	if len(pools) == 0 {
		pools = map[string]Answer{"app": {}}
	}
	up := &answers{base: pools}
	wo.Upstreams = make(map[string]http.Handler, len(pools))
	for pool := range pools {
		wo.Upstreams[pool] = up.handler(pool)
	}

	t := &runT{}
	defer t.cleanup()
	h, err := wedgetest.New(t, wasm, wo)
	if err != nil {
		return Report{}, fmt.Errorf("loading plugin %q: %w", wasmPath, err)
	}
	fmt.Fprintf(out, "plugin %s (%s, %d bytes)\n", name, filepath.Base(wasmPath), len(wasm))
	for _, r := range h.Logs() {
		fmt.Fprintf(out, "  start-up log: %s %s\n", levelName(r.Level), r.Message)
	}
	rep := Report{Cases: len(f.Cases)}
	for i, c := range f.Cases {
		up.set(c.Upstreams)
		res, err := t.do(h, c.Request)
		fmt.Fprintf(out, "\n=== %d. %s\n", i+1, c.Name)
		if err != nil {
			fmt.Fprintf(out, "FAIL\n  %v\n", err)
			rep.Failed++
			continue
		}
		fails := Describe(out, c, res, up.answer)
		if len(fails) == 0 {
			fmt.Fprintln(out, "PASS")
			continue
		}
		rep.Failed++
		fmt.Fprintln(out, "FAIL")
		for _, m := range fails {
			fmt.Fprintf(out, "  %s\n", m)
		}
	}
	fmt.Fprintf(out, "\n%d cases, %d passed, %d failed\n", rep.Cases, rep.Cases-rep.Failed, rep.Failed)
	return rep, nil
}

func toJSON(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// Describe writes what happened to one request and returns the case's
// failed expectations. answer gives the pool's answer for the case, to
// tell the fields a plugin changed on the response from the upstream's.
func Describe(out io.Writer, c Case, res *wedgetest.Result, answer func(pool string) Answer) []string {
	req := c.Request
	method, path, host := or(req.Method, "GET"), or(req.Path, "/"), or(req.Host, "example.com")
	fmt.Fprintf(out, "request:  %s %s\n", method, path)

	upstream := "none"
	if u := res.Upstream; u != nil {
		upstream = u.Pool
		fmt.Fprintf(out, "upstream: %s (%s %s)\n", u.Pool, u.Method, u.Target)
		lines := diffRequest(method, path, host, req, u)
		for _, l := range lines {
			fmt.Fprintf(out, "  %s\n", l)
		}
	} else {
		fmt.Fprintln(out, "upstream: none")
	}
	var calls []string
	for _, call := range res.Calls {
		calls = append(calls, call.Pool)
		fmt.Fprintf(out, "call:     %s (%s %s)\n", call.Pool, call.Method, call.Target)
	}

	how := "from the upstream"
	switch {
	case res.Reset:
		how = "connection closed without a response"
	case res.Failure != "":
		how = "Wedge's error: " + res.Failure
	case res.Local:
		how = "local response from the plugin"
	case res.Static:
		how = "static file"
	case res.Upstream == nil:
		how = "no upstream"
	}
	fmt.Fprintf(out, "response: %d, %s\n", res.Status, how)
	var sent map[string]string
	if res.Upstream != nil && !res.Local && !res.Static {
		sent = answerHeaders(answer(res.Upstream.Pool))
	}
	for _, l := range diffFields(sent, res.Header, responseNoise) {
		fmt.Fprintf(out, "  %s\n", l)
	}
	fmt.Fprintf(out, "  body: %s\n", quoteBody(res.Body))
	for _, r := range res.Logs {
		fmt.Fprintf(out, "log:      %s %s\n", levelName(r.Level), r.Message)
	}
	return check(c.Expect, res, upstream, calls)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// check compares a result with the expectations.
func check(e Expect, res *wedgetest.Result, upstream string, calls []string) []string {
	var fails []string
	if e.Status != 0 && res.Status != e.Status {
		fails = append(fails, fmt.Sprintf("status %d, want %d", res.Status, e.Status))
	}
	if e.Upstream != nil && or(*e.Upstream, "none") != upstream {
		fails = append(fails, fmt.Sprintf("upstream %s, want %s", upstream, or(*e.Upstream, "none")))
	}
	if e.Local != nil && res.Local != *e.Local {
		fails = append(fails, fmt.Sprintf("local response %v, want %v", res.Local, *e.Local))
	}
	if len(e.RequestHeaders) > 0 {
		if res.Upstream == nil {
			fails = append(fails, "request_headers: the request reached no upstream")
		} else {
			fails = append(fails, checkFields("request field", e.RequestHeaders, res.Upstream.Header)...)
		}
	}
	fails = append(fails, checkFields("response field", e.ResponseHeaders, res.Header)...)
	if e.Body != nil && string(res.Body) != *e.Body {
		fails = append(fails, fmt.Sprintf("body %s, want %s", quoteBody(res.Body), quoteBody([]byte(*e.Body))))
	}
	if e.Calls != nil && !slices.Equal(calls, e.Calls) {
		fails = append(fails, fmt.Sprintf("calls %v, want %v", calls, e.Calls))
	}
	for _, want := range e.Logs {
		if !slices.ContainsFunc(res.Logs, func(r wedgetest.LogRecord) bool { return strings.Contains(r.Message, want) }) {
			fails = append(fails, fmt.Sprintf("no log message contains %q", want))
		}
	}
	return fails
}

func checkFields(what string, want map[string]*string, got http.Header) []string {
	var fails []string
	for _, name := range sortedKeys(want) {
		v, present := got[http.CanonicalHeaderKey(name)]
		switch w := want[name]; {
		case w == nil && present:
			fails = append(fails, fmt.Sprintf("%s %s: %q, want absent", what, name, strings.Join(v, ", ")))
		case w != nil && !present:
			fails = append(fails, fmt.Sprintf("%s %s absent, want %q", what, name, *w))
		case w != nil && v[0] != *w:
			fails = append(fails, fmt.Sprintf("%s %s: %q, want %q", what, name, v[0], *w))
		}
	}
	return fails
}

// Fields Wedge (or Go's HTTP server, for the made-up upstreams) adds or
// drops whatever the plugin does: left out of the differences printed.
var (
	requestNoise  = []string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "via", "content-length"}
	responseNoise = []string{"date", "via", "content-length", "connection", "keep-alive"}
)

// diffRequest lists how the request the upstream got differs from the one
// sent: target, host, fields and body.
func diffRequest(method, path, host string, req Request, u *wedgetest.UpstreamRequest) []string {
	var lines []string
	if u.Method != method {
		lines = append(lines, fmt.Sprintf("~ :method: %s -> %s", method, u.Method))
	}
	if u.Target != path {
		lines = append(lines, fmt.Sprintf("~ :path: %s -> %s", path, u.Target))
	}
	if u.Host != host {
		lines = append(lines, fmt.Sprintf("~ host: %s -> %s", host, u.Host))
	}
	lines = append(lines, diffFields(req.Headers, u.Header, requestNoise)...)
	if u.Body != nil && string(u.Body) != req.Body {
		lines = append(lines, fmt.Sprintf("~ body: %s -> %s", quoteBody([]byte(req.Body)), quoteBody(u.Body)))
	}
	return lines
}

// diffFields lists the fields of got that are not in sent ("+ name:
// value"), those of sent missing from got ("- name: value") and those
// whose value changed ("~ name: old -> new"), sorted by name, names in
// lower case, skipping noise.
func diffFields(sent map[string]string, got http.Header, noise []string) []string {
	before := map[string]string{}
	for k, v := range sent {
		before[strings.ToLower(k)] = v
	}
	after := map[string]string{}
	for k, v := range got {
		after[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	names := sortedKeys(after)
	for k := range before {
		if _, ok := after[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var lines []string
	for _, k := range names {
		if slices.Contains(noise, k) || k == "host" {
			continue
		}
		b, inB := before[k]
		a, inA := after[k]
		switch {
		case inA && !inB:
			lines = append(lines, fmt.Sprintf("+ %s: %s", k, a))
		case inB && !inA:
			lines = append(lines, fmt.Sprintf("- %s: %s", k, b))
		case a != b:
			lines = append(lines, fmt.Sprintf("~ %s: %s -> %s", k, b, a))
		}
	}
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func quoteBody(b []byte) string {
	const max = 200
	if len(b) > max {
		return fmt.Sprintf("%q... (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	case l < slog.LevelError+4:
		return "error"
	}
	return "critical"
}

// --- upstream answers --------------------------------------------------------

// answers holds how each pool answers: the file's, replaced per case.
type answers struct {
	base map[string]Answer
	mu   sync.Mutex
	over map[string]Answer
}

func (a *answers) set(over map[string]Answer) {
	a.mu.Lock()
	a.over = over
	a.mu.Unlock()
}

func (a *answers) answer(pool string) Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ans, ok := a.over[pool]; ok {
		return ans
	}
	return a.base[pool]
}

// answerHeaders are the fields a pool's handler sends.
func answerHeaders(ans Answer) map[string]string {
	h := map[string]string{"content-type": "text/plain; charset=utf-8"}
	for k, v := range ans.Headers {
		h[strings.ToLower(k)] = v
	}
	return h
}

func answerBody(ans Answer) string {
	switch {
	case ans.Body != nil:
		return *ans.Body
	case (ans.Status == 0 || ans.Status == 200) && len(ans.Headers) == 0:
		return "ok\n"
	}
	return ""
}

func (a *answers) handler(pool string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ans := a.answer(pool)
		if ans.Down {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		for k, v := range answerHeaders(ans) {
			w.Header().Set(k, v)
		}
		w.WriteHeader(or0(ans.Status, 200))
		io.WriteString(w, answerBody(ans))
	})
}

func or0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// --- running without package testing ---------------------------------------

// runT is the wedgetest.TB of a run outside `go test`: Cleanup funcs run
// at the end, TempDir is removed then, Fatalf stops the current request.
type runT struct {
	dirs     []string
	cleanups []func()
	failed   bool
}

// fatal is what Fatalf panics with; do recovers it.
type fatal struct{ msg string }

func (t *runT) Helper()                   {}
func (t *runT) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *runT) Failed() bool              { return t.failed }
func (t *runT) Logf(string, ...any)       {}
func (t *runT) Errorf(string, ...any)     { t.failed = true }
func (t *runT) Fatalf(f string, a ...any) { t.failed = true; panic(fatal{fmt.Sprintf(f, a...)}) }

func (t *runT) TempDir() string {
	dir, err := os.MkdirTemp("", "wedge-plugin-test-")
	if err != nil {
		panic(fatal{fmt.Sprintf("making a temporary directory: %v", err)})
	}
	t.dirs = append(t.dirs, dir)
	return dir
}

func (t *runT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, d := range t.dirs {
		os.RemoveAll(d)
	}
}

// do runs one request, turning the harness's Fatalf into an error.
func (t *runT) do(h *wedgetest.Harness, r Request) (res *wedgetest.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			err = errors.New(f.msg)
		}
	}()
	req := wedgetest.Request{Method: r.Method, Path: r.Path, Host: r.Host, Body: []byte(r.Body)}
	if len(r.Headers) > 0 {
		req.Header = http.Header{}
		for k, v := range r.Headers {
			req.Header.Set(k, v)
		}
	}
	return h.Do(req), nil
}

// --- the command ---------------------------------------------------------------

const usage = `usage: wedge plugin test [--plugin FILE.wasm] [--config FILE.json] TEST.yaml...

Runs the plugin in Wedge against each case of each TEST.yaml and prints what
it did; exits 1 when an expectation fails, 2 when a file or the plugin cannot
be loaded. The file's format: sdk/README.md, "Testing".
`

// Command runs `wedge plugin ARGS...` and returns the exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("wedge plugin test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	plugin := fs.String("plugin", "", "the plugin `file` to run, instead of the test file's plugin:")
	configFile := fs.String("config", "", "a `file` with the plugin configuration (JSON), instead of the test file's config:")
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	opt := Options{Plugin: *plugin}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "wedge plugin test: reading plugin configuration: %v\n", err)
			return 2
		}
		opt.Config = b
	}
	code := 0
	for _, path := range files {
		f, err := Load(path)
		if err != nil {
			fmt.Fprintf(stderr, "wedge plugin test: %v\n", err)
			return 2
		}
		rep, err := Run(f, opt, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "wedge plugin test: %s: %v\n", path, err)
			return 2
		}
		if rep.Failed > 0 {
			code = 1
		}
	}
	return code
}
