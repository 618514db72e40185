package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Validate checks c after ApplyDefaults and returns nil or an *Error with
// every problem found, each with the file and line of the field when c came
// from Parse. It checks that addresses are host:port with ports 1-65535
// (unix:/abs/path for upstream servers only) and no listen address is
// taken twice or by admin; that pools have servers, names matching
// [a-z0-9_-]+ and a known balance; that several pools come with a plugin
// chain (to route among them); that each plugin has a path or a builtin;
// that temp_path is an existing directory; that trusted_proxies are
// IP addresses or CIDR prefixes; the log level; server_name is a token
// (RFC 9110 §5.6.2, as Via needs); and that sizes, counts and timeouts are
// in range. It reads the file system (stat) but changes nothing.
func (c *Config) Validate() error {
	v := &problems{file: c.File, src: c.src}
	c.validateListen(v)
	c.validateLog(v)
	c.validateLimits(v)
	c.validateUpstreams(v)
	c.validatePlugins(v)
	c.validateTLS(v)
	c.validateCache(v)
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			v.add(index("trusted_proxies", i), "%q is not an IP address or CIDR prefix, e.g. 10.0.0.0/8", p)
		}
	}
	if !isToken(c.ServerName) {
		v.add("server_name", "%q is not a token (letters, digits and !#$%%&'*+-.^_`|~)", c.ServerName)
	}
	return v.err()
}

// boundAddr is a listen address as the kernel sees it, for finding clashes.
type boundAddr struct {
	host string // "" for every interface
	port int
	path string // the field that holds it
}

func (a boundAddr) clashes(b boundAddr) bool {
	return a.port != 0 && a.port == b.port && (a.host == "" || b.host == "" || a.host == b.host)
}

func (c *Config) validateListen(v *problems) {
	if len(c.Listen) == 0 {
		v.add("listen", "at least one listener is required")
	}
	var bound []boundAddr
	check := func(path, addr string) {
		b, msg := parseListen(addr)
		if msg != "" {
			v.add(path, "%s", msg)
			return
		}
		b.path = path
		for _, o := range bound {
			if o.clashes(b) {
				v.add(path, "%q clashes with %s", addr, o.path)
				return
			}
		}
		bound = append(bound, b)
	}
	for i, l := range c.Listen {
		check(index("listen", i)+".address", l.Address)
	}
	if c.Admin.Address != "" {
		check("admin.address", c.Admin.Address)
	}
	if r := c.TLS.RedirectHTTP; r != "off" && c.TLS.active() {
		check("tls.redirect_http", r)
	}
}

// parseListen checks a listen address, host:port with an optional host.
func parseListen(addr string) (boundAddr, string) {
	if addr == "" {
		return boundAddr{}, "address is required, e.g. " + defaultListen
	}
	if strings.HasPrefix(addr, "unix:") {
		return boundAddr{}, fmt.Sprintf("%q: unix sockets are only for upstream servers", addr)
	}
	host, port, msg := splitHostPort(addr, true)
	if msg != "" {
		return boundAddr{}, msg
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = ""
	}
	return boundAddr{host: host, port: port}, ""
}

