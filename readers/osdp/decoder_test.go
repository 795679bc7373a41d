package osdp_test

import (
	"testing"

	"github.com/lintel/lintel/readers/osdp"
	"github.com/stretchr/testify/require"
)

// goldenBytes returns a frame of testdata/golden.txt by name.
func goldenBytes(t testing.TB, name string) []byte {
	t.Helper()
	for _, f := range readFrames(t, "testdata/golden.txt") {
		if f.name == name {
			return f.bytes
		}
	}
	t.Fatalf("no golden frame %q", name)
	return nil
}

func join(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestDecoderDropsWhatIsNotAFrameAndDecodesTheNextGoodOne(t *testing.T) {
	t.Parallel()
	ack := goldenBytes(t, "ack_from_1_seq1")
	raw := goldenBytes(t, "raw_h10301_123_4567_from_1_seq2")
	rawSum := goldenBytes(t, "raw_h10301_123_4567_from_1_seq2_checksum")
	badCRC := join(ack[:len(ack)-1], []byte{ack[len(ack)-1] ^ 0xFF})
	secure := withCRC(unhex(t, "53 81 0A 00 0D 02 11 40"))
	reset := []byte(nil) // a nil chunk stands for Reset: silence on the line

	tests := []struct {
		name   string
		chunks [][]byte
		codes  []byte // codes of the frames returned, in order
		stats  osdp.Stats
	}{
		{"a frame alone decodes",
			[][]byte{raw}, []byte{osdp.ReplyRaw}, osdp.Stats{}},
		{"mark bytes before a frame are not garbage",
			[][]byte{join([]byte{0xFF, 0xFF}, raw)}, []byte{osdp.ReplyRaw}, osdp.Stats{}},
		{"garbage bytes before a frame are counted one by one and skipped",
			[][]byte{join([]byte{0x00, 0x12, 0xFE}, raw)}, []byte{osdp.ReplyRaw}, osdp.Stats{Garbage: 3}},
		{"a frame with a bad CRC is dropped and the next one decoded",
			[][]byte{join(badCRC, raw)}, []byte{osdp.ReplyRaw}, osdp.Stats{BadCRC: 1}},
		{"a frame in checksum mode decodes like one with a CRC",
			[][]byte{join(rawSum, raw)}, []byte{osdp.ReplyRaw, osdp.ReplyRaw}, osdp.Stats{}},
		{"a false SOM with an impossible length is skipped and the real frame right after it found",
			[][]byte{join([]byte{0x53, 0x00}, raw)}, []byte{osdp.ReplyRaw}, osdp.Stats{BadLength: 1, Garbage: 1}},
		{"a secure-channel frame is dropped as unsupported and the next one decoded",
			[][]byte{join(secure, ack)}, []byte{osdp.ReplyAck}, osdp.Stats{Unsupported: 1}},
		{"a truncated frame followed by silence is dropped and the next frame decodes",
			[][]byte{raw[:9], reset, raw}, []byte{osdp.ReplyRaw}, osdp.Stats{Truncated: 1}},
		{"a frame arriving one byte at a time decodes once complete",
			splitBytes(join(ack, raw)), []byte{osdp.ReplyAck, osdp.ReplyRaw}, osdp.Stats{}},
		{"silence between complete frames drops nothing",
			[][]byte{ack, reset, raw, reset}, []byte{osdp.ReplyAck, osdp.ReplyRaw}, osdp.Stats{}},
		{"line noise, a bad frame and a cut-off frame all in a row leave the last good frame intact",
			[][]byte{join([]byte{0x00, 0x00}, badCRC, raw[:5]), reset, join([]byte{0xFF}, ack)},
			[]byte{osdp.ReplyAck}, osdp.Stats{Garbage: 2, BadCRC: 1, Truncated: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d osdp.Decoder
			var drops []osdp.DropReason
			d.OnDrop = func(e *osdp.FrameError) { drops = append(drops, e.Reason) }
			var codes []byte
			for _, c := range tt.chunks {
				if c == nil {
					d.Reset()
					continue
				}
				for _, f := range d.Feed(c) {
					codes = append(codes, f.Code)
				}
			}
			require.Equal(t, tt.codes, codes)
			require.Equal(t, tt.stats, d.Stats())
			require.Zero(t, d.Buffered())
			// Every kind of drop counted is also reported, for the log.
			counted := map[osdp.DropReason]bool{
				osdp.DropGarbage: tt.stats.Garbage > 0, osdp.DropBadCRC: tt.stats.BadCRC > 0,
				osdp.DropBadLength: tt.stats.BadLength > 0, osdp.DropTruncated: tt.stats.Truncated > 0,
				osdp.DropUnsupported: tt.stats.Unsupported > 0,
			}
			reported := map[osdp.DropReason]bool{}
			for r := range counted {
				reported[r] = false
			}
			for _, r := range drops {
				reported[r] = true
			}
			require.Equal(t, counted, reported)
		})
	}
}

func splitBytes(b []byte) [][]byte {
	chunks := make([][]byte, len(b))
	for i := range b {
		chunks[i] = b[i : i+1]
	}
	return chunks
}

func TestDecodedFrameDataDoesNotChangeWhenMoreBytesArrive(t *testing.T) {
	t.Parallel()
	raw := goldenBytes(t, "raw_h10301_123_4567_from_1_seq2")
	var d osdp.Decoder
	frames := d.Feed(join(raw, raw[:8]))
	require.Len(t, frames, 1)
	before := append([]byte(nil), frames[0].Data...)
	d.Feed(join(raw[8:], raw))
	require.Equal(t, before, frames[0].Data)
}
