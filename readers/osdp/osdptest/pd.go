// Package osdptest simulates OSDP readers (PDs) for tests of the control
// panel side: the osdp package's Bus and the gateway that drives it.
//
// A PD answers like a plain (no secure channel) OSDP v2.2 reader: osdp_ID
// and osdp_CAP, osdp_POLL with a queued card read or keypad entry or else
// osdp_ACK, and osdp_LED, osdp_BUZ and osdp_OUT with osdp_ACK after
// recording them. It keeps the sequence-number rules a real reader keeps
// (0 starts over; the same number again means "your reply was lost", so the
// last reply is sent again without acting twice), and it can misbehave on
// request the way readers and lines do: fall silent, garble check
// characters, lose or cut short a reply, put noise on the line, or use the
// old 8-bit checksum. Serve puts PDs on a port; NewLine puts them on a
// pseudo-terminal whose other end behaves like a serial port.
package osdptest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lintel/lintel/readers/osdp"
)

// Received is a command as a PD got it.
type Received struct {
	Frame  osdp.Frame
	At     time.Time
	Repeat bool // same sequence number as the one before: the PD resent its last reply
}

// PD is a simulated reader at one address. Its methods are safe to call
// while it is being served.
type PD struct {
	addr byte

	mu        sync.Mutex
	id        osdp.PDID
	caps      osdp.PDCap
	pending   []osdp.Message
	silent    bool
	checksum  bool
	corrupt   int
	drop      int
	truncate  int
	garbage   []byte
	refuse    map[byte]osdp.NakCode
	haveLast  bool
	lastSeq   byte
	lastReply []byte
	received  []Received
}

// NewPD returns a PD at addr that identifies as a made-up reader with one
// reader, one LED, a buzzer and one output.
func NewPD(addr byte) *PD {
	return &PD{
		addr: addr,
		id: osdp.PDID{Vendor: [3]byte{0x0A, 0x1B, 0x2C}, Model: 1, Version: 2,
			Serial: 0x01020300 + uint32(addr), Firmware: [3]byte{1, 4, 7}},
		caps: osdp.PDCap{
			{Function: 3, Compliance: 1, Count: 1}, // card data format: bit array
			{Function: 4, Compliance: 1, Count: 1}, // reader LED control
			{Function: 5, Compliance: 1, Count: 1}, // reader audible output
			{Function: 2, Compliance: 1, Count: 1}, // output control
			{Function: 8, Compliance: 1, Count: 0}, // check character: CRC-16
		},
	}
}

// Addr returns the PD's address.
func (p *PD) Addr() byte { return p.addr }

// ID returns what the PD answers to osdp_ID.
func (p *PD) ID() osdp.PDID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

// PresentCard queues a card read on reader 0, reported as Wiegand bits in
// reply to the next poll.
func (p *PD) PresentCard(bits []bool) {
	p.queue(osdp.Raw{Reader: 0, Format: osdp.RawWiegand, Bits: slices.Clone(bits)})
}

// PressKeys queues a keypad entry on reader 0.
func (p *PD) PressKeys(digits string) {
	p.queue(osdp.KeypadReply{Reader: 0, Digits: digits})
}

func (p *PD) queue(m osdp.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, m)
}

// SetSilent makes the PD ignore everything, like a reader with its cable
// cut, or answer again.
func (p *PD) SetSilent(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = silent
}

// UseChecksum makes the PD's replies use the 8-bit checksum instead of
// CRC-16, as older readers do.
func (p *PD) UseChecksum(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checksum = on
}

// CorruptNext garbles the check characters of the next n replies.
func (p *PD) CorruptNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupt += n
}

// DropNext loses the next n replies on the line: the PD acts on the
// command but the CP hears nothing.
func (p *PD) DropNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop += n
}

// TruncateNext cuts the next n replies off halfway, like a reader browning
// out mid-reply.
func (p *PD) TruncateNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.truncate += n
}

// SendGarbage puts noise on the line just before the next reply.
func (p *PD) SendGarbage(noise []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.garbage = append(p.garbage, noise...)
}

// Refuse makes the PD answer every command with this code (e.g.
// osdp.CmdOut) with osdp_NAK and the given reason.
func (p *PD) Refuse(command byte, reason osdp.NakCode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse == nil {
		p.refuse = map[byte]osdp.NakCode{}
	}
	p.refuse[command] = reason
}

