package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/lintel/lintel/readers/lineproto"
	"github.com/lintel/lintel/readers/osdp"
	"github.com/lintel/lintel/readers/serialport"
)

// Event kinds, as the server names them.
const (
	KindCard  = "CARD"
	KindCode  = "CODE"
	KindAlert = "ALERT"
)

// presentation is a credential read at a reader: a card number or a
// scanned code.
type presentation struct {
	kind  string // KindCard or KindCode
	value string // canonical card ID, or the code's text
}

// serialDecoder turns one serial reader's bytes into presentations. A
// fresh one is made for every port session, so half a frame from before
// an unplug is never glued to what follows.
type serialDecoder interface {
	feed(b []byte) []presentation
	// idle is called when the line has been silent for lineIdle.
	idle()
	// drops returns the cumulative drops by reason.
	drops() map[string]uint64
}

// lineIdle is the silence after which a partly received line is dropped:
// a reader sends a whole line within milliseconds.
const lineIdle = 500 * time.Millisecond

// newSerialDecoder returns a decoder factory for a non-OSDP reader; it
// fails at once on a configuration no decoder accepts.
func newSerialDecoder(r *Reader, log *slog.Logger) (func() serialDecoder, error) {
	format := cardid.Format(r.CardFormat)
	ending, err := lineEnding(r.Line.Ending)
	if err != nil {
		return nil, err
	}
	line := lineproto.LineConfig{Ending: ending, Trim: true, Prefix: r.Line.Prefix, Suffix: r.Line.Suffix}
	reject := func(raw string, err error) {
		log.Debug("reader line dropped", "reader", r.ID, "line", truncate(raw, 64), "err", err)
	}
	var mk func() (serialDecoder, error)
	switch r.Protocol {
	case ProtocolEM4100:
		mk = func() (serialDecoder, error) {
			d, err := em4100.NewDecoder(em4100.Config{Format: format})
			return emDecoder{d}, err
		}
	case ProtocolASCII:
		number := lineproto.Decimal
		if r.Number == "hex" {
			number = lineproto.Hex
		}
		mk = func() (serialDecoder, error) {
			d, err := lineproto.NewCardDecoder(lineproto.CardConfig{Line: line, Format: format, Number: number, OnReject: reject})
			return cardDecoder{d}, err
		}
	case ProtocolQR:
		mk = func() (serialDecoder, error) {
			d, err := lineproto.NewTextDecoder(lineproto.TextConfig{Line: line, OnReject: reject})
			return textDecoder{d}, err
		}
	default:
		return nil, fmt.Errorf("reader %s: protocol %q has no serial decoder", r.ID, r.Protocol)
	}
	if _, err := mk(); err != nil {
		return nil, fmt.Errorf("reader %s: %w", r.ID, err)
	}
	return func() serialDecoder {
		d, _ := mk() // checked above with the same configuration
		return d
	}, nil
}

type emDecoder struct{ d *em4100.Decoder }

func (e emDecoder) feed(b []byte) []presentation {
	var out []presentation
	for _, r := range e.d.Feed(b) {
		out = append(out, presentation{KindCard, r.CardID})
	}
	return out
}

// idle is a no-op: the decoder expires a partial frame itself, by time,
// on the empty feeds of a silent line.
func (e emDecoder) idle() {}

func (e emDecoder) drops() map[string]uint64 {
	s := e.d.Stats()
	return map[string]uint64{"bad_checksum": uint64(s.BadChecksum), "bad_hex": uint64(s.BadHex),
		"truncated": uint64(s.Truncated), "overlong": uint64(s.Overlong), "garbage": uint64(s.Noise)}
}

type cardDecoder struct{ d *lineproto.CardDecoder }

func (c cardDecoder) feed(b []byte) []presentation {
	var out []presentation
	for _, l := range c.d.Feed(b) {
		out = append(out, presentation{KindCard, l.CardID})
	}
	return out
}

func (c cardDecoder) idle() { c.d.Flush() }

func (c cardDecoder) drops() map[string]uint64 {
	s := c.d.Stats()
	return map[string]uint64{"not_a_card": uint64(s.Rejected), "overlong": uint64(s.Line.Overlong), "truncated": uint64(s.Line.Truncated)}
}

type textDecoder struct{ d *lineproto.TextDecoder }

