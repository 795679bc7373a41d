package osdp

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Reply codes (PD to CP) this package reads.
const (
	ReplyAck    = 0x40 // osdp_ACK
	ReplyNak    = 0x41 // osdp_NAK
	ReplyPDID   = 0x45 // osdp_PDID
	ReplyPDCap  = 0x46 // osdp_PDCAP
	ReplyLStatR = 0x48 // osdp_LSTATR, read as Other
	ReplyRaw    = 0x50 // osdp_RAW
	ReplyKeypad = 0x53 // osdp_KEYPAD
	ReplyCom    = 0x54 // osdp_COM, read as Other
	ReplyBusy   = 0x79 // osdp_BUSY
)

// ParseReply reads the message in a PD's reply frame. Replies this package
// has no use for come back as Other, so that a reader with extra features
// still works.
func ParseReply(f Frame) (Message, error) {
	d := f.Data
	switch f.Code {
	case ReplyAck:
		if err := wantLen("osdp_ACK", d, 0); err != nil {
			return nil, err
		}
		return Ack{}, nil
	case ReplyBusy:
		if err := wantLen("osdp_BUSY", d, 0); err != nil {
			return nil, err
		}
		return Busy{}, nil
	case ReplyNak:
		if len(d) < 1 {
			return nil, fmt.Errorf("osdp: osdp_NAK has no error code")
		}
		n := NakReply{Reason: NakCode(d[0])}
		if len(d) > 1 {
			n.Detail = append([]byte(nil), d[1:]...)
		}
		return n, nil
	case ReplyPDID:
		if err := wantLen("osdp_PDID", d, pdidLen); err != nil {
			return nil, err
		}
		return PDID{
			Vendor: [3]byte(d[0:3]), Model: d[3], Version: d[4],
			Serial:   binary.LittleEndian.Uint32(d[5:9]),
			Firmware: [3]byte(d[9:12]),
		}, nil
	case ReplyPDCap:
		if len(d) == 0 || len(d)%3 != 0 {
			return nil, fmt.Errorf("osdp: osdp_PDCAP data is %d bytes, want a non-zero multiple of 3", len(d))
		}
		caps := make(PDCap, 0, len(d)/3)
		for r := d; len(r) > 0; r = r[3:] {
			caps = append(caps, Capability{Function: r[0], Compliance: r[1], Count: r[2]})
		}
		return caps, nil
	case ReplyRaw:
		return parseRaw(d)
	case ReplyKeypad:
		return parseKeypad(d)
	}
	o := Other{Op: f.Code}
	if len(d) > 0 {
		o.Data = append([]byte(nil), d...)
	}
	return o, nil
}

func wantLen(name string, d []byte, n int) error {
	if len(d) != n {
		return fmt.Errorf("osdp: %s data is %d bytes, want %d", name, len(d), n)
	}
	return nil
}

// Ack is osdp_ACK: the command was carried out, nothing to report.
type Ack struct{}

// Code returns ReplyAck.
func (Ack) Code() byte { return ReplyAck }

// AppendData appends nothing.
func (Ack) AppendData(dst []byte) []byte { return dst }

// Busy is osdp_BUSY: the PD cannot take the command now; the CP sends it
// again, with the same sequence number.
type Busy struct{}

// Code returns ReplyBusy.
func (Busy) Code() byte { return ReplyBusy }

// AppendData appends nothing.
func (Busy) AppendData(dst []byte) []byte { return dst }

// NakCode is why a PD refused a command.
type NakCode byte

// The osdp_NAK error codes.
const (
	NakNone             NakCode = 0x00
	NakCheck            NakCode = 0x01 // the PD saw bad check characters
	NakLength           NakCode = 0x02
	NakUnknownCommand   NakCode = 0x03
	NakSequence         NakCode = 0x04 // unexpected sequence number
	NakSecurity         NakCode = 0x05 // security block unsupported or conditions not met
	NakEncryptionNeeded NakCode = 0x06 // the PD only talks secure channel
	NakBioType          NakCode = 0x07
	NakBioFormat        NakCode = 0x08
	NakUnableToProcess  NakCode = 0x09 // e.g. an LED or output the PD does not have
)

// String describes the code for installers' logs.
func (c NakCode) String() string {
	switch c {
	case NakNone:
		return "no error"
	case NakCheck:
		return "message check character error"
	case NakLength:
		return "command length error"
	case NakUnknownCommand:
		return "unknown command"
	case NakSequence:
		return "unexpected sequence number"
	case NakSecurity:
		return "security block not supported"
	case NakEncryptionNeeded:
		return "encrypted communication required"
	case NakBioType:
		return "biometric type not supported"
	case NakBioFormat:
		return "biometric format not supported"
	case NakUnableToProcess:
		return "unable to process command record"
	}
	return fmt.Sprintf("NAK code 0x%02X", byte(c))
}

// NakReply is osdp_NAK: the PD refused the command.
type NakReply struct {
	Reason NakCode
	Detail []byte // optional extra data some codes carry
}

// Code returns ReplyNak.
func (NakReply) Code() byte { return ReplyNak }

// AppendData appends the error code and detail.
func (n NakReply) AppendData(dst []byte) []byte {
	return append(append(dst, byte(n.Reason)), n.Detail...)
}

