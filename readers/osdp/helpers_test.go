package osdp_test

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bits turns "1011…" into a bit slice, first bit first.
func bits(s string) []bool {
	b := make([]bool, len(s))
	for i := range s {
		b[i] = s[i] == '1'
	}
	return b
}

// h10301 is the 26-bit HID H10301 frame of facility 123, card 4567: even
// parity, 8 facility bits, 16 card bits, odd parity.
const h10301 = "10111101100010001110101110"

// unhex reads bytes written as hex pairs, spaces allowed.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err, "hex %q", s)
	return b
}

// spacedHex writes bytes as upper-case hex pairs separated by spaces, the way
// protocol analysers show them.
func spacedHex(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

// namedFrame is one "name: hex" line of a testdata file.
type namedFrame struct {
	name  string
	bytes []byte
}

// readFrames reads a testdata file of "name: hex bytes" lines; '#' starts
// a comment line.
func readFrames(t testing.TB, path string) []namedFrame {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var frames []namedFrame
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, ":")
		require.True(t, ok, "line %q is not name: hex", line)
		frames = append(frames, namedFrame{name: strings.TrimSpace(name), bytes: unhex(t, strings.TrimSpace(h))})
	}
	require.NoError(t, sc.Err())
	return frames
}
