package osdp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config.
const (
	DefaultPollInterval  = 75 * time.Millisecond
	DefaultReplyTimeout  = 200 * time.Millisecond
	DefaultRetries       = 3
	DefaultOfflineAfter  = 8 * time.Second
	DefaultOfflineRetry  = time.Second
	DefaultCommandExpiry = 3 * time.Second
	DefaultQueueLen      = 16
	DefaultEventBuffer   = 64
)

// The poll interval range. Faster than 50 ms leaves no room on a 9600-baud
// bus shared by several readers; slower than 100 ms makes the wait after a
// card read noticeable at the door.
const (
	MinPollInterval = 50 * time.Millisecond
	MaxPollInterval = 100 * time.Millisecond
)

const (
	// interByteGap is the silence after which a partial frame is given up.
	// At 9600 baud a byte takes about 1 ms and USB serial adapters deliver
	// bytes in bursts up to about 16 ms apart; 50 ms is well above both and
	// well below the reply timeout, so the retransmitted reply is not read
	// as the rest of the dead one.
	interByteGap = 50 * time.Millisecond

	// readSlice is how long one read waits on ports that take read
	// deadlines (net.Conn to a serial server, *os.File on a pollable
	// terminal), so the inter-byte gap and ctx are checked in time.
	readSlice = 25 * time.Millisecond
)

