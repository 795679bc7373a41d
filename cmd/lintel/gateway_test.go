package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/lintel/lintel/readers/gateway"
	"github.com/lintel/lintel/readers/gateway/eventqueue"
	"github.com/lintel/lintel/readers/osdp"
	"github.com/lintel/lintel/readers/osdp/osdptest"
	"github.com/lintel/lintel/readers/serialport/ptytest"
)

// Gateway tests: the real gateway (readers/gateway, in process) driving
// simulated readers on pseudo-terminal pairs against a real server, with
// a TCP switch in between that plays a network outage.

// gatewayBundle is one test's server, gateway registration and the events
// its gateways reported.
type gatewayBundle struct {
	s       *testServer
	admin   *gqlClient
	op      *gqlClient
	viewer  *gqlClient
	tpl     string
	token   string
	gwID    string
	proxy   *switchProxy
	dataDir string
	events  *eventLog
}

func setupGateway(t *testing.T) *gatewayBundle {
	t.Helper()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	admin := s.operator(org, "admin@acme.test", caller.RoleAdmin)
	b := setupGatewayOn(t, s, admin, s.operator(org, "op@acme.test", caller.RoleOperator))
	b.viewer = s.operator(org, "viewer@acme.test", caller.RoleViewer)
	b.tpl = admin.createTemplate(staffTemplate)
	return b
}

// setupGatewayOn registers a gateway on a server set up elsewhere; the
// admin reads the events.
func setupGatewayOn(t *testing.T, s *testServer, admin, op *gqlClient) *gatewayBundle {
	t.Helper()
	b := &gatewayBundle{s: s, admin: admin, op: op, viewer: admin, proxy: newSwitchProxy(t, s.URL), dataDir: t.TempDir(), events: &eventLog{}}
	gw, id := gatewayFor(t, s, admin, "HQ", "gw1")
	b.token, b.gwID = gw.Token, id
	return b
}

// config is a gateway configuration for the test: through the switch,
// with short intervals.
func (b *gatewayBundle) config(readers ...gateway.Reader) *gateway.Config {
	return &gateway.Config{Server: b.proxy.URL(), Token: b.token, Site: "HQ", DataDir: b.dataDir,
		Heartbeat: 200 * time.Millisecond, SnapshotEvery: 100 * time.Millisecond,
		RateLimit: gateway.RateLimit{Denials: 100, Window: 10 * time.Second, Lockout: 30 * time.Second},
		Readers:   readers}
}

// gatewayRun is a gateway running in the test.
type gatewayRun struct {
	g       *gateway.Gateway
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func (b *gatewayBundle) start(t *testing.T, cfg *gateway.Config) *gatewayRun {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("LINTEL_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := gateway.New(cfg, log)
	require.NoError(t, err)
	g.OnEvent = b.events.add
	ctx, cancel := context.WithCancel(context.Background())
	r := &gatewayRun{g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- g.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *gatewayRun) stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not stop within 10 s")
	}
}

// metric returns the value of the first sample of name whose labels
// include labels, or -1 if there is none.
func (r *gatewayRun) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return metricValue(t, r.g.Gatherer(), name, labels)
}

func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

// waitOnline waits until the gateway reports the reader's port open (or
// its OSDP reader answering) — or, with want false, closed.
func (r *gatewayRun) waitOnline(t *testing.T, reader string, want bool) {
	t.Helper()
	v := 0.0
	if want {
		v = 1
	}
	require.Eventually(t, func() bool {
		return r.metric(t, "lintel_gateway_reader_online", map[string]string{"reader": reader}) == v
	}, 10*time.Second, 10*time.Millisecond, "reader %s online=%v", reader, want)
}

// waitRecords waits until the gateway holds n records: it has synced.
func (r *gatewayRun) waitRecords(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return r.metric(t, "lintel_gateway_access_list_records", nil) == float64(n)
	}, 10*time.Second, 10*time.Millisecond, "%d records synced", n)
}

// eventLog collects the events the gateways queued, in order.
type eventLog struct {
	mu     sync.Mutex
	evs    []eventqueue.Event
	signal chan struct{}
}

func (l *eventLog) add(ev eventqueue.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	if l.signal != nil {
		close(l.signal)
		l.signal = nil
	}
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

func (l *eventLog) all() []eventqueue.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]eventqueue.Event(nil), l.evs...)
}

