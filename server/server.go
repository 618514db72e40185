// Package server assembles a running Wedge from a configuration: the
// pipeline (server/proxy), the client listeners (server/listen), the admin
// listener with Prometheus metrics, and the logs. It owns the lifecycle:
// Start binds every address before anything is served, Reload swaps in a
// new configuration without dropping a request, Shutdown drains.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wedgeproxy/wedge/certs"
	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/internal/cachestore"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/listen"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// Server is one running Wedge. Create it with New, then Start it.
type Server struct {
	mu       sync.Mutex
	cfg      *config.Config
	log      *slog.Logger
	access   *slog.Logger
	accessW  io.Closer
	reg      *prometheus.Registry
	metrics  *proxy.Metrics
	handler  *proxy.Handler
	srv      *listen.Server
	lns      []net.Listener
	admin    *http.Server
	adminLn  net.Listener
	serveErr chan error
	plugins  *pluginhost.Host // created with the first configuration that has plugins
	builtins func(name string) ([]byte, bool)
	cache    *proxy.Cache // the cache plugin's store, created with the plugin host; kept across reloads

	// HTTPS: the certificates of the current configuration (nil without
	// a TLS listener), the TLS configuration every TLS and QUIC listener
	// shares (its GetCertificate follows certs across reloads), the UDP
	// sockets of the HTTP/3 listeners, and the port-80 redirect.
	certs      atomic.Pointer[certs.Manager]
	tlsConf    *tls.Config
	pcs        []net.PacketConn
	redirect   *http.Server
	redirectLn net.Listener
}

// Options are what a Server needs besides its configuration.
type Options struct {
	// Logger is the error log. Nil means JSON lines on stderr at the
	// configured level.
	Logger *slog.Logger
	// Builtins returns the .wasm of a built-in plugin by name (a
	// configuration's builtin: router, cache or compress), false when there
	// is none. The wedge binary passes plugins.Builtin; nil refuses every
	// configuration that names a built-in, the default chain included.
	Builtins func(name string) ([]byte, bool)
}

// New builds a Server from a validated configuration: logs, metrics, the
// pipeline and its upstream pools. Nothing listens yet.
func New(cfg *config.Config, opt Options) (*Server, error) {
	s := &Server{cfg: cfg, log: opt.Logger, builtins: opt.Builtins, reg: prometheus.NewRegistry(), serveErr: make(chan error, 8)}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(cfg.Log.Level)}))
	}
	access, closer, err := openAccessLog(cfg.Log.Access)
	if err != nil {
		return nil, err
	}
	s.access, s.accessW = access, closer
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = proxy.NewMetrics(s.reg)
	h, err := s.newHandler(cfg)
	if err != nil {
		if s.plugins != nil {
			s.plugins.Close(context.Background())
		}
		s.closeLogs()
		return nil, err
	}
	s.handler = h
	s.srv = listen.New(h, cfg.Limits, listen.Options{
		Logger:           s.log,
		Registerer:       s.reg,
		HandshakeTimeout: cfg.TLS.HandshakeTimeout.Std(),
		HSTS:             cfg.TLS.HSTS,
	})
	s.reg.MustRegister(&poolCollector{s: s}, certCollector{s})
	s.warn(cfg)
	return s, nil
}

// warn logs the configuration's warnings (config.Config.Warnings).
func (s *Server) warn(cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		s.log.Warn(w)
	}
}

func (s *Server) newHandler(cfg *config.Config) (*proxy.Handler, error) {
	if len(cfg.Plugins) > 0 && s.plugins == nil {
		cache := cfg.PluginCache
		if cache == "off" {
			cache = ""
		}
		host, err := pluginhost.New(context.Background(), pluginhost.Config{
			CompilationCacheDir: cache,
			Logger:              s.log,
			Registerer:          s.reg,
			Dispatcher:          dispatcher{s},
			ForeignFunctions:    proxy.ForeignFunctions(),
		})
		if err != nil {
			return nil, fmt.Errorf("starting the plugin host: %w", err)
		}
		s.plugins = host
		c, err := proxy.NewCache(cachestore.Options{
			MaxBytes:      int64(cfg.Cache.MaxSize),
			MaxEntryBytes: int64(cfg.Cache.MaxEntrySize),
			Dir:           cfg.Cache.Path,
		}, s.reg)
		if err != nil {
			return nil, err
		}
		s.cache = c
	}
	return proxy.New(cfg, proxy.Options{Logger: s.log, AccessLog: s.access, Metrics: s.metrics, Plugins: s.plugins, Cache: s.cache, Builtins: s.builtins})
}

