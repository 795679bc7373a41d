-- Photos uploaded for an import as a ZIP, matched to rows by a mapped
-- file-name column or by card ID.
CREATE TABLE import_photos (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    import_id    uuid NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    name         text NOT NULL,
    name_key     text NOT NULL,
    card_key     text,
    content_type text,
    data         bytea,
    sha256       bytea,
    error        text
);
CREATE INDEX import_photos_import_idx ON import_photos (import_id, name_key);
ALTER TABLE imports ADD COLUMN photo_report jsonb;
