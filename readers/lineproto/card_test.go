package lineproto_test

import (
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/lineproto"
	"github.com/stretchr/testify/require"
)

func TestCardNumbersBecomeCanonicalCardIDs(t *testing.T) {
	t.Parallel()
	dec, hex := lineproto.Decimal, lineproto.Hex
	tests := []struct {
		name   string
		format cardid.Format
		number lineproto.Number
		line   string
		want   string
	}{
		{"a decimal number loses its leading zeros", cardid.Decimal, dec, "0012345678", "12345678"},
		{"a decimal number for a hex site is converted", cardid.Hex, dec, "12345678", "BC614E"},
		{"a decimal number for a byte-reversed site is reversed", cardid.HexReversed, dec, "12345678", "4E61BC"},
		{"a hex UID keeps its bytes", cardid.Hex, hex, "04:a1:b2:c3", "04A1B2C3"},
		{"a hex number may have a 0x prefix", cardid.Hex, hex, "0x00BC614E", "BC614E"},
		{"a byte-reversed hex UID is reversed", cardid.HexReversed, hex, "C3B2A104", "04A1B2C3"},
		{"a hex number for a decimal site is converted", cardid.Decimal, hex, "bc614e", "12345678"},
		{"facility:card from a Wiegand converter", cardid.Wiegand26, dec, "123:45678", "123:45678"},
		{"FFF-CCCCC from a Wiegand converter", cardid.Wiegand26, dec, "123-45678", "123:45678"},
		{"FFF/CCCCC with zero padding", cardid.Wiegand26, dec, "042/00017", "42:17"},
		{"facility and card with spaces around the separator", cardid.Wiegand26, dec, "123 / 45678", "123:45678"},
		{"a packed decimal number", cardid.Wiegand26, dec, "8106606", "123:45678"},
		{"a packed hex number", cardid.Wiegand26, hex, "7BB26E", "123:45678"},
		{"facility:card on a hex converter is still decimal", cardid.Wiegand26, hex, "123:45678", "123:45678"},
		{"a 16-bit facility fits Wiegand 34", cardid.Wiegand34, dec, "300:1", "300:1"},
		{"a 19-bit card fits Wiegand 37", cardid.Wiegand37, dec, "123:300000", "123:300000"},
		{"a raw 26-bit frame with good parity", cardid.Wiegand26, dec, "10111101110110010011011101", "123:45678"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := lineproto.ParseCard(tt.format, tt.number, tt.line)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestLinesThatAreNotCardNumbersSayWhy(t *testing.T) {
	t.Parallel()
	dec, hex := lineproto.Decimal, lineproto.Hex
	tests := []struct {
		name   string
		format cardid.Format
		number lineproto.Number
		line   string
		reason string
	}{
		{"a facility over 255 for Wiegand 26", cardid.Wiegand26, dec, "300:1",
			"facility 300 out of range 0-255 for WIEGAND26"},
		{"a card over 65535 for Wiegand 26", cardid.Wiegand26, dec, "1-70000",
			"card 70000 out of range 0-65535 for WIEGAND26"},
		{"a packed hex number over 24 bits for Wiegand 26", cardid.Wiegand26, hex, "1000000",
			"packed number 16777216 out of range 0-16777215 for WIEGAND26"},
		{"facility:card for a decimal site", cardid.Decimal, dec, "123:45678",
			"looks like facility:card, which needs a WIEGAND26, WIEGAND34 or WIEGAND37 card ID format, not DECIMAL"},
		{"FFF-CCCCC for a hex site", cardid.Hex, dec, "123-45678",
			"looks like facility:card, which needs a WIEGAND26, WIEGAND34 or WIEGAND37 card ID format, not HEX"},
		{"a letter in a decimal number", cardid.Decimal, dec, "12A45",
			"contains 'A' at position 3, only digits 0-9 allowed"},
		{"a decimal number too large to convert", cardid.Hex, dec, "99999999999999999999",
			"number 99999999999999999999 is larger than 18446744073709551615"},
		{"a hex number too large to convert", cardid.Decimal, hex, "1FFFFFFFFFFFFFFFF",
			"hex number 01FFFFFFFFFFFFFFFF is larger than 16 hex digits"},
		{"a status message instead of a number", cardid.Decimal, hex, "READY",
			"contains 'R' at position 1, only hex digits 0-9 A-F and byte separators ':' '-' ' ' allowed"},
		{"a raw frame with bad parity", cardid.Wiegand26, dec, "00111101110110010011011101",
			"even parity (bit 0 over bits 1-12) failed for WIEGAND26"},
		{"an unknown format", "OCTAL", dec, "1", `unknown card ID format "OCTAL"`},
		{"an unknown notation", cardid.Decimal, lineproto.Number(7), "1", "unknown number notation Number(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := lineproto.ParseCard(tt.format, tt.number, tt.line)
			var e *cardid.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.line, e.Input)
			require.Equal(t, tt.reason, e.Reason)
		})
	}
}

func TestACardReaderStreamYieldsItsCardsAndCountsTheRest(t *testing.T) {
	t.Parallel()
	// A Wiegand-to-serial converter that greets on power-up, prints
	// FFF-CCCCC lines ending in CR LF, and here and there a bad read.
	stream := []byte("\x00\x00READY\r\n123-45678\r\n300/1\r\n042/00017\n\r\n8106606\r")
	for _, size := range []int{1, 2, 5, len(stream)} {
		type reject struct{ raw, reason string }
		var rejects []reject
		d, err := lineproto.NewCardDecoder(lineproto.CardConfig{
			Line:   lineproto.LineConfig{Trim: true},
			Format: cardid.Wiegand26,
			OnReject: func(raw string, err error) {
				rejects = append(rejects, reject{raw, err.(*cardid.Error).Reason})
			},
		})
		require.NoError(t, err)
		cards := feedInChunks(d.Feed, stream, size)
		require.Equal(t, []lineproto.CardLine{
			{CardID: "123:45678", Raw: "123-45678"},
			{CardID: "42:17", Raw: "042/00017"},
			{CardID: "123:45678", Raw: "8106606"},
		}, cards, "chunks of %d", size)
		require.Equal(t, []reject{
			{"\x00\x00READY", "contains '\\x00' at position 1, expected facility:card, 26 raw bits or a packed decimal number"},
			{"300/1", "facility 300 out of range 0-255 for WIEGAND26"},
		}, rejects)
		require.Equal(t, lineproto.CardStats{
			Line:     lineproto.LineStats{Lines: 5, Empty: 1},
			Cards:    3,
			Rejected: 2,
			LastRaw:  "300/1",
			LastWhy:  "facility 300 out of range 0-255 for WIEGAND26",
		}, d.Stats())
	}
}

func TestCardReadersDropGarbageWithoutLineEndingsQuickly(t *testing.T) {
	t.Parallel()
	d, err := lineproto.NewCardDecoder(lineproto.CardConfig{Format: cardid.Decimal})
	require.NoError(t, err)
	garbage := make([]byte, 1000)
	for i := range garbage {
		garbage[i] = byte('0' + i%10)
	}
	require.Empty(t, d.Feed(garbage), "a thousand digits are no card number")
	require.Equal(t, []lineproto.CardLine{{CardID: "42", Raw: "42"}}, d.Feed([]byte("\r\n42\r\n")))
	require.Equal(t, 1, d.Stats().Line.Overlong)
}

func TestInvalidCardConfigurationsAreRefused(t *testing.T) {
	t.Parallel()
	for _, cfg := range []lineproto.CardConfig{
		{Format: "OCTAL"},
		{Format: cardid.Decimal, Number: lineproto.Number(3)},
		{Format: cardid.Decimal, Line: lineproto.LineConfig{MaxLen: -1}},
	} {
		_, err := lineproto.NewCardDecoder(cfg)
		require.Error(t, err, "%+v", cfg)
	}
}
