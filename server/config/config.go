// Package config defines Wedge's configuration: the YAML schema, its
// defaults, quick-mode flags, loading with file:line errors, and validation.
//
// Load and Parse read a YAML file and QuickMode builds a configuration from
// the command-line flags; all three apply the defaults and validate, so a
// bad configuration is refused, with every problem at once as an *Error,
// before anything listens. Default is the embedded default configuration.
//
// # Defaults: absent is not zero
//
// A field absent from the YAML (or null) takes its default. A field written
// in the YAML is taken as written: "client_max_body_size: 0" means no limit,
// "max_fails: 0" turns passive health off, and "client_header_timeout: 0s"
// is an error rather than a silent 60s. Parse records which keys the file
// set, in the Config itself, so ApplyDefaults may be called again safely.
// A Config built in Go has no such record: there every zero field takes its
// default. Fields documented as "0 means the default" (max_connections,
// keepalive, max_queue, tries) take it even when written.
//
// # Paths
//
// Relative paths in a file (plugin paths, temp_path, a log.access file) are
// relative to the file's directory.
//
// # Environment variables
//
// Every scalar value, and every pool name, may refer to the environment as
// ${NAME} or ${NAME:-default} (the default is used when NAME is unset or
// empty, as in the shell); $${ is a literal ${. References are expanded in
// the parsed values, not in the raw text, so a value such as "[::1]:8080"
// or "a # b" stays one string, and references inside comments are ignored.
// An unset variable without a default is an error naming it and its line.
// A plain (unquoted) scalar is typed after expansion, so
// "max_conns: ${WORKERS}" is an integer. Inside a flow collection ({...} or
// [...]) quote a reference, since YAML reads its braces there.
package config

import (
	"time"
)

// Config is the whole configuration of one Wedge process, the root of the
// YAML file (see examples/wedge.yaml for every field with a comment).
type Config struct {
	// Listen lists the client-facing listeners. Default: one on
	// 127.0.0.1:8080.
	Listen []Listener `yaml:"listen"`
	// Admin is the admin listener (Prometheus metrics on /metrics).
	Admin Admin `yaml:"admin"`
	// TLS says where the certificates of the listeners with tls: true
	// come from (ACME, on-demand, files, a local CA) and how HTTPS is
	// served. See TLS.
	TLS TLS `yaml:"tls"`
	// Log sets the access and error logs.
	Log Log `yaml:"log"`
	// Limits holds the timeouts and sizes that protect the upstream, named
	// after their nginx directives.
	Limits Limits `yaml:"limits"`
	// Upstreams maps a pool name to its servers. Default: one pool named
	// "app" with the server 127.0.0.1:8000.
	Upstreams map[string]*Upstream `yaml:"upstreams"`
	// TrustedProxies lists the addresses or CIDR prefixes whose
	// X-Forwarded-* and Forwarded fields are believed. Others are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Plugins is the chain of proxy-wasm filters every request runs
	// through: request phases in this order, response phases in reverse.
	// Routing is a plugin's job (the built-in router sets wedge.upstream
	// or wedge.static): Wedge itself sends nowhere a request that no
	// plugin routed (502). Absent: the default chain, DefaultChain of the
	// only pool (with several pools it must be written). Written empty
	// ("plugins: []"): no plugins.
	Plugins []Plugin `yaml:"plugins"`
	// Cache is the response store of the built-in cache plugin (and of any
	// plugin using the wedge_cache_* host calls): its size, and whether
	// bodies live in memory or in files. The store is made once, with the
	// first configuration that has plugins; a reload keeps it (and its
	// entries), so changes to this section take effect at the next start.
	Cache Cache `yaml:"cache"`
	// PluginCache is the directory where compiled plugins are kept between
	// runs (wazero's compilation cache), so a restart does not compile
	// them again. Default: "wedge/wasm" under the user's cache directory;
	// "off" keeps compiled code in memory only.
	PluginCache string `yaml:"plugin_cache"`
	// ServerName is the pseudonym used in Via (RFC 9110 §7.6.3) and in
	// Wedge's own error pages. Default: "wedge".
	ServerName string `yaml:"server_name"`

	// File is the path the configuration was loaded from, "" for flags or
	// the embedded default. Not part of the YAML.
	File string `yaml:"-"`

	// src records what Parse saw: the line of each key and which keys the
	// file set. nil for a Config built in Go.
	src *source
}

