package main

// `lintel bench gateway`: the door gateway's speed on this machine: the
// cost of a decision against a large access list, a full sync from a real
// in-process server, frame-in → reply/decision latency per protocol over
// pseudo-terminal pairs driving the real readers/gateway runtime, and how
// long a record archived on the server takes to be refused at the door.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/templates"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/lintel/lintel/readers/gateway"
	"github.com/lintel/lintel/readers/gateway/accesslist"
	"github.com/lintel/lintel/readers/gateway/eventqueue"
	"github.com/lintel/lintel/readers/osdp"
	"github.com/lintel/lintel/readers/osdp/osdptest"
	"github.com/lintel/lintel/readers/serialport/ptypair"
)

const benchGatewayUsage = `usage: lintel bench gateway [--cards N] [--sync N] [--swipes N] [--revocations N]
                            [--database-url URL] [--data-dir DIR]

Measures the door gateway (readers/gateway) on this machine:
  decision      accesslist.DecideCard against an in-memory list of --cards cards: ns/op,
                and p50/p99 of single decisions
  full sync     a gateway's first, full access-list sync of --sync records from an
                in-process server, through its GraphQL API; RSS of the process after it
  frame→reply   per protocol, over pseudo-terminal pairs, with the real gateway runtime:
                OSDP: the poll whose reply carries the card → osdp_OUT (grant) at the PD;
                EM4100 and ASCII (no reply channel): frame written → access event queued
  revocation    archiveRecord on the server → the next swipe of that card denied
Targets: decision p99 < 1 ms; revocation → door < 1 s.

  --cards N           cards in the list for the decision cost (default 1000000)
  --sync N            records the server holds and the gateway syncs (default 100000)
  --swipes N          swipes per protocol (default 500)
  --revocations N     records archived, one at a time (default 20)
  --database-url URL  PostgreSQL to use (env DATABASE_URL); the bench adds an organisation
                      "Bench gateway …" with its records, and leaves them there
  --data-dir DIR      data directory of the embedded PostgreSQL when no URL is given
                      (default: a temporary directory, removed afterwards)
`

// Rows of the table, in order.
const (
	benchGwDecision   = "decision: DecideCard"
	benchGwListHeap   = "access list heap (ReplaceAll)"
	benchGwSync       = "full sync through the API"
	benchGwSyncHeap   = "gateway Go heap growth by the sync"
	benchGwRSS        = "RSS after the sync (VmRSS)"
	benchGwHWM        = "peak RSS during the sync (VmHWM)"
	benchGwOSDP       = "OSDP: card poll → osdp_OUT at the PD"
	benchGwEM4100     = "EM4100: frame → event queued"
	benchGwASCII      = "ASCII: line → event queued"
	benchGwRevocation = "revocation: archiveRecord → denied"
)

var benchGatewayRows = []string{benchGwDecision, benchGwListHeap, benchGwSync, benchGwSyncHeap, benchGwRSS, benchGwHWM,
	benchGwOSDP, benchGwEM4100, benchGwASCII, benchGwRevocation}

// gatewayBenchRow is one row: n measured, a value with its unit, and
// optionally percentiles (nil when the row is one measurement).
type gatewayBenchRow struct {
	n        int
	value    string
	p50, p99 *time.Duration
	target   string
	seconds  float64 // of a row that is one timed measurement
}

type gatewayBenchOpts struct {
	cards, sync, swipes, revocations int
}

func benchGateway(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("lintel bench gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o gatewayBenchOpts
	fs.IntVar(&o.cards, "cards", 1_000_000, "")
	fs.IntVar(&o.sync, "sync", 100_000, "")
	fs.IntVar(&o.swipes, "swipes", 500, "")
	fs.IntVar(&o.revocations, "revocations", 20, "")
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "")
	dataDir := fs.String("data-dir", "", "")
	if help, err := parseBenchFlags(fs, args, stdout, benchGatewayUsage); help || err != nil {
		return err
	}
	switch {
	case o.cards < 1:
		return &exitError{code: 2, err: errors.New("--cards must be at least 1")}
	case o.swipes < 1:
		return &exitError{code: 2, err: errors.New("--swipes must be at least 1")}
	case o.revocations < 1:
		return &exitError{code: 2, err: errors.New("--revocations must be at least 1")}
	case o.sync < 2*o.revocations+20:
		return &exitError{code: 2, err: fmt.Errorf("--sync must be at least %d (2 × --revocations + 20)", 2*o.revocations+20)}
	}
	b := &gatewayBench{o: o, stderr: stderr, rows: map[string]gatewayBenchRow{}}
	if err := b.run(ctx, *dbURL, *dataDir, getenv); err != nil {
		return err
	}
	b.print(stdout)
	return nil
}

