package em4100_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRecordedStreamsMatchTheirGoldenOutput decodes every testdata/*.bin
// recording in every card-ID format and compares the reads and counts with
// the matching .golden file. Run with -update after a deliberate change.
func TestRecordedStreamsMatchTheirGoldenOutput(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.bin")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			stream, err := os.ReadFile(file)
			require.NoError(t, err)
			// Decode in every format; the reads differ only in CardID.
			var perFormat [][]em4100.Read
			var stats em4100.Stats
			for i, f := range cardid.Formats() {
				whole := newDecoder(t, f, newClock())
				reads := whole.Feed(stream)
				bytewise := newDecoder(t, f, newClock())
				require.Equal(t, reads, feedBytewise(bytewise, stream), "%s fed a byte at a time", f)
				require.Equal(t, whole.Stats(), bytewise.Stats(), "%s fed a byte at a time", f)
				if i > 0 {
					require.Equal(t, stats, whole.Stats(), "stats in %s", f)
				}
				stats = whole.Stats()
				perFormat = append(perFormat, reads)
			}
			var b strings.Builder
			for i, r := range perFormat[0] {
				fmt.Fprintf(&b, "read tag=%010X customer=%02X id=%d\n", r.Tag, r.Customer, r.ID())
				for j, f := range cardid.Formats() {
					fmt.Fprintf(&b, "  %-12s %s\n", f, perFormat[j][i].CardID)
				}
			}
			fmt.Fprintf(&b, "stats %+v\n", stats)
			golden := strings.TrimSuffix(file, ".bin") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create it")
			require.Equal(t, string(want), b.String())
		})
	}
}