// Cache sizes the response store behind the wedge_cache_* host calls
// (nginx's proxy_cache_path, whose names it follows).
type Cache struct {
	// MaxSize bounds the bytes stored, bodies plus header fields; past it
	// the least recently used entries are evicted (nginx
	// proxy_cache_path max_size). Default 256m.
	MaxSize Size `yaml:"max_size"`
	// MaxEntrySize is the largest response body stored, in bytes; larger
	// ones are served but not stored. At most max_size. Default 16m.
	MaxEntrySize Size `yaml:"max_entry_size"`
	// Path, when set, keeps stored bodies as files in this directory
	// (created if missing, emptied at start: the index lives in memory),
	// served with sendfile; only the fields stay in memory. Default ""
	// (bodies in memory).
	Path string `yaml:"path"`
}

// Listener is one client-facing address.
type Listener struct {
	// Address is host:port to listen on, e.g. "127.0.0.1:8080" or
	// "[::1]:8080".
	Address string `yaml:"address"`
	// TLS serves HTTPS on this address: TLS 1.2 and 1.3, HTTP/2 and
	// HTTP/1.1 by ALPN, certificates from the tls section. Default false
	// (cleartext HTTP/1.1, and HTTP/2 with prior knowledge).
	TLS bool `yaml:"tls"`
	// HTTP3 also serves HTTP/3 on the same port over UDP (QUIC), announced
	// by Alt-Svc on the TLS responses. Needs TLS. Default false.
	HTTP3 bool `yaml:"http3"`
}

// TLS is where certificates come from and how HTTPS is served (Caddy's
// automatic HTTPS, in nginx-like terms). Any mix of the sources may be
// used; a handshake takes, by server name, a certificate file that covers
// it, then a managed domain's, then the local CA's (localhost, IPs), then
// on-demand.
type TLS struct {
	// Domains are DNS names whose certificates are obtained from the ACME
	// CA at start, and renewed in the background. No wildcards (they need
	// the DNS-01 challenge) and no IP addresses.
	Domains []string `yaml:"domains"`
	// Email is the ACME account's contact address. Optional.
	Email string `yaml:"email"`
	// CA is the ACME directory URL (https). Default: Let's Encrypt,
	// https://acme-v02.api.letsencrypt.org/directory. ZeroSSL is
	// https://acme.zerossl.com/v2/DV90 (it needs eab).
	CA string `yaml:"ca"`
	// CARoot is a PEM file of the root certificates trusted for the ACME
	// server's own HTTPS, for a private CA. Default: the system roots.
	CARoot string `yaml:"ca_root"`
	// EAB is the External Account Binding (RFC 8555 §7.3.4) the CA gave
	// out. Default: none.
	EAB EAB `yaml:"eab"`
	// Challenges are the ACME challenge types offered: "http-01" (needs
	// redirect_http on port 80, or port 80 free), "tls-alpn-01" (answered
	// on the TLS listener, port 443). Default: both.
	Challenges []string `yaml:"challenges"`
	// DataDir holds ACME accounts, certificates, keys, OCSP staples and
	// the local CA. It is created when missing. Default: "wedge" under
	// $XDG_DATA_HOME, or ~/.local/share/wedge.
	DataDir string `yaml:"data_dir"`
	// OnDemand, when present, obtains a certificate at the first handshake
	// for any name its ask URL approves (for hosting customer domains).
	OnDemand *OnDemand `yaml:"on_demand"`
	// Certificates are certificate files, read again on SIGHUP.
	Certificates []Certificate `yaml:"certificates"`
	// LocalCA serves localhost, *.localhost and IP addresses with
	// certificates of a local CA whose root is written to
	// DATA_DIR/local-ca/root.crt (trust it to connect without warnings).
	// Default false.
	LocalCA bool `yaml:"local_ca"`
	// RedirectHTTP is the address of a cleartext listener that answers
	// ACME HTTP-01 challenges and redirects everything else to HTTPS with
	// 308. "off" turns it off. Default: ":80" when domains or on_demand
	// are set, else "off".
	RedirectHTTP string `yaml:"redirect_http"`
	// HSTS is the Strict-Transport-Security value added to HTTPS
	// responses (RFC 6797), e.g. "max-age=31536000; includeSubDomains".
	// Default: "" (none).
	HSTS string `yaml:"hsts"`
	// HandshakeTimeout bounds a TLS or QUIC handshake. Default 10s.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
}

