package listen_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wedgeproxy/wedge/certs/localca"
	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/listen"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// ExampleServer puts Wedge in front of an app: the pipeline from a quick-mode
// configuration, a Server serving it on a loopback listener, one request
// through it, then a graceful shutdown.
func ExampleServer() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the app, via %s", r.Header.Get("Via"))
	}))
	defer app.Close()

	cfg, err := config.QuickMode([]string{"127.0.0.1:8080"}, []string{app.Listener.Addr().String()}, "")
	if err != nil {
		panic(err)
	}
	cfg.Log.Access = "off"
	h, err := routedHandler(cfg)
	if err != nil {
		panic(err)
	}
	srv := listen.New(h, cfg.Limits, listen.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0") // any free port, for the example
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	srv.Shutdown(context.Background())
	h.Close(context.Background())
	// Output: 200 hello from the app, via 1.1 wedge
}

// ExampleServer_ServeTLS serves HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on a
// TCP port and HTTP/3 on the UDP port of the same number, with a
// certificate from a local CA; responses over TLS announce HTTP/3 with
// Alt-Svc.
func ExampleServer_ServeTLS() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s", r.Header.Get("X-Forwarded-Proto"))
	}))
	defer app.Close()
	cfg, err := config.QuickMode([]string{"127.0.0.1:8443"}, []string{app.Listener.Addr().String()}, "")
	if err != nil {
		panic(err)
	}
	cfg.Log.Access = "off"
	h, err := routedHandler(cfg)
	if err != nil {
		panic(err)
	}
	defer h.Close(context.Background())
	dir, err := os.MkdirTemp("", "wedge-ca")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ca, err := localca.Load(dir)
	if err != nil {
		panic(err)
	}
	tlsConf := &tls.Config{GetCertificate: ca.GetCertificate}

	srv := listen.New(h, cfg.Limits, listen.Options{HSTS: "max-age=31536000"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	go srv.ServeTLS(ln, tlsConf)
	go srv.ServeQUIC(pc, tlsConf)
	defer srv.Shutdown(context.Background())

	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	h3 := &http3.Transport{TLSClientConfig: clientTLS}
	defer h3.Close()
	for _, rt := range []http.RoundTripper{&http2.Transport{TLSClientConfig: clientTLS}, h3} {
		var resp *http.Response
		for range 50 { // ServeQUIC may still be starting
			if resp, err = (&http.Client{Transport: rt}).Get("https://" + ln.Addr().String() + "/"); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		fmt.Println(resp.Proto, resp.StatusCode, string(body), resp.Header.Get("Alt-Svc") == `h3=":`+port+`"; ma=2592000`)
	}
	// Output:
	// HTTP/2.0 200 hello over https true
	// HTTP/3.0 200 hello over https false
}

// routedHandler builds the pipeline for cfg with the built-in router as
// its only plugin, sending everything to the pool "app": Wedge makes no
// routing decision of its own (the wedge binary embeds the router and
// runs router, cache and compress by default).
func routedHandler(cfg *config.Config) (*proxy.Handler, error) {
	host, err := pluginhost.New(context.Background(), pluginhost.Config{ForeignFunctions: proxy.ForeignFunctions()})
	if err != nil {
		return nil, err
	}
	cfg.Plugins = []config.Plugin{{
		Name:   "router",
		Path:   "../../plugins/router/router.wasm",
		Config: config.JSONValue(`{"routes":[{"upstream":"app"}]}`),
	}}
	cfg.PluginCache = "off"
	cfg.ApplyDefaults()
	return proxy.New(cfg, proxy.Options{Plugins: host})
}
