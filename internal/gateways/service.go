// Package gateways is the server side of door gateways: their tokens, the
// access-list feed they sync from, the access events they report, and the
// state of their readers.
package gateways

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/store"
)

// TokenPrefix marks gateway tokens, so the API tells them from operators'
// access tokens without trying both.
const TokenPrefix = "lgw_"

// Gateway is a registered gateway.
type Gateway struct {
	ID            uuid.UUID  `bun:"id"`
	OrgID         uuid.UUID  `bun:"org_id"`
	Site          string     `bun:"site"`
	Name          string     `bun:"name"`
	CreatedAt     time.Time  `bun:"created_at"`
	RotatedAt     *time.Time `bun:"rotated_at"`
	RevokedAt     *time.Time `bun:"revoked_at"`
	LastSeenAt    *time.Time `bun:"last_seen_at"`
	SyncedVersion *int64     `bun:"synced_version"`
}

const gatewayColumns = `id, org_id, site, name, created_at, rotated_at, revoked_at, last_seen_at, synced_version`

// Service manages gateways.
type Service struct {
	db *store.DB
}

// NewService returns the service.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// newToken returns a gateway token (an opaque token with the gateway
// prefix) and its stored hash.
func newToken() (string, []byte) {
	raw, _ := auth.NewOpaqueToken()
	tok := TokenPrefix + raw
	return tok, auth.HashToken(tok)
}

func cleanName(path, s string, fs *apperr.Fields) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		fs.Add(path, "must not be empty")
	case len(s) > 100:
		fs.Add(path, "must be at most 100 characters")
	}
	return s
}

// Create registers a gateway for a site (ADMIN) and returns it with its
// token, which is shown only now.
func (s *Service) Create(ctx context.Context, site, name string) (*Gateway, string, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, "", err
	}
	var fs apperr.Fields
	site, name = cleanName("site", site, &fs), cleanName("name", name, &fs)
	if err := fs.Err(); err != nil {
		return nil, "", err
	}
	tok, hash := newToken()
	var g Gateway
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`INSERT INTO gateways (org_id, site, name, token_hash, created_by) VALUES (?, ?, ?, ?, ?) RETURNING `+gatewayColumns,
			p.OrgID, site, name, hash, p.OperatorID).Scan(ctx, &g)
		if _, dup := store.UniqueViolation(err); dup {
			return apperr.New(apperr.Conflict, "site %q already has a gateway named %q", site, name)
		}
		if err != nil {
			return fmt.Errorf("gateways: create: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "gateway.create", TargetKind: "gateway", TargetID: g.ID.String(),
			Details: map[string]any{"site": site, "name": name}})
	})
	if err != nil {
		return nil, "", err
	}
	return &g, tok, nil
}

// Rotate gives a gateway a new token (ADMIN); the old one stops working
// at once.
func (s *Service) Rotate(ctx context.Context, id uuid.UUID) (*Gateway, string, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, "", err
	}
	tok, hash := newToken()
	var g Gateway
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`UPDATE gateways SET token_hash = ?, rotated_at = now() WHERE id = ? AND org_id = ? AND revoked_at IS NULL RETURNING `+gatewayColumns,
			hash, id, p.OrgID).Scan(ctx, &g)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("gateway %s not found (or revoked)", id)
		}
		if err != nil {
			return fmt.Errorf("gateways: rotate: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "gateway.rotate_token", TargetKind: "gateway", TargetID: id.String()})
	})
	if err != nil {
		return nil, "", err
	}
	return &g, tok, nil
}

// Revoke disables a gateway for good (ADMIN).
func (s *Service) Revoke(ctx context.Context, id uuid.UUID) (*Gateway, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, err
	}
	var g Gateway
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`UPDATE gateways SET revoked_at = COALESCE(revoked_at, now()) WHERE id = ? AND org_id = ? RETURNING `+gatewayColumns,
			id, p.OrgID).Scan(ctx, &g)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("gateway %s not found", id)
		}
		if err != nil {
			return fmt.Errorf("gateways: revoke: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "gateway.revoke", TargetKind: "gateway", TargetID: id.String()})
	})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// List returns the organisation's gateways by site and name (VIEWER).
func (s *Service) List(ctx context.Context) ([]Gateway, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	var out []Gateway
	if err := s.db.Bun.NewRaw(`SELECT `+gatewayColumns+` FROM gateways WHERE org_id = ? ORDER BY lower(site), lower(name)`, p.OrgID).Scan(ctx, &out); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("gateways: list: %w", err)
	}
	return out, nil
}

// Authenticate turns a gateway token into its caller (role GATEWAY, scoped
// to the gateway's organisation). Revoked gateways and rotated-away tokens
// are UNAUTHENTICATED. Each call reads the database, so a revocation takes
// effect on the next request.
func (s *Service) Authenticate(ctx context.Context, token string) (*caller.Principal, error) {
	var g Gateway
	err := s.db.Bun.NewRaw(`SELECT `+gatewayColumns+` FROM gateways WHERE token_hash = ? AND revoked_at IS NULL`, auth.HashToken(token)).Scan(ctx, &g)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.Unauthenticated, "unknown, rotated or revoked gateway token")
	}
	if err != nil {
		return nil, fmt.Errorf("gateways: authenticate: %w", err)
	}
	return &caller.Principal{OperatorID: g.ID, OrgID: g.OrgID, Role: caller.RoleGateway, Email: "gateway:" + g.Site + "/" + g.Name}, nil
}
