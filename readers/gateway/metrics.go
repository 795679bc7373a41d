package gateway

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus metrics, on a registry of their own.
type metrics struct {
	reg             *prometheus.Registry
	decisions       *prometheus.CounterVec
	decisionSeconds prometheus.Histogram
	readerOnline    *prometheus.GaugeVec
	framesDropped   *prometheus.CounterVec
	syncs           *prometheus.CounterVec
	pushes          prometheus.Counter
	subscribed      prometheus.Gauge
	snapshotErrors  prometheus.Counter
	eventsShipped   prometheus.Counter
	eventsRejected  prometheus.Counter
	eventsLost      prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lintel_gateway_decisions_total",
			Help: "Door decisions by result (granted, denied) and reason (none for grants)."}, []string{"result", "reason"}),
		decisionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lintel_gateway_decision_seconds",
			Help:    "Time from a card read or code scan decoded to the reader told the decision.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3}}),
		readerOnline: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lintel_gateway_reader_online",
			Help: "1 while a reader answers (OSDP) or its serial port is open (other protocols)."}, []string{"reader"}),
		framesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lintel_gateway_frames_dropped_total",
			Help: "Frames or lines a reader's decoder dropped, by reason; reason garbage counts bytes outside any frame."}, []string{"reader", "reason"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lintel_gateway_syncs_total",
			Help: "Access-list pulls by result (ok, error)."}, []string{"result"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "lintel_gateway_change_pushes_total",
			Help: "accessListChanged notifications received."}),
		subscribed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lintel_gateway_subscribed",
			Help: "1 while the accessListChanged subscription is open."}),
		snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lintel_gateway_snapshot_errors_total",
			Help: "Failed writes of the access-list snapshot."}),
		eventsShipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "lintel_gateway_events_shipped_total",
			Help: "Access events the server confirmed."}),
		eventsRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "lintel_gateway_events_rejected_total",
			Help: "Access events the server refused as invalid; they are dropped."}),
		eventsLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "lintel_gateway_events_unqueued_total",
			Help: "Access events that could not be written to the queue (disk full or failing)."}),
	}
	m.reg.MustRegister(m.decisions, m.decisionSeconds, m.readerOnline, m.framesDropped, m.syncs, m.pushes, m.subscribed,
		m.snapshotErrors, m.eventsShipped, m.eventsRejected, m.eventsLost,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// gauges registers the metrics read from the gateway's parts when scraped.
func (m *metrics) gauges(queueLen func() int, records func() int, lag func() float64, cursor func() string) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_gateway_queue_depth",
			Help: "Access events waiting to be shipped to the server."}, func() float64 { return float64(queueLen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_gateway_access_list_records",
			Help: "Records on the access list held."}, func() float64 { return float64(records()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_gateway_access_list_lag_seconds",
			Help: "Seconds since the last successful sync (since start if none yet)."}, lag),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_gateway_access_list_version",
			Help: "The access-list feed version held; 0 before the first full sync."}, func() float64 {
			v, err := strconv.ParseInt(strings.TrimPrefix(cursor(), "d:"), 10, 64)
			if err != nil {
				return 0
			}
			return float64(v)
		}),
	)
}

// decision counts one decision.
func (m *metrics) decision(granted bool, reason string, seconds float64) {
	result := "denied"
	if granted {
		result, reason = "granted", "none"
	}
	m.decisions.WithLabelValues(result, reason).Inc()
	m.decisionSeconds.Observe(seconds)
}
