package listen_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/listen"
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
	h, err := proxy.New(cfg, proxy.Options{})
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
