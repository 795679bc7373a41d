package cardid_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/stretchr/testify/require"
)

// layout restates the HID layouts independently of the package.
type layout struct {
	format       cardid.Format
	bits         int
	facilityBits int
	cardBits     int
	evenOver     [2]int // even parity bit 0 covers these bits (inclusive)
	oddOver      [2]int // odd parity last bit covers these bits (inclusive)
}

var layouts = []layout{
	{cardid.Wiegand26, 26, 8, 16, [2]int{1, 12}, [2]int{13, 24}},  // H10301
	{cardid.Wiegand34, 34, 16, 16, [2]int{1, 16}, [2]int{17, 32}}, // H10306
	{cardid.Wiegand37, 37, 16, 19, [2]int{1, 18}, [2]int{18, 35}}, // H10304
}

// frame encodes facility and card as a '0'/'1' string with both parity bits
// set correctly.
func (l layout) frame(facility, card uint64) string {
	data := fmt.Sprintf("%0*b%0*b", l.facilityBits, facility, l.cardBits, card)
	s := "?" + data + "?"
	even := strings.Count(s[l.evenOver[0]:l.evenOver[1]+1], "1")%2 == 1 // set to make the total even
	odd := strings.Count(s[l.oddOver[0]:l.oddOver[1]+1], "1")%2 == 0    // set to make the total odd
	return bit(even) + data + bit(odd)
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func toBools(s string) []bool {
	out := make([]bool, len(s))
	for i := range s {
		out[i] = s[i] == '1'
	}
	return out
}

// samples returns edge values and a fixed pseudo-random spread of
// facility/card pairs for l.
func (l layout) samples() [][2]uint64 {
	maxF, maxC := uint64(1)<<l.facilityBits-1, uint64(1)<<l.cardBits-1
	out := [][2]uint64{{0, 0}, {0, maxC}, {maxF, 0}, {maxF, maxC}, {1, 1}, {maxF / 2, maxC / 2}}
	r := rand.New(rand.NewPCG(uint64(l.bits), 1))
	for range 200 {
		out = append(out, [2]uint64{r.Uint64N(maxF + 1), r.Uint64N(maxC + 1)})
	}
	return out
}

func TestFromWiegandBits(t *testing.T) {
	for _, l := range layouts {
		t.Run(string(l.format), func(t *testing.T) {
			t.Run("decodes correctly framed bits to facility:card", func(t *testing.T) {
				for _, fc := range l.samples() {
					f, got, err := cardid.FromWiegandBits(toBools(l.frame(fc[0], fc[1])))
					require.NoError(t, err, fc)
					require.Equal(t, l.format, f)
					require.Equal(t, fmt.Sprintf("%d:%d", fc[0], fc[1]), got)
				}
			})
			t.Run("agrees with Parse of the same bits as text", func(t *testing.T) {
				for _, fc := range l.samples() {
					bits := l.frame(fc[0], fc[1])
					_, fromBits, err := cardid.FromWiegandBits(toBools(bits))
					require.NoError(t, err)
					fromText, err := cardid.Parse(l.format, bits)
					require.NoError(t, err)
					require.Equal(t, fromBits, fromText, bits)
				}
			})
			t.Run("agrees with Parse of facility:card and of the packed number", func(t *testing.T) {
				for _, fc := range l.samples() {
					_, fromBits, err := cardid.FromWiegandBits(toBools(l.frame(fc[0], fc[1])))
					require.NoError(t, err)
					fromPair, err := cardid.Parse(l.format, fmt.Sprintf("%d/%d", fc[0], fc[1]))
					require.NoError(t, err)
					require.Equal(t, fromBits, fromPair)
					packed := strconv.FormatUint(fc[0]<<l.cardBits|fc[1], 10)
					fromPacked, err := cardid.Parse(l.format, packed)
					require.NoError(t, err)
					require.Equal(t, fromBits, fromPacked, packed)
				}
			})
			t.Run("detects every single flipped bit by parity", func(t *testing.T) {
				good := l.frame(0x5A5A&(1<<l.facilityBits-1), 0x2B2B2&(1<<l.cardBits-1))
				for i := range l.bits {
					bits := toBools(good)
					bits[i] = !bits[i]
					f, got, err := cardid.FromWiegandBits(bits)
					require.Equal(t, l.format, f, "the format is still reported")
					require.Equal(t, "", got)
					flipped := []byte(good)
					flipped[i] ^= 1 // '0' <-> '1'
					var want []string
					if i <= l.evenOver[1] {
						want = append(want, fmt.Sprintf("even parity (bit 0 over bits %d-%d)", l.evenOver[0], l.evenOver[1]))
					}
					if i >= l.oddOver[0] {
						want = append(want, fmt.Sprintf("odd parity (bit %d over bits %d-%d)", l.bits-1, l.oddOver[0], l.oddOver[1]))
					}
					requireCardError(t, err, string(flipped), strings.Join(want, " and ")+" failed for "+string(l.format))
				}
			})
		})
	}
	t.Run("frames of other lengths are rejected", func(t *testing.T) {
		for _, n := range []int{0, 1, 25, 27, 32, 35, 36, 38} {
			f, got, err := cardid.FromWiegandBits(make([]bool, n))
			require.Equal(t, cardid.Format(""), f)
			require.Equal(t, "", got)
			requireCardError(t, err, strings.Repeat("0", n), fmt.Sprintf("has %d bits, Wiegand frames must have 26, 34 or 37 bits", n))
		}
	})
	t.Run("the known H10301 frame for 123:45678 decodes", func(t *testing.T) {
		f, got, err := cardid.FromWiegandBits(toBools("10111101110110010011011101"))
		require.NoError(t, err)
		require.Equal(t, cardid.Wiegand26, f)
		require.Equal(t, "123:45678", got)
	})
}

func TestFromNumber(t *testing.T) {
	cases := []struct {
		name   string
		format cardid.Format
		n      uint64
		want   string
	}{
		{"decimal is base 10", cardid.Decimal, 12345, "12345"},
		{"decimal zero is 0", cardid.Decimal, 0, "0"},
		{"decimal keeps the largest uint64", cardid.Decimal, ^uint64(0), "18446744073709551615"},
		{"hex is the number in uppercase hex", cardid.Hex, 0x04A1B2C3, "04A1B2C3"},
		{"hex pads to whole bytes", cardid.Hex, 0xABC, "0ABC"},
		{"hex zero is one zero byte", cardid.Hex, 0, "00"},
		{"hex keeps all eight bytes of the largest uint64", cardid.Hex, ^uint64(0), "FFFFFFFFFFFFFFFF"},
		{"reversed hex reverses the number's bytes", cardid.HexReversed, 0xC3B2A104, "04A1B2C3"},
		{"reversed hex pads before reversing", cardid.HexReversed, 0xABC, "BC0A"},
		{"reversed hex drops zero bytes that end up leading", cardid.HexReversed, 0xB2A10400, "04A1B2"},
		{"Wiegand 26 splits the packed number", cardid.Wiegand26, 8106606, "123:45678"},
		{"Wiegand 34 splits the packed number", cardid.Wiegand34, 80928213, "1234:56789"},
		{"Wiegand 37 splits the packed number", cardid.Wiegand37, 2443482080, "4660:300000"},
		{"Wiegand 37 accepts its largest packed number", cardid.Wiegand37, 1<<35 - 1, "65535:524287"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cardid.FromNumber(tc.format, tc.n)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("Wiegand numbers wider than the format are rejected", func(t *testing.T) {
		_, err := cardid.FromNumber(cardid.Wiegand26, 1<<24)
		requireCardError(t, err, "16777216", "packed number 16777216 out of range 0-16777215 for WIEGAND26")
		_, err = cardid.FromNumber(cardid.Wiegand34, 1<<32)
		requireCardError(t, err, "4294967296", "packed number 4294967296 out of range 0-4294967295 for WIEGAND34")
		_, err = cardid.FromNumber(cardid.Wiegand37, ^uint64(0))
		requireCardError(t, err, "18446744073709551615", "packed number 18446744073709551615 out of range 0-34359738367 for WIEGAND37")
	})
	t.Run("agrees with Parse of the number written in the format", func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 7))
		numbers := []uint64{0, 1, 255, 256, 1<<24 - 1, 1 << 24, 1<<32 - 1, 1 << 32, 1<<35 - 1, 1 << 35, ^uint64(0)}
		for range 500 {
			numbers = append(numbers, r.Uint64()>>r.UintN(64))
		}
		for _, n := range numbers {
			for _, f := range cardid.Formats() {
				checkFromNumberAgrees(t, f, n)
			}
		}
	})
}

// checkFromNumberAgrees checks FromNumber(f, n) against Parse of n written
// the way such a reader would print it.
func checkFromNumberAgrees(t *testing.T, f cardid.Format, n uint64) {
	t.Helper()
	text := strconv.FormatUint(n, 10)
	if f == cardid.Hex || f == cardid.HexReversed {
		text = fmt.Sprintf("%X", n)
	}
	fromNumber, errNumber := cardid.FromNumber(f, n)
	fromText, errText := cardid.Parse(f, text)
	require.Equal(t, errText == nil, errNumber == nil, "%s %d: Parse error %v, FromNumber error %v", f, n, errText, errNumber)
	require.Equal(t, fromText, fromNumber, "%s %d", f, n)
	if errText != nil {
		require.Equal(t, errText.Error(), errNumber.Error())
	}
}
