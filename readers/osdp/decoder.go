package osdp

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Stats counts what a Decoder dropped, by reason. Rising counts point at
// the wiring: garbage and bad CRCs at noise, termination or a baud-rate
// mismatch; truncated frames at a PD that stops mid-reply; unsupported
// frames at a reader configured for secure channel.
type Stats struct {
	Garbage     uint64 // bytes outside any frame (Mark bytes before a SOM are not counted)
	BadCRC      uint64 // frames whose CRC or checksum did not match
	BadLength   uint64 // headers with a length no frame can have
	Truncated   uint64 // partial frames discarded by Reset
	Unsupported uint64 // intact frames with a security block or reserved control bits
}

func (s *Stats) add(r DropReason, n uint64) {
	switch r {
	case DropGarbage:
		s.Garbage += n
	case DropBadCRC:
		s.BadCRC += n
	case DropBadLength:
		s.BadLength += n
	case DropTruncated:
		s.Truncated += n
	case DropUnsupported:
		s.Unsupported += n
	}
}

// Decoder finds frames in a stream of bytes read from the line. It drops
// anything that is not an intact frame, counts why, and carries on with
// the next SOM, so one burst of noise costs at most one reply.
//
// It cannot tell by itself that a frame was cut short: the rest may still be
// coming. Whoever reads the line calls Reset after a silence longer than
// the gap between bytes of one frame, which drops the partial frame.
//
// The zero value is ready to use. A Decoder is not safe for concurrent use.
type Decoder struct {
	// OnDrop, if set, is called for each drop, for logging.
	OnDrop func(*FrameError)

	buf   []byte
	stats Stats
}

// Feed adds bytes read from the line and returns the frames they complete,
// in order.
func (d *Decoder) Feed(p []byte) []Frame {
	d.buf = append(d.buf, p...)
	var frames []Frame
	b := d.buf
	for len(b) > 0 {
		i := bytes.IndexByte(b, SOM)
		if i < 0 {
			i = len(b)
		}
		d.garbage(b[:i])
		b = b[i:]
		if len(b) < headerLen {
			break
		}
		n := int(binary.LittleEndian.Uint16(b[2:4]))
		if n < minLen(b[4]&ctrlCRC != 0) || n > MaxFrameLen {
			// The length cannot be trusted, so neither can this SOM: it
			// is most likely noise. Look for the next SOM right after it,
			// which may start a real frame.
			d.drop(frameErr(DropBadLength, "length %d out of range %d-%d", n, minLen(b[4]&ctrlCRC != 0), MaxFrameLen), 1)
			b = b[1:]
			continue
		}
		if len(b) < n {
			break
		}
		f, err := ParseFrame(b[:n])
		if err != nil {
			// A bad CRC after a plausible header is a real frame hit by
			// noise; searching inside it for SOM would find false ones in
			// its data, so the whole frame goes.
			var fe *FrameError
			errors.As(err, &fe)
			d.drop(fe, 1)
		} else {
			frames = append(frames, f)
		}
		b = b[n:]
	}
	// Keep only the partial frame, at the start of the buffer, so that a
	// long-running decoder does not grow.
	d.buf = append(d.buf[:0], b...)
	return frames
}

// garbage counts bytes before a SOM, except Mark bytes, which v2.2 senders
// put there on purpose.
func (d *Decoder) garbage(p []byte) {
	var n int
	for _, c := range p {
		if c != Mark {
			n++
		}
	}
	if n > 0 {
		d.drop(frameErr(DropGarbage, "%d bytes before SOM", n), uint64(n))
	}
}

func (d *Decoder) drop(err *FrameError, n uint64) {
	d.stats.add(err.Reason, n)
	if d.OnDrop != nil {
		d.OnDrop(err)
	}
}

// Reset drops a partial frame, counting it as truncated. The bus calls it
// when the line has been silent longer than the gap allowed inside a frame,
// so that the next frame is not read as the rest of a dead one.
func (d *Decoder) Reset() {
	if len(d.buf) > 0 {
		d.drop(frameErr(DropTruncated, "%d bytes of a frame, then silence", len(d.buf)), 1)
		d.buf = d.buf[:0]
	}
}

// Buffered returns how many bytes of a partial frame the Decoder holds.
func (d *Decoder) Buffered() int {
	return len(d.buf)
}

// Stats returns the drop counts since the Decoder was created.
func (d *Decoder) Stats() Stats {
	return d.stats
}
