// Package caller describes who is making a request — an operator with a
// role in one organisation, or a gateway — and carries it through contexts.
// Every domain service reads the caller from here to scope its queries to the
// caller's organisation and to check its role.
package caller

import (
	"context"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/apperr"
)

// Role is what a caller may do.
type Role string

// The roles. ADMIN ⊃ OPERATOR ⊃ VIEWER; GATEWAY stands apart and is allowed
// only where it is named.
const (
	RoleAdmin    Role = "ADMIN"
	RoleOperator Role = "OPERATOR"
	RoleViewer   Role = "VIEWER"
	RoleGateway  Role = "GATEWAY"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleOperator: 2, RoleAdmin: 3}

// Valid reports whether r is an operator role.
func (r Role) Valid() bool { _, ok := roleRank[r]; return ok }

// Principal is the authenticated caller of a request.
type Principal struct {
	// OperatorID is the operator (or, for role GATEWAY, the gateway).
	OperatorID uuid.UUID
	OrgID      uuid.UUID
	Role       Role
	Email      string
}

// Allows reports whether p may act with role need: operator roles are
// ordered, GATEWAY matches only itself.
func (p *Principal) Allows(need Role) bool {
	if p == nil {
		return false
	}
	if need == RoleGateway || p.Role == RoleGateway {
		return p.Role == need
	}
	return roleRank[p.Role] >= roleRank[need]
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller, or nil for an anonymous request.
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Require returns the caller when it holds at least role need, and
// UNAUTHENTICATED or FORBIDDEN otherwise. Every domain service calls it, so
// the organisation scope and role checks do not depend on the API layer.
func Require(ctx context.Context, need Role) (*Principal, error) {
	p := From(ctx)
	if p == nil {
		return nil, apperr.New(apperr.Unauthenticated, "authentication required")
	}
	if !p.Allows(need) {
		return nil, apperr.New(apperr.Forbidden, "role %s may not do this (needs %s)", p.Role, need)
	}
	return p, nil
}
