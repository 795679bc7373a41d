package invitations

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/gateways"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/revocation"
	"github.com/lintel/lintel/internal/store"
)

// Revocation is one entry of the revocation feed.
type Revocation struct {
	Seq                 int64     `bun:"seq"`
	CredentialID        uuid.UUID `bun:"credential_id"`
	RecordID            uuid.UUID `bun:"record_id"`
	Reason              string    `bun:"reason"`
	RevokedAt           time.Time `bun:"revoked_at"`
	CredentialExpiresAt time.Time `bun:"credential_expires_at"`
}

// RevocationPage is a slice of the feed and the cursor to continue from.
type RevocationPage struct {
	Items   []Revocation
	Cursor  string
	HasMore bool
}

// Revocations returns the organisation's revocations after the cursor, in
// order (gateways, and ADMINs). Pass the returned cursor next time; an
// empty one starts from the beginning.
func (s *Service) Revocations(ctx context.Context, since string, first int) (*RevocationPage, error) {
	p := caller.From(ctx)
	if p == nil {
		return nil, apperr.New(apperr.Unauthenticated, "authentication required")
	}
	if p.Role != caller.RoleGateway && !p.Allows(caller.RoleAdmin) {
		return nil, apperr.New(apperr.Forbidden, "the revocation feed is for gateways and ADMINs")
	}
	var after int64
	if since != "" {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil || n < 0 {
			return nil, apperr.Validation(apperr.FieldError{Path: "since", Reason: "not a cursor returned by revocations"})
		}
		after = n
	}
	if first <= 0 {
		first = 1000
	}
	if first > 10000 {
		return nil, apperr.Validation(apperr.FieldError{Path: "first", Reason: "at most 10000"})
	}
	var items []Revocation
	if err := s.db.Bun.NewRaw(`SELECT seq, credential_id, record_id, reason, revoked_at, credential_expires_at FROM revocations
		WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?`, p.OrgID, after, first+1).Scan(ctx, &items); err != nil {
		return nil, fmt.Errorf("invitations: read revocations: %w", err)
	}
	page := &RevocationPage{Cursor: strconv.FormatInt(after, 10)}
	if len(items) > first {
		items, page.HasMore = items[:first], true
	}
	if len(items) > 0 {
		page.Cursor = strconv.FormatInt(items[len(items)-1].Seq, 10)
	}
	page.Items = items
	return page, nil
}

// RotateKey retires the organisation's issuing key and creates a new one
// (ADMIN). Credentials signed with the old key stay valid until they
// expire; its public key stays published until then.
func (s *Service) RotateKey(ctx context.Context) (string, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return "", err
	}
	var kid string
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		kid, err = s.keys.Rotate(ctx, tx, p.OrgID, s.cfg.CredentialTTL)
		if err != nil {
			return err
		}
		if err := events.Notify(ctx, tx, events.Event{Org: p.OrgID, Topic: gateways.TopicAccessList(p.OrgID), Kind: "KEYS"}); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "issuing_key.rotate", TargetKind: "issuing_key", TargetID: kid})
	})
	return kid, err
}

// JWKS is the JSON Web Key Set of every published issuing key.
func (s *Service) JWKS(ctx context.Context) ([]byte, error) {
	keys, err := s.keys.Published(ctx)
	if err != nil {
		return nil, err
	}
	return credentials.JWKS(keys), nil
}

// verifierFor returns the organisation's verifier: it accepts only that
// organisation's credentials and keeps its own replay cache.
func (s *Service) verifierFor(org uuid.UUID) *credentials.Verifier {
	if v, ok := s.verifiers.Load(org); ok {
		return v.(*credentials.Verifier)
	}
	v := credentials.NewVerifier(s.keySet, s.revocations, Audience)
	v.Window, v.OrgID = s.cfg.CodeWindow, org
	actual, _ := s.verifiers.LoadOrStore(org, v)
	return actual.(*credentials.Verifier)
}

// CodeCheck is the outcome of verifying a rotating code.
type CodeCheck struct {
	Valid    bool
	Reason   string // a credentials rejection reason when not valid
	Detail   string
	RecordID *uuid.UUID
	CardID   string
	CodeTime *time.Time
}