// Config configures a Bus. Zero durations and counts take the defaults.
type Config struct {
	// Addrs are the PDs on the line, 0x00-0x7E each.
	Addrs []byte
	// PollInterval is how often each PD is polled, within
	// MinPollInterval-MaxPollInterval.
	PollInterval time.Duration
	// ReplyTimeout is how long the bus waits for a reply before
	// retransmitting. OSDP allows a PD 200 ms.
	ReplyTimeout time.Duration
	// Retries is how many times a command is retransmitted, with the same
	// sequence number, when no reply comes.
	Retries int
	// OfflineAfter is how long a PD may stay silent before it is reported
	// offline. OSDP uses 8 s; tests use less.
	OfflineAfter time.Duration
	// OfflineRetry is how often an offline PD is tried, once each time, so
	// a dead reader costs the others little bus time.
	OfflineRetry time.Duration
	// CommandExpiry is how long a queued command may wait to be sent. A
	// grant that could not be sent in time is dropped rather than opening
	// the door long after the person has gone.
	CommandExpiry time.Duration
	// QueueLen is how many commands may wait for one PD.
	QueueLen int
	// EventBuffer is the capacity of the Events channel.
	EventBuffer int
	// Logger receives line problems and PD status changes; nil discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if len(c.Addrs) == 0 {
		return errors.New("osdp: no PD addresses configured")
	}
	seen := map[byte]bool{}
	for _, a := range c.Addrs {
		if a >= BroadcastAddr {
			return fmt.Errorf("osdp: PD address 0x%02X out of range 0x00-0x7E", a)
		}
		if seen[a] {
			return fmt.Errorf("osdp: PD address 0x%02X configured twice", a)
		}
		seen[a] = true
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.ReplyTimeout, DefaultReplyTimeout)
	def(&c.OfflineAfter, DefaultOfflineAfter)
	def(&c.OfflineRetry, DefaultOfflineRetry)
	def(&c.CommandExpiry, DefaultCommandExpiry)
	if c.PollInterval < MinPollInterval || c.PollInterval > MaxPollInterval {
		return fmt.Errorf("osdp: poll interval %v out of range %v-%v", c.PollInterval, MinPollInterval, MaxPollInterval)
	}
	for _, d := range []time.Duration{c.ReplyTimeout, c.OfflineAfter, c.OfflineRetry, c.CommandExpiry} {
		if d < 0 {
			return fmt.Errorf("osdp: negative duration %v in config", d)
		}
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Retries < 0 {
		return fmt.Errorf("osdp: retries %d is negative", c.Retries)
	}
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Errors from Bus methods and in CommandFailed events.
var (
	ErrUnknownPD = errors.New("osdp: no PD configured at this address")
	ErrOffline   = errors.New("osdp: PD is not online")
	ErrQueueFull = errors.New("osdp: too many commands waiting for this PD")
	ErrNoReply   = errors.New("osdp: PD did not reply")
	ErrExpired   = errors.New("osdp: command waited too long to be sent")
)

// Event is what the bus reports: CardRead, Keypad, StatusChange, Nak or
// CommandFailed.
type Event interface{ event() }

// CardRead is a card presented at a reader.
type CardRead struct {
	Addr byte
	Raw  Raw // reader number, format and bits; see CardFromRaw
	At   time.Time
}

// Keypad is keys pressed at a reader.
type Keypad struct {
	Addr, Reader byte
	Digits       string // "0"-"9", "*" and "#"
	At           time.Time
}

// StatusChange is a PD coming online (it answered) or going offline (it
// was silent for Config.OfflineAfter).
type StatusChange struct {
	Addr   byte
	Online bool
	At     time.Time
}

// Nak is a PD refusing a command, e.g. a grant sent to a reader without
// the output it names.
type Nak struct {
	Addr    byte
	Command byte // the refused command's code, e.g. CmdOut
	Code    NakCode
	At      time.Time
}

// CommandFailed is a queued command (from Send, Grant or Deny) that was
// not carried out: Err is ErrNoReply, ErrExpired or ErrOffline.
type CommandFailed struct {
	Addr    byte
	Command byte
	Err     error
	At      time.Time
}

func (CardRead) event()      {}
func (Keypad) event()        {}
func (StatusChange) event()  {}
func (Nak) event()           {}
func (CommandFailed) event() {}

// Snapshot is the bus's counters, for metrics and the installer's status
// page.
type Snapshot struct {
	FramesSent     uint64 // including retransmissions
	FramesReceived uint64 // intact frames, including ones not for us
	Unexpected     uint64 // intact frames that answered nothing asked: wrong address or sequence, or our own echo
	BadReplies     uint64 // replies whose data did not parse
	Retransmits    uint64
	Timeouts       uint64 // sends that got no reply in time
	EventsDropped  uint64 // events lost because nobody read Events
	Dropped        Stats  // bytes and frames the decoder dropped
	PDs            []PDStatus
}

// PDStatus is one PD's state.
type PDStatus struct {
	Addr     byte
	Online   bool
	LastSeen time.Time // last reply; zero if none yet
	ID       *PDID     // from osdp_PDID, once received
	Caps     PDCap     // from osdp_PDCAP, once received
	Queued   int       // commands waiting
}

type pdMode int

const (
	modeUnknown pdMode = iota // not heard since the Bus was created
	modeOnline
	modeOffline // reported offline
)

type queued struct {
	m     Message
	at    time.Time
	tries int // resends after a NAK for a line error
}

type pdState struct {
	addr      byte
	mode      pdMode
	seq       byte      // sequence number for the next command while online
	init      []Message // osdp_ID and osdp_CAP still to send after a start or reconnect
	queue     []queued
	due       time.Time // next transaction
	lastSeen  time.Time
	graceFrom time.Time // silence is counted from here at the earliest: Run's start
	id        *PDID
	caps      PDCap
}

// Bus is the control panel side of one OSDP line. It keeps its PDs' state,
// queued commands and counters across Run calls, so the caller can reopen a
// failed port and Run again.
type Bus struct {
	cfg     Config
	log     *slog.Logger
	events  chan Event
	running atomic.Bool

	mu    sync.Mutex
	pds   []*pdState // by address
	dec   Decoder
	stats Snapshot // counters only; Dropped and PDs are filled by Snapshot
}

// New returns a Bus for the PDs in cfg.
func New(cfg Config) (*Bus, error) {
	cfg.Addrs = slices.Clone(cfg.Addrs)
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: cfg.Logger, events: make(chan Event, cfg.EventBuffer)}
	for _, a := range slices.Sorted(slices.Values(cfg.Addrs)) {
		b.pds = append(b.pds, &pdState{addr: a})
	}
	b.dec.OnDrop = func(e *FrameError) {
		if e.Reason == DropUnsupported {
			b.log.Warn("OSDP frame dropped", "reason", e.Reason.String(), "detail", e.Detail)
			return
		}
		b.log.Debug("OSDP bytes dropped", "reason", e.Reason.String(), "detail", e.Detail)
	}
	return b, nil
}

// Events returns the channel events come out on. It is never closed. The
// bus never waits for a slow reader: when the channel is full, events are
// dropped and counted in Snapshot.EventsDropped, because a stalled bus
// would stop every door on the line, not just delay one.
func (b *Bus) Events() <-chan Event {
	return b.events
}