// wait returns the first event from index from on that match accepts.
func (l *eventLog) wait(t *testing.T, from int, match func(eventqueue.Event) bool) eventqueue.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		for ; from < len(l.evs); from++ {
			if match(l.evs[from]) {
				ev := l.evs[from]
				l.mu.Unlock()
				return ev
			}
		}
		if l.signal == nil {
			l.signal = make(chan struct{})
		}
		signal := l.signal
		l.mu.Unlock()
		select {
		case <-signal:
		case <-deadline:
			t.Fatalf("no matching event within 5 s; events so far: %+v", l.all())
		}
	}
}

// decision waits for the next door decision (not an alert) from index
// from on, at reader.
func (l *eventLog) decision(t *testing.T, from int, reader string) eventqueue.Event {
	t.Helper()
	return l.wait(t, from, func(ev eventqueue.Event) bool { return ev.Kind != gateway.KindAlert && ev.ReaderID == reader })
}

// swipe has an ASCII reader send a card number line.
func swipe(t *testing.T, reader *os.File, card string) {
	t.Helper()
	_, err := reader.WriteString(card + "\r\n")
	require.NoError(t, err)
}

// present swipes a card and returns the decision.
func (b *gatewayBundle) present(t *testing.T, reader *os.File, readerID, card string) eventqueue.Event {
	t.Helper()
	from := b.events.len()
	swipe(t, reader, card)
	return b.events.decision(t, from, readerID)
}

// serverEvents returns the gateway's events as the server has them, by
// ID, with how often each ID appears.
func (b *gatewayBundle) serverEvents(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	var after any
	for range 100 {
		res := b.viewer.do(`query($f: AccessEventFilter, $a: String) { accessEvents(filter: $f, first: 500, after: $a) {
			nodes { id } endCursor hasNextPage } }`, vars{"f": vars{"gatewayId": b.gwID}, "a": after}).requireOK(t)
		for _, n := range res.get("accessEvents.nodes").([]any) {
			out[n.(map[string]any)["id"].(string)]++
		}
		if res.get("accessEvents.hasNextPage") != true {
			return out
		}
		after = res.str("accessEvents.endCursor")
	}
	t.Fatal("the event listing never ends")
	return nil
}

// requireEveryEventOnce waits until the server has every event the
// gateways queued and checks it has each exactly once and nothing else.
func (b *gatewayBundle) requireEveryEventOnce(t *testing.T) {
	t.Helper()
	want := map[string]int{}
	for _, ev := range b.events.all() {
		want[ev.ID.String()]++
	}
	var have map[string]int
	require.Eventually(t, func() bool {
		have = b.serverEvents(t)
		return len(have) >= len(want)
	}, 15*time.Second, 50*time.Millisecond, "the server has %d of %d events", len(have), len(want))
	require.Equal(t, want, have, "every event exactly once, and no other")
	for id, n := range want {
		require.Equal(t, 1, n, "event %s queued once", id)
	}
}

func asciiReader(id, port string) gateway.Reader {
	return gateway.Reader{ID: id, Port: port, Protocol: gateway.ProtocolASCII, Door: "Door " + id}
}

