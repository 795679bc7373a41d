package credentials

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/sealer"
)

// How long this process trusts what it read about keys.
const (
	// signingCacheTTL: a key rotated on another replica stops signing here
	// within this long.
	signingCacheTTL = 5 * time.Second
	// keySetMinReload: an unknown kid reloads the key set at most this
	// often, so made-up kids cannot hammer the database.
	keySetMinReload = time.Second
	// keySetMaxAge: a key set older than this is reloaded, so keys that
	// are no longer published stop verifying.
	keySetMaxAge = time.Minute
)

// Keys manages the organisations' issuing keys in the database.
type Keys struct {
	db     *bun.DB
	sealer *sealer.Sealer
	clock  func() time.Time

	mu      sync.Mutex
	signing map[uuid.UUID]cachedSigningKey

	set *dbKeySet
}

type cachedSigningKey struct {
	key     *SigningKey
	checked time.Time
}

// NewKeys returns the issuing keys stored in db, sealed with s.
func NewKeys(db *bun.DB, s *sealer.Sealer) *Keys {
	k := &Keys{db: db, sealer: s, clock: time.Now, signing: map[uuid.UUID]cachedSigningKey{}}
	k.set = &dbKeySet{keys: k}
	return k
}

// Signing returns the organisation's active key, creating it on first use.
// It is cached, and checked against the database every few seconds.
func (k *Keys) Signing(ctx context.Context, orgID uuid.UUID) (*SigningKey, error) {
	now := k.clock()
	k.mu.Lock()
	cached, ok := k.signing[orgID]
	k.mu.Unlock()
	if ok && now.Sub(cached.checked) < signingCacheTTL {
		return cached.key, nil
	}
	for range 3 {
		var kid string
		var public, sealed []byte
		err := k.db.NewRaw(`SELECT kid, public_key, sealed_private_key FROM issuing_keys WHERE org_id = ? AND retired_at IS NULL`,
			orgID).Scan(ctx, &kid, &public, &sealed)
		var key *SigningKey
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if key, err = k.create(ctx, k.db, orgID); err != nil {
				return nil, err
			}
			if key == nil {
				continue // created by someone else meanwhile: read theirs
			}
		case err != nil:
			return nil, fmt.Errorf("credentials: find the issuing key of %s: %w", orgID, err)
		case ok && cached.key.Kid == kid:
			key = cached.key
		default:
			if key, err = k.open(kid, orgID, public, sealed); err != nil {
				return nil, err
			}
		}
		k.mu.Lock()
		k.signing[orgID] = cachedSigningKey{key: key, checked: now}
		k.mu.Unlock()
		if key != cached.key {
			// What this process signs, it verifies at once, without
			// waiting for the key set's next reload.
			k.set.learn(key.PublicKey())
		}
		return key, nil
	}
	return nil, fmt.Errorf("credentials: the issuing key of %s keeps changing", orgID)
}

