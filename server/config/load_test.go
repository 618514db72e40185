package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest useful file, one pool; cases append to it.
const minimal = "upstreams:\n  app:\n    servers:\n      - address: 127.0.0.1:8000\n"

func TestParse_errors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the whole error, one problem per line
	}{
		// Decoding.
		{
			name: "bare duration",
			yaml: "limits:\n  client_body_timeout: 60\n",
			want: "wedge.yaml:2: limits.client_body_timeout: durations need a unit, e.g. 60s",
		},
		{
			name: "quoted bare duration",
			yaml: "limits:\n  send_timeout: \"60\"\n",
			want: "wedge.yaml:2: limits.send_timeout: durations need a unit, e.g. 60s",
		},
		{
			name: "bad duration",
			yaml: "limits:\n  proxy_read_timeout: soon\n",
			want: `wedge.yaml:2: limits.proxy_read_timeout: want a duration such as 60s, 500ms or 1m30s, got "soon"`,
		},
		{
			name: "negative duration",
			yaml: "upstreams:\n  app:\n    servers:\n      - address: 127.0.0.1:8000\n        fail_timeout: -5s\n",
			want: `wedge.yaml:5: upstreams.app.servers[0].fail_timeout: durations must not be negative, got "-5s"`,
		},
		{
			name: "size unit",
			yaml: "limits:\n  client_max_body_size: 16kb\n",
			want: `wedge.yaml:2: limits.client_max_body_size: want bytes as an integer or with a unit k, m or g (powers of 1024), e.g. 16k, got "16kb"`,
		},
		{
			name: "negative size",
			yaml: "limits:\n  proxy_buffer_size: -1\n",
			want: `wedge.yaml:2: limits.proxy_buffer_size: sizes must not be negative, got "-1"`,
		},
		{
			name: "header buffers",
			yaml: "limits:\n  large_client_header_buffers: 8k\n",
			want: `wedge.yaml:2: limits.large_client_header_buffers: want "NUMBER SIZE", e.g. "4 8k", got "8k"`,
		},
		{
			name: "cache sizes",
			yaml: "cache:\n  max_size: 0\n  max_entry_size: 1g\n",
			want: "wedge.yaml:2: cache.max_size: must be greater than 0, e.g. 256m, got 0\n" +
				"wedge.yaml:3: cache.max_entry_size: must be greater than 0 and at most max_size (0), got 1073741824",
		},
		{
			name: "cache path",
			yaml: "cache:\n  path: /nonexistent-wedge/cache\n",
			want: `wedge.yaml:2: cache.path: "/nonexistent-wedge/cache" cannot be made: "/nonexistent-wedge" does not exist`,
		},
		{
			name: "unknown field with suggestion",
			yaml: "limits:\n  client_body_timout: 60s\n",
			want: "wedge.yaml:2: limits.client_body_timout: unknown field (did you mean client_body_timeout?)",
		},
		{
			name: "unknown top-level field",
			yaml: "listne:\n  - address: 127.0.0.1:8080\nfrobnicate: 1\n",
			want: "wedge.yaml:1: listne: unknown field (did you mean listen?)\n" +
				"wedge.yaml:3: frobnicate: unknown field",
		},
		{
			name: "duplicate key",
			yaml: "server_name: a\nserver_name: b\n",
			want: "wedge.yaml:2: server_name: duplicate key (first at line 1)",
		},
		{
			name: "duplicate pool",
			yaml: minimal + "  app:\n    servers: [{address: 127.0.0.1:8001}]\n",
			want: "wedge.yaml:5: upstreams.app: duplicate key (first at line 2)",
		},
		{
			name: "list wanted",
			yaml: "listen: 127.0.0.1:8080\n",
			want: `wedge.yaml:1: listen: want a list, got "127.0.0.1:8080"`,
		},
		{
			name: "mapping wanted",
			yaml: "limits: [1]\n",
			want: "wedge.yaml:1: limits: want a mapping, got a list",
		},
		{
			name: "integer wanted",
			yaml: "limits:\n  keepalive_requests: lots\n  max_connections: 1.5\n",
			want: "wedge.yaml:2: limits.keepalive_requests: want an integer, got \"lots\"\n" +
				"wedge.yaml:3: limits.max_connections: want an integer, got \"1.5\"",
		},
		{
			name: "integer out of range",
			yaml: "limits:\n  max_connections: 99999999999999999999\n",
			want: `wedge.yaml:2: limits.max_connections: want an integer, got "99999999999999999999"`,
		},
		{
			name: "bool wanted",
			yaml: minimal + "plugins:\n  - name: r\n    builtin: router\n    fail_open: yes\n",
			want: `wedge.yaml:8: plugins[0].fail_open: want true or false, got "yes"`,
		},
		{
			name: "string wanted",
			yaml: "server_name: [a]\n",
			want: "wedge.yaml:1: server_name: want a string, got a list",
		},
		{
			name: "top level list",
			yaml: "- a\n",
			want: "wedge.yaml:1: want a mapping at the top level, got a list",
		},
		{
			name: "syntax",
			yaml: "listen: [\n",
			want: "wedge.yaml:1: did not find expected node content",
		},
		{
			name: "tab",
			yaml: "listen:\n\t- address: x\n",
			want: "wedge.yaml:2: found character that cannot start any token",
		},
		{
			name: "two documents",
			yaml: "server_name: a\n---\nserver_name: b\n",
			want: "wedge.yaml:2: want one YAML document, found a second",
		},
		{
			name: "unset variable",
			yaml: "listen:\n  - address: ${WEDGE_TEST_UNSET}\n",
			want: "wedge.yaml:2: listen[0].address: environment variable WEDGE_TEST_UNSET is not set (write ${WEDGE_TEST_UNSET:-default} to give a default)",
		},
		{
			name: "unset variable as pool name",
			yaml: "upstreams:\n  ${WEDGE_TEST_UNSET}:\n    servers: [{address: 127.0.0.1:8000}]\n",
			want: "wedge.yaml:2: upstreams: environment variable WEDGE_TEST_UNSET is not set (write ${WEDGE_TEST_UNSET:-default} to give a default)",
		},
		{
			name: "bad reference",
			yaml: "server_name: ${1X}\n",
			want: "wedge.yaml:1: server_name: bad environment reference ${1X}: want ${NAME} or ${NAME:-default}",
		},
		{
			name: "alias cycle",
			yaml: "listen: &l\n  - <<: *l\n",
			want: "wedge.yaml:2: listen[0]: alias *l refers to itself",
		},
		{
			name: "merge cycle",
			yaml: "limits: &l\n  <<: *l\n",
			want: "wedge.yaml:2: limits: alias *l refers to itself",
		},
		{
			name: "alias bomb",
			yaml: bomb(),
			want: "wedge.yaml:1: x: unknown field\n" +
				"wedge.yaml:2: limits.client_header_timeout: document too large: more than 65536 nodes with aliases expanded",
		},
		{
			name: "decode errors hide validation noise of the same field",
			yaml: "listen: 8080\nlimits:\n  client_header_timeout: 1\n",
			want: "wedge.yaml:1: listen: want a list, got \"8080\"\n" +
				"wedge.yaml:3: limits.client_header_timeout: durations need a unit, e.g. 60s",
		},

		// Validation.
		{
			name: "listen addresses",
			yaml: minimal + "listen:\n  - address: \"8080\"\n  - address: 127.0.0.1:x\n  - address: 127.0.0.1:70000\n" +
				"  - address: unix:/run/w.sock\n  - address: bad host:80\n  - {}\n",
			want: `wedge.yaml:6: listen[0].address: "8080" is not host:port, e.g. 127.0.0.1:8080` + "\n" +
				`wedge.yaml:7: listen[1].address: "127.0.0.1:x": port "x" is not in 1-65535` + "\n" +
				`wedge.yaml:8: listen[2].address: "127.0.0.1:70000": port "70000" is not in 1-65535` + "\n" +
				`wedge.yaml:9: listen[3].address: "unix:/run/w.sock": unix sockets are only for upstream servers` + "\n" +
				`wedge.yaml:10: listen[4].address: "bad host:80": "bad host" is not an IP address or host name` + "\n" +
				`wedge.yaml:11: listen[5].address: address is required, e.g. 127.0.0.1:8080`,
		},
		{
			name: "listen clashes",
			yaml: minimal + "listen:\n  - address: 127.0.0.1:8080\n  - address: 127.0.0.1:8080\n" +
				"  - address: \"[::]:9000\"\n  - address: localhost:9000\n  - address: \"[::1]:8080\"\n" +
				"admin:\n  address: LocalHost:9000\n",
			want: `wedge.yaml:7: listen[1].address: "127.0.0.1:8080" clashes with listen[0].address` + "\n" +
				`wedge.yaml:9: listen[3].address: "localhost:9000" clashes with listen[2].address` + "\n" +
				`wedge.yaml:12: admin.address: "LocalHost:9000" clashes with listen[2].address`,
		},
		{
			name: "empty listen",
			yaml: minimal + "listen: []\n",
			want: "wedge.yaml:5: listen: at least one listener is required",
		},
		{
			name: "pools",
			yaml: "upstreams:\n  App:\n    servers: []\n  b:\n    balance: random\n    keepalive: -2\n    max_queue: -1\n    tries: -1\n" +
				"    servers:\n      - address: unix:app.sock\n        weight: 0\n        max_conns: -1\n        max_fails: -1\n" +
				"      - address: :8000\n      - address: localhost:8001\n      - address: LOCALHOST:8001\n  c:\n",
			want: "wedge.yaml:1: plugins: with several pools (App, b, c) a router must choose among them: " +
				"add plugins: [{name: router, builtin: router, config: {routes: [{path: /api/, upstream: App}, {upstream: c}]}}, " +
				"{name: cache, builtin: cache}, {name: compress, builtin: compress}] (see plugins/router/README.md)\n" +
				`wedge.yaml:2: upstreams.App: pool name "App" must match [a-z0-9_-]+` + "\n" +
				"wedge.yaml:3: upstreams.App.servers: at least one server is required\n" +
				`wedge.yaml:5: upstreams.b.balance: want round_robin or least_conn, got "random"` + "\n" +
				"wedge.yaml:6: upstreams.b.keepalive: want -1 (off), 0 (default 128) or more, got -2\n" +
				"wedge.yaml:7: upstreams.b.max_queue: must not be negative, got -1\n" +
				"wedge.yaml:8: upstreams.b.tries: must not be negative, got -1\n" +
				`wedge.yaml:10: upstreams.b.servers[0].address: "unix:app.sock": unix socket path must be absolute, e.g. unix:/run/app.sock` + "\n" +
				"wedge.yaml:11: upstreams.b.servers[0].weight: must be at least 1, got 0\n" +
				"wedge.yaml:12: upstreams.b.servers[0].max_conns: must not be negative, got -1\n" +
				"wedge.yaml:13: upstreams.b.servers[0].max_fails: must not be negative, got -1\n" +
				`wedge.yaml:14: upstreams.b.servers[1].address: ":8000": want a host before the port, e.g. 127.0.0.1:8000` + "\n" +
				`wedge.yaml:16: upstreams.b.servers[3].address: "LOCALHOST:8001" is already upstreams.b.servers[2] (use weight instead)` + "\n" +
				"wedge.yaml:17: upstreams.c.servers: at least one server is required",
		},
		{
			name: "no pools",
			yaml: "upstreams: {}\n",
			want: "wedge.yaml:1: upstreams: at least one pool is required",
		},
		{
			name: "removed top-level fields",
			yaml: minimal + "default_upstream: app\nstatic:\n  - prefix: /s/\n    root: .\n",
			want: "wedge.yaml:5: default_upstream: no longer a field: " + removedFields["default_upstream"] + "\n" +
				"wedge.yaml:6: static: no longer a field: " + removedFields["static"],
		},
		{
			name: "plugins: path or builtin",
			yaml: minimal + "plugins:\n  - name: a\n  - name: b\n    builtin: router\n    path: config.go\n  - name: c\n    builtin: gzip\n",
			want: "wedge.yaml:6: plugins[0].path: a plugin needs path: to a .wasm file or builtin: (router, cache, compress)\n" +
				"wedge.yaml:8: plugins[1].builtin: path: and builtin: are exclusive: a plugin is a .wasm file or a built-in\n" +
				`wedge.yaml:11: plugins[2].builtin: "gzip" is not a built-in plugin (router, cache, compress)`,
		},
		{
			name: "explicit zeros that mean nothing",
			yaml: minimal + "        weight: 0\n        fail_timeout: 0s\n    queue_timeout: 0s\n" +
				"limits:\n  client_header_timeout: 0s\n  client_body_buffer_size: 0\n  keepalive_requests: 0\n" +
				"  large_client_header_buffers: 0 512\n",
			want: "wedge.yaml:5: upstreams.app.servers[0].weight: must be at least 1, got 0\n" +
				"wedge.yaml:6: upstreams.app.servers[0].fail_timeout: must be greater than 0, e.g. 60s, got 0s\n" +
				"wedge.yaml:7: upstreams.app.queue_timeout: must be greater than 0, e.g. 60s, got 0s\n" +
				"wedge.yaml:9: limits.client_header_timeout: must be greater than 0, e.g. 60s, got 0s\n" +
				"wedge.yaml:10: limits.client_body_buffer_size: must be greater than 0\n" +
				"wedge.yaml:11: limits.keepalive_requests: must be at least 1, got 0\n" +
				"wedge.yaml:12: limits.large_client_header_buffers: want at least 1 buffer, got 0\n" +
				"wedge.yaml:12: limits.large_client_header_buffers: buffer size must be at least 1k, got 512",
		},
		{
			name: "limits",
			yaml: minimal + "limits:\n  max_connections_per_ip: -1\n  temp_path: nowhere\n  large_client_header_buffers: 1025 1m\n",
			want: "wedge.yaml:6: limits.max_connections_per_ip: must not be negative, got -1\n" +
				`wedge.yaml:7: limits.temp_path: "nowhere" does not exist` + "\n" +
				"wedge.yaml:8: limits.large_client_header_buffers: the whole head, NUMBER x SIZE, must be at most 1g, got 1025 1m",
		},
		{
			name: "trusted proxies, log, server name",
			yaml: minimal + "trusted_proxies: [10.0.0.0/33, proxy, 10.0.0.1]\nlog:\n  level: loud\n  access: nowhere/access.log\n" +
				"server_name: wedge proxy\n",
			want: `wedge.yaml:5: trusted_proxies[0]: "10.0.0.0/33" is not an IP address or CIDR prefix, e.g. 10.0.0.0/8` + "\n" +
				`wedge.yaml:5: trusted_proxies[1]: "proxy" is not an IP address or CIDR prefix, e.g. 10.0.0.0/8` + "\n" +
				`wedge.yaml:7: log.level: want debug, info, warn or error, got "loud"` + "\n" +
				`wedge.yaml:8: log.access: directory of "nowhere/access.log": "nowhere" does not exist` + "\n" +
				"wedge.yaml:9: server_name: \"wedge proxy\" is not a token (letters, digits and !#$%&'*+-.^_`|~)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("wedge.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; got %+v", c)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T, want *Error: %v", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// bomb returns a "billion laughs" document whose aliases expand to 10^9
// nodes, used where the schema wants a duration.
func bomb() string {
	var b strings.Builder
	b.WriteString("x:\n  a0: &a0 {client_header_timeout: 1s}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d {<<: [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("limits: {<<: [*a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8]}\n")
	return b.String()
}

func TestParse_defaults(t *testing.T) {
	c, err := Parse("wedge.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen: []Listener{{Address: "127.0.0.1:8080"}},
		Log:    Log{Access: "stdout", Level: "info"},
		TLS: TLS{
			CA:               LetsEncrypt,
			Challenges:       []string{"http-01", "tls-alpn-01"},
			DataDir:          defaultDataDir(),
			RedirectHTTP:     "off",
			HandshakeTimeout: Duration(10 * time.Second),
		},
		Limits: Limits{
			ClientHeaderTimeout:      Duration(60 * time.Second),
			LargeClientHeaderBuffers: HeaderBuffers{Number: 4, Size: 8 << 10},
			ClientBodyBufferSize:     16 << 10,
			ClientBodyTimeout:        Duration(60 * time.Second),
			ClientBodyMinRate:        1 << 10,
			ClientMaxBodySize:        1 << 20,
			SendTimeout:              Duration(60 * time.Second),
			SendMinRate:              1 << 10,
			KeepaliveTimeout:         Duration(75 * time.Second),
			KeepaliveRequests:        1000,
			MaxConnections:           16384,
			ProxyBufferSize:          256 << 10,
			ProxyMaxTempFileSize:     1 << 30,
			ProxyConnectTimeout:      Duration(60 * time.Second),
			ProxyReadTimeout:         Duration(60 * time.Second),
			ProxySendTimeout:         Duration(60 * time.Second),
			TempPath:                 os.TempDir(),
			ShutdownTimeout:          Duration(30 * time.Second),
		},
		Upstreams: map[string]*Upstream{"app": {
			Servers: []UpstreamServer{{
				Address: "127.0.0.1:8000", Weight: 1, MaxFails: 1, FailTimeout: Duration(10 * time.Second),
			}},
			Balance:          "round_robin",
			Keepalive:        128,
			KeepaliveTimeout: Duration(60 * time.Second),
			QueueTimeout:     Duration(60 * time.Second),
			MaxQueue:         1024,
			Tries:            1,
		}},
		Plugins:     defaultChainWithDefaults("app"),
		Cache:       Cache{MaxSize: 256 << 20, MaxEntrySize: 16 << 20},
		ServerName:  "wedge",
		File:        "wedge.yaml",
		PluginCache: defaultPluginCache(),
	}
	c.src = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}

	// The embedded default and a Config built in Go get the same values.
	d := Default()
	d.src = nil
	want.File = ""
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Default() = %+v\nwant %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	var g Config
	g.ApplyDefaults()
	if !reflect.DeepEqual(&g, want) {
		t.Errorf("Config{}.ApplyDefaults() = %+v\nwant %+v", &g, want)
	}
}

func TestParse_explicitZero(t *testing.T) {
	c, err := Parse("wedge.yaml", []byte(minimal+"        max_fails: 0\n        max_conns: 0\n"+
		"    keepalive: 0\n    max_queue: 0\n"+
		"limits:\n  client_max_body_size: 0\n  client_body_min_rate: 0\n  send_min_rate: 0\n"+
		"  proxy_max_temp_file_size: 0\n  max_connections: 0\n  proxy_buffer_size: ~\n  client_body_timeout: null\n"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(c *Config) {
		t.Helper()
		l, u := c.Limits, c.Upstreams["app"]
		for name, got := range map[string]int64{
			"client_max_body_size": int64(l.ClientMaxBodySize), "client_body_min_rate": int64(l.ClientBodyMinRate),
			"send_min_rate": int64(l.SendMinRate), "proxy_max_temp_file_size": int64(l.ProxyMaxTempFileSize),
			"max_fails": int64(u.Servers[0].MaxFails), "max_conns": int64(u.Servers[0].MaxConns),
		} {
			if got != 0 {
				t.Errorf("%s = %d, want the 0 written", name, got)
			}
		}
		// "0 means the default" fields, and null ones, take the default.
		if l.MaxConnections != 16384 || u.Keepalive != 128 || u.MaxQueue != 1024 {
			t.Errorf("max_connections %d, keepalive %d, max_queue %d: want the defaults", l.MaxConnections, u.Keepalive, u.MaxQueue)
		}
		if l.ProxyBufferSize != 256<<10 || l.ClientBodyTimeout != Duration(60*time.Second) {
			t.Errorf("null values: proxy_buffer_size %v, client_body_timeout %v: want the defaults", l.ProxyBufferSize, l.ClientBodyTimeout)
		}
	}
	check(c)
	c.ApplyDefaults() // again: the record of what the file set survives
	check(c)
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
}

func TestParse_good(t *testing.T) {
	abs, err := filepath.Abs(filepath.Join("..", "..", "examples", "plugins", "add_header.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		file  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "sizes and durations",
			yaml: minimal + "limits:\n  client_body_buffer_size: 16384\n  client_max_body_size: 16KiB\n" +
				"  proxy_buffer_size: 0x1000\n  proxy_max_temp_file_size: 2G\n  client_header_timeout: 1m30s\n" +
				"  large_client_header_buffers: \"8  16k\"\n",
			check: func(t *testing.T, c *Config) {
				l := c.Limits
				if l.ClientBodyBufferSize != 16384 || l.ClientMaxBodySize != 16384 || l.ProxyBufferSize != 4096 ||
					l.ProxyMaxTempFileSize != 2<<30 || l.ClientHeaderTimeout.Std() != 90*time.Second ||
					l.LargeClientHeaderBuffers != (HeaderBuffers{8, 16 << 10}) {
					t.Errorf("got %+v", l)
				}
			},
		},
		{
			name: "environment",
			env: map[string]string{
				"WEDGE_TEST_LISTEN": "[::1]:9000", "WEDGE_TEST_WORKERS": "4", "WEDGE_TEST_EMPTY": "",
				"WEDGE_TEST_POOL": "api", "WEDGE_TEST_HASH": "a # b",
			},
			yaml: "listen:\n  - address: ${WEDGE_TEST_LISTEN}\n  - address: \"${WEDGE_TEST_UNSET:-127.0.0.1:9001}\"\n" +
				"# a comment may say ${WEDGE_TEST_UNSET}\n" +
				"upstreams:\n  ${WEDGE_TEST_POOL}:\n    servers:\n      - address: ${WEDGE_TEST_EMPTY:-127.0.0.1:8000}\n" +
				"        max_conns: ${WEDGE_TEST_WORKERS}\n        weight: ${WEDGE_TEST_UNSET:-}\n" +
				"log:\n  access: $${WEDGE_TEST_LISTEN}\nplugins:\n  - name: r\n    builtin: router\n    vm_id: ${WEDGE_TEST_HASH}\n",
			check: func(t *testing.T, c *Config) {
				if c.Listen[0].Address != "[::1]:9000" || c.Listen[1].Address != "127.0.0.1:9001" {
					t.Errorf("listen %+v", c.Listen)
				}
				s := c.Upstreams["api"].Servers[0]
				if s.Address != "127.0.0.1:8000" || s.MaxConns != 4 || s.Weight != 1 {
					t.Errorf("server %+v", s)
				}
				if c.Log.Access != "${WEDGE_TEST_LISTEN}" || c.Plugins[0].VMID != "a # b" {
					t.Errorf("log.access %q, plugins[0].vm_id %q", c.Log.Access, c.Plugins[0].VMID)
				}
			},
		},
		{
			name: "environment in a plugin's config",
			env:  map[string]string{"WEDGE_TEST_LEVEL": "4", "WEDGE_TEST_TYPE": "text/html"},
			yaml: minimal + "plugins:\n  - name: c\n    builtin: compress\n    config:\n" +
				"      levels:\n        gzip: ${WEDGE_TEST_LEVEL}\n        br: \"${WEDGE_TEST_LEVEL}\"\n" +
				"      types: [\"${WEDGE_TEST_TYPE}\", \"${WEDGE_TEST_NONE:-text/css}\"]\n      x: &a\n        y: ${WEDGE_TEST_LEVEL}\n      z: *a\n",
			check: func(t *testing.T, c *Config) {
				want := `{"levels":{"br":"4","gzip":4},"types":["text/html","text/css"],"x":{"y":4},"z":{"y":4}}`
				if got := string(c.Plugins[0].Config); got != want {
					t.Errorf("config %s, want %s", got, want)
				}
			},
		},
		{
			name: "merge keys and several pools",
			yaml: "upstreams:\n  app: &pool\n    balance: least_conn\n    max_queue: 10\n    servers: [{address: 127.0.0.1:8000}]\n" +
				"  api:\n    <<: *pool\n    servers: [{address: \"unix:/run/api.sock\", weight: 3}]\n" +
				"plugins: [{name: router, builtin: router, config: {routes: [{upstream: api}]}}]\n",
			check: func(t *testing.T, c *Config) {
				a := c.Upstreams["api"]
				if a.Balance != "least_conn" || a.MaxQueue != 10 || len(a.Servers) != 1 ||
					a.Servers[0] != (UpstreamServer{Address: "unix:/run/api.sock", Weight: 3, MaxFails: 1, FailTimeout: Duration(10 * time.Second)}) {
					t.Errorf("api %+v", a)
				}
				if string(c.Plugins[0].Config) != `{"routes":[{"upstream":"api"}]}` || c.Upstreams["app"].Servers[0].Address != "127.0.0.1:8000" {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "relative paths follow the file",
			file: filepath.Join("..", "..", "examples", "x.yaml"),
			yaml: minimal + "plugins:\n  - name: p\n    path: plugins/add_header.wasm\n  - name: q\n    path: " + abs + "\n" +
				"log:\n  access: public/access.log\nlimits:\n  temp_path: public\n",
			check: func(t *testing.T, c *Config) {
				pub := filepath.Join("..", "..", "examples", "public")
				if p := c.Plugins[0].Path; p != filepath.Join("..", "..", "examples", "plugins", "add_header.wasm") {
					t.Errorf("plugins[0].path %q", p)
				}
				if c.Plugins[1].Path != abs {
					t.Errorf("plugins[1].path %q", c.Plugins[1].Path)
				}
				if c.Limits.TempPath != pub || c.Log.Access != filepath.Join(pub, "access.log") {
					t.Errorf("temp_path %q", c.Limits.TempPath)
				}
			},
		},
		{
			name: "listen forms",
			yaml: minimal + "listen:\n  - address: \":8080\"\n  - address: localhost:9000\n  - address: \"[::1]:9001\"\n" +
				"  - address: 127.0.0.1:9001\nadmin:\n  address: 127.0.0.1:9090\ntrusted_proxies: [10.0.0.0/8, \"::1\", fe80::1%eth0]\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Listen) != 4 || c.Admin.Address != "127.0.0.1:9090" || len(c.TrustedProxies) != 3 {
					t.Errorf("got %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			file := tt.file
			if file == "" {
				file = "wedge.yaml"
			}
			c, err := Parse(file, []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.File != file {
				t.Errorf("File = %q, want %q", c.File, file)
			}
			tt.check(t, c)
		})
	}
}

func TestLoad(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "reading config: ") {
		t.Errorf("Load(missing) = %v, want a wrapped fs.ErrNotExist", err)
	}

	path := filepath.Join(t.TempDir(), "wedge.yaml")
	if err := os.WriteFile(path, []byte("limits:\n  send_timeout: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + ":2: limits.send_timeout: durations need a unit, e.g. 60s"; err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
}

func TestError_Error(t *testing.T) {
	e := &Error{Problems: []Problem{
		{File: "w.yaml", Line: 3, Path: "a.b", Msg: "bad"},
		{File: "w.yaml", Path: "c", Msg: "worse"},
		{Line: 4, Msg: "no file"},
		{Path: "--to", Msg: "flag"},
	}}
	want := "w.yaml:3: a.b: bad\nw.yaml: c: worse\nline 4: no file\n--to: flag"
	if got := e.Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// Validate on a Config built in Go reports paths without file or line.
func TestConfig_Validate(t *testing.T) {
	c := &Config{
		Listen:    []Listener{{Address: "127.0.0.1:8080"}},
		Upstreams: map[string]*Upstream{"a": {Servers: []UpstreamServer{{Address: "127.0.0.1:1"}}}, "b": nil},
		Limits:    Limits{ClientMaxBodySize: -1},
	}
	c.ApplyDefaults()
	err := c.Validate()
	want := "limits.client_max_body_size: must not be negative, got -1\n" +
		"upstreams.b.servers: at least one server is required\n" +
		"plugins: with several pools (a, b) a router must choose among them: " +
		"add plugins: [{name: router, builtin: router, config: {routes: [{path: /api/, upstream: a}, {upstream: b}]}}, " +
		"{name: cache, builtin: cache}, {name: compress, builtin: compress}] (see plugins/router/README.md)"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("LISTEN_ADDR", "")
	path := filepath.Join("..", "..", "examples", "wedge.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen[0].Address != "127.0.0.1:8080" || len(c.Upstreams) != 2 || len(c.Plugins) < 3 || c.Plugins[0].Builtin != "router" {
		t.Errorf("got %+v", c)
	}
	// The sample writes every field of the schema, each field of a list
	// item in some item (a plugin has a path or a builtin, not both).
	set := map[string]bool{}
	for p := range c.src.set {
		set[listIndex.ReplaceAllString(p, "[0]")] = true
	}
	for _, p := range schemaPaths(reflect.TypeOf(Config{}), "") {
		if !set[p] {
			t.Errorf("%s does not set %s", path, p)
		}
	}
}

// defaultChainWithDefaults is DefaultChain(pool) after ApplyDefaults.
func defaultChainWithDefaults(pool string) []Plugin {
	ps := DefaultChain(pool)
	for i := range ps {
		ps[i].RootID, ps[i].PoolSize = ps[i].Name, runtime.GOMAXPROCS(0)
		ps[i].CallbackTimeout, ps[i].PauseTimeout = Duration(time.Second), Duration(time.Minute)
		ps[i].MemoryLimit = 128 * mib
	}
	return ps
}

var listIndex = regexp.MustCompile(`\[[0-9]+\]`)

// schemaPaths lists the dotted path of every leaf field, with "app" for map
// keys and [0] for list items.
func schemaPaths(t reflect.Type, path string) []string {
	if _, ok := reflect.New(t).Interface().(nodeDecoder); ok {
		return []string{path}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaPaths(t.Elem(), path)
	case reflect.Map:
		return schemaPaths(t.Elem(), join(path, "app"))
	case reflect.Slice:
		return schemaPaths(t.Elem(), index(path, 0))
	case reflect.Struct:
		if _, ok := reflect.New(t).Interface().(nodeDecoder); ok {
			return []string{path}
		}
		var out []string
		for name, i := range yamlFields(t) {
			out = append(out, schemaPaths(t.Field(i).Type, join(path, name))...)
		}
		return out
	}
	return []string{path}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{filepath.Join("..", "..", "examples", "wedge.yaml"), "default.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "- a", "listen: [", "limits: &l\n  <<: *l\n", "listen: &l\n  - <<: *l\n", minimal,
		"limits:\n  client_body_timeout: 60\n  large_client_header_buffers: 4 8k\n",
		"upstreams:\n  ${X:-app}:\n    servers: [{address: \"${Y:-unix:/a}\"}]\n",
		"a: &a [1]\nlisten: [*a, *a]\n", "plugins: [{name: r, builtin: router, config: {routes: [{upstream: app}]}}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("got %T %v, want *Error", err, err)
			}
			for _, p := range e.Problems {
				if p.File != "fuzz.yaml" || p.Msg == "" {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted, Validate refused: %v", err)
		}
	})
}

func TestConfig_Warnings(t *testing.T) {
	abs, err := filepath.Abs(filepath.Join("..", "..", "examples", "plugins", "add_header.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml string
		want       string // "" for none; else a part of the one warning
	}{
		{"default chain", minimal, ""},
		{"router first", minimal + "plugins:\n  - {name: r, builtin: router, config: {routes: [{upstream: app}]}}\n", ""},
		{"plugins of the author only", minimal + "plugins:\n  - {name: p, path: " + abs + "}\n", "wedge.yaml:5: plugins: no built-in router in the chain"},
		{"no plugins", minimal + "plugins: []\n", "wedge.yaml:5: plugins: no plugins: nothing routes requests, so every request gets 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("wedge.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			w := c.Warnings()
			if tt.want == "" && len(w) != 0 || tt.want != "" && (len(w) != 1 || !strings.HasPrefix(w[0], tt.want)) {
				t.Errorf("Warnings() = %q, want %q", w, tt.want)
			}
		})
	}
}
