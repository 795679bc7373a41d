-- Invitations, signed mobile credentials, their revocations, the issuing
-- keys that sign them, and the e-mail outbox.

-- An organisation's credential issuing keys (Ed25519). The private key is
-- sealed with the server's master key (AES-256-GCM, the kid as associated
-- data), so a database dump alone cannot mint credentials. Exactly one key
-- per organisation signs (retired_at IS NULL); retired keys stay published
-- until the last credential they signed has expired (publish_until).
CREATE TABLE issuing_keys (
    kid           text PRIMARY KEY CHECK (kid <> ''),
    org_id        uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    algorithm     text NOT NULL DEFAULT 'EdDSA' CHECK (algorithm IN ('EdDSA')),
    public_key    bytea NOT NULL,
    sealed_private_key bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    publish_until timestamptz
);
CREATE UNIQUE INDEX issuing_keys_one_active ON issuing_keys (org_id) WHERE retired_at IS NULL;
CREATE INDEX issuing_keys_org_idx ON issuing_keys (org_id, created_at);

-- Invitations: a 256-bit random token, stored only as its SHA-256. One open
-- invitation per record: a resend supersedes the previous one.
CREATE TABLE invitations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL,
    record_id       uuid NOT NULL,
    token_hash      bytea NOT NULL UNIQUE,
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    failed_attempts int NOT NULL DEFAULT 0,
    locked_at       timestamptz,
    redeemed_at     timestamptz,
    superseded_at   timestamptz,
    FOREIGN KEY (org_id, record_id) REFERENCES card_records (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX invitations_one_open ON invitations (record_id)
    WHERE redeemed_at IS NULL AND superseded_at IS NULL;
CREATE INDEX invitations_expiry_idx ON invitations (expires_at);

-- Issued credentials (the JWT's jti is the id). Rows outlive their record:
-- a deleted record's credential must stay revoked for gateways.
CREATE TABLE credentials (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    record_id     uuid NOT NULL,
    template_id   uuid NOT NULL,
    invitation_id uuid,
    kid           text NOT NULL REFERENCES issuing_keys(kid),
    card_id       text NOT NULL,
    -- The device's P-256 public key as a JWK (the JWT's cnf.jwk).
    device_key    jsonb NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    not_before    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    -- The newest rotating code accepted, so that a code is good once
    -- across every replica (each also keeps a replay cache in memory).
    last_code_at  timestamptz,
    revoke_reason text CHECK (revoke_reason IN ('RESET', 'SUSPENDED', 'ARCHIVED', 'DELETED', 'EXPIRED', 'REISSUED'))
);
CREATE UNIQUE INDEX credentials_one_live ON credentials (record_id) WHERE revoked_at IS NULL;
CREATE INDEX credentials_org_record_idx ON credentials (org_id, record_id);
-- What the minutely expiry job looks for.
CREATE INDEX credentials_live_expiry_idx ON credentials (expires_at) WHERE revoked_at IS NULL;
CREATE INDEX card_records_credential_expiry_idx ON card_records (expires_at) WHERE credential_state IN ('INVITED', 'ACTIVE', 'RESET');

-- The revocation feed gateways follow. seq is assigned while holding a
-- per-organisation advisory lock until commit, so a reader that has seen
-- seq N never later finds a committed row below N.
CREATE TABLE revocations (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    credential_id uuid NOT NULL UNIQUE,
    record_id     uuid NOT NULL,
    reason        text NOT NULL,
    revoked_at    timestamptz NOT NULL DEFAULT now(),
    -- After this the credential is invalid anyway and the row may go.
    credential_expires_at timestamptz NOT NULL
);
CREATE INDEX revocations_org_seq_idx ON revocations (org_id, seq);

-- E-mail waiting to be sent, or sent. Secrets the body needs (an
-- invitation link) are sealed with the master key and erased once sent.
CREATE TABLE outbox_messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('INVITATION', 'REMOVED')),
    record_id       uuid,
    recipient       text NOT NULL CHECK (recipient <> ''),
    subject         text NOT NULL,
    text_body       text NOT NULL,
    html_body       text NOT NULL,
    sealed_secret   bytea,
    status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'HELD', 'SENT', 'FAILED', 'CANCELLED')),
    attempts        int NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_due_idx ON outbox_messages (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX outbox_held_idx ON outbox_messages (created_at) WHERE status = 'HELD';
CREATE INDEX outbox_org_created_idx ON outbox_messages (org_id, created_at DESC, id DESC);