// EAB is an ACME External Account Binding.
type EAB struct {
	// KeyID is the key identifier the CA gave out.
	KeyID string `yaml:"key_id"`
	// MACKey is the HMAC key the CA gave out, base64url.
	MACKey string `yaml:"mac_key"`
}

// OnDemand is the on-demand TLS policy (Caddy's on_demand_tls).
type OnDemand struct {
	// Ask is the URL asked before obtaining a certificate for a new name:
	// GET ask?domain=NAME, and a 2xx answer approves it. Required.
	Ask string `yaml:"ask"`
	// Burst is the most certificates obtained per Interval. Default 10.
	Burst int `yaml:"burst"`
	// Interval is the sliding window of Burst. Default 1m.
	Interval Duration `yaml:"interval"`
}

// Certificate is a certificate chain and key in PEM files, relative to the
// config file.
type Certificate struct {
	// Cert is the certificate chain file, leaf first.
	Cert string `yaml:"cert"`
	// Key is the private key file.
	Key string `yaml:"key"`
}

// Admin is the admin listener.
type Admin struct {
	// Address is host:port for /metrics (Prometheus). "" turns it off.
	Address string `yaml:"address"`
}

// Log sets where logs go.
type Log struct {
	// Access is where JSON access-log lines go: "stdout" (default),
	// "stderr", "off", or a file path (appended to).
	Access string `yaml:"access"`
	// Level is the error log's level: "debug", "info" (default), "warn",
	// "error". The error log goes to stderr as JSON lines.
	Level string `yaml:"level"`
}

