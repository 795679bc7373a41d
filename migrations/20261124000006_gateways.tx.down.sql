DROP TABLE IF EXISTS gateway_readers;
DROP TABLE IF EXISTS access_events;
DROP TRIGGER IF EXISTS card_records_access_insert ON card_records;
DROP TRIGGER IF EXISTS card_records_access_update ON card_records;
DROP TRIGGER IF EXISTS card_records_access_delete ON card_records;
DROP FUNCTION IF EXISTS access_list_log();
DROP TABLE IF EXISTS access_list_changes;
DROP TABLE IF EXISTS gateways;
