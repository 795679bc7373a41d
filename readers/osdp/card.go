package osdp

import (
	"fmt"

	"github.com/lintel/lintel/internal/cardid"
)

// wiegandBits is the frame length of each Wiegand card-ID format.
var wiegandBits = map[cardid.Format]int{
	cardid.Wiegand26: 26,
	cardid.Wiegand34: 34,
	cardid.Wiegand37: 37,
}

// CardFromRaw turns a card read into the canonical card ID for the format
// the door is configured with, the same string an operator typing the card
// number would store.
//
// For a Wiegand format the bits must be exactly that format's frame, and
// both parity bits must hold: a 26-bit read at a door set to WIEGAND34 is
// a card from another system, and a parity failure is a misread, so both
// are errors rather than a wrong card number. For DECIMAL, HEX and
// HEX_REVERSED the bits, first bit most significant, are the card's
// number; at most 64 bits fit. Errors are *cardid.Error values.
func CardFromRaw(raw Raw, format cardid.Format) (string, error) {
	if want, ok := wiegandBits[format]; ok {
		if len(raw.Bits) != want {
			return "", &cardid.Error{Input: raw.String(),
				Reason: fmt.Sprintf("reader sent %d bits, %s needs %d", len(raw.Bits), format, want)}
		}
		_, id, err := cardid.FromWiegandBits(raw.Bits)
		return id, err
	}
	if !format.Valid() {
		return "", &cardid.Error{Input: raw.String(), Reason: fmt.Sprintf("unknown card ID format %q", string(format))}
	}
	if len(raw.Bits) > 64 {
		return "", &cardid.Error{Input: raw.String(),
			Reason: fmt.Sprintf("reader sent %d bits, at most 64 fit a %s number", len(raw.Bits), format)}
	}
	var n uint64
	for _, bit := range raw.Bits {
		n <<= 1
		if bit {
			n |= 1
		}
	}
	return cardid.FromNumber(format, n)
}