// Grant opens the door at addr: output 0 pulses for pulse (rounded up to
// 100 ms; the reader times it, so the door locks again whatever happens to
// the CP), the LED shows green for as long, and the reader beeps once. The
// output goes first, as it is what the person at the door waits for.
func (b *Bus) Grant(addr byte, pulse time.Duration) error {
	out, err := OutputPulse(0, pulse)
	if err != nil {
		return err
	}
	return b.Send(addr, out, LEDGrant(pulse), BuzzerGrant())
}

// Deny flashes the LED at addr red and beeps three times.
func (b *Bus) Deny(addr byte) error {
	return b.Send(addr, LEDDeny(), BuzzerDeny())
}

// Send queues commands for the PD at addr. Each goes out in place of one
// poll, in order; a PD that refuses one is reported as a Nak event, and one
// that cannot be sent as CommandFailed. It fails with ErrOffline when the
// PD is not online, so a door that cannot open is known at once.
func (b *Bus) Send(addr byte, msgs ...Message) error {
	for _, m := range msgs {
		if _, err := NewFrame(0, 0, m).Encode(); err != nil { // only too-long data can fail
			return err
		}
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pd(addr)
	if p == nil {
		return fmt.Errorf("%w: 0x%02X", ErrUnknownPD, addr)
	}
	if p.mode != modeOnline {
		return fmt.Errorf("%w: 0x%02X", ErrOffline, addr)
	}
	if len(p.queue)+len(msgs) > b.cfg.QueueLen {
		return fmt.Errorf("%w: 0x%02X", ErrQueueFull, addr)
	}
	for _, m := range msgs {
		p.queue = append(p.queue, queued{m: m, at: now})
	}
	return nil
}

func (b *Bus) pd(addr byte) *pdState {
	for _, p := range b.pds {
		if p.addr == addr {
			return p
		}
	}
	return nil
}

// Snapshot returns the counters and each PD's state.
func (b *Bus) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Dropped = b.dec.Stats()
	s.PDs = make([]PDStatus, len(b.pds))
	for i, p := range b.pds {
		s.PDs[i] = PDStatus{Addr: p.addr, Online: p.mode == modeOnline, LastSeen: p.lastSeen,
			Caps: slices.Clone(p.caps), Queued: len(p.queue)}
		if p.id != nil {
			id := *p.id
			s.PDs[i].ID = &id
		}
	}
	return s
}

// emit sends an event without waiting; b.mu is held.
func (b *Bus) emit(ev Event) {
	select {
	case b.events <- ev:
	default:
		b.stats.EventsDropped++
		b.log.Error("OSDP event dropped: nobody is reading bus events", "event", fmt.Sprintf("%T", ev))
	}
}

// readDeadliner is a port that can bound a read's wait itself.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// Run drives the line over port until ctx ends (it returns ctx.Err()) or
// the port fails (it returns that error). Reads that return io.EOF or a
// timeout error are silence on the line, as serial libraries report a read
// timeout that way (except io.EOF from a net.Conn: a closed connection). A
// port should return from Read within about 100 ms when the line is silent,
// or take read deadlines, as *os.File and net.Conn do. Run does not close
// the port.
//
// Each run starts by sending every PD osdp_ID with sequence number 0, which
// tells a PD to start counting again, then osdp_CAP, then polls.
func (b *Bus) Run(ctx context.Context, port io.ReadWriter) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("osdp: Run is already running on this bus")
	}
	defer b.running.Store(false)
	r := &runner{b: b, ctx: ctx, port: port, buf: make([]byte, 512)}
	if dl, ok := port.(readDeadliner); ok {
		r.dl = dl
		defer func() { _ = dl.SetReadDeadline(time.Time{}) }()
	}
	b.start(time.Now())
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, wait := b.next(time.Now())
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err := r.transact(p); err != nil {
			return err
		}
	}
}

func (b *Bus) start(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dec.buf = b.dec.buf[:0] // left from a port that failed: not the line's fault
	for _, p := range b.pds {
		p.seq = 0
		p.init = []Message{IDRequest{}, CapRequest{}}
		p.due = now
		p.graceFrom = now
	}
}

// next reports offline PDs and returns the PD due first and how long until
// it is due.
func (b *Bus) next(now time.Time) (*pdState, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.checkOffline(now)
	first := b.pds[0]
	for _, p := range b.pds[1:] {
		if p.due.Before(first.due) {
			first = p
		}
	}
	return first, first.due.Sub(now)
}

