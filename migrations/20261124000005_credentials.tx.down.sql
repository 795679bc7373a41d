DROP INDEX IF EXISTS card_records_credential_expiry_idx;
DROP TABLE IF EXISTS outbox_messages;
DROP TABLE IF EXISTS revocations;
DROP TABLE IF EXISTS credentials;
DROP TABLE IF EXISTS invitations;
DROP TABLE IF EXISTS issuing_keys;
