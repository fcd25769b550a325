// Package metrics implements Tresor's Prometheus metrics: one [Metrics] per
// server, each on its own registry (never the process-wide default, so that
// many servers in one process do not collide), served in the Prometheus text
// format by [Metrics.Handler].
//
// Labels carry only bounded values: route patterns (not raw paths), status
// codes, names of existing HSMs, algorithms of successful operations,
// refusal reasons from fixed lists. docs/operating.md lists every metric.
//
// Every method is safe for concurrent use, and a nil *Metrics counts
// nothing.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds a server's collectors.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	keyOps         *prometheus.CounterVec
	tokensIssued   prometheus.Counter
	tokenRequests  *prometheus.CounterVec
	tokensRefused  *prometheus.CounterVec
	jobs           *prometheus.CounterVec
	jobDuration    *prometheus.HistogramVec
	storeSizeBytes prometheus.Collector
}

// New returns the metrics of one server, with the Go runtime and process
// collectors registered beside Tresor's own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tresor_http_requests_total",
		Help: "HTTP requests answered, by route pattern, status code and HSM (empty on the region endpoint).",
	}, []string{"route", "status", "hsm"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tresor_http_request_duration_seconds",
		Help:    "Time from a request's headers to the end of its answer, by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	m.keyOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tresor_key_operations_total",
		Help: "Successful cryptographic key operations, by operation (the audit operation name: KeySign, KeyVerify, KeyEncrypt, …) and algorithm.",
	}, []string{"operation", "algorithm"})
	m.tokensIssued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tresor_tokens_issued_total",
		Help: "Access tokens issued by the region's token endpoint.",
	})
	m.tokenRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tresor_token_requests_refused_total",
		Help: "Token endpoint requests refused, by OAuth error code (invalid_client, invalid_request, …).",
	}, []string{"error"})
	m.tokensRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tresor_tokens_refused_total",
		Help: "Bearer tokens refused by the endpoints, by reason (missing, expired, wrong audience, untrusted issuer, bad signature, …).",
	}, []string{"reason"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tresor_backup_jobs_total",
		Help: "Backup and restore jobs ended, by kind and result (Succeeded, Failed).",
	}, []string{"kind", "result"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tresor_backup_job_duration_seconds",
		Help:    "How long backup and restore jobs ran, by kind.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
	}, []string{"kind"})
	m.reg.MustRegister(m.requests, m.latency, m.keyOps, m.tokensIssued, m.tokenRequests, m.tokensRefused, m.jobs, m.jobDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StoreSize registers tresor_store_size_bytes, read from size at every
// scrape. It is called once.
func (m *Metrics) StoreSize(size func() float64) {
	if m == nil {
		return
	}
	m.storeSizeBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tresor_store_size_bytes",
		Help: "Size of the store file on disk.",
	}, size)
	m.reg.MustRegister(m.storeSizeBytes)
}

// Request counts an answered request.
func (m *Metrics) Request(route string, status int, hsm string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status), hsm).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// KeyOperation counts a successful key operation.
func (m *Metrics) KeyOperation(op, alg string) {
	if m == nil {
		return
	}
	m.keyOps.WithLabelValues(op, alg).Inc()
}

// TokenIssued counts a token the token endpoint issued.
func (m *Metrics) TokenIssued() {
	if m == nil {
		return
	}
	m.tokensIssued.Inc()
}

// TokenRequestRefused counts a token request refused with an OAuth error code.
func (m *Metrics) TokenRequestRefused(oauthError string) {
	if m == nil {
		return
	}
	m.tokenRequests.WithLabelValues(oauthError).Inc()
}

// TokenRefused counts a bearer token an endpoint refused, by reason.
func (m *Metrics) TokenRefused(reason string) {
	if m == nil {
		return
	}
	m.tokensRefused.WithLabelValues(reason).Inc()
}

// JobEnded counts a backup or restore job's end and its duration.
func (m *Metrics) JobEnded(kind, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(kind, result).Inc()
	m.jobDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
