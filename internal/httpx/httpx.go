// Package httpx holds Lintel's HTTP plumbing that knows nothing of GraphQL:
// request IDs, access logs, Prometheus metrics, panic recovery and the
// caller's address.
package httpx

import (
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/requestid"
)

// Metrics are the HTTP server's Prometheus collectors.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewMetrics registers the HTTP collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lintel_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lintel_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lintel_http_requests_in_flight", Help: "HTTP requests being served."}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack (WebSockets).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Wrap adds a request ID (kept from a well-formed X-Request-ID header,
// otherwise fresh), the client address, panic recovery, an access log line
// and metrics labelled by route.
func Wrap(log *slog.Logger, m *Metrics, route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID.MatchString(id) {
			id = requestid.New()
		}
		w.Header().Set("X-Request-ID", id)
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ctx := caller.WithClientAddr(requestid.With(r.Context(), id), host)
		sw := &statusWriter{ResponseWriter: w}
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(ctx, "panic serving request", "panic", v, "request_id", id)
				if sw.status == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			log.InfoContext(ctx, "request", "request_id", id, "method", r.Method, "path", loggedPath(r.URL.Path), "status", status,
				"bytes", sw.bytes, "duration_ms", float64(elapsed.Microseconds())/1000, "remote", host)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// loggedPath is a request path fit for the log: an invitation link's token
// is a credential, so it is cut out.
func loggedPath(p string) string {
	const invite = "/wallet/invite/"
	rest, ok := strings.CutPrefix(p, invite)
	if !ok {
		return p
	}
	if _, tail, found := strings.Cut(rest, "/"); found {
		return invite + "[token]/" + tail
	}
	return invite + "[token]"
}
