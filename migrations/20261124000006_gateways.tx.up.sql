-- Reader gateways: their tokens, the access-list change feed they follow,
-- the access events they report, and their readers' state.

CREATE TABLE gateways (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    site         text NOT NULL CHECK (site <> ''),
    name         text NOT NULL CHECK (name <> ''),
    -- SHA-256 of the gateway's 256-bit token; only the hash is kept.
    token_hash   bytea NOT NULL UNIQUE,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at   timestamptz,
    revoked_at   timestamptz,
    last_seen_at timestamptz,
    -- The access-list version the gateway last said it holds.
    synced_version bigint
);
CREATE UNIQUE INDEX gateways_org_site_name_key ON gateways (org_id, lower(site), lower(name));

-- Everything a door must know about a record, one row per change, in
-- commit order per organisation (see access_list_log()).
CREATE TABLE access_list_changes (
    version     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      uuid NOT NULL,
    record_id   uuid NOT NULL,
    template_id uuid NOT NULL,
    card_id     text NOT NULL,
    status      text NOT NULL,
    valid_from  timestamptz,
    expires_at  timestamptz,
    removed     boolean NOT NULL DEFAULT false,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_list_changes_org_version_idx ON access_list_changes (org_id, version);

-- Statement-level triggers with transition tables: an import that changes
-- 100,000 records writes its feed rows in one INSERT … SELECT. The feed lock
-- (the same per-organisation advisory lock as the revocation feed) is held
-- from the first change to the commit, so versions commit in order.
-- Transition tables carry no statistics: left alone, the planner joins old
-- and new rows with a nested loop, quadratic in the rows an import touches.
CREATE FUNCTION access_list_log() RETURNS trigger LANGUAGE plpgsql SET enable_nestloop = off AS $$
DECLARE
    org uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        FOR org IN SELECT DISTINCT o.org_id FROM old_rows o ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended('lintel.revocations:' || org::text, 0));
            -- Gateways following the feed pull at once (delivered on commit,
            -- once per transaction).
            PERFORM pg_notify('lintel_events', json_build_object('org', org, 'topic', 'access:' || org::text, 'kind', 'CHANGED')::text);
        END LOOP;
        INSERT INTO access_list_changes (org_id, record_id, template_id, card_id, status, valid_from, expires_at, removed)
        SELECT o.org_id, o.id, o.template_id, o.card_id, o.status, o.valid_from, o.expires_at, true FROM old_rows o ORDER BY o.id;
    ELSIF TG_OP = 'INSERT' THEN
        FOR org IN SELECT DISTINCT n.org_id FROM new_rows n ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended('lintel.revocations:' || org::text, 0));
            -- Gateways following the feed pull at once (delivered on commit,
            -- once per transaction).
            PERFORM pg_notify('lintel_events', json_build_object('org', org, 'topic', 'access:' || org::text, 'kind', 'CHANGED')::text);
        END LOOP;
        INSERT INTO access_list_changes (org_id, record_id, template_id, card_id, status, valid_from, expires_at)
        SELECT n.org_id, n.id, n.template_id, n.card_id, n.status, n.valid_from, n.expires_at FROM new_rows n ORDER BY n.id;
    ELSE
        -- Only changes a door cares about: card ID, status, validity.
        FOR org IN SELECT DISTINCT n.org_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE (n.card_id, n.status, n.valid_from, n.expires_at) IS DISTINCT FROM (o.card_id, o.status, o.valid_from, o.expires_at)
                ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended('lintel.revocations:' || org::text, 0));
            -- Gateways following the feed pull at once (delivered on commit,
            -- once per transaction).
            PERFORM pg_notify('lintel_events', json_build_object('org', org, 'topic', 'access:' || org::text, 'kind', 'CHANGED')::text);
        END LOOP;
        -- A changed card ID removes the old one from doors.
        INSERT INTO access_list_changes (org_id, record_id, template_id, card_id, status, valid_from, expires_at, removed)
        SELECT o.org_id, o.id, o.template_id, o.card_id, o.status, o.valid_from, o.expires_at, true
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.card_id <> o.card_id ORDER BY o.id;
        INSERT INTO access_list_changes (org_id, record_id, template_id, card_id, status, valid_from, expires_at)
        SELECT n.org_id, n.id, n.template_id, n.card_id, n.status, n.valid_from, n.expires_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.card_id, n.status, n.valid_from, n.expires_at) IS DISTINCT FROM (o.card_id, o.status, o.valid_from, o.expires_at)
        ORDER BY n.id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER card_records_access_insert AFTER INSERT ON card_records
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_list_log();
CREATE TRIGGER card_records_access_update AFTER UPDATE ON card_records
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_list_log();
CREATE TRIGGER card_records_access_delete AFTER DELETE ON card_records
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_list_log();

-- Decisions made at doors, as gateways report them. The gateway chooses
-- the id, so a retried batch inserts nothing twice.
CREATE TABLE access_events (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    gateway_id  uuid NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    reader_id   text NOT NULL,
    door        text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('CARD', 'CODE', 'KEYPAD', 'ALERT')),
    card_id     text NOT NULL DEFAULT '',
    record_id   uuid,
    decision    text CHECK (decision IN ('GRANTED', 'DENIED')),
    reason      text NOT NULL DEFAULT '',
    detail      text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_events_org_at_idx ON access_events (org_id, at DESC, id DESC);

-- Each reader's state as its gateway last reported it.
CREATE TABLE gateway_readers (
    gateway_id   uuid NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    reader_id    text NOT NULL,
    org_id       uuid NOT NULL,
    door         text NOT NULL DEFAULT '',
    protocol     text NOT NULL DEFAULT '',
    online       boolean NOT NULL,
    last_seen_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, reader_id)
);
