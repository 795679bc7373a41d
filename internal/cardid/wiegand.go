package cardid

import (
	"fmt"
	"strconv"
	"strings"
)

// wiegandSpec is the layout of one Wiegand format. Bit 0 is the first bit
// transmitted: the even parity bit. The facility follows from bit 1, then
// the card number, then the odd parity bit as the last bit.
type wiegandSpec struct {
	format       Format
	bits         int // frame length including both parity bits
	facilityBits int
	cardBits     int
	evenLast     int // even parity: bit 0 over bits 1..evenLast
	oddFirst     int // odd parity: last bit over bits oddFirst..bits-2
}

var specs = map[Format]wiegandSpec{
	Wiegand26: {format: Wiegand26, bits: 26, facilityBits: 8, cardBits: 16, evenLast: 12, oddFirst: 13},
	Wiegand34: {format: Wiegand34, bits: 34, facilityBits: 16, cardBits: 16, evenLast: 16, oddFirst: 17},
	Wiegand37: {format: Wiegand37, bits: 37, facilityBits: 16, cardBits: 19, evenLast: 18, oddFirst: 18},
}

// minBinaryRun is the length from which a string of '0'/'1' is taken as an
// attempt at raw bits rather than a packed decimal number.
const minBinaryRun = 20

func (s wiegandSpec) maxFacility() uint64 { return 1<<s.facilityBits - 1 }
func (s wiegandSpec) maxCard() uint64     { return 1<<s.cardBits - 1 }
func (s wiegandSpec) maxPacked() uint64   { return 1<<(s.facilityBits+s.cardBits) - 1 }

func (s wiegandSpec) unpack(n uint64) (facility, card uint64) {
	return n >> s.cardBits, n & s.maxCard()
}

func (s wiegandSpec) canonical(facility, card uint64) string {
	return strconv.FormatUint(facility, 10) + ":" + strconv.FormatUint(card, 10)
}

func (s wiegandSpec) describe(facility, card uint64) string {
	return fmt.Sprintf("Wiegand %d-bit: facility %d, card %d", s.bits, facility, card)
}

func (s wiegandSpec) packedRange(number string) string {
	return fmt.Sprintf("packed number %s out of range 0-%d for %s", number, s.maxPacked(), s.format)
}

// decimalInRange parses a digit string, reporting whether it is at most max.
func decimalInRange(digits string, max uint64) (uint64, bool) {
	n, err := strconv.ParseUint(stripZeros(digits), 10, 64)
	return n, err == nil && n <= max
}

// decode checks both parity bits of a frame of s.bits bits and returns its
// facility and card.
func (s wiegandSpec) decode(bits []bool) (facility, card uint64, reason string) {
	ones := func(from, to int) (n int) {
		for _, b := range bits[from : to+1] {
			if b {
				n++
			}
		}
		return n
	}
	last := s.bits - 1
	var failed []string
	if ones(0, s.evenLast)%2 != 0 {
		failed = append(failed, fmt.Sprintf("even parity (bit 0 over bits 1-%d)", s.evenLast))
	}
	if ones(s.oddFirst, last)%2 != 1 {
		failed = append(failed, fmt.Sprintf("odd parity (bit %d over bits %d-%d)", last, s.oddFirst, last-1))
	}
	if len(failed) > 0 {
		return 0, 0, strings.Join(failed, " and ") + " failed for " + string(s.format)
	}
	var n uint64
	for _, b := range bits[1:last] {
		n <<= 1
		if b {
			n |= 1
		}
	}
	facility, card = s.unpack(n)
	return facility, card, ""
}

func isBinary(s string) bool {
	return strings.Trim(s, "01") == ""
}