func TestGatewayDecidesLocallyThroughOutagesAndRestarts(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	ada := b.op.addRecord(b.tpl, "100", "ada@acme.test", "Ada")
	b.op.addRecord(b.tpl, "101", "bob@acme.test", "Bob")
	reader, port := ptytest.NewPair(t)
	cfg := func() *gateway.Config { return b.config(asciiReader("front", port)) }
	gw := b.start(t, cfg())
	gw.waitOnline(t, "front", true)
	gw.waitRecords(t, 2)
	require.Eventually(t, func() bool { return gw.metric(t, "lintel_gateway_subscribed", nil) == 1 }, 10*time.Second, 10*time.Millisecond)

	// A known card opens the door, and the server hears of it.
	ev := b.present(t, reader, "front", "100")
	require.Equal(t, "GRANTED", ev.Decision, "%+v", ev)
	require.Equal(t, ada, ev.RecordID.String())
	require.Equal(t, "100", ev.CardID)
	require.Equal(t, "Door front", ev.Door)
	require.Equal(t, "CARD", ev.Kind)
	require.Eventually(t, func() bool { return b.serverEvents(t)[ev.ID.String()] == 1 }, 5*time.Second, 20*time.Millisecond)

	// Archived on the server, the card is refused at the next swipe within
	// a second: swipe every 10 ms until it is.
	from := b.events.len()
	asked := time.Now()
	b.op.do(recStatusMutation("archiveRecord"), vars{"id": ada}).requireOK(t)
	archived := time.Now()
	var denied eventqueue.Event
	for {
		swipe(t, reader, "100")
		time.Sleep(10 * time.Millisecond)
		if i := indexOf(b.events.all()[from:], func(ev eventqueue.Event) bool { return ev.Decision == "DENIED" }); i >= 0 {
			denied = b.events.all()[from+i]
			break
		}
		require.Less(t, time.Since(archived), 5*time.Second, "the card still opens the door")
	}
	latency := denied.At.Sub(archived)
	t.Logf("archive → denial at the door: %v after the mutation returned (it took %v)", latency, archived.Sub(asked))
	require.Equal(t, "ARCHIVED", denied.Reason)
	require.Less(t, latency, time.Second, "the archive took too long to reach the door")

	// The server goes away: doors go on deciding from the list held, and
	// events queue up.
	b.proxy.set(false)
	require.Equal(t, "DENIED", b.present(t, reader, "front", "100").Decision)
	require.Equal(t, "GRANTED", b.present(t, reader, "front", "101").Decision)
	require.Equal(t, "UNKNOWN_CARD", b.present(t, reader, "front", "555").Reason)
	require.GreaterOrEqual(t, gw.metric(t, "lintel_gateway_queue_depth", nil), 3.0)

	// The gateway restarts while the server is still away: it starts from
	// its snapshot and decides as before.
	gw.stop(t)
	gw = b.start(t, cfg())
	gw.waitOnline(t, "front", true)
	require.GreaterOrEqual(t, gw.metric(t, "lintel_gateway_access_list_records", nil), 2.0)
	require.Equal(t, "GRANTED", b.present(t, reader, "front", "101").Decision, "the snapshot was not loaded")
	ev = b.present(t, reader, "front", "100")
	require.Equal(t, "ARCHIVED", ev.Reason)
	require.Equal(t, ada, ev.RecordID.String())
	require.GreaterOrEqual(t, gw.metric(t, "lintel_gateway_queue_depth", nil), 5.0, "events from before the restart are still queued")

	// The server is back: every event arrives, once.
	b.proxy.set(true)
	b.requireEveryEventOnce(t)
	require.Eventually(t, func() bool { return gw.metric(t, "lintel_gateway_queue_depth", nil) == 0 }, 5*time.Second, 20*time.Millisecond)

	// And the gateway syncs again: a new card works at once.
	b.op.addRecord(b.tpl, "102", "cy@acme.test", "Cy")
	require.Eventually(t, func() bool { return b.present(t, reader, "front", "102").Decision == "GRANTED" }, 5*time.Second, 50*time.Millisecond)
	b.requireEveryEventOnce(t)
}

func indexOf[T any](s []T, f func(T) bool) int {
	for i, v := range s {
		if f(v) {
			return i
		}
	}
	return -1
}

func TestGatewayReopensAnUnpluggedReaderPort(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	b.op.addRecord(b.tpl, "100", "ada@acme.test", "Ada")
	reader, dev := ptytest.NewPair(t)
	link := ptytest.Link(t, dev)
	gw := b.start(t, b.config(asciiReader("front", link)))
	gw.waitOnline(t, "front", true)
	gw.waitRecords(t, 1)
	require.Equal(t, "GRANTED", b.present(t, reader, "front", "100").Decision)

	// Unplugged: the port hangs up and its device goes.
	require.NoError(t, reader.Close())
	gw.waitOnline(t, "front", false)
	b.events.wait(t, 0, func(ev eventqueue.Event) bool { return ev.Kind == "ALERT" && ev.Reason == gateway.ReaderOffline })

	// Plugged in again under a new device node.
	reader, dev = ptytest.NewPair(t)
	ptytest.Relink(t, link, dev)
	gw.waitOnline(t, "front", true)
	require.Equal(t, "GRANTED", b.present(t, reader, "front", "100").Decision)
	b.events.wait(t, 0, func(ev eventqueue.Event) bool { return ev.Kind == "ALERT" && ev.Reason == gateway.ReaderOnline })
	b.requireEveryEventOnce(t)
}

