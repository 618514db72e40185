package listen

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// TestH2C_Shutdown: an idle HTTP/2 connection does not hold Shutdown up to
// its deadline: it gets GOAWAY and closes.
func TestH2C_Shutdown(t *testing.T) {
	cfg := testConfig(t, "", nil)
	h, err := newHandler(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, cfg.Limits, Options{})
	w := serveOn(t, s)
	hc := h2Client()
	resp, err := hc.Get("http://" + w + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with an idle h2c connection: %v", err)
	}
	h.Close(context.Background())
}

// TestH2C_Reload: reloads while HTTP/2 connections come and go (run with
// -race: the HTTP/2 server settings must not be shared mutable state).
func TestH2C_Reload(t *testing.T) {
	w, up := startProxy(t, &recorder{}, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			cfg := testConfig(t, up.Listener.Addr().String(), func(c *config.Config) {
				c.Limits.KeepaliveTimeout = config.Duration(time.Duration(i+1) * time.Second)
			})
			h, err := newHandler(t, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			old := w.srv.SetHandler(h, cfg.Limits)
			old.Close(context.Background())
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		hc := h2Client()
		resp, err := hc.Get("http://" + w.addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		hc.CloseIdleConnections()
	}
}
