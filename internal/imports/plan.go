package imports

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/templates"
)

// planner builds and runs the SQL that decides every row's outcome. It is
// configured once per import from the template, mapping and options; all
// identifiers it writes into SQL come from fixed lists, never from input.
type planner struct {
	imp       *Import
	tmpl      *templates.Template
	attrs     map[string]int // mapped attribute → 1-based column
	fieldKeys []string       // mapped template field keys that updates may change
	attrKeys  []string       // mapped attributes that updates may change
	colOf     map[string]int // mapped target → 1-based column
	required  []string
	// steps times each statement, so an import's history shows where its
	// time went.
	steps map[string]float64
}

// exec runs one planning or apply statement and times it under what.
func (p *planner) exec(ctx context.Context, tx pgx.Tx, what, sql string, args ...any) error {
	start := time.Now()
	_, err := tx.Exec(ctx, sql, args...)
	p.steps[what] += time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("imports: %s: %w", what, err)
	}
	return nil
}

func newPlanner(imp *Import, t *templates.Template) *planner {
	p := &planner{imp: imp, tmpl: t, attrs: map[string]int{}, colOf: map[string]int{}, steps: map[string]float64{}}
	allowed := func(name string) bool {
		return imp.Options.UpdateFields == nil || slices.Contains(imp.Options.UpdateFields, name)
	}
	for _, m := range imp.Mapping {
		if m.Field == "" {
			continue
		}
		p.colOf[m.Field] = m.Column
		if _, ok := t.Field(m.Field); ok {
			if allowed(m.Field) {
				p.fieldKeys = append(p.fieldKeys, m.Field)
			}
			continue
		}
		p.attrs[m.Field] = m.Column
		matchAttr := AttrCardID
		if imp.Options.MatchOn == MatchUniqueIdentifier {
			matchAttr = AttrUniqueIdentifier
		}
		if m.Field != matchAttr && allowed(m.Field) {
			p.attrKeys = append(p.attrKeys, m.Field)
		}
	}
	for _, f := range t.Fields {
		if f.Required {
			p.required = append(p.required, f.Key)
		}
	}
	return p
}

// recordColumn is the card_records column of an attribute.
var recordColumn = map[string]string{
	AttrCardID: "card_id", AttrUniqueIdentifier: "unique_identifier", AttrBarcodeValue: "barcode_value",
	AttrRecipientEmail: "recipient_email", AttrValidFrom: "valid_from", AttrExpiresAt: "expires_at",
}

// stageColumn is the import_stage column of an attribute.
var stageColumn = map[string]string{
	AttrCardID: "card_id", AttrUniqueIdentifier: "uid", AttrBarcodeValue: "barcode_value",
	AttrRecipientEmail: "recipient_email", AttrValidFrom: "valid_from", AttrExpiresAt: "expires_at",
}

// newValue is the SQL for an attribute's value after the row is applied to
// matched record r (or a new record when r is absent).
func (p *planner) newValue(attr string) string {
	rc, sc := "r."+recordColumn[attr], "s."+stageColumn[attr]
	isTime := attr == AttrValidFrom || attr == AttrExpiresAt
	var create string
	switch attr {
	case AttrCardID:
		create = "s.card_id"
	case AttrUniqueIdentifier:
		create = "s.uid"
	case AttrBarcodeValue:
		create = "COALESCE(NULLIF(s.barcode_value, ''), s.card_id)"
	case AttrRecipientEmail:
		if p.tmpl.UniqueIdentifierKind == templates.IdentifierEmail {
			create = "COALESCE(NULLIF(s.recipient_email, ''), s.uid)"
		} else {
			create = "COALESCE(s.recipient_email, '')"
		}
	case AttrValidFrom:
		create = "COALESCE(s.valid_from, $5::timestamptz)"
	case AttrExpiresAt:
		create = "COALESCE(s.expires_at, $6::timestamptz, COALESCE(s.valid_from, $5::timestamptz, now()) + $7::int * interval '1 day')"
	}
	update := rc
	if slices.Contains(p.attrKeys, attr) {
		cond := fmt.Sprintf("NOT ('%s' = ANY(r.locked_fields))", attr)
		if p.imp.Options.Overwrite == KeepExisting {
			if isTime {
				cond += " AND " + rc + " IS NULL"
			} else {
				cond += " AND " + rc + " = ''"
			}
		}
		val := sc
		if !isTime {
			val = "COALESCE(" + sc + ", '')"
		}
		update = fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", cond, val, rc)
	}
	return fmt.Sprintf("CASE WHEN r.id IS NULL THEN %s ELSE %s END", create, update)
}