// open unseals a stored private key and checks it against its public half.
func (k *Keys) open(kid string, orgID uuid.UUID, public, sealed []byte) (*SigningKey, error) {
	seed, err := k.sealer.Open(sealed, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("credentials: open issuing key %s: %w", kid, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("credentials: issuing key %s: sealed seed has %d bytes", kid, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(public)) {
		return nil, fmt.Errorf("credentials: issuing key %s: the private key does not match the public key", kid)
	}
	return newSigningKey(kid, orgID, priv), nil
}

// create stores a new active key for the organisation and returns it, or
// returns nil when the organisation has an active key already.
func (k *Keys) create(ctx context.Context, db bun.IConn, orgID uuid.UUID) (*SigningKey, error) {
	public, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := newKid()
	res, err := db.ExecContext(ctx, `INSERT INTO issuing_keys (kid, org_id, public_key, sealed_private_key) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, kid, orgID, []byte(public), k.sealer.Seal(priv.Seed(), []byte(kid)))
	if err != nil {
		return nil, fmt.Errorf("credentials: create the issuing key of %s: %w", orgID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return nil, err
	}
	return newSigningKey(kid, orgID, priv), nil
}

// Rotate retires the organisation's active key and creates its successor,
// in db (a transaction, or the database for a transaction of its own). The
// retired key stays published while credentials it signed may still be
// valid: until the last of them expires, and at least credentialTTL plus
// the signing cache's few seconds from now, for a replica that signs with
// the old key until its cache notices. Authorisation is the caller's.
func (k *Keys) Rotate(ctx context.Context, db bun.IDB, orgID uuid.UUID, credentialTTL time.Duration) (string, error) {
	var newKid string
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for range 3 {
			var old string
			err := tx.NewRaw(`SELECT kid FROM issuing_keys WHERE org_id = ? AND retired_at IS NULL FOR UPDATE`, orgID).Scan(ctx, &old)
			switch {
			case err == nil:
				if _, err := tx.ExecContext(ctx, `UPDATE issuing_keys SET retired_at = now(),
					publish_until = greatest((SELECT max(expires_at) FROM credentials WHERE kid = ?), now() + ? * interval '1 second')
					WHERE kid = ?`, old, (credentialTTL + signingCacheTTL).Seconds(), old); err != nil {
					return fmt.Errorf("credentials: retire issuing key %s: %w", old, err)
				}
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("credentials: lock the issuing key of %s: %w", orgID, err)
			}
			key, err := k.create(ctx, tx, orgID)
			if err != nil {
				return err
			}
			if key != nil {
				newKid = key.Kid
				return nil
			}
			// A concurrent rotation (or first use) committed a new active
			// key after our SELECT: rotate that one.
		}
		return fmt.Errorf("credentials: the issuing key of %s keeps changing", orgID)
	})
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	delete(k.signing, orgID)
	k.mu.Unlock()
	return newKid, nil
}

// Published returns every key verifiers should know, of every
// organisation: the active ones, and the retired ones still within their
// publish_until.
func (k *Keys) Published(ctx context.Context) ([]PublicKey, error) {
	var rows []struct {
		Kid       string    `bun:"kid"`
		OrgID     uuid.UUID `bun:"org_id"`
		PublicKey []byte    `bun:"public_key"`
		Retired   bool      `bun:"retired"`
	}
	if err := k.db.NewRaw(`SELECT kid, org_id, public_key, retired_at IS NOT NULL AS retired FROM issuing_keys
		WHERE retired_at IS NULL OR publish_until > now() ORDER BY org_id, created_at, kid`).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("credentials: list published keys: %w", err)
	}
	keys := make([]PublicKey, 0, len(rows))
	for _, r := range rows {
		if len(r.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("credentials: issuing key %s: public key has %d bytes", r.Kid, len(r.PublicKey))
		}
		keys = append(keys, PublicKey{Kid: r.Kid, OrgID: r.OrgID, Key: ed25519.PublicKey(r.PublicKey), Retired: r.Retired})
	}
	return keys, nil
}

// jwk is an Ed25519 public key as RFC 8037 writes it.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// JWKS returns keys as a JSON Web Key Set. It does not say which
// organisation a key belongs to.
func JWKS(keys []PublicKey) []byte {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k.Key), Kid: k.Kid, Alg: Algorithm, Use: "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}

// ParseJWKS reads a JSON Web Key Set as JWKS writes it, for a gateway.
// Keys of other types are skipped; the keys' OrgID is zero.
func ParseJWKS(data []byte) ([]PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("credentials: not a JSON Web Key Set: %w", err)
	}
	var keys []PublicKey
	for i, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		if (k.Alg != "" && k.Alg != Algorithm) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("credentials: key %d (%q) has no valid x", i, k.Kid)
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("credentials: key %d has no kid", i)
		}
		keys = append(keys, PublicKey{Kid: k.Kid, Key: ed25519.PublicKey(x)})
	}
	return keys, nil
}

// KeySet returns the published keys as a KeySet for a Verifier, read from
// the database into memory: reloaded when a kid is unknown (at most once a
// second) and every minute. Every call returns the same set.
func (k *Keys) KeySet() KeySet { return k.set }

type dbKeySet struct {
	keys   *Keys
	reload sync.Mutex // one load at a time
	cur    atomic.Pointer[loadedKeys]
}

type loadedKeys struct {
	byKid  map[string]PublicKey
	loaded time.Time
}

func (s *dbKeySet) Key(ctx context.Context, kid string) (PublicKey, bool, error) {
	if cur := s.cur.Load(); cur != nil {
		pk, ok := cur.byKid[kid]
		if ok && s.keys.clock().Sub(cur.loaded) < keySetMaxAge {
			return pk, true, nil
		}
		if ok {
			// Known but old: one caller reloads, the others go on with
			// what they have.
			if !s.reload.TryLock() {
				return pk, true, nil
			}
			defer s.reload.Unlock()
			if err := s.load(ctx); err != nil {
				return pk, true, nil // keep verifying while the database is away
			}
			pk, ok = s.cur.Load().byKid[kid]
			return pk, ok, nil
		}
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	cur := s.cur.Load()
	if cur != nil {
		if pk, ok := cur.byKid[kid]; ok {
			return pk, true, nil // loaded while we waited
		}
		if s.keys.clock().Sub(cur.loaded) < keySetMinReload {
			return PublicKey{}, false, nil
		}
	}
	if err := s.load(ctx); err != nil {
		return PublicKey{}, false, err
	}
	pk, ok := s.cur.Load().byKid[kid]
	return pk, ok, nil
}

// learn adds a key this process has just read or created.
func (s *dbKeySet) learn(pk PublicKey) {
	s.reload.Lock()
	defer s.reload.Unlock()
	cur := s.cur.Load()
	if cur == nil {
		return // the first lookup loads everything
	}
	if _, ok := cur.byKid[pk.Kid]; ok {
		return
	}
	m := make(map[string]PublicKey, len(cur.byKid)+1)
	for kid, k := range cur.byKid {
		m[kid] = k
	}
	m[pk.Kid] = pk
	s.cur.Store(&loadedKeys{byKid: m, loaded: cur.loaded})
}

// load reads the published keys; the caller holds s.reload.
func (s *dbKeySet) load(ctx context.Context) error {
	keys, err := s.keys.Published(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]PublicKey, len(keys))
	for _, k := range keys {
		m[k.Kid] = k
	}
	s.cur.Store(&loadedKeys{byKid: m, loaded: s.keys.clock()})
	return nil
}

// NewDBRevocations returns a RevocationChecker that reads the credentials
// table: a credential counts as revoked when its row is revoked, and when
// there is no row for it at all (a credential the server does not know).
func NewDBRevocations(db *bun.DB) RevocationChecker { return dbRevocations{db} }

type dbRevocations struct{ db *bun.DB }

func (d dbRevocations) Revoked(ctx context.Context, id uuid.UUID) (bool, error) {
	var revoked bool
	err := d.db.NewRaw(`SELECT revoked_at IS NOT NULL FROM credentials WHERE id = ?`, id).Scan(ctx, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return revoked, nil
}