func TestGatewayDropsAndCountsGarbageAndDecodesTheNextGoodFrame(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	b.op.addRecord(b.tpl, "100", "ada@acme.test", "Ada")
	b.op.addRecord(b.tpl, "3735928559", "bob@acme.test", "Bob") // 0xDEADBEEF
	emReader, emPort := ptytest.NewPair(t)
	asciiDev, asciiPort := ptytest.NewPair(t)
	gw := b.start(t, b.config(
		gateway.Reader{ID: "em", Port: emPort, Protocol: gateway.ProtocolEM4100, Door: "Garage"},
		asciiReader("line", asciiPort)))
	gw.waitOnline(t, "em", true)
	gw.waitOnline(t, "line", true)
	gw.waitRecords(t, 2)

	// EM4100: line noise, a frame with a bad checksum, a frame cut short,
	// then a good frame.
	bad := em4100.Frame(0x01DEADBEEF)
	bad[11] ^= 0x01 // a checksum digit
	var stream []byte
	stream = append(stream, "\xff\x00noise"...)
	stream = append(stream, bad...)
	stream = append(stream, em4100.Frame(0x0100000064)[:7]...)
	stream = append(stream, em4100.Frame(0x01DEADBEEF)...)
	from := b.events.len()
	_, err := emReader.Write(stream)
	require.NoError(t, err)
	ev := b.events.decision(t, from, "em")
	require.Equal(t, "GRANTED", ev.Decision)
	require.Equal(t, "3735928559", ev.CardID)
	for reason, least := range map[string]float64{"garbage": 7, "bad_checksum": 1, "truncated": 1} {
		require.Eventually(t, func() bool {
			return gw.metric(t, "lintel_gateway_frames_dropped_total", map[string]string{"reader": "em", "reason": reason}) >= least
		}, 2*time.Second, 10*time.Millisecond, "em drops for %s", reason)
	}
	require.Equal(t, 1, countDecisions(b.events.all()[from:], "em"), "nothing but the good frame was decided on")

	// ASCII: a line that is no card number, then a good one.
	from = b.events.len()
	swipe(t, asciiDev, "12ab")
	swipe(t, asciiDev, "100")
	ev = b.events.decision(t, from, "line")
	require.Equal(t, "GRANTED", ev.Decision)
	require.Equal(t, "100", ev.CardID)
	require.Eventually(t, func() bool {
		return gw.metric(t, "lintel_gateway_frames_dropped_total", map[string]string{"reader": "line", "reason": "not_a_card"}) == 1
	}, 2*time.Second, 10*time.Millisecond)
	require.Equal(t, 2.0, gw.metric(t, "lintel_gateway_decisions_total", map[string]string{"result": "granted"}))
	require.Equal(t, 2.0, gw.metric(t, "lintel_gateway_decision_seconds", nil), "both decisions timed")
}

func countDecisions(evs []eventqueue.Event, reader string) int {
	n := 0
	for _, ev := range evs {
		if ev.ReaderID == reader && ev.Kind != gateway.KindAlert {
			n++
		}
	}
	return n
}

