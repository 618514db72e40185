package certs

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HTTPHandler is the handler for the plain-HTTP port (80): it answers ACME
// HTTP-01 challenges (GET /.well-known/acme-challenge/TOKEN, RFC 8555
// §8.3) for the managed and on-demand names, and redirects every other
// request to the same host and path over HTTPS with 308 Permanent Redirect
// (RFC 9110 §15.4.9, which keeps the method and body), on Config.TLSPort
// when it is not 443. A request without a usable Host gets 400.
func (m *Manager) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.issuer != nil && m.issuer.HandleHTTPChallenge(w, r) {
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			http.Error(w, "missing or bad Host", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") { // IPv6 literal
			host = "[" + host + "]"
		}
		if p := m.cfg.TLSPort; p != 0 && p != 443 {
			host += ":" + strconv.Itoa(p)
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
