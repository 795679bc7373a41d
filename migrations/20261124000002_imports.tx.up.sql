-- CSV imports: the uploaded file (in chunks, so it is streamed both ways
-- and every replica can read it), the import's settings and state, and the
-- per-row outcomes of its preview and of its run.
CREATE TABLE imports (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL,
    template_id      uuid NOT NULL,
    created_by       uuid,
    created_by_email text NOT NULL DEFAULT '',
    file_name        text NOT NULL,
    file_size        bigint NOT NULL,
    file_sha256      bytea NOT NULL,
    encoding         text NOT NULL,
    delimiter        text NOT NULL,
    header_row       int NOT NULL,
    header           jsonb NOT NULL,
    row_count        int NOT NULL,
    mapping          jsonb NOT NULL,
    options          jsonb NOT NULL,
    phase            text CHECK (phase IN ('QUEUED', 'PARSING', 'VALIDATING', 'APPLYING', 'NOTIFYING', 'DONE')),
    outcome          text CHECK (outcome IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    cancel_requested boolean NOT NULL DEFAULT false,
    -- The archive/delete counts the operator confirmed when starting a
    -- destructive SYNC; the run refuses a plan that differs.
    confirm          jsonb,
    processed        int NOT NULL DEFAULT 0,
    total            int NOT NULL DEFAULT 0,
    counts           jsonb,
    preview_counts   jsonb,
    previewed_at     timestamptz,
    error_code       text,
    error_message    text,
    timings          jsonb NOT NULL DEFAULT '{}',
    attempts         int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, template_id) REFERENCES card_templates (org_id, id) ON DELETE CASCADE
);
CREATE INDEX imports_org_created_idx ON imports (org_id, created_at DESC, id DESC);
-- At most one import per template is queued or running.
CREATE UNIQUE INDEX imports_one_active_per_template ON imports (template_id) WHERE outcome = 'RUNNING';

CREATE TABLE import_chunks (
    import_id uuid NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    seq       int NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (import_id, seq)
);

-- kind PREVIEW rows are replaced by kind RESULT rows when the import runs.
-- No foreign key: checking one per row costs ~0.7 s per 100k rows, and the
-- rows are only ever written with their import and deleted with it by the
-- housekeeping job.
CREATE TABLE import_rows (
    import_id      uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('PREVIEW', 'RESULT')),
    seq            int NOT NULL,
    line           int NOT NULL,
    outcome        text NOT NULL,
    key            text NOT NULL DEFAULT '',
    record_id      uuid,
    record_version int,
    changed        text[] NOT NULL DEFAULT '{}',
    diff           jsonb,
    errors         jsonb,
    card_id_read   text NOT NULL DEFAULT '',
    PRIMARY KEY (import_id, kind, seq)
);
CREATE INDEX import_rows_outcome_idx ON import_rows (import_id, kind, outcome, seq);
