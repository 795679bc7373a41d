package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lintel/lintel/readers/gateway/accesslist"
	"github.com/lintel/lintel/readers/gateway/eventqueue"
	"github.com/lintel/lintel/readers/gateway/ratelimit"
)

// Reasons the gateway adds to those of accesslist.
const (
	// RateLimited: the reader is locked out after repeated denials. Also
	// the reason of the ALERT event sent when a lockout starts.
	RateLimited = ratelimit.Reason
	// ReaderOffline and ReaderOnline are the reasons of ALERT events sent
	// when a reader stops answering (or its port goes) and comes back.
	ReaderOffline = "READER_OFFLINE"
	ReaderOnline  = "READER_ONLINE"
)

// Files in Config.DataDir.
const (
	SnapshotFile = "access-list.snap"
	QueueDir     = "events"
)

// Gateway drives a site's door readers and decides at the door from its
// copy of the access list. Build one with New and start it with Run.
type Gateway struct {
	// OnEvent, if set before Run, is called with every access event once
	// it is queued. It must not block: readers wait for it.
	OnEvent func(eventqueue.Event)

	cfg     *Config
	log     *slog.Logger
	list    *accesslist.List
	queue   *eventqueue.Queue
	limiter *ratelimit.Limiter
	metrics *metrics
	client  *client
	syncer  *Syncer
	shipper *Shipper
	states  *readerStates
	drivers []func(context.Context) error

	metricsLn net.Listener
	heartbeat chan struct{}
	running   atomic.Bool
	closeOnce sync.Once
}

// Run runs a gateway with cfg until ctx ends.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	g, err := New(cfg, log)
	if err != nil {
		return err
	}
	return g.Run(ctx)
}

// New checks cfg, loads the access-list snapshot if there is one, opens
// the event queue and the metrics listener, and prepares the readers. A
// gateway that New returned and that is never Run must be closed.
func New(cfg *Config, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Site != "" {
		log = log.With("site", cfg.Site)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	g := &Gateway{cfg: cfg, log: log, metrics: newMetrics(), client: newClient(cfg.Server, cfg.Token),
		limiter:   ratelimit.New(cfg.RateLimit.Denials, cfg.RateLimit.Window, cfg.RateLimit.Lockout),
		heartbeat: make(chan struct{}, 1)}

	snapshot := filepath.Join(cfg.DataDir, SnapshotFile)
	list, err := accesslist.Load(snapshot)
	switch {
	case err == nil:
		log.Info("access list loaded from the snapshot", "records", list.Len(), "cursor", list.Cursor(), "synced_at", list.SyncedAt())
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no access-list snapshot yet: every card is unknown until the first sync", "path", snapshot)
		list = accesslist.New()
	default:
		// Refusing to start would keep every door shut even once the
		// server answers; an empty list denies until the first sync.
		log.Error("the access-list snapshot cannot be read; starting with an empty list until the first sync", "path", snapshot, "err", err)
		list = accesslist.New()
	}
	g.list = list

	g.queue, err = eventqueue.Open(filepath.Join(cfg.DataDir, QueueDir))
	if err != nil {
		return nil, fmt.Errorf("event queue: %w", err)
	}
	if n := g.queue.Len(); n > 0 {
		log.Info("access events from before the restart wait to be shipped", "queued", n)
	}
	g.syncer = newSyncer(list, g.client, log, g.metrics, cfg, snapshot)
	g.shipper = newShipper(g.queue, g.client, log, g.metrics)
	g.syncer.onConnect = g.shipper.Kick
	g.metrics.gauges(g.queue.Len, list.Len, func() float64 { return g.syncer.lag().Seconds() }, list.Cursor)
	g.states = newReaderStates(cfg.Readers, g.readerChanged)

	if err := g.prepareReaders(); err != nil {
		g.Close()
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if g.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			g.Close()
			return nil, fmt.Errorf("metrics_addr: %w", err)
		}
	}
	return g, nil
}

// prepareReaders builds a driver per serial port: one for each ascii,
// em4100 or qr reader, one per OSDP line for the OSDP readers on it.
func (g *Gateway) prepareReaders() error {
	lines := map[string][]*Reader{}
	var order []string
	for i := range g.cfg.Readers {
		r := &g.cfg.Readers[i]
		g.metrics.readerOnline.WithLabelValues(r.ID).Set(0)
		if r.Protocol == ProtocolOSDP {
			if lines[r.Port] == nil {
				order = append(order, r.Port)
			}
			lines[r.Port] = append(lines[r.Port], r)
			continue
		}
		mk, err := newSerialDecoder(r, g.log)
		if err != nil {
			return err
		}
		sr := &serialReader{g: g, r: r, newDecoder: mk}
		g.drivers = append(g.drivers, sr.run)
	}
	for _, port := range order {
		b, err := newOSDPBus(g, lines[port])
		if err != nil {
			return err
		}
		g.drivers = append(g.drivers, b.run)
	}
	return nil
}

