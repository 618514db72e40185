package pluginhost

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// maxMetrics bounds how many metrics guests may define host-wide.
const maxMetrics = 10000

// histogramBuckets are Envoy's default histogram bucket bounds
// (config.metrics.v3.HistogramBucketSettings), as plugin histograms usually
// record milliseconds or bytes.
var histogramBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Reserved family names of the host's own metrics.
const (
	famVMFailures = "wedge_plugin_vm_failures_total"
	famVMs        = "wedge_plugin_vms"
)

// metricSet holds the metrics plugins define (spec "Metrics") and the
// host's own, and exports them as one unchecked prometheus.Collector.
// Ids are host-wide and stable across chains, so a reloaded plugin keeps
// counting where the old one stopped; a plugin can only use its own.
type metricSet struct {
	mu       sync.Mutex
	byKey    map[[2]string]uint32 // plugin, metric name -> id
	families map[string]uint32    // Prometheus name -> metric type
	list     atomic.Pointer[[]*guestMetric]

	hostMu   sync.Mutex
	failures map[[2]string]uint64 // plugin, reason
	vms      map[string]int64

	descFailures, descVMs *prometheus.Desc
}

type guestMetric struct {
	plugin string
	typ    uint32
	desc   *prometheus.Desc
	val    atomic.Int64 // counter or gauge

	hmu     sync.Mutex // histogram
	buckets []uint64
	count   uint64
	sum     float64
}

func newMetricSet() *metricSet {
	m := &metricSet{
		byKey:    make(map[[2]string]uint32),
		families: make(map[string]uint32),
		failures: make(map[[2]string]uint64),
		vms:      make(map[string]int64),
		descFailures: prometheus.NewDesc(famVMFailures,
			"Plugin VMs that failed (trap, timeout, memory cap) and were replaced.",
			[]string{"plugin", "reason"}, nil),
		descVMs: prometheus.NewDesc(famVMs, "Plugin VMs running.", []string{"plugin"}, nil),
	}
	m.list.Store(new([]*guestMetric))
	return m
}

// promName maps a guest metric name to a Prometheus one: "wedge_" and the
// name with every character outside [a-zA-Z0-9_:] replaced by "_".
func promName(name []byte) string {
	b := make([]byte, 0, len("wedge_")+len(name))
	b = append(b, "wedge_"...)
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == ':') {
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

// define returns the id of the plugin's metric name, creating it.
func (m *metricSet) define(plugin string, typ uint32, name []byte) (uint32, abi.Status) {
	if typ > abi.MetricHistogram || len(name) == 0 || len(name) > 256 {
		return 0, abi.StatusBadArgument
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [2]string{plugin, string(name)}
	if id, ok := m.byKey[key]; ok {
		if (*m.list.Load())[id-1].typ != typ {
			return 0, abi.StatusBadArgument
		}
		return id, abi.StatusOK
	}
	pn := promName(name)
	if pn == famVMFailures || pn == famVMs {
		return 0, abi.StatusBadArgument
	}
	if t, ok := m.families[pn]; ok && t != typ {
		return 0, abi.StatusBadArgument
	}
	old := *m.list.Load()
	if len(old) >= maxMetrics {
		return 0, abi.StatusInternalFailure
	}
	gm := &guestMetric{
		plugin: plugin,
		typ:    typ,
		desc:   prometheus.NewDesc(pn, "Defined by a plugin with proxy_define_metric.", []string{"plugin"}, nil),
	}
	if typ == abi.MetricHistogram {
		gm.buckets = make([]uint64, len(histogramBuckets))
	}
	m.families[pn] = typ
	list := append(old[:len(old):len(old)], gm)
	m.list.Store(&list)
	id := uint32(len(list))
	m.byKey[key] = id
	return id, abi.StatusOK
}

func (m *metricSet) lookup(plugin string, id uint32) *guestMetric {
	list := *m.list.Load()
	if id == 0 || int(id) > len(list) {
		return nil
	}
	gm := list[id-1]
	if gm.plugin != plugin {
		return nil
	}
	return gm
}

// increment adds delta; a counter cannot go down.
func (m *metricSet) increment(plugin string, id uint32, delta int64) abi.Status {
	gm := m.lookup(plugin, id)
	switch {
	case gm == nil:
		return abi.StatusNotFound
	case gm.typ == abi.MetricHistogram, gm.typ == abi.MetricCounter && delta < 0:
		return abi.StatusBadArgument
	}
	gm.val.Add(delta)
	return abi.StatusOK
}

// record sets a gauge, moves a counter up to value, or adds value to a
// histogram.
func (m *metricSet) record(plugin string, id uint32, value uint64) abi.Status {
	gm := m.lookup(plugin, id)
	if gm == nil {
		return abi.StatusNotFound
	}
	switch gm.typ {
	case abi.MetricGauge:
		gm.val.Store(int64(value))
	case abi.MetricCounter:
		for {
			cur := gm.val.Load()
			if int64(value) < cur {
				return abi.StatusBadArgument
			}
			if gm.val.CompareAndSwap(cur, int64(value)) {
				break
			}
		}
	default:
		f := float64(value)
		gm.hmu.Lock()
		for i, ub := range histogramBuckets {
			if f <= ub {
				gm.buckets[i]++
				break
			}
		}
		gm.count++
		gm.sum += f
		gm.hmu.Unlock()
	}
	return abi.StatusOK
}

// get returns a counter's or gauge's value.
func (m *metricSet) get(plugin string, id uint32) (uint64, abi.Status) {
	gm := m.lookup(plugin, id)
	switch {
	case gm == nil:
		return 0, abi.StatusNotFound
	case gm.typ == abi.MetricHistogram:
		return 0, abi.StatusBadArgument
	}
	return uint64(gm.val.Load()), abi.StatusOK
}

func (m *metricSet) failure(plugin, reason string) {
	m.hostMu.Lock()
	m.failures[[2]string{plugin, reason}]++
	m.hostMu.Unlock()
}

func (m *metricSet) vmDelta(plugin string, d int64) {
	m.hostMu.Lock()
	m.vms[plugin] += d
	m.hostMu.Unlock()
}

// Describe implements prometheus.Collector. It sends nothing: the
// collector is unchecked, since plugins define metrics at run time.
func (m *metricSet) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *metricSet) Collect(ch chan<- prometheus.Metric) {
	for _, gm := range *m.list.Load() {
		switch gm.typ {
		case abi.MetricCounter:
			ch <- prometheus.MustNewConstMetric(gm.desc, prometheus.CounterValue, float64(gm.val.Load()), gm.plugin)
		case abi.MetricGauge:
			ch <- prometheus.MustNewConstMetric(gm.desc, prometheus.GaugeValue, float64(gm.val.Load()), gm.plugin)
		default:
			gm.hmu.Lock()
			buckets := make(map[float64]uint64, len(histogramBuckets))
			var cum uint64
			for i, ub := range histogramBuckets {
				cum += gm.buckets[i]
				buckets[ub] = cum
			}
			count, sum := gm.count, gm.sum
			gm.hmu.Unlock()
			ch <- prometheus.MustNewConstHistogram(gm.desc, count, sum, buckets, gm.plugin)
		}
	}
	m.hostMu.Lock()
	defer m.hostMu.Unlock()
	for k, n := range m.failures {
		ch <- prometheus.MustNewConstMetric(m.descFailures, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	for p, n := range m.vms {
		ch <- prometheus.MustNewConstMetric(m.descVMs, prometheus.GaugeValue, float64(n), p)
	}
}
