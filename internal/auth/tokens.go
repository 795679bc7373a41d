package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
)

// Access tokens are HS256 JWTs for this service alone: issuer and audience
// are fixed and checked, the algorithm is pinned, exp is required.
const (
	tokenIssuer   = "lintel"
	tokenAudience = "lintel-api"
)

type accessClaims struct {
	jwt.RegisteredClaims
	OrgID string      `json:"org"`
	Role  caller.Role `json:"role"`
	Email string      `json:"email,omitempty"`
}

// Signer issues and verifies access tokens.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	// verified remembers tokens that passed Verify until they expire: a
	// console sends the same token with every request for its lifetime,
	// and parsing and checking it again was a twentieth of a request.
	// Only a token that verified is kept, under its exact text, so the
	// answer is the one checking it again would give.
	verified *lru.Cache[string, verifiedToken]
}

type verifiedToken struct {
	principal caller.Principal
	expires   time.Time
}

// tokenLeeway is the clock difference between replicas tolerated.
const tokenLeeway = 5 * time.Second

// verifiedTokens bounds the cache; past it, the least recently used go.
const verifiedTokens = 10000

// NewSigner returns a signer using key (at least 32 bytes).
func NewSigner(key []byte, ttl time.Duration) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("auth: access-token signing key must be at least 32 bytes")
	}
	verified, err := lru.New[string, verifiedToken](verifiedTokens)
	if err != nil {
		return nil, fmt.Errorf("auth: token cache: %w", err)
	}
	return &Signer{key: key, ttl: ttl, now: time.Now, verified: verified}, nil
}

// Issue returns a signed access token for p and its expiry.
func (s *Signer) Issue(p *caller.Principal) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.ttl)
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Audience:  jwt.ClaimStrings{tokenAudience},
			Subject:   p.OperatorID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
		OrgID: p.OrgID.String(),
		Role:  p.Role,
		Email: p.Email,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign access token: %w", err)
	}
	return tok, exp, nil
}

// Verify parses an access token and returns its principal, or an
// UNAUTHENTICATED error.
func (s *Signer) Verify(token string) (*caller.Principal, error) {
	if hit, ok := s.verified.Get(token); ok && s.now().Before(hit.expires) {
		p := hit.principal
		return &p, nil
	}
	p, expires, err := s.verify(token)
	if err != nil {
		return nil, err
	}
	s.verified.Add(token, verifiedToken{principal: *p, expires: expires})
	return p, nil
}

// verify checks token and returns its caller and the instant it stops
// being accepted (its expiry plus the leeway).
func (s *Signer) verify(token string) (*caller.Principal, time.Time, error) {
	var claims accessClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return s.key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, time.Time{}, apperr.New(apperr.Unauthenticated, "access token expired")
		}
		return nil, time.Time{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	}
	opID, err1 := uuid.Parse(claims.Subject)
	orgID, err2 := uuid.Parse(claims.OrgID)
	if err1 != nil || err2 != nil || !(claims.Role.Valid() || claims.Role == caller.RoleGateway) {
		return nil, time.Time{}, apperr.New(apperr.Unauthenticated, "invalid access token")
	}
	return &caller.Principal{OperatorID: opID, OrgID: orgID, Role: claims.Role, Email: claims.Email},
		claims.ExpiresAt.Add(tokenLeeway), nil
}

// SigningKey returns the configured key, or the one stored in the database,
// generating and storing it on first use so every replica shares it.
func SigningKey(ctx context.Context, db bun.IDB, configured []byte) ([]byte, error) {
	if len(configured) > 0 {
		return configured, nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("auth: generate signing key: %w", err)
	}
	if _, err := db.NewRaw(`INSERT INTO server_settings (key, value) VALUES ('access_token_key', ?) ON CONFLICT (key) DO NOTHING`, fresh).Exec(ctx); err != nil {
		return nil, fmt.Errorf("auth: store signing key: %w", err)
	}
	var key []byte
	if err := db.NewRaw(`SELECT value FROM server_settings WHERE key = 'access_token_key'`).Scan(ctx, &key); err != nil {
		return nil, fmt.Errorf("auth: load signing key: %w", err)
	}
	return key, nil
}

// NewOpaqueToken returns a 256-bit random token (base64url) and its
// SHA-256. Such a token cannot be guessed, so a fast hash suffices to keep
// the stored form useless to a reader of the database. Refresh tokens,
// invitation links and gateway tokens are all made this way.
func NewOpaqueToken() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := encodeToken(b)
	return tok, HashToken(tok)
}

// HashToken is the stored form of an opaque token.
func HashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
