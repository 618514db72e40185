package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/certs/localca"
	"github.com/wedgeproxy/wedge/internal/testacme"
	"github.com/wedgeproxy/wedge/internal/testenv"
	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

// startHTTPSWedge starts Wedge in quick mode with --domain domains (none:
// plain TLS listener, tweak sets the certificate source) and --ca the
// Pebble directory, in front of upstream: its TLS listener on 127.0.0.1 at
// ca.TLSPort and tls.redirect_http at ca.HTTPPort, where Pebble validates.
func startHTTPSWedge(t *testing.T, ca *testacme.CA, upstream string, domains []string, tweak func(*config.Config)) (*server.Server, *logBuffer) {
	t.Helper()
	tlsAddr := "127.0.0.1:" + strconv.Itoa(ca.TLSPort)
	q := config.Quick{Listen: []string{tlsAddr}, To: []string{upstream}}
	if len(domains) > 0 {
		q.Domains, q.Email, q.CA = domains, "ops@wedge.test", ca.DirectoryURL
	}
	cfg, err := q.Config()
	if err != nil {
		t.Fatalf("quick mode: %v", err)
	}
	if len(domains) == 0 {
		cfg.Listen[0].TLS = true
	}
	cfg.Log.Access = "off"
	cfg.Limits.TempPath = t.TempDir()
	cfg.TLS.CA = ca.DirectoryURL // never a public CA
	cfg.TLS.CARoot = ca.ServerRootFile
	cfg.TLS.DataDir = t.TempDir()
	cfg.TLS.RedirectHTTP = "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)
	if tweak != nil {
		tweak(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validating configuration: %v", err)
	}
	logs := &logBuffer{}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Builtins: plugins.Builtin})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("starting Wedge: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("Wedge error log (last 8 KiB):\n%s", tail(logs.Bytes(), 8192))
		}
	})
	return srv, logs
}

// httpsClient reaches addr whatever the URL's host, trusting roots only.
func httpsClient(addr string, roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: true, // a handshake per request: each sees the current certificate
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// waitHTTPS GETs url until it answers 200 (at most 30 s: the certificate is
// obtained in the background) and returns the body and TLS state.
func waitHTTPS(t *testing.T, c *http.Client, url string) (string, *tls.ConnectionState) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil {
				return string(b), resp.TLS
			}
			err = fmt.Errorf("status %d %q %v", resp.StatusCode, b, rerr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestACME: Wedge gets a certificate from an ACME CA (Pebble on loopback)
// by HTTP-01 and, separately, by TLS-ALPN-01, then serves HTTPS over
// HTTP/2 and HTTP/1.1 through to Gunicorn; port 80 redirects with 308.
func TestACME(t *testing.T) {
	testenv.Short(t, "runs an ACME CA")
	app := startGunicorn(t, 2)
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			ca := testacme.Start(t, testacme.Options{})
			name := strings.ReplaceAll(challenge, "-", "") + ".wedge.test"
			_, logs := startHTTPSWedge(t, ca, app.Addr, []string{name}, func(c *config.Config) {
				c.TLS.Challenges = []string{challenge}
				c.TLS.HSTS = "max-age=600"
			})
			tlsPort := strconv.Itoa(ca.TLSPort)
			c := httpsClient("127.0.0.1:"+tlsPort, ca.IssuedRoots)
			body, cs := waitHTTPS(t, c, "https://"+name+":"+tlsPort+"/")
			if body != "ok" || cs.NegotiatedProtocol != "h2" || cs.PeerCertificates[0].Subject.CommonName != name && cs.PeerCertificates[0].DNSNames[0] != name {
				t.Errorf("got %q over %q from %v", body, cs.NegotiatedProtocol, cs.PeerCertificates[0].DNSNames)
			}
			h1 := httpsClient("127.0.0.1:"+tlsPort, ca.IssuedRoots)
			h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			h1.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			resp, err := h1.Get("https://" + name + ":" + tlsPort + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "ok" || resp.Proto != "HTTP/1.1" || resp.Header.Get("Strict-Transport-Security") != "max-age=600" {
				t.Errorf("HTTP/1.1: %q over %s, HSTS %q", b, resp.Proto, resp.Header.Get("Strict-Transport-Security"))
			}
			if !strings.Contains(string(logs.Bytes()), `"msg":"certificate obtained","name":"`+name+`"`) {
				t.Errorf("no issuance line in the log")
			}

			// Port 80: everything but a challenge goes to HTTPS, 308.
			plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest("POST", "http://127.0.0.1:"+strconv.Itoa(ca.HTTPPort)+"/a/b?c=d", strings.NewReader("x"))
			req.Host = name
			resp, err = plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := "https://" + name + ":" + tlsPort + "/a/b?c=d"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
				t.Errorf("port 80: %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
			}
		})
	}
}