func TestGatewayRateLimitsAnUnknownCardFlood(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	b.op.addRecord(b.tpl, "100", "ada@acme.test", "Ada")
	reader, port := ptytest.NewPair(t)
	cfg := b.config(asciiReader("front", port))
	cfg.RateLimit = gateway.RateLimit{Denials: 3, Window: 10 * time.Second, Lockout: 30 * time.Second}
	gw := b.start(t, cfg)
	gw.waitOnline(t, "front", true)
	gw.waitRecords(t, 1)
	require.Equal(t, "GRANTED", b.present(t, reader, "front", "100").Decision)

	var reasons []string
	for _, card := range []string{"900", "901", "902", "903", "904", "100"} {
		reasons = append(reasons, b.present(t, reader, "front", card).Reason)
	}
	require.Equal(t, []string{"UNKNOWN_CARD", "UNKNOWN_CARD", "UNKNOWN_CARD", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"}, reasons,
		"locked out after three denials, a known card included")
	var alerts []eventqueue.Event
	for _, ev := range b.events.all() {
		if ev.Kind == gateway.KindAlert && ev.Reason == gateway.RateLimited {
			alerts = append(alerts, ev)
		}
	}
	require.Len(t, alerts, 1, "one alert when the lockout starts")
	require.Equal(t, "front", alerts[0].ReaderID)
	require.Equal(t, 3.0, gw.metric(t, "lintel_gateway_decisions_total", map[string]string{"result": "denied", "reason": "RATE_LIMITED"}))

	b.requireEveryEventOnce(t)
	res := b.viewer.do(`query($f: AccessEventFilter) { accessEvents(filter: $f) { nodes { kind reason readerId decision } } }`,
		vars{"f": vars{"gatewayId": b.gwID, "readerId": "front"}}).requireOK(t)
	n := 0
	for _, e := range res.get("accessEvents.nodes").([]any) {
		if m := e.(map[string]any); m["kind"] == "ALERT" && m["reason"] == "RATE_LIMITED" {
			require.Nil(t, m["decision"])
			n++
		}
	}
	require.Equal(t, 1, n, "the server has the one alert")
}

func TestGatewayLetsAWalletCodeInOnceAndRefusesItWhenRevoked(t *testing.T) {
	t.Parallel()
	w := newWalletSetup(t, nil)
	b := setupGatewayOn(t, w.s, w.admin, w.op)
	scanner, port := ptytest.NewPair(t)
	gw := b.start(t, b.config(gateway.Reader{ID: "lobby", Port: port, Protocol: gateway.ProtocolQR, Door: "Lobby"}))
	gw.waitOnline(t, "lobby", true)
	gw.waitRecords(t, 1)

	tok := w.invite(t, w.rec, "ada@acme.test", 0)
	phone := newDevice(t)
	res := w.s.anonymous().do(redeemMutation, vars{"t": tok, "u": "ada@acme.test", "a": []string{"Dark Blue", "Zürich"}, "k": phone.jwk}).requireOK(t)
	credential := res.str("redeemInvitation.credential")

	// The phone's code opens the door once; shown again, it is refused.
	code := phone.code(t, credential)
	var ev eventqueue.Event
	require.Eventually(t, func() bool {
		// Until the issuing key has reached the gateway the code is
		// refused as signed by an unknown key.
		ev = b.present(t, scanner, "lobby", code)
		return ev.Reason != "BAD_SIGNATURE"
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, "GRANTED", ev.Decision, "%+v", ev)
	require.Equal(t, "CODE", ev.Kind)
	require.Equal(t, w.rec, ev.RecordID.String())
	require.Equal(t, "1001", ev.CardID)
	require.Equal(t, "REPLAYED", b.present(t, scanner, "lobby", code).Reason)
	require.Equal(t, "STALE_CODE", b.present(t, scanner, "lobby", mustSignCode(t, credential, time.Now().Add(-time.Hour), phone)).Reason)

	// The phone is lost: its credential is revoked on the server, and the
	// next code is refused within a second.
	from := b.events.len()
	w.op.do(`mutation($id: ID!) { resetCredential(recordId: $id) { id } }`, vars{"id": w.rec}).requireOK(t)
	revoked := time.Now()
	for {
		swipe(t, scanner, phone.code(t, credential))
		time.Sleep(10 * time.Millisecond)
		if i := indexOf(b.events.all()[from:], func(ev eventqueue.Event) bool { return ev.Reason == "REVOKED" }); i >= 0 {
			ev = b.events.all()[from+i]
			break
		}
		require.Less(t, time.Since(revoked), 5*time.Second, "the revoked credential still opens the door")
	}
	t.Logf("revocation → denial at the door: %v after the mutation returned", ev.At.Sub(revoked))
	require.Less(t, ev.At.Sub(revoked), time.Second)
	b.requireEveryEventOnce(t)
}

func mustSignCode(t *testing.T, credential string, at time.Time, d device) string {
	t.Helper()
	c, err := credentials.SignCode(credential, at, d.key)
	require.NoError(t, err)
	return c
}

// h10301 is the 26-bit Wiegand frame of a facility and card: even parity
// over the first 12 data bits, odd over the last 12.
func h10301(facility, card uint32) []bool {
	bits := make([]bool, 26)
	v := facility<<16 | card
	for i := range 24 {
		bits[1+i] = v>>(23-i)&1 == 1
	}
	ones := func(bs []bool) int {
		n := 0
		for _, b := range bs {
			if b {
				n++
			}
		}
		return n
	}
	bits[0] = ones(bits[1:13])%2 == 1
	bits[25] = ones(bits[13:25])%2 == 0
	return bits
}

func TestGatewayDrivesOSDPReadersAndReportsTheirState(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	tpl := maps.Clone(staffTemplate)
	tpl["name"], tpl["cardIdFormat"] = "Wiegand staff", "WIEGAND26"
	wiegand := b.op.addRecord(b.admin.createTemplate(tpl), "123:4567", "ada@acme.test", "Ada")

	// Two readers on one RS-485 line.
	master, port := ptytest.NewPair(t)
	front, side := osdptest.NewPD(1), osdptest.NewPD(2)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- osdptest.Serve(ctx, ptyMaster{master}, front, side) }()
	t.Cleanup(func() {
		cancel()
		master.Close()
		<-served
	})
	reader := func(id string, addr int) gateway.Reader {
		return gateway.Reader{ID: id, Port: port, Protocol: gateway.ProtocolOSDP, Address: addr, Door: "Door " + id,
			CardFormat: "WIEGAND26", Pulse: 2 * time.Second}
	}
	cfg := b.config(reader("front", 1), reader("side", 2))
	cfg.OSDP = gateway.OSDPTiming{PollInterval: 50 * time.Millisecond, ReplyTimeout: 100 * time.Millisecond,
		OfflineAfter: time.Second, OfflineRetry: 200 * time.Millisecond}
	gw := b.start(t, cfg)
	gw.waitOnline(t, "front", true)
	gw.waitOnline(t, "side", true)
	gw.waitRecords(t, 1)
	online := func(reader string) any {
		res := b.viewer.do(`{ gateways { id readers { readerId online protocol lastSeenAt } } }`, nil).requireOK(t)
		for _, r := range res.get("gateways.0.readers").([]any) {
			if m := r.(map[string]any); m["readerId"] == reader {
				require.Equal(t, "OSDP", m["protocol"])
				return m["online"]
			}
		}
		return nil
	}
	require.Eventually(t, func() bool { return online("front") == true && online("side") == true }, 5*time.Second, 50*time.Millisecond)

	// A card: granted, and the reader gets the relay pulse, green LED and
	// beep.
	from := b.events.len()
	front.PresentCard(h10301(123, 4567))
	ev := b.events.decision(t, from, "front")
	require.Equal(t, "GRANTED", ev.Decision, "%+v", ev)
	require.Equal(t, "123:4567", ev.CardID)
	require.Equal(t, wiegand, ev.RecordID.String())
	require.Eventually(t, func() bool {
		return len(front.Outputs()) == 1 && len(front.LEDs()) >= 1 && len(front.Buzzers()) == 1
	}, 2*time.Second, 10*time.Millisecond)
	out := front.Outputs()[0]
	require.Equal(t, byte(0), out.Number)
	require.Equal(t, uint16(20), out.Timer, "2 s in 100 ms ticks")
	require.Empty(t, side.Outputs(), "the other door stays shut")

	// An unknown card at the other reader: denied, red LED and beeps, no
	// relay.
	from = b.events.len()
	side.PresentCard(h10301(9, 9))
	ev = b.events.decision(t, from, "side")
	require.Equal(t, "UNKNOWN_CARD", ev.Reason)
	require.Eventually(t, func() bool { return len(side.LEDs()) >= 1 && len(side.Buzzers()) == 1 }, 2*time.Second, 10*time.Millisecond)
	require.Empty(t, side.Outputs())
	require.Equal(t, osdp.Red, side.LEDs()[0].TempOnColor)

	// A misread (parity error) is dropped and counted, not decided on.
	misread := h10301(123, 4567)
	misread[5] = !misread[5]
	from = b.events.len()
	front.PresentCard(misread)
	require.Eventually(t, func() bool {
		return gw.metric(t, "lintel_gateway_frames_dropped_total", map[string]string{"reader": "front", "reason": "bad_card"}) == 1
	}, 2*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, countDecisions(b.events.all()[from:], "front"))

	// The front reader falls silent: offline at the server; back, online.
	front.SetSilent(true)
	require.Eventually(t, func() bool { return online("front") == false }, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, true, online("side"), "the other reader on the line is fine")
	front.SetSilent(false)
	require.Eventually(t, func() bool { return online("front") == true }, 5*time.Second, 50*time.Millisecond)
	from = b.events.len()
	front.PresentCard(h10301(123, 4567))
	require.Equal(t, "GRANTED", b.events.decision(t, from, "front").Decision)

	b.requireEveryEventOnce(t)
	var alerts []string
	for _, ev := range b.events.all() {
		if ev.Kind == gateway.KindAlert {
			alerts = append(alerts, ev.ReaderID+" "+ev.Reason)
		}
	}
	require.Equal(t, []string{"front READER_OFFLINE", "front READER_ONLINE"}, alerts)
}

// ptyMaster is the reader's end of a pseudo-terminal for osdptest.Serve:
// while no one has the terminal end open, as before the gateway opens it,
// reads fail with EIO, which here is silence on the line.
type ptyMaster struct{ f *os.File }

func (m ptyMaster) Read(b []byte) (int, error) {
	n, err := m.f.Read(b)
	if errors.Is(err, syscall.EIO) {
		time.Sleep(5 * time.Millisecond)
		return n, io.EOF
	}
	return n, err
}

func (m ptyMaster) Write(b []byte) (int, error) { return m.f.Write(b) }

// switchProxy forwards TCP connections to the server while on; switched
// off, it cuts every connection and refuses new ones, as a network outage
// (or a stopped server) does.
type switchProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	on    bool
	conns map[net.Conn]struct{}
}

