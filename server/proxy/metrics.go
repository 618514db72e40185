package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus collectors:
//
//	wedge_http_requests_total{code}           counter, by status code
//	wedge_http_request_duration_seconds       histogram, first byte in to last byte out
//	wedge_upstream_response_seconds           histogram, request sent to response buffered
type Metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	upstream prometheus.Histogram
	byCode   [600]atomic.Pointer[counterRef] // resolved once per code, so the hot path does no label lookup
}

// NewMetrics registers the pipeline's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wedge_http_requests_total", Help: "Client requests answered, by status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wedge_http_request_duration_seconds", Help: "Time from a request's first byte to its response's last byte, in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wedge_upstream_response_seconds", Help: "Time from sending a request upstream to having its whole response buffered, in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.upstream)
	return m
}

func (m *Metrics) observe(st *exchangeState, end time.Time) {
	m.count(st.status)
	m.duration.Observe(end.Sub(st.ex.Start).Seconds())
	if !st.upstreamDone.IsZero() && !st.upstreamStart.IsZero() {
		m.upstream.Observe(st.upstreamDone.Sub(st.upstreamStart).Seconds())
	}
}

type counterRef struct{ c prometheus.Counter }

// count adds one to the counter of status code.
func (m *Metrics) count(code int) {
	if code < 100 || code >= len(m.byCode) {
		return
	}
	ref := m.byCode[code].Load()
	if ref == nil {
		ref = &counterRef{m.requests.WithLabelValues(strconv.Itoa(code))}
		m.byCode[code].Store(ref) // racing stores hold the same child
	}
	ref.c.Inc()
}
