package accesslist_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/readers/gateway/accesslist"
)

// t0 is "now" at the door in most tests; the server's times have
// microsecond precision.
var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func at(t time.Time) *time.Time { return &t }

// active returns an ACTIVE record holding cardID, with no validity window.
func active(cardID string) accesslist.Entry {
	return accesslist.Entry{RecordID: uuid.New(), TemplateID: uuid.New(), CardID: cardID, Status: accesslist.StatusActive}
}

func with(e accesslist.Entry, edit func(*accesslist.Entry)) accesslist.Entry {
	edit(&e)
	return e
}

func listOf(entries ...accesslist.Entry) *accesslist.List {
	l := accesslist.New()
	l.ReplaceAll(entries, "d:1")
	return l
}

// wallet is an organisation's issuing key and a phone holding a
// credential for one record.
type wallet struct {
	org        uuid.UUID
	key        *credentials.SigningKey
	phone      *ecdsa.PrivateKey
	claims     credentials.Claims
	credential string
}

// newWallet issues a credential for record, valid for a year from t0.
func newWallet(t testing.TB, record accesslist.Entry) *wallet {
	t.Helper()
	org := uuid.New()
	key, err := credentials.NewSigningKey(org)
	require.NoError(t, err)
	w := &wallet{org: org, key: key}
	w.claims = credentials.Claims{ID: uuid.New(), Audience: accesslist.Audience, OrgID: org,
		RecordID: record.RecordID, TemplateID: record.TemplateID, CardID: record.CardID,
		IssuedAt: t0, NotBefore: t0, ExpiresAt: t0.AddDate(1, 0, 0)}
	w.reissue(t, func(*credentials.Claims) {})
	return w
}

// reissue gives the phone a new credential (and device key) with edited
// claims.
func (w *wallet) reissue(t testing.TB, edit func(*credentials.Claims)) {
	t.Helper()
	phone, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	device, err := credentials.NewDeviceKey(&phone.PublicKey)
	require.NoError(t, err)
	w.phone, w.claims.Device = phone, device
	edit(&w.claims)
	w.credential, err = credentials.Issue(w.key, w.claims)
	require.NoError(t, err)
}

// code is what the phone shows at ts.
func (w *wallet) code(t testing.TB, ts time.Time) string {
	t.Helper()
	c, err := credentials.SignCode(w.credential, ts, w.phone)
	require.NoError(t, err)
	return c
}

// published returns the key as a gateway reads it from the JWKS: without
// its organisation.
func (w *wallet) published(t testing.TB) []credentials.PublicKey {
	t.Helper()
	keys, err := credentials.ParseJWKS(credentials.JWKS([]credentials.PublicKey{w.key.PublicKey()}))
	require.NoError(t, err)
	return keys
}

func requireGranted(t *testing.T, d accesslist.Decision, record uuid.UUID) {
	t.Helper()
	require.True(t, d.Granted, "refused: %s (%s)", d.Reason, d.Detail)
	require.Empty(t, d.Reason)
	require.NotNil(t, d.RecordID)
	require.Equal(t, record, *d.RecordID)
}

func requireRefused(t *testing.T, d accesslist.Decision, reason string) {
	t.Helper()
	require.False(t, d.Granted)
	require.Equal(t, reason, d.Reason, "detail: %s", d.Detail)
	require.NotEmpty(t, d.Detail, "a refusal explains itself to the operator")
}
