package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/internal/testacme"
	"github.com/wedgeproxy/wedge/internal/testenv"
)

// events collects the Manager's log messages.
type events struct {
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *events) WithGroup(string) slog.Handler            { return e }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "name" {
			msg += " " + a.Value.String()
		}
		return true
	})
	e.mu.Lock()
	e.msgs = append(e.msgs, msg)
	e.mu.Unlock()
	select {
	case e.ch <- msg:
	default:
	}
	return nil
}

// waitFor waits for a log message.
func (e *events) waitFor(t *testing.T, msg string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		e.mu.Lock()
		for _, m := range e.msgs {
			if m == msg {
				e.mu.Unlock()
				return
			}
		}
		e.mu.Unlock()
		select {
		case <-e.ch:
		case <-deadline:
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("no %q in the log after %v; log: %q", msg, d, e.msgs)
		}
	}
}

// serve runs m as Wedge would: HTTPHandler on the CA's HTTP-01 port, a
// TLS listener on its TLS-ALPN-01 port answering "hello NAME over PROTO".
func serve(t *testing.T, m *Manager, ca *testacme.CA) {
	t.Helper()
	hl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ca.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	quiet := stdlog.New(io.Discard, "", 0) // refused handshakes are expected
	hs := &http.Server{Handler: m.HTTPHandler(), ErrorLog: quiet}
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })
	tl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ca.TLSPort))
	if err != nil {
		t.Fatal(err)
	}
	ts := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s", r.TLS.ServerName, r.Proto)
	}), TLSConfig: m.TLSConfig(), ErrorLog: quiet}
	go ts.ServeTLS(tl, "", "")
	t.Cleanup(func() { ts.Close() })
}

// client dials addr whatever the URL's host, trusting roots.
func client(addr string, roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: true,
	}}
}