// MetricsAddr returns the address metrics are served on, or "" if none.
func (g *Gateway) MetricsAddr() string {
	if g.metricsLn == nil {
		return ""
	}
	return g.metricsLn.Addr().String()
}

// Gatherer returns the gateway's metrics.
func (g *Gateway) Gatherer() prometheus.Gatherer { return g.metrics.reg }

// Close releases the event queue and the metrics listener. Run calls it
// when it returns; calling it again does nothing.
func (g *Gateway) Close() error {
	var err error
	g.closeOnce.Do(func() {
		if g.metricsLn != nil {
			g.metricsLn.Close()
		}
		if g.queue != nil {
			err = g.queue.Close()
		}
	})
	return err
}

// Run drives the readers, syncs the access list, ships events and sends
// heartbeats until ctx ends, then writes the snapshot, closes the queue and
// returns nil. It returns early with an error only if a reader cannot be
// driven at all.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("gateway: Run called twice")
	}
	defer g.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.log.Info("gateway starting", "server", g.cfg.Server, "readers", len(g.cfg.Readers), "records", g.list.Len(), "queued", g.queue.Len())

	var srv *http.Server
	if g.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(g.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				g.log.Error("metrics server stopped", "err", err)
			}
		}()
		g.log.Info("serving metrics", "addr", "http://"+g.metricsLn.Addr().String()+"/metrics")
	}

	var wg sync.WaitGroup
	var failed error
	var failOnce sync.Once
	wg.Go(func() { g.syncer.Run(ctx) })
	wg.Go(func() { g.shipper.Run(ctx) })
	wg.Go(func() { g.heartbeatLoop(ctx) })
	for _, run := range g.drivers {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				failOnce.Do(func() { failed = err })
				cancel()
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	g.finalHeartbeat()
	g.log.Info("gateway stopped", "queued", g.queue.Len())
	return failed
}

// present decides on a credential read at reader r, tells the reader and
// queues the event. bus is r's OSDP line, or nil for readers without a
// feedback channel. readAt is when the read was decoded.
func (g *Gateway) present(ctx context.Context, r *Reader, bus *osdpBus, p presentation, readAt time.Time) {
	now := time.Now()
	var d accesslist.Decision
	switch {
	case g.limiter.Locked(r.ID, now):
		d = accesslist.Decision{Reason: RateLimited, Detail: "the reader is locked out after repeated denials"}
		if p.kind == KindCard {
			d.CardID = p.value
		}
	case p.kind == KindCode:
		d = g.list.DecideCode(ctx, p.value, now)
	default:
		d = g.list.DecideCard(p.value, now)
	}
	justLocked := !d.Granted && d.Reason != RateLimited && g.limiter.Denied(r.ID, now)
	if p.kind == KindCode && d.Reason == accesslist.BadSignature && strings.HasPrefix(d.Detail, "unknown issuing key") {
		// A key the server made since the last pull (its first
		// invitation, a rotation): nothing pushes those, so fetch the
		// keys now and the holder's next scan is decided with them.
		g.syncer.Hint()
	}

	if bus != nil {
		if err := bus.feedback(r, d.Granted); err != nil {
			g.log.Warn("the reader could not be told the decision", "reader", r.ID, "granted", d.Granted, "err", err)
		}
	}
	elapsed := time.Since(readAt)
	g.metrics.decision(d.Granted, d.Reason, elapsed.Seconds())

	decision := "DENIED"
	if d.Granted {
		decision = "GRANTED"
	}
	g.log.Info("door decision", "reader", r.ID, "door", r.Door, "kind", p.kind, "card", d.CardID, "decision", decision,
		"reason", d.Reason, "record", d.RecordID, "took", elapsed)
	g.record(eventqueue.Event{ReaderID: r.ID, Door: r.Door, At: now, Kind: p.kind, CardID: d.CardID,
		RecordID: copyID(d.RecordID), Decision: decision, Reason: d.Reason, Detail: d.Detail})
	if justLocked {
		g.log.Warn("reader locked out after repeated denials", "reader", r.ID, "door", r.Door,
			"denials", g.cfg.RateLimit.Denials, "window", g.cfg.RateLimit.Window, "lockout", g.cfg.RateLimit.Lockout)
		g.record(eventqueue.Event{ReaderID: r.ID, Door: r.Door, At: now, Kind: KindAlert, Reason: RateLimited,
			Detail: fmt.Sprintf("%d denials within %v: reader locked out for %v", g.cfg.RateLimit.Denials, g.cfg.RateLimit.Window, g.cfg.RateLimit.Lockout)})
	}
}

func copyID(id *uuid.UUID) *uuid.UUID {
	if id == nil {
		return nil
	}
	c := *id
	return &c
}

// record queues an event for the server.
func (g *Gateway) record(ev eventqueue.Event) {
	ev.ID = newEventID()
	ev.CardID = truncate(ev.CardID, 200)
	ev.Detail = truncate(ev.Detail, 900)
	if err := g.queue.Append(ev); err != nil {
		g.metrics.eventsLost.Inc()
		g.log.Error("access event could not be queued; the server will not see it", "event", ev.ID, "reader", ev.ReaderID, "err", err)
		return
	}
	g.shipper.Appended()
	if g.OnEvent != nil {
		g.OnEvent(ev)
	}
}

