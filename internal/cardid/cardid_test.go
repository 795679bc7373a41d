package cardid_test

import (
	"strings"
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/stretchr/testify/require"
)

type accepts struct {
	name      string
	input     string
	canonical string
}

type rejects struct {
	name   string
	input  string
	reason string
}

func checkAccepts(t *testing.T, f cardid.Format, cases []accepts) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cardid.Parse(f, tc.input)
			require.NoError(t, err)
			require.Equal(t, tc.canonical, got)
		})
	}
}

func checkRejects(t *testing.T, f cardid.Format, cases []rejects) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cardid.Parse(f, tc.input)
			requireCardError(t, err, tc.input, tc.reason)
			require.Equal(t, "", got)
		})
	}
}

func TestFormats(t *testing.T) {
	t.Run("lists every format in declaration order", func(t *testing.T) {
		want := []cardid.Format{cardid.Decimal, cardid.Hex, cardid.HexReversed, cardid.Wiegand26, cardid.Wiegand34, cardid.Wiegand37}
		got := cardid.Formats()
		require.Equal(t, len(want), len(got))
		for i := range want {
			require.Equal(t, want[i], got[i])
			require.True(t, got[i].Valid(), got[i])
		}
	})
	t.Run("returns a fresh slice each call", func(t *testing.T) {
		cardid.Formats()[0] = "BOGUS"
		require.Equal(t, cardid.Decimal, cardid.Formats()[0])
	})
	t.Run("unknown and lowercase names are not valid", func(t *testing.T) {
		for _, f := range []cardid.Format{"", "hex", "WIEGAND", "WIEGAND35"} {
			require.False(t, f.Valid(), f)
		}
	})
	t.Run("parsing with an unknown format is an error", func(t *testing.T) {
		_, err := cardid.Parse("BCD", "123")
		requireCardError(t, err, "123", `unknown card ID format "BCD"`)
		_, err = cardid.FromNumber("BCD", 7)
		requireCardError(t, err, "7", `unknown card ID format "BCD"`)
	})
}

func TestError(t *testing.T) {
	t.Run("message quotes the input and gives the reason", func(t *testing.T) {
		err := &cardid.Error{Input: "xyz", Reason: "is bad"}
		require.Equal(t, `card ID "xyz": is bad`, err.Error())
	})
	t.Run("parse errors read as one sentence", func(t *testing.T) {
		_, err := cardid.Parse(cardid.Decimal, "12x4")
		require.Equal(t, `card ID "12x4": contains 'x' at position 3, only digits 0-9 allowed`, err.Error())
	})
}

func TestDecimal(t *testing.T) {
	checkAccepts(t, cardid.Decimal, []accepts{
		{"plain digits are kept", "12345", "12345"},
		{"leading zeros are removed", "0012345", "12345"},
		{"zero stays zero", "0", "0"},
		{"all zeros become zero", "0000", "0"},
		{"surrounding spaces and tabs are ignored", " \t 42 \n", "42"},
		{"a no-break space from a spreadsheet is ignored", "\u00a042\u00a0", "42"},
		{"the largest uint64 is accepted", "18446744073709551615", "18446744073709551615"},
		{"twenty digits above uint64 are accepted as text", "99999999999999999999", "99999999999999999999"},
		{"leading zeros do not count toward the limit", "000000099999999999999999999", "99999999999999999999"},
	})
	checkRejects(t, cardid.Decimal, []rejects{
		{"empty input is rejected", "", "is empty"},
		{"only spaces are rejected", "   ", "is empty"},
		{"a letter is reported with its position", "12x4", "contains 'x' at position 3, only digits 0-9 allowed"},
		{"positions count the original input including leading spaces", "  12x4", "contains 'x' at position 5, only digits 0-9 allowed"},
		{"grouping spaces are rejected", "12 345", "contains ' ' at position 3, only digits 0-9 allowed"},
		{"grouping dashes are rejected", "12-345", "contains '-' at position 3, only digits 0-9 allowed"},
		{"a sign is rejected", "+5", "contains '+' at position 1, only digits 0-9 allowed"},
		{"a decimal point is rejected", "1.0", "contains '.' at position 2, only digits 0-9 allowed"},
		{"non-ASCII digits are rejected", "1٣", "contains '٣' at position 2, only digits 0-9 allowed"},
		{"positions count characters not bytes", "é1x", "contains 'é' at position 1, only digits 0-9 allowed"},
		{"invalid UTF-8 is reported as a byte", "1\xff", "contains invalid UTF-8 byte 0xFF at position 2, only digits 0-9 allowed"},
		{"more than twenty digits are rejected", "123456789012345678901", "has 21 digits, at most 20 allowed"},
	})
}

