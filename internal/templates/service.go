package templates

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/store"
)

// Limits on a template's shape.
const (
	MaxFields      = 200
	MaxOptions     = 500
	maxNameLength  = 200
	maxFieldLength = 100000
)

var fieldKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// reservedKeys are the record's own attributes: a template field may not
// shadow them (CSV headers and exports use these names).
var reservedKeys = map[string]bool{
	"id": true, "card_id": true, "unique_identifier": true, "barcode_value": true, "recipient_email": true,
	"valid_from": true, "expires_at": true, "status": true, "credential_state": true, "photo": true,
	"security_questions": true, "version": true, "created_at": true, "updated_at": true,
}

// Service stores templates, scoped to the caller's organisation.
type Service struct {
	db *bun.DB
	// pool reads single templates outside transactions straight through
	// pgx: every page of records reads its template, and bun's reflection
	// over database/sql cost more than the statement.
	pool *pgxpool.Pool
}

// NewService returns a template service.
func NewService(db *store.DB) *Service { return &Service{db: db.Bun, pool: db.Pool} }

type row struct {
	ID                   uuid.UUID       `bun:"id"`
	OrgID                uuid.UUID       `bun:"org_id"`
	Name                 string          `bun:"name"`
	Description          string          `bun:"description"`
	Fields               json.RawMessage `bun:"fields"`
	Symbology            string          `bun:"symbology"`
	CardIDFormat         string          `bun:"card_id_format"`
	UniqueIdentifierKind string          `bun:"unique_identifier_kind"`
	DefaultValidityDays  *int            `bun:"default_validity_days"`
	Version              int             `bun:"version"`
	CreatedAt            time.Time       `bun:"created_at"`
	UpdatedAt            time.Time       `bun:"updated_at"`
}

const columns = `id, org_id, name, description, fields, symbology, card_id_format, unique_identifier_kind, default_validity_days, version, created_at, updated_at`

func (r *row) template() (*Template, error) {
	t := &Template{ID: r.ID, OrgID: r.OrgID, Name: r.Name, Description: r.Description, Symbology: Symbology(r.Symbology),
		CardIDFormat: cardid.Format(r.CardIDFormat), UniqueIdentifierKind: IdentifierKind(r.UniqueIdentifierKind),
		DefaultValidityDays: r.DefaultValidityDays, Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	fields, err := fieldsOf(r.ID, r.Fields)
	if err != nil {
		return nil, fmt.Errorf("templates: decode fields of %s: %w", r.ID, err)
	}
	t.Fields = fields
	return t, nil
}

// decodedFields keeps each template's decoded fields next to the JSON
// they came from. Every page of records reads its template, and decoding
// the fields again was half the cost of that read; the stored JSON is
// compared byte for byte, so a changed template is decoded afresh. The
// slices are shared between callers: a Template's Fields are read-only.
var decodedFields = func() *lru.Cache[uuid.UUID, cachedFields] {
	c, err := lru.New[uuid.UUID, cachedFields](fieldsCacheSize)
	if err != nil {
		panic(err) // only a size below one fails
	}
	return c
}()

type cachedFields struct {
	raw    []byte
	fields []Field
}

// fieldsCacheSize bounds the cache; past it, the least recently used go.
const fieldsCacheSize = 4096

// fieldsOf decodes raw, template id's stored fields, or returns what it
// decoded from the same bytes before.
func fieldsOf(id uuid.UUID, raw []byte) ([]Field, error) {
	if hit, ok := decodedFields.Get(id); ok && bytes.Equal(hit.raw, raw) {
		return hit.fields, nil
	}
	var fields []Field
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	// Capacity equal to length: an append by a caller copies, never
	// writes into the shared array.
	fields = slices.Clip(fields)
	decodedFields.Add(id, cachedFields{raw: bytes.Clone(raw), fields: fields})
	return fields, nil
}

// normalise checks an input and fills defaults; every problem is reported.
func normalise(in *Input) error {
	var fs apperr.Fields
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		fs.Add("input.name", "must not be empty")
	} else if utf8.RuneCountInString(in.Name) > maxNameLength {
		fs.Add("input.name", "must be at most %d characters", maxNameLength)
	}
	if !symbologies[in.Symbology] {
		fs.Add("input.symbology", "unknown symbology %q", in.Symbology)
	}
	if !in.CardIDFormat.Valid() {
		fs.Add("input.cardIdFormat", "unknown card-ID format %q", in.CardIDFormat)
	}
	if in.UniqueIdentifierKind == "" {
		in.UniqueIdentifierKind = IdentifierEmail
	}
	if in.UniqueIdentifierKind != IdentifierEmail && in.UniqueIdentifierKind != IdentifierIDNumber {
		fs.Add("input.uniqueIdentifierKind", "must be EMAIL or ID_NUMBER")
	}
	if d := in.DefaultValidityDays; d != nil && (*d <= 0 || *d > 36500) {
		fs.Add("input.defaultValidityDays", "must be between 1 and 36500")
	}
	if len(in.Fields) > MaxFields {
		fs.Add("input.fields", "at most %d fields", MaxFields)
	}
	seen := map[string]bool{}
	for i := range in.Fields {
		f := &in.Fields[i]
		path := fmt.Sprintf("input.fields[%d]", i)
		f.Key = strings.TrimSpace(f.Key)
		f.Label = strings.TrimSpace(f.Label)
		switch {
		case !fieldKey.MatchString(f.Key):
			fs.Add(path+".key", "%q must start with a lower-case letter and hold only a-z, 0-9 and _ (at most 63)", f.Key)
		case reservedKeys[f.Key]:
			fs.Add(path+".key", "%q is reserved for the record's own attribute", f.Key)
		case seen[f.Key]:
			fs.Add(path+".key", "%q is used by another field", f.Key)
		}
		seen[f.Key] = true
		if f.Label == "" {
			f.Label = f.Key
		}
		if !fieldTypes[f.Type] {
			fs.Add(path+".type", "unknown type %q", f.Type)
		}
		if f.Side == "" {
			f.Side = Front
		}
		if f.Side != Front && f.Side != Back {
			fs.Add(path+".side", "must be FRONT or BACK")
		}
		if f.MaxLength == 0 {
			f.MaxLength = DefaultMaxLength
		}
		if f.MaxLength < 0 || f.MaxLength > maxFieldLength {
			fs.Add(path+".maxLength", "must be between 1 and %d", maxFieldLength)
		}
		if f.Type == TypeSelect {
			if len(f.Options) == 0 {
				fs.Add(path+".options", "a SELECT field needs at least one option")
			}
			if len(f.Options) > MaxOptions {
				fs.Add(path+".options", "at most %d options", MaxOptions)
			}
			opts := map[string]bool{}
			for j, o := range f.Options {
				o = strings.TrimSpace(o)
				f.Options[j] = o
				if o == "" {
					fs.Add(fmt.Sprintf("%s.options[%d]", path, j), "must not be empty")
				} else if opts[strings.ToLower(o)] {
					fs.Add(fmt.Sprintf("%s.options[%d]", path, j), "%q is listed twice", o)
				}
				opts[strings.ToLower(o)] = true
			}
		} else if len(f.Options) > 0 {
			fs.Add(path+".options", "only SELECT fields have options")
		}
	}
	return fs.Err()
}

