// Package invitations takes a card record from "not invited" to a phone
// holding a signed, device-bound credential: invitation links sent through
// the outbox, the identity check on the wallet page, credential issue,
// lost-phone resets, issuing-key rotation, the revocation feed, and the
// verification of the rotating codes phones show.
package invitations

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/outbox"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/revocation"
	"github.com/lintel/lintel/internal/store"
)

// Audience is the aud of every credential: the doors (gateways and
// scanning consoles) of the issuing organisation.
const Audience = "lintel-access"

// Config tunes invitations and credentials.
type Config struct {
	// InvitationTTL is how long a link works.
	InvitationTTL time.Duration
	// CredentialTTL bounds a credential's life; the record's expiry bounds
	// it too.
	CredentialTTL time.Duration
	// BaseURL is where phones reach the server (links, credential issuer).
	BaseURL string
	// MaxAttempts wrong identity checks lock an invitation.
	MaxAttempts int
	// CodeWindow is how old a rotating code may be.
	CodeWindow time.Duration
	// MaxGuessesPerAddress bad tokens or answers from one client address
	// within GuessWindow block that address for the rest of the window.
	MaxGuessesPerAddress int
	GuessWindow          time.Duration
}

// DefaultConfig is the documented default policy.
func DefaultConfig() Config {
	return Config{InvitationTTL: 7 * 24 * time.Hour, CredentialTTL: 365 * 24 * time.Hour, BaseURL: "http://127.0.0.1:8080",
		MaxAttempts: 5, CodeWindow: 30 * time.Second, MaxGuessesPerAddress: 30, GuessWindow: 10 * time.Minute}
}

// Service is the invitation and credential service.
type Service struct {
	db   *store.DB
	keys *credentials.Keys
	mail *outbox.Service
	// verifiers holds one *credentials.Verifier per organisation.
	verifiers   sync.Map
	keySet      credentials.KeySet
	revocations credentials.RevocationChecker
	cfg         Config
	byAddr      *auth.AddressLimiter
	log         *slog.Logger
}

// NewService returns the service.
func NewService(db *store.DB, keys *credentials.Keys, mail *outbox.Service, cfg Config, log *slog.Logger) *Service {
	return &Service{db: db, keys: keys, mail: mail, keySet: keys.KeySet(), revocations: credentials.NewDBRevocations(db.Bun), cfg: cfg,
		byAddr: auth.NewAddressLimiter(cfg.MaxGuessesPerAddress, cfg.GuessWindow), log: log}
}

// Issuer is the iss of credentials this server signs.
func (s *Service) Issuer() string { return s.cfg.BaseURL }

// link is the wallet page address for a token.
func (s *Service) link(tok string) string { return s.cfg.BaseURL + "/wallet/invite/" + tok }

// target is a record about to be invited.
type target struct {
	ID             uuid.UUID  `bun:"id"`
	TemplateID     uuid.UUID  `bun:"template_id"`
	TemplateName   string     `bun:"template_name"`
	Organisation   string     `bun:"organisation"`
	Status         string     `bun:"status"`
	State          string     `bun:"credential_state"`
	RecipientEmail string     `bun:"recipient_email"`
	ExpiresAt      *time.Time `bun:"expires_at"`
	Fields         fieldMap   `bun:"fields"`
	Questions      int        `bun:"questions"`
	IdentifierKind string     `bun:"unique_identifier_kind"`
}

const targetColumns = `r.id, r.template_id, t.name AS template_name, o.name AS organisation, r.status, r.credential_state,
	r.recipient_email, r.expires_at, r.fields, jsonb_array_length(r.security_questions) AS questions, t.unique_identifier_kind`

const targetFrom = ` FROM card_records r JOIN card_templates t ON t.id = r.template_id JOIN organisations o ON o.id = r.org_id `

// invitable says why a record cannot be invited, or "".
func (t *target) invitable(now time.Time) string {
	switch {
	case t.Status != string(records.Active):
		return fmt.Sprintf("record %s is %s; only active records can be invited", t.ID, t.Status)
	case t.RecipientEmail == "":
		return fmt.Sprintf("record %s has no recipient e-mail; set recipientEmail first", t.ID)
	case t.ExpiresAt != nil && !t.ExpiresAt.After(now):
		return fmt.Sprintf("record %s expired at %s", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	case t.Questions == 0 && t.IdentifierKind != "ID_NUMBER":
		// The identity check would be the e-mail address the link was
		// sent to: whoever reads the e-mail would get the card.
		return fmt.Sprintf("record %s has no security questions; add at least one before inviting (the e-mail address alone does not prove who opens the link)", t.ID)
	}
	return ""
}

// Invite sends a record an invitation (OPERATOR). A previous link stops
// working. A record whose phone already holds a credential is
// FAILED_PRECONDITION: resetCredential replaces a lost phone.
func (s *Service) Invite(ctx context.Context, id uuid.UUID) error {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return err
	}
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		t, err := lockTarget(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		if why := t.invitable(time.Now()); why != "" {
			return apperr.New(apperr.FailedPrecondition, "%s", why)
		}
		if t.State == string(records.CredentialActive) {
			return apperr.New(apperr.FailedPrecondition, "record %s already holds an active credential; resetCredential replaces a lost phone", id)
		}
		if err := s.inviteBun(ctx, tx, p, []*target{t}, false); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "record.invite", TargetKind: "record", TargetID: id.String(),
			Details: map[string]any{"recipient": t.RecipientEmail, "validDays": s.cfg.InvitationTTL.Hours() / 24}})
	})
	if err != nil {
		return err
	}
	s.mail.Kick(ctx)
	return nil
}

