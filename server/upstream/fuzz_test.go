package upstream

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8000", "[::1]:80", "app:65535", "unix:/run/app.sock", "unix:", "unix:rel", ":80", "h:0", "h:http", "[::1]", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		network, address, err := parseAddress(addr)
		if err != nil {
			if network != "" || address != "" {
				t.Fatalf("error %v with results %q %q", err, network, address)
			}
			return
		}
		switch network {
		case "unix":
			if !strings.HasPrefix(address, "/") || "unix:"+address != addr {
				t.Fatalf("unix %q from %q", address, addr)
			}
		case "tcp":
			host, port, err := net.SplitHostPort(address)
			n, perr := strconv.Atoi(port)
			if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || address != addr {
				t.Fatalf("tcp %q from %q", address, addr)
			}
		default:
			t.Fatalf("network %q from %q", network, addr)
		}
	})
}
