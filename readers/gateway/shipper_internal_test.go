package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/readers/gateway/eventqueue"
)

// fakeReports is a server that takes reportAccessEvents and refuses
// events whose reader is "bad", as the real one refuses invalid events.
type fakeReports struct {
	mu       sync.Mutex
	batches  [][]string // reader IDs per accepted batch
	failures int        // answer this many calls with 503 first
}

func (f *fakeReports) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Variables struct {
			Events []map[string]any `json:"events"`
		} `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var fields []map[string]string
	var readers []string
	for i, ev := range req.Variables.Events {
		if ev["readerId"] == "bad" {
			fields = append(fields, map[string]string{"path": fmt.Sprintf("events[%d].readerId", i), "reason": "bad"})
		}
		readers = append(readers, ev["readerId"].(string))
	}
	if fields != nil {
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"message": "invalid events",
			"extensions": map[string]any{"code": "VALIDATION_FAILED", "fields": fields}}}})
		return
	}
	f.batches = append(f.batches, readers)
	_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"reportAccessEvents": len(readers)}})
}

func TestShipperDropsOnlyTheEventsTheServerRefusesAndRetriesOutages(t *testing.T) {
	t.Parallel()
	fake := &fakeReports{failures: 2}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	q, err := eventqueue.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	for _, reader := range []string{"a", "b", "bad", "c", "bad"} {
		require.NoError(t, q.Append(eventqueue.Event{ReaderID: reader, Door: "D", At: time.Now(), Kind: KindCard, Decision: "DENIED"}))
	}
	m := newMetrics()
	s := newShipper(q, newClient(srv.URL, "lgw_test"), slog.New(slog.DiscardHandler), m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	require.Eventually(t, func() bool { return q.Len() == 0 }, 5*time.Second, 10*time.Millisecond)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	require.Equal(t, [][]string{{"a", "b"}, {"c"}}, fake.batches, "the events before a refused one go first; the refused ones are dropped")
	require.Equal(t, 2.0, counterValue(t, m, "lintel_gateway_events_rejected_total"))
	require.Equal(t, 3.0, counterValue(t, m, "lintel_gateway_events_shipped_total"))
}

func TestFirstBadEventIsTheLowestIndexNamed(t *testing.T) {
	t.Parallel()
	require.Equal(t, 1, firstBadEvent(&apiError{Code: "VALIDATION_FAILED", Fields: []string{"events[3].id", "events[1]", "events"}}))
	require.Equal(t, -1, firstBadEvent(&apiError{Code: "VALIDATION_FAILED", Fields: []string{"events"}}))
	require.Equal(t, -1, firstBadEvent(&apiError{Code: "INTERNAL", Fields: []string{"events[0].id"}}))
	require.Equal(t, -1, firstBadEvent(nil))
}

func counterValue(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
