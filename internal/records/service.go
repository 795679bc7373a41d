package records

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // registers JPEG for DecodeConfig
	_ "image/png"  // registers PNG for DecodeConfig
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/revocation"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/templates"
)

// Config tunes the service.
type Config struct {
	// PhotoMaxBytes bounds an uploaded photo.
	PhotoMaxBytes int64
	// PhotoMaxPixels bounds width×height, so a small file cannot claim a
	// huge image.
	PhotoMaxPixels int
}

// DefaultConfig is the default photo policy.
func DefaultConfig() Config { return Config{PhotoMaxBytes: 5 << 20, PhotoMaxPixels: 40_000_000} }

// Service stores card records, scoped to the caller's organisation.
type Service struct {
	db        *bun.DB
	pool      *pgxpool.Pool // reads pages of records straight through pgx (see List)
	templates *templates.Service
	cfg       Config
}

// NewService returns a record service.
func NewService(db *store.DB, ts *templates.Service, cfg Config) *Service {
	return &Service{db: db.Bun, pool: db.Pool, templates: ts, cfg: cfg}
}

// TopicFor is the event topic of a template's record changes.
func TopicFor(templateID uuid.UUID) string { return "records:" + templateID.String() }

// Change kinds published on a template's topic.
const (
	ChangeCreated = "CREATED"
	ChangeUpdated = "UPDATED"
	ChangeDeleted = "DELETED"
	// ChangeBulk: many records changed at once (an import); reload.
	ChangeBulk = "BULK_CHANGED"
)

type row struct {
	ID                uuid.UUID       `bun:"id"`
	OrgID             uuid.UUID       `bun:"org_id"`
	TemplateID        uuid.UUID       `bun:"template_id"`
	CardID            string          `bun:"card_id"`
	UniqueIdentifier  string          `bun:"unique_identifier"`
	Fields            json.RawMessage `bun:"fields"`
	BarcodeValue      string          `bun:"barcode_value"`
	RecipientEmail    string          `bun:"recipient_email"`
	SecurityQuestions json.RawMessage `bun:"security_questions"`
	ValidFrom         *time.Time      `bun:"valid_from"`
	ExpiresAt         *time.Time      `bun:"expires_at"`
	Status            string          `bun:"status"`
	CredentialState   string          `bun:"credential_state"`
	LockedFields      []string        `bun:"locked_fields,array"`
	HasPhoto          bool            `bun:"has_photo"`
	Version           int             `bun:"version"`
	CreatedAt         time.Time       `bun:"created_at"`
	UpdatedAt         time.Time       `bun:"updated_at"`
	ArchivedAt        *time.Time      `bun:"archived_at"`
}

const columns = `id, org_id, template_id, card_id, unique_identifier, fields, barcode_value, recipient_email, security_questions,
	valid_from, expires_at, status, credential_state, locked_fields, has_photo, version, created_at, updated_at, archived_at`

func (r *row) record() (*Record, error) {
	rec := &Record{ID: r.ID, OrgID: r.OrgID, TemplateID: r.TemplateID, CardID: r.CardID, UniqueIdentifier: r.UniqueIdentifier,
		BarcodeValue: r.BarcodeValue, RecipientEmail: r.RecipientEmail, ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt,
		Status: Status(r.Status), CredentialState: CredentialState(r.CredentialState), LockedFields: r.LockedFields,
		HasPhoto: r.HasPhoto, Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, ArchivedAt: r.ArchivedAt}
	fields, err := decodeFields(r.Fields)
	if err != nil {
		return nil, fmt.Errorf("records: decode fields of %s: %w", r.ID, err)
	}
	rec.Fields = fields
	var qs []storedQuestion
	// Most records have no questions: no need to start a decoder for "[]".
	if string(r.SecurityQuestions) != "[]" {
		if err := json.Unmarshal(r.SecurityQuestions, &qs); err != nil {
			return nil, fmt.Errorf("records: decode questions of %s: %w", r.ID, err)
		}
	}
	for _, q := range qs {
		rec.SecurityQuestions = append(rec.SecurityQuestions, q.Question)
	}
	if rec.LockedFields == nil {
		rec.LockedFields = []string{}
	}
	return rec, nil
}

func (r *row) state() state {
	var fields map[string]string
	_ = json.Unmarshal(r.Fields, &fields)
	return state{CardID: r.CardID, UniqueIdentifier: r.UniqueIdentifier, Fields: fields, BarcodeValue: r.BarcodeValue,
		RecipientEmail: r.RecipientEmail, ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt}
}

