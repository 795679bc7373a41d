package records

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/jsonquote"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/templates"
)

// Filter narrows a record listing; zero values do not filter.
type Filter struct {
	Status          *Status
	CredentialState *CredentialState
	// Search matches a substring of the card ID, unique identifier,
	// recipient e-mail or any field value, case-insensitively.
	Search string
	// ValidAt keeps records whose validity window contains the instant.
	ValidAt       *time.Time
	ExpiresBefore *time.Time
	UpdatedSince  *time.Time
}

// OrderField is what a listing is sorted by (the record ID breaks ties).
type OrderField string

// Sort keys.
const (
	OrderCreatedAt        OrderField = "CREATED_AT"
	OrderUpdatedAt        OrderField = "UPDATED_AT"
	OrderCardID           OrderField = "CARD_ID"
	OrderUniqueIdentifier OrderField = "UNIQUE_IDENTIFIER"
)

var orderColumns = map[OrderField]string{
	OrderCreatedAt:        "created_at",
	OrderUpdatedAt:        "updated_at",
	OrderCardID:           `card_id COLLATE "C"`,
	OrderUniqueIdentifier: `unique_key COLLATE "C"`,
}

// Order is a sort key and direction.
type Order struct {
	Field OrderField
	Desc  bool
}

// PageArgs are Relay pagination arguments.
type PageArgs struct {
	First  *int
	After  string
	Last   *int
	Before string
}

// MaxPageSize bounds first/last.
const MaxPageSize = 500

// DefaultPageSize applies when neither first nor last is given.
const DefaultPageSize = 50

// Page is one page of a listing.
type Page struct {
	// Template is the listed template, read to check the caller may see
	// it; resolvers of the page's records can use it rather than read it
	// again.
	Template        *templates.Template
	Records         []*Record
	Cursors         []string
	HasNextPage     bool
	HasPreviousPage bool
}

// cursor is the position of a record in a sorted listing.
type cursor struct {
	Field OrderField `json:"f"`
	Value string     `json:"v"`
	ID    uuid.UUID  `json:"i"`
}

// encodeCursor writes c as JSON by hand (what json.Marshal writes, for
// the plain values cursors nearly always hold): every record of a page
// gets one, and reflection was a tenth of a page's cost.
func encodeCursor(c cursor) string {
	b := make([]byte, 0, 96)
	b = append(b, `{"f":`...)
	b = jsonquote.Append(b, string(c.Field))
	b = append(b, `,"v":`...)
	b = jsonquote.Append(b, c.Value)
	b = append(b, `,"i":"`...)
	b = append(b, c.ID.String()...)
	b = append(b, `"}`...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, arg string, field OrderField) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := apperr.New(apperr.Invalid, "%s: not a cursor of this listing", arg)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Field != field {
		return nil, bad
	}
	if field == OrderCreatedAt || field == OrderUpdatedAt {
		if _, err := time.Parse(time.RFC3339Nano, c.Value); err != nil {
			return nil, bad
		}
	}
	return &c, nil
}

func sortValue(r *Record, f OrderField) string {
	switch f {
	case OrderUpdatedAt:
		return r.UpdatedAt.UTC().Format(time.RFC3339Nano)
	case OrderCardID:
		return r.CardID
	case OrderUniqueIdentifier:
		return IdentifierKey(r.UniqueIdentifier)
	default:
		return r.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
}

// where builds the filter's SQL condition for the caller's organisation.
func where(org, templateID uuid.UUID, f Filter) (string, []any) {
	conds := []string{"org_id = ?", "template_id = ?"}
	args := []any{org, templateID}
	if f.Status != nil {
		conds = append(conds, "status = ?")
		args = append(args, *f.Status)
	}
	if f.CredentialState != nil {
		conds = append(conds, "credential_state = ?")
		args = append(args, *f.CredentialState)
	}
	if s := strings.TrimSpace(f.Search); s != "" {
		conds = append(conds, `search_text LIKE ? ESCAPE '\'`)
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(s))
		args = append(args, "%"+esc+"%")
	}
	if f.ValidAt != nil {
		conds = append(conds, "(valid_from IS NULL OR valid_from <= ?) AND (expires_at IS NULL OR expires_at > ?)")
		args = append(args, *f.ValidAt, *f.ValidAt)
	}
	if f.ExpiresBefore != nil {
		conds = append(conds, "expires_at < ?")
		args = append(args, *f.ExpiresBefore)
	}
	if f.UpdatedSince != nil {
		conds = append(conds, "updated_at >= ?")
		args = append(args, *f.UpdatedSince)
	}
	return strings.Join(conds, " AND "), args
}

func validateFilter(f Filter) error {
	var fs apperr.Fields
	if f.Status != nil && !slices.Contains([]Status{Active, Suspended, Archived}, *f.Status) {
		fs.Add("filter.status", "unknown status %q", *f.Status)
	}
	if len(f.Search) > 200 {
		fs.Add("filter.search", "must be at most 200 characters")
	}
	return fs.Err()
}

