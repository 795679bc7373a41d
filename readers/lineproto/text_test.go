package lineproto_test

import (
	"strings"
	"testing"

	"github.com/lintel/lintel/readers/lineproto"
	"github.com/stretchr/testify/require"
)

// walletCode is shaped like a wallet's rotating QR code: about 800
// printable characters starting "LC1.".
func walletCode(seed string) string {
	body := strings.Repeat("eyJhbGciOiJFUzI1NiJ9-_"+seed, 40)
	return "LC1." + body[:700] + ".1767225600." + strings.Repeat("Q", 86)
}

func newTextDecoder(t testing.TB, cfg lineproto.TextConfig) *lineproto.TextDecoder {
	t.Helper()
	d, err := lineproto.NewTextDecoder(cfg)
	require.NoError(t, err)
	return d
}

func TestAScannedWalletCodeIsPassedOnUnchanged(t *testing.T) {
	t.Parallel()
	code := walletCode("a")
	require.Greater(t, len(code), 790)
	for _, size := range []int{1, 64, 1000} {
		d := newTextDecoder(t, lineproto.TextConfig{})
		got := feedInChunks(d.Feed, []byte(code+"\r\n"+code+"\r\n"), size)
		require.Equal(t, []lineproto.TextLine{{Text: code}, {Text: code}}, got, "chunks of %d", size)
	}
}

func TestCodesTooLongOrNotPrintableAreDropped(t *testing.T) {
	t.Parallel()
	var rejected []string
	d := newTextDecoder(t, lineproto.TextConfig{
		OnReject: func(raw string, err error) { rejected = append(rejected, err.Error()) },
	})
	code := walletCode("b")
	stream := strings.Join([]string{
		strings.Repeat("A", 4097), // one byte over the default limit
		"LC1.\x00\x01",            // noise from a scanner in the wrong mode
		"LC1.caf\u00e9",           // not ASCII
		"LC1.\tx",                 // a tab is not printable
		code,
	}, "\r")
	got := d.Feed([]byte(stream + "\r"))
	require.Equal(t, []lineproto.TextLine{{Text: code}}, got)
	require.Equal(t, []string{
		"byte 0x00 at position 5 is not printable ASCII",
		"byte 0xC3 at position 8 is not printable ASCII",
		"byte 0x09 at position 5 is not printable ASCII",
	}, rejected)
	require.Equal(t, lineproto.TextStats{
		Line:         lineproto.LineStats{Lines: 4, Overlong: 1},
		Texts:        1,
		NotPrintable: 3,
	}, d.Stats())
}

func TestTheTextLengthLimitIsConfigurable(t *testing.T) {
	t.Parallel()
	d := newTextDecoder(t, lineproto.TextConfig{Line: lineproto.LineConfig{MaxLen: 10}})
	require.Equal(t, []lineproto.TextLine{{Text: "LC1.abcdef"}}, d.Feed([]byte("LC1.abcdefg\nLC1.abcdef\n")))
	require.Equal(t, 1, d.Stats().Line.Overlong)

	_, err := lineproto.NewTextDecoder(lineproto.TextConfig{Line: lineproto.LineConfig{MaxLen: -1}})
	require.Error(t, err)
}

func TestFlushDropsAHalfScannedCode(t *testing.T) {
	t.Parallel()
	d := newTextDecoder(t, lineproto.TextConfig{})
	require.Empty(t, d.Feed([]byte("LC1.half")))
	d.Flush()
	require.Equal(t, []lineproto.TextLine{{Text: "LC1.whole"}}, d.Feed([]byte("LC1.whole\n")))
	require.Equal(t, 1, d.Stats().Line.Truncated)
}