// dispatcher sends plugins' proxy_http_call through the current
// configuration's upstream pools.
type dispatcher struct{ s *Server }

func (d dispatcher) current() *proxy.Handler {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	return d.s.handler
}

// Dispatch implements pluginhost.HTTPDispatcher.
func (d dispatcher) Dispatch(ctx context.Context, upstream string, req *message.Request, body []byte, timeout time.Duration) (*message.Response, []byte, error) {
	return d.current().Dispatch(ctx, upstream, req, body, timeout)
}

// HasUpstream lets proxy_http_call refuse an unknown pool at once.
func (d dispatcher) HasUpstream(name string) bool { return d.current().HasUpstream(name) }

func logLevel(l string) slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// Start binds every listen address and the admin address, then serves them
// in the background. If any address cannot be bound, nothing is served and
// the error names the address.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	hasTLS := false
	for _, l := range s.cfg.Listen {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listening on %s: %w", l.Address, err)
		}
		s.lns = append(s.lns, ln)
		hasTLS = hasTLS || l.TLS
		var pc net.PacketConn
		if l.HTTP3 {
			// the same port over UDP, also when the address asked for port 0
			if pc, err = net.ListenPacket("udp", ln.Addr().String()); err != nil {
				s.closeListeners()
				return fmt.Errorf("listening on %s (udp, for http3): %w", l.Address, err)
			}
		}
		s.pcs = append(s.pcs, pc)
	}
	if r := s.cfg.TLS.RedirectHTTP; hasTLS && r != "off" && r != "" {
		ln, err := net.Listen("tcp", r)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listening on tls.redirect_http %s: %w", r, err)
		}
		s.redirectLn = ln
	}
	if hasTLS {
		m, err := s.newCerts(s.cfg)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.certs.Store(m)
		s.tlsConf = m.TLSConfig()
		s.tlsConf.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.certs.Load().GetCertificate(hello)
		}
	}
	if a := s.cfg.Admin.Address; a != "" {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listening on admin address %s: %w", a, err)
		}
		s.adminLn = ln
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/cache/purge", func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			c := s.cache
			s.mu.Unlock()
			proxy.CachePurgeHandler(c).ServeHTTP(w, r) // POST or PURGE ?url=, ?prefix=, ?all=1
		})
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- fmt.Errorf("serving admin: %w", err)
			}
		}()
	}
	for i, ln := range s.lns {
		l := s.cfg.Listen[i]
		go func() {
			serve := s.srv.Serve
			if l.TLS {
				serve = func(ln net.Listener) error { return s.srv.ServeTLS(ln, s.tlsConf) }
			}
			if err := serve(ln); err != nil {
				s.serveErr <- fmt.Errorf("serving %s: %w", ln.Addr(), err)
			}
		}()
		if pc := s.pcs[i]; pc != nil {
			go func() {
				if err := s.srv.ServeQUIC(pc, s.tlsConf); err != nil {
					s.serveErr <- fmt.Errorf("serving %s (http3): %w", pc.LocalAddr(), err)
				}
			}()
		}
		s.log.Info("listening", "address", ln.Addr().String(), "tls", l.TLS, "http3", l.HTTP3)
	}
	if ln := s.redirectLn; ln != nil {
		s.redirect = &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.certs.Load().HTTPHandler().ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: s.cfg.Limits.ClientHeaderTimeout.Std(),
			IdleTimeout:       s.cfg.Limits.KeepaliveTimeout.Std(),
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		go func() {
			if err := s.redirect.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- fmt.Errorf("serving tls.redirect_http %s: %w", ln.Addr(), err)
			}
		}()
		s.log.Info("redirecting to HTTPS and answering ACME HTTP-01", "address", ln.Addr().String())
	}
	if m := s.certs.Load(); m != nil {
		if err := m.Start(); err != nil {
			return err
		}
	}
	return nil
}

