package eventqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/readers/gateway/internal/binfmt"
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
	b = binfmt.AppendString(b, ev.ReaderID)
	b = binfmt.AppendString(b, ev.Door)
	b = binary.AppendVarint(b, ev.At.Unix())
	b = binary.AppendUvarint(b, uint64(ev.At.Nanosecond()))
	b = binfmt.AppendString(b, ev.Kind)
	b = binfmt.AppendString(b, ev.CardID)
	if ev.RecordID != nil {
		b = append(b, 1)
		b = append(b, ev.RecordID[:]...)
	} else {
		b = append(b, 0)
	}
	b = binfmt.AppendString(b, ev.Decision)
	b = binfmt.AppendString(b, ev.Reason)
	b = binfmt.AppendString(b, ev.Detail)
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
	d := binfmt.NewDecoder(p)
	if d.Byte() != payloadFormat {
		return errTorn
	}
	ev.ID = d.UUID()
	ev.ReaderID = d.String()
	ev.Door = d.String()
	sec := d.Varint()
	nsec := d.Uvarint()
	if nsec >= 1e9 {
		d.Fail("nanoseconds out of range")
	}
	ev.At = time.Unix(sec, int64(nsec)).UTC()
	ev.Kind = d.String()
	ev.CardID = d.String()
	ev.RecordID = nil
	if d.Bool() {
		id := d.UUID()
		ev.RecordID = &id
	}
	ev.Decision = d.String()
	ev.Reason = d.String()
	ev.Detail = d.String()
	if d.Err() != nil || d.Rest() != 0 {
		return errTorn
	}
	return nil
}
