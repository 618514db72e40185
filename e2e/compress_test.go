package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/wedgeproxy/wedge/internal/testenv"
	"github.com/wedgeproxy/wedge/server/config"
)

// useCompress puts the compress plugin (plugins/compress/compress.wasm,
// as built from its source) in cfg's chain with configuration conf (JSON,
// "" for the defaults): it replaces a compress plugin already there (the
// built-in of the default chain) or is appended. The cache is taken out
// of the chain, so that every response is the app's, compressed or not
// (the cache's own tests cover the variants it stores).
func useCompress(t *testing.T, cfg *config.Config, conf string) {
	t.Helper()
	cfg.Plugins = slices.DeleteFunc(cfg.Plugins, func(p config.Plugin) bool { return p.Builtin == "cache" || p.Name == "cache" })
	wasm, err := filepath.Abs(filepath.Join("..", "plugins", "compress", "compress.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wasm); err != nil {
		t.Fatalf("the compress plugin is not built: %v", err)
	}
	for i := range cfg.Plugins {
		if p := &cfg.Plugins[i]; p.Name == "compress" || p.Builtin == "compress" {
			p.Builtin, p.Path, p.Config = "", wasm, config.JSONValue(conf)
			return
		}
	}
	cfg.Plugins = append(cfg.Plugins, config.Plugin{Name: "compress", Path: wasm, Config: config.JSONValue(conf)})
	cfg.ApplyDefaults()
}

// rawClient sends Accept-Encoding as the test sets it and never decodes.
var rawClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}

// getRaw sends method to url with the fields given as name, value pairs
// and returns the response and its body as sent on the wire.
func getRaw(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return doClient(t, rawClient, method, url, nil, header...)
}

