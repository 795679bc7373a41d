package lineproto_test

import (
	"strings"
	"testing"

	"github.com/lintel/lintel/readers/lineproto"
	"github.com/stretchr/testify/require"
)

func newLineDecoder(t testing.TB, cfg lineproto.LineConfig) *lineproto.LineDecoder {
	t.Helper()
	d, err := lineproto.NewLineDecoder(cfg)
	require.NoError(t, err)
	return d
}

// feedInChunks feeds stream in chunks of size bytes and collects the lines.
func feedInChunks[T any](feed func([]byte) []T, stream []byte, size int) []T {
	var out []T
	for len(stream) > 0 {
		n := min(size, len(stream))
		out = append(out, feed(stream[:n])...)
		stream = stream[n:]
	}
	return out
}

func TestLinesEndWhereTheDeviceIsConfiguredToEndThem(t *testing.T) {
	t.Parallel()
	const stream = "a\rb\nc\r\nd\n\re\r\r\nf"
	tests := []struct {
		name   string
		ending lineproto.Ending
		want   []string
		empty  int
	}{
		{"any ending takes CR, LF and CR LF, and CR LF once", lineproto.EndAny,
			[]string{"a", "b", "c", "d", "e"}, 2},
		{"CR only keeps LFs in the line", lineproto.EndCR,
			[]string{"a", "b\nc", "\nd\n", "e"}, 1},
		{"LF only keeps CRs in the line", lineproto.EndLF,
			[]string{"a\rb", "c\r", "d", "\re\r\r"}, 0},
		{"CR LF only keeps lone CRs and LFs in the line", lineproto.EndCRLF,
			[]string{"a\rb\nc", "d\n\re\r"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, size := range []int{1, 2, 3, len(stream)} {
				d := newLineDecoder(t, lineproto.LineConfig{Ending: tt.ending})
				require.Equal(t, tt.want, feedInChunks(d.Feed, []byte(stream), size), "chunks of %d", size)
				require.Equal(t, lineproto.LineStats{Lines: len(tt.want), Empty: tt.empty}, d.Stats(), "chunks of %d", size)
			}
		})
	}
}

func TestACRLFSplitBetweenTwoReadsIsOneEnding(t *testing.T) {
	t.Parallel()
	d := newLineDecoder(t, lineproto.LineConfig{})
	require.Equal(t, []string{"123"}, d.Feed([]byte("123\r")))
	require.Equal(t, []string{"456"}, d.Feed([]byte("\n456\r\n")))
	require.Equal(t, lineproto.LineStats{Lines: 2}, d.Stats())
}

func TestOverlongLinesAreDroppedUpToTheNextEnding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ending lineproto.Ending
		stream string
		want   []string
	}{
		{"a line of exactly the limit is kept", lineproto.EndAny, "12345678\r\n", []string{"12345678"}},
		{"one byte over drops the whole line", lineproto.EndAny, "123456789\r\nok\r\n", []string{"ok"}},
		{"a long run without endings is dropped once", lineproto.EndLF, strings.Repeat("x", 100) + "\nok\n", []string{"ok"}},
		{"with CR LF endings the CR of the ending does not count", lineproto.EndCRLF, "12345678\r\n", []string{"12345678"}},
		{"with CR LF endings a lone CR past the limit does", lineproto.EndCRLF, "12345678\rx\r\nok\r\n", []string{"ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, size := range []int{1, len(tt.stream)} {
				d := newLineDecoder(t, lineproto.LineConfig{Ending: tt.ending, MaxLen: 8})
				require.Equal(t, tt.want, feedInChunks(d.Feed, []byte(tt.stream), size))
				overlong := 0
				if tt.want[0] == "ok" {
					overlong = 1
				}
				require.Equal(t, lineproto.LineStats{Lines: 1, Overlong: overlong}, d.Stats())
			}
		})
	}
}

func TestPrefixesSuffixesAndSpacesAreStripped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  lineproto.LineConfig
		in   string
		want []string
	}{
		{"an STX before the number", lineproto.LineConfig{Prefix: "\x02", Trim: true},
			"\x02 12345 \r\n", []string{"12345"}},
		{"an ID: prefix, and lines without it are kept", lineproto.LineConfig{Prefix: "ID:", Trim: true},
			"ID: 12345\r\n12345\r\n", []string{"12345", "12345"}},
		{"an ETX suffix", lineproto.LineConfig{Suffix: "\x03"},
			"12345\x03\n", []string{"12345"}},
		{"a two-digit checksum", lineproto.LineConfig{Prefix: "\x02", Suffix: "\x03", SuffixLen: 2},
			"\x0200BC614EF1\x03\r", []string{"00BC614E"}},
		{"spaces are kept unless trimming is on", lineproto.LineConfig{},
			" 12345\t\r", []string{" 12345\t"}},
		{"a line that is only a prefix is empty and skipped", lineproto.LineConfig{Prefix: "ID:", Trim: true},
			"ID:\r\n  \r\nID:7\r\n", []string{"7"}},
		{"a line no longer than the checksum is skipped", lineproto.LineConfig{SuffixLen: 2},
			"F1\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newLineDecoder(t, tt.cfg)
			require.Equal(t, tt.want, d.Feed([]byte(tt.in)))
		})
	}
}

func TestFlushDropsAHalfReceivedLine(t *testing.T) {
	t.Parallel()
	d := newLineDecoder(t, lineproto.LineConfig{})
	require.Empty(t, d.Feed([]byte("1234")))
	d.Flush()
	d.Flush() // nothing left
	require.Equal(t, []string{"5678"}, d.Feed([]byte("5678\r")), "the start of the old line is not glued on")
	require.Equal(t, lineproto.LineStats{Lines: 1, Truncated: 1}, d.Stats())
}

func TestInvalidLineConfigurationsAreRefused(t *testing.T) {
	t.Parallel()
	for _, cfg := range []lineproto.LineConfig{
		{Ending: lineproto.Ending(9)},
		{MaxLen: -1},
		{SuffixLen: -2},
	} {
		_, err := lineproto.NewLineDecoder(cfg)
		require.Error(t, err, "%+v", cfg)
	}
}