// List returns a page of a template's records (VIEWER). Pagination is by
// keyset on (sort key, id), so pages stay stable and cheap however deep.
func (s *Service) List(ctx context.Context, templateID uuid.UUID, f Filter, order Order, page PageArgs) (*Page, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	if err := validateFilter(f); err != nil {
		return nil, err
	}
	tmpl, err := s.templates.GetForOrg(ctx, s.db, p.OrgID, templateID, false)
	if err != nil {
		return nil, err
	}
	if order.Field == "" {
		order.Field = OrderCreatedAt
	}
	col, ok := orderColumns[order.Field]
	if !ok {
		return nil, apperr.New(apperr.Invalid, "orderBy.field: unknown sort key %q", order.Field)
	}
	if page.First != nil && page.Last != nil {
		return nil, apperr.New(apperr.Invalid, "pass first or last, not both")
	}
	limit := DefaultPageSize
	backward := false
	switch {
	case page.First != nil:
		limit = *page.First
	case page.Last != nil:
		limit, backward = *page.Last, true
	case page.Before != "":
		backward = true
	}
	if limit < 0 || limit > MaxPageSize {
		return nil, apperr.New(apperr.Invalid, "first/last must be between 0 and %d", MaxPageSize)
	}
	after, err := decodeCursor(page.After, "after", order.Field)
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor(page.Before, "before", order.Field)
	if err != nil {
		return nil, err
	}
	cond, args := where(p.OrgID, templateID, f)
	// Bounds are expressed in the listing's own direction: "after" is
	// further along the sort order, whichever way it runs.
	greater, less := ">", "<"
	if order.Desc {
		greater, less = "<", ">"
	}
	castTo := ""
	if order.Field == OrderCreatedAt || order.Field == OrderUpdatedAt {
		castTo = "::timestamptz"
	} else {
		castTo = ` COLLATE "C"`
	}
	if after != nil {
		cond += fmt.Sprintf(" AND (%s, id) %s (?%s, ?)", col, greater, castTo)
		args = append(args, after.Value, after.ID)
	}
	if before != nil {
		cond += fmt.Sprintf(" AND (%s, id) %s (?%s, ?)", col, less, castTo)
		args = append(args, before.Value, before.ID)
	}
	dir := "ASC"
	if order.Desc != backward {
		dir = "DESC"
	}
	q := fmt.Sprintf(`SELECT %s FROM card_records WHERE %s ORDER BY %s %s, id %s LIMIT ?`, columns, cond, col, dir, dir)
	args = append(args, limit+1)
	rows, err := s.listRows(ctx, q, args)
	if err != nil {
		return nil, fmt.Errorf("records: list: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if backward {
		slices.Reverse(rows)
	}
	out := &Page{Template: tmpl, Records: make([]*Record, 0, len(rows)), Cursors: make([]string, 0, len(rows))}
	for i := range rows {
		r, err := rows[i].record()
		if err != nil {
			return nil, err
		}
		out.Records = append(out.Records, r)
		out.Cursors = append(out.Cursors, encodeCursor(cursor{Field: order.Field, Value: sortValue(r, order.Field), ID: r.ID}))
	}
	if backward {
		out.HasPreviousPage = more
		out.HasNextPage = before != nil
	} else {
		out.HasNextPage = more
		out.HasPreviousPage = after != nil
	}
	return out, nil
}

// listRows runs a listing's query (bun "?" placeholders) through pgx
// rather than bun: a page is the API's most common read, and bun's
// reflection over database/sql cost three times what pgx's typed scan
// does. Parameters are sent apart from the statement, so PostgreSQL
// plans each shape of listing once per connection.
func (s *Service) listRows(ctx context.Context, q string, args []any) ([]row, error) {
	rows, err := s.pool.Query(ctx, store.Numbered(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		// IDs are scanned as arrays: as uuid.UUID (an sql.Scanner) pgx
		// would format each as text for it to parse back.
		if err := rows.Scan((*[16]byte)(&r.ID), (*[16]byte)(&r.OrgID), (*[16]byte)(&r.TemplateID), &r.CardID, &r.UniqueIdentifier, (*[]byte)(&r.Fields),
			&r.BarcodeValue, &r.RecipientEmail, (*[]byte)(&r.SecurityQuestions), &r.ValidFrom, &r.ExpiresAt,
			&r.Status, &r.CredentialState, &r.LockedFields, &r.HasPhoto, &r.Version, &r.CreatedAt, &r.UpdatedAt,
			&r.ArchivedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Count returns how many of a template's records match f (VIEWER).
func (s *Service) Count(ctx context.Context, templateID uuid.UUID, f Filter) (int, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return 0, err
	}
	cond, args := where(p.OrgID, templateID, f)
	var n int
	if err := s.db.NewRaw(`SELECT count(*) FROM card_records WHERE `+cond, args...).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("records: count: %w", err)
	}
	return n, nil
}

// FilterSQL returns the SQL condition (bun "?" placeholders) selecting a
// template's records in org that match f, for services that act on every
// matching record (bulk invitations).
func FilterSQL(org, templateID uuid.UUID, f Filter) (string, []any, error) {
	if err := validateFilter(f); err != nil {
		return "", nil, err
	}
	cond, args := where(org, templateID, f)
	return cond, args, nil
}
