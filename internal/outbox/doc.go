// Package outbox is Lintel's transactional e-mail: messages are written
// into outbox_messages in the same transaction as the business change that
// causes them, so an e-mail exists if and only if that change committed, and
// a River job sends them over SMTP afterwards.
//
// A body may contain LinkMarker where a secret belongs (an invitation link).
// The secret is never stored in clear: it is sealed with the master key,
// bound to the message's ID, substituted for the marker only while the
// message is composed for sending, and erased once the message is sent,
// failed or cancelled.
//
// Sending claims one due message at a time with FOR UPDATE SKIP LOCKED, so
// any number of replicas may send at once and none sends a message another
// is sending or has sent. Temporary failures (network, timeouts, 4xx
// replies, and whatever concerns the server rather than the message: no
// STARTTLS, an untrusted certificate, refused AUTH, a refused sender) are
// retried with exponential backoff; permanent ones (5xx replies to the
// recipient or the content) end in FAILED.
//
// Without an SMTP server (the default, for development) messages are HELD:
// the server log shows each one, with its link, and `lintel outbox --links`
// lists them.
package outbox