// checkOffline reports PDs silent for OfflineAfter; b.mu is held.
func (b *Bus) checkOffline(now time.Time) {
	for _, p := range b.pds {
		if p.mode == modeOffline {
			continue
		}
		last := p.graceFrom
		if p.lastSeen.After(last) {
			last = p.lastSeen
		}
		if now.Sub(last) < b.cfg.OfflineAfter {
			continue
		}
		p.mode = modeOffline
		p.seq = 0
		p.init = nil
		for _, q := range p.queue {
			b.emit(CommandFailed{Addr: p.addr, Command: q.m.Code(), Err: ErrOffline, At: now})
		}
		p.queue = nil
		p.due = now
		b.log.Warn("OSDP PD offline", "addr", p.addr, "silent", now.Sub(last).Round(time.Millisecond))
		b.emit(StatusChange{Addr: p.addr, Online: false, At: now})
	}
}

// pick returns the message to send to p and, if it came from the queue,
// its queue entry; b.mu is held.
func (b *Bus) pick(p *pdState, now time.Time) (Message, *queued) {
	if p.mode != modeOnline {
		// Until a PD answers, ask who it is: the answer is needed anyway
		// and, sent with sequence number 0, restarts a rebooted PD's count.
		return IDRequest{}, nil
	}
	if len(p.init) > 0 {
		m := p.init[0]
		p.init = p.init[1:]
		return m, nil
	}
	for len(p.queue) > 0 {
		q := p.queue[0]
		p.queue = p.queue[1:]
		if q.tries == 0 && now.Sub(q.at) > b.cfg.CommandExpiry {
			b.emit(CommandFailed{Addr: p.addr, Command: q.m.Code(), Err: ErrExpired, At: now})
			continue
		}
		return q.m, &q
	}
	return Poll{}, nil
}

// runner is one Run's use of a port.
type runner struct {
	b        *Bus
	ctx      context.Context
	port     io.ReadWriter
	dl       readDeadliner // nil if the port cannot take read deadlines
	buf      []byte
	lastByte time.Time
}

// transact sends one command to p, retransmitting it on silence, and
// handles the reply. It fails only if the port does.
func (r *runner) transact(p *pdState) error {
	b := r.b
	b.mu.Lock()
	msg, q := b.pick(p, time.Now())
	mode, seq := p.mode, p.seq
	if mode != modeOnline {
		seq = 0
	}
	b.mu.Unlock()
	pkt, err := NewFrame(p.addr, seq, msg).Append([]byte{Mark})
	if err != nil {
		return err // Send checked every queued message, so this is a bug
	}
	attempts := 1 + b.cfg.Retries
	if mode == modeOffline {
		attempts = 1
	}
	for attempt := range attempts {
		b.mu.Lock()
		b.dec.Reset() // whatever is left belongs to an earlier exchange
		b.mu.Unlock()
		if _, err := r.port.Write(pkt); err != nil {
			return fmt.Errorf("osdp: writing to port: %w", err)
		}
		b.mu.Lock()
		b.stats.FramesSent++
		if attempt > 0 {
			b.stats.Retransmits++
		}
		b.mu.Unlock()
		f, err := r.await(p.addr, seq, time.Now().Add(b.cfg.ReplyTimeout))
		if err != nil {
			return err
		}
		if f != nil {
			b.handleReply(p, msg, q, *f, time.Now())
			return nil
		}
		b.mu.Lock()
		b.stats.Timeouts++
		b.checkOffline(time.Now())
		gaveUp := p.mode == modeOffline && mode != modeOffline
		b.mu.Unlock()
		if gaveUp {
			break
		}
	}
	b.noReply(p, msg, q, time.Now())
	return nil
}

// await reads until the reply from addr with sequence number seq arrives,
// the deadline passes (nil, nil) or the port fails.
func (r *runner) await(addr, seq byte, deadline time.Time) (*Frame, error) {
	b := r.b
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return nil, nil
		}
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		if r.dl != nil {
			until := now.Add(readSlice)
			if deadline.Before(until) {
				until = deadline
			}
			if err := r.dl.SetReadDeadline(until); err != nil {
				r.dl = nil // e.g. a terminal in blocking mode: rely on its read timeout
			}
		}
		n, err := r.port.Read(r.buf)
		if n > 0 {
			r.lastByte = time.Now()
			if f := b.feed(r.buf[:n], addr, seq); f != nil {
				return f, nil
			}
		}
		if err != nil && !r.isSilence(err) {
			return nil, fmt.Errorf("osdp: reading port: %w", err)
		}
		if n == 0 {
			b.mu.Lock()
			if b.dec.Buffered() > 0 && time.Since(r.lastByte) >= interByteGap {
				b.dec.Reset()
			}
			b.mu.Unlock()
			if time.Since(now) < time.Millisecond {
				time.Sleep(2 * time.Millisecond) // a port that returns at once: do not spin
			}
		}
	}
}