// gatewayBench is one run of `lintel bench gateway`.
type gatewayBench struct {
	o        gatewayBenchOpts
	stderr   io.Writer
	rows     map[string]gatewayBenchRow
	database string
	notes    []string

	db    *database
	api   *apiClient
	org   uuid.UUID
	tmpl  uuid.UUID
	token string
}

func (b *gatewayBench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench: "+format+"\n", args...)
}

func (b *gatewayBench) run(ctx context.Context, dbURL, dataDir string, getenv func(string) string) error {
	// The server's side first, so that the peak RSS of the sync is not
	// that of the large list of the decision bench.
	cfg, where, cleanup, err := benchConfig("lintel bench gateway", dbURL, dataDir, getenv)
	if err != nil {
		return err
	}
	defer cleanup()
	b.database = where
	b.logf("opening the database (%s)", b.database)
	if b.db, err = openDatabase(ctx, cfg, quietLogger()); err != nil {
		return err
	}
	defer b.db.Close()
	benchMasterKey(cfg)
	base, stop, err := serveInProcess(ctx, cfg, b.db.DB)
	if err != nil {
		return err
	}
	defer stop()
	if err := b.setup(ctx, base); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	if err := b.gatewayRuns(ctx, base); err != nil {
		return err
	}
	b.logf("decision cost against %d cards", b.o.cards)
	b.decisions()
	return nil
}

// setup makes the organisation, an admin, the template with --sync
// records, and the gateway.
func (b *gatewayBench) setup(ctx context.Context, base string) error {
	authSvc := auth.NewService(b.db.Bun, nil, auth.DefaultConfig())
	org, err := authSvc.CreateOrganisation(ctx, "Bench gateway "+time.Now().UTC().Format("2006-01-02 15:04:05.000"))
	if err != nil {
		return err
	}
	b.org = org
	email := "bench-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "") + "@bench.example"
	password := auth.RandomPassword()
	if _, err := authSvc.CreateOperator(ctx, auth.NewOperator{OrgID: org, Email: email, Name: "lintel bench", Role: caller.RoleAdmin, Password: password}); err != nil {
		return err
	}
	if b.api, err = newAPIClient(base, ""); err != nil {
		return err
	}
	if b.api.token, err = b.api.login(ctx, email, password); err != nil {
		return err
	}
	as := caller.WithPrincipal(ctx, &caller.Principal{OperatorID: uuid.New(), OrgID: org, Role: caller.RoleAdmin, Email: email})
	tmpl, err := templates.NewService(b.db.DB).Create(as, templates.Input{Name: "Bench gateway", Fields: benchExportFields,
		Symbology: templates.QR, CardIDFormat: "DECIMAL", UniqueIdentifierKind: templates.IdentifierEmail})
	if err != nil {
		return fmt.Errorf("create the template: %w", err)
	}
	b.tmpl = tmpl.ID
	b.logf("writing %d records", b.o.sync)
	start := time.Now()
	if _, err := b.db.Pool.Exec(ctx, benchExportRecordsSQL, org, tmpl.ID, b.o.sync); err != nil {
		return fmt.Errorf("write the records: %w", err)
	}
	b.logf("records written in %.1fs", time.Since(start).Seconds())
	var out struct {
		CreateGateway struct {
			Token string `json:"token"`
		} `json:"createGateway"`
	}
	if err := b.api.do(ctx, `mutation($s: String!, $n: String!) { createGateway(site: $s, name: $n) { token } }`,
		map[string]any{"s": "Bench", "n": "gw-" + uuid.NewString()[:8]}, &out); err != nil {
		return fmt.Errorf("createGateway: %w", err)
	}
	b.token = out.CreateGateway.Token
	return nil
}

// benchPTY is a pseudo-terminal: the reader plays on master, the gateway
// opens path.
type benchPTY struct {
	master *os.File
	path   string
}

