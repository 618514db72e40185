package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/demo"
	"github.com/wedgeproxy/wedge/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// wedgeBin builds the wedge binary once per test run and returns its path.
// It skips under -short.
func wedgeBin(t *testing.T) string {
	t.Helper()
	testenv.Short(t, "builds and runs the wedge binary")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wedge-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wedge")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	bin := wedgeBin(t)
	dir := t.TempDir()
	tests := []struct {
		name     string
		yaml     string
		wantCode int
		wantOut  []string // each must appear in the combined output
	}{
		{
			name:     "good",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nupstreams:\n  app:\n    servers:\n      - address: 127.0.0.1:18000\n",
			wantCode: 0,
			wantOut:  []string{"configuration ok"},
		},
		{
			name:     "duration without unit",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nlimits:\n  client_body_timeout: 60\n",
			wantCode: 1,
			wantOut:  []string{"duration without unit.yaml:4: limits.client_body_timeout:", "unit"},
		},
		{
			name:     "unknown key",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nlimitz: {}\n",
			wantCode: 1,
			wantOut:  []string{"unknown key.yaml:3:", "limitz"},
		},
		{
			name:     "bad port",
			yaml:     "listen:\n  - address: 127.0.0.1:99999\n",
			wantCode: 1,
			wantOut:  []string{"bad port.yaml:2:", "99999"},
		},
		{
			name:     "syntax",
			yaml:     "listen:\n  - address: [\n",
			wantCode: 1,
			wantOut:  []string{"syntax.yaml:"},
		},
		{
			name:     "on-demand TLS without ask",
			yaml:     "listen:\n  - {address: 127.0.0.1:18443, tls: true}\ntls:\n  on_demand: {burst: 5}\n",
			wantCode: 1,
			wantOut:  []string{"on-demand TLS without ask.yaml:4: tls.on_demand: on-demand TLS needs ask"},
		},
		{
			// check builds everything short of listening (like nginx -t),
			// so a file that is not WebAssembly is caught here too.
			name:     "plugin that does not compile",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nplugin_cache: \"off\"\nplugins:\n  - name: junk\n    path: junk.wasm\n",
			wantCode: 1,
			wantOut:  []string{`loading plugin "junk"`, "malformed WebAssembly"},
		},
		{
			name: "bad route",
			yaml: "listen:\n  - address: 127.0.0.1:18080\nplugin_cache: \"off\"\nplugins:\n  - name: router\n    builtin: router\n" +
				"    config:\n      routes:\n        - {path: /a/, upstream: app}\n        - {path: {regexp: \"([\"}, upstream: app}\n",
			wantCode: 1,
			wantOut:  []string{`loading plugin "router"`, "proxy_on_configure returned false: routes[1]: path.regexp: error parsing regexp"},
		},
		{
			name:     "static at the top level",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nstatic:\n  - prefix: /s/\n    root: .\n",
			wantCode: 1,
			wantOut:  []string{"static at the top level.yaml:3: static: no longer a field: static mounts moved into the router plugin's routes"},
		},
		{
			name:     "default chain",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nplugin_cache: \"off\"\n",
			wantCode: 0,
			wantOut:  []string{"configuration ok"},
		},
		{
			name:     "working plugin",
			yaml:     "listen:\n  - address: 127.0.0.1:18080\nplugin_cache: \"off\"\nplugins:\n  - name: hello\n    path: " + filepath.Join(mustAbs(t, "examples"), "plugins", "add_header.wasm") + "\n",
			wantCode: 0,
			wantOut:  []string{"configuration ok", "warning: ", "working plugin.yaml:4: plugins: no built-in router in the chain"},
		},
	}
	writeFile(t, filepath.Join(dir, "junk.wasm"), "not wasm")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			writeFile(t, path, tt.yaml)
			cmd := exec.Command(bin, "check", "--config", path)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		out, err := exec.Command(bin, "check", "--config", filepath.Join(dir, "nope.yaml")).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "no such file") {
			t.Errorf("err %v, output %s", err, out)
		}
	})
}

