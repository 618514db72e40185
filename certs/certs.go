// Package certs gives Wedge's TLS listeners their certificates: from an
// ACME CA through certmagic (Let's Encrypt by default, or any ACME
// directory: ZeroSSL, a private CA, Pebble), from an ACME CA at the first
// handshake for names an ask URL approves (on-demand TLS), from PEM files,
// and from a local CA for localhost (certs/localca).
//
// A Manager holds them all. Its TLSConfig routes each handshake by server
// name (SNI): a file certificate that covers the name first, then the
// managed domains, then the local CA's names, then on-demand. Its
// HTTPHandler is for port 80: it answers ACME HTTP-01 challenges (RFC 8555
// §8.3) and redirects everything else to HTTPS with 308. TLS-ALPN-01
// challenges (RFC 8737) are answered by TLSConfig itself, on the TLS
// listener.
//
// Certificates live in a data directory (certmagic's file storage: ACME
// accounts, certificates, keys, OCSP staples; the local CA in its
// "local-ca" subdirectory), renew in the background, carry stapled OCSP
// responses, and are logged when obtained, renewed or failed. The metric
// wedge_tls_certificate_expiry_days{name} gives the days left on each.
//
// Only this package imports certmagic.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/certs/localca"
)

// Challenge names, as in RFC 8555 §8.3 and RFC 8737.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// LetsEncrypt is the ACME directory used when Config.CA is empty.
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// OnDemandTimeout bounds how long a handshake waits for an on-demand
// certificate to be obtained: long enough for a slow CA (a few seconds is
// usual), short enough that a failing one does not pile up handshakes.
const OnDemandTimeout = 90 * time.Second

// ErrNoCertificate is returned (and fails the handshake) for a server name
// no source covers.
var ErrNoCertificate = errors.New("no certificate for this server name")

// ErrOnDemandRefused wraps the reason an on-demand name was refused: the
// ask URL said no, or the rate limit was reached.
var ErrOnDemandRefused = errors.New("on-demand certificate refused")

// Config says where a Manager's certificates come from. The zero value
// provides nothing; set at least one of Domains, OnDemand, Files or
// LocalCA.
type Config struct {
	// Domains are DNS names (no wildcards, no IP addresses) whose
	// certificates are obtained from the ACME CA at start and renewed.
	Domains []string
	// Email is the ACME account's contact (RFC 8555 §7.3). Optional.
	Email string
	// CA is the ACME directory URL. "" means LetsEncrypt.
	CA string
	// CARoots are the roots trusted for the ACME server's own HTTPS (a
	// private CA, Pebble). Nil: the system roots.
	CARoots *x509.CertPool
	// EAB is the External Account Binding (RFC 8555 §7.3.4) some CAs
	// require (ZeroSSL, private CAs). Nil: none.
	EAB *EAB
	// Challenges lists the challenge types offered: ChallengeHTTP01,
	// ChallengeTLSALPN01. Empty: both.
	Challenges []string
	// DataDir is where accounts, certificates, keys, OCSP staples and the
	// local CA are kept. Required when anything but Files is used.
	DataDir string
	// OnDemand, when set, obtains certificates at the first handshake for
	// names its Ask URL approves.
	OnDemand *OnDemand
	// Files are certificates read from PEM files; Reload reads them again.
	Files []KeyPair
	// LocalCA serves localhost, *.localhost, IP addresses and handshakes
	// without a server name with certificates from a local CA kept in
	// DataDir/local-ca.
	LocalCA bool
	// HTTPPort is the port the CA reaches for HTTP-01 (where HTTPHandler
	// is served); 0 means 80. TLSPort is the port of the TLS listener,
	// for TLS-ALPN-01 and for redirects; 0 means 443.
	HTTPPort, TLSPort int
	// RenewCheckInterval is how often certificates are checked for
	// renewal. 0: certmagic's default (10 minutes).
	RenewCheckInterval time.Duration
	// RenewalWindowRatio is the share of a certificate's lifetime left
	// when it is renewed. 0: certmagic's default (1/3).
	RenewalWindowRatio float64
	// Logger receives issuance, renewal and failure lines, and
	// certmagic's own log (info as debug). Nil discards them.
	Logger *slog.Logger
}

// EAB is an ACME External Account Binding: the key identifier and the
// base64url HMAC key the CA gave out.
type EAB struct {
	KeyID, MACKey string
}

