// Package accesslist is a door gateway's copy of its organisation's access
// list: what lets a gateway decide at the door by itself, within
// microseconds, and keep deciding while the server is unreachable.
//
// The gateway fills a [List] from the server's accessList feed: the pages of
// a full sync go to [List.ReplaceAll] in one call, which swaps the new index
// in at once, so a card presented meanwhile is decided against the old list
// or the new one, never half of each. Delta pages go to [List.Apply] in feed
// order, the revocation feed to [List.ApplyRevocations], and the published
// issuing keys to [List.SetKeys]. Each call stores the cursor to resume
// from.
//
// [List.DecideCard] answers for a card number read at a door, and
// [List.DecideCode] for a rotating wallet code scanned from a phone: the
// code is verified with [credentials.Verifier] (signature, time window,
// device signature, revocation, replay), then the record it names is
// looked up, because the record's state as the server last said it wins
// over a credential that may have been issued long ago.
//
// [List.Save] writes a snapshot that [Load] reads back when the gateway
// starts without a server. Snapshots are written to a temporary file that
// is synced and renamed over the old one, so a power cut leaves either the
// old snapshot or the new one; a checksum covers the whole file, so a
// damaged snapshot is refused rather than half believed.
package accesslist