// InviteMatching invites every active record of a template that matches f,
// has a recipient e-mail and was never invited (OPERATOR). It returns how
// many were invited.
func (s *Service) InviteMatching(ctx context.Context, templateID uuid.UUID, f records.Filter) (int, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return 0, err
	}
	cond, args, err := records.FilterSQL(p.OrgID, templateID, f)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var exists bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM card_templates WHERE id = ? AND org_id = ?)`, templateID, p.OrgID).Scan(ctx, &exists); err != nil {
			return fmt.Errorf("invitations: find template: %w", err)
		}
		if !exists {
			return apperr.NotFoundf("template %s not found", templateID)
		}
		var ts []*target
		q := `SELECT ` + targetColumns + targetFrom + ` WHERE r.id IN (SELECT id FROM card_records WHERE ` + cond + `)
			AND r.status = 'ACTIVE' AND r.credential_state = 'NOT_INVITED' AND r.recipient_email <> ''
			AND (r.expires_at IS NULL OR r.expires_at > now())
			AND (jsonb_array_length(r.security_questions) > 0 OR t.unique_identifier_kind = 'ID_NUMBER') ORDER BY r.id FOR UPDATE OF r`
		if err := tx.NewRaw(q, args...).Scan(ctx, &ts); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("invitations: select records: %w", err)
		}
		n = len(ts)
		if n == 0 {
			return nil
		}
		if err := s.inviteBun(ctx, tx, p, ts, false); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "records.invite", TargetKind: "template", TargetID: templateID.String(),
			Details: map[string]any{"invited": n}})
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.mail.Kick(ctx)
	}
	return n, nil
}

// Reset replaces a lost phone (OPERATOR): the credential is revoked, the
// device unbound, and a new invitation sent; the state stays RESET until
// the new link is redeemed.
func (s *Service) Reset(ctx context.Context, id uuid.UUID) error {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return err
	}
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// The feed lock before the row locks (see revocation.LockFeed).
		if err := revocation.LockFeed(ctx, revocation.Bun(tx), p.OrgID); err != nil {
			return err
		}
		t, err := lockTarget(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		if why := t.invitable(time.Now()); why != "" {
			return apperr.New(apperr.FailedPrecondition, "%s", why)
		}
		if t.State == string(records.NotInvited) {
			return apperr.New(apperr.FailedPrecondition, "record %s was never invited; use inviteRecord", id)
		}
		revoked, err := revocation.Record(ctx, revocation.Bun(tx), p.OrgID, id, revocation.Reset, string(records.CredentialReset))
		if err != nil {
			return err
		}
		if err := s.inviteBun(ctx, tx, p, []*target{t}, true); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "credential.reset", TargetKind: "record", TargetID: id.String(),
			Details: map[string]any{"revokedCredentials": revoked, "recipient": t.RecipientEmail}})
	})
	if err != nil {
		return err
	}
	s.mail.Kick(ctx)
	return nil
}

func lockTarget(ctx context.Context, tx bun.IDB, org, id uuid.UUID) (*target, error) {
	var t target
	err := tx.NewRaw(`SELECT `+targetColumns+targetFrom+` WHERE r.id = ? AND r.org_id = ? FOR UPDATE OF r`, id, org).Scan(ctx, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("record %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("invitations: load record %s: %w", id, err)
	}
	return &t, nil
}

// invite creates fresh invitations for ts (superseding open ones, whose
// unsent e-mail is cancelled), moves their credential state to INVITED (or
// RESET for a replacement) and queues the e-mail, all in the caller's
// transaction (x, with writeMail writing outbox messages in it).
func (s *Service) invite(ctx context.Context, x revocation.Execer, writeMail func(...outbox.Message) error, org uuid.UUID, by *uuid.UUID, ts []*target, replacement bool) error {
	ids := make([]string, len(ts))
	hashes := make([][]byte, len(ts))
	msgs := make([]outbox.Message, len(ts))
	expires := time.Now().Add(s.cfg.InvitationTTL).UTC().Truncate(time.Second)
	for i, t := range ts {
		ids[i] = t.ID.String()
		tok, h := auth.NewOpaqueToken()
		hashes[i] = h
		subject, text, html, err := outbox.RenderInvitation(outbox.InvitationData{Organisation: t.Organisation, TemplateName: t.TemplateName,
			CardholderName: t.Fields.cardholderName(), ExpiresAt: expires, Replacement: replacement})
		if err != nil {
			return fmt.Errorf("invitations: render e-mail: %w", err)
		}
		rec := t.ID
		msgs[i] = outbox.Message{OrgID: org, Kind: outbox.KindInvitation, RecordID: &rec, Recipient: t.RecipientEmail,
			Subject: subject, Text: text, HTML: html, Secret: s.link(tok)}
	}
	if _, err := x.Exec(ctx, `UPDATE invitations SET superseded_at = now()
		WHERE org_id = $1 AND record_id = ANY($2::uuid[]) AND redeemed_at IS NULL AND superseded_at IS NULL`, org, ids); err != nil {
		return fmt.Errorf("invitations: supersede: %w", err)
	}
	if _, err := x.Exec(ctx, `UPDATE outbox_messages SET status = 'CANCELLED', sealed_secret = NULL
		WHERE id IN (SELECT id FROM outbox_messages WHERE org_id = $1 AND kind = 'INVITATION' AND status IN ('PENDING', 'HELD')
			AND record_id = ANY($2::uuid[]) FOR UPDATE SKIP LOCKED)`, org, ids); err != nil {
		return fmt.Errorf("invitations: cancel superseded e-mail: %w", err)
	}
	if _, err := x.Exec(ctx, `INSERT INTO invitations (org_id, record_id, token_hash, created_by, expires_at)
		SELECT $1, r, h, $2, $3 FROM unnest($4::uuid[], $5::bytea[]) AS u(r, h)`, org, by, expires, ids, hashes); err != nil {
		return fmt.Errorf("invitations: insert: %w", err)
	}
	state := "CASE WHEN credential_state = 'RESET' THEN 'RESET' ELSE 'INVITED' END"
	if replacement {
		state = "'RESET'"
	}
	if _, err := x.Exec(ctx, `UPDATE card_records SET credential_state = `+state+`, version = version + 1, updated_at = now()
		WHERE org_id = $1 AND id = ANY($2::uuid[])`, org, ids); err != nil {
		return fmt.Errorf("invitations: set credential state: %w", err)
	}
	return writeMail(msgs...)
}

// inviteBun is invite in a bun transaction, telling record subscribers.
func (s *Service) inviteBun(ctx context.Context, tx bun.Tx, p *caller.Principal, ts []*target, replacement bool) error {
	var by *uuid.UUID
	if p.OperatorID != uuid.Nil {
		by = &p.OperatorID
	}
	writeMail := func(msgs ...outbox.Message) error { return s.mail.Write(ctx, tx, msgs...) }
	if err := s.invite(ctx, revocation.Bun(tx), writeMail, p.OrgID, by, ts, replacement); err != nil {
		return err
	}
	return notifyChanged(ctx, tx, p.OrgID, ts)
}

// notifyChanged tells record subscribers: one event per record for a few,
// one bulk event per template for many.
func notifyChanged(ctx context.Context, tx bun.IDB, org uuid.UUID, ts []*target) error {
	if len(ts) <= 20 {
		for _, t := range ts {
			if err := events.Notify(ctx, tx, events.Event{Org: org, Topic: records.TopicFor(t.TemplateID), Kind: records.ChangeUpdated, ID: t.ID.String()}); err != nil {
				return err
			}
		}
		return nil
	}
	seen := map[uuid.UUID]bool{}
	for _, t := range ts {
		if !seen[t.TemplateID] {
			seen[t.TemplateID] = true
			if err := events.Notify(ctx, tx, events.Event{Org: org, Topic: records.TopicFor(t.TemplateID), Kind: records.ChangeBulk}); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldMap is a record's template field values.
type fieldMap map[string]string

// cardholderName guesses a greeting from common field keys; "" when the
// template has none of them.
func (f fieldMap) cardholderName() string {
	for _, k := range []string{"name", "full_name", "fullname", "display_name"} {
		if v := strings.TrimSpace(f[k]); v != "" {
			return v
		}
	}
	first := strings.TrimSpace(f["first_name"] + " " + f["firstname"])
	last := strings.TrimSpace(f["last_name"] + " " + f["lastname"])
	return strings.TrimSpace(first + " " + last)
}

// timeNow is the clock (a variable so the expiry logic reads one instant).
var timeNow = time.Now

// Scan reads the jsonb fields column.
func (f *fieldMap) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*f = nil
		return nil
	case []byte:
		return json.Unmarshal(v, f)
	case string:
		return json.Unmarshal([]byte(v), f)
	}
	return fmt.Errorf("invitations: cannot read fields from %T", src)
}
