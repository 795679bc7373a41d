package cardid_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/stretchr/testify/require"
)

// storedFormat is the format a canonical form re-parses in: HEX_REVERSED
// canonical forms are HEX canonical forms.
func storedFormat(f cardid.Format) cardid.Format {
	if f == cardid.HexReversed {
		return cardid.Hex
	}
	return f
}

// requireWellFormed checks that canonical uses only the characters and shape
// allowed for f.
func requireWellFormed(t *testing.T, f cardid.Format, canonical string) {
	t.Helper()
	onlyDigits := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
	noLeadingZero := func(s string) bool { return s == "0" || !strings.HasPrefix(s, "0") }
	switch f {
	case cardid.Decimal:
		if !onlyDigits(canonical) || !noLeadingZero(canonical) || len(canonical) > 20 {
			t.Fatalf("malformed DECIMAL canonical form %q", canonical)
		}
	case cardid.Hex, cardid.HexReversed:
		if canonical == "" || strings.Trim(canonical, "0123456789ABCDEF") != "" || len(canonical)%2 != 0 ||
			len(canonical) > 32 || (len(canonical) > 2 && strings.HasPrefix(canonical, "00")) {
			t.Fatalf("malformed %s canonical form %q", f, canonical)
		}
	default:
		facility, card, ok := strings.Cut(canonical, ":")
		if !ok || !onlyDigits(facility) || !onlyDigits(card) || !noLeadingZero(facility) || !noLeadingZero(card) {
			t.Fatalf("malformed %s canonical form %q", f, canonical)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", " ", "0", "00", "12345", " 0012345 ", "18446744073709551615", "99999999999999999999", "123456789012345678901",
		"12x4", "+5", "1\xff", "é1",
		"04A1B2C3", "04:a1:b2:c3", "0x04-A1", "04 A1B2 C3", "abc", "0004A1", "0x", "4:A1", "04::A1", "04:A1-B2", ":04", "04:",
		"00000000000000000000000000000000", "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
		"123:45678", "123-45678", "123/45678", " 123 / 45678 ", "300:1", "1:2:3", ":5", "5:", "-5", "123,45678",
		"8106606", "16777216", "34359738367",
		"10111101110110010011011101", "00111101110110010011011100", "1011110111011001001101110",
		"1000001001101001011011101110101010", "0000100100011010010010010011111000000",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		for _, format := range cardid.Formats() {
			canonical, err := cardid.Parse(format, input)
			explained, explanation, explainErr := cardid.Explain(format, input)
			if err != nil {
				var e *cardid.Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: error %v is not a *cardid.Error", format, err)
				}
				require.Equal(t, input, e.Input, format)
				if e.Reason == "" || !utf8.ValidString(e.Reason) {
					t.Fatalf("%s: unhelpful reason %q", format, e.Reason)
				}
				require.Equal(t, "", canonical)
				if explainErr == nil || explainErr.Error() != err.Error() {
					t.Fatalf("%s: Explain error %v differs from Parse error %v", format, explainErr, err)
				}
				continue
			}
			require.NoError(t, explainErr, format)
			require.Equal(t, canonical, explained, format)
			if explanation == "" {
				t.Fatalf("%s: empty explanation for %q", format, input)
			}
			requireWellFormed(t, format, canonical)

			// Idempotent: the canonical form reads back as itself.
			again, err := cardid.Parse(storedFormat(format), canonical)
			require.NoError(t, err, "%s %q", format, canonical)
			require.Equal(t, canonical, again, format)

			// Surrounding whitespace never changes the result.
			padded, err := cardid.Parse(format, " \t"+input+"\n ")
			require.NoError(t, err, format)
			require.Equal(t, canonical, padded, format)
		}
	})
}

// FuzzFromNumber checks that FromNumber agrees with Parse of the number
// written in each format.
func FuzzFromNumber(f *testing.F) {
	for _, n := range []uint64{0, 1, 0xABC, 0xC3B2A104, 8106606, 1 << 24, 1<<35 - 1, 1 << 35, ^uint64(0)} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n uint64) {
		for _, format := range cardid.Formats() {
			checkFromNumberAgrees(t, format, n)
			if got, err := cardid.FromNumber(format, n); err == nil {
				requireWellFormed(t, format, got)
			}
		}
	})
}
