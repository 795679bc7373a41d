ALTER TABLE imports DROP COLUMN IF EXISTS photo_report;
DROP TABLE IF EXISTS import_photos;
