package imports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/csvin"
	"github.com/lintel/lintel/internal/templates"
)

// RowPage is a page of an import's row outcomes.
type RowPage struct {
	Rows    []Row
	Cursors []string
	HasNext bool
}

// rowsKind is the row set to read: the run's results once it ran, the
// preview's before.
func rowsKind(imp *Import) string {
	if imp.Outcome != nil && *imp.Outcome != Running && imp.Counts != nil {
		return "RESULT"
	}
	return "PREVIEW"
}

const rowColumns = `seq, line, outcome, key, record_id, changed, diff, errors, card_id_read`

func scanRows(rows pgx.Rows) ([]Row, []int, error) {
	defer rows.Close()
	var out []Row
	var seqs []int
	for rows.Next() {
		var r Row
		var seq int
		var outcome string
		var diff, errs []byte
		if err := rows.Scan(&seq, &r.Line, &outcome, &r.Key, &r.RecordID, &r.Changed, &diff, &errs, &r.CardIDRead); err != nil {
			return nil, nil, fmt.Errorf("imports: read rows: %w", err)
		}
		r.Outcome = RowOutcome(outcome)
		if diff != nil {
			var raw []struct {
				Field string          `json:"field"`
				Old   json.RawMessage `json:"old"`
				New   json.RawMessage `json:"new"`
			}
			_ = json.Unmarshal(diff, &raw)
			for _, d := range raw {
				r.Diff = append(r.Diff, FieldChange{Field: d.Field, Old: jsonText(d.Old), New: jsonText(d.New)})
			}
		}
		if errs != nil {
			_ = json.Unmarshal(errs, &r.Errors)
		}
		out = append(out, r)
		seqs = append(seqs, seq)
	}
	return out, seqs, rows.Err()
}

// jsonText renders a JSON scalar as text (null as nil).
func jsonText(raw json.RawMessage) *string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &s
	}
	t := string(raw)
	return &t
}

// Rows pages through an import's row outcomes (VIEWER), optionally only
// those with one outcome.
func (s *Service) Rows(ctx context.Context, id uuid.UUID, outcome *RowOutcome, first int, after string) (*RowPage, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	imp, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	if first <= 0 {
		first = 50
	}
	if first > 1000 {
		return nil, apperr.New(apperr.Invalid, "first must be at most 1000")
	}
	from := -1
	if after != "" {
		if from, err = strconv.Atoi(after); err != nil {
			return nil, apperr.New(apperr.Invalid, "after: not a cursor of this listing")
		}
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+rowColumns+` FROM import_rows WHERE import_id = $1 AND kind = $2
		AND ($3::text IS NULL OR outcome = $3) AND seq > $4 ORDER BY seq LIMIT $5`, id, rowsKind(imp), outcome, from, first+1)
	if err != nil {
		return nil, fmt.Errorf("imports: rows: %w", err)
	}
	rs, seqs, err := scanRows(rows)
	if err != nil {
		return nil, err
	}
	page := &RowPage{Rows: rs}
	if len(rs) > first {
		page.Rows, page.HasNext, seqs = rs[:first], true, seqs[:first]
	}
	for _, sq := range seqs {
		page.Cursors = append(page.Cursors, strconv.Itoa(sq))
	}
	return page, nil
}

// Samples returns up to n rows of each outcome but INVALID (VIEWER).
func (s *Service) Samples(ctx context.Context, id uuid.UUID, n int) ([]Row, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	imp, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+rowColumns+` FROM (
			SELECT *, row_number() OVER (PARTITION BY outcome ORDER BY seq) AS rn FROM import_rows
			WHERE import_id = $1 AND kind = $2 AND outcome <> 'INVALID') r
		WHERE rn <= $3 ORDER BY outcome, seq`, id, rowsKind(imp), n)
	if err != nil {
		return nil, fmt.Errorf("imports: samples: %w", err)
	}
	rs, _, err := scanRows(rows)
	return rs, err
}

// WriteResults streams an import's per-row outcomes as CSV (VIEWER): line,
// key, outcome, changed fields, errors, and how the card ID was read.
func (s *Service) WriteResults(ctx context.Context, id uuid.UUID, w io.Writer) error {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return err
	}
	imp, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+rowColumns+` FROM import_rows WHERE import_id = $1 AND kind = $2 ORDER BY seq`, id, rowsKind(imp))
	if err != nil {
		return fmt.Errorf("imports: results: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"line", "key", "outcome", "record_id", "changed_fields", "errors", "card_id_read"})
	for rows.Next() {
		var r Row
		var seq int
		var outcome string
		var diff, errs []byte
		if err := rows.Scan(&seq, &r.Line, &outcome, &r.Key, &r.RecordID, &r.Changed, &diff, &errs, &r.CardIDRead); err != nil {
			return fmt.Errorf("imports: results: %w", err)
		}
		var fe []FieldError
		_ = json.Unmarshal(errs, &fe)
		var msgs []string
		for _, e := range fe {
			m := e.Reason
			if e.Column > 0 {
				m = fmt.Sprintf("column %d (%s): %s", e.Column, e.Field, e.Reason)
			}
			msgs = append(msgs, m)
		}
		line, rec := "", ""
		if r.Line > 0 {
			line = strconv.Itoa(r.Line)
		}
		if r.RecordID != nil {
			rec = r.RecordID.String()
		}
		if err := cw.Write([]string{line, csvin.Neutralise(r.Key), outcome, rec, strings.Join(r.Changed, " "),
			csvin.Neutralise(strings.Join(msgs, "; ")), r.CardIDRead}); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return rows.Err()
}

// ExampleCSV returns a CSV with the template's columns and one example row
// (VIEWER); its headers are the ones the mapping proposal recognises.
func (s *Service) ExampleCSV(ctx context.Context, templateID uuid.UUID) (string, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return "", err
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, templateID, false)
	if err != nil {
		return "", err
	}
	header := []string{"Card ID", "Unique identifier"}
	example := []string{exampleCardID(t), "ada.lovelace@example.com"}
	if t.UniqueIdentifierKind == templates.IdentifierIDNumber {
		example[1] = "S-100042"
	}
	for _, f := range t.Fields {
		header = append(header, f.Label)
		example = append(example, exampleValue(f))
	}
	header = append(header, "Recipient e-mail", "Valid from", "Expires at")
	example = append(example, "ada.lovelace@example.com", "2026-01-01", "2027-12-31")
	var b strings.Builder
	if err := csvin.WriteExample(&b, header, example); err != nil {
		return "", err
	}
	return b.String(), nil
}

func exampleCardID(t *templates.Template) string {
	switch t.CardIDFormat {
	case "HEX", "HEX_REVERSED":
		return "04A1B2C3"
	case "WIEGAND26":
		return "123:45678"
	case "WIEGAND34", "WIEGAND37":
		return "1234:45678"
	}
	return "100042"
}

func exampleValue(f templates.Field) string {
	switch f.Type {
	case templates.TypeNumber:
		return "42"
	case templates.TypeDate:
		return "1990-12-10"
	case templates.TypeEmail:
		return "ada.lovelace@example.com"
	case templates.TypePhone:
		return "+41446681800"
	case templates.TypeCountry:
		return "CH"
	case templates.TypeSelect:
		if len(f.Options) > 0 {
			return f.Options[0]
		}
	}
	if strings.Contains(strings.ToLower(f.Key), "first") {
		return "Ada"
	}
	if strings.Contains(strings.ToLower(f.Key), "last") {
		return "Lovelace"
	}
	return "Example " + f.Label
}
