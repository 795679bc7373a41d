-- A preview keeps its plan (in an unlogged table of its own, named after
-- the import) with what it was computed from, so that the apply can reuse
-- it when provably nothing it read has changed since.
ALTER TABLE imports
    ADD COLUMN plan_snapshot         pg_snapshot,
    ADD COLUMN plan_template_version int,
    ADD COLUMN plan_records          bigint,
    ADD COLUMN plan_rows             bigint;
