package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// active reports whether any certificate source is set.
func (t *TLS) active() bool {
	return len(t.Domains) > 0 || t.OnDemand != nil || len(t.Certificates) > 0 || t.LocalCA
}

// ACME reports whether certificates come from an ACME CA (domains or
// on_demand).
func (t *TLS) ACME() bool { return len(t.Domains) > 0 || t.OnDemand != nil }

// validateTLS checks the tls section and the listeners' tls and http3
// flags: a TLS listener needs a certificate source and a source needs a
// TLS listener; domains are host names (no wildcard, no IP); email, ca,
// ask are well formed; ca_root and the certificate files load; eab is
// complete with a base64url key; challenges are known; on_demand has an
// ask URL and a rate limit; hsts starts with max-age.
func (c *Config) validateTLS(v *problems) {
	t, p := &c.TLS, "tls."
	tlsListeners := 0
	for i, l := range c.Listen {
		if l.TLS {
			tlsListeners++
			if !t.active() {
				v.add(index("listen", i)+".tls", "tls: true needs certificates: set tls.domains, tls.on_demand, tls.certificates or tls.local_ca")
			}
		}
		if l.HTTP3 && !l.TLS {
			v.add(index("listen", i)+".http3", "http3: true needs tls: true")
		}
	}
	if t.active() && tlsListeners == 0 {
		v.add("tls", "no listener has tls: true, e.g. listen: [{address: \":443\", tls: true}]")
	}
	seen := map[string]string{}
	for i, d := range t.Domains {
		dp := index(p+"domains", i)
		name := strings.ToLower(strings.TrimSuffix(d, "."))
		switch {
		case strings.HasPrefix(name, "*."):
			v.add(dp, "%q: wildcards need the DNS-01 challenge, which Wedge does not offer; use tls.on_demand or tls.certificates", d)
		case isIP(name):
			v.add(dp, "%q: an IP address; use tls.local_ca or tls.certificates", d)
		case !isHostname(name) || !strings.Contains(name, "."):
			if name == "localhost" {
				v.add(dp, "%q: no public CA certifies localhost; use tls.local_ca", d)
			} else {
				v.add(dp, "%q is not a fully qualified host name, e.g. example.com", d)
			}
		default:
			if first, dup := seen[name]; dup {
				v.add(dp, "%q is already %s", d, first)
			}
			seen[name] = dp
		}
	}
	if t.Email != "" {
		if a, err := mail.ParseAddress(t.Email); err != nil || a.Address != t.Email {
			v.add(p+"email", "%q is not an email address, e.g. ops@example.com", t.Email)
		}
	}
	if t.ACME() {
		if u, err := url.Parse(t.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			v.add(p+"ca", "%q is not an https URL of an ACME directory, e.g. %s", t.CA, LetsEncrypt)
		}
	}
	if t.CARoot != "" {
		if data, err := os.ReadFile(t.CARoot); err != nil {
			v.add(p+"ca_root", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
			v.add(p+"ca_root", "%q holds no PEM certificate", t.CARoot)
		}
	}
	switch e := t.EAB; {
	case e.KeyID == "" && e.MACKey == "":
	case e.KeyID == "" || e.MACKey == "":
		v.add(p+"eab", "both key_id and mac_key are required")
	default:
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e.MACKey, "=")); err != nil {
			v.add(p+"eab.mac_key", "not base64url (RFC 4648 §5): %v", err)
		}
	}
	if len(t.Challenges) == 0 {
		v.add(p+"challenges", "at least one of http-01, tls-alpn-01 is required")
	}
	seenCh := map[string]bool{}
	for i, ch := range t.Challenges {
		switch {
		case ch != "http-01" && ch != "tls-alpn-01":
			v.add(index(p+"challenges", i), "want http-01 or tls-alpn-01, got %q (dns-01 is not offered)", ch)
		case seenCh[ch]:
			v.add(index(p+"challenges", i), "%q is listed twice", ch)
		}
		seenCh[ch] = true
	}
	if (t.ACME() || t.LocalCA) && t.DataDir == "" {
		v.add(p+"data_dir", "a data directory is required (no home directory to default to)")
	}
	if od := t.OnDemand; od != nil {
		op := p + "on_demand"
		if od.Ask == "" {
			v.add(op, "on-demand TLS needs ask: a URL that approves each name (GET ask?domain=NAME answers 2xx), or any name pointed at this server gets a certificate")
		} else if u, err := url.Parse(od.Ask); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(op+".ask", "%q is not an http or https URL", od.Ask)
		}
		if od.Burst < 1 {
			v.add(op+".burst", "must be at least 1, got %d", od.Burst)
		}
		positiveDuration(v, op+".interval", od.Interval)
	}
	for i, cf := range t.Certificates {
		cp := index(p+"certificates", i)
		switch {
		case cf.Cert == "":
			v.add(cp+".cert", "a certificate file is required")
		case cf.Key == "":
			v.add(cp+".key", "a key file is required")
		default:
			if _, err := tls.LoadX509KeyPair(cf.Cert, cf.Key); err != nil {
				v.add(cp, "loading %s and %s: %v", cf.Cert, cf.Key, err)
			}
		}
	}
	if h := t.HSTS; h != "" {
		age, _, _ := strings.Cut(h, ";")
		n, ok := strings.CutPrefix(strings.TrimSpace(age), "max-age=")
		if _, err := strconv.ParseUint(n, 10, 63); !ok || err != nil {
			v.add(p+"hsts", "%q must start with max-age=SECONDS (RFC 6797 §6.1), e.g. max-age=31536000", h)
		}
	}
	positiveDuration(v, p+"handshake_timeout", t.HandshakeTimeout)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}
