package em4100_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/stretchr/testify/require"
)

// FuzzDecoder checks that no byte stream makes the decoder panic, that it
// decodes the same reads however the stream is split, that every read comes
// from a valid frame actually present in the stream, and that every card ID
// is canonical for its format.
func FuzzDecoder(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add(em4100.Frame(0xFFFFFFFFFF))
	f.Add([]byte("\x02\x02\x03\x03"))
	f.Add(append(em4100.Frame(0), em4100.Frame(1<<32)...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		upper := bytes.ToUpper(stream)
		for _, format := range cardid.Formats() {
			whole := newDecoder(t, format, newClock())
			reads := whole.Feed(stream)
			bytewise := newDecoder(t, format, newClock())
			require.Equal(t, reads, feedBytewise(bytewise, stream))
			st := whole.Stats()
			require.Equal(t, st, bytewise.Stats())
			require.Equal(t, st.Frames, st.Reads+st.Repeats)
			require.Len(t, reads, st.Reads)
			require.LessOrEqual(t, st.Noise, len(stream))

			for _, r := range reads {
				require.Less(t, r.Tag, uint64(1)<<40)
				require.Equal(t, byte(r.Tag>>32), r.Customer)
				require.True(t, bytes.Contains(upper, em4100.Frame(r.Tag)), "read %010X is not in the stream", r.Tag)
				stored := format
				if format == cardid.HexReversed {
					stored = cardid.Hex
				}
				again, err := cardid.Parse(stored, r.CardID)
				require.NoError(t, err)
				require.Equal(t, r.CardID, again, "card ID is not canonical")
			}
		}
	})
}