// Received returns every command the PD got, repeats included, in order.
func (p *PD) Received() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// Commands returns the frames with the given command code the PD acted on
// (repeats excluded).
func (p *PD) Commands(code byte) []osdp.Frame {
	var fs []osdp.Frame
	for _, r := range p.Received() {
		if r.Frame.Code == code && !r.Repeat {
			fs = append(fs, r.Frame)
		}
	}
	return fs
}

// LEDs returns the osdp_LED records the PD acted on.
func (p *PD) LEDs() []osdp.LED {
	var leds []osdp.LED
	for _, f := range p.Commands(osdp.CmdLED) {
		l, _ := osdp.ParseLED(f.Data)
		leds = append(leds, l...)
	}
	return leds
}

// Buzzers returns the osdp_BUZ commands the PD acted on.
func (p *PD) Buzzers() []osdp.Buzzer {
	var bs []osdp.Buzzer
	for _, f := range p.Commands(osdp.CmdBuz) {
		if b, err := osdp.ParseBuzzer(f.Data); err == nil {
			bs = append(bs, b)
		}
	}
	return bs
}

// Outputs returns the osdp_OUT records the PD acted on.
func (p *PD) Outputs() []osdp.Output {
	var outs []osdp.Output
	for _, f := range p.Commands(osdp.CmdOut) {
		o, _ := osdp.ParseOutput(f.Data)
		outs = append(outs, o...)
	}
	return outs
}

// handle answers one command addressed to the PD: the bytes to put on the
// line, or nil.
func (p *PD) handle(f osdp.Frame) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.silent {
		return nil
	}
	rec := Received{Frame: f, At: time.Now()}
	if f.Seq != 0 && p.haveLast && f.Seq == p.lastSeq {
		rec.Repeat = true
		p.received = append(p.received, rec)
		return p.transmit(p.lastReply)
	}
	p.received = append(p.received, rec)
	reply := osdp.NewFrame(p.addr, f.Seq, p.answer(f))
	reply.Reply = true
	reply.Checksum = p.checksum
	pkt, err := reply.Encode()
	if err != nil {
		panic(err) // a reply this simulator builds always encodes
	}
	p.haveLast, p.lastSeq, p.lastReply = true, f.Seq, pkt
	return p.transmit(pkt)
}

// answer acts on a command; p.mu is held.
func (p *PD) answer(f osdp.Frame) osdp.Message {
	if reason, ok := p.refuse[f.Code]; ok {
		return osdp.NakReply{Reason: reason}
	}
	var err error
	switch f.Code {
	case osdp.CmdPoll:
		if len(p.pending) > 0 {
			m := p.pending[0]
			p.pending = p.pending[1:]
			return m
		}
		return osdp.Ack{}
	case osdp.CmdID:
		return p.id
	case osdp.CmdCap:
		return p.caps
	case osdp.CmdLED:
		_, err = osdp.ParseLED(f.Data)
	case osdp.CmdBuz:
		_, err = osdp.ParseBuzzer(f.Data)
	case osdp.CmdOut:
		_, err = osdp.ParseOutput(f.Data)
	default:
		return osdp.NakReply{Reason: osdp.NakUnknownCommand}
	}
	if err != nil {
		return osdp.NakReply{Reason: osdp.NakLength}
	}
	return osdp.Ack{}
}

// transmit applies the requested line faults to one reply; p.mu is held.
func (p *PD) transmit(pkt []byte) []byte {
	out := append(slices.Clone(p.garbage), osdp.Mark)
	p.garbage = nil
	pkt = slices.Clone(pkt)
	switch {
	case p.drop > 0:
		p.drop--
		return nil
	case p.truncate > 0:
		p.truncate--
		pkt = pkt[:len(pkt)/2]
	case p.corrupt > 0:
		p.corrupt--
		pkt[len(pkt)-1] ^= 0x5A
	}
	return append(out, pkt...)
}

// Serve answers commands read from port for pds until ctx ends or the port
// fails. Reads that return a timeout, or io.EOF from anything but a
// net.Conn, are silence, as on the CP side. It does not close the port: closing it is how a blocked Serve is
// stopped.
func Serve(ctx context.Context, port io.ReadWriter, pds ...*PD) error {
	var dec osdp.Decoder
	buf := make([]byte, 512)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := port.Read(buf)
		for _, f := range dec.Feed(buf[:n]) {
			if f.Reply {
				continue
			}
			for _, pd := range pds {
				if pd.addr != f.Addr {
					continue
				}
				if out := pd.handle(f); out != nil {
					if _, err := port.Write(out); err != nil {
						return err
					}
				}
			}
		}
		var ne net.Error
		_, isConn := port.(net.Conn)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && !isConn, errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		default:
			return err
		}
	}
}
