package lineproto

import (
	"errors"
	"fmt"
	"strings"
)

// Ending is what ends a line.
type Ending int

// The line endings a device can be configured for.
const (
	// EndAny ends a line at CR, LF or CR LF, so a device works whichever
	// way its terminator switch is set. CR LF counts as one ending.
	EndAny Ending = iota
	// EndCR ends a line at CR only; an LF is part of the line.
	EndCR
	// EndLF ends a line at LF only; a CR is part of the line.
	EndLF
	// EndCRLF ends a line at CR LF only; a lone CR or LF is part of the
	// line.
	EndCRLF
)

// String names the ending for messages and logs.
func (e Ending) String() string {
	switch e {
	case EndAny:
		return "any"
	case EndCR:
		return "CR"
	case EndLF:
		return "LF"
	case EndCRLF:
		return "CRLF"
	}
	return fmt.Sprintf("Ending(%d)", int(e))
}

// DefaultMaxLen is the line length limit for a zero LineConfig.MaxLen: room
// for a wallet QR code (about 800 characters) several times over.
const DefaultMaxLen = 4096

// LineConfig says how a device frames its lines.
type LineConfig struct {
	// Ending is the line terminator; the zero value accepts any.
	Ending Ending
	// MaxLen is the longest line accepted, in bytes, before any stripping
	// and without the ending; 0 means DefaultMaxLen. Longer lines are
	// dropped up to the next line ending: a device sending garbage
	// without line endings must not grow memory without bound.
	MaxLen int
	// Trim removes spaces and other whitespace around the line, and again
	// around what is left after stripping Prefix and Suffix.
	Trim bool
	// Prefix is removed from the start of lines that have it, e.g. "\x02"
	// for a reader that starts lines with STX, or "ID:".
	Prefix string
	// Suffix is removed from the end of lines that have it, e.g. "\x03".
	Suffix string
	// SuffixLen drops that many more bytes from the end of every line,
	// for a checksum the reader appends (e.g. 2 for two hex digits). Lines
	// no longer than SuffixLen are dropped as empty.
	SuffixLen int
}

func (c LineConfig) withDefaults() (LineConfig, error) {
	if c.Ending < EndAny || c.Ending > EndCRLF {
		return c, fmt.Errorf("lineproto: unknown line ending %v", c.Ending)
	}
	if c.MaxLen < 0 || c.SuffixLen < 0 {
		return c, errors.New("lineproto: MaxLen and SuffixLen must not be negative")
	}
	if c.MaxLen == 0 {
		c.MaxLen = DefaultMaxLen
	}
	return c, nil
}

// LineStats counts what a LineDecoder has seen.
type LineStats struct {
	Lines     int // lines returned
	Empty     int // lines with nothing left after trimming and stripping, skipped
	Overlong  int // lines longer than MaxLen, dropped
	Truncated int // partial lines dropped by Flush
}

// LineDecoder splits a byte stream into lines. It keeps state across calls,
// so lines may arrive split over any number of Feed calls. A LineDecoder is
// not safe for concurrent use.
type LineDecoder struct {
	cfg        LineConfig
	buf        []byte
	discarding bool // inside an overlong line, waiting for its end
	prevCR     bool // the last byte seen was CR
	stats      LineStats
}

// NewLineDecoder returns a LineDecoder for cfg, or an error if cfg is
// invalid.
func NewLineDecoder(cfg LineConfig) (*LineDecoder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &LineDecoder{cfg: cfg}, nil
}

// Stats returns the counts so far.
func (d *LineDecoder) Stats() LineStats { return d.stats }

// Flush drops a partly received line, counting it as truncated. Call it
// when the line has been idle for a while or the port was reopened: the rest
// of that line is never coming, and its start must not be read as a card
// number.
func (d *LineDecoder) Flush() {
	if len(d.buf) > 0 {
		d.stats.Truncated++
	}
	d.buf = d.buf[:0]
	d.discarding = false
	d.prevCR = false
}

// Feed splits the next bytes into lines and returns the lines they
// complete, without their endings, trimmed and stripped as configured.
func (d *LineDecoder) Feed(p []byte) []string {
	var lines []string
	for _, c := range p {
		prevCR := d.prevCR
		d.prevCR = c == '\r'
		end := false
		switch d.cfg.Ending {
		case EndAny:
			if c == '\n' && prevCR {
				continue // the LF of a CR LF whose CR ended the line
			}
			end = c == '\r' || c == '\n'
		case EndCR:
			end = c == '\r'
		case EndLF:
			end = c == '\n'
		case EndCRLF:
			if c == '\n' && prevCR {
				// The CR was buffered as content; take it back.
				if !d.discarding && len(d.buf) > 0 {
					d.buf = d.buf[:len(d.buf)-1]
				}
				end = true
			}
		}
		if end {
			if d.discarding {
				d.discarding = false
			} else if line, ok := d.clean(string(d.buf)); ok {
				lines = append(lines, line)
			}
			d.buf = d.buf[:0]
			continue
		}
		if d.discarding {
			continue
		}
		// In CRLF mode a CR may still turn out to be half the ending, so
		// it may take the line one byte over the limit for now.
		if n := len(d.buf) + 1; n > d.cfg.MaxLen && (d.cfg.Ending != EndCRLF || c != '\r' || n > d.cfg.MaxLen+1) {
			d.stats.Overlong++
			d.discarding = true
			d.buf = d.buf[:0]
			continue
		}
		d.buf = append(d.buf, c)
	}
	return lines
}

// clean trims and strips a complete line; ok is false for a line with
// nothing left.
func (d *LineDecoder) clean(line string) (string, bool) {
	if d.cfg.Trim {
		line = strings.TrimSpace(line)
	}
	line = strings.TrimPrefix(line, d.cfg.Prefix)
	line = strings.TrimSuffix(line, d.cfg.Suffix)
	if len(line) <= d.cfg.SuffixLen {
		line = ""
	} else {
		line = line[:len(line)-d.cfg.SuffixLen]
	}
	if d.cfg.Trim {
		line = strings.TrimSpace(line)
	}
	if line == "" {
		d.stats.Empty++
		return "", false
	}
	d.stats.Lines++
	return line, true
}
