package credentials

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/sealer"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

// dbBundle is a migrated database with two organisations and the issuing
// keys of a server.
type dbBundle struct {
	db         *store.DB
	seal       *sealer.Sealer
	keys       *Keys
	orgA, orgB uuid.UUID
	clock      *testClock
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func setupDB(t *testing.T) *dbBundle {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, testdb.URL(t), store.Options{MaxConns: 8})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	seal, err := sealer.New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	b := &dbBundle{db: db, seal: seal, orgA: uuid.New(), orgB: uuid.New(), clock: &testClock{now: time.Now()}}
	for _, org := range []uuid.UUID{b.orgA, b.orgB} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO organisations (id, name) VALUES ($1, $2)`, org, "Org "+org.String()[:8])
		require.NoError(t, err)
	}
	b.keys = b.newKeys(seal)
	return b
}

// newKeys is another replica's view of the same keys.
func (b *dbBundle) newKeys(s *sealer.Sealer) *Keys {
	k := NewKeys(b.db.Bun, s)
	k.clock = b.clock.Now
	return k
}

// issueStored signs a credential for org and stores its row, as the
// invitation service does.
func (b *dbBundle) issueStored(t *testing.T, f *fixture, org uuid.UUID, exp time.Time) (Claims, string) {
	t.Helper()
	ctx := context.Background()
	key, err := b.keys.Signing(ctx, org)
	require.NoError(t, err)
	c := f.claims(t)
	c.OrgID, c.ExpiresAt = org, exp
	jwt, err := Issue(key, c)
	require.NoError(t, err)
	dk, _ := json.Marshal(c.Device)
	_, err = b.db.Pool.Exec(ctx, `INSERT INTO credentials (id, org_id, record_id, template_id, kid, card_id, device_key, not_before, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, c.ID, org, c.RecordID, c.TemplateID, key.Kid, c.CardID, string(dk), c.NotBefore, c.ExpiresAt)
	require.NoError(t, err)
	return c, jwt
}

// verifier is a server-side verifier: keys and revocations from the
// database.
func (b *dbBundle) verifier(keys *Keys) *Verifier {
	v := NewVerifier(keys.KeySet(), NewDBRevocations(b.db.Bun), testAudience)
	v.Now = b.clock.Now
	return v
}