// newEventID returns a time-ordered UUID, so events sort by creation in
// the server's index.
func newEventID() uuid.UUID {
	if id, err := uuid.NewV7(); err == nil {
		return id
	}
	return uuid.New()
}

// readerChanged reacts to a reader going online or offline. A reader
// that was never online yet (still starting) raises no alert; one that
// was raises READER_OFFLINE, and READER_ONLINE when it is back.
func (g *Gateway) readerChanged(r *Reader, online, wasOnline bool) {
	v := 0.0
	if online {
		v = 1
	}
	g.metrics.readerOnline.WithLabelValues(r.ID).Set(v)
	notify(g.heartbeat)
	if !wasOnline {
		if !online {
			g.log.Warn("reader not online yet", "reader", r.ID, "door", r.Door)
		} else {
			g.log.Info("reader online", "reader", r.ID, "door", r.Door)
		}
		return
	}
	reason, detail := ReaderOnline, "the reader answers again"
	if !online {
		reason, detail = ReaderOffline, "the reader stopped answering or its port went away"
		g.log.Warn("reader offline", "reader", r.ID, "door", r.Door)
	} else {
		g.log.Info("reader online again", "reader", r.ID, "door", r.Door)
	}
	g.record(eventqueue.Event{ReaderID: r.ID, Door: r.Door, At: time.Now(), Kind: KindAlert, Reason: reason, Detail: detail})
}

const reportStatus = `mutation($readers: [ReaderStatusInput!]!, $version: String) {
	reportGatewayStatus(readers: $readers, accessListVersion: $version) }`

// heartbeatLoop reports the readers' states every heartbeat interval, and
// at once when one changes.
func (g *Gateway) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.Heartbeat)
	defer t.Stop()
	failures := 0
	for {
		err := g.sendHeartbeat(ctx, g.states.report(false))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			if failures == 1 {
				g.log.Warn("heartbeat failed", "err", err)
			}
		default:
			if failures > 0 {
				g.log.Info("heartbeat sent again", "after_failures", failures)
			}
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.heartbeat:
		}
	}
}

// finalHeartbeat tells the server, if it is there, that the readers are
// no longer driven.
func (g *Gateway) finalHeartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.sendHeartbeat(ctx, g.states.report(true)); err != nil {
		g.log.Debug("last heartbeat not sent", "err", err)
	}
}

func (g *Gateway) sendHeartbeat(ctx context.Context, readers []map[string]any) error {
	vars := map[string]any{"readers": readers}
	if c := g.list.Cursor(); strings.HasPrefix(c, "d:") {
		vars["version"] = c
	}
	return g.client.do(ctx, reportStatus, vars, nil)
}

// readerStates tracks whether each reader is online.
type readerStates struct {
	mu    sync.Mutex
	order []*readerState
	byID  map[string]*readerState
	// onChange is called outside the lock when a reader's state is set
	// for the first time or changes; wasOnline says whether it was ever
	// online before this change.
	onChange func(r *Reader, online, wasOnline bool)
}

type readerState struct {
	r          *Reader
	known      bool // a state was set at least once
	online     bool
	everOnline bool
	lastSeen   time.Time
}

func newReaderStates(readers []Reader, onChange func(r *Reader, online, wasOnline bool)) *readerStates {
	s := &readerStates{byID: map[string]*readerState{}, onChange: onChange}
	for i := range readers {
		st := &readerState{r: &readers[i]}
		s.order = append(s.order, st)
		s.byID[readers[i].ID] = st
	}
	return s
}

// set records a reader's state and, if seen is not zero, when it last
// answered.
func (s *readerStates) set(id string, online bool, seen time.Time) {
	s.mu.Lock()
	st := s.byID[id]
	if st == nil {
		s.mu.Unlock()
		return
	}
	if seen.After(st.lastSeen) {
		st.lastSeen = seen
	}
	changed, wasOnline := !st.known || st.online != online, st.everOnline
	st.known, st.online = true, online
	st.everOnline = st.everOnline || online
	s.mu.Unlock()
	if changed {
		s.onChange(st.r, online, wasOnline)
	}
}

// seen records that a reader sent something.
func (s *readerStates) seen(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.byID[id]; st != nil && at.After(st.lastSeen) {
		st.lastSeen = at
	}
}

// report returns the states as ReaderStatusInput values; stopping reports
// every reader offline.
func (s *readerStates) report(stopping bool) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, len(s.order))
	for i, st := range s.order {
		m := map[string]any{"readerId": st.r.ID, "door": st.r.Door, "protocol": strings.ToUpper(st.r.Protocol),
			"online": st.online && !stopping}
		if !st.lastSeen.IsZero() {
			m["lastSeenAt"] = st.lastSeen.UTC().Format(time.RFC3339Nano)
		}
		out[i] = m
	}
	return out
}
