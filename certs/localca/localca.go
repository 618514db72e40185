// Package localca is Wedge's local certificate authority: it certifies the
// names no public CA will, such as localhost, *.localhost, IP addresses and
// internal host names, like Caddy's `tls internal`. Its root is created
// once in a data directory; a client that trusts that root connects to
// Wedge over HTTPS without warnings.
//
// Only the standard library is used (crypto/x509, ECDSA P-256). Leaves are
// short-lived and issued on demand per server name, then renewed once two
// thirds of their lifetime has passed.
package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// File names of the root inside the data directory.
const (
	// RootCertFile is the root certificate, PEM; this is the file users
	// add to their trust store.
	RootCertFile = "root.crt"
	// RootKeyFile is the root's private key, PEM (PKCS #8), mode 0600.
	RootKeyFile = "root.key"
)

// RootLifetime is how long a new root is valid: 10 years.
const RootLifetime = 10 * 365 * 24 * time.Hour

// DefaultLeafLifetime is how long an issued leaf is valid: 12 hours, so a
// leaked leaf is useful for little time; it is renewed automatically.
const DefaultLeafLifetime = 12 * time.Hour

// ErrBadName is returned for a name the CA will not certify: empty, not a
// DNS name or IP address, or a wildcard anywhere but the first label.
var ErrBadName = errors.New("localca: not a host name or IP address")

// CA is a local certificate authority. It is safe for concurrent use.
type CA struct {
	dir  string
	root *x509.Certificate
	key  *ecdsa.PrivateKey
	// LeafLifetime is the lifetime of the leaves GetCertificate issues.
	// Zero means DefaultLeafLifetime.
	LeafLifetime time.Duration

	mu     sync.Mutex
	leaves map[string]*tls.Certificate // by server name
	now    func() time.Time            // tests
}

// Load returns the CA stored in dir, creating dir and a new root on first
// use. Errors name the file they concern.
func Load(dir string) (*CA, error) {
	ca := &CA{dir: dir, leaves: map[string]*tls.Certificate{}, now: time.Now}
	certPath, keyPath := filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		if err := ca.parse(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("loading local CA from %s: %w", dir, err)
		}
		return ca, nil
	case os.IsNotExist(cerr) && os.IsNotExist(kerr):
		if err := ca.create(certPath, keyPath); err != nil {
			return nil, fmt.Errorf("creating local CA in %s: %w", dir, err)
		}
		return ca, nil
	case cerr != nil && !os.IsNotExist(cerr):
		return nil, fmt.Errorf("reading %s: %w", certPath, cerr)
	case kerr != nil && !os.IsNotExist(kerr):
		return nil, fmt.Errorf("reading %s: %w", keyPath, kerr)
	}
	return nil, fmt.Errorf("loading local CA from %s: one of %s and %s is missing; remove the other to make a new root", dir, RootCertFile, RootKeyFile)
}

func (ca *CA) parse(certPEM, keyPEM []byte) error {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return fmt.Errorf("%s: no PEM certificate", RootCertFile)
	}
	root, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", RootCertFile, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return fmt.Errorf("%s: no PEM private key", RootKeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", RootKeyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(root.PublicKey) {
		return fmt.Errorf("%s does not hold the key of %s", RootKeyFile, RootCertFile)
	}
	if !root.IsCA {
		return fmt.Errorf("%s is not a CA certificate", RootCertFile)
	}
	ca.root, ca.key = root, key
	return nil
}

func (ca *CA) create(certPath, keyPath string) error {
	if err := os.MkdirAll(ca.dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Wedge Local CA " + now.UTC().Format("2006-01-02"), Organization: []string{"Wedge local CA"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key first, private from the start; the certificate last, so a
	// crash in between leaves a state Load reports instead of misreading.
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	ca.root, ca.key = root, key
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("localca: reading random bytes: " + err.Error())
	}
	return n
}

// Root returns the root certificate.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// RootPath returns the path of the root certificate file, the one to add
// to a trust store.
func (ca *CA) RootPath() string { return filepath.Join(ca.dir, RootCertFile) }

// Pool returns a certificate pool holding only the root, for clients and
// tests that trust this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

// TrustHint is a sentence for the log on how to trust the root.
func (ca *CA) TrustHint() string {
	return "local CA root is " + ca.RootPath() + "; to trust it on Debian: cp it to /usr/local/share/ca-certificates/wedge-local.crt && update-ca-certificates (browsers may keep their own store)"
}

// Issue signs a leaf certificate for names (DNS names, "*.name" wildcards
// or IP literals) valid for lifetime (zero: LeafLifetime). The result
// carries the chain leaf, root and is ready for tls.Config.
func (ca *CA) Issue(names []string, lifetime time.Duration) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, ErrBadName
	}
	if lifetime <= 0 {
		lifetime = ca.leafLifetime()
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(strings.Trim(n, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if !validName(n) {
			return nil, fmt.Errorf("%w: %q", ErrBadName, n)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(strings.TrimSuffix(n, ".")))
	}
	now := ca.now()
	tmpl.NotBefore = now.Add(-5 * time.Minute) // clock skew
	tmpl.NotAfter = now.Add(lifetime)
	if tmpl.NotAfter.After(ca.root.NotAfter) {
		tmpl.NotAfter = ca.root.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuing for %v: %w", names, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuing for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issuing for %v: %w", names, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.root.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func (ca *CA) leafLifetime() time.Duration {
	if ca.LeafLifetime > 0 {
		return ca.LeafLifetime
	}
	return DefaultLeafLifetime
}

// validName reports whether n is a DNS name (letters, digits, hyphens,
// underscores in dot-separated labels of 1-63 bytes), optionally with a
// "*." wildcard as its first label.
func validName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	n = strings.TrimPrefix(n, "*.")
	if n == "" || len(n) > 253 {
		return false
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// GetCertificate is a tls.Config.GetCertificate callback: it returns a leaf
// for the client's server name (or, without SNI, for the local address the
// client reached, so https://127.0.0.1/ works), issuing one on first use
// and again once two thirds of its lifetime has passed.
func (ca *CA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" && hello.Conn != nil {
		if host, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
			name = host
		}
	}
	if name == "" {
		return nil, fmt.Errorf("%w: the client sent no server name", ErrBadName)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.leaves[name]; c != nil {
		life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
		if ca.now().Before(c.Leaf.NotBefore.Add(life * 2 / 3)) {
			return c, nil
		}
	}
	c, err := ca.Issue([]string{name}, 0)
	if err != nil {
		return nil, err
	}
	ca.leaves[name] = c
	return c, nil
}