// VerifyCode checks a rotating code shown by a phone, as a door would
// (OPERATOR: a console used as a scanner). A code is accepted once.
func (s *Service) VerifyCode(ctx context.Context, code string) (*CodeCheck, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	if len(code) > 8192 {
		return nil, apperr.Validation(apperr.FieldError{Path: "code", Reason: "longer than any code a wallet shows"})
	}
	v, err := s.verifierFor(p.OrgID).VerifyCode(ctx, code)
	var rej *credentials.Rejection
	if errors.As(err, &rej) {
		return &CodeCheck{Reason: string(rej.Reason), Detail: rej.Detail}, nil
	}
	if err != nil {
		return nil, err
	}
	// The verifier's replay cache is this process's; the database makes a
	// code good once across every replica and restart.
	res, err := s.db.Bun.NewRaw(`UPDATE credentials SET last_code_at = ? WHERE id = ? AND (last_code_at IS NULL OR last_code_at < ?)`,
		v.CodeTime, v.Claims.ID, v.CodeTime).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("invitations: record code use: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &CodeCheck{Reason: string(credentials.Replayed), Detail: "this code, or a newer one of the same phone, was already used"}, nil
	}
	rec, t := v.Claims.RecordID, v.CodeTime
	return &CodeCheck{Valid: true, RecordID: &rec, CardID: v.Claims.CardID, CodeTime: &t}, nil
}

// ExpireArgs is the periodic job that ends credentials whose record or own
// validity has run out.
type ExpireArgs struct{}

// Kind names the job.
func (ExpireArgs) Kind() string { return "expire_credentials" }

// ExpireWorker runs ExpireArgs.
type ExpireWorker struct {
	river.WorkerDefaults[ExpireArgs]
	db *store.DB
}

// NewExpireWorker returns the worker.
func NewExpireWorker(db *store.DB) *ExpireWorker { return &ExpireWorker{db: db} }

// Work expires, organisation by organisation (the feed lock is per
// organisation), records past their expiry and credentials past theirs.
func (w *ExpireWorker) Work(ctx context.Context, _ *river.Job[ExpireArgs]) error {
	_, err := Expire(ctx, w.db)
	return err
}

// Expire moves credentials whose validity ended to EXPIRED and lists them
// in the revocation feed; it returns how many records changed.
func Expire(ctx context.Context, db *store.DB) (int, error) {
	const due = `(credential_state IN ('INVITED', 'ACTIVE', 'RESET') AND expires_at <= now()
		OR id IN (SELECT record_id FROM credentials WHERE revoked_at IS NULL AND expires_at <= now()))`
	var orgs []uuid.UUID
	if err := db.Bun.NewRaw(`SELECT DISTINCT org_id FROM card_records WHERE `+due).Scan(ctx, &orgs); err != nil {
		return 0, fmt.Errorf("invitations: find expired credentials: %w", err)
	}
	total := 0
	for _, org := range orgs {
		err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var ts []*target
			if err := tx.NewRaw(`SELECT id, template_id FROM card_records WHERE org_id = ? AND `+due+` ORDER BY id FOR UPDATE`, org).Scan(ctx, &ts); err != nil {
				return fmt.Errorf("invitations: lock expired records: %w", err)
			}
			if len(ts) == 0 {
				return nil
			}
			ids := make([]string, len(ts))
			for i, t := range ts {
				ids[i] = t.ID.String()
			}
			if _, err := revocation.Records(ctx, revocation.Bun(tx), org, `SELECT unnest($3::uuid[])`, revocation.Expired, string(records.CredentialExpired), ids); err != nil {
				return err
			}
			if _, err := tx.NewRaw(`UPDATE card_records SET version = version + 1, updated_at = now() WHERE id IN (?)`, bun.In(ids)).Exec(ctx); err != nil {
				return fmt.Errorf("invitations: mark expired: %w", err)
			}
			total += len(ts)
			if err := audit.Write(ctx, tx, audit.Event{OrgID: org, Action: "credentials.expire", TargetKind: "organisation", TargetID: org.String(),
				Details: map[string]any{"records": len(ts)}}); err != nil {
				return err
			}
			return notifyChanged(ctx, tx, org, ts)
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
