package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse_tls(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join("..", "..", "examples", "tls", "internal.example.com.crt"), filepath.Join("..", "..", "examples", "tls", "internal.example.com.key")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tlsListen = "listen:\n  - {address: \"127.0.0.1:8443\", tls: true, http3: true}\n"
	tests := []struct {
		name string
		yaml string
		want string // "" means valid
	}{
		{
			name: "domains",
			yaml: tlsListen + "tls:\n  domains: [example.com, www.example.com]\n  email: ops@example.com\n  redirect_http: \"127.0.0.1:8081\"\n",
		},
		{
			name: "files and local CA",
			yaml: tlsListen + "tls:\n  local_ca: true\n  certificates: [{cert: " + crt + ", key: " + key + "}]\n",
		},
		{
			name: "on-demand without ask",
			yaml: tlsListen + "tls:\n  on_demand: {burst: 5}\n",
			want: "wedge.yaml:4: tls.on_demand: on-demand TLS needs ask: a URL that approves each name (GET ask?domain=NAME answers 2xx), or any name pointed at this server gets a certificate",
		},
		{
			name: "on-demand bad ask and rate",
			yaml: tlsListen + "tls:\n  on_demand:\n    ask: ftp://x\n    burst: 0\n    interval: 0s\n",
			want: "wedge.yaml:5: tls.on_demand.ask: \"ftp://x\" is not an http or https URL\n" +
				"wedge.yaml:6: tls.on_demand.burst: must be at least 1, got 0\n" +
				"wedge.yaml:7: tls.on_demand.interval: must be greater than 0, e.g. 60s, got 0s",
		},
		{
			name: "bad names",
			yaml: tlsListen + "tls:\n  domains:\n    - \"*.example.com\"\n    - 10.0.0.1\n    - localhost\n    - a..b\n    - example.com\n    - Example.com.\n",
			want: "wedge.yaml:5: tls.domains[0]: \"*.example.com\": wildcards need the DNS-01 challenge, which Wedge does not offer; use tls.on_demand or tls.certificates\n" +
				"wedge.yaml:6: tls.domains[1]: \"10.0.0.1\": an IP address; use tls.local_ca or tls.certificates\n" +
				"wedge.yaml:7: tls.domains[2]: \"localhost\": no public CA certifies localhost; use tls.local_ca\n" +
				"wedge.yaml:8: tls.domains[3]: \"a..b\" is not a fully qualified host name, e.g. example.com\n" +
				"wedge.yaml:10: tls.domains[5]: \"Example.com.\" is already tls.domains[4]",
		},
		{
			name: "email ca eab challenges",
			yaml: tlsListen + "tls:\n  domains: [example.com]\n  email: \"ops at example\"\n  ca: http://acme.example/dir\n  eab: {key_id: kid}\n  challenges: [dns-01, http-01, http-01]\n",
			want: "wedge.yaml:5: tls.email: \"ops at example\" is not an email address, e.g. ops@example.com\n" +
				"wedge.yaml:6: tls.ca: \"http://acme.example/dir\" is not an https URL of an ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory\n" +
				"wedge.yaml:7: tls.eab: both key_id and mac_key are required\n" +
				"wedge.yaml:8: tls.challenges[0]: want http-01 or tls-alpn-01, got \"dns-01\" (dns-01 is not offered)\n" +
				"wedge.yaml:8: tls.challenges[2]: \"http-01\" is listed twice",
		},
		{
			name: "files",
			yaml: tlsListen + "tls:\n  ca_root: " + notPEM + "\n  certificates:\n    - {cert: " + crt + "}\n    - {cert: " + notPEM + ", key: " + key + "}\n",
			want: "wedge.yaml:4: tls.ca_root: \"" + notPEM + "\" holds no PEM certificate\n" +
				"wedge.yaml:6: tls.certificates[0].key: a key file is required\n" +
				"wedge.yaml:7: tls.certificates[1]: loading " + notPEM + " and " + key + ": tls: failed to find any PEM data in certificate input",
		},
		{
			name: "listener flags",
			yaml: "listen:\n  - {address: \"127.0.0.1:8443\", tls: true}\n  - {address: \"127.0.0.1:8080\", http3: true}\n",
			want: "wedge.yaml:2: listen[0].tls: tls: true needs certificates: set tls.domains, tls.on_demand, tls.certificates or tls.local_ca\n" +
				"wedge.yaml:3: listen[1].http3: http3: true needs tls: true",
		},
		{
			name: "source without listener",
			yaml: "tls:\n  local_ca: true\n",
			want: "wedge.yaml:1: tls: no listener has tls: true, e.g. listen: [{address: \":443\", tls: true}]",
		},
		{
			name: "redirect clash, hsts, timeout",
			yaml: tlsListen + "tls:\n  domains: [example.com]\n  redirect_http: \"127.0.0.1:8443\"\n  hsts: \"31536000\"\n  handshake_timeout: 0s\n",
			want: "wedge.yaml:5: tls.redirect_http: \"127.0.0.1:8443\" clashes with listen[0].address\n" +
				"wedge.yaml:6: tls.hsts: \"31536000\" must start with max-age=SECONDS (RFC 6797 §6.1), e.g. max-age=31536000\n" +
				"wedge.yaml:7: tls.handshake_timeout: must be greater than 0, e.g. 60s, got 0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", dir)
			c, err := Parse("wedge.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.TLS.DataDir != filepath.Join(dir, "wedge") || c.TLS.HandshakeTimeout.Std().Seconds() != 10 {
					t.Errorf("defaults: %+v", c.TLS)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || err.Error() != tt.want {
				t.Fatalf("got:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestQuick_Config(t *testing.T) {
	c, err := Quick{Domains: []string{"example.com"}, Email: "ops@example.com", To: []string{"127.0.0.1:8000"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 1 || c.Listen[0] != (Listener{Address: ":443", TLS: true, HTTP3: true}) {
		t.Errorf("listen %+v", c.Listen)
	}
	if c.TLS.RedirectHTTP != ":80" || c.TLS.CA != LetsEncrypt || c.TLS.Domains[0] != "example.com" {
		t.Errorf("tls %+v", c.TLS)
	}
	_, err = Quick{Domains: []string{"*.example.com"}, Email: "nobody"}.Config()
	want := "--domain: \"*.example.com\": wildcards need the DNS-01 challenge, which Wedge does not offer; use tls.on_demand or tls.certificates\n" +
		"--email: \"nobody\" is not an email address, e.g. ops@example.com"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
	c, err = Quick{}.Config()
	if err != nil || c.Listen[0].TLS || c.TLS.RedirectHTTP != "off" {
		t.Errorf("plain quick mode: %+v %v", c, err)
	}
}
