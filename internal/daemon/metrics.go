package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/microfn/microfn/restarter"
)

// deploymentMetrics are the per-deployment metrics, read from the engine's
// Status at scrape time so they always agree with `fnctl ls` and the
// engine needs no metrics code of its own. To export another number the
// engine reports, add a row here.
var deploymentMetrics = []struct {
	name, help string
	kind       prometheus.ValueType
	value      func(restarter.Status) float64
}{
	{"microfn_pool_size", "The pool's size now: processes kept warm, and the most messages in processes at once.", prometheus.GaugeValue,
		func(s restarter.Status) float64 { return float64(s.Pool) }},
	{"microfn_pool_min", "The fewest processes the pool shrinks to.", prometheus.GaugeValue,
		func(s restarter.Status) float64 { return float64(s.Spec.MinPool) }},
	{"microfn_pool_max", "The most processes the pool grows to.", prometheus.GaugeValue,
		func(s restarter.Status) float64 { return float64(s.Spec.MaxPool) }},
	{"microfn_cold_starts_total", "Messages that found the pool at size 0 and waited for a process to start.", prometheus.CounterValue,
		func(s restarter.Status) float64 { return float64(s.ColdStarts) }},
	{"microfn_warm_processes", "Processes started and waiting for a message.", prometheus.GaugeValue,
		func(s restarter.Status) float64 { return float64(s.Warm) }},
	{"microfn_inflight", "Messages being handled now.", prometheus.GaugeValue,
		func(s restarter.Status) float64 { return float64(s.InFlight) }},
	{"microfn_processed_total", "Messages acknowledged.", prometheus.CounterValue,
		func(s restarter.Status) float64 { return float64(s.Processed) }},
	{"microfn_failed_total", "Failed attempts (handler error, exit code, crash, signal, timeout).", prometheus.CounterValue,
		func(s restarter.Status) float64 { return float64(s.Failed) }},
	{"microfn_dead_lettered_total", "Messages sent to the dead-letter topic.", prometheus.CounterValue,
		func(s restarter.Status) float64 { return float64(s.DeadLettered) }},
	{"microfn_restarts_total", "Function processes that died before taking a message.", prometheus.CounterValue,
		func(s restarter.Status) float64 { return float64(s.Restarts) }},
	{"microfn_holes_total", "Holes found: a partition's log no longer held the group's committed position (records lost, topic re-created, or removed unprocessed).", prometheus.CounterValue,
		func(s restarter.Status) float64 { return float64(s.HolesFound) }},
	{"microfn_lag", "Messages on the topic not yet committed by the deployment's group.", prometheus.GaugeValue,
		func(s restarter.Status) float64 { return float64(s.Lag) }},
}

// collector exports deploymentMetrics, labelled by deployment.
type collector struct {
	status func() []restarter.Status
	descs  []*prometheus.Desc
}

func newCollector(status func() []restarter.Status) *collector {
	c := &collector{status: status}
	for _, m := range deploymentMetrics {
		c.descs = append(c.descs, prometheus.NewDesc(m.name, m.help, []string{"deployment"}, nil))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.status() {
		for i, m := range deploymentMetrics {
			ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, m.value(s), s.Name)
		}
	}
}