// uidChanges is the SQL condition under which an update takes the row's
// unique identifier (so its key follows it).
func (p *planner) uidChanges() string {
	if !slices.Contains(p.attrKeys, AttrUniqueIdentifier) {
		return "false"
	}
	cond := "NOT ('unique_identifier' = ANY(r.locked_fields))"
	if p.imp.Options.Overwrite == KeepExisting {
		cond += " AND r.unique_identifier = ''"
	}
	return cond
}

// photoMatch is the SQL condition matching photo x to staged row s: by
// the mapped file-name column, or else by card ID.
func (p *planner) photoMatch() string {
	if _, ok := p.attrs[AttrPhoto]; ok {
		return "x.name_key = lower(regexp_replace(s.photo_name, '^.*[/\\\\]', ''))"
	}
	return "x.card_key = s.card_id"
}

// photoUpdatable is the SQL condition under which an update may replace
// the photo at all.
func (p *planner) photoUpdatable() string {
	if p.imp.Options.UpdateFields == nil || slices.Contains(p.imp.Options.UpdateFields, AttrPhoto) {
		return "true"
	}
	return "false"
}

func (p *planner) matchCondition() string {
	if p.imp.Options.MatchOn == MatchUniqueIdentifier {
		return "r.unique_key = s.uid_key"
	}
	return "r.card_id = s.card_id"
}

