package osdp_test

import (
	"bytes"
	"testing"

	"github.com/lintel/lintel/readers/osdp"
	"github.com/stretchr/testify/require"
)

// seedFrames adds every golden and captured frame, alone and mixed with
// noise, to a fuzz corpus.
func seedFrames(f *testing.F, add func(b []byte)) {
	for _, file := range []string{"testdata/golden.txt", "testdata/captured.txt"} {
		for _, nf := range readFrames(f, file) {
			add(nf.bytes)
			add(append([]byte{0xFF, 0x00, 0x53}, nf.bytes...))
			add(nf.bytes[:len(nf.bytes)/2])
		}
	}
}

// FuzzDecoder feeds arbitrary line bytes in arbitrary chunks, with silence
// (Reset) every few chunks. The decoder must not panic, must not hold more
// than one frame's bytes, and every frame it returns must be bytes that
// were on the line, in order, re-encoding exactly.
func FuzzDecoder(f *testing.F) {
	seedFrames(f, func(b []byte) { f.Add(b, byte(0), byte(0)) })
	f.Add(bytes.Repeat([]byte{0x53}, 20), byte(3), byte(2))
	f.Fuzz(func(t *testing.T, line []byte, chunk, resetEvery byte) {
		var d osdp.Decoder
		var frames []osdp.Frame
		size := int(chunk)
		if size == 0 {
			size = len(line) + 1
		}
		for i, n := 0, 0; i < len(line); i, n = i+size, n+1 {
			frames = append(frames, d.Feed(line[i:min(i+size, len(line))])...)
			require.LessOrEqual(t, d.Buffered(), osdp.MaxFrameLen)
			if resetEvery > 0 && n%int(resetEvery) == 0 {
				d.Reset()
			}
		}
		rest := line
		for _, fr := range frames {
			enc, err := fr.Encode()
			require.NoError(t, err)
			at := bytes.Index(rest, enc)
			require.GreaterOrEqual(t, at, 0, "frame % X was not on the line", enc)
			rest = rest[at+len(enc):]
			again, err := osdp.ParseFrame(enc)
			require.NoError(t, err)
			require.Equal(t, fr, again)
		}
	})
}

// FuzzParseReply checks that reply parsing never panics and that whatever
// it accepts encodes back to data that parses to the same value.
func FuzzParseReply(f *testing.F) {
	seedFrames(f, func(b []byte) {
		if fr, err := osdp.ParseFrame(b); err == nil {
			f.Add(fr.Code, fr.Data)
		}
	})
	f.Fuzz(func(t *testing.T, code byte, data []byte) {
		m, err := osdp.ParseReply(osdp.Frame{Reply: true, Code: code, Data: data})
		if err != nil {
			return
		}
		require.Equal(t, code, m.Code())
		again, err := osdp.ParseReply(osdp.Frame{Reply: true, Code: code, Data: m.AppendData(nil)})
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}

// FuzzParseCommand does the same for the commands a PD reads, which the
// simulator relies on.
func FuzzParseCommand(f *testing.F) {
	seedFrames(f, func(b []byte) {
		if fr, err := osdp.ParseFrame(b); err == nil {
			f.Add(fr.Code, fr.Data)
		}
	})
	f.Fuzz(func(t *testing.T, code byte, data []byte) {
		var enc []byte
		switch code {
		case osdp.CmdLED:
			leds, err := osdp.ParseLED(data)
			if err != nil {
				return
			}
			for _, l := range leds {
				enc = l.AppendData(enc)
			}
		case osdp.CmdOut:
			outs, err := osdp.ParseOutput(data)
			if err != nil {
				return
			}
			for _, o := range outs {
				enc = o.AppendData(enc)
			}
		case osdp.CmdBuz:
			b, err := osdp.ParseBuzzer(data)
			if err != nil {
				return
			}
			enc = b.AppendData(nil)
		default:
			return
		}
		require.Equal(t, data, enc, "records re-encode byte for byte")
	})
}
