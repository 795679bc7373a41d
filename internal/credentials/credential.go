package credentials

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// b64 encodes JOSE's base64url without padding; decoding is strict, so
// every value has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Algorithm is the only JWS algorithm credentials use and accept.
const Algorithm = "EdDSA"

// Claims is what a credential says.
type Claims struct {
	ID         uuid.UUID // jti: the credentials row
	Issuer     string    // iss
	Audience   string    // aud
	OrgID      uuid.UUID // org
	RecordID   uuid.UUID // sub
	TemplateID uuid.UUID // tpl
	CardID     string    // cid: the canonical card ID
	IssuedAt   time.Time // iat
	NotBefore  time.Time // nbf
	ExpiresAt  time.Time // exp
	Device     DeviceKey // cnf.jwk: the phone's P-256 public key
}

// DeviceKey is a phone's P-256 public key as a JWK, normalised to the four
// members that define it.
type DeviceKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseDeviceKey reads a JWK as WebCrypto exports an ECDSA P-256 public key
// (crypto.subtle.exportKey('jwk', publicKey)). Members other than kty, crv,
// x and y (key_ops, ext, alg) are ignored; a private key (d) is refused.
func ParseDeviceKey(jwkJSON string) (DeviceKey, error) {
	var raw struct {
		Kty *string `json:"kty"`
		Crv *string `json:"crv"`
		X   *string `json:"x"`
		Y   *string `json:"y"`
		D   *string `json:"d"`
	}
	if err := json.Unmarshal([]byte(jwkJSON), &raw); err != nil {
		return DeviceKey{}, fmt.Errorf("the device key is not a JSON Web Key: %v", err)
	}
	switch {
	case raw.D != nil:
		return DeviceKey{}, errors.New("the device key contains its private part (d): send the public key only")
	case raw.Kty == nil:
		return DeviceKey{}, errors.New(`the device key has no kty: want "EC"`)
	case *raw.Kty != "EC":
		return DeviceKey{}, fmt.Errorf(`the device key's kty is %q: want "EC"`, *raw.Kty)
	case raw.Crv == nil:
		return DeviceKey{}, errors.New(`the device key has no crv: want "P-256"`)
	case *raw.Crv != "P-256":
		return DeviceKey{}, fmt.Errorf(`the device key's crv is %q: want "P-256"`, *raw.Crv)
	case raw.X == nil || raw.Y == nil:
		return DeviceKey{}, errors.New("the device key lacks its x or y coordinate")
	}
	k := DeviceKey{Kty: "EC", Crv: "P-256", X: *raw.X, Y: *raw.Y}
	if _, err := k.PublicKey(); err != nil {
		return DeviceKey{}, err
	}
	return k, nil
}

// PublicKey returns the ECDSA key, checking that it is a point on P-256.
func (k DeviceKey) PublicKey() (*ecdsa.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != "P-256" {
		return nil, fmt.Errorf("the device key is %s %s: want EC P-256", k.Kty, k.Crv)
	}
	var point [65]byte
	point[0] = 4 // uncompressed
	if err := decodeCoordinate(point[1:33], "x", k.X); err != nil {
		return nil, err
	}
	if err := decodeCoordinate(point[33:], "y", k.Y); err != nil {
		return nil, err
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
	if err != nil {
		return nil, errors.New("the device key's x and y are not a point on P-256")
	}
	return pub, nil
}

func decodeCoordinate(dst []byte, name, s string) error {
	if b64.DecodedLen(len(s)) != 32 {
		return fmt.Errorf("the device key's %s must be 32 bytes in base64url (43 characters), got %d characters", name, len(s))
	}
	if n, err := b64.Decode(dst, []byte(s)); err != nil || n != 32 {
		return fmt.Errorf("the device key's %s is not base64url", name)
	}
	return nil
}

// deviceKeyOf returns the normalised JWK of an ECDSA P-256 public key.
func deviceKeyOf(pub *ecdsa.PublicKey) (DeviceKey, error) {
	b, err := pub.Bytes()
	if err != nil || len(b) != 65 || pub.Curve != elliptic.P256() {
		return DeviceKey{}, errors.New("credentials: device key must be ECDSA P-256")
	}
	return DeviceKey{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(b[1:33]), Y: b64.EncodeToString(b[33:])}, nil
}

// NewDeviceKey returns the DeviceKey of pub, for tests, benchmarks and
// gateway simulators that hold the phone's private key.
func NewDeviceKey(pub *ecdsa.PublicKey) (DeviceKey, error) { return deviceKeyOf(pub) }

// SigningKey is an organisation's issuing key, opened: it signs
// credentials.
type SigningKey struct {
	Kid   string
	OrgID uuid.UUID
	priv  ed25519.PrivateKey
	// header is the base64url JOSE header, the same for every credential
	// this key signs.
	header string
}

func newSigningKey(kid string, orgID uuid.UUID, priv ed25519.PrivateKey) *SigningKey {
	h, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}{Algorithm, "JWT", kid})
	return &SigningKey{Kid: kid, OrgID: orgID, priv: priv, header: b64.EncodeToString(h)}
}

