package invitations

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/outbox"
	"github.com/lintel/lintel/internal/revocation"
)

// loadTargetsPgx reads the records selected by recordsSQL (a query of
// record ids; $1 is the organisation) that have a recipient e-mail.
func loadTargetsPgx(ctx context.Context, tx pgx.Tx, org uuid.UUID, recordsSQL string) ([]*target, error) {
	rows, err := tx.Query(ctx, `SELECT r.id, r.template_id, t.name, o.name, r.status, r.credential_state, r.recipient_email, r.expires_at, r.fields,
			jsonb_array_length(r.security_questions), t.unique_identifier_kind`+
		targetFrom+` WHERE r.org_id = $1 AND r.recipient_email <> '' AND r.id IN (`+recordsSQL+`) ORDER BY r.id`, org)
	if err != nil {
		return nil, fmt.Errorf("invitations: select imported records: %w", err)
	}
	defer rows.Close()
	var ts []*target
	for rows.Next() {
		var t target
		var fields []byte
		if err := rows.Scan(&t.ID, &t.TemplateID, &t.TemplateName, &t.Organisation, &t.Status, &t.State, &t.RecipientEmail, &t.ExpiresAt, &fields,
			&t.Questions, &t.IdentifierKind); err != nil {
			return nil, fmt.Errorf("invitations: read imported records: %w", err)
		}
		if err := json.Unmarshal(fields, &t.Fields); err != nil {
			return nil, fmt.Errorf("invitations: decode fields: %w", err)
		}
		ts = append(ts, &t)
	}
	return ts, rows.Err()
}

// InviteImported invites, inside an import's transaction, the records
// selected by recordsSQL that can be invited (active, with a recipient
// e-mail, not expired, without an active credential). It returns how many.
// Call Kick after the commit.
func (s *Service) InviteImported(ctx context.Context, tx pgx.Tx, org uuid.UUID, by *uuid.UUID, recordsSQL string) (int, error) {
	all, err := loadTargetsPgx(ctx, tx, org, recordsSQL)
	if err != nil {
		return 0, err
	}
	now := timeNow()
	ts := all[:0]
	for _, t := range all {
		if t.invitable(now) == "" && t.State != "ACTIVE" {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return 0, nil
	}
	writeMail := func(msgs ...outbox.Message) error { return s.mail.WritePgx(ctx, tx, msgs...) }
	return len(ts), s.invite(ctx, revocation.Pgx(tx), writeMail, org, by, ts, false)
}

// NotifyRemoved writes, inside an import's transaction, a notice to the
// cardholders of the records selected by recordsSQL that their card was
// withdrawn (deleted says whether it was deleted or archived). Call it
// before the records are deleted; call Kick after the commit.
func (s *Service) NotifyRemoved(ctx context.Context, tx pgx.Tx, org uuid.UUID, recordsSQL string, deleted bool) (int, error) {
	ts, err := loadTargetsPgx(ctx, tx, org, recordsSQL)
	if err != nil || len(ts) == 0 {
		return 0, err
	}
	msgs := make([]outbox.Message, len(ts))
	for i, t := range ts {
		subject, text, html, err := outbox.RenderRemoved(outbox.RemovedData{Organisation: t.Organisation, TemplateName: t.TemplateName,
			CardholderName: t.Fields.cardholderName(), Deleted: deleted})
		if err != nil {
			return 0, fmt.Errorf("invitations: render removal notice: %w", err)
		}
		rec := t.ID
		msgs[i] = outbox.Message{OrgID: org, Kind: outbox.KindRemoved, RecordID: &rec, Recipient: t.RecipientEmail, Subject: subject, Text: text, HTML: html}
	}
	return len(ts), s.mail.WritePgx(ctx, tx, msgs...)
}

// Kick starts sending e-mail written by a committed transaction.
func (s *Service) Kick(ctx context.Context) { s.mail.Kick(ctx) }
