package lineproto_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/lineproto"
	"github.com/stretchr/testify/require"
)

// FuzzLineDecoder checks, for every line ending, that any byte stream
// splits into the same lines whole and a byte at a time, that no line is
// empty, longer than the limit or contains its own ending, and that every
// line ending in the stream is accounted for.
func FuzzLineDecoder(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(b, uint8(16))
	}
	f.Add([]byte("a\rb\nc\r\nd\n\re\r\r\nf"), uint8(2))
	f.Add([]byte("12345678\r\n123456789\r\n\r"), uint8(8))
	f.Fuzz(func(t *testing.T, stream []byte, maxLen uint8) {
		for _, ending := range []lineproto.Ending{lineproto.EndAny, lineproto.EndCR, lineproto.EndLF, lineproto.EndCRLF} {
			cfg := lineproto.LineConfig{Ending: ending, MaxLen: int(maxLen) + 1, Trim: true, Prefix: "ID:", SuffixLen: 1}
			whole := newLineDecoder(t, cfg)
			lines := whole.Feed(stream)
			bytewise := newLineDecoder(t, cfg)
			require.Equal(t, lines, feedInChunks(bytewise.Feed, stream, 1), "%v", ending)
			st := whole.Stats()
			require.Equal(t, st, bytewise.Stats())
			require.Len(t, lines, st.Lines)

			for _, line := range lines {
				require.NotEmpty(t, line)
				require.LessOrEqual(t, len(line), cfg.MaxLen)
				require.Equal(t, strings.TrimSpace(line), line)
				switch ending {
				case lineproto.EndAny:
					require.NotContains(t, line, "\r")
					require.NotContains(t, line, "\n")
				case lineproto.EndCR:
					require.NotContains(t, line, "\r")
				case lineproto.EndLF:
					require.NotContains(t, line, "\n")
				case lineproto.EndCRLF:
					require.NotContains(t, line, "\r\n")
				}
			}
			s := string(stream)
			var endings int
			switch ending {
			case lineproto.EndAny:
				endings = strings.Count(s, "\r") + strings.Count(s, "\n") - strings.Count(s, "\r\n")
			case lineproto.EndCR:
				endings = strings.Count(s, "\r")
			case lineproto.EndLF:
				endings = strings.Count(s, "\n")
			case lineproto.EndCRLF:
				endings = strings.Count(s, "\r\n")
			}
			// Every ending closes a line, an empty line or an overlong
			// one (whose end may never come).
			require.LessOrEqual(t, st.Lines+st.Empty, endings)
			require.GreaterOrEqual(t, st.Lines+st.Empty+st.Overlong, endings)
		}
	})
}

// FuzzCardLine checks that ParseCard never panics, that its errors are
// about the line, and that every card ID it returns is canonical for its
// format, for every format and notation; and that in a format's own
// notation it agrees with cardid.Parse.
func FuzzCardLine(f *testing.F) {
	for _, seed := range []string{
		"0012345678", "12345678", "04:a1:b2:c3", "0x00BC614E", "C3B2A104", "bc614e",
		"123:45678", "123-45678", "042/00017", "123 / 45678", "8106606", "7BB26E", "300:1", "1-70000",
		"99999999999999999999", "1FFFFFFFFFFFFFFFF", "READY", "10111101110110010011011101", "", " ", "1:2:3", "12-34",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, format := range cardid.Formats() {
			for _, number := range []lineproto.Number{lineproto.Decimal, lineproto.Hex} {
				id, err := lineproto.ParseCard(format, number, line)
				if err != nil {
					var e *cardid.Error
					require.ErrorAs(t, err, &e)
					require.Equal(t, line, e.Input)
					require.NotEmpty(t, e.Reason)
					continue
				}
				stored := format
				if format == cardid.HexReversed {
					stored = cardid.Hex
				}
				again, err := cardid.Parse(stored, id)
				require.NoError(t, err, "%s %v %q gave %q", format, number, line, id)
				require.Equal(t, id, again, "%s %v %q gave a non-canonical %q", format, number, line, id)
			}

			own := lineproto.Decimal
			if format == cardid.Hex || format == cardid.HexReversed {
				own = lineproto.Hex
			}
			want, wantErr := cardid.Parse(format, line)
			got, err := lineproto.ParseCard(format, own, line)
			require.Equal(t, want, got)
			require.Equal(t, wantErr == nil, err == nil)
		}
	})
}
