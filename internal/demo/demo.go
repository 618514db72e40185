// Package demo runs `wedge demo`: a small sample app on loopback with
// Wedge in front of it, so a newcomer sees buffering, routing (the built-in
// router plugin: static files, X-Accel-Redirect, a redirect, a fixed
// answer) and streaming with nothing installed but Go.
package demo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

// Options configure the demo. The zero value is what `wedge demo` uses.
type Options struct {
	// Listen is Wedge's address. Default 127.0.0.1:8080, or a free port
	// when that one is taken.
	Listen string
	// Ready, when not nil, receives Wedge's base URL once it serves.
	Ready chan<- string
	// Quiet drops the error log (tests).
	Quiet bool
}

// Run starts the app and Wedge, prints how to try them to out, and serves
// until ctx ends.
func Run(ctx context.Context, out io.Writer, opt Options) error {
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting the sample app: %w", err)
	}
	app := &http.Server{Handler: App(), ReadHeaderTimeout: 10 * time.Second}
	go app.Serve(appLn)
	defer app.Close()

	dir, err := os.MkdirTemp("", "wedge-demo-")
	if err != nil {
		return fmt.Errorf("creating the static directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeStatic(dir); err != nil {
		return err
	}

	listen := opt.Listen
	if listen == "" {
		listen = "127.0.0.1:8080"
		if ln, err := net.Listen("tcp", listen); err != nil {
			listen = "127.0.0.1:0"
		} else {
			ln.Close()
		}
	}
	cfg, err := config.QuickMode([]string{listen}, []string{appLn.Addr().String()}, "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The built-in router decides: /static/ from the public directory,
	// /protected/ only for the app's X-Accel-Redirect, a redirect and a
	// fixed answer, everything else to the app.
	routes, err := json.Marshal(map[string]any{"routes": []map[string]any{
		{"path": "/static/", "strip_prefix": "/static", "static": map[string]any{"root": filepath.Join(dir, "public")},
			"response_headers": map[string]any{"set": map[string]string{"Cache-Control": "max-age=60"}}},
		{"path": "/protected/", "internal": true, "strip_prefix": "/protected", "static": map[string]any{"root": filepath.Join(dir, "protected")}},
		{"path": map[string]string{"regexp": "^/docs/(.*)$"}, "redirect": map[string]any{"status": 301, "to": "/static/$1"}},
		{"path": map[string]string{"exact": "/ping"}, "respond": map[string]any{"body": "pong from the router\n"}},
		{"upstream": "app"},
	}})
	if err != nil {
		return err
	}
	cfg.Plugins = config.DefaultChain("app")
	cfg.Plugins[0].Config = routes
	cfg.Log.Access = "off"
	cfg.Limits.ClientMaxBodySize = 64 << 20
	cfg.ApplyDefaults() // the plugins' own defaults (callback_timeout, memory_limit, ...)
	if err := cfg.Validate(); err != nil {
		return err
	}
	var log *slog.Logger
	if opt.Quiet {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(cfg, server.Options{Logger: log, Builtins: plugins.Builtin})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	base := "http://" + srv.Addrs()[0].String()
	fmt.Fprintf(out, `Wedge is running in front of a sample app.

  open      %[1]s/
  metrics   http://%[2]s/metrics

Try:
  curl -i %[1]s/                                   # proxied to the app, buffered both ways
  curl -i %[1]s/static/                            # a static file, served by Wedge itself
  curl -i -H 'Accept-Encoding: gzip' %[1]s/static/style.css --output -   # precompressed .gz sidecar
  curl -i -H 'Range: bytes=0-9' %[1]s/static/style.css                    # 206 Partial Content
  curl -i %[1]s/download                           # the app answers X-Accel-Redirect, Wedge sends the file
  curl -i %[1]s/docs/style.css                     # the router redirects (301) with a capture
  curl -i %[1]s/ping                               # the router answers by itself
  curl -N %[1]s/events                             # server-sent events stream through unbuffered
  head -c 5000000 /dev/urandom | curl -sS -T - %[1]s/upload   # a chunked 5 MB upload, buffered before the app sees it

Press Ctrl-C to stop.
`, base, srv.AdminAddr())
	if opt.Ready != nil {
		opt.Ready <- base
	}
	select {
	case <-ctx.Done():
	case err := <-srv.Errors():
		srv.Shutdown(context.Background())
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// App is the sample app: what a small Flask or Rails app would answer.
func App() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Wedge demo</title>
<h1>Hello from the app behind Wedge</h1>
<p>Your address as the app sees it: <code>%s</code> (X-Forwarded-For), via <code>%s</code>.</p>
<p>See <a href="/static/">a static page</a>, <a href="/download">an X-Accel-Redirect download</a>, <a href="/events">a server-sent event stream</a>.</p>
`, r.Header.Get("X-Forwarded-For"), r.Header.Get("Via"))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "received %d bytes, sha256 %s, Content-Length header %q\n", n, hex.EncodeToString(h.Sum(nil)), r.Header.Get("Content-Length"))
	})
	mux.HandleFunc("PUT /upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "received %d bytes, Content-Length header %q\n", n, r.Header.Get("Content-Length"))
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if n <= 0 {
			n = 1 << 20
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("w"), n))
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Redirect", "/protected/report.txt")
		w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(w, "data: tick %d at %s\n\n", i, time.Now().Format(time.TimeOnly))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
	})
	return mux
}

func writeStatic(dir string) error {
	css := bytes.Repeat([]byte("body { font-family: sans-serif; margin: 2em; }\n"), 40)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(css)
	zw.Close()
	files := map[string][]byte{
		"public/index.html":    []byte("<!doctype html><title>static</title><link rel=stylesheet href=style.css><h1>Served by Wedge from disk</h1>\n"),
		"public/style.css":     css,
		"public/style.css.gz":  gz.Bytes(),
		"protected/report.txt": []byte("A private report, reachable only through X-Accel-Redirect.\n"),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing demo files: %w", err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("writing demo files: %w", err)
		}
	}
	return nil
}