func openBenchPTY() (*benchPTY, error) {
	master, path, err := ptypair.Open()
	if err != nil {
		return nil, err
	}
	return &benchPTY{master: master, path: path}, nil
}

// benchPTYMaster is the OSDP reader's end for osdptest.Serve: while the
// gateway has not opened the terminal end, reads fail with EIO, which is
// silence on the line.
type benchPTYMaster struct{ f *os.File }

func (m benchPTYMaster) Read(p []byte) (int, error) {
	n, err := m.f.Read(p)
	if errors.Is(err, syscall.EIO) {
		time.Sleep(5 * time.Millisecond)
		return n, io.EOF
	}
	return n, err
}

func (m benchPTYMaster) Write(p []byte) (int, error) { return m.f.Write(p) }

// stampedEvent is an access event and when the gateway queued it.
type stampedEvent struct {
	ev eventqueue.Event
	at time.Time
}

// gatewayRuns starts the real gateway with an OSDP, an EM4100 and an ASCII
// reader on pseudo-terminals, and times its first sync, the three
// protocols and revocations.
func (b *gatewayBench) gatewayRuns(ctx context.Context, base string) error {
	ptys := make([]*benchPTY, 3)
	for i := range ptys {
		p, err := openBenchPTY()
		if err != nil {
			return err
		}
		defer p.master.Close()
		ptys[i] = p
	}
	osdpPTY, emPTY, asciiPTY := ptys[0], ptys[1], ptys[2]
	pd := osdptest.NewPD(1)
	pdCtx, pdCancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- osdptest.Serve(pdCtx, benchPTYMaster{osdpPTY.master}, pd) }()
	defer func() {
		pdCancel()
		osdpPTY.master.Close()
		<-served
	}()

	dataDir, err := os.MkdirTemp("", "lintel-bench-gateway-data-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	cfg := &gateway.Config{Server: base, Token: b.token, Site: "Bench", DataDir: dataDir,
		Heartbeat: 5 * time.Second,
		// Revocations re-swipe until denied (about 200 a second): no lockout.
		RateLimit: gateway.RateLimit{Denials: 10_000, Window: time.Second, Lockout: time.Second},
		OSDP: gateway.OSDPTiming{PollInterval: osdp.MinPollInterval, ReplyTimeout: 100 * time.Millisecond,
			OfflineAfter: time.Second, OfflineRetry: 200 * time.Millisecond},
		Readers: []gateway.Reader{
			{ID: "osdp", Port: osdpPTY.path, Protocol: gateway.ProtocolOSDP, Address: 1, Door: "OSDP door", CardFormat: "DECIMAL", Pulse: time.Second},
			{ID: "em4100", Port: emPTY.path, Protocol: gateway.ProtocolEM4100, Door: "EM4100 door", CardFormat: "DECIMAL"},
			{ID: "ascii", Port: asciiPTY.path, Protocol: gateway.ProtocolASCII, Door: "ASCII door", CardFormat: "DECIMAL"},
		}}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	events := make(chan stampedEvent, 4096)
	g.OnEvent = func(ev eventqueue.Event) {
		select {
		case events <- stampedEvent{ev, time.Now()}:
		default:
		}
	}
	gctx, gcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.logf("full sync of %d records", b.o.sync)
	start := time.Now()
	go func() { done <- g.Run(gctx) }()
	defer func() {
		gcancel()
		<-done
	}()
	want := float64(b.o.sync)
	for {
		if metricOf(g, "lintel_gateway_syncs_total", "ok") >= 1 && metricOf(g, "lintel_gateway_access_list_records", "") == want {
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("the gateway stopped: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("the gateway holds %v of %v records after 10 minutes", metricOf(g, "lintel_gateway_access_list_records", ""), want)
		}
	}
	syncTime := time.Since(start)
	b.rows[benchGwSync] = gatewayBenchRow{n: b.o.sync, value: fmt.Sprintf("%.3f s", syncTime.Seconds()), seconds: syncTime.Seconds(),
		target: fmt.Sprintf("%.0f records/s", want/syncTime.Seconds())}
	rss, hwm := procStatus("self", "VmRSS:"), procStatus("self", "VmHWM:")
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	b.rows[benchGwSyncHeap] = gatewayBenchRow{n: b.o.sync, value: fmt.Sprintf("%.1f MiB", float64(max(growth, 0))/(1<<20)),
		target: fmt.Sprintf("%.0f B/record", float64(growth)/want)}
	b.rows[benchGwRSS] = gatewayBenchRow{n: b.o.sync, value: mib(rss)}
	b.rows[benchGwHWM] = gatewayBenchRow{n: b.o.sync, value: mib(hwm)}
	b.notes = append(b.notes, "RSS: of this one process, which holds the server (and its job runner) as well as the gateway; "+
		"the gateway's own share is better read from its Go heap growth")
	if !hwmReset {
		b.notes = append(b.notes, "VmHWM: since the process started (the kernel refused a reset)")
	}

	// The cards: every active record; the last ones are kept for the
	// revocations.
	var cards []string
	for i := 1; i <= b.o.sync; i++ {
		if i%50 != 0 {
			cards = append(cards, benchCardID(i))
		}
	}
	revoke := cards[len(cards)-b.o.revocations:]
	cards = cards[:len(cards)-b.o.revocations]

	if err := waitFor(ctx, 10*time.Second, func() bool {
		return metricOf(g, "lintel_gateway_reader_online", "osdp") == 1 && metricOf(g, "lintel_gateway_reader_online", "em4100") == 1 &&
			metricOf(g, "lintel_gateway_reader_online", "ascii") == 1
	}); err != nil {
		return errors.New("the readers did not come online within 10 s")
	}

	b.logf("%d swipes per protocol", b.o.swipes)
	lat, err := b.osdpSwipes(ctx, pd, cards)
	if err != nil {
		return fmt.Errorf("OSDP: %w", err)
	}
	b.rows[benchGwOSDP] = latencyRow(lat, "")
	drain(events)
	lat, err = b.serialSwipes(ctx, events, "em4100", cards, func(card string) error {
		n, _ := strconv.ParseUint(card, 10, 64)
		_, err := emPTY.master.Write(em4100.Frame(n))
		return err
	})
	if err != nil {
		return fmt.Errorf("EM4100: %w", err)
	}
	b.rows[benchGwEM4100] = latencyRow(lat, "")
	lat, err = b.serialSwipes(ctx, events, "ascii", cards, func(card string) error {
		_, err := asciiPTY.master.WriteString(card + "\r\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("ASCII: %w", err)
	}
	b.rows[benchGwASCII] = latencyRow(lat, "")
	b.notes = append(b.notes, "OSDP: from the PD receiving the poll it answers with the card to it receiving osdp_OUT; "+
		fmt.Sprintf("the CP polls every %v", osdp.MinPollInterval),
		"EM4100, ASCII: from the frame written on the pty master to the gateway's OnEvent (decided and the event fsynced to its queue)")

	b.logf("%d revocations", b.o.revocations)
	lat, err = b.revocations(ctx, events, asciiPTY.master, revoke)
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	b.rows[benchGwRevocation] = latencyRow(lat, "< 1 s")
	b.notes = append(b.notes, "revocation: from archiveRecord being sent to the first denial of that card, re-swiped on the ASCII reader every 5 ms")
	return nil
}

// osdpSwipes presents cards at the PD and times, for each, the poll whose
// reply carried the card to the grant's osdp_OUT.
func (b *gatewayBench) osdpSwipes(ctx context.Context, pd *osdptest.PD, cards []string) ([]time.Duration, error) {
	var lat []time.Duration
	for k := range b.o.swipes {
		n, _ := strconv.ParseUint(cards[k%len(cards)], 10, 64)
		bits := make([]bool, 32)
		for i := range bits {
			bits[i] = n&(1<<(31-i)) != 0
		}
		outs, buzz := len(pd.Commands(osdp.CmdOut)), len(pd.Commands(osdp.CmdBuz))
		presented := time.Now()
		pd.PresentCard(bits)
		// Wait for the whole grant (OUT, LED, buzzer), so that the next
		// card is not queued behind it.
		if err := waitFor(ctx, 5*time.Second, func() bool {
			return len(pd.Commands(osdp.CmdOut)) > outs && len(pd.Commands(osdp.CmdBuz)) > buzz
		}); err != nil {
			return nil, fmt.Errorf("swipe %d: no grant at the PD within 5 s", k)
		}
		var poll, out time.Time
		for _, r := range pd.Received() {
			if r.At.Before(presented) || r.Repeat {
				continue
			}
			if r.Frame.Code == osdp.CmdPoll && poll.IsZero() {
				poll = r.At
			}
			if r.Frame.Code == osdp.CmdOut && out.IsZero() {
				out = r.At
			}
		}
		if poll.IsZero() || out.IsZero() || out.Before(poll) {
			return nil, fmt.Errorf("swipe %d: no poll before the osdp_OUT", k)
		}
		lat = append(lat, out.Sub(poll))
	}
	return lat, nil
}

// serialSwipes sends each card with send and times it until the gateway
// queues reader's event for it.
func (b *gatewayBench) serialSwipes(ctx context.Context, events <-chan stampedEvent, reader string, cards []string, send func(card string) error) ([]time.Duration, error) {
	var lat []time.Duration
	for k := range b.o.swipes {
		card := cards[k%len(cards)]
		start := time.Now()
		if err := send(card); err != nil {
			return nil, err
		}
		ev, err := waitEvent(ctx, events, reader, card)
		if err != nil {
			return nil, fmt.Errorf("swipe %d: %w", k, err)
		}
		if ev.ev.Decision != "GRANTED" {
			return nil, fmt.Errorf("swipe %d: card %s %s (%s)", k, card, ev.ev.Decision, ev.ev.Reason)
		}
		lat = append(lat, ev.at.Sub(start))
	}
	return lat, nil
}

// revocations archives each card's record and times until a swipe of it
// is denied.
func (b *gatewayBench) revocations(ctx context.Context, events <-chan stampedEvent, reader *os.File, cards []string) ([]time.Duration, error) {
	swipe := func(card string) (stampedEvent, error) {
		if _, err := reader.WriteString(card + "\r\n"); err != nil {
			return stampedEvent{}, err
		}
		return waitEvent(ctx, events, "ascii", card)
	}
	var lat []time.Duration
	for _, card := range cards {
		ev, err := swipe(card)
		if err != nil {
			return nil, err
		}
		if ev.ev.Decision != "GRANTED" {
			return nil, fmt.Errorf("card %s is %s before it is archived", card, ev.ev.Reason)
		}
		var id uuid.UUID
		if err := b.db.Pool.QueryRow(ctx, `SELECT id FROM card_records WHERE template_id = $1 AND card_id = $2`, b.tmpl, card).Scan(&id); err != nil {
			return nil, err
		}
		start := time.Now()
		archived := make(chan error, 1)
		go func() {
			archived <- b.api.do(ctx, `mutation($id: ID!) { archiveRecord(id: $id) { id } }`, map[string]any{"id": id.String()}, nil)
		}()
		for {
			ev, err := swipe(card)
			if err != nil {
				return nil, err
			}
			if ev.ev.Decision != "GRANTED" {
				lat = append(lat, ev.at.Sub(start))
				break
			}
			if time.Since(start) > 30*time.Second {
				return nil, fmt.Errorf("card %s still granted 30 s after archiveRecord", card)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := <-archived; err != nil {
			return nil, fmt.Errorf("archiveRecord: %w", err)
		}
	}
	return lat, nil
}

// waitEvent returns the next decision of reader on card.
func waitEvent(ctx context.Context, events <-chan stampedEvent, reader, card string) (stampedEvent, error) {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.ev.ReaderID == reader && ev.ev.Kind != gateway.KindAlert && ev.ev.CardID == card {
				return ev, nil
			}
		case <-timeout:
			return stampedEvent{}, fmt.Errorf("no decision on card %s at reader %s within 5 s", card, reader)
		case <-ctx.Done():
			return stampedEvent{}, ctx.Err()
		}
	}
}

func drain(events <-chan stampedEvent) {
	for {
		select {
		case <-events:
		default:
			return
		}
	}
}

// waitFor polls cond every 100 µs until it holds.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// metricOf returns the gateway metric name's value; label, if not "", is
// the value of the metric's only label. -1 if there is none.
func metricOf(g *gateway.Gateway, name, label string) float64 {
	fams, err := g.Gatherer().Gather()
	if err != nil {
		return -1
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

// decisions times DecideCard against a list of --cards cards: one in ten
// with a validity window, one in fifty suspended, one in eight presented
// cards unknown (as readers/gateway/accesslist's BenchmarkDecideCard1M).
func (b *gatewayBench) decisions() {
	n := b.o.cards
	now := time.Now()
	from, until := now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)
	template := uuid.New()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	list := accesslist.New()
	func() {
		entries := make([]accesslist.Entry, n)
		for i := range entries {
			e := accesslist.Entry{RecordID: uuid.New(), TemplateID: template, CardID: strconv.Itoa(10_000_000 + i), Status: accesslist.StatusActive}
			if i%10 == 0 {
				e.ValidFrom, e.ExpiresAt = &from, &until
			}
			if i%50 == 0 {
				e.Status = accesslist.StatusSuspended
			}
			entries[i] = e
		}
		list.ReplaceAll(entries, "d:1")
	}()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.rows[benchGwListHeap] = gatewayBenchRow{n: n, value: fmt.Sprintf("%.1f MiB", float64(max(int64(after.HeapAlloc)-int64(before.HeapAlloc), 0))/(1<<20)),
		target: fmt.Sprintf("%.0f B/card", float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n))}

	cards := make([]string, 1<<16)
	for i := range cards {
		k := (i * 7919) % n
		if i%8 == 0 {
			k += 2 * n
		}
		cards[i] = strconv.Itoa(10_000_000 + k)
	}
	for i := range 10_000 { // warm-up
		_ = list.DecideCard(cards[i&(len(cards)-1)], now)
	}
	const loops = 2_000_000
	start := time.Now()
	for i := range loops {
		_ = list.DecideCard(cards[i&(len(cards)-1)], now)
	}
	perOp := float64(time.Since(start).Nanoseconds()) / loops
	lat := make([]time.Duration, 200_000)
	for i := range lat {
		t0 := time.Now()
		_ = list.DecideCard(cards[i&(len(cards)-1)], now)
		lat[i] = time.Since(t0)
	}
	row := latencyRow(lat, "p99 < 1 ms")
	row.n, row.value = n, fmt.Sprintf("%.0f ns/op", perOp)
	b.rows[benchGwDecision] = row
	b.notes = append(b.notes, fmt.Sprintf("decision: ns/op over %d decisions; p50/p99 of %d single decisions, each timed (clock reads included)", loops, len(lat)))
	runtime.KeepAlive(list)
}

// latencyRow summarises latencies: mean as the value, p50 and p99.
func latencyRow(lat []time.Duration, target string) gatewayBenchRow {
	s := slices.Clone(lat)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	pct := func(p float64) *time.Duration {
		d := s[min(len(s)-1, int(p*float64(len(s))))]
		return &d
	}
	return gatewayBenchRow{n: len(s), value: "mean " + fmtLatency(sum/time.Duration(len(s))), p50: pct(0.50), p99: pct(0.99), target: target}
}

func fmtLatency(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.3f µs", float64(d.Nanoseconds())/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6)
	default:
		return fmt.Sprintf("%.3f s", d.Seconds())
	}
}

func (b *gatewayBench) print(w io.Writer) {
	fmt.Fprintf(w, "lintel bench gateway: %d cards, %d records synced, %d swipes per protocol, %d revocations, database %s, %d CPUs, %s %s/%s\n\n",
		b.o.cards, b.o.sync, b.o.swipes, b.o.revocations, b.database, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	pad := padColumn("measurement", benchGatewayRows, func(s string) string { return s })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tn\tvalue\tp50\tp99\ttarget / rate\t\n", pad("measurement"))
	for _, name := range benchGatewayRows {
		r := b.rows[name]
		p50, p99, target := "-", "-", r.target
		if r.p50 != nil {
			p50, p99 = fmtLatency(*r.p50), fmtLatency(*r.p99)
		}
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", pad(name), r.n, r.value, p50, p99, target)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if r, ok := b.rows[benchGwDecision]; ok && r.p99 != nil {
		fmt.Fprintf(w, "decision p99 %s: target < 1 ms %s\n", fmtLatency(*r.p99), metOrNot(*r.p99 < time.Millisecond))
	}
	if r, ok := b.rows[benchGwRevocation]; ok && r.p99 != nil {
		fmt.Fprintf(w, "revocation → door p99 %s: target < 1 s %s\n", fmtLatency(*r.p99), metOrNot(*r.p99 < time.Second))
	}
	for _, n := range b.notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
