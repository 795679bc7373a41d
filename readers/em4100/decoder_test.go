package em4100_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/stretchr/testify/require"
)

// fob is an EM4100 fob with customer byte 0x1E and tag ID 0x009A4067,
// printed on the fob as "0010109031" and "154,16487".
const fob uint64 = 0x1E009A4067

func TestFrameEncodesWhatAnRDM6300Sends(t *testing.T) {
	t.Parallel()
	require.Equal(t, []byte("\x021E009A4067A3\x03"), em4100.Frame(fob))
	require.Equal(t, []byte("\x02000000000000\x03"), em4100.Frame(0))
	require.Len(t, em4100.Frame(1<<40-1), em4100.FrameLen)
}

func TestAFrameGivesTheCardNumberPrintedOnTheFob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format cardid.Format
		want   string
	}{
		{cardid.Decimal, "10109031"},
		{cardid.Hex, "9A4067"},
		{cardid.HexReversed, "67409A"},
		{cardid.Wiegand26, "154:16487"},
		{cardid.Wiegand34, "154:16487"},
		{cardid.Wiegand37, "19:147559"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			reads := newDecoder(t, tt.format, clk).Feed(em4100.Frame(fob))
			require.Equal(t, []em4100.Read{{Tag: fob, Customer: 0x1E, CardID: tt.want, At: clk.now}}, reads)
			require.Equal(t, uint32(0x009A4067), reads[0].ID())
		})
	}
}

func TestWiegand26UsesTheLow24BitsOfTheTagID(t *testing.T) {
	t.Parallel()
	// Tag ID 0x12345678: a Wiegand-26 EM reader sends facility 0x34,
	// card 0x5678.
	reads := newDecoder(t, cardid.Wiegand26, newClock()).Feed(em4100.Frame(0x0012345678))
	require.Equal(t, []string{"52:22136"}, cardIDs(reads))
}

func TestStreamsAreDecodedWhateverTheChunking(t *testing.T) {
	t.Parallel()
	stream := slices(
		[]byte("\x00\xffgarbage"), em4100.Frame(fob), []byte("\r\n"),
		em4100.Frame(0x0400E3B1C2), []byte("\x03\x03"),
	)
	want := []string{"10109031", "14922178"}
	for _, size := range []int{1, 2, 3, 5, 7, 13, 14, 15, len(stream)} {
		d := newDecoder(t, cardid.Decimal, newClock())
		var reads []em4100.Read
		for rest := stream; len(rest) > 0; {
			n := min(size, len(rest))
			reads = append(reads, d.Feed(rest[:n])...)
			rest = rest[n:]
		}
		require.Equal(t, want, cardIDs(reads), "chunks of %d bytes", size)
		require.Equal(t, em4100.Stats{Frames: 2, Reads: 2, Noise: 13}, d.Stats(), "chunks of %d bytes", size)
	}
}

func TestDamagedFramesAreDroppedCountedAndTheNextFrameIsRead(t *testing.T) {
	t.Parallel()
	good := em4100.Frame(0x0400E3B1C2)
	tests := []struct {
		name    string
		damaged string
		want    em4100.Stats
	}{
		{"a wrong checksum", "\x021E009A4067A2\x03", em4100.Stats{BadChecksum: 1}},
		{"a character that is not hex", "\x021E00ZA4067A3\x03", em4100.Stats{BadHex: 1, Noise: 8}},
		{"a space inside the frame", "\x021E009A 4067A3\x03", em4100.Stats{BadHex: 1, Noise: 7}},
		{"an ETX after six characters", "\x021E009A\x03", em4100.Stats{Truncated: 1}},
		{"a frame cut off by the next STX", "\x021E009A40", em4100.Stats{Truncated: 1}},
		{"an STX and ETX with nothing between", "\x02\x03", em4100.Stats{Truncated: 1}},
		{"two characters too many", "\x021E009A4067A300\x03", em4100.Stats{Overlong: 1, Noise: 2}},
		{"a 13-byte frame without ETX, then noise", "\x021E009A4067A3\r\n", em4100.Stats{Overlong: 1, Noise: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDecoder(t, cardid.Decimal, newClock())
			reads := d.Feed(slices([]byte(tt.damaged), good))
			require.Equal(t, []string{"14922178"}, cardIDs(reads))
			tt.want.Frames, tt.want.Reads = 1, 1
			require.Equal(t, tt.want, d.Stats())
		})
	}
}