// splitHostPort checks host:port: the port 1-65535 (or 0, "any free port",
// when anyPort is set: listen addresses only), the host empty, an IP
// address or a host name. The host comes back lowercase, IPs canonical.
func splitHostPort(addr string, anyPort bool) (string, int, string) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Sprintf("%q is not host:port, e.g. %s", addr, defaultListen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 || (port == 0 && !anyPort) {
		return "", 0, fmt.Sprintf("%q: port %q is not in 1-65535", addr, portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.String(), port, ""
	}
	if host != "" && !isHostname(host) {
		return "", 0, fmt.Sprintf("%q: %q is not an IP address or host name", addr, host)
	}
	return strings.ToLower(host), port, ""
}

// isHostname reports whether s is made of DNS labels: letters, digits,
// hyphens and underscores, separated by dots.
func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (c *Config) validateLog(v *problems) {
	switch c.Log.Access {
	case "stdout", "stderr", "off":
	case "":
		v.add("log.access", `want "stdout", "stderr", "off" or a file path`)
	default:
		if msg := checkDir(filepath.Dir(c.Log.Access)); msg != "" {
			v.add("log.access", "directory of %q: %s", c.Log.Access, msg)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
}

func (c *Config) validateLimits(v *problems) {
	l, p := &c.Limits, "limits."
	for _, d := range []struct {
		name string
		d    Duration
	}{
		{"client_header_timeout", l.ClientHeaderTimeout},
		{"client_body_timeout", l.ClientBodyTimeout},
		{"send_timeout", l.SendTimeout},
		{"keepalive_timeout", l.KeepaliveTimeout},
		{"proxy_connect_timeout", l.ProxyConnectTimeout},
		{"proxy_read_timeout", l.ProxyReadTimeout},
		{"proxy_send_timeout", l.ProxySendTimeout},
		{"shutdown_timeout", l.ShutdownTimeout},
	} {
		positiveDuration(v, p+d.name, d.d)
	}
	hb := l.LargeClientHeaderBuffers
	if hb.Number < 1 {
		v.add(p+"large_client_header_buffers", "want at least 1 buffer, got %d", hb.Number)
	}
	if hb.Size < kib {
		v.add(p+"large_client_header_buffers", "buffer size must be at least 1k, got %s", hb.Size)
	}
	if hb.Number > 0 && hb.Size > gib/Size(hb.Number) {
		v.add(p+"large_client_header_buffers", "the whole head, NUMBER x SIZE, must be at most 1g, got %s", hb)
	}
	for _, s := range []struct {
		name     string
		s        Size
		zeroOkay bool
	}{
		{"client_body_buffer_size", l.ClientBodyBufferSize, false},
		{"client_body_min_rate", l.ClientBodyMinRate, true},
		{"client_max_body_size", l.ClientMaxBodySize, true},
		{"send_min_rate", l.SendMinRate, true},
		{"proxy_buffer_size", l.ProxyBufferSize, false},
		{"proxy_max_temp_file_size", l.ProxyMaxTempFileSize, true},
	} {
		switch {
		case s.s < 0:
			v.add(p+s.name, "must not be negative, got %d", s.s)
		case s.s == 0 && !s.zeroOkay:
			v.add(p+s.name, "must be greater than 0")
		}
	}
	if l.KeepaliveRequests < 1 {
		v.add(p+"keepalive_requests", "must be at least 1, got %d", l.KeepaliveRequests)
	}
	if l.MaxConnections < 0 {
		v.add(p+"max_connections", "must not be negative, got %d", l.MaxConnections)
	}
	if l.MaxConnectionsPerIP < 0 {
		v.add(p+"max_connections_per_ip", "must not be negative, got %d", l.MaxConnectionsPerIP)
	}
	if msg := checkDir(l.TempPath); msg != "" {
		v.add(p+"temp_path", "%s", msg)
	}
}

// validateCache checks the cache store's sizes and that its path, when
// set, is a directory or can be made one (its parent exists).
func (c *Config) validateCache(v *problems) {
	ca := &c.Cache
	if ca.MaxSize <= 0 {
		v.add("cache.max_size", "must be greater than 0, e.g. 256m, got %d", ca.MaxSize)
	}
	if ca.MaxEntrySize <= 0 || ca.MaxEntrySize > ca.MaxSize {
		v.add("cache.max_entry_size", "must be greater than 0 and at most max_size (%d), got %d", ca.MaxSize, ca.MaxEntrySize)
	}
	if ca.Path == "" {
		return
	}
	if fi, err := os.Stat(ca.Path); err == nil {
		if !fi.IsDir() {
			v.add("cache.path", "%q is not a directory", ca.Path)
		}
	} else if msg := checkDir(filepath.Dir(ca.Path)); msg != "" {
		v.add("cache.path", "%q cannot be made: %s", ca.Path, msg)
	}
}

func positiveDuration(v *problems, path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be greater than 0, e.g. 60s, got %s", d)
	}
}

// checkDir returns "" if dir is an existing directory, else why not.
func checkDir(dir string) string {
	if dir == "" {
		return "directory is required"
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist", dir)
	case err != nil:
		return fmt.Sprintf("checking %q: %v", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return fmt.Sprintf("%q is not a directory", dir)
	}
	return ""
}

func (c *Config) validateUpstreams(v *problems) {
	names := make([]string, 0, len(c.Upstreams))
	for name := range c.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		v.add("upstreams", "at least one pool is required")
	}
	for _, name := range names {
		u, p := c.Upstreams[name], "upstreams."+name
		if !isPoolName(name) {
			v.add(p, "pool name %q must match [a-z0-9_-]+", name)
		}
		if u == nil || len(u.Servers) == 0 {
			v.add(join(p, "servers"), "at least one server is required")
		}
		if u == nil {
			continue
		}
		if u.Balance != "round_robin" && u.Balance != "least_conn" {
			v.add(join(p, "balance"), "want round_robin or least_conn, got %q", u.Balance)
		}
		if u.Keepalive < -1 {
			v.add(join(p, "keepalive"), "want -1 (off), 0 (default 128) or more, got %d", u.Keepalive)
		}
		positiveDuration(v, join(p, "keepalive_timeout"), u.KeepaliveTimeout)
		positiveDuration(v, join(p, "queue_timeout"), u.QueueTimeout)
		if u.MaxQueue < 0 {
			v.add(join(p, "max_queue"), "must not be negative, got %d", u.MaxQueue)
		}
		if u.Tries < 0 {
			v.add(join(p, "tries"), "must not be negative, got %d", u.Tries)
		}
		seen := map[string]string{}
		for i, s := range u.Servers {
			sp := index(join(p, "servers"), i)
			if key, msg := parseUpstream(s.Address); msg != "" {
				v.add(sp+".address", "%s", msg)
			} else if first, dup := seen[key]; dup {
				v.add(sp+".address", "%q is already %s (use weight instead)", s.Address, first)
			} else {
				seen[key] = sp
			}
			if s.Weight < 1 {
				v.add(sp+".weight", "must be at least 1, got %d", s.Weight)
			}
			if s.MaxConns < 0 {
				v.add(sp+".max_conns", "must not be negative, got %d", s.MaxConns)
			}
			if s.MaxFails < 0 {
				v.add(sp+".max_fails", "must not be negative, got %d", s.MaxFails)
			}
			positiveDuration(v, sp+".fail_timeout", s.FailTimeout)
		}
	}
	if len(names) > 1 && len(c.Plugins) == 0 && !c.wrote("plugins") {
		v.addLine(v.lineOf("upstreams"), "plugins", fmt.Sprintf("with several pools (%s) a router must choose among them: "+
			"add plugins: [{name: router, builtin: router, config: {routes: [{path: /api/, upstream: %s}, {upstream: %s}]}}, "+
			"{name: cache, builtin: cache}, {name: compress, builtin: compress}] (see plugins/router/README.md)",
			strings.Join(names, ", "), names[0], names[len(names)-1]))
	}
}

// parseUpstream checks an upstream server address, host:port or
// unix:/abs/path, and returns a key that is equal for equal addresses.
func parseUpstream(addr string) (string, string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return "", fmt.Sprintf("%q: unix socket path must be absolute, e.g. unix:/run/app.sock", addr)
		}
		return "unix:" + filepath.Clean(path), ""
	}
	if addr == "" {
		return "", "address is required, e.g. " + defaultUpstream + " or unix:/run/app.sock"
	}
	host, port, msg := splitHostPort(addr, false)
	if msg != "" {
		return "", msg
	}
	if host == "" {
		return "", fmt.Sprintf("%q: want a host before the port, e.g. %s", addr, defaultUpstream)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), ""
}

