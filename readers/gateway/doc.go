// Package gateway is `lintel gateway`: the process at a site that drives
// serial door readers and decides at the door from its own copy of the
// access list, so that doors keep working while the server is unreachable.
//
// A [Gateway] wires together:
//
//   - the readers: for each configured reader, its protocol decoder
//     (readers/lineproto for ascii readers and qr scanners,
//     readers/em4100, readers/osdp for supervised RS-485 readers, several
//     to a line) over a serial port that readers/serialport reopens when
//     it is unplugged;
//   - the decision: a lockout check ([ratelimit]), then the access list
//     ([accesslist]) for a card number or a wallet code, then feedback to
//     the reader where its protocol has a channel for it (OSDP: relay
//     pulse, LED and buzzer), then an access event in the durable queue
//     ([eventqueue]);
//   - the [Syncer], which keeps the access list in step with the server
//     (pushed over the accessListChanged subscription, polled as a
//     fallback) and writes it to a snapshot that a restart without the
//     server starts from;
//   - the [Shipper], which sends queued events to the server in batches
//     and removes them once the server has them; the server stores each
//     event ID once, so every event arrives exactly once;
//   - heartbeats with each reader's online state, and Prometheus metrics.
//
// [LoadConfig] reads the YAML configuration; [Run] runs a gateway until its
// context ends.
package gateway
