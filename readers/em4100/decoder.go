package em4100

import (
	"fmt"
	"time"

	"github.com/lintel/lintel/internal/cardid"
)

// Frame layout.
const (
	stx        = 0x02
	etx        = 0x03
	payloadLen = 12 // hex characters between STX and ETX
	// FrameLen is the length of a whole frame in bytes, STX and ETX
	// included.
	FrameLen = payloadLen + 2
)

// Defaults for a zero Config.
const (
	DefaultHoldGap      = time.Second
	DefaultFrameTimeout = 500 * time.Millisecond
)

// Config configures a Decoder.
type Config struct {
	// Format is the card-ID format the site stores cards in.
	Format cardid.Format
	// HoldGap is how long a tag must be out of the field before a new
	// presentation of it is reported; default 1 s. Shorter gaps let a
	// tag held at the edge of the field, which the reader sees
	// intermittently, open the door again and again.
	HoldGap time.Duration
	// FrameTimeout drops a frame that is still incomplete this long after
	// its last byte arrived (the reader was unplugged or power-cycled
	// mid-frame); default 500 ms. A whole frame takes 15 ms at 9600 baud,
	// so the timeout only has to outlast scheduling hiccups.
	FrameTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// Read is one presentation of a tag.
type Read struct {
	// Tag is the 40-bit tag number: customer byte and tag ID.
	Tag uint64
	// Customer is the version/customer byte, the top 8 bits of Tag.
	Customer byte
	// CardID is the canonical card ID in the configured format, made from
	// the 32-bit tag ID.
	CardID string
	// At is when the frame was decoded.
	At time.Time
}

// ID is the 32-bit tag ID, the number printed on the card.
func (r Read) ID() uint32 { return uint32(r.Tag) }

// Stats counts what a Decoder has seen. A rising count of bad frames
// points at a noisy cable, a baud-rate mismatch or a reader that speaks
// another protocol.
type Stats struct {
	Frames      int // good frames, including repeats of a held tag
	Reads       int // reads reported
	Repeats     int // good frames suppressed because the tag was still held
	BadChecksum int // complete frames whose checksum did not match
	BadHex      int // frames with a character that is not a hex digit
	Truncated   int // frames that ended early or were cut off by a gap
	Overlong    int // frames with more than 12 characters before ETX
	Noise       int // bytes outside any frame, skipped
}

// Decoder turns the byte stream of an EM4100 reader into tag reads. It
// keeps state across calls, so frames may arrive split over any number of
// Feed calls. A Decoder is not safe for concurrent use.
type Decoder struct {
	cfg Config

	inFrame  bool
	payload  []byte
	lastByte time.Time

	seen  map[uint64]time.Time // when each recently held tag was last seen
	stats Stats
}

// NewDecoder returns a Decoder for cfg, or an error if cfg.Format is not a
// card-ID format.
func NewDecoder(cfg Config) (*Decoder, error) {
	if !cfg.Format.Valid() {
		return nil, fmt.Errorf("em4100: unknown card ID format %q", cfg.Format)
	}
	if cfg.HoldGap <= 0 {
		cfg.HoldGap = DefaultHoldGap
	}
	if cfg.FrameTimeout <= 0 {
		cfg.FrameTimeout = DefaultFrameTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Decoder{cfg: cfg, payload: make([]byte, 0, payloadLen), seen: map[uint64]time.Time{}}, nil
}

// Stats returns the counts so far.
func (d *Decoder) Stats() Stats { return d.stats }

// Flush drops a partly received frame, counting it as truncated. Call it
// when the line has been idle (or was reopened): the rest of that frame is
// never coming, and its bytes must not be glued to the next one.
func (d *Decoder) Flush() {
	if d.inFrame {
		d.stats.Truncated++
		d.inFrame = false
	}
}

// Feed decodes the next bytes from the reader and returns the reads they
// complete, in order. An empty p still lets a stale partial frame expire.
func (d *Decoder) Feed(p []byte) []Read {
	now := d.cfg.Now()
	if d.inFrame && now.Sub(d.lastByte) > d.cfg.FrameTimeout {
		d.Flush()
	}
	if len(p) > 0 {
		d.lastByte = now
	}
	var reads []Read
	for _, c := range p {
		switch {
		case c == stx:
			// A new frame starts; one still open never got its ETX.
			d.Flush()
			d.inFrame = true
			d.payload = d.payload[:0]
		case !d.inFrame:
			d.stats.Noise++
		case c == etx:
			d.inFrame = false
			if len(d.payload) < payloadLen {
				d.stats.Truncated++
				continue
			}
			if r, ok := d.frame(now); ok {
				reads = append(reads, r)
			}
		case len(d.payload) == payloadLen:
			d.stats.Overlong++
			d.inFrame = false
		case hexValue(c) < 0:
			d.stats.BadHex++
			d.inFrame = false
		default:
			d.payload = append(d.payload, c)
		}
	}
	return reads
}

// frame checks the 12 hex characters of a complete frame and applies the
// hold gap.
func (d *Decoder) frame(now time.Time) (Read, bool) {
	var b [6]byte
	for i := range b {
		b[i] = byte(hexValue(d.payload[2*i])<<4 | hexValue(d.payload[2*i+1]))
	}
	if b[0]^b[1]^b[2]^b[3]^b[4] != b[5] {
		d.stats.BadChecksum++
		return Read{}, false
	}
	d.stats.Frames++
	var tag uint64
	for _, x := range b[:5] {
		tag = tag<<8 | uint64(x)
	}

	last, held := d.seen[tag]
	d.seen[tag] = now
	for t, at := range d.seen {
		if now.Sub(at) >= d.cfg.HoldGap {
			delete(d.seen, t)
		}
	}
	if held && now.Sub(last) < d.cfg.HoldGap {
		d.stats.Repeats++
		return Read{}, false
	}
	d.stats.Reads++
	return Read{Tag: tag, Customer: b[0], CardID: cardID(d.cfg.Format, uint32(tag)), At: now}, true
}

// cardID turns a 32-bit tag ID into the canonical card ID for f.
func cardID(f cardid.Format, id uint32) string {
	n := uint64(id)
	if f == cardid.Wiegand26 {
		n &= 1<<24 - 1
	}
	s, err := cardid.FromNumber(f, n)
	if err != nil {
		// Unreachable: NewDecoder checked f, and every format takes a
		// 32-bit number (WIEGAND26 a 24-bit one). The fuzz target
		// checks this for all formats.
		panic("em4100: " + err.Error())
	}
	return s
}

// hexValue is the value of an ASCII hex digit, or -1.
func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