// NewSigningKey returns a fresh key that lives only in memory, for tests,
// benchmarks and gateway simulators; the server's keys come from Keys.
func NewSigningKey(orgID uuid.UUID) (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return newSigningKey(newKid(), orgID, priv), nil
}

// PublicKey returns the key's public half.
func (k *SigningKey) PublicKey() PublicKey {
	return PublicKey{Kid: k.Kid, OrgID: k.OrgID, Key: k.priv.Public().(ed25519.PublicKey)}
}

// newKid returns a random key ID: 16 bytes, base64url.
func newKid() string {
	return b64.EncodeToString(randomBytes(16))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("credentials: no randomness: " + err.Error())
	}
	return b
}

// payload is the JWT claims set as it is signed.
type payload struct {
	Iss string    `json:"iss"`
	Sub uuid.UUID `json:"sub"`
	Aud string    `json:"aud"`
	Iat int64     `json:"iat"`
	Nbf int64     `json:"nbf"`
	Exp int64     `json:"exp"`
	Jti uuid.UUID `json:"jti"`
	Org uuid.UUID `json:"org"`
	Tpl uuid.UUID `json:"tpl"`
	Cid string    `json:"cid"`
	Cnf cnf       `json:"cnf"`
}

type cnf struct {
	JWK DeviceKey `json:"jwk"`
}

// Issue signs c with key and returns the credential, a compact JWS.
func Issue(key *SigningKey, c Claims) (string, error) {
	switch {
	case key == nil || key.priv == nil:
		return "", errors.New("credentials: no signing key")
	case c.OrgID != key.OrgID:
		return "", fmt.Errorf("credentials: organisation %s cannot sign with the key of %s", c.OrgID, key.OrgID)
	case c.ID == uuid.Nil:
		return "", errors.New("credentials: a credential needs an ID (jti)")
	case c.IssuedAt.IsZero() || c.NotBefore.IsZero() || c.ExpiresAt.IsZero():
		return "", errors.New("credentials: a credential needs iat, nbf and exp")
	case !c.ExpiresAt.After(c.NotBefore):
		return "", errors.New("credentials: the credential expires before it becomes valid")
	}
	if _, err := c.Device.PublicKey(); err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	body, err := json.Marshal(payload{Iss: c.Issuer, Sub: c.RecordID, Aud: c.Audience, Iat: c.IssuedAt.Unix(),
		Nbf: c.NotBefore.Unix(), Exp: c.ExpiresAt.Unix(), Jti: c.ID, Org: c.OrgID, Tpl: c.TemplateID, Cid: c.CardID,
		Cnf: cnf{JWK: DeviceKey{Kty: "EC", Crv: "P-256", X: c.Device.X, Y: c.Device.Y}}})
	if err != nil {
		return "", fmt.Errorf("credentials: encode claims: %w", err)
	}
	n := len(key.header) + 1 + b64.EncodedLen(len(body))
	buf := make([]byte, n, n+1+b64.EncodedLen(ed25519.SignatureSize))
	copy(buf, key.header)
	buf[len(key.header)] = '.'
	b64.Encode(buf[len(key.header)+1:], body)
	sig := ed25519.Sign(key.priv, buf)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

// header is the JOSE header as read on verification.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// audience reads aud as RFC 7519 allows: a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]string)(a))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = audience{s}
	return nil
}

func (a audience) contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// receivedPayload is the claims set as read on verification: pointers tell
// a missing claim from a zero one.
type receivedPayload struct {
	Iss string     `json:"iss"`
	Sub *uuid.UUID `json:"sub"`
	Aud audience   `json:"aud"`
	Iat int64      `json:"iat"`
	Nbf *int64     `json:"nbf"`
	Exp *int64     `json:"exp"`
	Jti *uuid.UUID `json:"jti"`
	Org *uuid.UUID `json:"org"`
	Tpl *uuid.UUID `json:"tpl"`
	Cid string     `json:"cid"`
	Cnf *cnf       `json:"cnf"`
}