func TestAnOrganisationGetsOneSealedKeyOnFirstUse(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	ctx := context.Background()

	// Many requests at once, on two replicas: one key.
	var wg sync.WaitGroup
	kids := make(chan string, 20)
	other := b.newKeys(b.seal)
	for i := range 20 {
		keys := b.keys
		if i%2 == 1 {
			keys = other
		}
		wg.Go(func() {
			k, err := keys.Signing(ctx, b.orgA)
			require.NoError(t, err)
			kids <- k.Kid
		})
	}
	wg.Wait()
	close(kids)
	first := <-kids
	for kid := range kids {
		require.Equal(t, first, kid)
	}
	require.Len(t, b64.EncodeToString(randomBytes(16)), len(first))

	var n int
	var public, sealed []byte
	var alg string
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) OVER (), public_key, sealed_private_key, algorithm FROM issuing_keys WHERE org_id = $1`,
		b.orgA).Scan(&n, &public, &sealed, &alg))
	require.Equal(t, 1, n)
	require.Equal(t, "EdDSA", alg)

	// What is stored does not give the private key away.
	key, err := b.keys.Signing(ctx, b.orgA)
	require.NoError(t, err)
	require.Equal(t, []byte(key.PublicKey().Key), public)
	require.False(t, bytes.Contains(sealed, key.priv.Seed()), "the seed is stored in the clear")
	require.False(t, bytes.Contains(sealed, key.priv), "the private key is stored in the clear")

	// Another master key cannot open it, so cannot sign.
	otherSeal, err := sealer.New(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)
	_, err = b.newKeys(otherSeal).Signing(ctx, b.orgA)
	require.True(t, errors.Is(err, sealer.ErrOpen), "got %v", err)

	// Organisation B gets its own.
	keyB, err := b.keys.Signing(ctx, b.orgB)
	require.NoError(t, err)
	require.NotEqual(t, key.Kid, keyB.Kid)
	require.Equal(t, b.orgB, keyB.OrgID)
}

func TestARotatedKeyStaysPublishedWhileItsCredentialsAreValid(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	ctx := context.Background()
	f := newFixture(t)
	replica := b.newKeys(b.seal) // another server process
	v := b.verifier(b.keys)

	oldKey, err := b.keys.Signing(ctx, b.orgA)
	require.NoError(t, err)
	_, err = replica.Signing(ctx, b.orgA) // cached there too
	require.NoError(t, err)
	exp := b.clock.Now().Add(400 * 24 * time.Hour).Truncate(time.Second)
	oldCred, oldJWT := b.issueStored(t, f, b.orgA, exp)

	tx, err := b.db.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	newKid, err := b.keys.Rotate(ctx, tx, b.orgA, 30*24*time.Hour)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.NotEqual(t, oldKey.Kid, newKid)

	// This replica signs with the new key at once, the other within
	// seconds.
	k, err := b.keys.Signing(ctx, b.orgA)
	require.NoError(t, err)
	require.Equal(t, newKid, k.Kid)
	k, err = replica.Signing(ctx, b.orgA)
	require.NoError(t, err)
	require.Equal(t, oldKey.Kid, k.Kid, "cached for a few seconds")
	b.clock.Advance(signingCacheTTL)
	k, err = replica.Signing(ctx, b.orgA)
	require.NoError(t, err)
	require.Equal(t, newKid, k.Kid)

	// Both verify; the JWKS lists both.
	newCred, newJWT := b.issueStored(t, f, b.orgA, exp)
	for _, jwt := range []string{oldJWT, newJWT} {
		_, err := v.VerifyCredential(ctx, jwt)
		require.NoError(t, err)
	}
	require.NotEqual(t, oldCred.ID, newCred.ID)
	published, err := b.keys.Published(ctx)
	require.NoError(t, err)
	byKid := map[string]PublicKey{}
	for _, p := range published {
		byKid[p.Kid] = p
	}
	require.True(t, byKid[oldKey.Kid].Retired)
	require.False(t, byKid[newKid].Retired)
	jwks, err := ParseJWKS(JWKS(published))
	require.NoError(t, err)
	require.Len(t, jwks, 2)

	// Published until the old credential expires.
	var until time.Time
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT publish_until FROM issuing_keys WHERE kid = $1`, oldKey.Kid).Scan(&until))
	require.True(t, !until.Before(exp), "publish_until %s, credential expires %s", until, exp)

	// Once publish_until has passed, the old key is gone, and so are its
	// credentials.
	_, err = b.db.Pool.Exec(ctx, `UPDATE issuing_keys SET publish_until = now() - interval '1 second' WHERE kid = $1`, oldKey.Kid)
	require.NoError(t, err)
	published, err = b.keys.Published(ctx)
	require.NoError(t, err)
	require.Len(t, published, 1)
	require.Equal(t, newKid, published[0].Kid)
	b.clock.Advance(keySetMaxAge)
	_, err = v.VerifyCredential(ctx, oldJWT)
	requireReason(t, BadSignature, err)
	_, err = v.VerifyCredential(ctx, newJWT)
	require.NoError(t, err)
}

