package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/barcodes"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/csvin"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

// checker turns one CSV row into a staged row: canonical values, or the
// reasons the row is invalid. It knows only the template and the mapping;
// everything that depends on stored records is decided in SQL.
type checker struct {
	tmpl      *templates.Template
	format    cardid.Format
	header    []string
	attrCol   map[string]int // attribute → 0-based column
	fieldCols []fieldCol
	required  []string // required template field keys
	mappedKey map[string]bool
}

type fieldCol struct {
	col   int
	field templates.Field
}

func newChecker(t *templates.Template, header []string, mapping []ColumnMapping, opts Options) *checker {
	c := &checker{tmpl: t, format: t.CardIDFormat, header: header, attrCol: map[string]int{}, mappedKey: map[string]bool{}}
	if opts.CardIDFormat != "" {
		c.format = opts.CardIDFormat
	}
	for _, m := range mapping {
		if m.Field == "" {
			continue
		}
		if f, ok := t.Field(m.Field); ok {
			c.fieldCols = append(c.fieldCols, fieldCol{col: m.Column - 1, field: f})
			c.mappedKey[f.Key] = true
		} else {
			c.attrCol[m.Field] = m.Column - 1
		}
	}
	for _, f := range t.Fields {
		if f.Required {
			c.required = append(c.required, f.Key)
		}
	}
	return c
}

// stagedRow is one row ready for COPY.
type stagedRow struct {
	line            int
	errors          []FieldError
	cardID          string
	cardIDRead      string
	uid             string
	fields          map[string]string
	cleared         []string
	missingRequired []string
	text            map[string]string // barcode_value, recipient_email when mapped
	times           map[string]*time.Time
}

// cell returns a column's value. A cell an export (or a spreadsheet user)
// neutralised against formula injection — "'=SUM(A1)", "'+41…" — reads as
// the value it protects, so an exported file imports back unchanged.
func (c *checker) cell(cells []string, col int) string {
	if col < len(cells) {
		return strings.TrimSpace(csvin.Unneutralise(strings.TrimSpace(cells[col])))
	}
	return ""
}

