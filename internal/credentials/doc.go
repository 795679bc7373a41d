// Package credentials issues and verifies Lintel's mobile credentials.
//
// A credential is a JWT (compact JWS) signed with its organisation's issuing
// key, Ed25519 ("alg":"EdDSA"), naming the record, its card ID and template,
// and holding the phone's P-256 public key in cnf.jwk. The private half of
// that device key never leaves the phone. At the door the phone shows a
// rotating code,
//
//	LC1.<credential>.<unix seconds>.<base64url(P-256 signature, r||s)>
//
// the signature covering everything before its last dot, so a screenshot
// of the code stops working within the code window, and a code is accepted
// once.
//
// The server (scanning consoles) and the door gateways verify with the same
// Verifier: the server with keys and revocations from the database
// (Keys.KeySet, NewDBRevocations), a gateway with keys from the published
// JWKS (ParseJWKS, StaticKeySet) and the revocation feed (RevocationSet).
//
// Issuing keys live in issuing_keys, their private halves sealed with the
// master key (internal/sealer) bound to their kid. Each organisation has one
// active key; a rotated key stays published until the credentials it
// signed have expired.
package credentials