// newCerts builds the certificate manager of cfg's tls section, for the
// ports Start bound.
func (s *Server) newCerts(cfg *config.Config) (*certs.Manager, error) {
	t := cfg.TLS
	cc := certs.Config{
		Domains:    t.Domains,
		Email:      t.Email,
		CA:         t.CA,
		Challenges: t.Challenges,
		DataDir:    t.DataDir,
		LocalCA:    t.LocalCA,
		Logger:     s.log,
		HTTPPort:   80,
		TLSPort:    443,
	}
	if t.CARoot != "" {
		data, err := os.ReadFile(t.CARoot)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_root: %w", err)
		}
		cc.CARoots = x509.NewCertPool()
		if !cc.CARoots.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("reading tls.ca_root: no PEM certificate in %s", t.CARoot)
		}
	}
	if t.EAB.KeyID != "" {
		cc.EAB = &certs.EAB{KeyID: t.EAB.KeyID, MACKey: t.EAB.MACKey}
	}
	if od := t.OnDemand; od != nil {
		cc.OnDemand = &certs.OnDemand{Ask: od.Ask, Burst: od.Burst, Interval: od.Interval.Std()}
	}
	for _, f := range t.Certificates {
		cc.Files = append(cc.Files, certs.KeyPair{Cert: f.Cert, Key: f.Key})
	}
	if s.redirectLn != nil {
		cc.HTTPPort = portOf(s.redirectLn.Addr())
	}
	for i, l := range s.cfg.Listen {
		if l.TLS && i < len(s.lns) {
			cc.TLSPort = portOf(s.lns[i].Addr())
			break
		}
	}
	m, err := certs.New(cc)
	if err != nil {
		return nil, fmt.Errorf("setting up certificates: %w", err)
	}
	return m, nil
}

func portOf(a net.Addr) int {
	_, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return n
}

// RenewCertificate renews the ACME certificate of a domain in tls.domains
// now, even if it is not due, and serves the new one from the next
// handshake on. Connections keep their certificate.
func (s *Server) RenewCertificate(ctx context.Context, name string) error {
	m := s.certs.Load()
	if m == nil {
		return fmt.Errorf("renewing %q: no TLS listener", name)
	}
	return m.Renew(ctx, name)
}

func (s *Server) closeListeners() {
	for _, ln := range s.lns {
		ln.Close()
	}
	s.lns = nil
	for _, pc := range s.pcs {
		if pc != nil {
			pc.Close()
		}
	}
	s.pcs = nil
	if s.redirectLn != nil {
		s.redirectLn.Close()
	}
	if m := s.certs.Swap(nil); m != nil {
		m.Close()
	}
	if s.adminLn != nil {
		s.adminLn.Close()
	}
}

// Addrs returns the bound client addresses, in configuration order (useful
// when the configuration asked for port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		out[i] = ln.Addr()
	}
	return out
}

// AdminAddr returns the bound admin address, or nil.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Errors delivers errors that stopped a listener after Start.
func (s *Server) Errors() <-chan error { return s.serveErr }