func TestHex(t *testing.T) {
	checkAccepts(t, cardid.Hex, []accepts{
		{"uppercase digits are kept", "04A1B2C3", "04A1B2C3"},
		{"lowercase is converted to uppercase", "04a1b2c3", "04A1B2C3"},
		{"a 0x prefix is removed", "0x04A1B2C3", "04A1B2C3"},
		{"a 0X prefix is removed", "0X04a1", "04A1"},
		{"colon separators are removed", "04:a1:b2:c3", "04A1B2C3"},
		{"dash separators are removed", "04-A1-B2-C3", "04A1B2C3"},
		{"space separators are removed", "04 A1 B2 C3", "04A1B2C3"},
		{"separators may group several bytes", "04A1 B2C3", "04A1B2C3"},
		{"prefix and separators combine", "0x04:a1", "04A1"},
		{"leading zero bytes are removed", "0004A1", "04A1"},
		{"odd digit counts are padded to whole bytes", "abc", "0ABC"},
		{"a single digit is padded", "7", "07"},
		{"zero is one zero byte", "0", "00"},
		{"all zero bytes become one zero byte", "00:00:00", "00"},
		{"surrounding whitespace is ignored", "  04A1\t", "04A1"},
		{"a 7-byte NFC UID is accepted", "04:12:34:56:78:9A:BC", "04123456789ABC"},
		{"sixteen bytes are accepted", strings.Repeat("AB", 16), strings.Repeat("AB", 16)},
		{"sixteen bytes with leading zero bytes are shortened", "0000" + strings.Repeat("AB", 14), strings.Repeat("AB", 14)},
	})
	checkRejects(t, cardid.Hex, []rejects{
		{"empty input is rejected", "", "is empty"},
		{"only spaces are rejected", " \t ", "is empty"},
		{"a bare prefix is rejected", "0x", "has no hex digits after the 0x prefix"},
		{"a non-hex letter is reported with its position", "04G1", "contains 'G' at position 3, only hex digits 0-9 A-F and byte separators ':' '-' ' ' allowed"},
		{"a second prefix is rejected", "0x0x12", "contains 'x' at position 4, only hex digits 0-9 A-F and byte separators ':' '-' ' ' allowed"},
		{"a dot separator is rejected", "04.A1", "contains '.' at position 3, only hex digits 0-9 A-F and byte separators ':' '-' ' ' allowed"},
		{"a leading separator is rejected", ":04:A1", "separator ':' at position 1 is not between two bytes"},
		{"a trailing separator is rejected", "04:A1:", "separator ':' at position 6 is not between two bytes"},
		{"a doubled separator is rejected", "04::A1", "separator ':' at position 4 is not between two bytes"},
		{"a separator right after the prefix is rejected", "0x:04", "separator ':' at position 3 is not between two bytes"},
		{"two spaces in a row are rejected", "04  A1", "separator ' ' at position 4 is not between two bytes"},
		{"mixed separators are rejected", "04:A1-B2", "mixes byte separators ':' and '-' (at position 6), use one kind"},
		{"a half byte before a separator is rejected", "4:A1:B2", `byte group "4" at position 1 has an odd number of hex digits, separators must fall between whole bytes`},
		{"a half byte after a separator is rejected", "04:A1:B", `byte group "B" at position 7 has an odd number of hex digits, separators must fall between whole bytes`},
		{"more than sixteen bytes are rejected", strings.Repeat("AB", 16) + "C", "has 33 hex digits, at most 32 allowed (16 bytes)"},
		{"leading zeros count toward the limit", strings.Repeat("0", 31) + "12", "has 33 hex digits, at most 32 allowed (16 bytes)"},
	})
}

