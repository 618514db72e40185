package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

// wedge is an in-process Wedge under test.
type wedge struct {
	Addr  string     // client address, 127.0.0.1:port
	Admin string     // admin address ("" when off)
	Temp  string     // its temp_path, a t.TempDir
	Log   *logBuffer // its error log, JSON lines
	srv   *server.Server
}

// startWedge starts Wedge in quick mode in front of upstream (host:port),
// with the access log off, temp_path in a fresh t.TempDir and the error
// log (debug level) captured; tweak may change the configuration before it
// is validated. It is shut down in t.Cleanup.
func startWedge(t *testing.T, upstream string, tweak func(*config.Config)) *wedge {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		w := &wedge{Addr: freeAddr(t), Temp: t.TempDir(), Log: &logBuffer{}}
		cfg, err := config.QuickMode([]string{w.Addr}, []string{upstream}, "")
		if err != nil {
			t.Fatalf("quick mode: %v", err)
		}
		cfg.Log.Access = "off"
		cfg.Limits.TempPath = w.Temp
		if tweak != nil {
			tweak(cfg)
		}
		w.Admin = cfg.Admin.Address
		if err := cfg.Validate(); err != nil {
			t.Fatalf("validating configuration: %v", err)
		}
		log := slog.New(slog.NewJSONHandler(w.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		srv, err := server.New(cfg, server.Options{Logger: log, Builtins: plugins.Builtin})
		if err != nil {
			t.Fatalf("server.New: %v", err)
		}
		if err := srv.Start(); err != nil {
			lastErr = err
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(ctx)
			cancel()
			continue // a port taken since freeAddr: try others
		}
		w.srv = srv
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutting Wedge down: %v", err)
			}
			if t.Failed() {
				t.Logf("Wedge error log (last 8 KiB):\n%s", tail(w.Log.Bytes(), 8192))
			}
		})
		return w
	}
	t.Fatalf("starting Wedge: %v", lastErr)
	return nil
}

// URL returns the URL of path on w.
func (w *wedge) URL(path string) string { return "http://" + w.Addr + path }

// assertTempEmpty fails t when w's temp_path holds any file: temp files
// are unlinked as soon as they are made.
func (w *wedge) assertTempEmpty(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(w.Temp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("temp_path holds %s after the exchange", e.Name())
	}
}

// logBuffer is an io.Writer safe for concurrent use that keeps everything
// written to it: the error log of a Wedge.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *logBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// Mark returns the current length, for lines written after it.
func (b *logBuffer) Mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// waitStatus waits (at most 5 s) for a JSON line written after mark whose
// "status" is status, and returns it.
func (b *logBuffer) waitStatus(t *testing.T, mark, status int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		all := b.Bytes()
		sc := bufio.NewScanner(bytes.NewReader(all[mark:]))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec struct {
				Status int `json:"status"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Status == status {
				return sc.Text()
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no error-log line with status %d; log since the case:\n%s", status, all[mark:])
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// normalClient makes one new connection per request.
func normalClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// assertServing checks that a normal GET / through w answers 200 "ok".
func assertServing(t *testing.T, w *wedge) {
	t.Helper()
	body, err := get(normalClient(10*time.Second), w.URL("/"))
	if err != nil || body != "ok" {
		t.Fatalf("normal request after the case: %q, %v", body, err)
	}
}

// rawResponse is what a raw exchange got back.
type rawResponse struct {
	*http.Response
	Body   []byte
	Closed bool // the server closed the connection after the response
}

// rawExchange sends payload on a new connection to addr, then reads one
// response (bounded by 15 s) and whether the connection was closed after
// it.
func rawExchange(t *testing.T, addr, payload string) *rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	return readRaw(t, c)
}

// readRaw reads one response from c, then checks whether c was closed.
func readRaw(t *testing.T, c net.Conn) *rawResponse {
	t.Helper()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	resp.Body.Close()
	r := &rawResponse{Response: resp, Body: body}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == io.EOF || err != nil && !isTimeout(err) {
		r.Closed = true
	}
	return r
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