func TestLowercaseHexIsAccepted(t *testing.T) {
	t.Parallel()
	reads := newDecoder(t, cardid.Decimal, newClock()).Feed(bytes.ToLower(em4100.Frame(0x0400E3B1C2)))
	require.Equal(t, []string{"14922178"}, cardIDs(reads))
}

func TestAHeldTagIsReportedOncePerPresentation(t *testing.T) {
	t.Parallel()
	clk := newClock()
	d := newDecoder(t, cardid.Decimal, clk)
	hold := func(d *em4100.Decoder, tag uint64, for_ time.Duration) (reads int) {
		for elapsed := time.Duration(0); elapsed < for_; elapsed += 100 * time.Millisecond {
			reads += len(d.Feed(em4100.Frame(tag)))
			clk.advance(100 * time.Millisecond)
		}
		return reads
	}

	require.Equal(t, 1, hold(d, fob, 3*time.Second), "held for 3 s, one frame every 100 ms")
	clk.advance(800 * time.Millisecond)
	require.Equal(t, 0, hold(d, fob, time.Second), "taken away for 0.9 s: the same presentation, wobbling at the edge of the field")
	clk.advance(time.Second)
	require.Equal(t, 1, hold(d, fob, time.Second), "taken away for 1.1 s: a new presentation")
	require.Equal(t, em4100.Stats{Frames: 50, Reads: 2, Repeats: 48}, d.Stats())
}

func TestAnotherTagIsReportedAtOnceEvenWhileTheFirstIsHeld(t *testing.T) {
	t.Parallel()
	clk := newClock()
	d := newDecoder(t, cardid.Decimal, clk)
	var reads []em4100.Read
	for range 5 {
		reads = append(reads, d.Feed(em4100.Frame(fob))...)
		clk.advance(100 * time.Millisecond)
		reads = append(reads, d.Feed(em4100.Frame(0x0400E3B1C2))...)
		clk.advance(100 * time.Millisecond)
	}
	require.Equal(t, []string{"10109031", "14922178"}, cardIDs(reads))
	require.Equal(t, 100*time.Millisecond, reads[1].At.Sub(reads[0].At))
}

func TestTheHoldGapIsConfigurable(t *testing.T) {
	t.Parallel()
	clk := newClock()
	d, err := em4100.NewDecoder(em4100.Config{Format: cardid.Decimal, Now: clk.Now, HoldGap: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, d.Feed(em4100.Frame(fob)), 1)
	clk.advance(299 * time.Millisecond)
	require.Empty(t, d.Feed(em4100.Frame(fob)))
	clk.advance(300 * time.Millisecond)
	require.Len(t, d.Feed(em4100.Frame(fob)), 1)
}

func TestAFrameInterruptedByAPauseIsNotGluedToWhatFollows(t *testing.T) {
	t.Parallel()
	clk := newClock()
	d := newDecoder(t, cardid.Decimal, clk)
	frame := em4100.Frame(fob)

	require.Empty(t, d.Feed(frame[:6]))
	clk.advance(600 * time.Millisecond) // the reader was unplugged mid-frame
	require.Empty(t, d.Feed(frame[6:]), "the rest of an old frame is noise")
	require.Equal(t, em4100.Stats{Truncated: 1, Noise: 8}, d.Stats())

	// A pause shorter than the frame timeout is just a slow line.
	require.Empty(t, d.Feed(frame[:6]))
	clk.advance(400 * time.Millisecond)
	require.Equal(t, []string{"10109031"}, cardIDs(d.Feed(frame[6:])))

	// An idle tick (Feed with nothing) expires a stale partial frame, so
	// it is counted when it happens rather than when the next frame comes.
	require.Empty(t, d.Feed(frame[:3]))
	clk.advance(time.Second)
	require.Empty(t, d.Feed(nil))
	require.Equal(t, 2, d.Stats().Truncated)
}

func TestFlushDropsAPartialFrame(t *testing.T) {
	t.Parallel()
	d := newDecoder(t, cardid.Decimal, newClock())
	frame := em4100.Frame(fob)
	require.Empty(t, d.Feed(frame[:10]))
	d.Flush()
	d.Flush() // nothing left to drop
	require.Empty(t, d.Feed(frame[10:]))
	require.Equal(t, em4100.Stats{Truncated: 1, Noise: 4}, d.Stats())
}

func TestAnUnknownFormatIsRefused(t *testing.T) {
	t.Parallel()
	_, err := em4100.NewDecoder(em4100.Config{Format: "OCTAL"})
	require.ErrorContains(t, err, `unknown card ID format "OCTAL"`)
}

func slices(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
