package credentials

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const testAudience = "lintel-access"

// fixture is an organisation's key, a phone, and a door that trusts the key.
type fixture struct {
	now     time.Time
	key     *SigningKey
	device  *ecdsa.PrivateKey
	keys    *StaticKeySet
	revoked *RevocationSet
	v       *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key, err := NewSigningKey(uuid.New())
	require.NoError(t, err)
	f := &fixture{now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), key: key, device: newDevice(t),
		keys: NewStaticKeySet(key.PublicKey()), revoked: NewRevocationSet()}
	f.v = NewVerifier(f.keys, f.revoked, testAudience)
	f.v.Now = func() time.Time { return f.now }
	return f
}

func newDevice(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	d, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return d
}

// claims are a credential's claims, valid for a year from f.now.
func (f *fixture) claims(t testing.TB) Claims {
	t.Helper()
	dk, err := NewDeviceKey(&f.device.PublicKey)
	require.NoError(t, err)
	return Claims{ID: uuid.New(), Issuer: "https://lintel.example", Audience: testAudience, OrgID: f.key.OrgID,
		RecordID: uuid.New(), TemplateID: uuid.New(), CardID: "0042", IssuedAt: f.now, NotBefore: f.now,
		ExpiresAt: f.now.AddDate(1, 0, 0), Device: dk}
}

func (f *fixture) issue(t testing.TB, c Claims) string {
	t.Helper()
	jwt, err := Issue(f.key, c)
	require.NoError(t, err)
	return jwt
}

func (f *fixture) code(t testing.TB, jwt string, ts time.Time) string {
	t.Helper()
	code, err := SignCode(jwt, ts, f.device)
	require.NoError(t, err)
	return code
}

func requireReason(t *testing.T, want Reason, err error) {
	t.Helper()
	var rej *Rejection
	require.True(t, errors.As(err, &rej), "want a %s rejection, got %v", want, err)
	require.Equal(t, want, rej.Reason, "detail: %s", rej.Detail)
	require.NotEmpty(t, rej.Detail)
}

func TestAGoodCodeOpensTheDoorAndSaysWhoItIs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.claims(t)
	jwt := f.issue(t, c)
	code := f.code(t, jwt, f.now.Add(-3*time.Second))
	require.True(t, strings.HasPrefix(code, "LC1."+jwt+"."))

	got, err := f.v.VerifyCode(context.Background(), code)
	require.NoError(t, err)
	require.Equal(t, c.ID, got.ID)
	require.Equal(t, c.RecordID, got.RecordID)
	require.Equal(t, c.TemplateID, got.TemplateID)
	require.Equal(t, c.OrgID, got.OrgID)
	require.Equal(t, "0042", got.CardID)
	require.Equal(t, c.Device, got.Device)
	require.Equal(t, f.key.Kid, got.Kid)
	require.True(t, got.ExpiresAt.Equal(c.ExpiresAt))
	require.True(t, got.CodeTime.Equal(f.now.Add(-3*time.Second)))

	// The credential on its own, as the server checks it.
	cred, err := f.v.VerifyCredential(context.Background(), jwt)
	require.NoError(t, err)
	require.Equal(t, c.ID, cred.ID)
	require.True(t, cred.CodeTime.IsZero())
}

