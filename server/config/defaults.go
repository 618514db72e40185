package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Defaults that are not written in the field docs' own words.
const (
	defaultListen   = "127.0.0.1:8080"
	defaultUpstream = "127.0.0.1:8000"
	defaultPool     = "app"
)

// QuickMode builds the configuration of the command-line quick mode:
// listen is the --listen flags (host:port, default 127.0.0.1:8080), to the
// --to flags (host:port or "unix:/path.sock"; all of them make the one pool
// "app"; default 127.0.0.1:8000), admin the --admin flag ("" for none).
// Defaults are applied and the result validated; problems name the flag,
// e.g. `--listen: "8080" is not host:port, e.g. 127.0.0.1:8080`. It is
// Quick{Listen: listen, To: to, Admin: admin}.Config().
func QuickMode(listen []string, to []string, admin string) (*Config, error) {
	return Quick{Listen: listen, To: to, Admin: admin}.Config()
}

// Quick is the command line of quick mode, one field per flag.
type Quick struct {
	// Listen is --listen: client addresses, host:port. Default
	// 127.0.0.1:8080, or ":443" with Domains.
	Listen []string
	// To is --to: the upstream servers of the pool "app". Default
	// 127.0.0.1:8000.
	To []string
	// Admin is --admin: the admin address, "" for none.
	Admin string
	// Domains is --domain: names to get certificates for from the ACME CA.
	// With them every Listen address serves HTTPS (HTTP/1.1, HTTP/2 and
	// HTTP/3) and ":80" answers HTTP-01 challenges and redirects to HTTPS.
	Domains []string
	// Email is --email: the ACME account's contact.
	Email string
	// CA is --ca: the ACME directory URL. Default Let's Encrypt.
	CA string
}

// Config builds, defaults and validates the configuration q describes.
// Problems name the flag (--listen, --to, --admin, --domain, --email,
// --ca).
func (q Quick) Config() (*Config, error) {
	c := &Config{Admin: Admin{Address: q.Admin}}
	listen := q.Listen
	if len(listen) == 0 && len(q.Domains) > 0 {
		listen = []string{":443"}
	}
	for _, a := range listen {
		c.Listen = append(c.Listen, Listener{Address: a, TLS: len(q.Domains) > 0, HTTP3: len(q.Domains) > 0})
	}
	if len(q.To) > 0 {
		u := &Upstream{}
		for _, a := range q.To {
			u.Servers = append(u.Servers, UpstreamServer{Address: a})
		}
		c.Upstreams = map[string]*Upstream{defaultPool: u}
	}
	c.TLS.Domains, c.TLS.Email, c.TLS.CA = q.Domains, q.Email, q.CA
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			for i := range e.Problems {
				e.Problems[i].Path = flagName(e.Problems[i].Path)
			}
		}
		return nil, err
	}
	return c, nil
}

// flagName turns the path of a field QuickMode sets into its flag.
func flagName(path string) string {
	switch {
	case strings.HasPrefix(path, "listen"):
		return "--listen"
	case strings.HasPrefix(path, "upstreams."+defaultPool+".servers"):
		return "--to"
	case path == "admin.address":
		return "--admin"
	case strings.HasPrefix(path, "tls.domains"):
		return "--domain"
	case path == "tls.email":
		return "--email"
	case path == "tls.ca":
		return "--ca"
	}
	return path
}