// Reload swaps in cfg: a new pipeline with new upstream pools serves every
// request that starts from now on, while the old one finishes its requests
// in flight and then closes its pools. A cfg whose pipeline cannot be built
// is refused and the old one keeps serving. Listen and admin addresses are
// bound at Start; a change to them needs a restart and is logged.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Equal(cfg.Listen, s.cfg.Listen) || cfg.Admin != s.cfg.Admin {
		s.log.Warn("listen and admin addresses changed; they take effect at the next restart")
	}
	if cfg.Cache != s.cfg.Cache && s.cache != nil {
		s.log.Warn("the cache section changed; the store keeps its entries and takes the new sizes and path at the next restart")
	}
	var newCerts *certs.Manager
	if m := s.certs.Load(); m != nil {
		if reflect.DeepEqual(cfg.TLS, s.cfg.TLS) {
			// certificate files are read again on every reload (SIGHUP)
			if err := m.Reload(); err != nil {
				return fmt.Errorf("reloading: %w", err)
			}
		} else {
			nm, err := s.newCerts(cfg)
			if err != nil {
				return fmt.Errorf("reloading: %w", err)
			}
			newCerts = nm
		}
	}
	h, err := s.newHandler(cfg)
	if err != nil {
		if newCerts != nil {
			newCerts.Close()
		}
		return fmt.Errorf("reloading: %w", err)
	}
	if newCerts != nil {
		if err := newCerts.Start(); err != nil {
			s.log.Error("managing the new certificates", "err", err)
		}
		s.certs.Swap(newCerts).Close()
		s.log.Info("tls section changed: certificates follow the new configuration (listeners, redirect_http, hsts and handshake_timeout at the next restart)")
	}
	s.warn(cfg)
	old := s.srv.SetHandler(h, cfg.Limits)
	s.handler, s.cfg = h, cfg
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout.Std())
		defer cancel()
		if err := old.Close(ctx); err != nil {
			s.log.Warn("old configuration did not drain in time", "err", err)
		}
	}()
	s.log.Info("configuration reloaded", "file", cfg.File)
	return nil
}

// Shutdown stops accepting, lets requests in flight finish within ctx (or
// shutdown_timeout when ctx has no deadline), then closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Limits.ShutdownTimeout.Std())
		defer cancel()
	}
	err := s.srv.Shutdown(ctx)
	if s.admin != nil {
		s.admin.Shutdown(ctx)
	}
	if s.redirect != nil {
		s.redirect.Shutdown(ctx)
	}
	if m := s.certs.Swap(nil); m != nil {
		m.Close()
	}
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	h.Close(ctx)
	if s.plugins != nil {
		s.plugins.Close(ctx)
	}
	if s.cache != nil {
		s.cache.Close()
	}
	s.closeLogs()
	return err
}

func (s *Server) closeLogs() {
	if s.accessW != nil {
		s.accessW.Close()
	}
}

// certCollector exports the current certificates' expiry
// (wedge_tls_certificate_expiry_days) at scrape time.
type certCollector struct{ s *Server }

func (c certCollector) Describe(ch chan<- *prometheus.Desc) {
	// unchecked: the certificate manager comes and goes with the
	// configuration
}

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	if m := c.s.certs.Load(); m != nil {
		m.Collect(ch)
	}
}

// poolCollector exports the upstream pools' state at scrape time.
type poolCollector struct{ s *Server }

var (
	descActive = prometheus.NewDesc("wedge_upstream_active_requests", "Requests in flight to an upstream server.", []string{"upstream", "server"}, nil)
	descIdle   = prometheus.NewDesc("wedge_upstream_idle_connections", "Idle keep-alive connections to an upstream server.", []string{"upstream", "server"}, nil)
	descDown   = prometheus.NewDesc("wedge_upstream_down", "1 while passive health checks hold an upstream server out.", []string{"upstream", "server"}, nil)
	descQueued = prometheus.NewDesc("wedge_upstream_queued_requests", "Requests waiting for a free upstream slot (max_conns).", []string{"upstream"}, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	ch <- descIdle
	ch <- descDown
	ch <- descQueued
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	h := c.s.handler
	c.s.mu.Unlock()
	for name, p := range h.Pools() {
		for _, st := range p.Stats() {
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active), name, st.Addr)
			ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, float64(st.Idle), name, st.Addr)
			down := 0.0
			if st.Down {
				down = 1
			}
			ch <- prometheus.MustNewConstMetric(descDown, prometheus.GaugeValue, down, name, st.Addr)
		}
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(p.Queued()), name)
	}
}