func TestRotationWithoutCredentialsKeepsTheOldKeyForTheCredentialLifetime(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	ctx := context.Background()
	old, err := b.keys.Signing(ctx, b.orgA)
	require.NoError(t, err)
	// Rotating twice at once: two rotations, never two active keys.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := b.keys.Rotate(ctx, b.db.Bun, b.orgA, time.Hour)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	var active, retired int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE retired_at IS NULL), count(*) FILTER (WHERE retired_at IS NOT NULL)
		FROM issuing_keys WHERE org_id = $1`, b.orgA).Scan(&active, &retired))
	require.Equal(t, 1, active)
	require.Equal(t, 2, retired)
	var left float64
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT extract(epoch FROM publish_until - retired_at)::float8 FROM issuing_keys WHERE kid = $1`,
		old.Kid).Scan(&left))
	require.GreaterOrEqual(t, left, time.Hour.Seconds(), "a replica may still sign with it for a few seconds")

	// An organisation without a key gets its first one from Rotate.
	kid, err := b.keys.Rotate(ctx, b.db.Bun, b.orgB, time.Hour)
	require.NoError(t, err)
	k, err := b.keys.Signing(ctx, b.orgB)
	require.NoError(t, err)
	require.Equal(t, kid, k.Kid)
}

func TestTheServerVerifierChecksTheDatabase(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	ctx := context.Background()
	f := newFixture(t)
	f.now = b.clock.Now()
	v := b.verifier(b.keys)
	exp := f.now.Add(24 * time.Hour)

	live, liveJWT := b.issueStored(t, f, b.orgA, exp)
	_, revokedJWT := b.issueStored(t, f, b.orgA, exp)
	_, err := b.db.Pool.Exec(ctx, `UPDATE credentials SET revoked_at = now(), revoke_reason = 'SUSPENDED' WHERE id <> $1`, live.ID)
	require.NoError(t, err)
	key, err := b.keys.Signing(ctx, b.orgA)
	require.NoError(t, err)
	unknown := f.claims(t) // signed, but never stored
	unknown.OrgID = b.orgA
	unknownJWT, err := Issue(key, unknown)
	require.NoError(t, err)

	got, err := v.VerifyCode(ctx, f.code(t, liveJWT, f.now))
	require.NoError(t, err)
	require.Equal(t, live.RecordID, got.RecordID)
	_, err = v.VerifyCode(ctx, f.code(t, revokedJWT, f.now))
	requireReason(t, Revoked, err)
	_, err = v.VerifyCode(ctx, f.code(t, unknownJWT, f.now))
	requireReason(t, Revoked, err)

	// Organisation B's door does not let A's people in.
	_, bJWT := b.issueStored(t, f, b.orgB, exp)
	v.OrgID = b.orgB
	_, err = v.VerifyCredential(ctx, liveJWT)
	requireReason(t, BadSignature, err)
	_, err = v.VerifyCredential(ctx, bJWT)
	require.NoError(t, err)
}

func TestUnknownKidsReloadTheKeySetAtMostOncePerSecond(t *testing.T) {
	t.Parallel()
	b := setupDB(t)
	ctx := context.Background()
	set := b.keys.KeySet()
	require.Same(t, set, b.keys.KeySet())
	keyA, err := b.keys.Signing(ctx, b.orgA)
	require.NoError(t, err)
	_, ok, err := set.Key(ctx, keyA.Kid)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = set.Key(ctx, "made-up")
	require.NoError(t, err)
	require.False(t, ok)

	// A key created on another replica right now is not looked for again
	// within the second…
	keyB, err := b.newKeys(b.seal).Signing(ctx, b.orgB)
	require.NoError(t, err)
	_, ok, err = set.Key(ctx, keyB.Kid)
	require.NoError(t, err)
	require.False(t, ok)
	// …and is found after it.
	b.clock.Advance(keySetMinReload)
	got, ok, err := set.Key(ctx, keyB.Kid)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, b.orgB, got.OrgID)
	require.Equal(t, ed25519.PublicKey(keyB.PublicKey().Key), got.Key)

	// The database going away does not stop known keys from verifying.
	b.db.Close()
	b.clock.Advance(keySetMaxAge)
	_, ok, err = set.Key(ctx, keyA.Kid)
	require.NoError(t, err)
	require.True(t, ok)
	_, _, err = set.Key(ctx, "made-up-too")
	require.Error(t, err)
}
