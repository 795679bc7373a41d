package credentials

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Reason says why a credential or code was rejected; gateways log it and
// show it on the console.
type Reason string

// The reasons, in the order the checks run.
const (
	// BadSignature: malformed, signed with another algorithm or an unknown
	// or foreign key, tampered with, meant for another audience or
	// organisation, or a device signature that does not verify.
	BadSignature Reason = "BAD_SIGNATURE"
	NotYetValid  Reason = "NOT_YET_VALID"
	Expired      Reason = "EXPIRED"
	Revoked      Reason = "REVOKED"
	// StaleCode: the code's time is outside the code window.
	StaleCode Reason = "STALE_CODE"
	// Replayed: this code, or a newer one of the same credential, was
	// accepted before.
	Replayed Reason = "REPLAYED"
)

// Rejection is the error a Verifier returns for a credential or code that
// does not let anyone in. Any other error means the check itself failed
// (the database did not answer).
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string {
	return "credential rejected: " + string(r.Reason) + ": " + r.Detail
}

// ReasonOf returns the reason of the Rejection in err's chain, or "".
func ReasonOf(err error) Reason {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// PublicKey is an issuing key's public half as verifiers see it.
type PublicKey struct {
	Kid string
	// OrgID is the key's organisation; zero when the key came from a JWKS,
	// which does not say.
	OrgID   uuid.UUID
	Key     ed25519.PublicKey
	Retired bool
}

// KeySet finds issuing keys by kid.
type KeySet interface {
	Key(ctx context.Context, kid string) (PublicKey, bool, error)
}

// RevocationChecker tells whether a credential no longer counts.
type RevocationChecker interface {
	Revoked(ctx context.Context, credentialID uuid.UUID) (bool, error)
}

// Verified is a credential, or the credential of a code, that passed.
type Verified struct {
	Claims
	Kid string
	// CodeTime is the time the code was signed at (VerifyCode only).
	CodeTime time.Time
}

// Default windows.
const (
	DefaultWindow = 30 * time.Second
	DefaultSkew   = 5 * time.Second
	// DefaultMaxReplayEntries bounds the replay cache: about 100 MB at
	// most.
	DefaultMaxReplayEntries = 1 << 20
)

// Verifier checks credentials and rotating codes: the one implementation
// the server and the door gateways share. Set its fields before the first
// call; it is safe for concurrent use after that. It must not be copied.
type Verifier struct {
	Keys        KeySet
	Revocations RevocationChecker
	// Audience is the aud every credential must name.
	Audience string
	// Issuer, when set, is the iss every credential must name.
	Issuer string
	// OrgID, when set, is the only organisation whose credentials pass. A
	// gateway must set it: keys from a JWKS do not carry their
	// organisation.
	OrgID uuid.UUID
	// Window is how old a code may be (DefaultWindow when zero).
	Window time.Duration
	// Skew is the clock difference tolerated between phone, server and
	// door (DefaultSkew when zero), both for a code's time and for nbf and
	// exp.
	Skew time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// MaxReplayEntries caps the replay cache (DefaultMaxReplayEntries when
	// zero); past it, the oldest entries go first.
	MaxReplayEntries int

	replayOnce sync.Once
	replay     *replayCache
}

// NewVerifier returns a Verifier with the default window and skew.
func NewVerifier(keys KeySet, revocations RevocationChecker, audience string) *Verifier {
	return &Verifier{Keys: keys, Revocations: revocations, Audience: audience}
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) window() time.Duration {
	if v.Window > 0 {
		return v.Window
	}
	return DefaultWindow
}

func (v *Verifier) skew() time.Duration {
	if v.Skew > 0 {
		return v.Skew
	}
	return DefaultSkew
}

func (v *Verifier) replays() *replayCache {
	v.replayOnce.Do(func() {
		limit := v.MaxReplayEntries
		if limit <= 0 {
			limit = DefaultMaxReplayEntries
		}
		v.replay = newReplayCache(limit)
	})
	return v.replay
}

// VerifyCredential checks a credential on its own: signature, audience,
// organisation, validity period and revocation. The server uses it where
// no door is involved.
func (v *Verifier) VerifyCredential(ctx context.Context, jwt string) (*Verified, error) {
	if len(jwt) > MaxCodeLength {
		return nil, reject(BadSignature, "the credential is too long")
	}
	return v.verifyCredential(ctx, jwt, v.now())
}

// VerifyCode checks a rotating code: its credential as VerifyCredential
// does, then that the code is recent, signed by the credential's device
// key, and not seen before. A code is accepted once.
func (v *Verifier) VerifyCode(ctx context.Context, s string) (*Verified, error) {
	c, err := parseCode(s)
	if err != nil {
		return nil, reject(BadSignature, "%v", err)
	}
	now := v.now()
	ver, err := v.verifyCredential(ctx, c.credential, now)
	if err != nil {
		return nil, err
	}
	ts := time.Unix(c.ts, 0).UTC()
	if ts.Before(now.Add(-v.window())) {
		return nil, reject(StaleCode, "the code is %s old (at most %s)", now.Sub(ts).Truncate(time.Second), v.window())
	}
	if ts.After(now.Add(v.skew())) {
		return nil, reject(StaleCode, "the code is %s in the future (at most %s)", ts.Sub(now).Truncate(time.Second), v.skew())
	}
	device, err := ver.Device.PublicKey()
	if err != nil {
		return nil, reject(BadSignature, "the credential's device key: %v", err)
	}
	h := sha256.Sum256([]byte(c.signed))
	r, sv := new(big.Int).SetBytes(c.sig[:32]), new(big.Int).SetBytes(c.sig[32:])
	if !ecdsa.Verify(device, h[:], r, sv) {
		return nil, reject(BadSignature, "the code is not signed by the credential's device")
	}
	horizon := now.Add(-v.window() - v.skew()).Unix()
	if !v.replays().accept(ver.ID, c.ts, horizon) {
		return nil, reject(Replayed, "this code, or a newer one of the same credential, was accepted before")
	}
	ver.CodeTime = ts
	return ver, nil
}

func (v *Verifier) verifyCredential(ctx context.Context, jwt string, now time.Time) (*Verified, error) {
	if v.Keys == nil || v.Revocations == nil {
		return nil, errors.New("credentials: the verifier has no key set or no revocation checker")
	}
	// Header, signature, then claims: nothing the signature does not
	// cover is believed.
	dot1 := strings.IndexByte(jwt, '.')
	dot2 := dot1 + 1 + strings.IndexByte(jwt[dot1+1:], '.')
	if dot1 < 0 || dot2 <= dot1 || strings.IndexByte(jwt[dot2+1:], '.') >= 0 {
		return nil, reject(BadSignature, "the credential is not a compact JWS")
	}
	var h header
	if err := decodeJSON(jwt[:dot1], &h); err != nil {
		return nil, reject(BadSignature, "the credential's header: %v", err)
	}
	if h.Alg != Algorithm {
		return nil, reject(BadSignature, "the credential is signed with %q, not %s", h.Alg, Algorithm)
	}
	if h.Crit != nil {
		return nil, reject(BadSignature, "the credential has critical header parameters")
	}
	key, ok, err := v.Keys.Key(ctx, h.Kid)
	if err != nil {
		return nil, fmt.Errorf("credentials: find key %q: %w", h.Kid, err)
	}
	if !ok {
		return nil, reject(BadSignature, "unknown issuing key %q", h.Kid)
	}
	var sig [ed25519.SignatureSize]byte
	if b64.DecodedLen(len(jwt)-dot2-1) != len(sig) {
		return nil, reject(BadSignature, "the credential's signature is not %d bytes", len(sig))
	}
	if n, err := b64.Decode(sig[:], []byte(jwt[dot2+1:])); err != nil || n != len(sig) {
		return nil, reject(BadSignature, "the credential's signature is not base64url")
	}
	if len(key.Key) != ed25519.PublicKeySize || !ed25519.Verify(key.Key, []byte(jwt[:dot2]), sig[:]) {
		return nil, reject(BadSignature, "the credential's signature does not verify")
	}

	var p receivedPayload
	if err := decodeJSON(jwt[dot1+1:dot2], &p); err != nil {
		return nil, reject(BadSignature, "the credential's claims: %v", err)
	}
	if p.Jti == nil || p.Org == nil || p.Sub == nil || p.Tpl == nil || p.Nbf == nil || p.Exp == nil || p.Cnf == nil {
		return nil, reject(BadSignature, "the credential lacks jti, org, sub, tpl, nbf, exp or cnf")
	}
	if !p.Aud.contains(v.Audience) {
		return nil, reject(BadSignature, "the credential is meant for %q, not %q", strings.Join(p.Aud, ", "), v.Audience)
	}
	if v.Issuer != "" && p.Iss != v.Issuer {
		return nil, reject(BadSignature, "the credential is issued by %q, not %q", p.Iss, v.Issuer)
	}
	if key.OrgID != uuid.Nil && key.OrgID != *p.Org {
		return nil, reject(BadSignature, "the credential names another organisation than its key's")
	}
	if v.OrgID != uuid.Nil && *p.Org != v.OrgID {
		return nil, reject(BadSignature, "the credential belongs to another organisation")
	}
	nbf, exp := time.Unix(*p.Nbf, 0).UTC(), time.Unix(*p.Exp, 0).UTC()
	if now.Add(v.skew()).Before(nbf) {
		return nil, reject(NotYetValid, "the credential is valid from %s", nbf.Format(time.RFC3339))
	}
	if !now.Add(-v.skew()).Before(exp) {
		return nil, reject(Expired, "the credential expired at %s", exp.Format(time.RFC3339))
	}
	revoked, err := v.Revocations.Revoked(ctx, *p.Jti)
	if err != nil {
		return nil, fmt.Errorf("credentials: check revocation of %s: %w", *p.Jti, err)
	}
	if revoked {
		return nil, reject(Revoked, "the credential has been revoked")
	}
	return &Verified{Kid: key.Kid, Claims: Claims{ID: *p.Jti, Issuer: p.Iss, Audience: v.Audience, OrgID: *p.Org,
		RecordID: *p.Sub, TemplateID: *p.Tpl, CardID: p.Cid, IssuedAt: time.Unix(p.Iat, 0).UTC(), NotBefore: nbf,
		ExpiresAt: exp, Device: p.Cnf.JWK}}, nil
}

// decodeJSON decodes one base64url JSON object.
func decodeJSON(s string, dst any) error {
	raw, err := b64.DecodeString(s)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errors.New("not a JSON object of the expected claims")
	}
	return nil
}