// TestACME_Renewal: a forced renewal swaps the certificate while a client
// keeps requesting through to Gunicorn, and no request fails.
func TestACME_Renewal(t *testing.T) {
	testenv.Short(t, "runs an ACME CA")
	app := startGunicorn(t, 4)
	ca := testacme.Start(t, testacme.Options{})
	const name = "renew.wedge.test"
	srv, _ := startHTTPSWedge(t, ca, app.Addr, []string{name}, nil)
	tlsPort := strconv.Itoa(ca.TLSPort)
	url := "https://" + name + ":" + tlsPort + "/"
	c := httpsClient("127.0.0.1:"+tlsPort, ca.IssuedRoots)
	_, first := waitHTTPS(t, c, url)

	var requests, failures atomic.Int64
	var mu sync.Mutex
	serials := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				body, cs, err := fetch(c, url)
				if err != nil || body != "ok" {
					failures.Add(1)
					t.Logf("request failed: %q %v", body, err)
					continue
				}
				mu.Lock()
				serials[cs.PeerCertificates[0].SerialNumber.String()]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.RenewCertificate(ctx, name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	_, last := waitHTTPS(t, c, url)
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed during the renewal", failures.Load(), requests.Load())
	}
	if first.PeerCertificates[0].SerialNumber.Cmp(last.PeerCertificates[0].SerialNumber) == 0 {
		t.Errorf("the renewed certificate is not served")
	}
	if len(serials) < 2 {
		t.Errorf("the client saw %d certificates, want the old and the new", len(serials))
	}
	t.Logf("%d requests, %d certificates", requests.Load(), len(serials))
}

// fetch GETs url and returns the body and TLS state.
func fetch(c *http.Client, url string) (string, *tls.ConnectionState, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), resp.TLS, err
}

// TestACME_OnDemand: with tls.on_demand, an approved name gets a
// certificate at its first handshake and reaches Gunicorn; a refused one
// fails the handshake; a burst of approved names stays within the limit.
func TestACME_OnDemand(t *testing.T) {
	testenv.Short(t, "runs an ACME CA")
	app := startGunicorn(t, 2)
	ca := testacme.Start(t, testacme.Options{})
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Query().Get("domain"), "customer") {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(ask.Close)
	startHTTPSWedge(t, ca, app.Addr, nil, func(c *config.Config) {
		c.TLS.OnDemand = &config.OnDemand{Ask: ask.URL, Burst: 3, Interval: config.Duration(time.Hour)}
	})
	tlsPort := strconv.Itoa(ca.TLSPort)
	c := httpsClient("127.0.0.1:"+tlsPort, ca.IssuedRoots)
	if body, _, err := fetch(c, "https://customer1.wedge.test:"+tlsPort+"/"); err != nil || body != "ok" {
		t.Fatalf("approved name: %q %v", body, err)
	}
	if _, _, err := fetch(c, "https://stranger.wedge.test:"+tlsPort+"/"); err == nil {
		t.Fatal("refused name: the handshake succeeded")
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := fetch(c, fmt.Sprintf("https://customer-burst%d.wedge.test:%s/", i, tlsPort)); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 2 {
		t.Errorf("burst of 5 new names with 2 left in the limit: %d got certificates", ok.Load())
	}
}

// TestLocalCA_Trusted: with tls.local_ca, a client trusting the root Wedge
// wrote to its data directory reaches https://localhost:PORT/ and Gunicorn
// behind it with no certificate error.
func TestLocalCA_Trusted(t *testing.T) {
	app := startGunicorn(t, 2)
	addr := freeAddr(t)
	cfg, err := config.Quick{Listen: []string{addr}, To: []string{app.Addr}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen[0].TLS = true
	cfg.TLS.LocalCA = true
	cfg.TLS.DataDir = t.TempDir()
	cfg.Log.Access = "off"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Builtins: plugins.Builtin})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	rootPath := filepath.Join(cfg.TLS.DataDir, "local-ca", "root.crt")
	pem, err := os.ReadFile(rootPath)
	if err != nil {
		t.Fatalf("the local CA root was not written: %v", err)
	}
	if !strings.Contains(string(logs.Bytes()), rootPath) || !strings.Contains(string(logs.Bytes()), "update-ca-certificates") {
		t.Errorf("the log does not say where the root is and how to trust it:\n%s", logs.Bytes())
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	_, port, _ := net.SplitHostPort(addr)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	body, cs, err := fetch(c, "https://localhost:"+port+"/")
	if err != nil || body != "ok" {
		t.Fatalf("https://localhost:%s/: %q %v", port, body, err)
	}
	if cs.NegotiatedProtocol != "h2" {
		t.Errorf("negotiated %q, want h2", cs.NegotiatedProtocol)
	}
	// A client without the root gets a certificate error, not a page.
	_, _, err = fetch(&http.Client{Timeout: 10 * time.Second}, "https://localhost:"+port+"/")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("untrusting client: got %v, want x509.UnknownAuthorityError", err)
	}
}

// TestTLS_ReloadFiles: tls.certificates are read again on reload (SIGHUP),
// and the next handshake gets the new certificate.
func TestTLS_ReloadFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := localca.Load(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	write := func() {
		c, err := ca.Issue([]string{"site.test"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(crt, pemBlock("CERTIFICATE", c.Certificate[0]), 0o644)
		os.WriteFile(key, pemBlock("PRIVATE KEY", der), 0o600)
	}
	write()
	addr := freeAddr(t)
	cfg, err := config.Quick{Listen: []string{addr}, To: []string{freeAddr(t)}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen[0].TLS = true
	cfg.TLS.Certificates = []config.Certificate{{Cert: crt, Key: key}}
	cfg.Log.Access = "off"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Builtins: plugins.Builtin})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	serial := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "site.test", RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	write()
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if serial() == before {
		t.Error("the reloaded certificate file is not served")
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
