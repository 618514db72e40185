// Package testacme runs an ACME CA on loopback for tests: Pebble
// (github.com/letsencrypt/pebble/v2) in-process, with a DNS server that
// answers 127.0.0.1 for every name, so no test talks to a public CA or
// resolver. Only tests import it.
//
// Pebble's validation authority connects to fixed ports for HTTP-01 and
// TLS-ALPN-01: HTTPPort and TLSPort, chosen free when the CA starts. The
// server under test listens on them.
package testacme

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Options shape the CA.
type Options struct {
	// Validity is the lifetime of issued certificates in seconds. 0: one
	// hour.
	Validity uint64
	// RequireEAB makes accounts need External Account Binding with the
	// key EABKeyID / EABMACKey.
	RequireEAB bool
}

// EAB key the CA knows (always registered; required with RequireEAB).
const EABKeyID = "wedge-test-kid"

// EABMACKey is the base64url HMAC key of EABKeyID.
var EABMACKey = base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// CA is a running Pebble.
type CA struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// ServerRoots trusts the CA's own HTTPS (for the ACME client).
	ServerRoots *x509.CertPool
	// ServerRootFile is ServerRoots' certificate as a PEM file.
	ServerRootFile string
	// IssuedRoots trusts the certificates it issues (for HTTPS clients).
	IssuedRoots *x509.CertPool
	// HTTPPort and TLSPort are where the CA's validation authority
	// connects, on 127.0.0.1, for HTTP-01 and TLS-ALPN-01.
	HTTPPort, TLSPort int
	// Store is Pebble's database (block a domain, look at orders).
	Store *db.MemoryStore
}

// Start runs a CA until the test ends.
func Start(t testing.TB, opt Options) *CA {
	t.Helper()
	// Pebble reads these at construction: no random validation delay, no
	// rejected nonces, so tests are quick and deterministic.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	validity := opt.Validity
	if validity == 0 {
		validity = 3600
	}
	c := &CA{HTTPPort: FreePort(t), TLSPort: FreePort(t), Store: db.NewMemoryStore()}
	lg := log.New(io.Discard, "", 0)
	if testing.Verbose() && os.Getenv("WEDGE_PEBBLE_LOG") == "1" {
		lg = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	pca := ca.New(lg, c.Store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {ValidityPeriod: validity}})
	pva := va.New(lg, c.HTTPPort, c.TLSPort, false, startDNS(t), c.Store)
	if err := c.Store.AddExternalAccountKeyByID(EABKeyID, EABMACKey); err != nil {
		t.Fatal(err)
	}
	pwfe := wfe.New(lg, c.Store, pva, pca, []string{"pebble.letsencrypt.org"}, false, opt.RequireEAB, 0, 0)
	srv := httptest.NewTLSServer(pwfe.Handler())
	t.Cleanup(srv.Close)
	c.DirectoryURL = srv.URL + wfe.DirectoryPath
	c.ServerRoots = x509.NewCertPool()
	c.ServerRoots.AddCert(srv.Certificate())
	c.ServerRootFile = filepath.Join(t.TempDir(), "pebble-server-root.pem")
	if err := os.WriteFile(c.ServerRootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	c.IssuedRoots = x509.NewCertPool()
	c.IssuedRoots.AddCert(pca.GetRootCert(0).Cert)
	return c
}

// FreePort returns a TCP port free on 127.0.0.1 now (and, very likely, its
// UDP twin).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDNS answers every A question with 127.0.0.1, over UDP and TCP, and
// nothing else (so the CA never tries ::1).
func startDNS(t testing.TB) string {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})
	// The same port over UDP and TCP (the resolver may use either): retry
	// when the TCP twin of a free UDP port is taken.
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tl, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if attempt < 10 {
				continue
			}
			t.Fatal(err)
		}
		udp := &dns.Server{PacketConn: pc, Handler: h}
		go udp.ActivateAndServe()
		t.Cleanup(func() { udp.Shutdown() })
		tcp := &dns.Server{Listener: tl, Handler: h}
		go tcp.ActivateAndServe()
		t.Cleanup(func() { tcp.Shutdown() })
		return pc.LocalAddr().String()
	}
}