func isUniqueViolation(err error, constraint string) bool {
	c, ok := store.UniqueViolation(err)
	return ok && c == constraint
}

// Create stores a new template (ADMIN).
func (s *Service) Create(ctx context.Context, in Input) (*Template, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := normalise(&in); err != nil {
		return nil, err
	}
	fields, _ := json.Marshal(in.Fields)
	var r row
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`INSERT INTO card_templates (org_id, name, description, fields, symbology, card_id_format, unique_identifier_kind, default_validity_days)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+columns,
			p.OrgID, in.Name, in.Description, string(fields), in.Symbology, in.CardIDFormat, in.UniqueIdentifierKind, in.DefaultValidityDays).Scan(ctx, &r)
		if isUniqueViolation(err, "card_templates_org_name_key") {
			return apperr.Validation(apperr.FieldError{Path: "input.name", Reason: fmt.Sprintf("a template named %q already exists", in.Name)})
		}
		if err != nil {
			return fmt.Errorf("templates: insert: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "template.create", TargetKind: "template", TargetID: r.ID.String(),
			Details: map[string]any{"name": in.Name}})
	})
	if err != nil {
		return nil, err
	}
	return r.template()
}

// Update replaces a template's definition (ADMIN). Removing a field that
// records still hold values for is refused with FAILED_PRECONDITION unless
// dropFieldData is set, in which case those values are deleted.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in Input, dropFieldData bool) (*Template, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := normalise(&in); err != nil {
		return nil, err
	}
	fields, _ := json.Marshal(in.Fields)
	var r row
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		old, err := s.get(ctx, tx, p.OrgID, id, true)
		if err != nil {
			return err
		}
		var removed []string
		for _, f := range old.Fields {
			if _, ok := in.fieldByKey(f.Key); !ok {
				removed = append(removed, f.Key)
			}
		}
		if len(removed) > 0 {
			var inUse int
			if err := tx.NewRaw(`SELECT count(*) FROM card_records WHERE template_id = ? AND jsonb_exists_any(fields, ?)`, id, pgdialect.Array(removed)).Scan(ctx, &inUse); err != nil {
				return fmt.Errorf("templates: count field data: %w", err)
			}
			if inUse > 0 && !dropFieldData {
				e := apperr.New(apperr.FailedPrecondition, "%d record(s) hold values for removed field(s) %s: pass dropFieldData to delete them", inUse, strings.Join(removed, ", "))
				e.Extra = map[string]any{"records": inUse, "fields": removed}
				return e
			}
			if inUse > 0 {
				// The search text is rebuilt so the dropped values cannot be found either.
				if _, err := tx.NewRaw(`UPDATE card_records SET fields = fields - ?::text[], locked_fields = ARRAY(SELECT unnest(locked_fields) EXCEPT SELECT unnest(?::text[])),
						version = version + 1, updated_at = now() WHERE template_id = ? AND jsonb_exists_any(fields, ?)`,
					pgdialect.Array(removed), pgdialect.Array(removed), id, pgdialect.Array(removed)).Exec(ctx); err != nil {
					return fmt.Errorf("templates: drop field data: %w", err)
				}
				if _, err := tx.NewRaw(`UPDATE card_records SET search_text = lower(card_id) || ' ' || lower(unique_identifier) || ' ' || lower(recipient_email) || ' ' ||
						COALESCE((SELECT string_agg(lower(value), ' ' ORDER BY key) FROM jsonb_each_text(fields)) || ' ', '')
					WHERE template_id = ?`, id).Exec(ctx); err != nil {
					return fmt.Errorf("templates: drop field data: %w", err)
				}
			}
		}
		err = tx.NewRaw(`UPDATE card_templates SET name = ?, description = ?, fields = ?, symbology = ?, card_id_format = ?, unique_identifier_kind = ?,
			default_validity_days = ?, version = version + 1, updated_at = now() WHERE id = ? AND org_id = ? RETURNING `+columns,
			in.Name, in.Description, string(fields), in.Symbology, in.CardIDFormat, in.UniqueIdentifierKind, in.DefaultValidityDays, id, p.OrgID).Scan(ctx, &r)
		if isUniqueViolation(err, "card_templates_org_name_key") {
			return apperr.Validation(apperr.FieldError{Path: "input.name", Reason: fmt.Sprintf("a template named %q already exists", in.Name)})
		}
		if err != nil {
			return fmt.Errorf("templates: update: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "template.update", TargetKind: "template", TargetID: id.String(),
			Details: map[string]any{"name": in.Name, "removedFields": removed, "droppedFieldData": dropFieldData && len(removed) > 0}})
	})
	if err != nil {
		return nil, err
	}
	return r.template()
}

func (in *Input) fieldByKey(key string) (Field, bool) {
	for _, f := range in.Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// Get returns one template of the caller's organisation; another
// organisation's template is NOT_FOUND.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Template, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, s.db, p.OrgID, id, false)
}

// GetForOrg returns a template of organisation org for another domain
// service that has already checked its caller.
func (s *Service) GetForOrg(ctx context.Context, db bun.IDB, org, id uuid.UUID, forUpdate bool) (*Template, error) {
	return s.get(ctx, db, org, id, forUpdate)
}

func (s *Service) get(ctx context.Context, db bun.IDB, org, id uuid.UUID, forUpdate bool) (*Template, error) {
	q := `SELECT ` + columns + ` FROM card_templates WHERE id = ? AND org_id = ?`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var r row
	var err error
	if own, ok := db.(*bun.DB); ok && own == s.db && !forUpdate {
		err = s.pool.QueryRow(ctx, store.Numbered(q), id, org).Scan(
			(*[16]byte)(&r.ID), (*[16]byte)(&r.OrgID), &r.Name, &r.Description, (*[]byte)(&r.Fields), &r.Symbology, &r.CardIDFormat,
			&r.UniqueIdentifierKind, &r.DefaultValidityDays, &r.Version, &r.CreatedAt, &r.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			err = sql.ErrNoRows
		}
	} else {
		err = db.NewRaw(q, id, org).Scan(ctx, &r)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("template %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("templates: load %s: %w", id, err)
	}
	return r.template()
}

// List returns the caller's templates by name.
func (s *Service) List(ctx context.Context) ([]*Template, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, `SELECT `+columns+` FROM card_templates WHERE org_id = ? ORDER BY lower(name)`, p.OrgID)
}

// ByIDs loads several templates of the caller's organisation at once (for
// dataloaders); missing or foreign IDs are simply absent from the result.
func (s *Service) ByIDs(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*Template, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	ts, err := s.query(ctx, `SELECT `+columns+` FROM card_templates WHERE org_id = ? AND id = ANY(?::uuid[])`, p.OrgID, pgdialect.Array(idStrings(ids)))
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]*Template, len(ts))
	for _, t := range ts {
		out[t.ID] = t
	}
	return out, nil
}

func (s *Service) query(ctx context.Context, q string, args ...any) ([]*Template, error) {
	var rows []row
	if err := s.db.NewRaw(q, args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("templates: list: %w", err)
	}
	out := make([]*Template, 0, len(rows))
	for i := range rows {
		t, err := rows[i].template()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
