// Package eventqueue is a gateway's durable queue of access events: every
// decision at a door is written here before it is shipped to the server,
// so that nothing is lost to a server outage, a gateway restart, or a
// power cut.
//
// Events are appended to segment files (<sequence>.seg, 16 hex digits)
// as records of
//
//	uint32 length | uint32 CRC-32C of length and payload | payload
//
// and [Queue.Append] returns only once its record is on disk (fsync). Many
// doors appending at once share one fsync: while one is in progress, the
// next records are written and then synced together ("group commit").
//
// The shipper reads the oldest events with [Queue.Peek], sends them, and
// acknowledges them with [Queue.Ack], which durably records how far the
// server has them in the file "acked" (two checksummed slots written in
// turn, so a torn write of one leaves the other). Segments wholly
// acknowledged are deleted.
//
// Delivery is at least once: a crash after the server took a batch and
// before Ack returned delivers that batch again after restart. The server
// stores events by ID (reportAccessEvents is idempotent), so this creates
// no duplicates there; an event is never lost, and never reported under
// two IDs, because its ID is fixed when it is appended.
//
// A power cut during a write can leave the last record of the last
// segment half written. [Open] checks every record's length and checksum,
// drops such a torn tail (truncating the file), and keeps everything
// before it. One process at a time may use a directory.
package eventqueue