func (c *checker) check(cells []string, line int) stagedRow {
	r := stagedRow{line: line, fields: map[string]string{}, text: map[string]string{}, times: map[string]*time.Time{}}
	bad := func(col int, field, format string, args ...any) {
		r.errors = append(r.errors, FieldError{Column: col + 1, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if n := len(cells); n > len(c.header) {
		for i := len(c.header); i < n; i++ {
			if strings.TrimSpace(cells[i]) != "" {
				bad(i, "", "the row has %d cells but the header has %d", n, len(c.header))
				break
			}
		}
	} else if n < len(c.header) {
		bad(-1, "", "the row has %d cells but the header has %d", n, len(c.header))
	}
	if col, ok := c.attrCol[AttrCardID]; ok {
		raw := c.cell(cells, col)
		if raw == "" {
			bad(col, AttrCardID, "missing required value (card ID)")
		} else if canon, explained, err := cardid.Explain(c.format, raw); err != nil {
			var ce *cardid.Error
			if errors.As(err, &ce) {
				bad(col, AttrCardID, "bad card ID: %s", ce.Reason)
			} else {
				bad(col, AttrCardID, "bad card ID: %v", err)
			}
		} else {
			r.cardID, r.cardIDRead = canon, explained
		}
	}
	if col, ok := c.attrCol[AttrUniqueIdentifier]; ok {
		raw := c.cell(cells, col)
		switch {
		case raw == "":
			bad(col, AttrUniqueIdentifier, "missing required value (unique identifier)")
		case utf8.RuneCountInString(raw) > 254:
			bad(col, AttrUniqueIdentifier, "is longer than 254 characters")
		case c.tmpl.UniqueIdentifierKind == templates.IdentifierEmail && !templates.IsEmail(raw):
			bad(col, AttrUniqueIdentifier, "bad e-mail %q (the template identifies cardholders by e-mail)", raw)
		default:
			if c.tmpl.UniqueIdentifierKind == templates.IdentifierEmail {
				raw = strings.ToLower(raw)
			}
			r.uid = raw
		}
	}
	for _, fc := range c.fieldCols {
		raw := c.cell(cells, fc.col)
		f := fc.field
		f.Required = false // whether a value is needed depends on the record: decided in SQL
		v, reason := templates.CheckValue(f, raw)
		switch {
		case reason != "":
			bad(fc.col, f.Key, "%s", reason)
		case v == "":
			r.cleared = append(r.cleared, f.Key)
		default:
			r.fields[f.Key] = v
		}
	}
	for _, key := range c.required {
		if _, ok := r.fields[key]; !ok {
			r.missingRequired = append(r.missingRequired, key)
		}
	}
	if col, ok := c.attrCol[AttrBarcodeValue]; ok {
		v := c.cell(cells, col)
		if utf8.RuneCountInString(v) > 2000 {
			bad(col, AttrBarcodeValue, "is longer than 2000 characters")
		} else if v != "" {
			if err := barcodes.Check(string(c.tmpl.Symbology), v); err != nil {
				bad(col, AttrBarcodeValue, "%s", err.Error())
			}
		}
		r.text[AttrBarcodeValue] = v
	}
	if col, ok := c.attrCol[AttrPhoto]; ok {
		r.text[AttrPhoto] = c.cell(cells, col)
	}
	if col, ok := c.attrCol[AttrRecipientEmail]; ok {
		v := strings.ToLower(c.cell(cells, col))
		if v != "" && !templates.IsEmail(v) {
			bad(col, AttrRecipientEmail, "bad e-mail %q", v)
		}
		r.text[AttrRecipientEmail] = v
	}
	for _, attr := range []string{AttrValidFrom, AttrExpiresAt} {
		col, ok := c.attrCol[attr]
		if !ok {
			continue
		}
		v := c.cell(cells, col)
		if v == "" {
			r.times[attr] = nil
			continue
		}
		t, err := parseInstant(v, attr == AttrExpiresAt)
		if err != nil {
			bad(col, attr, "unparseable date %q (use YYYY-MM-DD or RFC 3339)", v)
			continue
		}
		r.times[attr] = &t
	}
	if vf, ex := r.times[AttrValidFrom], r.times[AttrExpiresAt]; vf != nil && ex != nil && !ex.After(*vf) {
		bad(c.attrCol[AttrExpiresAt], AttrExpiresAt, "expires before it becomes valid")
	}
	return r
}

// parseInstant reads a validity bound. A bare date means the start of that
// day (UTC) — or, for an expiry, the end of it, so "expires 2026-12-31" is
// valid through the 31st.
func parseInstant(s string, endOfDay bool) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02", "2006/01/02", "02.01.2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			if endOfDay {
				t = t.AddDate(0, 0, 1)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unparseable date %q", s)
}

// stageColumns are import_stage's columns, in COPY order.
var stageColumns = []string{"line", "errors", "card_id", "card_id_read", "uid", "uid_key", "fields", "cleared", "missing_required",
	"barcode_value", "recipient_email", "valid_from", "expires_at", "photo_name"}

const createStage = `CREATE TEMP TABLE import_stage (
	line int NOT NULL,
	errors jsonb,
	card_id text,
	card_id_read text,
	uid text,
	uid_key text,
	fields jsonb NOT NULL,
	cleared text[] NOT NULL,
	missing_required text[] NOT NULL,
	barcode_value text,
	recipient_email text,
	valid_from timestamptz,
	expires_at timestamptz,
	photo_name text
) ON COMMIT DROP`

// stageSource feeds rows from the CSV reader to COPY.
type stageSource struct {
	rd       *csvin.Reader
	check    *checker
	row      stagedRow
	err      error
	rows     int
	progress func(rows int)
	last     time.Time
}

func (s *stageSource) Next() bool {
	cells, line, err := s.rd.Next()
	if errors.Is(err, io.EOF) {
		return false
	}
	if err != nil {
		s.err = err
		return false
	}
	s.row = s.check.check(cells, line)
	s.rows++
	if s.progress != nil && s.rows%1024 == 0 && time.Since(s.last) > 500*time.Millisecond {
		s.last = time.Now()
		s.progress(s.rows)
	}
	return true
}

func nullable(m map[string]string, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	return nil
}

func nullableString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *stageSource) Values() ([]any, error) {
	r := &s.row
	var errs any
	if len(r.errors) > 0 {
		b, _ := json.Marshal(r.errors)
		errs = string(b)
	}
	fields, _ := json.Marshal(r.fields)
	vals := []any{int32(r.line), errs, nullableString(r.cardID), r.cardIDRead, nullableString(r.uid), nullableString(records.IdentifierKey(r.uid)), string(fields),
		nonNil(r.cleared), nonNil(r.missingRequired), nullable(r.text, AttrBarcodeValue), nullable(r.text, AttrRecipientEmail),
		r.times[AttrValidFrom], r.times[AttrExpiresAt], nullable(r.text, AttrPhoto)}
	return vals, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *stageSource) Err() error { return s.err }

// stage parses the stored file and COPYs every row into import_stage on
// tx. It returns the number of data rows.
func stage(ctx context.Context, tx pgx.Tx, file io.Reader, imp *Import, t *templates.Template, progress func(int)) (int, error) {
	rd, err := csvin.NewReader(file, readerOptions(imp))
	if err != nil {
		return 0, fileError(err)
	}
	if _, err := tx.Exec(ctx, createStage); err != nil {
		return 0, fmt.Errorf("imports: create staging table: %w", err)
	}
	src := &stageSource{rd: rd, check: newChecker(t, rd.Header(), imp.Mapping, imp.Options), progress: progress}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_stage"}, stageColumns, src); err != nil {
		if src.err != nil {
			return 0, fileError(src.err)
		}
		return 0, fmt.Errorf("imports: copy rows to staging table: %w", err)
	}
	// A freshly loaded table has no statistics; without them the planner
	// can choose nested loops that turn seconds into minutes.
	if _, err := tx.Exec(ctx, `ANALYZE import_stage`); err != nil {
		return 0, fmt.Errorf("imports: analyze staging table: %w", err)
	}
	return src.rows, nil
}

func readerOptions(imp *Import) csvin.Options {
	var delim rune
	if imp.Delimiter != "" {
		delim, _ = utf8.DecodeRuneInString(imp.Delimiter)
	}
	return csvin.Options{Encoding: csvin.Encoding(imp.Encoding), Delimiter: delim, HeaderRow: imp.HeaderRow}
}
