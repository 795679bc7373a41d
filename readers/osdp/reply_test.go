package osdp_test

import (
	"testing"

	"github.com/lintel/lintel/readers/osdp"
	"github.com/stretchr/testify/require"
)

func reply(code byte, data ...byte) osdp.Frame {
	return osdp.Frame{Addr: 1, Reply: true, Seq: 1, Code: code, Data: data}
}

func TestParseReplyReadsWhatReadersSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame osdp.Frame
		want  osdp.Message
	}{
		{"a 26-bit card read keeps its bits in the order received",
			reply(osdp.ReplyRaw, 0x00, 0x01, 26, 0x00, 0xBD, 0x88, 0xEB, 0x80),
			osdp.Raw{Reader: 0, Format: osdp.RawWiegand, Bits: bits(h10301)}},
		{"a card read on the second reader names it",
			reply(osdp.ReplyRaw, 0x01, 0x00, 8, 0x00, 0xA5),
			osdp.Raw{Reader: 1, Format: osdp.RawUnspecified, Bits: bits("10100101")}},
		{"the star key, sent as DEL, reads as *, and the hash key, sent as CR, as #",
			reply(osdp.ReplyKeypad, 0x00, 3, 0x7F, '5', 0x0D),
			osdp.KeypadReply{Reader: 0, Digits: "*5#"}},
		{"keys some readers send as plain ASCII read as themselves",
			reply(osdp.ReplyKeypad, 0x00, 2, '*', '#'),
			osdp.KeypadReply{Reader: 0, Digits: "*#"}},
		{"a NAK keeps its reason and detail",
			reply(osdp.ReplyNak, 0x09, 0x01),
			osdp.NakReply{Reason: osdp.NakUnableToProcess, Detail: []byte{0x01}}},
		{"the serial number is little-endian",
			reply(osdp.ReplyPDID, 0x5C, 0x26, 0x23, 0x07, 0x01, 0x04, 0x03, 0x02, 0x01, 0x02, 0x10, 0x05),
			osdp.PDID{Vendor: [3]byte{0x5C, 0x26, 0x23}, Model: 7, Version: 1, Serial: 0x01020304, Firmware: [3]byte{2, 16, 5}}},
		{"a reply this CP does not use is passed on as other",
			reply(osdp.ReplyCom, 0x05, 0x80, 0x25, 0x00, 0x00),
			osdp.Other{Op: osdp.ReplyCom, Data: []byte{0x05, 0x80, 0x25, 0x00, 0x00}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := osdp.ParseReply(tt.frame)
			require.NoError(t, err)
			require.Equal(t, tt.want, m)
		})
	}
}

func TestParseReplyRejectsMalformedData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame osdp.Frame
		err   string
	}{
		{"a card read with fewer data bytes than its bit count needs",
			reply(osdp.ReplyRaw, 0x00, 0x01, 26, 0x00, 0xBD, 0x88, 0xEB), "osdp_RAW of 26 bits has 3 data bytes, want 4"},
		{"a card read with no bits", reply(osdp.ReplyRaw, 0x00, 0x01, 0, 0), "no bits"},
		{"a keypad entry whose count disagrees with its keys",
			reply(osdp.ReplyKeypad, 0x00, 3, '1', '2'), "not reader, count and that many keys"},
		{"a keypad entry with a control character", reply(osdp.ReplyKeypad, 0x00, 1, 0x01), "key code 0x01"},
		{"a PD ID of the wrong size", reply(osdp.ReplyPDID, 1, 2, 3), "osdp_PDID data is 3 bytes, want 12"},
		{"capabilities not in threes", reply(osdp.ReplyPDCap, 1, 2), "non-zero multiple of 3"},
		{"a NAK without a reason", reply(osdp.ReplyNak), "no error code"},
		{"an ACK with data", reply(osdp.ReplyAck, 0), "osdp_ACK data is 1 bytes, want 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := osdp.ParseReply(tt.frame)
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestCommandParsersRejectWrongSizes(t *testing.T) {
	t.Parallel()
	_, err := osdp.ParseLED(make([]byte, 13))
	require.ErrorContains(t, err, "multiple of 14")
	_, err = osdp.ParseOutput(make([]byte, 5))
	require.ErrorContains(t, err, "multiple of 4")
	_, err = osdp.ParseBuzzer(make([]byte, 4))
	require.ErrorContains(t, err, "want 5")
	leds, err := osdp.ParseLED(append(osdp.LEDGrant(0).AppendData(nil), osdp.LEDDeny().AppendData(nil)...))
	require.NoError(t, err)
	require.Len(t, leds, 2, "one osdp_LED may carry several records")
}