// feed decodes bytes and returns the reply from addr with sequence number
// seq if they complete it. Other frames are counted and ignored: replies
// that come too late (their sequence number is old), replies for another
// CP, and our own commands echoed by an adapter that hears itself.
func (b *Bus) feed(p []byte, addr, seq byte) *Frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	frames := b.dec.Feed(p)
	b.stats.FramesReceived += uint64(len(frames))
	var match *Frame
	for i, f := range frames {
		if match == nil && f.Reply && f.Addr == addr && f.Seq == seq {
			match = &frames[i]
			continue
		}
		b.stats.Unexpected++
	}
	return match
}

// isSilence reports whether a read error means only that the line was
// silent: io.EOF, as serial libraries report a read timeout, or a deadline.
// From a net.Conn (a serial device server) io.EOF means the server closed
// the connection, which is a port failure.
func (r *runner) isSilence(err error) bool {
	var ne net.Error
	if errors.Is(err, io.EOF) {
		_, isConn := r.port.(net.Conn)
		return !isConn
	}
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// nextSeq is the sequence number after seq: 1, 2, 3, 1, … (0 only starts
// over).
func nextSeq(seq byte) byte {
	return seq%3 + 1
}

func (b *Bus) handleReply(p *pdState, sent Message, q *queued, f Frame, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p.lastSeen = now
	p.due = now.Add(b.cfg.PollInterval)
	if p.mode != modeOnline {
		// Only osdp_ID is sent to a PD that is not online; osdp_CAP follows.
		p.mode = modeOnline
		p.init = []Message{CapRequest{}}
		b.log.Info("OSDP PD online", "addr", p.addr)
		b.emit(StatusChange{Addr: p.addr, Online: true, At: now})
	}
	reply, err := ParseReply(f)
	if _, busy := reply.(Busy); busy {
		// Same command, same sequence number, next turn.
		if q != nil {
			p.queue = slices.Insert(p.queue, 0, *q)
		} else if _, poll := sent.(Poll); !poll {
			p.init = slices.Insert(p.init, 0, sent)
		}
		return
	}
	p.seq = nextSeq(f.Seq)
	if err != nil {
		b.stats.BadReplies++
		b.log.Warn("OSDP reply not understood", "addr", p.addr, "err", err)
		return
	}
	switch m := reply.(type) {
	case NakReply:
		b.log.Warn("OSDP PD refused command", "addr", p.addr,
			"command", fmt.Sprintf("0x%02X", sent.Code()), "reason", m.Reason.String())
		b.emit(Nak{Addr: p.addr, Command: sent.Code(), Code: m.Reason, At: now})
		if m.Reason == NakSequence {
			p.seq = 0 // the PD lost count: start over
		}
		// The command never arrived intact: send it again.
		if (m.Reason == NakCheck || m.Reason == NakSequence) && q != nil && q.tries < b.cfg.Retries {
			q.tries++
			p.queue = slices.Insert(p.queue, 0, *q)
		}
	case PDID:
		p.id = &m
	case PDCap:
		p.caps = m
	case Raw:
		b.emit(CardRead{Addr: p.addr, Raw: m, At: now})
	case KeypadReply:
		b.emit(Keypad{Addr: p.addr, Reader: m.Reader, Digits: m.Digits, At: now})
	case Other:
		b.log.Debug("OSDP reply ignored", "addr", p.addr, "code", fmt.Sprintf("0x%02X", m.Op))
	}
}

func (b *Bus) noReply(p *pdState, sent Message, q *queued, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q != nil {
		b.log.Warn("OSDP command not answered", "addr", p.addr, "command", fmt.Sprintf("0x%02X", sent.Code()))
		b.emit(CommandFailed{Addr: p.addr, Command: sent.Code(), Err: ErrNoReply, At: now})
	}
	switch p.mode {
	case modeOnline:
		// The PD may have restarted and lost count: sequence number 0
		// makes any PD start over.
		p.seq = 0
		p.due = now.Add(b.cfg.PollInterval)
	case modeUnknown:
		p.due = now.Add(b.cfg.PollInterval)
	case modeOffline:
		p.due = now.Add(b.cfg.OfflineRetry)
	}
}