// OnDemand is the policy for certificates obtained at the first handshake,
// like Caddy's on_demand_tls.
type OnDemand struct {
	// Ask is the URL asked about each new name: GET Ask?domain=NAME; a 2xx
	// answer approves it, anything else refuses. Required.
	Ask string
	// Burst certificates at most are obtained per Interval (approved names
	// only). 0 means no limit.
	Burst    int
	Interval time.Duration
	// Client makes the ask requests. Nil: a client with a 10 s timeout.
	Client *http.Client
}

// KeyPair names a PEM certificate chain file and its private key file.
type KeyPair struct {
	Cert, Key string
}

// Manager provides certificates for TLS handshakes. Create it with New,
// call Start, Close it when done.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	cache    *certmagic.Cache
	managed  *certmagic.Config // Domains
	onDemand *certmagic.Config // nil without OnDemand
	issuer   *certmagic.ACMEIssuer
	local    *localca.CA
	domains  map[string]bool
	ask      *url.URL     // OnDemand.Ask, parsed once
	askHTTP  *http.Client // OnDemand.Client, or the default
	files    atomic.Pointer[[]tls.Certificate]
	ctx      context.Context
	cancel   context.CancelFunc

	mu       sync.Mutex
	obtained map[string]bool      // on-demand names obtained, for the metric
	approved map[string]time.Time // on-demand names approved within the interval
}

// New checks cfg, reads the certificate files, opens the local CA and
// prepares certmagic. Nothing is obtained before Start.
func New(cfg Config) (*Manager, error) {
	m := &Manager{cfg: cfg, log: cfg.Logger, domains: map[string]bool{}, obtained: map[string]bool{}, approved: map[string]time.Time{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Domains) == 0 && cfg.OnDemand == nil && len(cfg.Files) == 0 && !cfg.LocalCA {
		return nil, errors.New("configuring certificates: no domains, on-demand policy, files or local CA")
	}
	if cfg.DataDir == "" && (len(cfg.Domains) > 0 || cfg.OnDemand != nil || cfg.LocalCA) {
		return nil, errors.New("configuring certificates: a data directory is required")
	}
	for _, d := range cfg.Domains {
		m.domains[normalize(d)] = true
	}
	if err := m.Reload(); err != nil {
		return nil, err
	}
	if cfg.LocalCA {
		ca, err := localca.Load(filepath.Join(cfg.DataDir, "local-ca"))
		if err != nil {
			return nil, fmt.Errorf("configuring certificates: %w", err)
		}
		m.local = ca
		m.log.Info("local CA ready", "root", ca.RootPath(), "trust", ca.TrustHint())
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if len(cfg.Domains) > 0 || cfg.OnDemand != nil {
		if err := m.setUpACME(); err != nil {
			m.cancel()
			return nil, err
		}
	}
	return m, nil
}

func (m *Manager) setUpACME() error {
	cfg := m.cfg
	zl := zapToSlog(m.log)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			if m.onDemand != nil && !slices.ContainsFunc(c.Names, func(n string) bool { return m.domains[normalize(n)] }) {
				return m.onDemand, nil
			}
			return m.managed, nil
		},
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             zl,
	})
	storage := &certmagic.FileStorage{Path: cfg.DataDir}
	base := certmagic.Config{
		Storage:            storage,
		RenewalWindowRatio: cfg.RenewalWindowRatio,
		Logger:             zl,
		OnEvent:            m.onEvent,
	}
	if len(cfg.Domains) > 0 {
		base.DefaultServerName = normalize(cfg.Domains[0])
	}
	m.managed = certmagic.New(m.cache, base)
	issuer := certmagic.ACMEIssuer{
		CA:             cfg.CA,
		TrustedRoots:   cfg.CARoots,
		Email:          cfg.Email,
		Agreed:         true,
		AltHTTPPort:    cfg.HTTPPort,
		AltTLSALPNPort: cfg.TLSPort,
		Logger:         zl,
	}
	if issuer.CA == "" {
		issuer.CA = LetsEncrypt
	} else {
		issuer.TestCA = issuer.CA // never fall back to Let's Encrypt's staging CA
	}
	if cfg.EAB != nil {
		issuer.ExternalAccount = &acme.EAB{KeyID: cfg.EAB.KeyID, MACKey: cfg.EAB.MACKey}
	}
	if len(cfg.Challenges) > 0 {
		issuer.DisableHTTPChallenge = !slices.Contains(cfg.Challenges, ChallengeHTTP01)
		issuer.DisableTLSALPNChallenge = !slices.Contains(cfg.Challenges, ChallengeTLSALPN01)
		if issuer.DisableHTTPChallenge && issuer.DisableTLSALPNChallenge {
			return fmt.Errorf("configuring ACME: no known challenge in %v (want %s or %s)", cfg.Challenges, ChallengeHTTP01, ChallengeTLSALPN01)
		}
	}
	m.issuer = certmagic.NewACMEIssuer(m.managed, issuer)
	m.managed.Issuers = []certmagic.Issuer{m.issuer}
	if od := cfg.OnDemand; od != nil {
		if od.Ask == "" {
			return errors.New("configuring on-demand TLS: an ask URL is required")
		}
		ask, err := url.Parse(od.Ask)
		if err != nil {
			return fmt.Errorf("configuring on-demand TLS: %w", err)
		}
		m.ask, m.askHTTP = ask, od.Client
		if m.askHTTP == nil {
			m.askHTTP = &http.Client{Timeout: 10 * time.Second}
		}
		odBase := base
		odBase.DefaultServerName = ""
		odBase.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: m.decide}
		m.onDemand = certmagic.New(m.cache, odBase)
		m.onDemand.Issuers = []certmagic.Issuer{m.issuer}
	}
	return nil
}

