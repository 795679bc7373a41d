DROP INDEX IF EXISTS audit_events_org_target_idx;
DROP TABLE IF EXISTS export_chunks;
DROP TABLE IF EXISTS exports;
