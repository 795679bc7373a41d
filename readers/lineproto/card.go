package lineproto

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lintel/lintel/internal/cardid"
)

// Number is how a device writes a card number on its line.
type Number int

// The number notations devices use.
const (
	// Decimal: "0012345678". For a Wiegand format this also accepts
	// "facility:card" (or "-", "/"), the packed number and a raw frame of
	// '0'/'1' characters, as [cardid.Parse] does.
	Decimal Number = iota
	// Hex: "00BC614E", "0xbc614e" or "04:A1:B2:C3". For a Wiegand format
	// the number is the packed facility<<cardBits | card value, and
	// "facility:card" in decimal is accepted too.
	Hex
)

// String names the notation for messages and logs.
func (n Number) String() string {
	switch n {
	case Decimal:
		return "decimal"
	case Hex:
		return "hex"
	}
	return fmt.Sprintf("Number(%d)", int(n))
}

// CardLine is one card read.
type CardLine struct {
	// CardID is the canonical card ID in the configured format.
	CardID string
	// Raw is the line it came from, after trimming and stripping.
	Raw string
}

// ParseCard reads one card number written in notation n and returns its
// canonical card ID for format f. Errors are *[cardid.Error] values whose
// Input is line and whose Reason says what is wrong with it.
//
// In the format's own notation (decimal for DECIMAL and the Wiegand formats,
// hex for HEX and HEX_REVERSED) this is [cardid.Parse], so a HEX UID keeps
// its full width. Across notations the number goes through a uint64 and
// [cardid.FromNumber], so it must fit 64 bits. "facility:card" is only
// accepted for the Wiegand formats: for any other format the packed number
// depends on a bit layout the line does not state.
func ParseCard(f cardid.Format, n Number, line string) (string, error) {
	if !f.Valid() {
		return "", &cardid.Error{Input: line, Reason: fmt.Sprintf("unknown card ID format %q", f)}
	}
	wiegand := f == cardid.Wiegand26 || f == cardid.Wiegand34 || f == cardid.Wiegand37
	switch n {
	case Decimal:
		if wiegand {
			return cardid.Parse(f, line)
		}
		if isFacilityCard(line) {
			return "", &cardid.Error{Input: line, Reason: fmt.Sprintf(
				"looks like facility:card, which needs a WIEGAND26, WIEGAND34 or WIEGAND37 card ID format, not %s", f)}
		}
		if f == cardid.Decimal {
			return cardid.Parse(f, line)
		}
		v, err := decimalValue(line)
		if err != nil {
			return "", err
		}
		return fromNumber(f, v, line)
	case Hex:
		if f == cardid.Hex || f == cardid.HexReversed {
			return cardid.Parse(f, line)
		}
		if wiegand && isFacilityCard(line) {
			return cardid.Parse(f, line)
		}
		v, err := hexValue(line)
		if err != nil {
			return "", err
		}
		return fromNumber(f, v, line)
	}
	return "", &cardid.Error{Input: line, Reason: fmt.Sprintf("unknown number notation %v", n)}
}

// fromNumber is cardid.FromNumber with errors about line, the text the
// number was read from.
func fromNumber(f cardid.Format, v uint64, line string) (string, error) {
	id, err := cardid.FromNumber(f, v)
	if e := (*cardid.Error)(nil); errors.As(err, &e) {
		return "", &cardid.Error{Input: line, Reason: e.Reason}
	}
	return id, err
}

// isFacilityCard reports whether s is "digits sep digits" with sep one of
// ':' '-' '/', spaces allowed around it, as Wiegand converters print
// facility and card.
func isFacilityCard(s string) bool {
	i := strings.IndexAny(s, ":-/")
	if i < 0 {
		return false
	}
	digits := func(s string) bool {
		s = strings.TrimSpace(s)
		return s != "" && strings.Trim(s, "0123456789") == ""
	}
	return digits(s[:i]) && digits(s[i+1:])
}

