package lineproto

import "fmt"

// TextLine is the text of one scanned code.
type TextLine struct {
	Text string
}

// TextConfig configures a TextDecoder.
type TextConfig struct {
	// Line says how the scanner frames lines. Zero MaxLen means
	// DefaultMaxLen (4096).
	Line LineConfig
	// OnReject, if set, is called with every dropped line and the reason.
	// It is called from Feed and must not block.
	OnReject func(raw string, err error)
}

// TextStats counts what a TextDecoder has seen.
type TextStats struct {
	Line         LineStats
	Texts        int // lines returned
	NotPrintable int // lines with a byte outside printable ASCII, dropped
}

// TextDecoder passes through the text a QR scanner decodes, such as a
// wallet's rotating "LC1." code, one code per line. It does not interpret
// the text: verification happens elsewhere and must see exactly what was
// scanned. It only enforces the line length and printable ASCII, because
// wallet codes are printable ASCII and anything else is line noise or a
// scanner in the wrong mode. A TextDecoder is not safe for concurrent use.
type TextDecoder struct {
	cfg   TextConfig
	lines *LineDecoder
	stats TextStats
}

// NewTextDecoder returns a TextDecoder for cfg, or an error if cfg is
// invalid.
func NewTextDecoder(cfg TextConfig) (*TextDecoder, error) {
	lines, err := NewLineDecoder(cfg.Line)
	if err != nil {
		return nil, err
	}
	return &TextDecoder{cfg: cfg, lines: lines}, nil
}

// Feed decodes the next bytes and returns the texts they complete.
func (d *TextDecoder) Feed(p []byte) []TextLine {
	var texts []TextLine
	for _, line := range d.lines.Feed(p) {
		if i := firstUnprintable(line); i >= 0 {
			d.stats.NotPrintable++
			if d.cfg.OnReject != nil {
				d.cfg.OnReject(line, fmt.Errorf("byte 0x%02X at position %d is not printable ASCII", line[i], i+1))
			}
			continue
		}
		d.stats.Texts++
		texts = append(texts, TextLine{Text: line})
	}
	return texts
}

// Flush drops a partly received line; see [LineDecoder.Flush].
func (d *TextDecoder) Flush() { d.lines.Flush() }

// Stats returns the counts so far.
func (d *TextDecoder) Stats() TextStats {
	s := d.stats
	s.Line = d.lines.Stats()
	return s
}

// firstUnprintable is the index of the first byte of s outside ' '..'~',
// or -1.
func firstUnprintable(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return i
		}
	}
	return -1
}