func TestHexReversed(t *testing.T) {
	checkAccepts(t, cardid.HexReversed, []accepts{
		{"bytes are reversed", "C3B2A104", "04A1B2C3"},
		{"separators and case are normalised before reversing", "c3:b2:a1:04", "04A1B2C3"},
		{"a prefix is removed before reversing", "0xC3B2A104", "04A1B2C3"},
		{"odd digit counts are padded before reversing", "abc", "BC0A"},
		{"leading zero bytes of the input become trailing bytes and are kept", "0004A1", "A10400"},
		{"trailing zero bytes of the input become leading bytes and are removed", "04A1B200", "B2A104"},
		{"zero is one zero byte", "0000", "00"},
		{"a single byte is unchanged", "7f", "7F"},
	})
	checkRejects(t, cardid.HexReversed, []rejects{
		{"empty input is rejected", "", "is empty"},
		{"invalid characters are rejected as for HEX", "C3Z2", "contains 'Z' at position 3, only hex digits 0-9 A-F and byte separators ':' '-' ' ' allowed"},
		{"more than sixteen bytes are rejected as for HEX", strings.Repeat("00", 17), "has 34 hex digits, at most 32 allowed (16 bytes)"},
	})
	t.Run("the canonical form is the HEX canonical form of the same card", func(t *testing.T) {
		for _, uid := range []string{"04A1B2C3", "04123456789ABC", "A10400", "01", "00"} {
			reversed := ""
			for i := len(uid) - 2; i >= 0; i -= 2 {
				reversed += uid[i : i+2]
			}
			fromHex, err := cardid.Parse(cardid.Hex, uid)
			require.NoError(t, err)
			fromReader, err := cardid.Parse(cardid.HexReversed, reversed)
			require.NoError(t, err)
			require.Equal(t, fromHex, fromReader, uid)
		}
	})
}

