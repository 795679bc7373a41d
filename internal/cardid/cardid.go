package cardid

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Format is a card-ID format: how a card number is written or transmitted.
type Format string

// The supported card-ID formats.
const (
	Decimal     Format = "DECIMAL"
	Hex         Format = "HEX"
	HexReversed Format = "HEX_REVERSED" // reader reports bytes little-endian: the input's byte order is reversed
	Wiegand26   Format = "WIEGAND26"    // HID H10301: even parity, 8-bit facility, 16-bit card, odd parity
	Wiegand34   Format = "WIEGAND34"    // HID H10306: even parity, 16-bit facility, 16-bit card, odd parity
	Wiegand37   Format = "WIEGAND37"    // HID H10304: even parity, 16-bit facility, 19-bit card, odd parity
)

// Valid reports whether f is one of the supported formats.
func (f Format) Valid() bool {
	switch f {
	case Decimal, Hex, HexReversed, Wiegand26, Wiegand34, Wiegand37:
		return true
	}
	return false
}

// Formats returns all supported formats, in a fixed order. The slice is new
// on every call.
func Formats() []Format {
	return []Format{Decimal, Hex, HexReversed, Wiegand26, Wiegand34, Wiegand37}
}

// Error is a card ID that cannot be read.
type Error struct {
	Input  string // the input as given
	Reason string // what is wrong, e.g. "contains 'x' at position 3, only digits 0-9 allowed"
}

func (e *Error) Error() string {
	return fmt.Sprintf("card ID %q: %s", e.Input, e.Reason)
}

// Parse reads a card ID written in format f and returns its canonical form,
// or an *Error saying exactly what is wrong. See the package documentation
// for the accepted spellings and canonical forms.
func Parse(f Format, input string) (string, error) {
	canonical, _, err := Explain(f, input)
	return canonical, err
}

// Explain is Parse that also says how the input was read, for the import
// preview, e.g. "hex 04A1B2C3 read byte-reversed as C3B2A104" or
// "Wiegand 26-bit: facility 123, card 45678, parity ok". On error both
// strings are empty.
func Explain(f Format, input string) (canonical string, explanation string, err error) {
	var reason string
	switch f {
	case Decimal:
		canonical, explanation, reason = readDecimal(input)
	case Hex, HexReversed:
		canonical, explanation, reason = readHex(input, f == HexReversed)
	case Wiegand26, Wiegand34, Wiegand37:
		canonical, explanation, reason = readWiegand(specs[f], input)
	default:
		reason = unknownFormat(f)
	}
	if reason != "" {
		return "", "", &Error{Input: input, Reason: reason}
	}
	return canonical, explanation, nil
}

// FromNumber returns the canonical form of an unsigned card number, for
// readers that emit a number. It agrees with Parse of the number written in
// the format: DECIMAL in base 10, HEX and HEX_REVERSED in hex (so
// HEX_REVERSED reverses the number's bytes), and the Wiegand formats read it
// as the packed facility<<cardBits | card value, which must be in range.
func FromNumber(f Format, n uint64) (string, error) {
	switch f {
	case Decimal:
		return strconv.FormatUint(n, 10), nil
	case Hex, HexReversed:
		return Parse(f, strconv.FormatUint(n, 16))
	case Wiegand26, Wiegand34, Wiegand37:
		s := specs[f]
		if n > s.maxPacked() {
			return "", &Error{Input: strconv.FormatUint(n, 10), Reason: s.packedRange(strconv.FormatUint(n, 10))}
		}
		return s.canonical(s.unpack(n)), nil
	}
	return "", &Error{Input: strconv.FormatUint(n, 10), Reason: unknownFormat(f)}
}

func unknownFormat(f Format) string {
	return fmt.Sprintf("unknown card ID format %q", string(f))
}

// trim removes surrounding Unicode whitespace and returns the rest with its
// byte offset in the input.
func trim(input string) (string, int) {
	left := strings.TrimLeftFunc(input, unicode.IsSpace)
	return strings.TrimRightFunc(left, unicode.IsSpace), len(input) - len(left)
}

// position is the 1-based character position of byte offset i of input.
func position(input string, i int) int {
	return utf8.RuneCountInString(input[:i]) + 1
}

// badChar describes the character at byte offset i of input, e.g.
// "contains 'x' at position 3, only digits 0-9 allowed".
func badChar(input string, i int, allowed string) string {
	r, size := utf8.DecodeRuneInString(input[i:])
	what := fmt.Sprintf("%q", r)
	if r == utf8.RuneError && size <= 1 {
		what = fmt.Sprintf("invalid UTF-8 byte 0x%02X", input[i])
	}
	return fmt.Sprintf("contains %s at position %d, %s", what, position(input, i), allowed)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// firstNonDigit returns the byte offset of the first byte of s that is not
// an ASCII digit, or -1.
func firstNonDigit(s string) int {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return i
		}
	}
	return -1
}

// stripZeros removes leading zeros from a digit string, keeping one "0".
func stripZeros(s string) string {
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0"
	}
	return s
}