// CheckPhoto recognises a JPEG or PNG by its content and bounds its size
// and pixel count. It returns the content type, or why the data is refused.
func CheckPhoto(data []byte, maxBytes int64, maxPixels int) (contentType, reason string) {
	if int64(len(data)) > maxBytes {
		return "", fmt.Sprintf("is %d bytes, at most %d allowed", len(data), maxBytes)
	}
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		contentType = "image/jpeg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		contentType = "image/png"
	default:
		return "", "is not a JPEG or PNG image"
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Sprintf("is a damaged %s image: %v", strings.TrimPrefix(contentType, "image/"), err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels {
		return "", fmt.Sprintf("is %d×%d pixels, at most %d pixels allowed", cfg.Width, cfg.Height, maxPixels)
	}
	return contentType, ""
}

// checkPhoto applies CheckPhoto to an upload, reporting on path "photo".
func (s *Service) checkPhoto(p *Photo, fs *apperr.Fields) string {
	if p == nil {
		return ""
	}
	ct, reason := CheckPhoto(p.Data, s.cfg.PhotoMaxBytes, s.cfg.PhotoMaxPixels)
	if reason != "" {
		fs.Add("photo", "%s", reason)
	}
	return ct
}

// PhotoLimits returns the photo size and pixel limits.
func (s *Service) PhotoLimits() (int64, int) { return s.cfg.PhotoMaxBytes, s.cfg.PhotoMaxPixels }

func (s *Service) savePhoto(ctx context.Context, tx bun.IDB, rec uuid.UUID, org uuid.UUID, ct string, data []byte) error {
	sum := sha256.Sum256(data)
	_, err := tx.NewRaw(`INSERT INTO record_photos (record_id, org_id, content_type, data, sha256) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (record_id) DO UPDATE SET content_type = EXCLUDED.content_type, data = EXCLUDED.data, sha256 = EXCLUDED.sha256, updated_at = now()`,
		rec, org, ct, data, sum[:]).Exec(ctx)
	if err != nil {
		return fmt.Errorf("records: save photo: %w", err)
	}
	return nil
}

// uniqueness reports, as field errors, a card ID or unique identifier that
// another record of the template already uses.
func uniqueness(ctx context.Context, tx bun.IDB, templateID uuid.UUID, self uuid.UUID, st *state, fs *apperr.Fields) error {
	var clashes []struct {
		CardID bool `bun:"card"`
		Ident  bool `bun:"ident"`
	}
	key := IdentifierKey(st.UniqueIdentifier)
	err := tx.NewRaw(`SELECT card_id = ? AS card, unique_key = ? AS ident FROM card_records
		WHERE template_id = ? AND id <> ? AND (card_id = ? OR unique_key = ?)`,
		st.CardID, key, templateID, self, st.CardID, key).Scan(ctx, &clashes)
	if err != nil {
		return fmt.Errorf("records: check uniqueness: %w", err)
	}
	for _, c := range clashes {
		if c.CardID {
			fs.Add("input.cardId", "card ID %s is already used by another record of this template", st.CardID)
		}
		if c.Ident {
			fs.Add("input.uniqueIdentifier", "%q is already used by another record of this template", st.UniqueIdentifier)
		}
	}
	return nil
}

// uniqueViolation maps a unique-index race (two writers passing the
// pre-check together) to the same field error the pre-check gives.
func uniqueViolation(err error) error {
	switch c, _ := store.UniqueViolation(err); c {
	case "card_records_card_id_key":
		return apperr.Validation(apperr.FieldError{Path: "input.cardId", Reason: "is already used by another record of this template"})
	case "card_records_unique_identifier_key":
		return apperr.Validation(apperr.FieldError{Path: "input.uniqueIdentifier", Reason: "is already used by another record of this template"})
	}
	return nil
}

// Add creates a record under template templateID (OPERATOR).
func (s *Service) Add(ctx context.Context, templateID uuid.UUID, in Input, photo *Photo) (*Record, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	t, err := s.templates.GetForOrg(ctx, s.db, p.OrgID, templateID, false)
	if err != nil {
		return nil, err
	}
	st := state{CardID: in.CardID, UniqueIdentifier: in.UniqueIdentifier, Fields: in.Fields, BarcodeValue: in.BarcodeValue,
		RecipientEmail: in.RecipientEmail, ValidFrom: in.ValidFrom, ExpiresAt: in.ExpiresAt}
	if st.ExpiresAt == nil && t.DefaultValidityDays != nil {
		from := time.Now()
		if st.ValidFrom != nil {
			from = *st.ValidFrom
		}
		exp := from.AddDate(0, 0, *t.DefaultValidityDays)
		st.ExpiresAt = &exp
	}
	var fs apperr.Fields
	check(t, &st, &fs)
	ct := s.checkPhoto(photo, &fs)
	if err := fs.Err(); err != nil {
		return nil, err
	}
	if err := uniqueness(ctx, s.db, t.ID, uuid.Nil, &st, &fs); err != nil {
		return nil, err
	}
	qs, err := hashQuestions(ctx, in.SecurityQuestions, &fs)
	if err != nil {
		return nil, err
	}
	if err := fs.Err(); err != nil {
		return nil, err
	}
	fields, _ := json.Marshal(st.Fields)
	questions, _ := json.Marshal(qs)
	var r row
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := holdTemplate(ctx, tx, t.ID); err != nil {
			return err
		}
		err := tx.NewRaw(`INSERT INTO card_records (org_id, template_id, card_id, unique_identifier, unique_key, fields, barcode_value, recipient_email,
				security_questions, valid_from, expires_at, has_photo, search_text)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+columns,
			p.OrgID, t.ID, st.CardID, st.UniqueIdentifier, IdentifierKey(st.UniqueIdentifier), string(fields), st.BarcodeValue, st.RecipientEmail,
			string(questions), st.ValidFrom, st.ExpiresAt, ct != "", searchText(&st)).Scan(ctx, &r)
		if uerr := uniqueViolation(err); uerr != nil {
			return uerr
		}
		if err != nil {
			return fmt.Errorf("records: insert: %w", err)
		}
		if ct != "" {
			if err := s.savePhoto(ctx, tx, r.ID, p.OrgID, ct, photo.Data); err != nil {
				return err
			}
		}
		if err := audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "record.create", TargetKind: "record", TargetID: r.ID.String(),
			Details: map[string]any{"template": t.ID, "cardId": st.CardID, "uniqueIdentifier": st.UniqueIdentifier}}); err != nil {
			return err
		}
		return events.Notify(ctx, tx, events.Event{Org: p.OrgID, Topic: TopicFor(t.ID), Kind: ChangeCreated, ID: r.ID.String()})
	})
	if err != nil {
		return nil, err
	}
	return r.record()
}

// holdTemplate takes a share lock on the record's template for the rest of
// the transaction. An import applying to the template holds it exclusively;
// then the edit is refused at once instead of waiting or being overwritten.
func holdTemplate(ctx context.Context, tx bun.IDB, templateID uuid.UUID) error {
	_, err := tx.NewRaw(`SELECT 1 FROM card_templates WHERE id = ? FOR SHARE NOWAIT`, templateID).Exec(ctx)
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "55P03" {
		e := apperr.New(apperr.Conflict, "an import is being applied to this template: try again in a moment")
		e.Extra = map[string]any{"retryAfterSeconds": 2}
		return e
	}
	if err != nil {
		return fmt.Errorf("records: lock template: %w", err)
	}
	return nil
}

// loadForUpdate locks a record of the caller's organisation and holds its
// template against a concurrent import.
func loadForUpdate(ctx context.Context, tx bun.IDB, org, id uuid.UUID) (*row, error) {
	var r row
	err := tx.NewRaw(`SELECT `+columns+` FROM card_records WHERE id = ? AND org_id = ? FOR UPDATE`, id, org).Scan(ctx, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("record %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("records: load %s: %w", id, err)
	}
	if err := holdTemplate(ctx, tx, r.TemplateID); err != nil {
		return nil, err
	}
	return &r, nil
}

func conflict(current int) error {
	e := apperr.New(apperr.Conflict, "the record was changed by someone else (now at version %d): reload it and apply your change again", current)
	e.Extra = map[string]any{"currentVersion": current}
	return e
}

// Update applies a patch to a record at the given version (OPERATOR). A
// stale version is a CONFLICT; an archived record must be restored first.
func (s *Service) Update(ctx context.Context, id uuid.UUID, version int, patch Patch, photo *Photo) (*Record, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	var r *row
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		old, err := loadForUpdate(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		if old.Version != version {
			return conflict(old.Version)
		}
		if Status(old.Status) == Archived {
			return apperr.New(apperr.FailedPrecondition, "record %s is archived: restore it before editing", id)
		}
		t, err := s.templates.GetForOrg(ctx, tx, p.OrgID, old.TemplateID, false)
		if err != nil {
			return err
		}
		before := old.state()
		st := old.state()
		st.Fields = maps.Clone(before.Fields)
		if st.Fields == nil {
			st.Fields = map[string]string{}
		}
		applyPatch(&st, patch)
		if patch.CardID.Set && !patch.BarcodeValue.Set && before.BarcodeValue == before.CardID {
			// The barcode was the card ID by default: it follows a new card ID.
			st.BarcodeValue = ""
		}
		var fs apperr.Fields
		check(t, &st, &fs)
		ct := s.checkPhoto(photo, &fs)
		if err := fs.Err(); err != nil {
			return err
		}
		if err := uniqueness(ctx, tx, t.ID, id, &st, &fs); err != nil {
			return err
		}
		var qs []storedQuestion
		if patch.SecurityQuestions.Set {
			if qs, err = hashQuestions(ctx, patch.SecurityQuestions.Value, &fs); err != nil {
				return err
			}
		}
		if err := fs.Err(); err != nil {
			return err
		}
		changes := diff(&before, &st)
		if patch.SecurityQuestions.Set {
			changes["security_questions"] = audit.Change{Old: audit.Redacted, New: audit.Redacted}
		}
		if ct != "" {
			changes["photo"] = audit.Change{Old: old.HasPhoto, New: true}
		}
		if len(changes) == 0 {
			r = old
			return nil
		}
		questions := old.SecurityQuestions
		if patch.SecurityQuestions.Set {
			questions, _ = json.Marshal(qs)
		}
		fields, _ := json.Marshal(st.Fields)
		var nr row
		err = tx.NewRaw(`UPDATE card_records SET card_id = ?, unique_identifier = ?, unique_key = ?, fields = ?, barcode_value = ?, recipient_email = ?,
				security_questions = ?, valid_from = ?, expires_at = ?, has_photo = has_photo OR ?, search_text = ?, version = version + 1, updated_at = now()
			WHERE id = ? RETURNING `+columns,
			st.CardID, st.UniqueIdentifier, IdentifierKey(st.UniqueIdentifier), string(fields), st.BarcodeValue, st.RecipientEmail, string(questions),
			st.ValidFrom, st.ExpiresAt, ct != "", searchText(&st), id).Scan(ctx, &nr)
		if uerr := uniqueViolation(err); uerr != nil {
			return uerr
		}
		if err != nil {
			return fmt.Errorf("records: update %s: %w", id, err)
		}
		if ct != "" {
			if err := s.savePhoto(ctx, tx, id, p.OrgID, ct, photo.Data); err != nil {
				return err
			}
		}
		r = &nr
		return s.changed(ctx, tx, &nr, "record.update", map[string]any{"changes": changes}, ChangeUpdated)
	})
	if err != nil {
		return nil, err
	}
	return r.record()
}

func applyPatch(st *state, p Patch) {
	if p.CardID.Set {
		st.CardID = p.CardID.Value
	}
	if p.UniqueIdentifier.Set {
		st.UniqueIdentifier = p.UniqueIdentifier.Value
	}
	for k, v := range p.Fields {
		if v == "" {
			delete(st.Fields, k)
		} else {
			st.Fields[k] = v
		}
	}
	if p.BarcodeValue.Set {
		st.BarcodeValue = p.BarcodeValue.Value
	}
	if p.RecipientEmail.Set {
		st.RecipientEmail = p.RecipientEmail.Value
	}
	if p.ValidFrom.Set {
		st.ValidFrom = p.ValidFrom.Value
	}
	if p.ExpiresAt.Set {
		st.ExpiresAt = p.ExpiresAt.Value
	}
}

// diff lists the attributes that differ between two states, by name.
func diff(a, b *state) map[string]audit.Change {
	out := map[string]audit.Change{}
	add := func(name string, x, y any) {
		out[name] = audit.Change{Old: x, New: y}
	}
	if a.CardID != b.CardID {
		add("card_id", a.CardID, b.CardID)
	}
	if a.UniqueIdentifier != b.UniqueIdentifier {
		add("unique_identifier", a.UniqueIdentifier, b.UniqueIdentifier)
	}
	if a.BarcodeValue != b.BarcodeValue {
		add("barcode_value", a.BarcodeValue, b.BarcodeValue)
	}
	if a.RecipientEmail != b.RecipientEmail {
		add("recipient_email", a.RecipientEmail, b.RecipientEmail)
	}
	if !sameTime(a.ValidFrom, b.ValidFrom) {
		add("valid_from", a.ValidFrom, b.ValidFrom)
	}
	if !sameTime(a.ExpiresAt, b.ExpiresAt) {
		add("expires_at", a.ExpiresAt, b.ExpiresAt)
	}
	for _, k := range slices.Sorted(maps.Keys(a.Fields)) {
		if v, ok := b.Fields[k]; !ok || v != a.Fields[k] {
			add("fields."+k, a.Fields[k], b.Fields[k])
		}
	}
	for k, v := range b.Fields {
		if _, ok := a.Fields[k]; !ok {
			add("fields."+k, nil, v)
		}
	}
	return out
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// changed writes the audit event and change notification of an update.
func (s *Service) changed(ctx context.Context, tx bun.IDB, r *row, action string, details map[string]any, kind string) error {
	if err := audit.Write(ctx, tx, audit.Event{OrgID: r.OrgID, Action: action, TargetKind: "record", TargetID: r.ID.String(), Details: details}); err != nil {
		return err
	}
	return events.Notify(ctx, tx, events.Event{Org: r.OrgID, Topic: TopicFor(r.TemplateID), Kind: kind, ID: r.ID.String()})
}

// transition moves a record from one of the allowed statuses to to.
func (s *Service) transition(ctx context.Context, id uuid.UUID, from []Status, to Status, action string) (*Record, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	var r row
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// The revocation feed's lock comes before any row lock, in every
		// path that takes both, so they cannot deadlock.
		if revocationReason[to] != "" {
			if err := revocation.LockFeed(ctx, revocation.Bun(tx), p.OrgID); err != nil {
				return err
			}
		}
		old, err := loadForUpdate(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		if !slices.Contains(from, Status(old.Status)) {
			return apperr.New(apperr.FailedPrecondition, "record %s is %s; %s needs it to be %s", id, old.Status, action, joinStatuses(from))
		}
		if reason := revocationReason[to]; reason != "" {
			if _, err := revocation.Record(ctx, revocation.Bun(tx), p.OrgID, id, reason, string(CredentialRevoked)); err != nil {
				return err
			}
		}
		err = tx.NewRaw(`UPDATE card_records SET status = ?, archived_at = CASE WHEN ? = 'ARCHIVED' THEN now() END,
				version = version + 1, updated_at = now() WHERE id = ? RETURNING `+columns, to, to, id).Scan(ctx, &r)
		if err != nil {
			return fmt.Errorf("records: %s %s: %w", action, id, err)
		}
		return s.changed(ctx, tx, &r, "record."+action, map[string]any{"status": audit.Change{Old: old.Status, New: to}}, ChangeUpdated)
	})
	if err != nil {
		return nil, err
	}
	return r.record()
}

// revocationReason says which statuses end a record's credential.
var revocationReason = map[Status]string{Suspended: revocation.Suspended, Archived: revocation.Archived}

func joinStatuses(ss []Status) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, " or ")
}

// Suspend stops an active record from opening doors (OPERATOR).
func (s *Service) Suspend(ctx context.Context, id uuid.UUID) (*Record, error) {
	return s.transition(ctx, id, []Status{Active}, Suspended, "suspend")
}

// Resume reactivates a suspended record (OPERATOR).
func (s *Service) Resume(ctx context.Context, id uuid.UUID) (*Record, error) {
	return s.transition(ctx, id, []Status{Suspended}, Active, "resume")
}

// Archive retires an active or suspended record (OPERATOR).
func (s *Service) Archive(ctx context.Context, id uuid.UUID) (*Record, error) {
	return s.transition(ctx, id, []Status{Active, Suspended}, Archived, "archive")
}

// Restore brings an archived record back as active (OPERATOR).
func (s *Service) Restore(ctx context.Context, id uuid.UUID) (*Record, error) {
	return s.transition(ctx, id, []Status{Archived}, Active, "restore")
}

// Delete removes an archived record for good (OPERATOR); any other record
// is FAILED_PRECONDITION.
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return err
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := revocation.LockFeed(ctx, revocation.Bun(tx), p.OrgID); err != nil {
			return err
		}
		old, err := loadForUpdate(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		if Status(old.Status) != Archived {
			return apperr.New(apperr.FailedPrecondition, "record %s is %s: only archived records can be deleted (archive it first)", id, old.Status)
		}
		// Archiving revoked the credential already; this covers records
		// archived before credentials existed and keeps the feed's reason.
		if _, err := revocation.Record(ctx, revocation.Bun(tx), p.OrgID, id, revocation.Deleted, string(CredentialRevoked)); err != nil {
			return err
		}
		if _, err := tx.NewRaw(`DELETE FROM card_records WHERE id = ?`, id).Exec(ctx); err != nil {
			return fmt.Errorf("records: delete %s: %w", id, err)
		}
		return s.changed(ctx, tx, old, "record.delete", map[string]any{"cardId": old.CardID, "uniqueIdentifier": old.UniqueIdentifier}, ChangeDeleted)
	})
}

// LockFields protects attributes or template fields of a record from being
// overwritten by imports (OPERATOR).
func (s *Service) LockFields(ctx context.Context, id uuid.UUID, names []string) (*Record, error) {
	return s.setLocks(ctx, id, names, true)
}

// UnlockFields lets imports change the named attributes again (OPERATOR).
func (s *Service) UnlockFields(ctx context.Context, id uuid.UUID, names []string) (*Record, error) {
	return s.setLocks(ctx, id, names, false)
}

func (s *Service) setLocks(ctx context.Context, id uuid.UUID, names []string, lock bool) (*Record, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	var r row
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		old, err := loadForUpdate(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		t, err := s.templates.GetForOrg(ctx, tx, p.OrgID, old.TemplateID, false)
		if err != nil {
			return err
		}
		var fs apperr.Fields
		if len(names) == 0 {
			fs.Add("fields", "name at least one field")
		}
		for i, n := range names {
			if !lock && slices.Contains(old.LockedFields, n) {
				continue // a lock can always be lifted, even of a field since removed
			}
			if _, ok := t.Field(n); !ok && !lockableAttributes[n] {
				fs.Add(fmt.Sprintf("fields[%d]", i), "%q is neither a field of the template nor a lockable attribute", n)
			}
		}
		if err := fs.Err(); err != nil {
			return err
		}
		locked := slices.Clone(old.LockedFields)
		for _, n := range names {
			if lock && !slices.Contains(locked, n) {
				locked = append(locked, n)
			}
			if !lock {
				locked = slices.DeleteFunc(locked, func(x string) bool { return x == n })
			}
		}
		slices.Sort(locked)
		if slices.Equal(locked, old.LockedFields) {
			r = *old
			return nil
		}
		if err := tx.NewRaw(`UPDATE card_records SET locked_fields = ?, version = version + 1, updated_at = now() WHERE id = ? RETURNING `+columns,
			pgdialect.Array(locked), id).Scan(ctx, &r); err != nil {
			return fmt.Errorf("records: set locks on %s: %w", id, err)
		}
		action := "record.unlock_fields"
		if lock {
			action = "record.lock_fields"
		}
		return s.changed(ctx, tx, &r, action, map[string]any{"fields": names, "locked": locked}, ChangeUpdated)
	})
	if err != nil {
		return nil, err
	}
	return r.record()
}

// Get returns one record of the caller's organisation (VIEWER).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Record, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	var r row
	err = s.db.NewRaw(`SELECT `+columns+` FROM card_records WHERE id = ? AND org_id = ?`, id, p.OrgID).Scan(ctx, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("record %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("records: load %s: %w", id, err)
	}
	return r.record()
}

// GetPhoto returns a record's photo and its content type (VIEWER).
func (s *Service) GetPhoto(ctx context.Context, id uuid.UUID) (string, []byte, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return "", nil, err
	}
	var ph struct {
		ContentType string `bun:"content_type"`
		Data        []byte `bun:"data"`
	}
	err = s.db.NewRaw(`SELECT content_type, data FROM record_photos WHERE record_id = ? AND org_id = ?`, id, p.OrgID).Scan(ctx, &ph)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, apperr.NotFoundf("record %s has no photo", id)
	}
	if err != nil {
		return "", nil, fmt.Errorf("records: load photo of %s: %w", id, err)
	}
	return ph.ContentType, ph.Data, nil
}

// PhotoMaxBytes is the largest photo accepted.
func (s *Service) PhotoMaxBytes() int64 { return s.cfg.PhotoMaxBytes }