// process is a running wedge binary with its stderr collected.
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func startBinary(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(wedgeBin(t), args...), exited: make(chan struct{})}
	p.cmd.Stderr = p
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("wedge stderr:\n%s", p.log())
		}
	})
	return p
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits up to 10 s for the process's stderr to contain s.
func (p *process) waitLog(t *testing.T, s string, after int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log()[after:], s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 10s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUntil polls cond every 20 ms for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namedUpstream answers every request with its name, and /slow after
// release is closed.
func namedUpstream(t *testing.T, name string, slowStarted chan<- struct{}, release <-chan struct{}) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowStarted <- struct{}{}
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(up.Close)
	return up
}

func configYAML(listen, upstream string, extra string) string {
	return fmt.Sprintf(`listen:
  - address: %s
log:
  access: "off"
limits:
  shutdown_timeout: 10s
  keepalive_timeout: 5s
%supstreams:
  app:
    servers:
      - address: %s
`, listen, extra, upstream)
}

func getBody(hc *http.Client, url string) (int, string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestReload: SIGHUP with a valid new configuration switches upstreams
// with no failed request while clients run continuously; SIGHUP with a
// broken one is refused and the running configuration keeps serving.
func TestReload(t *testing.T) {
	upA := namedUpstream(t, "A", nil, nil)
	upB := namedUpstream(t, "B", nil, nil)
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "wedge.yaml")
	writeFile(t, cfgPath, configYAML(addr, upA.Listener.Addr().String(), ""))
	p := startBinary(t, "--config", cfgPath)
	base := "http://" + addr + "/"
	waitUntil(t, "wedge serving", func() bool {
		code, body, err := getBody(http.DefaultClient, base)
		return err == nil && code == 200 && body == "A"
	})

	var (
		failures, total atomic.Int64
		sawB            atomic.Bool
		firstFailure    atomic.Value
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: i%2 == 1} // new connections and kept-alive ones
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := getBody(hc, base)
				total.Add(1)
				switch {
				case err != nil:
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				case code != 200 || (body != "A" && body != "B"):
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %q", code, body))
				case body == "B":
					sawB.Store(true)
				}
			}
		}()
	}

	time.Sleep(200 * time.Millisecond)
	logAt := len(p.log())
	writeFile(t, cfgPath, configYAML(addr, upB.Listener.Addr().String(), ""))
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", logAt)
	waitUntil(t, "requests reaching the new upstream", sawB.Load)
	time.Sleep(200 * time.Millisecond)

	// A broken file is refused; B keeps serving.
	logAt = len(p.log())
	writeFile(t, cfgPath, "listen:\n  - address: "+addr+"\nlimits:\n  send_timeout: forever\n")
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "reload refused", logAt)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the reloads; first: %v", n, total.Load(), firstFailure.Load())
	}
	if _, body, err := getBody(http.DefaultClient, base); err != nil || body != "B" {
		t.Errorf("after the refused reload: %q, %v; want B", body, err)
	}
	if !strings.Contains(p.log()[logAt:], "send_timeout") {
		t.Errorf("the refusal does not name the bad field:\n%s", p.log()[logAt:])
	}
	p.signal(t, syscall.SIGTERM)
	<-p.exited
	if p.err != nil {
		t.Errorf("exit: %v", p.err)
	}
}

// TestShutdown: SIGTERM while a slow request is in flight. That request
// completes with 200, new connections are refused, and the process exits
// 0 within shutdown_timeout.
func TestShutdown(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	up := namedUpstream(t, "done", started, release)
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "wedge.yaml")
	writeFile(t, cfgPath, configYAML(addr, up.Listener.Addr().String(), ""))
	p := startBinary(t, "--config", cfgPath)
	waitUntil(t, "wedge serving", func() bool {
		code, _, err := getBody(http.DefaultClient, "http://"+addr+"/")
		return err == nil && code == 200
	})

	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		hc := &http.Client{Timeout: 30 * time.Second}
		code, body, err := getBody(hc, "http://"+addr+"/slow")
		slow <- result{code, body, err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}
	sent := time.Now()
	p.signal(t, syscall.SIGTERM)
	waitUntil(t, "new connections refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	select {
	case <-p.exited:
		t.Fatal("wedge exited with a request in flight")
	default:
	}
	close(release)
	r := <-slow
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("wedge did not exit within shutdown_timeout")
	}
	if p.err != nil {
		t.Errorf("exit: %v", p.err)
	}
	if d := time.Since(sent); d > 10*time.Second+2*time.Second {
		t.Errorf("exit took %v, past shutdown_timeout", d)
	}
}