// Limits are the per-connection and per-request bounds. Durations are YAML
// strings such as "60s" or "500ms"; sizes are bytes, written as an integer or
// with a suffix k, m, g (powers of 1024, as in nginx: "16k", "1m"). A
// duration or size written as 0 is an error unless its field says what 0
// means.
type Limits struct {
	// ClientHeaderTimeout bounds the time to receive a request's whole head
	// (request line and fields); past it the client gets 408. nginx
	// client_header_timeout. Default 60s.
	ClientHeaderTimeout Duration `yaml:"client_header_timeout"`
	// LargeClientHeaderBuffers bounds the head: no line may exceed Size
	// bytes (a longer request-target gets 414, a longer field 431) and the
	// whole head may not exceed Number*Size bytes (431). nginx
	// large_client_header_buffers, written "4 8k"; Size at least 1k,
	// Number*Size at most 1g. Default 4 x 8 KiB.
	LargeClientHeaderBuffers HeaderBuffers `yaml:"large_client_header_buffers"`
	// ClientBodyBufferSize is how many bytes of a request body are kept in
	// memory before the body spills to a temp file. nginx
	// client_body_buffer_size. Default 16k.
	ClientBodyBufferSize Size `yaml:"client_body_buffer_size"`
	// ClientBodyTimeout bounds the wait between two reads of the request
	// body; past it the client gets 408. nginx client_body_timeout.
	// Default 60s.
	ClientBodyTimeout Duration `yaml:"client_body_timeout"`
	// ClientBodyMinRate is the lowest average rate, in bytes per second, at
	// which a request body may arrive once ClientBodyTimeout has passed
	// since its first byte was expected; a slower client gets 408.
	// 0 turns it off. Default 1k.
	ClientBodyMinRate Size `yaml:"client_body_min_rate"`
	// ClientMaxBodySize is the largest request body, in bytes; a larger one
	// gets 413. 0 means no limit. nginx client_max_body_size. Default 1m.
	ClientMaxBodySize Size `yaml:"client_max_body_size"`
	// SendTimeout bounds the wait between two successful writes to the
	// client; past it the connection is closed. nginx send_timeout.
	// Default 60s.
	SendTimeout Duration `yaml:"send_timeout"`
	// SendMinRate is the lowest average rate, in bytes per second, at which
	// a client must read a response once SendTimeout has passed since the
	// write began; a slower client is disconnected. 0 turns it off.
	// Default 1k.
	SendMinRate Size `yaml:"send_min_rate"`
	// KeepaliveTimeout is how long an idle client connection stays open
	// between requests. nginx keepalive_timeout. Default 75s.
	KeepaliveTimeout Duration `yaml:"keepalive_timeout"`
	// KeepaliveRequests is the most requests served on one client
	// connection. nginx keepalive_requests. Default 1000.
	KeepaliveRequests int `yaml:"keepalive_requests"`
	// MaxConnections is the most client connections open at once; past it
	// new connections are closed at once. 0 (even written) means the
	// default, 16384.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP is the most client connections from one address
	// at once (nginx limit_conn by $binary_remote_addr); past it new ones
	// are closed at once. 0 means no per-address limit (default).
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// ProxyBufferSize is how many bytes of an upstream response are kept in
	// memory before the response spills to a temp file. Default 256k.
	ProxyBufferSize Size `yaml:"proxy_buffer_size"`
	// ProxyMaxTempFileSize is the most bytes of one response written to a
	// temp file; past it the rest is relayed to the client as it comes,
	// holding the upstream connection. 0 turns temp files off. nginx
	// proxy_max_temp_file_size. Default 1g.
	ProxyMaxTempFileSize Size `yaml:"proxy_max_temp_file_size"`
	// ProxyConnectTimeout bounds connecting to an upstream server; past it
	// the next server is tried, then 502 (504 when the last try timed out).
	// nginx proxy_connect_timeout. Default 60s.
	ProxyConnectTimeout Duration `yaml:"proxy_connect_timeout"`
	// ProxyReadTimeout bounds the wait between two reads from the upstream;
	// past it the client gets 504. nginx proxy_read_timeout. Default 60s.
	ProxyReadTimeout Duration `yaml:"proxy_read_timeout"`
	// ProxySendTimeout bounds the wait between two writes to the upstream.
	// nginx proxy_send_timeout. Default 60s.
	ProxySendTimeout Duration `yaml:"proxy_send_timeout"`
	// TempPath is the directory for request and response temp files. They
	// are unlinked as soon as they are created, so nothing is left behind.
	// It must exist. Default: the system temp directory (os.TempDir).
	TempPath string `yaml:"temp_path"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests
	// before closing what is left. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Upstream is a pool of upstream servers (nginx `upstream` block).
type Upstream struct {
	// Servers lists the pool's members. At least one; no address twice
	// (use Weight instead).
	Servers []UpstreamServer `yaml:"servers"`
	// Balance is "round_robin" (default) or "least_conn".
	Balance string `yaml:"balance"`
	// Keepalive is how many idle connections per server are kept open for
	// reuse. nginx keepalive. Default 128; 0 keeps the default, -1 turns
	// reuse off.
	Keepalive int `yaml:"keepalive"`
	// KeepaliveTimeout is how long an idle upstream connection is kept.
	// nginx keepalive_timeout in an upstream block. Default 60s.
	KeepaliveTimeout Duration `yaml:"keepalive_timeout"`
	// QueueTimeout bounds how long a request waits for a free slot when
	// every server is at max_conns; then the client gets 503 with
	// Retry-After. nginx queue ... timeout. Default 60s.
	QueueTimeout Duration `yaml:"queue_timeout"`
	// MaxQueue is the most requests waiting for a slot; past it the client
	// gets 503 at once. 0 (even written) means the default, 1024.
	MaxQueue int `yaml:"max_queue"`
	// Tries is the most servers tried for one idempotent request when a
	// connection cannot be made. nginx proxy_next_upstream_tries.
	// 0 means the default: every server once; ApplyDefaults sets it to
	// len(Servers).
	Tries int `yaml:"tries"`
}

// UpstreamServer is one member of a pool (nginx `server` in `upstream`).
type UpstreamServer struct {
	// Address is "host:port" for TCP or "unix:/path.sock" for a unix socket
	// (the path must be absolute).
	Address string `yaml:"address"`
	// Weight is the share of requests for round_robin, at least 1.
	// Default 1.
	Weight int `yaml:"weight"`
	// MaxConns is the most concurrent requests sent to this server; 0 means
	// no limit. nginx max_conns. For one-request-per-worker app servers set
	// it to the worker count.
	MaxConns int `yaml:"max_conns"`
	// MaxFails is how many failed attempts within FailTimeout mark the
	// server down for FailTimeout. 0 turns passive health off. nginx
	// max_fails. Default 1.
	MaxFails int `yaml:"max_fails"`
	// FailTimeout is both the window for counting failures and how long a
	// failed server is left out. nginx fail_timeout. Default 10s.
	FailTimeout Duration `yaml:"fail_timeout"`
}

// Plugin is one proxy-wasm (ABI v0.2.1) filter in the chain.
type Plugin struct {
	// Name identifies the plugin in logs, metrics and the plugin_name
	// property. Required, unique in the chain.
	Name string `yaml:"name"`
	// Path is the .wasm file, relative to the config file. Exactly one of
	// Path and Builtin.
	Path string `yaml:"path"`
	// Builtin names a plugin embedded in the wedge binary: "router",
	// "cache" or "compress" (Builtins).
	Builtin string `yaml:"builtin"`
	// Config is handed to the plugin's proxy_on_configure as its plugin
	// configuration, converted from YAML to JSON. Absent: empty.
	Config JSONValue `yaml:"config"`
	// VMConfig is handed to proxy_on_vm_start as the VM configuration,
	// converted from YAML to JSON. Absent: empty.
	VMConfig JSONValue `yaml:"vm_config"`
	// RootID is the plugin_root_id property. Default: Name.
	RootID string `yaml:"root_id"`
	// VMID is the plugin_vm_id property and the namespace of its shared
	// queues. Default: "".
	VMID string `yaml:"vm_id"`
	// PoolSize is how many VMs (instances) run the plugin. Default: the
	// number of CPUs.
	PoolSize int `yaml:"pool_size"`
	// CallbackTimeout bounds one callback into the plugin; a guest still
	// running then is stopped and its VM replaced. Default 1s.
	CallbackTimeout Duration `yaml:"callback_timeout"`
	// PauseTimeout bounds how long the plugin may hold a request paused
	// (e.g. waiting for proxy_http_call). Default 60s.
	PauseTimeout Duration `yaml:"pause_timeout"`
	// MemoryLimit caps each VM's linear memory, in bytes. Default 128m.
	MemoryLimit Size `yaml:"memory_limit"`
	// FailOpen skips the plugin for a request whose callback failed (trap,
	// timeout, memory cap) instead of failing the request with 500.
	// Default false (fail closed).
	FailOpen bool `yaml:"fail_open"`
}

// JSONValue is a YAML value carried as JSON text: the form proxy-wasm
// plugins conventionally receive their configuration in. Empty when
// absent.
type JSONValue []byte

// Duration is a time.Duration written in YAML as a Go duration string
// ("60s", "1m30s", "250ms"; see time.ParseDuration). A bare number such as
// 60 is refused ("durations need a unit, e.g. 60s"), except 0; so is a
// negative duration.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Size is a byte count written in YAML as an integer or with a k, m or g
// suffix (powers of 1024, as nginx; "KiB", "MiB", "GiB" are accepted too;
// suffixes are case-insensitive): 16384, "16k", "16KiB", "1m", "1g".
// Negative sizes, fractions and other units ("16kb") are refused.
type Size int64

// HeaderBuffers is nginx's large_client_header_buffers: Number buffers of
// Size bytes each, written in YAML as "NUMBER SIZE", e.g. "4 8k".
type HeaderBuffers struct {
	// Number is how many buffers, at least 1.
	Number int
	// Size is the bytes in each, at least 1k.
	Size Size
}