func (t textDecoder) feed(b []byte) []presentation {
	var out []presentation
	for _, l := range t.d.Feed(b) {
		out = append(out, presentation{KindCode, l.Text})
	}
	return out
}

func (t textDecoder) idle() { t.d.Flush() }

func (t textDecoder) drops() map[string]uint64 {
	s := t.d.Stats()
	return map[string]uint64{"not_printable": uint64(s.NotPrintable), "overlong": uint64(s.Line.Overlong), "truncated": uint64(s.Line.Truncated)}
}

// dropCounter turns a decoder's cumulative drop counts into increments of
// lintel_gateway_frames_dropped_total.
type dropCounter struct {
	m      *metrics
	reader string
	prev   map[string]uint64
}

func (c *dropCounter) update(now map[string]uint64) {
	if c.prev == nil {
		c.prev = map[string]uint64{}
	}
	for reason, n := range now {
		if d := n - c.prev[reason]; n > c.prev[reason] {
			c.m.framesDropped.WithLabelValues(c.reader, reason).Add(float64(d))
		}
		c.prev[reason] = n
	}
}

// serialReader drives one ascii, em4100 or qr reader on its own port.
type serialReader struct {
	g          *Gateway
	r          *Reader
	newDecoder func() serialDecoder
}

func (s *serialReader) run(ctx context.Context) error {
	g, r := s.g, s.r
	sup := &serialport.Supervisor{
		Config: serialport.Config{Path: r.Port, Baud: r.Baud},
		OnEvent: func(e serialport.Event) {
			g.portEvent(e, r.ID)
			switch e.State {
			case serialport.StateOpen, serialport.StateReopened:
				g.states.set(r.ID, true, time.Now())
			case serialport.StateGone, serialport.StateOpenFailed:
				g.states.set(r.ID, false, time.Time{})
			}
		},
	}
	return sup.Run(ctx, func(ctx context.Context, p serialport.Port) error {
		dec := s.newDecoder()
		drops := &dropCounter{m: g.metrics, reader: r.ID}
		lastByte := time.Now()
		return serialport.Pump(ctx, p, func(b []byte) {
			now := time.Now()
			if len(b) == 0 {
				if now.Sub(lastByte) >= lineIdle {
					dec.idle()
				}
			} else {
				lastByte = now
				g.states.seen(r.ID, now)
			}
			for _, pr := range dec.feed(b) {
				g.present(ctx, r, nil, pr, now)
			}
			drops.update(dec.drops())
		})
	})
}

// osdpBus drives the OSDP readers on one port.
type osdpBus struct {
	g       *Gateway
	port    string
	baud    int
	bus     *osdp.Bus
	readers map[byte]*Reader
	label   string // the readers' IDs, for metrics of the whole line

	portOpen atomic.Bool
	openedAt atomic.Int64 // Unix nanoseconds
	// refreshMu orders refreshes, so that an older snapshot of the bus is
	// never applied over a newer one.
	refreshMu sync.Mutex
}

func newOSDPBus(g *Gateway, readers []*Reader) (*osdpBus, error) {
	b := &osdpBus{g: g, port: readers[0].Port, baud: readers[0].Baud, readers: map[byte]*Reader{}}
	var addrs []byte
	var ids []string
	for _, r := range readers {
		addrs = append(addrs, byte(r.Address))
		ids = append(ids, r.ID)
		b.readers[byte(r.Address)] = r
	}
	b.label = strings.Join(ids, ",")
	t := g.cfg.OSDP
	bus, err := osdp.New(osdp.Config{Addrs: addrs, PollInterval: t.PollInterval, ReplyTimeout: t.ReplyTimeout,
		OfflineAfter: t.OfflineAfter, OfflineRetry: t.OfflineRetry, Logger: g.log.With("port", b.port)})
	if err != nil {
		return nil, fmt.Errorf("OSDP bus on %s: %w", b.port, err)
	}
	b.bus = bus
	return b, nil
}

func (b *osdpBus) run(ctx context.Context) error {
	g := b.g
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { b.events(ctx) })
	wg.Go(func() { b.monitor(ctx) })
	sup := &serialport.Supervisor{
		Config: serialport.Config{Path: b.port, Baud: b.baud},
		OnEvent: func(e serialport.Event) {
			g.portEvent(e, b.label)
			switch e.State {
			case serialport.StateOpen, serialport.StateReopened:
				b.openedAt.Store(time.Now().UnixNano())
				b.portOpen.Store(true)
			case serialport.StateGone, serialport.StateOpenFailed:
				b.portOpen.Store(false)
			}
			b.refresh()
		},
	}
	return sup.Run(ctx, func(ctx context.Context, p serialport.Port) error {
		return b.bus.Run(ctx, p)
	})
}