// Start begins obtaining and renewing the managed domains' certificates in
// the background (certificates already in the data directory are loaded
// first). Handshakes for a domain fail until its certificate is there.
func (m *Manager) Start() error {
	if m.managed == nil || len(m.cfg.Domains) == 0 {
		return nil
	}
	if err := m.managed.ManageAsync(m.ctx, m.cfg.Domains); err != nil {
		return fmt.Errorf("managing certificates for %v: %w", m.cfg.Domains, err)
	}
	return nil
}

// Renew renews the managed certificate of name now, even if it is not due
// (force), waiting until it is done.
func (m *Manager) Renew(ctx context.Context, name string) error {
	if !m.domains[normalize(name)] {
		return fmt.Errorf("renewing %q: %w", name, ErrNoCertificate)
	}
	name = normalize(name)
	if err := m.managed.RenewCertSync(ctx, name, true); err != nil {
		return fmt.Errorf("renewing %q: %w", name, err)
	}
	// RenewCertSync stores the new certificate but leaves the cache alone:
	// cache it, then drop the old one, so every handshake finds one.
	fresh, err := m.managed.CacheManagedCertificate(ctx, name)
	if err != nil {
		return fmt.Errorf("renewing %q: loading the new certificate: %w", name, err)
	}
	var old []string
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Hash() != fresh.Hash() {
			old = append(old, c.Hash())
		}
	}
	m.cache.Remove(old)
	return nil
}

// Close stops renewals and on-demand issuance. It does not touch the data
// directory.
func (m *Manager) Close() {
	if m.cancel != nil {
		m.cancel()
	}
	if m.cache != nil {
		m.cache.Stop()
	}
}

// Reload reads the certificate files again (on SIGHUP). On error the
// previous certificates stay in use.
func (m *Manager) Reload() error {
	var certs []tls.Certificate
	for _, f := range m.cfg.Files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return fmt.Errorf("loading certificate %s: %w", f.Cert, err)
		}
		if c.Leaf == nil {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return fmt.Errorf("loading certificate %s: %w", f.Cert, err)
			}
		}
		certs = append(certs, c)
	}
	m.files.Store(&certs)
	return nil
}

// LocalCA returns the local CA, or nil when Config.LocalCA is off.
func (m *Manager) LocalCA() *localca.CA { return m.local }

// TLSConfig returns the server TLS configuration: TLS 1.2 and 1.3 with
// Go's defaults, ALPN h2, http/1.1 and acme-tls/1 (RFC 8737; a connection
// that negotiates it only answers a challenge), and GetCertificate.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1", acmeTLS1},
		GetCertificate: m.GetCertificate,
	}
}

const acmeTLS1 = "acme-tls/1"

// GetCertificate picks the certificate for a handshake: a TLS-ALPN-01
// challenge answer; else a file certificate covering the server name;
// a managed domain's; a local CA certificate for localhost, *.localhost,
// an IP address or no server name; an on-demand one. Otherwise it fails
// with ErrNoCertificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalize(hello.ServerName)
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1 {
		switch {
		case m.managed != nil && (m.domains[name] || m.onDemand == nil):
			return m.managed.GetCertificate(hello)
		case m.onDemand != nil:
			return m.onDemand.GetCertificate(hello)
		}
		return nil, fmt.Errorf("%w: %q (ACME challenge)", ErrNoCertificate, name)
	}
	files := *m.files.Load()
	for i := range files {
		if name != "" && files[i].Leaf.VerifyHostname(name) == nil {
			return &files[i], nil
		}
	}
	if m.domains[name] {
		return m.managed.GetCertificate(hello)
	}
	if m.local != nil && isLocal(name) {
		return m.local.GetCertificate(hello)
	}
	if name == "" {
		switch {
		case len(files) > 0:
			return &files[0], nil
		case m.managed != nil && len(m.domains) > 0:
			return m.managed.GetCertificate(hello)
		}
	}
	if m.onDemand != nil && name != "" {
		// certmagic obtains within the handshake and retries for as long as
		// its context lives: bound it, so a failing CA cannot hold
		// handshakes (and their goroutines) for days.
		ctx, cancel := context.WithTimeout(hello.Context(), OnDemandTimeout)
		defer cancel()
		return m.onDemand.GetCertificateWithContext(ctx, hello)
	}
	return nil, fmt.Errorf("%w: %q", ErrNoCertificate, name)
}

