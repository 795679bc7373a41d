ALTER TABLE imports
    DROP COLUMN IF EXISTS plan_snapshot,
    DROP COLUMN IF EXISTS plan_template_version,
    DROP COLUMN IF EXISTS plan_records,
    DROP COLUMN IF EXISTS plan_rows;