func TestTheCredentialIsAnEdDSAJWTWithTheDeviceKeyInCnf(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.claims(t)
	parts := strings.Split(f.issue(t, c), ".")
	require.Len(t, parts, 3)
	var h map[string]any
	require.NoError(t, json.Unmarshal(mustB64(t, parts[0]), &h))
	require.Equal(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": f.key.Kid}, h)
	var p map[string]any
	require.NoError(t, json.Unmarshal(mustB64(t, parts[1]), &p))
	require.Equal(t, c.RecordID.String(), p["sub"])
	require.Equal(t, c.ID.String(), p["jti"])
	require.Equal(t, c.OrgID.String(), p["org"])
	require.Equal(t, c.TemplateID.String(), p["tpl"])
	require.Equal(t, "0042", p["cid"])
	require.Equal(t, testAudience, p["aud"])
	require.Equal(t, float64(f.now.Unix()), p["nbf"])
	require.Equal(t, float64(c.ExpiresAt.Unix()), p["exp"])
	require.Equal(t, map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": c.Device.X, "y": c.Device.Y}}, p["cnf"])
	require.Len(t, mustB64(t, parts[2]), 64)
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

// webCryptoCode builds a code byte for byte as the wallet page does:
// crypto.subtle.sign({name: 'ECDSA', hash: 'SHA-256'}, key, ascii) returns
// r and s as two 32-byte big-endian numbers, which it base64url-encodes
// without padding.
func webCryptoCode(t *testing.T, device *ecdsa.PrivateKey, jwt string, ts int64) string {
	t.Helper()
	signed := "LC1." + jwt + "." + strconv.FormatInt(ts, 10)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, device, digest[:])
	require.NoError(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + strings.TrimRight(base64.URLEncoding.EncodeToString(sig), "=")
}

func TestACodeBuiltAsWebCryptoBuildsItVerifies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	jwt := f.issue(t, f.claims(t))
	// Many codes, so that r or s with leading zero bytes turn up too.
	for i := range 25 {
		code := webCryptoCode(t, f.device, jwt, f.now.Unix()-int64(i))
		_, err := f.v.VerifyCode(context.Background(), code)
		if i == 0 {
			require.NoError(t, err)
		} else {
			requireReason(t, Replayed, err) // older than the newest accepted
		}
	}
	// The same construction from a fresh phone, one code per credential.
	for range 40 {
		c := f.claims(t)
		_, err := f.v.VerifyCode(context.Background(), webCryptoCode(t, f.device, f.issue(t, c), f.now.Unix()))
		require.NoError(t, err)
	}
}

// sign assembles a JWS with any header and payload, signed by fn.
func sign(header, payload any, fn func(signingInput []byte) []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return in + "." + b64.EncodeToString(fn([]byte(in)))
}

func (f *fixture) payloadOf(t *testing.T, c Claims) map[string]any {
	t.Helper()
	var p map[string]any
	require.NoError(t, json.Unmarshal(mustB64(t, strings.Split(f.issue(t, c), ".")[1]), &p))
	return p
}

func TestEveryKindOfBadCodeIsRejectedWithItsReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	now := f.now
	good := func() (Claims, string) { c := f.claims(t); return c, f.issue(t, c) }

	otherOrg, err := NewSigningKey(uuid.New())
	require.NoError(t, err)
	f.keys.Replace([]PublicKey{f.key.PublicKey(), otherOrg.PublicKey()})

	cases := []struct {
		name string
		code func() string
		want Reason
	}{
		{"empty", func() string { return "" }, BadSignature},
		{"not a code", func() string { return "hello" }, BadSignature},
		{"the prefix only", func() string { return "LC1." }, BadSignature},
		{"another version", func() string { _, j := good(); return "LC2" + f.code(t, j, now)[3:] }, BadSignature},
		{"a time with a sign", func() string {
			_, j := good()
			c := f.code(t, j, now)
			return strings.Replace(c, "."+strconv.FormatInt(now.Unix(), 10)+".", ".+"+strconv.FormatInt(now.Unix(), 10)+".", 1)
		}, BadSignature},
		{"alg none", func() string {
			c := f.claims(t)
			jwt := sign(map[string]string{"alg": "none", "kid": f.key.Kid}, f.payloadOf(t, c), func([]byte) []byte { return nil })
			return f.code(t, jwt, now)
		}, BadSignature},
		{"HS256 with the public key as the secret", func() string {
			c := f.claims(t)
			jwt := sign(map[string]string{"alg": "HS256", "typ": "JWT", "kid": f.key.Kid}, f.payloadOf(t, c), func(in []byte) []byte {
				m := hmac.New(sha256.New, f.key.PublicKey().Key)
				m.Write(in)
				return m.Sum(nil)
			})
			return f.code(t, jwt, now)
		}, BadSignature},
		{"ES256 with the device's own key", func() string {
			c := f.claims(t)
			jwt := sign(map[string]string{"alg": "ES256", "typ": "JWT", "kid": f.key.Kid}, f.payloadOf(t, c), func(in []byte) []byte {
				d := sha256.Sum256(in)
				sig, _ := ecdsa.SignASN1(rand.Reader, f.device, d[:])
				return sig
			})
			return f.code(t, jwt, now)
		}, BadSignature},
		{"a tampered payload", func() string {
			c, j := good()
			p := f.payloadOf(t, c)
			p["cid"] = "9999"
			parts := strings.Split(j, ".")
			pb, _ := json.Marshal(p)
			return f.code(t, parts[0]+"."+b64.EncodeToString(pb)+"."+parts[2], now)
		}, BadSignature},
		{"an unknown kid", func() string {
			stranger, _ := NewSigningKey(f.key.OrgID)
			c := f.claims(t)
			j, _ := Issue(stranger, c)
			return f.code(t, j, now)
		}, BadSignature},
		{"another audience", func() string { c := f.claims(t); c.Audience = "other-door"; return f.code(t, f.issue(t, c), now) }, BadSignature},
		{"an org claim its key does not belong to", func() string {
			// The right key, claiming another organisation.
			c := f.claims(t)
			c.OrgID = otherOrg.OrgID
			forged := newSigningKey(f.key.Kid, otherOrg.OrgID, f.key.priv)
			j, err := Issue(forged, c)
			require.NoError(t, err)
			return f.code(t, j, now)
		}, BadSignature},
		{"not yet valid", func() string {
			c := f.claims(t)
			c.NotBefore = now.Add(time.Hour)
			return f.code(t, f.issue(t, c), now)
		}, NotYetValid},
		{"expired", func() string {
			c := f.claims(t)
			c.IssuedAt, c.NotBefore, c.ExpiresAt = now.AddDate(-1, 0, 0), now.AddDate(-1, 0, 0), now.Add(-time.Minute)
			return f.code(t, f.issue(t, c), now)
		}, Expired},
		{"revoked", func() string {
			c, j := good()
			f.revoked.Add(c.ID)
			return f.code(t, j, now)
		}, Revoked},
		{"a code 31 s old", func() string { _, j := good(); return f.code(t, j, now.Add(-31*time.Second)) }, StaleCode},
		{"a code 10 s in the future", func() string { _, j := good(); return f.code(t, j, now.Add(10*time.Second)) }, StaleCode},
		{"signed by another phone", func() string {
			_, j := good()
			c, err := SignCode(j, now, newDevice(t))
			require.NoError(t, err)
			return c
		}, BadSignature},
		{"a DER signature instead of r||s", func() string {
			_, j := good()
			signed := "LC1." + j + "." + strconv.FormatInt(now.Unix(), 10)
			d := sha256.Sum256([]byte(signed))
			der, err := ecdsa.SignASN1(rand.Reader, f.device, d[:])
			require.NoError(t, err)
			return signed + "." + b64.EncodeToString(der)
		}, BadSignature},
		{"a signature with padding", func() string { _, j := good(); return f.code(t, j, now) + "==" }, BadSignature},
		{"r||s of another message", func() string {
			_, j := good()
			a, b := f.code(t, j, now), f.code(t, j, now.Add(-time.Second))
			return a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
		}, BadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.VerifyCode(ctx, tc.code())
			requireReason(t, tc.want, err)
		})
	}
}

func TestTheClockIsForgivingByTheSkewOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.claims(t)
	c.NotBefore = f.now.Add(4 * time.Second) // a door whose clock is 4 s slow
	_, err := f.v.VerifyCode(ctx, f.code(t, f.issue(t, c), f.now))
	require.NoError(t, err)

	c = f.claims(t)
	c.IssuedAt, c.NotBefore, c.ExpiresAt = f.now.Add(-time.Hour), f.now.Add(-time.Hour), f.now.Add(-4*time.Second)
	_, err = f.v.VerifyCode(ctx, f.code(t, f.issue(t, c), f.now))
	require.NoError(t, err, "expired 4 s ago: within the skew")

	// The window's edges: 30 s old passes, 5 s ahead passes.
	for _, age := range []time.Duration{30 * time.Second, -5 * time.Second} {
		c = f.claims(t)
		_, err = f.v.VerifyCode(ctx, f.code(t, f.issue(t, c), f.now.Add(-age)))
		require.NoError(t, err, "age %s", age)
	}
	// A shorter window is the verifier's to choose.
	f.v.Window = 10 * time.Second
	_, err = f.v.VerifyCode(ctx, f.code(t, f.issue(t, f.claims(t)), f.now.Add(-11*time.Second)))
	requireReason(t, StaleCode, err)
}

func TestACodeIsAcceptedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	jwt := f.issue(t, f.claims(t))
	older := f.code(t, jwt, f.now.Add(-10*time.Second))
	newer := f.code(t, jwt, f.now.Add(-5*time.Second))

	_, err := f.v.VerifyCode(ctx, newer)
	require.NoError(t, err)
	_, err = f.v.VerifyCode(ctx, newer)
	requireReason(t, Replayed, err)
	// The same second, signed again (ECDSA signatures differ each time).
	_, err = f.v.VerifyCode(ctx, f.code(t, jwt, f.now.Add(-5*time.Second)))
	requireReason(t, Replayed, err)
	_, err = f.v.VerifyCode(ctx, older)
	requireReason(t, Replayed, err) // an older code after a newer one
	_, err = f.v.VerifyCode(ctx, f.code(t, jwt, f.now))
	require.NoError(t, err, "the next code works")
}

