// Package osdp is the control-panel (CP) side of SIA OSDP v2.2 over RS-485,
// without secure channel: a pure frame codec and the bus driver that polls
// readers (PDs, "peripheral devices") with it.
//
// # Codec
//
// [Frame] is one packet: SOM 0x53, address (bit 7 set on PD replies), a
// 16-bit little-endian length of the whole packet, a control byte (sequence
// number, CRC or checksum, security block), the command or reply code, its
// data and the check characters. [Frame.Encode] writes one and [ParseFrame]
// reads one; a [Decoder] finds frames in a byte stream, drops what is not an
// intact frame and counts why, so that line noise shows up in metrics rather
// than as a mystery. Messages ([Poll], [LED], [Raw], …) implement [Message]
// and have their own parsers. Nothing here does I/O or imports a database.
//
// We always send CRC-16 (CRC-16/AUG-CCITT: polynomial 0x1021, initial value
// 0x1D0F, no reflection, sent low byte first) and accept replies with the
// older 8-bit checksum, because some readers in the field still use it.
// Frames with a security block are dropped as unsupported with an error
// that says so: a reader configured for secure channel must be switched to
// plain mode before it works with Lintel.
//
// # Bus
//
// [Bus] drives several PDs on one half-duplex line: one command in flight at
// a time, polling each PD every [Config.PollInterval], retransmitting with
// the same sequence number when a reply is lost, declaring a PD offline
// after [Config.OfflineAfter] of silence. Card reads, keypad entries,
// status changes and refusals come out of [Bus.Events]; [Bus.Grant] and
// [Bus.Deny] go in. The bus never opens a device: [Bus.Run] gets the port
// from its caller and returns when the port fails, so the caller owns
// reopening and backoff. [CardFromRaw] turns a card read into the canonical
// card ID of [github.com/lintel/lintel/internal/cardid].
//
// The PD simulator in [github.com/lintel/lintel/readers/osdp/osdptest]
// answers like a reader on the other end of a pseudo-terminal, for tests.
package osdp