// decimalValue reads a decimal card number that must fit a uint64.
func decimalValue(line string) (uint64, error) {
	digits, err := cardid.Parse(cardid.Decimal, line)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, &cardid.Error{Input: line, Reason: fmt.Sprintf("number %s is larger than %d", digits, uint64(1<<64-1))}
	}
	return v, nil
}

// hexValue reads a hex card number that must fit a uint64.
func hexValue(line string) (uint64, error) {
	digits, err := cardid.Parse(cardid.Hex, line)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(digits, 16, 64)
	if err != nil {
		return 0, &cardid.Error{Input: line, Reason: fmt.Sprintf("hex number %s is larger than 16 hex digits", digits)}
	}
	return v, nil
}

// CardConfig configures a CardDecoder.
type CardConfig struct {
	// Line says how the device frames lines. Zero MaxLen means
	// DefaultCardMaxLen here.
	Line LineConfig
	// Format is the card-ID format the site stores cards in.
	Format cardid.Format
	// Number is how the device writes card numbers.
	Number Number
	// OnReject, if set, is called with every line that is not a card
	// number and the reason, e.g. to log it for the installer. It is
	// called from Feed and must not block.
	OnReject func(raw string, err error)
}

// DefaultCardMaxLen is the line length limit for card readers: a card
// number with prefix and checksum is far shorter, and a short limit sheds a
// device that streams garbage quickly.
const DefaultCardMaxLen = 128

// CardStats counts what a CardDecoder has seen.
type CardStats struct {
	Line     LineStats
	Cards    int    // card lines returned
	Rejected int    // lines that were not a card number, dropped
	LastRaw  string // the last rejected line
	LastWhy  string // why it was rejected
}

// CardDecoder turns the byte stream of a line-based card reader into card
// IDs. It is not safe for concurrent use.
type CardDecoder struct {
	cfg   CardConfig
	lines *LineDecoder
	stats CardStats
}

// NewCardDecoder returns a CardDecoder for cfg, or an error if cfg is
// invalid.
func NewCardDecoder(cfg CardConfig) (*CardDecoder, error) {
	if !cfg.Format.Valid() {
		return nil, fmt.Errorf("lineproto: unknown card ID format %q", cfg.Format)
	}
	if cfg.Number != Decimal && cfg.Number != Hex {
		return nil, fmt.Errorf("lineproto: unknown number notation %v", cfg.Number)
	}
	if cfg.Line.MaxLen == 0 {
		cfg.Line.MaxLen = DefaultCardMaxLen
	}
	lines, err := NewLineDecoder(cfg.Line)
	if err != nil {
		return nil, err
	}
	return &CardDecoder{cfg: cfg, lines: lines}, nil
}

// Feed decodes the next bytes and returns the card reads they complete.
// Lines that are not card numbers are dropped and counted.
func (d *CardDecoder) Feed(p []byte) []CardLine {
	var cards []CardLine
	for _, line := range d.lines.Feed(p) {
		id, err := ParseCard(d.cfg.Format, d.cfg.Number, line)
		if err != nil {
			d.stats.Rejected++
			d.stats.LastRaw, d.stats.LastWhy = line, reason(err)
			if d.cfg.OnReject != nil {
				d.cfg.OnReject(line, err)
			}
			continue
		}
		d.stats.Cards++
		cards = append(cards, CardLine{CardID: id, Raw: line})
	}
	return cards
}

// Flush drops a partly received line; see [LineDecoder.Flush].
func (d *CardDecoder) Flush() { d.lines.Flush() }

// Stats returns the counts so far.
func (d *CardDecoder) Stats() CardStats {
	s := d.stats
	s.Line = d.lines.Stats()
	return s
}

// reason is the Reason of a *cardid.Error, or the error text.
func reason(err error) string {
	if e := (*cardid.Error)(nil); errors.As(err, &e) {
		return e.Reason
	}
	return err.Error()
}