func newSwitchProxy(t *testing.T, serverURL string) *switchProxy {
	t.Helper()
	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &switchProxy{ln: ln, target: u.Host, on: true, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.set(false)
	})
	return p
}

// URL is the server's URL through the switch.
func (p *switchProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *switchProxy) set(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = on
	if !on {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

func (p *switchProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *switchProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *switchProxy) forward(c net.Conn) {
	if !p.track(c) {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(up) {
		c.Close()
		return
	}
	go func() {
		_, _ = io.Copy(up, c)
		up.Close()
		c.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestGatewayCommandRunsFromAConfigFileAndServesMetrics(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	b.op.addRecord(b.tpl, "100", "ada@acme.test", "Ada")
	reader, port := ptytest.NewPair(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte(b.token+"\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metricsAddr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`server: %s
token_file: token
site: HQ
data_dir: %s
metrics_addr: %s
heartbeat: 200ms
readers:
  - id: front
    port: %s
    protocol: ascii
    door: Front door
`, b.s.URL, filepath.Join(dir, "data"), metricsAddr, port)
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))

	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gateway", "--config", path}, io.Discard, &stderr, func(string) string { return "" })
	}()
	var stopErr error
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case stopErr = <-done:
		case <-time.After(10 * time.Second):
			stopErr = errors.New("lintel gateway did not stop within 10 s")
		}
	})
	t.Cleanup(stop)

	scrape := func() string {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(), `lintel_gateway_reader_online{reader="front"} 1`) &&
			strings.Contains(scrape(), "lintel_gateway_access_list_records 1")
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		swipe(t, reader, "100")
		return strings.Contains(scrape(), `lintel_gateway_decisions_total{reason="none",result="granted"}`)
	}, 5*time.Second, 100*time.Millisecond)
	m := scrape()
	for _, name := range []string{`lintel_gateway_decision_seconds_bucket{le="5e-05"}`, "lintel_gateway_queue_depth", "lintel_gateway_access_list_lag_seconds",
		"lintel_gateway_access_list_version"} {
		require.Contains(t, m, name)
	}
	require.Eventually(t, func() bool { return len(b.serverEvents(t)) >= 1 }, 5*time.Second, 20*time.Millisecond)

	stop()
	require.NoError(t, stopErr)
	logs := stderr.String()
	require.Contains(t, logs, `"msg":"door decision"`, "JSON logs")
	require.Contains(t, logs, `"msg":"gateway stopped"`)
}

func TestGatewayCommandRefusesABadConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte("server: http://localhost:1\ntoken: lgw_x\ndata_dir: /tmp/x\nreaders:\n  - id: a\n    port: /dev/null\n    protocol: telnet\n    door: A\n"), 0o600))
	var stderr syncBuffer
	err := run(context.Background(), []string{"gateway", "--config", path}, io.Discard, &stderr, func(string) string { return "" })
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code)
	require.ErrorContains(t, err, `readers[0] (a).protocol: "telnet" is not osdp, em4100, ascii or qr`)
}
