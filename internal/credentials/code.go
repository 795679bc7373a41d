package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"
)

// CodePrefix starts every rotating code, naming its format and version.
const CodePrefix = "LC1"

// MaxCodeLength bounds what VerifyCode reads; a credential is well under
// 2 KB.
const MaxCodeLength = 8192

// SignCode returns the rotating code a phone shows at ts for credential,
// signed with the device's P-256 private key exactly as the wallet page
// does with WebCrypto: ECDSA with SHA-256 over the ASCII bytes of
// "LC1.<credential>.<ts>", the signature as r||s (IEEE P1363, 64 bytes).
func SignCode(credential string, ts time.Time, device *ecdsa.PrivateKey) (string, error) {
	if device == nil || device.Curve != elliptic.P256() {
		return "", errors.New("credentials: the device key must be ECDSA P-256")
	}
	if ts.Unix() < 0 {
		return "", errors.New("credentials: a code's time cannot be before 1970")
	}
	msg := CodePrefix + "." + credential + "." + strconv.FormatInt(ts.Unix(), 10)
	h := sha256.Sum256([]byte(msg))
	r, s, err := ecdsa.Sign(rand.Reader, device, h[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return msg + "." + b64.EncodeToString(sig[:]), nil
}

// code is a rotating code taken apart.
type code struct {
	credential string
	ts         int64
	signed     string // what the device signed: everything before the last dot
	sig        [64]byte
}

// parseCode splits a code; it checks the form only, nothing cryptographic.
func parseCode(s string) (code, error) {
	if len(s) > MaxCodeLength {
		return code{}, errors.New("the code is too long")
	}
	rest, ok := strings.CutPrefix(s, CodePrefix+".")
	if !ok {
		return code{}, errors.New("not a Lintel code (it does not start with " + CodePrefix + ".)")
	}
	lastDot := strings.LastIndexByte(rest, '.')
	if lastDot < 0 {
		return code{}, errors.New("the code has no signature")
	}
	tsDot := strings.LastIndexByte(rest[:lastDot], '.')
	if tsDot < 0 {
		return code{}, errors.New("the code has no time")
	}
	c := code{credential: rest[:tsDot], signed: s[:len(CodePrefix)+1+lastDot]}
	ts := rest[tsDot+1 : lastDot]
	// Decimal digits, no sign, no leading zero: one spelling per second.
	if len(ts) == 0 || len(ts) > 12 || (ts[0] == '0' && len(ts) > 1) {
		return code{}, errors.New("the code's time is not a number of seconds")
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return code{}, errors.New("the code's time is not a number of seconds")
		}
	}
	c.ts, _ = strconv.ParseInt(ts, 10, 64)
	sig := rest[lastDot+1:]
	if b64.DecodedLen(len(sig)) != len(c.sig) {
		return code{}, errors.New("the device signature is not 64 bytes (ECDSA P-256 as r||s)")
	}
	if n, err := b64.Decode(c.sig[:], []byte(sig)); err != nil || n != len(c.sig) {
		return code{}, errors.New("the device signature is not base64url")
	}
	return c, nil
}
