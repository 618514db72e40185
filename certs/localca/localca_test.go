package localca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestLoad_createsThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if !ca.Root().IsCA || ca.Root().NotAfter.Sub(ca.Root().NotBefore) < RootLifetime {
		t.Errorf("root: IsCA %v, validity %v", ca.Root().IsCA, ca.Root().NotAfter.Sub(ca.Root().NotBefore))
	}
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Root().Raw, ca.Root().Raw) {
		t.Error("a second Load made a new root instead of reading the stored one")
	}
}

func TestLoad_errors(t *testing.T) {
	other, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(other.dir, RootKeyFile))
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"key missing", func(dir string) { os.Remove(filepath.Join(dir, RootKeyFile)) }, "is missing"},
		{"cert missing", func(dir string) { os.Remove(filepath.Join(dir, RootCertFile)) }, "is missing"},
		{"cert garbage", func(dir string) { os.WriteFile(filepath.Join(dir, RootCertFile), []byte("junk"), 0o644) }, "no PEM certificate"},
		{"key garbage", func(dir string) { os.WriteFile(filepath.Join(dir, RootKeyFile), []byte("junk"), 0o600) }, "no PEM private key"},
		{"key of another root", func(dir string) { os.WriteFile(filepath.Join(dir, RootKeyFile), otherKey, 0o600) }, "does not hold the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Load(dir); err != nil {
				t.Fatal(err)
			}
			tt.setup(dir)
			_, err := Load(dir)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestCA_Issue(t *testing.T) {
	ca, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		names  []string
		verify string // the name a client checks
	}{
		{[]string{"localhost"}, "localhost"},
		{[]string{"*.localhost"}, "app.localhost"},
		{[]string{"app.internal", "api.internal"}, "api.internal"},
		{[]string{"127.0.0.1"}, "127.0.0.1"},
		{[]string{"::1"}, "::1"},
		{[]string{"[::1]"}, "::1"},
		{[]string{"LocalHost."}, "localhost"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.names), func(t *testing.T) {
			c, err := ca.Issue(tt.names, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: tt.verify, Roots: ca.Pool()}); err != nil {
				t.Errorf("verifying for %q: %v", tt.verify, err)
			}
			if life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore); life > DefaultLeafLifetime+10*time.Minute {
				t.Errorf("leaf lifetime %v", life)
			}
			if len(c.Certificate) != 2 {
				t.Errorf("chain of %d certificates, want leaf and root", len(c.Certificate))
			}
		})
	}
}

func TestCA_Issue_badNames(t *testing.T) {
	ca, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"", "bad name", "a..b", "-a.b", "a-.b", "*.*.x", "a/b", "é.local", string(make([]byte, 64)) + ".x"} {
		if _, err := ca.Issue([]string{n}, 0); !errors.Is(err, ErrBadName) {
			t.Errorf("Issue(%q) err = %v, want ErrBadName", n, err)
		}
	}
	if _, err := ca.Issue(nil, 0); !errors.Is(err, ErrBadName) {
		t.Errorf("Issue(nil) err = %v, want ErrBadName", err)
	}
}

// TestCA_GetCertificate_https is the check a user makes: a client that
// trusts the written root connects to https://localhost:<port> (and to the
// IP, without SNI) with no warning.
func TestCA_GetCertificate_https(t *testing.T) {
	dir := t.TempDir()
	ca, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: ca.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello over TLS") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// trust only the root file on disk, as a user would
	pemBytes, err := os.ReadFile(ca.RootPath())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("root file is not PEM")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port) // localhost -> 127.0.0.1
		},
	}}
	for _, url := range []string{"https://localhost:" + port + "/", "https://127.0.0.1:" + port + "/"} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello over TLS" {
			t.Errorf("GET %s: %d %q", url, resp.StatusCode, body)
		}
	}
}

func TestCA_GetCertificate_renews(t *testing.T) {
	ca, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca.now = func() time.Time { return now }
	ca.LeafLifetime = 3 * time.Hour
	hello := &tls.ClientHelloInfo{ServerName: "localhost"}
	first, err := ca.GetCertificate(hello)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour) // 1/3 of the way: still the same leaf
	if c, _ := ca.GetCertificate(hello); c != first {
		t.Error("renewed a leaf a third of the way through its life")
	}
	now = now.Add(90 * time.Minute) // past 2/3: a new one
	if c, _ := ca.GetCertificate(hello); c == first {
		t.Error("kept a leaf past two thirds of its life")
	}
}

func TestCA_GetCertificate_hammer(t *testing.T) {
	ca, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a.localhost", "b.localhost", "localhost", "127.0.0.1"}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				name := names[(i+j)%len(names)]
				c, err := ca.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
				if err != nil {
					t.Error(err)
					return
				}
				if err := c.Leaf.VerifyHostname(name); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(ca.leaves) != len(names) {
		t.Errorf("%d leaves cached, want one per name (%d)", len(ca.leaves), len(names))
	}
}

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "wedge-ca-")
	defer os.RemoveAll(dir)
	ca, err := Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	leaf, err := ca.Issue([]string{"localhost", "127.0.0.1"}, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(leaf.Leaf.DNSNames, len(leaf.Leaf.IPAddresses), filepath.Base(ca.RootPath()))
	// Output: [localhost] 1 root.crt
}