// buildPlan fills import_plan (one row per file line) and import_missing
// (records SYNC would archive or delete) from import_stage.
func (p *planner) buildPlan(ctx context.Context, tx pgx.Tx, checkPreview bool) error {
	// Per-row lateral subqueries inflate cost estimates past the JIT
	// thresholds, and compiling costs more than it saves here; the hash
	// joins over 100k-row tables spill to disk with the default work_mem.
	if err := p.exec(ctx, tx, "tune transaction", `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'`); err != nil {
		return err
	}
	var hasPhotos bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM import_photos WHERE import_id = $1)`, p.imp.ID).Scan(&hasPhotos); err != nil {
		return fmt.Errorf("imports: look for photos: %w", err)
	}
	opts := p.imp.Options
	colmap, _ := json.Marshal(p.colOf)
	// Duplicate keys inside the file: every repeat after the first is invalid.
	for _, d := range []struct{ expr, attr, what, show string }{
		{"card_id", AttrCardID, "card ID", "s.card_id"},
		{"uid_key", AttrUniqueIdentifier, "unique identifier", "s.uid"},
	} {
		if _, mapped := p.colOf[d.attr]; !mapped {
			continue
		}
		q := fmt.Sprintf(`UPDATE import_stage s SET errors = COALESCE(s.errors, '[]') || jsonb_build_array(jsonb_build_object(
				'column', %d, 'field', '%s', 'reason', format('duplicate %s %%s inside the file (first on line %%s)', %s, d.first)))
			FROM (SELECT line, min(line) OVER (PARTITION BY %s) AS first FROM import_stage WHERE %s IS NOT NULL) d
			WHERE d.line = s.line AND d.first <> s.line`, p.colOf[d.attr], d.attr, d.what, d.show, d.expr, d.expr)
		if err := p.exec(ctx, tx, "find duplicate keys", q); err != nil {
			return fmt.Errorf("imports: find duplicate %s: %w", d.what, err)
		}
	}

	fieldsNew := `(r.fields - u.keys) || COALESCE((SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(s.fields) e WHERE e.key = ANY(u.keys)), '{}')`
	if opts.Overwrite == KeepExisting {
		fieldsNew = `r.fields || COALESCE((SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(s.fields) e WHERE e.key = ANY(u.keys) AND NOT (r.fields ? e.key)), '{}')`
	}
	// A row never changes a record's status: suspending, archiving and
	// restoring are operators' decisions (SYNC archives only the records
	// missing from the file), so an exported file imports back unchanged.
	newStatus := "r.status"
	previewJoin, previewVersion := "", "NULL::int"
	if checkPreview {
		previewJoin = "LEFT JOIN import_rows pv ON pv.import_id = $2 AND pv.kind = 'PREVIEW' AND pv.seq = s.line"
		previewVersion = "pv.record_version"
	}
	keepExistingPhoto := ""
	if opts.Overwrite == KeepExisting {
		keepExistingPhoto = " AND NOT r.has_photo"
	}
	// NULL when the template has no default validity: records then never
	// expire unless the file or the options say so.
	validity := p.tmpl.DefaultValidityDays
	photoColumns := `NULL::bigint AS photo_id, false AS photo_changed`
	photoJoins := ""
	if hasPhotos {
		photoColumns = `ph.id AS photo_id, ph.id IS NOT NULL AND (r.id IS NULL OR rp.sha256 IS DISTINCT FROM ph.sha256) AS photo_changed`
		photoJoins = fmt.Sprintf(`LEFT JOIN LATERAL (SELECT x.id, x.sha256 FROM import_photos x
			WHERE x.import_id = $2 AND x.error IS NULL AND (%s)
				AND (r.id IS NULL OR (%s AND NOT ('photo' = ANY(r.locked_fields))%s))
			LIMIT 1) ph ON true
		LEFT JOIN record_photos rp ON rp.record_id = r.id AND ph.id IS NOT NULL`, p.photoMatch(), p.photoUpdatable(), keepExistingPhoto)
	}
	q := fmt.Sprintf(`CREATE TEMP TABLE import_values ON COMMIT DROP AS
		SELECT s.line, s.errors, s.card_id, s.uid, s.uid_key, s.card_id_read, s.cleared, s.missing_required,
			r.id AS record_id, r.version AS record_version, CASE WHEN r.id IS NULL THEN gen_random_uuid() END AS create_id, r.status AS old_status, r.credential_state, %s AS preview_version,
			u.keys AS update_keys,
			r.card_id AS old_card_id, r.unique_identifier AS old_uid, r.fields AS old_fields, r.barcode_value AS old_barcode_value,
			r.recipient_email AS old_recipient_email, r.valid_from AS old_valid_from, r.expires_at AS old_expires_at,
			%s AS new_card_id, %s AS new_uid, CASE WHEN r.id IS NULL OR %s THEN s.uid_key ELSE r.unique_key END AS new_uid_key,
			CASE WHEN r.id IS NULL THEN s.fields ELSE %s END AS new_fields,
			%s AS new_barcode_value, %s AS new_recipient_email, %s AS new_valid_from, %s AS new_expires_at,
			CASE WHEN r.id IS NULL THEN 'ACTIVE' ELSE %s END AS new_status,
			-- A new record's expiry counted from now (a reused plan counts
			-- it again from the apply's now).
			(r.id IS NULL AND s.expires_at IS NULL AND $6::timestamptz IS NULL AND s.valid_from IS NULL AND $5::timestamptz IS NULL
				AND $7::int IS NOT NULL) AS expires_from_now,
			%s
		FROM import_stage s
		LEFT JOIN card_records r ON r.template_id = $1 AND %s
		-- Most records lock nothing: skip the set difference for them.
		LEFT JOIN LATERAL (SELECT CASE WHEN cardinality(r.locked_fields) = 0 THEN $3::text[]
			ELSE ARRAY(SELECT unnest($3::text[]) EXCEPT SELECT unnest(r.locked_fields)) END AS keys) u ON true
		%s
		%s
		WHERE $4::jsonb IS NOT NULL AND $2::uuid IS NOT NULL`,
		previewVersion, p.newValue(AttrCardID), p.newValue(AttrUniqueIdentifier), p.uidChanges(), fieldsNew,
		p.newValue(AttrBarcodeValue), p.newValue(AttrRecipientEmail), p.newValue(AttrValidFrom), p.newValue(AttrExpiresAt),
		newStatus, photoColumns, p.matchCondition(), photoJoins, previewJoin)
	if err := p.exec(ctx, tx, "compute new values", q, p.tmpl.ID, p.imp.ID, p.fieldKeys, string(colmap), opts.DefaultValidFrom, opts.DefaultExpiresAt, validity); err != nil {
		return err
	}
	// Statistics of the columns the following joins use are enough.
	if err := p.exec(ctx, tx, "analyze plan values", `ANALYZE import_values (record_id, uid_key, card_id)`); err != nil {
		return err
	}

	// The other key must not belong to a different record.
	otherAttr, otherCond, what := AttrUniqueIdentifier, "o.unique_key = p.uid_key", "unique identifier"
	if opts.MatchOn == MatchUniqueIdentifier {
		otherAttr, otherCond, what = AttrCardID, "o.card_id = p.card_id", "card ID"
	}
	if col, ok := p.colOf[otherAttr]; ok {
		q := fmt.Sprintf(`UPDATE import_values p SET errors = COALESCE(p.errors, '[]') || jsonb_build_array(jsonb_build_object(
				'column', %d, 'field', '%s', 'reason', format('%s %%s is already used by the record with card ID %%s', p.%s, o.card_id)))
			FROM card_records o WHERE o.template_id = $1 AND %s AND o.id IS DISTINCT FROM p.record_id AND p.errors IS NULL`,
			col, otherAttr, what, stageColumn[otherAttr], otherCond)
		if err := p.exec(ctx, tx, "check the other key is free", q, p.tmpl.ID); err != nil {
			return fmt.Errorf("imports: check %s taken: %w", what, err)
		}
	}
	// New records need every required value; updates may not clear one.
	if err := p.exec(ctx, tx, "check required values", `UPDATE import_values SET errors = (SELECT jsonb_agg(jsonb_build_object('column', ($1::jsonb ->> k)::int, 'field', k,
			'reason', CASE WHEN $1::jsonb ? k THEN 'missing required value' ELSE 'missing required value (the column is not mapped)' END)) FROM unnest(missing_required) k)
		WHERE errors IS NULL AND record_id IS NULL AND cardinality(missing_required) > 0`, string(colmap)); err != nil {
		return err
	}
	if opts.Overwrite == OverwriteAll {
		if err := p.exec(ctx, tx, "check cleared values", `UPDATE import_values SET errors = (SELECT jsonb_agg(jsonb_build_object('column', ($1::jsonb ->> k)::int, 'field', k, 'reason', 'missing required value'))
				FROM unnest(cleared) k WHERE k = ANY(update_keys) AND k = ANY($2::text[]))
			WHERE errors IS NULL AND record_id IS NOT NULL AND credential_state <> 'RESET'
				AND EXISTS (SELECT 1 FROM unnest(cleared) k WHERE k = ANY(update_keys) AND k = ANY($2::text[]))`, string(colmap), p.required); err != nil {
			return err
		}
	}
	// One pass computes what changes and so the outcome; the plan table is
	// written once instead of rewritten per column.
	if err := p.exec(ctx, tx, "decide outcomes", `CREATE TEMP TABLE import_plan ON COMMIT DROP AS
		SELECT v.*, c.changed, CASE
				WHEN v.errors IS NOT NULL THEN 'INVALID'
				WHEN v.record_id IS NULL THEN 'CREATE'
				WHEN v.credential_state = 'RESET' THEN 'SKIPPED'
				WHEN v.preview_version IS NOT NULL AND v.preview_version <> v.record_version THEN 'CONFLICT'
				WHEN cardinality(c.changed) = 0 THEN 'UNCHANGED'
				ELSE 'UPDATE' END AS outcome
		FROM import_values v, LATERAL (SELECT CASE
			WHEN v.record_id IS NULL OR v.errors IS NOT NULL THEN '{}'::text[]
			-- Cheap equality first: most matched rows of a re-import are unchanged.
			WHEN v.new_fields = v.old_fields AND v.new_card_id = v.old_card_id AND v.new_uid = v.old_uid
				AND v.new_barcode_value = v.old_barcode_value AND v.new_recipient_email = v.old_recipient_email
				AND v.new_valid_from IS NOT DISTINCT FROM v.old_valid_from AND v.new_expires_at IS NOT DISTINCT FROM v.old_expires_at
				AND v.new_status = v.old_status AND NOT v.photo_changed THEN '{}'::text[]
			ELSE ARRAY(
			SELECT key FROM (
				SELECT COALESCE(n.key, o.key) AS key FROM jsonb_each(v.new_fields) n FULL JOIN jsonb_each(v.old_fields) o ON o.key = n.key
				WHERE n.value IS DISTINCT FROM o.value
				UNION ALL SELECT 'card_id' WHERE v.new_card_id <> v.old_card_id
				UNION ALL SELECT 'unique_identifier' WHERE v.new_uid <> v.old_uid
				UNION ALL SELECT 'barcode_value' WHERE v.new_barcode_value <> v.old_barcode_value
				UNION ALL SELECT 'recipient_email' WHERE v.new_recipient_email <> v.old_recipient_email
				UNION ALL SELECT 'valid_from' WHERE v.new_valid_from IS DISTINCT FROM v.old_valid_from
				UNION ALL SELECT 'expires_at' WHERE v.new_expires_at IS DISTINCT FROM v.old_expires_at
				UNION ALL SELECT 'status' WHERE v.new_status <> v.old_status
				UNION ALL SELECT 'photo' WHERE v.photo_changed
			) c ORDER BY key) END AS changed) c;
		DROP TABLE import_values;
		CREATE INDEX ON import_plan (record_id);
		ANALYZE import_plan (record_id, outcome)`); err != nil {
		return err
	}

	return p.findMissing(ctx, tx)
}

// findMissing fills import_missing: the records a SYNC archives or
// deletes because the file does not name them.
func (p *planner) findMissing(ctx context.Context, tx pgx.Tx) error {
	opts := p.imp.Options
	missing := "NULL::text"
	if opts.Mode == Sync {
		switch opts.MissingAction {
		case Archive:
			missing = "CASE WHEN r.status <> 'ARCHIVED' THEN 'ARCHIVE' END"
		case Delete:
			missing = "CASE WHEN r.status = 'ARCHIVED' THEN 'DELETE' ELSE 'ARCHIVE' END"
		}
	}
	q := fmt.Sprintf(`CREATE TEMP TABLE import_missing ON COMMIT DROP AS
		SELECT * FROM (
			SELECT r.id, r.card_id, r.unique_identifier, r.status, r.version, %s AS outcome
			FROM card_records r
			WHERE r.template_id = $1 AND r.credential_state <> 'RESET' AND $2::boolean
				AND NOT EXISTS (SELECT 1 FROM import_plan p WHERE p.record_id = r.id)
		) m WHERE outcome IS NOT NULL`, missing)
	if err := p.exec(ctx, tx, "find records missing from the file", q, p.tmpl.ID, opts.Mode == Sync && opts.MissingAction != Keep); err != nil {
		return err
	}
	return nil
}

// countPlan tallies the plan's outcomes.
func countPlan(ctx context.Context, tx pgx.Tx) (Counts, error) {
	var c Counts
	rows, err := tx.Query(ctx, `SELECT outcome, count(*) FROM import_plan GROUP BY outcome
		UNION ALL SELECT outcome, count(*) FROM import_missing GROUP BY outcome`)
	if err != nil {
		return c, fmt.Errorf("imports: count plan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var outcome string
		var n int
		if err := rows.Scan(&outcome, &n); err != nil {
			return c, err
		}
		switch RowOutcome(outcome) {
		case RowCreate:
			c.Create += n
		case RowUpdate:
			c.Update += n
		case RowUnchanged:
			c.Unchanged += n
		case RowArchive:
			c.Archive += n
		case RowDelete:
			c.Delete += n
		case RowInvalid:
			c.Invalid += n
		case RowSkipped:
			c.Skipped += n
		case RowConflict:
			c.Conflict += n
		}
	}
	return c, rows.Err()
}

// saveRows replaces the import's rows of kind with the plan's outcomes.
func (p *planner) saveRows(ctx context.Context, tx pgx.Tx, kind string) error {
	// After an apply, rows name the record as it now is: created records
	// and new versions. A preview names the versions it saw.
	recordID, version := "record_id", "record_version"
	if kind == "RESULT" {
		recordID = "CASE WHEN outcome = 'CREATE' THEN create_id ELSE record_id END"
		version = "CASE outcome WHEN 'CREATE' THEN 1 WHEN 'UPDATE' THEN record_version + 1 ELSE record_version END"
	}
	if _, err := tx.Exec(ctx, `DELETE FROM import_rows WHERE import_id = $1 AND kind = $2`, p.imp.ID, kind); err != nil {
		return fmt.Errorf("imports: clear %s rows: %w", kind, err)
	}
	key := "COALESCE(card_id, uid, '')"
	if p.imp.Options.MatchOn == MatchUniqueIdentifier {
		key = "COALESCE(uid, card_id, '')"
	}
	q := fmt.Sprintf(`INSERT INTO import_rows (import_id, kind, seq, line, outcome, key, record_id, record_version, changed, diff, errors, card_id_read)
		SELECT $1::uuid, $2::text, line, line, outcome, %s, %s, %s, changed,
			-- Old and new values are kept for the rows the preview shows as
			-- samples; the changed field names are kept for every row.
			CASE WHEN outcome IN ('UPDATE', 'CONFLICT') AND sample <= 5 THEN (
				SELECT jsonb_agg(jsonb_build_object('field', c, 'old', CASE c
						WHEN 'card_id' THEN to_jsonb(old_card_id) WHEN 'unique_identifier' THEN to_jsonb(old_uid)
						WHEN 'barcode_value' THEN to_jsonb(old_barcode_value) WHEN 'recipient_email' THEN to_jsonb(old_recipient_email)
						WHEN 'valid_from' THEN to_jsonb(old_valid_from) WHEN 'expires_at' THEN to_jsonb(old_expires_at)
						WHEN 'status' THEN to_jsonb(old_status) ELSE old_fields -> c END,
					'new', CASE c
						WHEN 'card_id' THEN to_jsonb(new_card_id) WHEN 'unique_identifier' THEN to_jsonb(new_uid)
						WHEN 'barcode_value' THEN to_jsonb(new_barcode_value) WHEN 'recipient_email' THEN to_jsonb(new_recipient_email)
						WHEN 'valid_from' THEN to_jsonb(new_valid_from) WHEN 'expires_at' THEN to_jsonb(new_expires_at)
						WHEN 'status' THEN to_jsonb(new_status) ELSE new_fields -> c END)) FROM unnest(changed) c)
			END,
			errors, COALESCE(card_id_read, '')
		FROM (SELECT *, row_number() OVER (PARTITION BY outcome ORDER BY line) AS sample FROM import_plan) import_plan
		UNION ALL
		SELECT $1::uuid, $2::text, 1000000000 + row_number() OVER (ORDER BY card_id), 0, outcome, card_id, id, version, '{}', NULL, NULL, ''
		FROM import_missing`, key, recordID, version)
	if err := p.exec(ctx, tx, "save "+strings.ToLower(kind)+" rows", q, p.imp.ID, kind); err != nil {
		return err
	}
	return nil
}

const searchTextSQL = `lower(p.new_card_id) || ' ' || lower(p.new_uid) || ' ' || lower(p.new_recipient_email) || ' ' ||
	COALESCE((SELECT string_agg(lower(value), ' ' ORDER BY key) FROM jsonb_each_text(p.new_fields)) || ' ', '')`

// apply executes the plan. Invalid, skipped, unchanged and conflicting rows
// change nothing.
func (p *planner) apply(ctx context.Context, tx pgx.Tx) error {
	steps := []struct{ what, sql string }{
		{"update records", `UPDATE card_records r SET card_id = p.new_card_id, unique_identifier = p.new_uid, unique_key = p.new_uid_key, fields = p.new_fields,
			barcode_value = p.new_barcode_value, recipient_email = p.new_recipient_email, valid_from = p.new_valid_from,
			expires_at = p.new_expires_at, status = p.new_status,
			archived_at = CASE WHEN p.new_status = 'ARCHIVED' THEN r.archived_at END,
			search_text = ` + searchTextSQL + `, version = r.version + 1, updated_at = now()
			FROM import_plan p WHERE p.outcome = 'UPDATE' AND r.id = p.record_id`},
		{"create records", `INSERT INTO card_records (id, org_id, template_id, card_id, unique_identifier, unique_key, fields, barcode_value, recipient_email, valid_from, expires_at, search_text)
			SELECT p.create_id, $1, $2, p.new_card_id, p.new_uid, p.new_uid_key, p.new_fields, p.new_barcode_value, p.new_recipient_email, p.new_valid_from, p.new_expires_at, ` + searchTextSQL + `
			FROM import_plan p WHERE p.outcome = 'CREATE' ORDER BY p.line`},
		{"store photos", `INSERT INTO record_photos (record_id, org_id, content_type, data, sha256)
			SELECT COALESCE(p.record_id, p.create_id), $1, x.content_type, x.data, x.sha256
			FROM import_plan p JOIN import_photos x ON x.id = p.photo_id
			WHERE p.photo_changed AND p.outcome IN ('CREATE', 'UPDATE') AND $2::uuid IS NOT NULL
			ON CONFLICT (record_id) DO UPDATE SET content_type = EXCLUDED.content_type, data = EXCLUDED.data, sha256 = EXCLUDED.sha256, updated_at = now()`},
		{"mark photos", `UPDATE card_records r SET has_photo = true FROM import_plan p
			WHERE p.photo_changed AND p.outcome IN ('CREATE', 'UPDATE') AND r.id = COALESCE(p.record_id, p.create_id) AND $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL`},
		{"archive missing records", `UPDATE card_records r SET status = 'ARCHIVED', archived_at = now(), version = r.version + 1, updated_at = now()
			FROM import_missing m WHERE m.outcome = 'ARCHIVE' AND r.id = m.id AND $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL`},
		{"delete missing records", `DELETE FROM card_records r USING import_missing m WHERE m.outcome = 'DELETE' AND r.id = m.id AND $1::uuid IS NOT NULL AND $2::uuid IS NOT NULL`},
	}
	for _, st := range steps {
		args := []any{}
		if strings.Contains(st.sql, "$1") {
			args = append(args, p.imp.OrgID, p.tmpl.ID)
		}
		if err := p.exec(ctx, tx, st.what, st.sql, args...); err != nil {
			return err
		}
	}
	return nil
}
