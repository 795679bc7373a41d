package imports

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lintel/lintel/internal/templates"
)

// A preview computes the whole plan; the apply must act on a plan that is
// true at its own moment. When nothing the plan was computed from has
// changed (the file, mapping and options — a change clears previewed_at;
// the template's definition; and every record of the template), computing
// it again gives the same plan, so the apply reuses the preview's. Anything
// else, or any doubt, and the apply computes it afresh as before.

// StepRestorePlan names, in an import's timings, the step that reused the
// preview's plan.
const StepRestorePlan = "restore the preview's plan"

// savedPlanTable is the unlogged table holding an import's previewed plan.
// The name comes from the import's UUID, never from input.
func savedPlanTable(id uuid.UUID) string {
	return "import_saved_plan_" + strings.ReplaceAll(id.String(), "-", "")
}

// savePlan keeps the preview's plan with the snapshot it was read under.
// snapshot is the snapshot taken before the plan read any record: records
// committed after it are treated as changed even if the plan saw them.
func savePlan(ctx context.Context, tx pgx.Tx, imp *Import, t *templates.Template, snapshot string) error {
	table := savedPlanTable(imp.ID)
	var records int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM card_records WHERE template_id = $1`, t.ID).Scan(&records); err != nil {
		return fmt.Errorf("imports: count records: %w", err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+table+`; CREATE UNLOGGED TABLE `+table+` AS SELECT * FROM import_plan`); err != nil {
		return fmt.Errorf("imports: save the plan: %w", err)
	}
	var rows int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&rows); err != nil {
		return fmt.Errorf("imports: count the saved plan: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE imports SET plan_snapshot = $2::pg_snapshot, plan_template_version = $3, plan_records = $4, plan_rows = $5 WHERE id = $1`,
		imp.ID, snapshot, t.Version, records, rows); err != nil {
		return fmt.Errorf("imports: note the saved plan: %w", err)
	}
	return nil
}

// dropSavedPlan forgets an import's saved plan. Only the table goes: the
// import's row is left alone (the run publishes progress to it from outside
// its transaction), and without the table the columns mean nothing.
func dropSavedPlan(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+savedPlanTable(id)); err != nil {
		return fmt.Errorf("imports: drop the saved plan: %w", err)
	}
	return nil
}

// PruneSavedPlans drops saved plans that can no longer be used: of imports
// that are gone, were changed since their preview, have run, or were
// previewed more than a day ago. It returns how many went.
func PruneSavedPlans(ctx context.Context, db interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}) (int, error) {
	rows, err := db.Query(ctx, `SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE 'import\_saved\_plan\_%'
		AND NOT EXISTS (SELECT 1 FROM imports i WHERE replace(i.id::text, '-', '') = substr(c.relname, 19)
			AND i.previewed_at > now() - interval '1 day' AND i.outcome IS DISTINCT FROM 'SUCCEEDED')`)
	if err != nil {
		return 0, fmt.Errorf("imports: find stale saved plans: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("imports: find stale saved plans: %w", err)
	}
	for _, n := range names {
		if _, err := db.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{n}.Sanitize()); err != nil {
			return 0, fmt.Errorf("imports: drop saved plan %s: %w", n, err)
		}
	}
	return len(names), nil
}

// restorePlan loads the preview's plan into import_plan when it is still
// exactly what planning now would give, and reports whether it did. It
// must run after the apply has locked the template, so no record can
// change between the check and the commit.
func restorePlan(ctx context.Context, tx pgx.Tx, imp *Import, t *templates.Template) (bool, error) {
	if imp.PreviewedAt == nil {
		return false, nil
	}
	var snapshot *string
	var version, records, rows *int64
	if err := tx.QueryRow(ctx, `SELECT plan_snapshot::text, plan_template_version, plan_records, plan_rows FROM imports WHERE id = $1`, imp.ID).
		Scan(&snapshot, &version, &records, &rows); err != nil {
		return false, fmt.Errorf("imports: read the saved plan: %w", err)
	}
	if snapshot == nil || version == nil || *version != int64(t.Version) {
		return false, nil
	}
	table := savedPlanTable(imp.ID)
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
		return false, err
	}
	// An unlogged table is emptied by a crash: then the row count differs.
	var saved int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&saved); err != nil {
		return false, fmt.Errorf("imports: count the saved plan: %w", err)
	}
	if saved != *rows {
		return false, nil
	}
	// Every record of the template must be one the preview's snapshot saw
	// (its row version committed before the snapshot), and none may have
	// gone. xmin is a 32-bit transaction ID; it is widened with the current
	// epoch to compare it with the 64-bit snapshot.
	var now, changed int64
	err := tx.QueryRow(ctx, `WITH cur AS (SELECT pg_current_xact_id()::text::bigint AS c)
		SELECT count(*), count(*) FILTER (WHERE NOT pg_visible_in_snapshot(
			((((c >> 32) - CASE WHEN x > (c & 4294967295) THEN 1 ELSE 0 END) << 32) | x)::text::xid8, $2::pg_snapshot))
		FROM (SELECT xmin::text::bigint AS x FROM card_records WHERE template_id = $1) r, cur`, t.ID, *snapshot).Scan(&now, &changed)
	if err != nil {
		return false, fmt.Errorf("imports: compare records with the preview: %w", err)
	}
	if changed > 0 || now != *records {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE import_plan ON COMMIT DROP AS SELECT * FROM `+table+`;
		CREATE INDEX ON import_plan (record_id);
		ANALYZE import_plan (record_id, outcome)`); err != nil {
		return false, fmt.Errorf("imports: restore the saved plan: %w", err)
	}
	// The one value that depends on when the plan is computed.
	if _, err := tx.Exec(ctx, `UPDATE import_plan SET new_expires_at = now() + $1::int * interval '1 day' WHERE expires_from_now`, t.DefaultValidityDays); err != nil {
		return false, fmt.Errorf("imports: restore the saved plan: %w", err)
	}
	return true, nil
}