func TestABadCodeDoesNotUseUpTheGoodOne(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	jwt := f.issue(t, f.claims(t))
	forged, err := SignCode(jwt, f.now, newDevice(t)) // the same jti and second
	require.NoError(t, err)
	_, err = f.v.VerifyCode(ctx, forged)
	requireReason(t, BadSignature, err)
	_, err = f.v.VerifyCode(ctx, f.code(t, jwt, f.now))
	require.NoError(t, err)
}

func TestTwoDoorsScanningTheSameCodeAtOnceLetOnePersonIn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	code := f.code(t, f.issue(t, f.claims(t)), f.now)
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			_, err := f.v.VerifyCode(context.Background(), code)
			switch ReasonOf(err) {
			case "":
				require.NoError(t, err)
				ok.Add(1)
			case Replayed:
				replayed.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, ok.Load())
	require.EqualValues(t, 31, replayed.Load())
}

func TestTheReplayCacheStaysBounded(t *testing.T) {
	t.Parallel()
	c := newReplayCache(replayShards * 4)
	const now = 1_000_000
	// More credentials than it may hold: the oldest go.
	ids := make([]uuid.UUID, 2000)
	for i := range ids {
		ids[i] = uuid.New()
		require.True(t, c.accept(ids[i], now, now-35))
	}
	require.LessOrEqual(t, c.len(), replayShards*4)
	require.False(t, c.accept(ids[len(ids)-1], now, now-35), "the newest are still remembered")

	// One credential's codes, again and again, keep one entry.
	c = newReplayCache(DefaultMaxReplayEntries)
	id := uuid.New()
	for ts := int64(now); ts < now+10_000; ts++ {
		require.True(t, c.accept(id, ts, ts-35))
	}
	require.Equal(t, 1, c.len())
	sh := &c.shards[id[15]%replayShards]
	require.Less(t, len(sh.fifo)-sh.head, 2000, "its dead queue items are dropped")

	// Past the window, what was remembered goes.
	c = newReplayCache(DefaultMaxReplayEntries)
	inShard := func() uuid.UUID { id := uuid.New(); id[15] = 7; return id }
	for range 100 {
		require.True(t, c.accept(inShard(), now, now-35))
	}
	require.Equal(t, 100, c.len())
	require.True(t, c.accept(inShard(), now+100, now+100-35))
	require.Equal(t, 1, c.len())
}

func TestAVerifierForOneOrganisationRefusesAnothers(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t), newFixture(t)
	// A door of B that knows both keys (a JWKS lists every organisation's).
	keys := NewStaticKeySet(a.key.PublicKey(), b.key.PublicKey())
	door := NewVerifier(keys, NewRevocationSet(), testAudience)
	door.OrgID = b.key.OrgID
	door.Now = func() time.Time { return a.now }
	_, err := door.VerifyCode(context.Background(), a.code(t, a.issue(t, a.claims(t)), a.now))
	requireReason(t, BadSignature, err)
	_, err = door.VerifyCode(context.Background(), b.code(t, b.issue(t, b.claims(t)), b.now))
	require.NoError(t, err)

	// The same through a gateway's JWKS, whose keys carry no organisation.
	published, err := ParseJWKS(JWKS([]PublicKey{a.key.PublicKey(), b.key.PublicKey()}))
	require.NoError(t, err)
	keys.Replace(published)
	_, err = door.VerifyCredential(context.Background(), a.issue(t, a.claims(t)))
	requireReason(t, BadSignature, err)
	_, err = door.VerifyCredential(context.Background(), b.issue(t, b.claims(t)))
	require.NoError(t, err)
}

func TestIssueRefusesWhatWouldNotVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, mutate := range map[string]func(*Claims){
		"another organisation": func(c *Claims) { c.OrgID = uuid.New() },
		"no ID":                func(c *Claims) { c.ID = uuid.Nil },
		"no expiry":            func(c *Claims) { c.ExpiresAt = time.Time{} },
		"expiry before nbf":    func(c *Claims) { c.ExpiresAt = c.NotBefore.Add(-time.Second) },
		"no device key":        func(c *Claims) { c.Device = DeviceKey{} },
	} {
		c := f.claims(t)
		mutate(&c)
		_, err := Issue(f.key, c)
		require.Error(t, err, name)
	}
}