func isPoolName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// validatePlugins checks the plugin chain: names present and unique, each
// .wasm file readable. The module itself is checked when it loads, before
// anything listens.
func (c *Config) validatePlugins(v *problems) {
	seen := map[string]int{}
	for i, pl := range c.Plugins {
		p := index("plugins", i)
		switch {
		case pl.Name == "":
			v.add(p+".name", "a plugin needs a name")
		case !isToken(pl.Name):
			v.add(p+".name", "%q is not a token (letters, digits and !#$%%&'*+-.^_`|~)", pl.Name)
		default:
			if j, dup := seen[pl.Name]; dup {
				v.add(p+".name", "%q is already the name of %s", pl.Name, index("plugins", j))
			}
			seen[pl.Name] = i
		}
		switch {
		case pl.Path == "" && pl.Builtin == "":
			v.add(p+".path", "a plugin needs path: to a .wasm file or builtin: (%s)", strings.Join(Builtins, ", "))
		case pl.Path != "" && pl.Builtin != "":
			v.add(p+".builtin", "path: and builtin: are exclusive: a plugin is a .wasm file or a built-in")
		case pl.Builtin != "":
			if !slices.Contains(Builtins, pl.Builtin) {
				v.add(p+".builtin", "%q is not a built-in plugin (%s)", pl.Builtin, strings.Join(Builtins, ", "))
			}
		}
		if pl.Path != "" {
			if st, err := os.Stat(pl.Path); err != nil {
				v.add(p+".path", "%v", err)
			} else if st.IsDir() {
				v.add(p+".path", "%q is a directory, not a .wasm file", pl.Path)
			}
		}
		if pl.PoolSize < 0 {
			v.add(p+".pool_size", "want 0 (default) or more, got %d", pl.PoolSize)
		}
		if pl.CallbackTimeout <= 0 {
			v.add(p+".callback_timeout", "want a positive duration")
		}
		if pl.PauseTimeout <= 0 {
			v.add(p+".pause_timeout", "want a positive duration")
		}
		if pl.MemoryLimit < 64*kib {
			v.add(p+".memory_limit", "want at least 64k (one wasm page), got %s", pl.MemoryLimit)
		}
	}
}