func TestWiegand(t *testing.T) {
	t.Run("WIEGAND26", func(t *testing.T) {
		checkAccepts(t, cardid.Wiegand26, []accepts{
			{"facility colon card is canonical", "123:45678", "123:45678"},
			{"a dash separates facility and card", "123-45678", "123:45678"},
			{"a slash separates facility and card", "123/45678", "123:45678"},
			{"spaces around the separator are ignored", " 123 / 45678 ", "123:45678"},
			{"leading zeros are removed from both parts", "0123:045678", "123:45678"},
			{"zero facility and card are allowed", "0:0", "0:0"},
			{"the largest facility and card are allowed", "255:65535", "255:65535"},
			{"raw bits with correct parity are decoded", "10111101110110010011011101", "123:45678"},
			{"raw bits of all zeros with odd parity set are decoded", "00000000000000000000000001", "0:0"},
			{"a packed decimal number is split into facility and card", "8106606", "123:45678"},
			{"a packed number with leading zeros is accepted", "008106606", "123:45678"},
			{"the largest packed number is accepted", "16777215", "255:65535"},
			{"a short run of binary digits is a packed number", "101", "0:101"},
		})
		checkRejects(t, cardid.Wiegand26, []rejects{
			{"empty input is rejected", "", "is empty"},
			{"a facility above 255 is rejected", "300:1", "facility 300 out of range 0-255 for WIEGAND26"},
			{"a card above 65535 is rejected", "1:65536", "card 65536 out of range 0-65535 for WIEGAND26"},
			{"an overflowing facility is reported without leading zeros", "00099999999999999999999999:1", "facility 99999999999999999999999 out of range 0-255 for WIEGAND26"},
			{"a packed number above 24 bits is rejected", "16777216", "packed number 16777216 out of range 0-16777215 for WIEGAND26"},
			{"a missing facility is rejected", ":45678", "facility is missing before ':'"},
			{"a negative-looking number is a missing facility", "-5", "facility is missing before '-'"},
			{"a missing card is rejected", "123/", "card number is missing after '/'"},
			{"a second separator is rejected", "1:2:3", "has a second separator ':' at position 4, expected facility:card"},
			{"mixed separators are rejected", "1-2/3", "has a second separator '/' at position 4, expected facility-card"},
			{"a comma is not a separator", "123,45678", "contains ',' at position 4, expected facility:card, 26 raw bits or a packed decimal number"},
			{"a space is not a separator", "123 45678", "contains ' ' at position 4, expected facility:card, 26 raw bits or a packed decimal number"},
			{"hex is rejected", "0x7B", "contains 'x' at position 2, expected facility:card, 26 raw bits or a packed decimal number"},
			{"a letter in the facility is reported with its position", " 1a3:45678", "contains 'a' at position 3, facility and card must be decimal digits"},
			{"a letter in the card is reported with its position", "123: 45b78", "contains 'b' at position 8, facility and card must be decimal digits"},
			{"a wrong even parity bit is reported", "00111101110110010011011101", "even parity (bit 0 over bits 1-12) failed for WIEGAND26"},
			{"a wrong odd parity bit is reported", "10111101110110010011011100", "odd parity (bit 25 over bits 13-24) failed for WIEGAND26"},
			{"both parity failures are reported", "00111101110110010011011100", "even parity (bit 0 over bits 1-12) and odd parity (bit 25 over bits 13-24) failed for WIEGAND26"},
			{"a flipped facility bit fails even parity", "10111101010110010011011101", "even parity (bit 0 over bits 1-12) failed for WIEGAND26"},
			{"a flipped card bit fails odd parity", "10111101110110010011011111", "odd parity (bit 25 over bits 13-24) failed for WIEGAND26"},
			{"raw bits one short are rejected", "1011110111011001001101110", "has 25 binary digits, raw WIEGAND26 bits must be exactly 26"},
			{"a 34-bit frame is rejected", "1000001001101001011011101110101010", "has 34 binary digits, raw WIEGAND26 bits must be exactly 26"},
		})
	})
	t.Run("WIEGAND34", func(t *testing.T) {
		checkAccepts(t, cardid.Wiegand34, []accepts{
			{"facility colon card is canonical", "1234:56789", "1234:56789"},
			{"the largest facility and card are allowed", "65535/65535", "65535:65535"},
			{"raw bits with correct parity are decoded", "1000001001101001011011101110101010", "1234:56789"},
			{"a packed decimal number is split into facility and card", "80928213", "1234:56789"},
			{"the largest packed number is accepted", "4294967295", "65535:65535"},
		})
		checkRejects(t, cardid.Wiegand34, []rejects{
			{"a facility above 65535 is rejected", "65536:1", "facility 65536 out of range 0-65535 for WIEGAND34"},
			{"a card above 65535 is rejected", "1:70000", "card 70000 out of range 0-65535 for WIEGAND34"},
			{"a packed number above 32 bits is rejected", "4294967296", "packed number 4294967296 out of range 0-4294967295 for WIEGAND34"},
			{"a wrong even parity bit is reported", "0000001001101001011011101110101010", "even parity (bit 0 over bits 1-16) failed for WIEGAND34"},
			{"a wrong odd parity bit is reported", "1000001001101001011011101110101011", "odd parity (bit 33 over bits 17-32) failed for WIEGAND34"},
			{"a 26-bit frame is rejected", "10111101110110010011011101", "has 26 binary digits, raw WIEGAND34 bits must be exactly 34"},
			{"a comma is not a separator", "1,2", "contains ',' at position 2, expected facility:card, 34 raw bits or a packed decimal number"},
		})
	})
	t.Run("WIEGAND37", func(t *testing.T) {
		checkAccepts(t, cardid.Wiegand37, []accepts{
			{"facility colon card is canonical", "4660:300000", "4660:300000"},
			{"the largest facility and card are allowed", "65535-524287", "65535:524287"},
			{"raw bits with correct parity are decoded", "0000100100011010010010010011111000000", "4660:300000"},
			{"a packed decimal number is split into facility and card", "2443482080", "4660:300000"},
			{"the largest packed number is accepted", "34359738367", "65535:524287"},
		})
		checkRejects(t, cardid.Wiegand37, []rejects{
			{"a facility above 65535 is rejected", "70000:1", "facility 70000 out of range 0-65535 for WIEGAND37"},
			{"a card above 524287 is rejected", "1:524288", "card 524288 out of range 0-524287 for WIEGAND37"},
			{"a packed number above 35 bits is rejected", "34359738368", "packed number 34359738368 out of range 0-34359738367 for WIEGAND37"},
			{"a wrong even parity bit is reported", "1000100100011010010010010011111000000", "even parity (bit 0 over bits 1-18) failed for WIEGAND37"},
			{"a wrong odd parity bit is reported", "0000100100011010010010010011111000001", "odd parity (bit 36 over bits 18-35) failed for WIEGAND37"},
			{"flipping bit 18, covered by both parities, fails both", "0000100100011010011010010011111000000", "even parity (bit 0 over bits 1-18) and odd parity (bit 36 over bits 18-35) failed for WIEGAND37"},
		})
	})
}

