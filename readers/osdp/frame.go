package osdp

import (
	"encoding/binary"
	"fmt"
)

// SOM is the start-of-message byte every OSDP packet begins with.
const SOM = 0x53

// Mark is the byte OSDP v2.2 sends before SOM. It lets an RS-485 driver
// settle after turning on before the frame starts; receivers skip it, and
// the Decoder does not count it as garbage.
const Mark = 0xFF

// BroadcastAddr is the address every PD answers to.
const BroadcastAddr = 0x7F

// MaxFrameLen is the longest packet the Decoder accepts and Encode writes.
// It is far above any reply this CP asks for (the largest, a long osdp_RAW
// or osdp_PDCAP, stays under 200 bytes) and small enough that a false SOM in
// line noise followed by a wild length costs one reply timeout, not a long
// wait for thousands of bytes that will never come.
const MaxFrameLen = 512

// Control byte bits.
const (
	ctrlSeq      = 0x03 // sequence number 0-3
	ctrlCRC      = 0x04 // set: CRC-16 follows the data; clear: 8-bit checksum
	ctrlSCB      = 0x08 // a security block follows the control byte
	ctrlReserved = 0xF0
	replyBit     = 0x80 // set in the address of every PD reply
	headerLen    = 5    // SOM, ADDR, LEN_LSB, LEN_MSB, CTRL
)

// minLen is the shortest packet allowed in a mode: header, code and check
// characters.
func minLen(crc bool) int {
	if crc {
		return headerLen + 1 + 2
	}
	return headerLen + 1 + 1
}

// Frame is one OSDP packet without secure channel.
type Frame struct {
	Addr     byte // PD address 0x00-0x7E, or BroadcastAddr; without the reply bit
	Reply    bool // sent by a PD: the address byte has bit 7 set
	Seq      byte // sequence number 0-3
	Checksum bool // 8-bit checksum instead of CRC-16; only some readers' replies use it
	Code     byte // command or reply code
	Data     []byte
}

// NewFrame returns the command frame carrying m to the PD at addr.
func NewFrame(addr, seq byte, m Message) Frame {
	return Frame{Addr: addr, Seq: seq, Code: m.Code(), Data: m.AppendData(nil)}
}

// Encode returns the packet for f, from SOM to the check characters.
func (f Frame) Encode() ([]byte, error) {
	return f.Append(nil)
}

// Append appends the packet for f to dst. It fails only for a frame no
// reader could accept: an address or sequence number out of range, or data
// too long.
func (f Frame) Append(dst []byte) ([]byte, error) {
	if f.Addr > BroadcastAddr {
		return dst, fmt.Errorf("osdp: address 0x%02X out of range 0x00-0x7F", f.Addr)
	}
	if f.Seq > ctrlSeq {
		return dst, fmt.Errorf("osdp: sequence number %d out of range 0-3", f.Seq)
	}
	n := minLen(!f.Checksum) + len(f.Data)
	if n > MaxFrameLen {
		return dst, fmt.Errorf("osdp: %d bytes of data make a %d-byte frame, at most %d allowed", len(f.Data), n, MaxFrameLen)
	}
	addr, ctrl := f.Addr, f.Seq
	if f.Reply {
		addr |= replyBit
	}
	if !f.Checksum {
		ctrl |= ctrlCRC
	}
	start := len(dst)
	dst = append(dst, SOM, addr, byte(n), byte(n>>8), ctrl, f.Code)
	dst = append(dst, f.Data...)
	if f.Checksum {
		return append(dst, Checksum(dst[start:])), nil
	}
	return binary.LittleEndian.AppendUint16(dst, CRC16(dst[start:])), nil
}

// DropReason says why bytes on the line were not an intact frame.
type DropReason int

// The reasons a Decoder drops bytes; Stats counts each.
const (
	DropGarbage     DropReason = iota // bytes outside any frame
	DropBadCRC                        // check characters do not match: noise on the line
	DropBadLength                     // a length no frame can have: usually a false SOM in noise
	DropTruncated                     // a frame cut short by silence on the line
	DropUnsupported                   // an intact frame this package cannot handle (secure channel)
)

// String names the reason as the Stats field does, for logs.
func (r DropReason) String() string {
	switch r {
	case DropGarbage:
		return "garbage"
	case DropBadCRC:
		return "bad CRC"
	case DropBadLength:
		return "bad length"
	case DropTruncated:
		return "truncated"
	case DropUnsupported:
		return "unsupported"
	}
	return fmt.Sprintf("DropReason(%d)", int(r))
}

// FrameError is bytes that are not an intact, supported frame.
type FrameError struct {
	Reason DropReason
	Detail string // e.g. "CRC 0x1234 does not match 0x5678 computed"
}

// Error says what was dropped and why, e.g. "osdp: bad CRC: CRC 0x1234
// does not match 0x5678 computed".
func (e *FrameError) Error() string {
	return "osdp: " + e.Reason.String() + ": " + e.Detail
}

func frameErr(r DropReason, format string, args ...any) *FrameError {
	return &FrameError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ParseFrame reads exactly one packet, from SOM to check characters. Errors
// are *FrameError values. The frame's Data is a copy, not a view of p.
func ParseFrame(p []byte) (Frame, error) {
	if len(p) == 0 || p[0] != SOM {
		return Frame{}, frameErr(DropGarbage, "packet does not start with SOM 0x53")
	}
	if len(p) < headerLen {
		return Frame{}, frameErr(DropTruncated, "%d bytes, shorter than the %d-byte header", len(p), headerLen)
	}
	n := int(binary.LittleEndian.Uint16(p[2:4]))
	ctrl := p[4]
	crc := ctrl&ctrlCRC != 0
	if n < minLen(crc) || n > MaxFrameLen {
		return Frame{}, frameErr(DropBadLength, "length %d out of range %d-%d", n, minLen(crc), MaxFrameLen)
	}
	if len(p) < n {
		return Frame{}, frameErr(DropTruncated, "%d of %d bytes", len(p), n)
	}
	if len(p) > n {
		return Frame{}, frameErr(DropBadLength, "%d bytes, but the length field says %d", len(p), n)
	}
	if crc {
		want := CRC16(p[:n-2])
		if got := binary.LittleEndian.Uint16(p[n-2:]); got != want {
			return Frame{}, frameErr(DropBadCRC, "CRC 0x%04X does not match 0x%04X computed", got, want)
		}
	} else if got, want := p[n-1], Checksum(p[:n-1]); got != want {
		return Frame{}, frameErr(DropBadCRC, "checksum 0x%02X does not match 0x%02X computed", got, want)
	}
	// Only an intact frame is unsupported: checked after the check
	// characters, so noise is counted as noise.
	addr := p[1] &^ replyBit
	if ctrl&ctrlSCB != 0 {
		return Frame{}, frameErr(DropUnsupported,
			"frame from address 0x%02X has a security block; secure channel is not supported, switch the reader to plain OSDP", addr)
	}
	if ctrl&ctrlReserved != 0 {
		return Frame{}, frameErr(DropUnsupported, "control byte 0x%02X from address 0x%02X has reserved bits 4-7 set", ctrl, addr)
	}
	check := 2
	if !crc {
		check = 1
	}
	f := Frame{
		Addr:     addr,
		Reply:    p[1]&replyBit != 0,
		Seq:      ctrl & ctrlSeq,
		Checksum: !crc,
		Code:     p[headerLen],
	}
	if data := p[headerLen+1 : n-check]; len(data) > 0 {
		f.Data = append([]byte(nil), data...)
	}
	return f, nil
}