// ApplyDefaults fills in every field left at its zero value with the
// default given in its doc comment. Fields a file set explicitly (recorded
// by Parse) keep their value even when it is 0; see the package doc. It
// never fails and may be called more than once; nil pools are left to
// Validate.
func (c *Config) ApplyDefaults() {
	if len(c.Listen) == 0 && !c.wrote("listen") {
		c.Listen = []Listener{{Address: defaultListen}}
	}
	if c.Log.Access == "" {
		c.Log.Access = "stdout"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.ServerName == "" {
		c.ServerName = "wedge"
	}
	c.tlsDefaults()

	l, p := &c.Limits, "limits."
	c.durDefault(&l.ClientHeaderTimeout, p+"client_header_timeout", 60*time.Second)
	if l.LargeClientHeaderBuffers == (HeaderBuffers{}) && !c.wrote(p+"large_client_header_buffers") {
		l.LargeClientHeaderBuffers = HeaderBuffers{Number: 4, Size: 8 * kib}
	}
	c.sizeDefault(&l.ClientBodyBufferSize, p+"client_body_buffer_size", 16*kib)
	c.durDefault(&l.ClientBodyTimeout, p+"client_body_timeout", 60*time.Second)
	c.sizeDefault(&l.ClientBodyMinRate, p+"client_body_min_rate", kib)
	c.sizeDefault(&l.ClientMaxBodySize, p+"client_max_body_size", mib)
	c.durDefault(&l.SendTimeout, p+"send_timeout", 60*time.Second)
	c.sizeDefault(&l.SendMinRate, p+"send_min_rate", kib)
	c.durDefault(&l.KeepaliveTimeout, p+"keepalive_timeout", 75*time.Second)
	c.intDefault(&l.KeepaliveRequests, p+"keepalive_requests", 1000)
	if l.MaxConnections == 0 {
		l.MaxConnections = 16384
	}
	c.sizeDefault(&l.ProxyBufferSize, p+"proxy_buffer_size", 256*kib)
	c.sizeDefault(&l.ProxyMaxTempFileSize, p+"proxy_max_temp_file_size", gib)
	c.durDefault(&l.ProxyConnectTimeout, p+"proxy_connect_timeout", 60*time.Second)
	c.durDefault(&l.ProxyReadTimeout, p+"proxy_read_timeout", 60*time.Second)
	c.durDefault(&l.ProxySendTimeout, p+"proxy_send_timeout", 60*time.Second)
	if l.TempPath == "" {
		l.TempPath = os.TempDir()
	}
	c.durDefault(&l.ShutdownTimeout, p+"shutdown_timeout", 30*time.Second)

	if len(c.Upstreams) == 0 && !c.wrote("upstreams") {
		c.Upstreams = map[string]*Upstream{defaultPool: {Servers: []UpstreamServer{{Address: defaultUpstream}}}}
	}
	for name, u := range c.Upstreams {
		if u == nil {
			continue
		}
		p := "upstreams." + name + "."
		if u.Balance == "" {
			u.Balance = "round_robin"
		}
		if u.Keepalive == 0 {
			u.Keepalive = 128
		}
		c.durDefault(&u.KeepaliveTimeout, p+"keepalive_timeout", 60*time.Second)
		c.durDefault(&u.QueueTimeout, p+"queue_timeout", 60*time.Second)
		if u.MaxQueue == 0 {
			u.MaxQueue = 1024
		}
		if u.Tries == 0 {
			u.Tries = len(u.Servers)
		}
		for i := range u.Servers {
			s, p := &u.Servers[i], index(p+"servers", i)+"."
			c.intDefault(&s.Weight, p+"weight", 1)
			c.intDefault(&s.MaxFails, p+"max_fails", 1)
			c.durDefault(&s.FailTimeout, p+"fail_timeout", 10*time.Second)
		}
	}
	if c.Plugins == nil && !c.wrote("plugins") && len(c.Upstreams) == 1 {
		for name := range c.Upstreams {
			c.Plugins = DefaultChain(name)
		}
	}
	for i := range c.Plugins {
		pl, p := &c.Plugins[i], index("plugins", i)+"."
		if pl.RootID == "" {
			pl.RootID = pl.Name
		}
		if pl.PoolSize == 0 {
			pl.PoolSize = runtime.GOMAXPROCS(0)
		}
		c.durDefault(&pl.CallbackTimeout, p+"callback_timeout", time.Second)
		c.durDefault(&pl.PauseTimeout, p+"pause_timeout", 60*time.Second)
		c.sizeDefault(&pl.MemoryLimit, p+"memory_limit", 128*mib)
	}
	if c.PluginCache == "" {
		c.PluginCache = defaultPluginCache()
	}
	c.sizeDefault(&c.Cache.MaxSize, "cache.max_size", 256*mib)
	c.sizeDefault(&c.Cache.MaxEntrySize, "cache.max_entry_size", 16*mib)
}

// wrote reports whether the file this Config was parsed from set path.
func (c *Config) wrote(path string) bool {
	return c.src != nil && c.src.set[path]
}

func (c *Config) durDefault(d *Duration, path string, def time.Duration) {
	if *d == 0 && !c.wrote(path) {
		*d = Duration(def)
	}
}

func (c *Config) sizeDefault(s *Size, path string, def Size) {
	if *s == 0 && !c.wrote(path) {
		*s = def
	}
}

func (c *Config) intDefault(n *int, path string, def int) {
	if *n == 0 && !c.wrote(path) {
		*n = def
	}
}

// defaultPluginCache is "wedge/wasm" under the user's cache directory, or
// "off" where there is none.
func defaultPluginCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "off"
	}
	return filepath.Join(dir, "wedge", "wasm")
}

// LetsEncrypt is the ACME directory tls.ca defaults to.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

func (c *Config) tlsDefaults() {
	t := &c.TLS
	if t.CA == "" {
		t.CA = LetsEncrypt
	}
	if len(t.Challenges) == 0 && !c.wrote("tls.challenges") {
		t.Challenges = []string{"http-01", "tls-alpn-01"}
	}
	if t.DataDir == "" && !c.wrote("tls.data_dir") {
		t.DataDir = defaultDataDir()
	}
	if od := t.OnDemand; od != nil {
		c.intDefault(&od.Burst, "tls.on_demand.burst", 10)
		c.durDefault(&od.Interval, "tls.on_demand.interval", time.Minute)
	}
	if t.RedirectHTTP == "" && !c.wrote("tls.redirect_http") {
		t.RedirectHTTP = "off"
		if len(t.Domains) > 0 || t.OnDemand != nil {
			t.RedirectHTTP = ":80"
		}
	}
	c.durDefault(&t.HandshakeTimeout, "tls.handshake_timeout", 10*time.Second)
}

// defaultDataDir is "wedge" under $XDG_DATA_HOME or ~/.local/share, or ""
// where there is no home directory.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "wedge")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "share", "wedge")
}
