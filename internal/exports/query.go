package exports

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

// binder collects a statement's bind parameters.
type binder struct {
	args []any
}

// bind returns the placeholder of v.
func (b *binder) bind(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// literal renders the values RecordsSQL needs inline (COPY takes no bind
// parameters): only UUIDs the service itself holds.
func literal(v any) string {
	if id, ok := v.(uuid.UUID); ok {
		return "'" + id.String() + "'::uuid"
	}
	panic(fmt.Sprintf("exports: no literal form for %T", v))
}

// neutraliseSQL is csvin.Neutralise in SQL: a value starting with = + - @
// tab or CR, possibly after single quotes, gets one more single quote in
// front. The export does this in Go (see appendCell); the SQL form is what
// `lintel bench export` measures that choice against.
func neutraliseSQL(expr string) string {
	return fmt.Sprintf(`CASE WHEN ascii(%[1]s) IN (61, 43, 45, 64, 9, 13) OR (ascii(%[1]s) = 39 AND %[1]s ~ '^''+[-=+@\t\r]') THEN '''' || %[1]s ELSE %[1]s END`, expr)
}

// instant writes a timestamptz in RFC 3339 UTC ("2026-11-24T09:30:00Z",
// with microseconds when it has them), which the import reads back to the
// same instant. It relies on DateStyle ISO, which the job sets.
func instant(expr string) string {
	return `replace((` + expr + ` AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z'`
}

// statement is what a job runs: the SELECT whose rows become the file
// (every column text, formatted as the file writes it) and a count of them
// for progress, both with the same arguments.
type statement struct {
	selectSQL string
	countSQL  string
	args      []any
}

// recordConditions is records' listing filter (records.Filter, the
// `records` query's filter) as a condition on card_records, written for a
// bind function instead of bun placeholders; its semantics must stay the
// same as records.where.
func recordConditions(org, templateID uuid.UUID, f records.Filter, bind func(any) string) string {
	conds := []string{"org_id = " + bind(org), "template_id = " + bind(templateID)}
	if f.Status != nil {
		conds = append(conds, "status = "+bind(string(*f.Status)))
	}
	if f.CredentialState != nil {
		conds = append(conds, "credential_state = "+bind(string(*f.CredentialState)))
	}
	if s := strings.TrimSpace(f.Search); s != "" {
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(s))
		conds = append(conds, `search_text LIKE `+bind("%"+esc+"%")+` ESCAPE '\'`)
	}
	if f.ValidAt != nil {
		at := bind(*f.ValidAt)
		conds = append(conds, "(valid_from IS NULL OR valid_from <= "+at+") AND (expires_at IS NULL OR expires_at > "+at+")")
	}
	if f.ExpiresBefore != nil {
		conds = append(conds, "expires_at < "+bind(*f.ExpiresBefore))
	}
	if f.UpdatedSince != nil {
		conds = append(conds, "updated_at >= "+bind(*f.UpdatedSince))
	}
	return strings.Join(conds, " AND ")
}

// recordStatement builds the export of a template's records. The inner
// query reads each value once (OFFSET 0 keeps PostgreSQL from folding it
// into the outer one, which would extract a field from the JSON once per
// use); the outer one formats. bind renders the filter's values;
// neutralise also neutralises text cells in SQL (the benchmark's
// alternative; the job leaves that to its CSV writer).
func recordStatement(org, templateID uuid.UUID, format cardid.Format, f records.Filter, cols []columnDef, bind func(any) string, neutralise bool) *statement {
	cond := recordConditions(org, templateID, f, bind)
	inner := make([]string, len(cols))
	outer := make([]string, len(cols))
	for i, c := range cols {
		name := "c" + strconv.Itoa(i)
		switch c.kind {
		case kindFieldText:
			inner[i] = "fields ->> " + quoteLiteral(c.source) + " AS " + name
		case kindCardID:
			inner[i] = cardIDWritten(format, c.source) + " AS " + name
		default:
			inner[i] = c.source + " AS " + name
		}
		switch {
		case c.kind == kindInstant:
			outer[i] = instant(name)
		case neutralise && (c.kind == kindText || c.kind == kindFieldText):
			outer[i] = neutraliseSQL(name)
		default:
			outer[i] = name
		}
	}
	// No ORDER BY: rows come in storage order, which for imported records
	// is the order of the file they came from. Sorting a million wide rows
	// (or walking an index to the heap at random, which the planner prefers
	// when one import gave every record the same created_at) costs three
	// to four times the whole export; the import does not care about order.
	return &statement{
		selectSQL: `SELECT ` + strings.Join(outer, ", ") + ` FROM (SELECT ` + strings.Join(inner, ", ") + ` FROM card_records WHERE ` + cond + ` OFFSET 0) s`,
		countSQL:  `SELECT count(*) FROM card_records WHERE ` + cond,
	}
}

// SQLForm is a form of RecordsSQL's statement.
type SQLForm int

// The forms of RecordsSQL.
const (
	// RawSQL reads the values as stored: the physical limit.
	RawSQL SQLForm = iota
	// ExportSQL is what the export job reads: values formatted as the file
	// writes them; its CSV writer neutralises.
	ExportSQL
	// NeutralisedSQL also neutralises in SQL, so a COPY … (FORMAT csv) of
	// it is the whole file body: the alternative the export was measured
	// against.
	NeutralisedSQL
)

// RecordsSQL returns, for `lintel bench export`, a statement over every
// column an ADMIN exports from t's records of org, in file order, with no
// bind parameters (COPY takes none), in one of the three forms.
func RecordsSQL(org uuid.UUID, t *templates.Template, form SQLForm) string {
	defs, _ := chooseColumns(t, caller.RoleAdmin, nil)
	if form == RawSQL {
		cols := make([]string, len(defs))
		for i, d := range defs {
			cols[i] = d.source
			if d.kind == kindFieldText {
				cols[i] = "fields ->> " + quoteLiteral(d.source)
			}
		}
		return `SELECT ` + strings.Join(cols, ", ") + ` FROM card_records WHERE ` + recordConditions(org, t.ID, records.Filter{}, literal)
	}
	return recordStatement(org, t.ID, t.CardIDFormat, records.Filter{}, defs, literal, form == NeutralisedSQL).selectSQL
}

// auditStatement builds the export of the audit trail, oldest first: the
// table is appended to in ID order, so that order costs no sort.
func auditStatement(org uuid.UUID, f auditlog.Filter) *statement {
	var b binder
	cond := f.Conditions(org, b.bind)
	return &statement{
		selectSQL: `SELECT id::text, ` + instant("at") + `, actor_kind, actor_id::text, actor_label, action, target_kind, target_id, request_id,
			details::text FROM audit_events WHERE ` + cond + ` ORDER BY id`,
		countSQL: `SELECT count(*) FROM audit_events WHERE ` + cond,
		args:     b.args,
	}
}

// quoteLiteral quotes a string the service itself controls (a template
// field key: a-z, 0-9 and _) as an SQL literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