// PDID is osdp_PDID: who made the reader and what it runs, for the
// installer's inventory.
type PDID struct {
	Vendor   [3]byte // IEEE OUI
	Model    byte
	Version  byte
	Serial   uint32
	Firmware [3]byte // major, minor, build
}

const pdidLen = 12

// Code returns ReplyPDID.
func (PDID) Code() byte { return ReplyPDID }

// AppendData appends the 12-byte ID block.
func (id PDID) AppendData(dst []byte) []byte {
	dst = append(dst, id.Vendor[:]...)
	dst = append(dst, id.Model, id.Version)
	dst = binary.LittleEndian.AppendUint32(dst, id.Serial)
	return append(dst, id.Firmware[:]...)
}

// Capability is one osdp_PDCAP entry: a function code, how far the PD
// supports it, and how many it has (e.g. function 4, "output control",
// count 2 for two relays).
type Capability struct {
	Function, Compliance, Count byte
}

// PDCap is osdp_PDCAP: the PD's capabilities.
type PDCap []Capability

// Code returns ReplyPDCap.
func (PDCap) Code() byte { return ReplyPDCap }

// AppendData appends one 3-byte entry per capability.
func (c PDCap) AppendData(dst []byte) []byte {
	for _, e := range c {
		dst = append(dst, e.Function, e.Compliance, e.Count)
	}
	return dst
}

// Raw formats.
const (
	RawUnspecified = 0x00 // raw bits, no format given
	RawWiegand     = 0x01 // Wiegand: parity, data, parity
)

// Raw is osdp_RAW: a card read as the bits the reader got from the card,
// first bit first.
type Raw struct {
	Reader byte
	Format byte // RawUnspecified or RawWiegand
	Bits   []bool
}

// Code returns ReplyRaw.
func (Raw) Code() byte { return ReplyRaw }

// AppendData appends reader, format, bit count and the bits packed most
// significant bit first, the last byte padded with zeros.
func (r Raw) AppendData(dst []byte) []byte {
	dst = append(dst, r.Reader, r.Format)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(r.Bits)))
	start := len(dst)
	dst = append(dst, make([]byte, (len(r.Bits)+7)/8)...)
	for i, bit := range r.Bits {
		if bit {
			dst[start+i/8] |= 0x80 >> (i % 8)
		}
	}
	return dst
}

// String writes the bits as '0' and '1', first bit first, as installers
// compare them with a reader's documentation.
func (r Raw) String() string {
	var b strings.Builder
	for _, bit := range r.Bits {
		if bit {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

func parseRaw(d []byte) (Raw, error) {
	if len(d) < 4 {
		return Raw{}, fmt.Errorf("osdp: osdp_RAW data is %d bytes, want at least 4", len(d))
	}
	n := int(binary.LittleEndian.Uint16(d[2:4]))
	if n == 0 {
		return Raw{}, fmt.Errorf("osdp: osdp_RAW has no bits")
	}
	if want := 4 + (n+7)/8; len(d) != want {
		return Raw{}, fmt.Errorf("osdp: osdp_RAW of %d bits has %d data bytes, want %d", n, len(d)-4, want-4)
	}
	r := Raw{Reader: d[0], Format: d[1], Bits: make([]bool, n)}
	for i := range r.Bits {
		r.Bits[i] = d[4+i/8]&(0x80>>(i%8)) != 0
	}
	return r, nil
}

// Keypad key codes: OSDP sends digits as ASCII, but the '*' key as DEL
// (0x7F, "clear") and the '#' key as CR (0x0D, "enter").
const (
	keyStar = 0x7F
	keyHash = 0x0D
)

// KeypadReply is osdp_KEYPAD: keys pressed on a reader, as text: "0"-"9",
// "*" and "#".
type KeypadReply struct {
	Reader byte
	Digits string
}

// Code returns ReplyKeypad.
func (KeypadReply) Code() byte { return ReplyKeypad }

// AppendData appends reader, count and the key codes.
func (k KeypadReply) AppendData(dst []byte) []byte {
	dst = append(dst, k.Reader, byte(len(k.Digits)))
	for i := 0; i < len(k.Digits); i++ {
		switch c := k.Digits[i]; c {
		case '*':
			dst = append(dst, keyStar)
		case '#':
			dst = append(dst, keyHash)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func parseKeypad(d []byte) (KeypadReply, error) {
	if len(d) < 2 || len(d) != 2+int(d[1]) {
		return KeypadReply{}, fmt.Errorf("osdp: osdp_KEYPAD data is %d bytes, not reader, count and that many keys", len(d))
	}
	keys := make([]byte, 0, d[1])
	for _, c := range d[2:] {
		switch {
		case c == keyStar:
			keys = append(keys, '*')
		case c == keyHash:
			keys = append(keys, '#')
		case c >= 0x20 && c < 0x7F: // some readers send '*', '#' or letter keys as plain ASCII
			keys = append(keys, c)
		default:
			return KeypadReply{}, fmt.Errorf("osdp: osdp_KEYPAD key code 0x%02X is not a key", c)
		}
	}
	return KeypadReply{Reader: d[0], Digits: string(keys)}, nil
}

// Other is a command or reply this package does not interpret, such as
// osdp_LSTATR or osdp_COM.
type Other struct {
	Op   byte // the command or reply code
	Data []byte
}

// Code returns Op.
func (o Other) Code() byte { return o.Op }

// AppendData appends Data.
func (o Other) AppendData(dst []byte) []byte { return append(dst, o.Data...) }
