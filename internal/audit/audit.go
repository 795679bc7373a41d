// Package audit writes the append-only audit trail. Events are written with
// the same database handle (transaction) as the change they describe, so a
// change that rolls back leaves no event and a committed one always has one.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/requestid"
)

// Event is one entry of the audit trail.
type Event struct {
	OrgID      uuid.UUID
	Action     string // e.g. "record.update"
	TargetKind string // e.g. "record"
	TargetID   string
	Details    map[string]any
}

// Change is the old and new value of one changed attribute.
type Change struct {
	Old any `json:"old"`
	New any `json:"new"`
}

// Redacted replaces secret values in change details.
const Redacted = "[redacted]"

// Write appends ev, attributed to the caller in ctx (or to the system when
// there is none), through db — pass the transaction of the change.
func Write(ctx context.Context, db bun.IDB, ev Event) error {
	args, err := row(ctx, ev)
	if err != nil {
		return err
	}
	if _, err := db.NewRaw(`INSERT INTO audit_events (org_id, actor_kind, actor_id, actor_label, action, target_kind, target_id, request_id, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...).Exec(ctx); err != nil {
		return fmt.Errorf("audit: write %s: %w", ev.Action, err)
	}
	return nil
}

// WritePgx is Write for code that holds a pgx transaction.
func WritePgx(ctx context.Context, tx pgx.Tx, ev Event) error {
	args, err := row(ctx, ev)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_events (org_id, actor_kind, actor_id, actor_label, action, target_kind, target_id, request_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args...); err != nil {
		return fmt.Errorf("audit: write %s: %w", ev.Action, err)
	}
	return nil
}

func row(ctx context.Context, ev Event) ([]any, error) {
	kind, label := "SYSTEM", "system"
	var actorID *uuid.UUID
	if p := caller.From(ctx); p != nil {
		kind, label = "OPERATOR", p.Email
		if p.Role == caller.RoleGateway {
			kind = "GATEWAY"
		}
		id := p.OperatorID
		actorID = &id
	}
	details := ev.Details
	if details == nil {
		details = map[string]any{}
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("audit: encode details: %w", err)
	}
	return []any{ev.OrgID, kind, actorID, label, ev.Action, ev.TargetKind, ev.TargetID, requestid.From(ctx), string(raw)}, nil
}
