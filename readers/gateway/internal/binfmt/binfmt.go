// Package binfmt holds what the gateway's two on-disk formats — the access
// list snapshot and the event queue's records — share: varint-framed
// fields, a decoder whose first error sticks, and the directory fsync that
// makes a rename or a new file durable.
package binfmt

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/google/uuid"
)

// AppendString appends s with its length in front.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBool appends v as one byte, 0 or 1.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// Decoder reads what the Append functions and encoding/binary's varints
// wrote. The first error sticks; zero values follow it.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err is the first error, or nil.
func (d *Decoder) Err() error { return d.err }

// Rest is how many bytes are left unread.
func (d *Decoder) Rest() int { return len(d.b) }

// Fail records an error (unless one is already recorded) and stops reading.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.b = nil
}

// Take returns the next n bytes, or nil when fewer are left.
func (d *Decoder) Take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.Fail("cut short")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if p := d.Take(1); p != nil {
		return p[0]
	}
	return 0
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail("a flag is neither 0 nor 1")
	return false
}

// UUID reads 16 bytes.
func (d *Decoder) UUID() (id uuid.UUID) {
	copy(id[:], d.Take(16))
	return id
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 { return readVarint(d, binary.Uvarint) }

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 { return readVarint(d, binary.Varint) }

// readVarint reads one number with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *Decoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.Fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// String reads what AppendString wrote.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if n > uint64(len(d.b)) {
		d.Fail("a string runs past the end")
		return ""
	}
	return string(d.Take(int(n)))
}

// Count reads a number of items of at least minLen bytes each, refusing
// more than the rest could hold (so a bad count cannot make the reader
// allocate a huge slice).
func (d *Decoder) Count(minLen int) int {
	n := d.Uvarint()
	if n > uint64(len(d.b)/minLen) {
		d.Fail("%d items cannot fit in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

// SyncDir fsyncs a directory, so that the files created or renamed in it
// survive a power cut.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
