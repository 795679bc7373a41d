// Package serialport opens the serial ports that door readers hang off and
// keeps them open across unplugging.
//
// Readers reach Lintel through USB-serial adapters that get unplugged,
// re-enumerated and power-cycled. The serial library underneath
// (github.com/tarm/serial) has two traps on Linux that this package hides:
//
//   - A read timeout and a hang-up both come back as (0, io.EOF). [Port.Read]
//     turns a timeout into (0, nil) — "nothing yet" — and a hang-up, a
//     vanished device node or an I/O error into [ErrPortGone], so a consumer
//     knows when to stop waiting on a dead adapter.
//   - The file is in blocking mode, so a pending read holds the descriptor
//     until the kernel returns. Every port is therefore opened with a read
//     timeout (default 100 ms): reads, and with them shutdown, are always
//     bounded.
//
// [Supervisor] runs a consumer against a port and, when the port goes away,
// reopens it with exponential backoff. Configure the device by a stable path
// such as /dev/serial/by-id/…: udev points that symlink at whatever
// /dev/ttyUSBn the adapter gets when it comes back.
//
// The decoders that turn a reader's bytes into card numbers live in sibling
// packages (em4100, lineproto) and know nothing about ports; [Pump] feeds
// them.
package serialport
