package eventqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/google/uuid"
)

// Event is one thing that happened at a door.
type Event struct {
	// ID identifies the event to the server, which stores each ID once.
	// Append gives an event without one a random ID.
	ID       uuid.UUID
	ReaderID string
	Door     string
	// At comes back from the queue in UTC, to the nanosecond.
	At time.Time
	// Kind is CARD, CODE, KEYPAD or ALERT.
	Kind     string
	CardID   string
	RecordID *uuid.UUID
	// Decision is GRANTED, DENIED, or "" (an alert).
	Decision string
	Reason   string
	Detail   string
}

// MaxEventSize bounds one encoded event; Append refuses larger ones.
const MaxEventSize = 64 << 10

const (
	recordHeader  = 8
	payloadFormat = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends ev as a record: length, checksum, payload.
func appendRecord(b []byte, ev *Event) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, recordHeader)...)
	b = append(b, payloadFormat)
	b = append(b, ev.ID[:]...)
	b = appendString(b, ev.ReaderID)
	b = appendString(b, ev.Door)
	b = binary.AppendVarint(b, ev.At.Unix())
	b = binary.AppendUvarint(b, uint64(ev.At.Nanosecond()))
	b = appendString(b, ev.Kind)
	b = appendString(b, ev.CardID)
	if ev.RecordID != nil {
		b = append(b, 1)
		b = append(b, ev.RecordID[:]...)
	} else {
		b = append(b, 0)
	}
	b = appendString(b, ev.Decision)
	b = appendString(b, ev.Reason)
	b = appendString(b, ev.Detail)
	n := len(b) - start - recordHeader
	if n > MaxEventSize {
		return b[:start], fmt.Errorf("eventqueue: the event takes %d bytes, at most %d", n, MaxEventSize)
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	binary.LittleEndian.PutUint32(b[start+4:], recordChecksum(b[start:start+4], b[start+recordHeader:]))
	return b, nil
}

func recordChecksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errTorn = errors.New("torn or damaged record")

// readRecord reads the record at the start of b and returns its length in
// bytes. Anything but a whole record with a matching checksum and a
// well-formed payload is errTorn.
func readRecord(b []byte, ev *Event) (int, error) {
	if len(b) < recordHeader {
		return 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > MaxEventSize || uint64(n) > uint64(len(b)-recordHeader) {
		return 0, errTorn
	}
	payload := b[recordHeader : recordHeader+int(n)]
	if recordChecksum(b[:4], payload) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, errTorn
	}
	if ev != nil {
		if err := decodeEvent(payload, ev); err != nil {
			return 0, err
		}
	}
	return recordHeader + int(n), nil
}

func decodeEvent(p []byte, ev *Event) error {
	d := decoder{b: p, ok: true}
	if d.byte() != payloadFormat {
		return errTorn
	}
	copy(ev.ID[:], d.take(16))
	ev.ReaderID = d.string()
	ev.Door = d.string()
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.ok = false
	}
	ev.At = time.Unix(sec, int64(nsec)).UTC()
	ev.Kind = d.string()
	ev.CardID = d.string()
	ev.RecordID = nil
	switch d.byte() {
	case 0:
	case 1:
		var id uuid.UUID
		copy(id[:], d.take(16))
		ev.RecordID = &id
	default:
		d.ok = false
	}
	ev.Decision = d.string()
	ev.Reason = d.string()
	ev.Detail = d.string()
	if !d.ok || len(d.b) != 0 {
		return errTorn
	}
	return nil
}

// decoder reads a payload; once it fails it reads zeros.
type decoder struct {
	b  []byte
	ok bool
}

func (d *decoder) take(n int) []byte {
	if n > len(d.b) {
		d.ok, d.b = false, nil
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte { return d.take(1)[0] }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.ok, d.b = false, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.ok, d.b = false, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.ok, d.b = false, nil
		return ""
	}
	return string(d.take(int(n)))
}