// getUntil GETs url until it answers 200, for at most d.
func getUntil(t *testing.T, c *http.Client, url string, d time.Duration) (string, *tls.ConnectionState) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b), resp.TLS
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newACMEManager(t *testing.T, ca *testacme.CA, log *events, tweak func(*Config)) *Manager {
	t.Helper()
	cfg := Config{
		Email:    "ops@wedge.test",
		CA:       ca.DirectoryURL,
		CARoots:  ca.ServerRoots,
		DataDir:  t.TempDir(),
		HTTPPort: ca.HTTPPort,
		TLSPort:  ca.TLSPort,
		Logger:   slog.New(log),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestManager_Challenges(t *testing.T) {
	testenv.Short(t, "runs an ACME CA")
	for _, tt := range []struct {
		challenge string
		eab       bool
	}{
		{ChallengeHTTP01, false},
		{ChallengeTLSALPN01, true},
	} {
		t.Run(tt.challenge, func(t *testing.T) {
			ca := testacme.Start(t, testacme.Options{RequireEAB: tt.eab})
			log := &events{ch: make(chan string, 1)}
			name := strings.ReplaceAll(tt.challenge, "-", "") + ".wedge.test"
			reg := prometheus.NewRegistry()
			m := newACMEManager(t, ca, log, func(c *Config) {
				c.Domains = []string{name}
				c.Challenges = []string{tt.challenge}
				if tt.eab {
					c.EAB = &EAB{KeyID: testacme.EABKeyID, MACKey: testacme.EABMACKey}
				}
			})
			reg.MustRegister(m)
			serve(t, m, ca)
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
			log.waitFor(t, "certificate obtained "+name, 30*time.Second)
			body, cs := getUntil(t, client("127.0.0.1:"+strconv.Itoa(ca.TLSPort), ca.IssuedRoots), "https://"+name+"/", 10*time.Second)
			if body != "hello "+name+" over HTTP/2.0" || cs.NegotiatedProtocol != "h2" {
				t.Errorf("got %q over %q", body, cs.NegotiatedProtocol)
			}
			if got := expiryDays(t, reg, name); got < 0.04 || got > 0.042 { // one hour
				t.Errorf("expiry metric %v days, want one hour", got)
			}
			// Another CA would refuse to issue for an unknown account: the
			// EAB was used when it was required.
			if err := m.Renew(context.Background(), "other.wedge.test"); !errors.Is(err, ErrNoCertificate) {
				t.Errorf("Renew of an unmanaged name: %v", err)
			}
		})
	}
}

func expiryDays(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "wedge_tls_certificate_expiry_days" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no wedge_tls_certificate_expiry_days{name=%q}", name)
	return 0
}

// TestManager_Renewal: a 20 s certificate renews by itself in the
// background, and a forced renewal swaps the served certificate, while a
// client keeps connecting without one failure.
func TestManager_Renewal(t *testing.T) {
	testenv.Short(t, "runs an ACME CA")
	ca := testacme.Start(t, testacme.Options{Validity: 20})
	log := &events{ch: make(chan string, 1)}
	const name = "renew.wedge.test"
	m := newACMEManager(t, ca, log, func(c *Config) {
		c.Domains = []string{name}
		c.RenewCheckInterval = time.Second
		c.RenewalWindowRatio = 0.8
	})
	serve(t, m, ca)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "certificate obtained "+name, 30*time.Second)
	c := client("127.0.0.1:"+strconv.Itoa(ca.TLSPort), ca.IssuedRoots)
	_, first := getUntil(t, c, "https://"+name+"/", 10*time.Second)

	stop := make(chan struct{})
	var failures, requests int
	var serials sync.Map
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			requests++
			resp, err := c.Get("https://" + name + "/")
			if err != nil {
				failures++
				t.Logf("request failed: %v", err)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			serials.Store(resp.TLS.PeerCertificates[0].SerialNumber.String(), true)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	log.waitFor(t, "certificate renewed "+name, 20*time.Second)
	if err := m.Renew(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	n := 0
	serials.Range(func(k, _ any) bool { n++; return true })
	if failures > 0 || n < 2 {
		t.Errorf("%d of %d requests failed; %d certificates served", failures, requests, n)
	}
	if _, ok := serials.Load(first.PeerCertificates[0].SerialNumber.String()); ok && n < 3 {
		t.Errorf("renewals did not replace the first certificate: %d serials", n)
	}
}

func TestManager_OnDemand(t *testing.T) {
	testenv.Short(t, "runs an ACME CA")
	ca := testacme.Start(t, testacme.Options{})
	var asked sync.Map
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		asked.Store(d, true)
		if !strings.HasPrefix(d, "ok") {
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	t.Cleanup(ask.Close)
	log := &events{ch: make(chan string, 1)}
	m := newACMEManager(t, ca, log, func(c *Config) {
		c.OnDemand = &OnDemand{Ask: ask.URL + "/check", Burst: 3, Interval: time.Hour}
	})
	serve(t, m, ca)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ca.TLSPort)
	handshake := func(name string) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: ca.IssuedRoots})
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := handshake("ok-first.wedge.test"); err != nil {
		t.Fatalf("approved name: %v", err)
	}
	if err := handshake("ok-first.wedge.test"); err != nil {
		t.Fatalf("approved name, second handshake: %v", err)
	}
	if err := handshake("refused.wedge.test"); err == nil {
		t.Fatal("refused name: handshake succeeded")
	}
	if _, ok := asked.Load("refused.wedge.test"); !ok {
		t.Error("the ask URL was not asked about refused.wedge.test")
	}
	// A burst of approved names: 2 more fit in the limit of 3 per hour.
	var ok, failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := handshake(fmt.Sprintf("ok-burst-%d.wedge.test", i))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else {
				failed++
			}
		}()
	}
	wg.Wait()
	if ok != 2 || failed != 4 {
		t.Errorf("burst of 6: %d got certificates, %d refused; want 2 and 4", ok, failed)
	}
}

func TestManager_LocalCA(t *testing.T) {
	m, err := New(Config{LocalCA: true, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "local") })}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: m.LocalCA().Pool()}}}
	for _, url := range []string{"https://localhost:" + port + "/", "https://127.0.0.1:" + port + "/", "https://app.localhost:" + port + "/"} {
		if url == "https://app.localhost:"+port+"/" {
			c.Transport.(*http.Transport).DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
			}
		}
		body, err := get(c, url)
		if err != nil || body != "local" {
			t.Errorf("GET %s: %q %v", url, body, err)
		}
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "example.com"}); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("example.com: got %v, want ErrNoCertificate", err)
	}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestNew_Refuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{}, "no domains, on-demand policy, files or local CA"},
		{"no data dir", Config{Domains: []string{"a.test"}}, "a data directory is required"},
		{"on-demand without ask", Config{OnDemand: &OnDemand{}, DataDir: t.TempDir()}, "an ask URL is required"},
		{"no challenge", Config{Domains: []string{"a.test"}, DataDir: t.TempDir(), Challenges: []string{"dns-01"}}, "no known challenge"},
		{"missing file", Config{Files: []KeyPair{{Cert: "/nonexistent.pem", Key: "/nonexistent.key"}}}, "loading certificate /nonexistent.pem"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if err == nil {
				m.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
