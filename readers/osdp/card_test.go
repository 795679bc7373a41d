package osdp_test

import (
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/osdp"
	"github.com/stretchr/testify/require"
)

func TestCardFromRawGivesTheIDAnOperatorWouldType(t *testing.T) {
	t.Parallel()
	typed := func(f cardid.Format, s string) string {
		id, err := cardid.Parse(f, s)
		require.NoError(t, err)
		return id
	}
	tests := []struct {
		name   string
		bits   string
		format cardid.Format
		want   string
	}{
		{"an H10301 card at a 26-bit door", h10301, cardid.Wiegand26, typed(cardid.Wiegand26, "123:4567")},
		{"an H10306 card at a 34-bit door", "0000000000111101100010001110101111", cardid.Wiegand34, typed(cardid.Wiegand34, "123:4567")},
		{"a 32-bit serial number at a decimal door", "00000000000000000000000100000000", cardid.Decimal, "256"},
		{"a 32-bit UID at a hex door", "00000100101000011011001011000011", cardid.Hex, "04A1B2C3"},
		{"a little-endian UID at a reversed-hex door", "11000011101100101010000100000100", cardid.HexReversed, "04A1B2C3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := osdp.CardFromRaw(osdp.Raw{Format: osdp.RawWiegand, Bits: bits(tt.bits)}, tt.format)
			require.NoError(t, err)
			require.Equal(t, tt.want, id)
		})
	}
}

func TestCardFromRawRefusesMisreadsAndForeignCards(t *testing.T) {
	t.Parallel()
	flipped := []byte(h10301)
	flipped[5] ^= 1 // one bit misread: even parity fails
	tests := []struct {
		name   string
		bits   string
		format cardid.Format
		reason string
	}{
		{"a misread bit fails parity", string(flipped), cardid.Wiegand26, "even parity (bit 0 over bits 1-12) failed for WIEGAND26"},
		{"a 26-bit card at a 34-bit door", h10301, cardid.Wiegand34, "reader sent 26 bits, WIEGAND34 needs 34"},
		{"65 bits do not fit a number", string(make65()), cardid.Decimal, "at most 64 fit"},
		{"an unknown format", h10301, cardid.Format("MAGSTRIPE"), `unknown card ID format "MAGSTRIPE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := osdp.CardFromRaw(osdp.Raw{Bits: bits(tt.bits)}, tt.format)
			var ce *cardid.Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.bits, ce.Input, "the error shows the bits as read")
			require.Contains(t, ce.Reason, tt.reason)
		})
	}
}

func make65() []byte {
	b := make([]byte, 65)
	for i := range b {
		b[i] = '1'
	}
	return b
}