func TestDeviceKeysAreReadAsWebCryptoExportsThem(t *testing.T) {
	t.Parallel()
	d := newDevice(t)
	pub, err := d.PublicKey.Bytes()
	require.NoError(t, err)
	x, y := b64.EncodeToString(pub[1:33]), b64.EncodeToString(pub[33:])
	webCrypto := `{"crv":"P-256","ext":true,"key_ops":["verify"],"kty":"EC","x":"` + x + `","y":"` + y + `"}`
	k, err := ParseDeviceKey(webCrypto)
	require.NoError(t, err)
	require.Equal(t, DeviceKey{Kty: "EC", Crv: "P-256", X: x, Y: y}, k)
	got, err := k.PublicKey()
	require.NoError(t, err)
	require.True(t, got.Equal(&d.PublicKey))
	stored, err := json.Marshal(k)
	require.NoError(t, err)
	require.JSONEq(t, `{"kty":"EC","crv":"P-256","x":"`+x+`","y":"`+y+`"}`, string(stored))

	yBytes := append([]byte(nil), pub[33:]...)
	yBytes[31] ^= 1
	offCurve := b64.EncodeToString(yBytes)
	for _, tc := range []struct{ jwk, want string }{
		{`not json`, "not a JSON Web Key"},
		{`{"kty":"RSA","n":"x","e":"AQAB"}`, `kty is "RSA": want "EC"`},
		{`{"crv":"P-256","x":"` + x + `","y":"` + y + `"}`, `no kty`},
		{`{"kty":"EC","crv":"P-384","x":"` + x + `","y":"` + y + `"}`, `crv is "P-384": want "P-256"`},
		{`{"kty":"EC","crv":"P-256","x":"` + x + `"}`, "lacks its x or y"},
		{`{"kty":"EC","crv":"P-256","x":"` + x[:40] + `","y":"` + y + `"}`, "x must be 32 bytes"},
		{`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + strings.ReplaceAll(y[:42], "-", "+") + `+"}`, "y is not base64url"},
		{`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + offCurve + `"}`, "not a point on P-256"},
		{`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `","d":"c2VjcmV0"}`, "private part"},
	} {
		_, err := ParseDeviceKey(tc.jwk)
		require.ErrorContains(t, err, tc.want, tc.jwk)
	}
}

func TestAGatewayTrustsTheKeysOfTheJWKS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other, _ := NewSigningKey(uuid.New())
	set := JWKS([]PublicKey{f.key.PublicKey(), other.PublicKey()})
	var doc map[string][]map[string]string
	require.NoError(t, json.Unmarshal(set, &doc))
	require.Len(t, doc["keys"], 2)
	require.Equal(t, map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(f.key.PublicKey().Key),
		"kid": f.key.Kid, "alg": "EdDSA", "use": "sig"}, doc["keys"][0])
	require.NotContains(t, string(set), f.key.OrgID.String())

	keys, err := ParseJWKS(set)
	require.NoError(t, err)
	gateway := NewVerifier(NewStaticKeySet(keys...), NewRevocationSet(), testAudience)
	gateway.OrgID = f.key.OrgID
	gateway.Now = f.v.Now
	got, err := gateway.VerifyCode(context.Background(), f.code(t, f.issue(t, f.claims(t)), f.now))
	require.NoError(t, err)
	require.Equal(t, f.key.OrgID, got.OrgID)

	_, err = ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"short","kid":"k"}]}`))
	require.Error(t, err)
	keys, err = ParseJWKS([]byte(`{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"}]}`))
	require.NoError(t, err)
	require.Empty(t, keys, "keys of other types are skipped")
}

func FuzzVerifyCode(f *testing.F) {
	fx := newFixture(f)
	jwt := fx.issue(f, fx.claims(f))
	good := fx.code(f, jwt, fx.now)
	f.Add(good)
	f.Add(jwt)
	f.Add("LC1." + jwt + ".0.")
	f.Add("LC1.a.b.c.1.xx")
	f.Add("LC1..." + strconv.FormatInt(fx.now.Unix(), 10) + "." + strings.Repeat("A", 86))
	f.Add(strings.Replace(good, "eyJ", "e30", 1))
	f.Add("LC1.e30.e30.." + strconv.FormatInt(fx.now.Unix(), 10) + ".")
	f.Fuzz(func(t *testing.T, code string) {
		v, err := fx.v.VerifyCode(context.Background(), code)
		if err == nil {
			require.NotNil(t, v)
			return
		}
		require.NotEmpty(t, ReasonOf(err), "every failure on input is a rejection: %v", err)
		_, _ = fx.v.VerifyCredential(context.Background(), code)
	})
}

func BenchmarkVerifyCode(b *testing.B) {
	f := newFixture(b)
	codes := make([]string, 2000)
	for i := range codes {
		codes[i] = f.code(b, f.issue(b, f.claims(b)), f.now)
	}
	for i := 0; b.Loop(); i++ {
		_, err := f.v.VerifyCode(context.Background(), codes[i%len(codes)])
		if err != nil && i < len(codes) {
			b.Fatal(err)
		}
	}
}
