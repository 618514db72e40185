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
// e.g. `--listen: "8080" is not host:port, e.g. 127.0.0.1:8080`.
func QuickMode(listen []string, to []string, admin string) (*Config, error) {
	c := &Config{Admin: Admin{Address: admin}}
	for _, a := range listen {
		c.Listen = append(c.Listen, Listener{Address: a})
	}
	if len(to) > 0 {
		u := &Upstream{}
		for _, a := range to {
			u.Servers = append(u.Servers, UpstreamServer{Address: a})
		}
		c.Upstreams = map[string]*Upstream{defaultPool: u}
	}
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
	if c.DefaultUpstream == "" && len(c.Upstreams) == 1 {
		for name := range c.Upstreams {
			c.DefaultUpstream = name
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

	for i := range c.Static {
		s := &c.Static[i]
		if strings.HasPrefix(s.Prefix, "/") && !strings.HasSuffix(s.Prefix, "/") {
			s.Prefix += "/"
		}
		if s.Index == "" {
			s.Index = "index.html"
		}
	}
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
