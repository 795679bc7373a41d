// Package revocation ends records' mobile credentials: it revokes their live
// credentials, withdraws their open invitations, and appends to the
// revocation feed gateways follow. It runs inside the caller's transaction
// (a record service change, an import's apply), so a record is archived if
// and only if its credential is revoked.
package revocation

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// Reasons a credential ends.
const (
	Reset     = "RESET"
	Suspended = "SUSPENDED"
	Archived  = "ARCHIVED"
	Deleted   = "DELETED"
	Expired   = "EXPIRED"
	Reissued  = "REISSUED"
)

// Execer runs a statement in the caller's transaction.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
}

// Bun adapts a bun transaction (its database/sql connection takes $n
// placeholders as they are).
func Bun(tx bun.Tx) Execer { return sqlTx{tx.Tx} }

type sqlTx struct{ tx *sql.Tx }

func (s sqlTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Pgx adapts a pgx transaction.
func Pgx(tx pgx.Tx) Execer { return pgxTx{tx} }

type pgxTx struct{ tx pgx.Tx }

func (p pgxTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.tx.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

// LockFeed takes the organisation's feed lock until the transaction ends.
// Feed rows get their sequence numbers while it is held, so they commit in
// sequence order and a gateway that has read up to N never later finds a
// new row below N. A transaction that also locks rows (records,
// invitations) must take the feed lock first, so that no two transactions
// wait on each other.
func LockFeed(ctx context.Context, x Execer, org uuid.UUID) error {
	if _, err := x.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('lintel.revocations:' || $1::text, 0))`, org); err != nil {
		return fmt.Errorf("revocation: lock the feed: %w", err)
	}
	return nil
}

// Records ends the credentials of the records selected by recordsSQL (a
// query returning record ids; $1 is the organisation, its own arguments
// start at $3 and come in args): live credentials are revoked and listed in
// the feed with reason, open invitations are withdrawn and their unsent
// e-mail cancelled, and a credential state of INVITED, ACTIVE or RESET
// becomes newState (REVOKED, or EXPIRED for expiry). It returns the number
// of credentials revoked.
func Records(ctx context.Context, x Execer, org uuid.UUID, recordsSQL string, reason, newState string, args ...any) (int64, error) {
	if err := LockFeed(ctx, x, org); err != nil {
		return 0, err
	}
	all := append([]any{org, reason}, args...)
	n, err := x.Exec(ctx, `WITH revoked AS (
			UPDATE credentials SET revoked_at = now(), revoke_reason = $2
			WHERE org_id = $1 AND revoked_at IS NULL AND record_id IN (`+recordsSQL+`)
			RETURNING id, record_id, expires_at)
		INSERT INTO revocations (org_id, credential_id, record_id, reason, credential_expires_at)
		SELECT $1, id, record_id, $2, expires_at FROM revoked ORDER BY id`, all...)
	if err != nil {
		return 0, fmt.Errorf("revocation: revoke credentials: %w", err)
	}
	// The reason ($2) is unused below but named, so every statement takes
	// the same argument list.
	if _, err := x.Exec(ctx, `UPDATE invitations SET superseded_at = now()
		WHERE org_id = $1 AND redeemed_at IS NULL AND superseded_at IS NULL AND $2::text <> '' AND record_id IN (`+recordsSQL+`)`, all...); err != nil {
		return 0, fmt.Errorf("revocation: withdraw invitations: %w", err)
	}
	// A message being sent right now (its row locked by the sender) is
	// skipped rather than waited for: waiting here would hold the feed.
	if _, err := x.Exec(ctx, `UPDATE outbox_messages SET status = 'CANCELLED', sealed_secret = NULL
		WHERE id IN (SELECT id FROM outbox_messages WHERE org_id = $1 AND kind = 'INVITATION' AND status IN ('PENDING', 'HELD')
			AND $2::text <> '' AND record_id IN (`+recordsSQL+`) FOR UPDATE SKIP LOCKED)`, all...); err != nil {
		return 0, fmt.Errorf("revocation: cancel invitation e-mail: %w", err)
	}
	if n > 0 {
		// Gateways following the access list pull the revocation at once.
		if _, err := x.Exec(ctx, `SELECT pg_notify('lintel_events', json_build_object('org', $1::uuid, 'topic', 'access:' || $1::text, 'kind', 'REVOKED')::text)`, org); err != nil {
			return 0, fmt.Errorf("revocation: notify gateways: %w", err)
		}
	}
	stateArgs := append([]any{org, newState}, args...)
	if _, err := x.Exec(ctx, `UPDATE card_records SET credential_state = $2
		WHERE org_id = $1 AND credential_state IN ('INVITED', 'ACTIVE', 'RESET') AND id IN (`+recordsSQL+`)`, stateArgs...); err != nil {
		return 0, fmt.Errorf("revocation: set credential state: %w", err)
	}
	return n, nil
}

// Record ends one record's credential (see Records).
func Record(ctx context.Context, x Execer, org, record uuid.UUID, reason, newState string) (int64, error) {
	return Records(ctx, x, org, `SELECT $3::uuid`, reason, newState, record)
}
