-- CSV exports: what was asked for (kind, template, filter, columns and the
-- role they were chosen for), where the job stands, and the file, stored in
-- chunks like an import's upload so any replica can serve it and a failed
-- run leaves nothing behind (the chunks commit with the job's success).
CREATE TABLE exports (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('RECORDS', 'AUDIT')),
    template_id      uuid,
    created_by       uuid,
    created_by_email text NOT NULL DEFAULT '',
    -- The role the columns were chosen for: the job re-applies it against
    -- the template as it is when it runs, and a download link is only
    -- handed to callers holding at least this role.
    role             text NOT NULL CHECK (role IN ('ADMIN', 'OPERATOR', 'VIEWER')),
    filter           jsonb NOT NULL DEFAULT '{}',
    columns          jsonb NOT NULL,
    options          jsonb NOT NULL DEFAULT '{}',
    file_name        text NOT NULL CHECK (file_name <> ''),
    status           text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'EXPIRED')),
    processed        bigint NOT NULL DEFAULT 0,
    total            bigint,
    row_count        bigint,
    file_size        bigint,
    file_sha256      bytea,
    error_code       text,
    error_message    text,
    attempts         int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- When the stored file is deleted (NULL: kept until the export is).
    expires_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'RECORDS') = (template_id IS NOT NULL)),
    FOREIGN KEY (org_id, template_id) REFERENCES card_templates (org_id, id) ON DELETE CASCADE
);
CREATE INDEX exports_org_created_idx ON exports (org_id, created_at DESC, id DESC);
CREATE INDEX exports_expiry_idx ON exports (expires_at) WHERE status = 'SUCCEEDED';

CREATE TABLE export_chunks (
    export_id uuid NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
    seq       int NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (export_id, seq)
);
-- CSV compresses well; lz4 does it at a fraction of pglz's cost, which
-- matters when a job writes hundreds of megabytes. Servers built without
-- lz4 keep the default.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE export_chunks ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END
$$;

-- auditEvents(filter: {target}) looks up the history of one object.
CREATE INDEX audit_events_org_target_idx ON audit_events (org_id, target_id, id);