// decodeBody decodes a body sent with content coding ce.
func decodeBody(t *testing.T, ce string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	case "":
		return b
	default:
		t.Fatalf("unexpected Content-Encoding %q", ce)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", ce, err)
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCompress runs the compress plugin in Wedge in front of Gunicorn
// (testdata/app.py's /compressible): each coding decoded by curl and by
// Go's decoders gives the app's bytes back, and the responses the policy
// leaves alone (206, no-transform, already encoded, small, nothing
// acceptable) are passed unchanged.
func TestCompress(t *testing.T) {
	g := startGunicorn(t, 2)
	w := startWedge(t, g.Addr, func(cfg *config.Config) {
		// 100 KiB bodies spill past 16 KiB: the host compresses from the temp file.
		cfg.Limits.ProxyBufferSize = 16 << 10
		useCompress(t, cfg, "")
	})
	base := "http://" + w.Addr

	for _, ce := range []string{"gzip", "br", "zstd"} {
		for _, path := range []string{"/compressible", "/compressible?n=3000000&type=application/json", "/compressible?n=2000"} {
			t.Run("go "+ce+" "+path, func(t *testing.T) {
				resp, b := getRaw(t, "GET", base+path, "Accept-Encoding", ce)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != ce {
					t.Fatalf("status %d, Content-Encoding %q; want 200, %s", resp.StatusCode, resp.Header.Get("Content-Encoding"), ce)
				}
				if v := resp.Header.Get("Vary"); v != "Accept-Encoding" {
					t.Errorf("Vary %q", v)
				}
				if n := resp.Header.Get("Content-Length"); n != strconv.Itoa(len(b)) {
					t.Errorf("Content-Length %s for %d bytes", n, len(b))
				}
				if e := resp.Header.Get("Etag"); !strings.HasPrefix(e, `W/"`) {
					t.Errorf("ETag %q, want a weak one", e)
				}
				if resp.Header.Get("Accept-Ranges") != "" {
					t.Errorf("Accept-Ranges %q kept", resp.Header.Get("Accept-Ranges"))
				}
				orig := decodeBody(t, ce, b)
				if sha(orig) != resp.Header.Get("X-Body-Sha256") {
					t.Fatalf("decoded %d bytes that differ from the app's", len(orig))
				}
				if len(b) > len(orig)/3 {
					t.Errorf("%d bytes compressed to %d", len(orig), len(b))
				}
				t.Logf("%s: %d -> %d bytes", ce, len(orig), len(b))
			})
		}
	}

	t.Run("curl", func(t *testing.T) {
		curl := testenv.LookPath(t, "curl", "apt-get install curl")
		features, _ := exec.Command(curl, "-V").Output()
		for _, tt := range []struct{ ce, feature string }{{"gzip", "libz"}, {"br", "brotli"}, {"zstd", "zstd"}} {
			if !bytes.Contains(features, []byte(tt.feature)) {
				testenv.Missing(t, "curl with "+tt.feature, "apt-get install curl (Debian's has libz, brotli and zstd)")
				continue
			}
			dir := t.TempDir()
			hdr, out := filepath.Join(dir, "head"), filepath.Join(dir, "body")
			cmd := exec.Command(curl, "-sS", "--compressed", "-H", "Accept-Encoding: "+tt.ce,
				"-D", hdr, "-o", out, "-w", "%{size_download}", base+"/compressible")
			wire, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl %s: %v", tt.ce, err)
			}
			head, _ := os.ReadFile(hdr)
			body, _ := os.ReadFile(out)
			if !bytes.Contains(bytes.ToLower(head), []byte("content-encoding: "+tt.ce+"\r\n")) {
				t.Errorf("curl %s: head\n%s", tt.ce, head)
			}
			want := ""
			for _, line := range strings.Split(string(head), "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "x-body-sha256") {
					want = strings.TrimSpace(v)
				}
			}
			if sha(body) != want || len(body) != 102400 {
				t.Errorf("curl %s: %d bytes decoded, not the app's", tt.ce, len(body))
			}
			t.Logf("curl %s: %s bytes on the wire, %d decoded", tt.ce, wire, len(body))
		}
	})

	// Left alone: what the client gets is what the app sent.
	for _, tt := range []struct {
		name, path, ae, rng string
		status              int
		ce, vary            string
	}{
		{name: "nothing acceptable, identity refused: identity anyway (RFC 9110 §12.5.3)", path: "/compressible",
			ae: "deflate, identity;q=0", status: 200, vary: "Accept-Encoding"},
		{name: "identity preferred", path: "/compressible", ae: "identity, gzip;q=0.5", status: 200, vary: "Accept-Encoding"},
		{name: "no Accept-Encoding", path: "/compressible", status: 200, vary: "Accept-Encoding"},
		{name: "206", path: "/compressible", ae: "gzip", rng: "bytes=100-1099", status: 206},
		{name: "no-transform", path: "/compressible?cc=public,%20no-transform", ae: "gzip", status: 200},
		{name: "already gzip", path: "/compressible?ce=gzip", ae: "gzip, br, zstd", status: 200, ce: "gzip"},
		{name: "below min_length", path: "/compressible?n=400", ae: "gzip", status: 200},
		{name: "not a compressible type", path: "/compressible?type=image/png", ae: "gzip", status: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{}
			if tt.ae != "" {
				h = append(h, "Accept-Encoding", tt.ae)
			}
			if tt.rng != "" {
				h = append(h, "Range", tt.rng)
			}
			resp, b := getRaw(t, "GET", base+tt.path, h...)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Encoding") != tt.ce || resp.Header.Get("Vary") != tt.vary {
				t.Fatalf("status %d, Content-Encoding %q, Vary %q; want %d, %q, %q", resp.StatusCode,
					resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"), tt.status, tt.ce, tt.vary)
			}
			plain := decodeBody(t, tt.ce, b)
			switch {
			case tt.rng != "":
				_, full := getRaw(t, "GET", base+tt.path)
				if !bytes.Equal(plain, full[100:1100]) {
					t.Errorf("206 body is not bytes 100-1099 of the page")
				}
			case sha(plain) != resp.Header.Get("X-Body-Sha256"):
				t.Errorf("body (%d bytes) differs from the app's", len(plain))
			}
			if e := resp.Header.Get("Etag"); strings.HasPrefix(e, "W/") {
				t.Errorf("ETag %q weakened", e)
			}
		})
	}

	t.Run("HEAD matches GET", func(t *testing.T) {
		resp, b := getRaw(t, "HEAD", base+"/compressible", "Accept-Encoding", "br")
		if resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Encoding") != "br" ||
			resp.Header.Get("Vary") != "Accept-Encoding" || !strings.HasPrefix(resp.Header.Get("Etag"), `W/"`) {
			t.Errorf("HEAD: %d, %d bytes, %v", resp.StatusCode, len(b), resp.Header)
		}
	})

	t.Run("revalidation with the weak ETag", func(t *testing.T) {
		resp, _ := getRaw(t, "GET", base+"/compressible", "Accept-Encoding", "gzip")
		etag := resp.Header.Get("Etag")
		resp, b := getRaw(t, "GET", base+"/compressible", "Accept-Encoding", "gzip", "If-None-Match", etag)
		if resp.StatusCode != 304 || len(b) != 0 || resp.Header.Get("Etag") != etag ||
			resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("If-None-Match %s: %d, %v", etag, resp.StatusCode, resp.Header)
		}
	})
}