// isLocal reports whether the local CA serves name.
func isLocal(name string) bool {
	return name == "" || name == "localhost" || strings.HasSuffix(name, ".localhost") || net.ParseIP(name) != nil
}

func normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
}

// decide is certmagic's on-demand decision: the ask URL, then the rate
// limit.
func (m *Manager) decide(ctx context.Context, name string) error {
	od := m.cfg.OnDemand
	u := *m.ask
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOnDemandRefused, err)
	}
	resp, err := m.askHTTP.Do(req)
	if err != nil {
		m.log.Warn("on-demand TLS: ask failed", "name", name, "err", err)
		return fmt.Errorf("%w: asking %s: %v", ErrOnDemandRefused, od.Ask, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		m.log.Info("on-demand TLS: name refused by ask", "name", name, "status", resp.StatusCode)
		return fmt.Errorf("%w: %s answered %d for %q", ErrOnDemandRefused, od.Ask, resp.StatusCode, name)
	}
	if od.Burst <= 0 || od.Interval <= 0 {
		return nil
	}
	// A sliding window over the names approved: certmagic may ask again
	// about a name while obtaining it, or after a restart before loading
	// it from storage, and such a name does not count twice.
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for n, t := range m.approved {
		if now.Sub(t) >= od.Interval {
			delete(m.approved, n)
		}
	}
	if _, ok := m.approved[name]; ok {
		return nil
	}
	if len(m.approved) >= od.Burst {
		m.log.Warn("on-demand TLS: rate limit reached", "name", name, "burst", od.Burst, "interval", od.Interval.String())
		return fmt.Errorf("%w: rate limit of %d per %s reached", ErrOnDemandRefused, od.Burst, od.Interval)
	}
	m.approved[name] = now
	return nil
}

// onEvent turns certmagic's events into log lines.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		m.log.Info("obtaining certificate", "name", name, "renewal", renewal)
	case "cert_obtained":
		m.mu.Lock()
		m.obtained[name] = true
		m.mu.Unlock()
		msg := "certificate obtained"
		if renewal {
			msg = "certificate renewed"
		}
		m.log.Info(msg, "name", name, "issuer", data["issuer"])
	case "cert_failed":
		m.log.Error("obtaining certificate failed", "name", name, "renewal", renewal, "err", fmt.Sprint(data["error"]))
	case "cert_ocsp_revoked":
		m.log.Warn("certificate revoked (OCSP); replacing it", "name", fmt.Sprint(data["subjects"]))
	}
	return nil
}

var descExpiry = prometheus.NewDesc("wedge_tls_certificate_expiry_days",
	"Days until the certificate served for a name expires (negative once expired).", []string{"name"}, nil)

// Describe implements prometheus.Collector: the Manager exports
// wedge_tls_certificate_expiry_days{name}, the days until the certificate
// of each managed, on-demand or file name expires, read at scrape time.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) { ch <- descExpiry }

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	days := func(t time.Time) float64 { return t.Sub(now).Hours() / 24 }
	seen := map[string]bool{}
	emit := func(name string, notAfter time.Time) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue, days(notAfter), name)
	}
	for _, f := range *m.files.Load() {
		for _, n := range f.Leaf.DNSNames {
			emit(n, f.Leaf.NotAfter)
		}
	}
	if m.cache == nil {
		return
	}
	m.mu.Lock()
	names := make([]string, 0, len(m.domains)+len(m.obtained))
	for n := range m.domains {
		names = append(names, n)
	}
	for n := range m.obtained {
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	for _, n := range names {
		var latest time.Time
		for _, cert := range m.cache.AllMatchingCertificates(n) {
			if cert.Leaf != nil && cert.Leaf.NotAfter.After(latest) {
				latest = cert.Leaf.NotAfter
			}
		}
		if !latest.IsZero() {
			emit(n, latest)
		}
	}
}