// events handles what the bus reports.
func (b *osdpBus) events(ctx context.Context) {
	g := b.g
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-b.bus.Events():
			switch ev := ev.(type) {
			case osdp.CardRead:
				r := b.readers[ev.Addr]
				if r == nil {
					continue
				}
				id, err := osdp.CardFromRaw(ev.Raw, cardid.Format(r.CardFormat))
				if err != nil {
					g.metrics.framesDropped.WithLabelValues(r.ID, "bad_card").Inc()
					g.log.Warn("card read not understood; ignored", "reader", r.ID, "err", err)
					continue
				}
				g.present(ctx, r, b, presentation{KindCard, id}, ev.At)
			case osdp.Keypad:
				if r := b.readers[ev.Addr]; r != nil {
					g.log.Info("keypad entry ignored: this gateway does not check PINs", "reader", r.ID)
				}
			case osdp.StatusChange:
				b.refresh()
			case osdp.Nak:
				g.log.Warn("OSDP reader refused a command", "reader", b.readerID(ev.Addr), "command", fmt.Sprintf("0x%02X", ev.Command), "reason", ev.Code.String())
			case osdp.CommandFailed:
				g.log.Warn("OSDP command not carried out", "reader", b.readerID(ev.Addr), "command", fmt.Sprintf("0x%02X", ev.Command), "err", ev.Err)
			}
		}
	}
}

func (b *osdpBus) readerID(addr byte) string {
	if r := b.readers[addr]; r != nil {
		return r.ID
	}
	return fmt.Sprintf("0x%02X", addr)
}

// monitor keeps reader states and drop counts in step with the bus.
func (b *osdpBus) monitor(ctx context.Context) {
	drops := &dropCounter{m: b.g.metrics, reader: b.label}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.refresh()
		s := b.bus.Snapshot().Dropped
		drops.update(map[string]uint64{"garbage": s.Garbage, "bad_checksum": s.BadCRC, "bad_length": s.BadLength,
			"truncated": s.Truncated, "unsupported": s.Unsupported})
	}
}

// refresh sets each reader's state from the bus: online while its port is
// open and it has answered since the port was (re)opened.
func (b *osdpBus) refresh() {
	b.refreshMu.Lock()
	defer b.refreshMu.Unlock()
	open := b.portOpen.Load()
	since := time.Unix(0, b.openedAt.Load())
	for _, pd := range b.bus.Snapshot().PDs {
		r := b.readers[pd.Addr]
		if r == nil {
			continue
		}
		online := open && pd.Online && pd.LastSeen.After(since)
		var seen time.Time
		if !pd.LastSeen.IsZero() {
			seen = pd.LastSeen
		}
		b.g.states.set(r.ID, online, seen)
	}
}

// feedback tells the reader at addr the decision: the door relay, LED and
// buzzer.
func (b *osdpBus) feedback(r *Reader, granted bool) error {
	if granted {
		return b.bus.Grant(byte(r.Address), r.Pulse)
	}
	return b.bus.Deny(byte(r.Address))
}

// portEvent logs a serial port's state change.
func (g *Gateway) portEvent(e serialport.Event, readers string) {
	switch e.State {
	case serialport.StateOpen:
		g.log.Info("reader port open", "reader", readers, "port", e.Path)
	case serialport.StateReopened:
		g.log.Info("reader port reopened", "reader", readers, "port", e.Path, "attempts", e.Attempt)
	case serialport.StateGone:
		if errors.Is(e.Err, serialport.ErrPortGone) {
			g.log.Warn("reader port gone; reopening", "reader", readers, "port", e.Path, "err", e.Err, "retry_in", e.Retry)
		} else {
			g.log.Error("reader stopped; reopening its port", "reader", readers, "port", e.Path, "err", e.Err, "retry_in", e.Retry)
		}
	case serialport.StateOpenFailed:
		if e.Attempt == 1 || e.Attempt%20 == 0 {
			g.log.Warn("reader port cannot be opened", "reader", readers, "port", e.Path, "err", e.Err, "attempts", e.Attempt, "retry_in", e.Retry)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
