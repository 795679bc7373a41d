package lineproto_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/lineproto"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenDevices says how each recording in testdata/ is decoded: the
// configuration an installer would enter for that device.
var goldenDevices = map[string]any{
	"wiegand26_converter.bin": lineproto.CardConfig{
		Line:   lineproto.LineConfig{Trim: true},
		Format: cardid.Wiegand26,
		Number: lineproto.Decimal,
	},
	"stx_hex_reader.bin": lineproto.CardConfig{
		Line:   lineproto.LineConfig{Ending: lineproto.EndCRLF, Prefix: "\x02", Suffix: "\x03", SuffixLen: 2},
		Format: cardid.Hex,
		Number: lineproto.Hex,
	},
	"qr_scanner.bin": lineproto.TextConfig{
		Line: lineproto.LineConfig{Ending: lineproto.EndCR},
	},
}

// decodeGolden decodes stream for the device cfg describes, feeding it in
// chunks of size bytes and flushing at the end as after an idle line, and
// describes the result: what was read, then what was rejected and why, then
// the counts.
func decodeGolden(t *testing.T, cfg any, stream []byte, size int) string {
	var out, rejects strings.Builder
	reject := func(raw string, err error) { fmt.Fprintf(&rejects, "reject %q: %v\n", raw, err) }
	var stats any
	switch cfg := cfg.(type) {
	case lineproto.CardConfig:
		cfg.OnReject = reject
		d, err := lineproto.NewCardDecoder(cfg)
		require.NoError(t, err)
		for _, c := range feedInChunks(d.Feed, stream, size) {
			fmt.Fprintf(&out, "card %s from %q\n", c.CardID, c.Raw)
		}
		d.Flush()
		stats = d.Stats()
	case lineproto.TextConfig:
		cfg.OnReject = func(raw string, err error) { reject(abbreviate(raw), err) }
		d, err := lineproto.NewTextDecoder(cfg)
		require.NoError(t, err)
		for _, l := range feedInChunks(d.Feed, stream, size) {
			fmt.Fprintf(&out, "text %s\n", l.Text)
		}
		d.Flush()
		stats = d.Stats()
	default:
		t.Fatalf("no decoder for %T", cfg)
	}
	return fmt.Sprintf("%s%sstats %+v\n", out.String(), rejects.String(), stats)
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s…(%d bytes)", s[:40], len(s))
	}
	return s
}

// TestRecordedStreamsMatchTheirGoldenOutput decodes every testdata/*.bin
// recording whole and a byte at a time and compares the result with its
// .golden file. Run with -update after a deliberate change.
func TestRecordedStreamsMatchTheirGoldenOutput(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.bin")
	require.NoError(t, err)
	require.Len(t, files, len(goldenDevices), "every recording needs a device configuration")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			cfg, ok := goldenDevices[filepath.Base(file)]
			require.True(t, ok, "no device configuration for %s", file)
			stream, err := os.ReadFile(file)
			require.NoError(t, err)
			got := decodeGolden(t, cfg, stream, len(stream))
			require.Equal(t, got, decodeGolden(t, cfg, stream, 1), "fed a byte at a time")

			golden := strings.TrimSuffix(file, ".bin") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create it")
			require.Equal(t, string(want), got)
		})
	}
}
