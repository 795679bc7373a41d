-- Foundation: tenants, operators, sessions, card templates, card records,
-- photos and the audit trail.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE organisations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Server-wide settings and generated secrets (such as the access-token
-- signing key) shared by every replica.
CREATE TABLE server_settings (
    key        text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operators (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (email = lower(email) AND email <> ''),
    name            text NOT NULL DEFAULT '',
    role            text NOT NULL CHECK (role IN ('ADMIN', 'OPERATOR', 'VIEWER')),
    password_hash   text NOT NULL,
    failed_logins   int NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- An e-mail identifies one operator across the whole service, so login
-- needs no organisation name.
CREATE UNIQUE INDEX operators_email_key ON operators (email);
CREATE INDEX operators_org_idx ON operators (org_id);

-- Refresh tokens: only a SHA-256 of the 256-bit random token is stored. A
-- family links the rotations of one login; presenting a rotated-away token
-- again revokes the whole family (token theft).
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid NOT NULL,
    operator_id uuid NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    org_id      uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE card_templates (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    name               text NOT NULL CHECK (name <> ''),
    description        text NOT NULL DEFAULT '',
    fields             jsonb NOT NULL DEFAULT '[]',
    symbology          text NOT NULL CHECK (symbology IN ('QR', 'PDF417', 'CODE128', 'AZTEC', 'DATAMATRIX')),
    card_id_format     text NOT NULL,
    unique_identifier_kind text NOT NULL DEFAULT 'EMAIL' CHECK (unique_identifier_kind IN ('EMAIL', 'ID_NUMBER')),
    default_validity_days int CHECK (default_validity_days IS NULL OR default_validity_days > 0),
    version            int NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX card_templates_org_name_key ON card_templates (org_id, lower(name));
-- Lets child tables reference (org_id, id) so a row can never point into
-- another organisation.
CREATE UNIQUE INDEX card_templates_org_id_key ON card_templates (org_id, id);

CREATE TABLE card_records (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id              uuid NOT NULL,
    template_id         uuid NOT NULL,
    card_id             text NOT NULL CHECK (card_id <> ''),
    unique_identifier   text NOT NULL CHECK (unique_identifier <> ''),
    -- The identifier case-folded by the application (Unicode-aware, unlike
    -- lower() in a C-locale database): what uniqueness and sorting use.
    unique_key          text NOT NULL CHECK (unique_key <> ''),
    fields              jsonb NOT NULL DEFAULT '{}',
    barcode_value       text NOT NULL DEFAULT '',
    recipient_email     text NOT NULL DEFAULT '',
    security_questions  jsonb NOT NULL DEFAULT '[]',
    valid_from          timestamptz,
    expires_at          timestamptz,
    status              text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED', 'ARCHIVED')),
    credential_state    text NOT NULL DEFAULT 'NOT_INVITED'
                        CHECK (credential_state IN ('NOT_INVITED', 'INVITED', 'ACTIVE', 'RESET', 'REVOKED', 'EXPIRED')),
    locked_fields       text[] NOT NULL DEFAULT '{}',
    has_photo           boolean NOT NULL DEFAULT false,
    version             int NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    archived_at         timestamptz,
    search_text         text NOT NULL DEFAULT '',
    FOREIGN KEY (org_id, template_id) REFERENCES card_templates (org_id, id) ON DELETE RESTRICT,
    CHECK (expires_at IS NULL OR valid_from IS NULL OR expires_at > valid_from)
);
CREATE UNIQUE INDEX card_records_card_id_key ON card_records (template_id, card_id);
CREATE UNIQUE INDEX card_records_unique_identifier_key ON card_records (template_id, unique_key);
CREATE UNIQUE INDEX card_records_org_id_key ON card_records (org_id, id);
CREATE INDEX card_records_template_updated_idx ON card_records (template_id, updated_at, id);
CREATE INDEX card_records_template_created_idx ON card_records (template_id, created_at, id);
CREATE INDEX card_records_search_idx ON card_records USING gin (search_text gin_trgm_ops);

CREATE TABLE record_photos (
    record_id    uuid PRIMARY KEY REFERENCES card_records(id) ON DELETE CASCADE,
    org_id       uuid NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    data         bytea NOT NULL,
    sha256       bytea NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('OPERATOR', 'GATEWAY', 'SYSTEM')),
    actor_id    uuid,
    actor_label text NOT NULL DEFAULT '',
    action      text NOT NULL,
    target_kind text NOT NULL DEFAULT '',
    target_id   text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_org_at_idx ON audit_events (org_id, id);

-- The audit trail is append-only: rows can be neither changed nor removed
-- except by the retention job, which sets lintel.audit_retention for its
-- own transaction.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('lintel.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