func readWiegand(s wiegandSpec, input string) (canonical, explanation, reason string) {
	text, off := trim(input)
	if text == "" {
		return "", "", "is empty"
	}
	if sep := strings.IndexAny(text, ":-/"); sep >= 0 {
		return s.readPair(input, text, off, sep)
	}
	if isBinary(text) && len(text) == s.bits {
		bits := make([]bool, len(text))
		for i := range text {
			bits[i] = text[i] == '1'
		}
		facility, card, reason := s.decode(bits)
		if reason != "" {
			return "", "", reason
		}
		return s.canonical(facility, card), s.describe(facility, card) + ", parity ok", ""
	}
	if isBinary(text) && len(text) >= minBinaryRun {
		return "", "", fmt.Sprintf("has %d binary digits, raw %s bits must be exactly %d", len(text), s.format, s.bits)
	}
	if i := firstNonDigit(text); i >= 0 {
		return "", "", badChar(input, off+i,
			fmt.Sprintf("expected facility:card, %d raw bits or a packed decimal number", s.bits))
	}
	n, ok := decimalInRange(text, s.maxPacked())
	if !ok {
		return "", "", s.packedRange(stripZeros(text))
	}
	facility, card := s.unpack(n)
	return s.canonical(facility, card),
		fmt.Sprintf("Wiegand %d-bit: packed number %d read as facility %d, card %d", s.bits, n, facility, card), ""
}

// readPair reads "facility<sep>card"; sep is the byte offset in text of the
// first separator and off the offset of text in input.
func (s wiegandSpec) readPair(input, text string, off, sep int) (canonical, explanation, reason string) {
	sepChar := text[sep]
	if j := strings.IndexAny(text[sep+1:], ":-/"); j >= 0 {
		at := sep + 1 + j
		return "", "", fmt.Sprintf("has a second separator %q at position %d, expected facility%ccard",
			text[at], position(input, off+at), sepChar)
	}
	facilityText, facilityOff := trim(text[:sep])
	cardText, cardOff := trim(text[sep+1:])
	if facilityText == "" {
		return "", "", fmt.Sprintf("facility is missing before %q", sepChar)
	}
	if cardText == "" {
		return "", "", fmt.Sprintf("card number is missing after %q", sepChar)
	}
	const allowed = "facility and card must be decimal digits"
	if i := firstNonDigit(facilityText); i >= 0 {
		return "", "", badChar(input, off+facilityOff+i, allowed)
	}
	if i := firstNonDigit(cardText); i >= 0 {
		return "", "", badChar(input, off+sep+1+cardOff+i, allowed)
	}
	facility, ok := decimalInRange(facilityText, s.maxFacility())
	if !ok {
		return "", "", fmt.Sprintf("facility %s out of range 0-%d for %s", stripZeros(facilityText), s.maxFacility(), s.format)
	}
	card, ok := decimalInRange(cardText, s.maxCard())
	if !ok {
		return "", "", fmt.Sprintf("card %s out of range 0-%d for %s", stripZeros(cardText), s.maxCard(), s.format)
	}
	return s.canonical(facility, card), s.describe(facility, card), ""
}

// FromWiegandBits turns a raw Wiegand frame (as received from a reader, bit
// 0 first, 26, 34 or 37 bits) into the canonical form for that format,
// checking both parity bits. The format is chosen by the frame length; it is
// returned even when a parity check fails, and is empty when the length
// matches no format. Errors carry the frame as a '0'/'1' string.
func FromWiegandBits(bits []bool) (Format, string, error) {
	var b strings.Builder
	for _, bit := range bits {
		if bit {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	for _, f := range []Format{Wiegand26, Wiegand34, Wiegand37} {
		s := specs[f]
		if len(bits) != s.bits {
			continue
		}
		facility, card, reason := s.decode(bits)
		if reason != "" {
			return f, "", &Error{Input: b.String(), Reason: reason}
		}
		return f, s.canonical(facility, card), nil
	}
	return "", "", &Error{Input: b.String(),
		Reason: fmt.Sprintf("has %d bits, Wiegand frames must have 26, 34 or 37 bits", len(bits))}
}
