package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/certs/localca"
)

func TestManager_HTTPHandler(t *testing.T) {
	for _, tt := range []struct {
		name, host, target string
		tlsPort            int
		status             int
		location           string
	}{
		{"default port", "example.com", "/a/b?c=d", 0, 308, "https://example.com/a/b?c=d"},
		{"port 443", "example.com:80", "/", 443, 308, "https://example.com/"},
		{"other port", "example.com:8080", "/x", 8443, 308, "https://example.com:8443/x"},
		{"IPv6", "[::1]:80", "/", 8443, 308, "https://[::1]:8443/"},
		{"no host", "", "/", 0, 400, ""},
		{"bad host", "a/b", "/", 0, 400, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manager{cfg: Config{TLSPort: tt.tlsPort}}
			req := httptest.NewRequest("POST", "http://placeholder"+tt.target, strings.NewReader("body"))
			req.Host = tt.host
			rec := httptest.NewRecorder()
			m.HTTPHandler().ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("Location") != tt.location {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tt.status, tt.location)
			}
		})
	}
}

// writePair writes a certificate for names from ca, and its key, as PEM.
func writePair(t *testing.T, ca *localca.CA, dir string, names ...string) KeyPair {
	t.Helper()
	c, err := ca.Issue(names, 0)
	if err != nil {
		t.Fatal(err)
	}
	kp := KeyPair{Cert: filepath.Join(dir, names[0]+".crt"), Key: filepath.Join(dir, names[0]+".key")}
	key, err := marshalKey(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.Key, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestManager_Reload(t *testing.T) {
	dir := t.TempDir()
	ca, err := localca.Load(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	kp := writePair(t, ca, dir, "files.example", "*.files.example")
	m, err := New(Config{Files: []KeyPair{kp}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	serial := func(name string) string {
		t.Helper()
		c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return c.Leaf.SerialNumber.String()
	}
	before := serial("www.files.example")
	if serial("files.example") != before || serial("") != before {
		t.Error("the file certificate does not cover its names or the no-SNI default")
	}
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example"}); err == nil {
		t.Error("other.example got a certificate")
	}
	writePair(t, ca, dir, "files.example", "*.files.example") // renewed on disk
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if serial("files.example") == before {
		t.Error("Reload kept the old certificate")
	}
	after := serial("files.example")
	os.WriteFile(kp.Cert, []byte("garbage"), 0o644)
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), kp.Cert) {
		t.Errorf("Reload of a broken file: %v", err)
	}
	if serial("files.example") != after {
		t.Error("a failed Reload dropped the working certificate")
	}
}

func marshalKey(c *tls.Certificate) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