// TestDemo runs `wedge demo` in-process and tries every curl line it prints.
func TestDemo(t *testing.T) {
	testenv.Short(t, "runs the demo app and Wedge")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, &out, demo.Options{Listen: freeAddr(t), Ready: ready, Quiet: true})
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("demo.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the demo did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	}()
	// No transparent gzip: the test checks Content-Encoding itself.
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 20 * time.Second}
	do := func(method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading body: %v", method, path, err)
		}
		return resp, b
	}

	t.Run("index", func(t *testing.T) {
		resp, b := do("GET", "/", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Hello from the app behind Wedge") || !strings.Contains(string(b), "127.0.0.1") {
			t.Errorf("%d %q", resp.StatusCode, b)
		}
	})
	t.Run("static", func(t *testing.T) {
		resp, b := do("GET", "/static/", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Served by Wedge from disk") {
			t.Errorf("%d %q", resp.StatusCode, b)
		}
	})
	var css []byte
	t.Run("gzip sidecar", func(t *testing.T) {
		_, css = do("GET", "/static/style.css", nil)
		resp, b := do("GET", "/static/style.css", nil, "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !bytes.Equal(plain, css) || len(css) == 0 {
			t.Errorf("the .gz sidecar does not decode to style.css")
		}
	})
	t.Run("range", func(t *testing.T) {
		resp, b := do("GET", "/static/style.css", nil, "Range", "bytes=0-9")
		if resp.StatusCode != 206 || len(b) != 10 || !bytes.Equal(b, css[:10]) {
			t.Errorf("%d %q", resp.StatusCode, b)
		}
	})
	t.Run("X-Accel-Redirect", func(t *testing.T) {
		resp, b := do("GET", "/download", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "A private report") ||
			!strings.Contains(resp.Header.Get("Content-Disposition"), "report.txt") {
			t.Errorf("%d %q %v", resp.StatusCode, b, resp.Header)
		}
		resp, b = do("GET", "/protected/report.txt", nil)
		if resp.StatusCode == 200 || strings.Contains(string(b), "A private report") {
			t.Errorf("the internal mount is reachable directly: %d", resp.StatusCode)
		}
	})
	t.Run("events stream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/events", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// The app waits a second between events and sends five: the first
		// arrives alone, long before the stream ends.
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(resp.Body).ReadString('\n')
			line <- s
		}()
		select {
		case s := <-line:
			if !strings.HasPrefix(s, "data: tick 1") {
				t.Errorf("first line %q", s)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the first event did not arrive before the stream ended: buffered")
		}
	})
	t.Run("chunked upload", func(t *testing.T) {
		body := make([]byte, 5_000_000)
		for i := range body {
			body[i] = byte(i * 31)
		}
		sum := sha256.Sum256(body)
		// curl -T - sends PUT with chunked framing; the app's POST handler
		// also prints a checksum.
		resp, b := do("PUT", "/upload", io.MultiReader(bytes.NewReader(body)))
		if want := `received 5000000 bytes, Content-Length header "5000000"`; resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("PUT: %d %q", resp.StatusCode, b)
		}
		resp, b = do("POST", "/upload", io.MultiReader(bytes.NewReader(body)))
		want := "received 5000000 bytes, sha256 " + hex.EncodeToString(sum[:]) + `, Content-Length header "5000000"`
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("POST: %d %q", resp.StatusCode, b)
		}
	})
	t.Run("printed text", func(t *testing.T) {
		text := out.String()
		for _, want := range []string{base + "/static/", base + "/download", base + "/events", "/upload"} {
			if !strings.Contains(text, want) {
				t.Errorf("the demo text lacks %q", want)
			}
		}
		if strings.Contains(text, "%!") {
			t.Errorf("the demo text has a formatting error:\n%s", text)
		}
	})
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