func TestExplain(t *testing.T) {
	cases := []struct {
		name        string
		format      cardid.Format
		input       string
		canonical   string
		explanation string
	}{
		{"a canonical decimal is shown as is", cardid.Decimal, "12345", "12345", "decimal 12345"},
		{"a decimal with leading zeros says they were removed", cardid.Decimal, " 0012345 ", "12345", "decimal 0012345 read as 12345 (leading zeros removed)"},
		{"a canonical hex is shown as is", cardid.Hex, "04A1B2C3", "04A1B2C3", "hex 04A1B2C3"},
		{"a separated hex shows what it was read as", cardid.Hex, "0x04:a1:b2:c3", "04A1B2C3", "hex 0x04:a1:b2:c3 read as 04A1B2C3"},
		{"hex padding is explained", cardid.Hex, "abc", "0ABC", "hex abc read as 0ABC (padded to whole bytes)"},
		{"removed leading zero bytes are explained", cardid.Hex, "0004A1", "04A1", "hex 0004A1 read as 04A1 (leading zero bytes removed)"},
		{"a reversed hex says it was byte-reversed", cardid.HexReversed, "04A1B2C3", "C3B2A104", "hex 04A1B2C3 read byte-reversed as C3B2A104"},
		{"a reversed hex explains removed zero bytes", cardid.HexReversed, "04A1B200", "B2A104", "hex 04A1B200 read byte-reversed as B2A104 (leading zero bytes removed)"},
		{"a reversed hex explains padding", cardid.HexReversed, "abc", "BC0A", "hex abc read byte-reversed as BC0A (padded to whole bytes)"},
		{"raw Wiegand bits report parity", cardid.Wiegand26, "10111101110110010011011101", "123:45678", "Wiegand 26-bit: facility 123, card 45678, parity ok"},
		{"facility and card are echoed", cardid.Wiegand34, "1234/56789", "1234:56789", "Wiegand 34-bit: facility 1234, card 56789"},
		{"a packed number shows how it was split", cardid.Wiegand26, "8106606", "123:45678", "Wiegand 26-bit: packed number 8106606 read as facility 123, card 45678"},
		{"a packed 37-bit number shows how it was split", cardid.Wiegand37, "2443482080", "4660:300000", "Wiegand 37-bit: packed number 2443482080 read as facility 4660, card 300000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			canonical, explanation, err := cardid.Explain(tc.format, tc.input)
			require.NoError(t, err)
			require.Equal(t, tc.canonical, canonical)
			require.Equal(t, tc.explanation, explanation)
		})
	}
	t.Run("an error returns empty strings and the same error as Parse", func(t *testing.T) {
		canonical, explanation, err := cardid.Explain(cardid.Wiegand26, "300:1")
		requireCardError(t, err, "300:1", "facility 300 out of range 0-255 for WIEGAND26")
		require.Equal(t, "", canonical)
		require.Equal(t, "", explanation)
	})
}
