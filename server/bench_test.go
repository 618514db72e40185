package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// BenchmarkServer measures the whole server in process: HTTP/1.1
// keep-alive requests over loopback, each proxied to an in-process
// upstream that answers a fixed 1 KiB body, with the built-in router
// alone (one route to the pool: Wedge routes nothing itself) and then 1
// and 3 trivial Go plugins (testdata/benchplugin: adds one request field)
// after it in the chain.
// The sub-benchmarks run side by side in one run so that their numbers
// compare on a shared, noisy machine.
//
// ns/op is wall time per request over benchConns concurrent connections;
// req/s is its inverse; cpu-ns/op is the process's user+system CPU time
// (getrusage) per request, which includes the benchmark's client and
// upstream, both minimal raw-socket loops.
//
// The plugin is built with the Go toolchain (GOOS=wasip1); the plugin
// cases are skipped when that fails.
func BenchmarkServer(b *testing.B) {
	for _, n := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("plugins=%d", n), func(b *testing.B) {
			benchServer(b, n)
		})
	}
}

// benchConns is the number of client connections of BenchmarkServer.
const benchConns = 8

func benchServer(b *testing.B, plugins int) {
	up := startBenchUpstream(b)
	var yaml bytes.Buffer
	fmt.Fprintf(&yaml, "listen:\n  - address: 127.0.0.1:0\nadmin:\n  address: \"\"\nlog:\n  access: \"off\"\n  level: error\n")
	fmt.Fprintf(&yaml, "limits:\n  keepalive_requests: 1000000000\n")
	fmt.Fprintf(&yaml, "upstreams:\n  app:\n    servers:\n      - address: %s\n", up)
	router, err := filepath.Abs(filepath.Join("..", "plugins", "router", "router.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(os.TempDir(), "wedge-bench-wasm")
	var wasm string
	if plugins > 0 {
		wasm, cache = benchPlugin(b)
	}
	fmt.Fprintf(&yaml, "plugin_cache: %s\nplugins:\n", cache)
	fmt.Fprintf(&yaml, "  - name: router\n    path: %s\n    config: {routes: [{upstream: app}]}\n", router)
	for i := range plugins {
		fmt.Fprintf(&yaml, "  - name: bench%d\n    path: %s\n", i, wasm)
	}
	cfg, err := config.Parse("bench.yaml", yaml.Bytes())
	if err != nil {
		b.Fatalf("parsing the configuration: %v\n%s", err, yaml.Bytes())
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	addr := srv.Addrs()[0].String()

	conns := make(chan *benchClient, benchConns)
	for range benchConns {
		c, err := dialBenchClient(addr)
		if err != nil {
			b.Fatal(err)
		}
		// Warm up: connections to the upstream, plugin VMs.
		for range 50 {
			if err := c.get(); err != nil {
				b.Fatal(err)
			}
		}
		conns <- c
	}
	b.Cleanup(func() {
		close(conns)
		for c := range conns {
			c.conn.Close()
		}
	})

	b.ReportAllocs()
	b.SetParallelism((benchConns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	cpu0 := processCPU()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := <-conns
		defer func() { conns <- c }()
		for pb.Next() {
			if err := c.get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	wall, cpu := time.Since(start), processCPU()-cpu0
	b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU returns the user plus system CPU time the process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	benchOnce  sync.Once
	benchWasm  string
	benchCache string
	benchErr   error
)

// benchPlugin builds testdata/benchplugin once per process and returns the
// .wasm path and a compilation cache directory, skipping the benchmark when
// the build fails.
func benchPlugin(b *testing.B) (wasm, cache string) {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wedge-bench-")
		if err != nil {
			benchErr = err
			return
		}
		benchCache = filepath.Join(dir, "cache")
		benchWasm = filepath.Join(dir, "benchplugin.wasm")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			gobin = "go"
		}
		cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", benchWasm, ".")
		cmd.Dir = filepath.Join("testdata", "benchplugin")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-buildvcs=false", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			benchErr = fmt.Errorf("building testdata/benchplugin: %v\n%s", err, out)
		}
	})
	if benchErr != nil {
		b.Skipf("skipping: %v", benchErr)
	}
	return benchWasm, benchCache
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchWasm != "" {
		os.RemoveAll(filepath.Dir(benchWasm))
	}
	os.Exit(code)
}

// benchBody is the upstream's response body.
var benchBody = bytes.Repeat([]byte("0123456789abcdef"), 64)

// startBenchUpstream starts a minimal HTTP/1.1 keep-alive server on
// loopback that answers every request with 200 and benchBody, and returns
// its address.
func startBenchUpstream(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(benchBody))+"\r\n\r\n"), benchBody...)
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					// The benchmark's requests have no body: a request
					// ends with its empty line.
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	// Closing the listener does not close accepted connections: the
	// server's Shutdown closes its upstream pools, which ends them.
	return ln.Addr().String()
}

// benchClient is one keep-alive client connection.
type benchClient struct {
	conn net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
}

func dialBenchClient(addr string) (*benchClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &benchClient{
		conn: c,
		r:    bufio.NewReaderSize(c, 16<<10),
		req:  []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wedge-bench\r\nAccept: */*\r\n\r\n"),
		body: make([]byte, 0, 4<<10),
	}, nil
}

// get sends one request and reads its whole response, which must be a 200
// with benchBody.
func (c *benchClient) get() error {
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", status)
	}
	n := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return fmt.Errorf("Content-Length %q", value)
			}
		}
	}
	if n != len(benchBody) {
		return fmt.Errorf("Content-Length %d, want %d", n, len(benchBody))
	}
	c.body = c.body[:n]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return err
	}
	if !bytes.Equal(c.body, benchBody) {
		return fmt.Errorf("body differs")
	}
	return nil
}
