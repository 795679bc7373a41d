// Package exports writes CSV exports of card records (and of the audit
// trail) as River jobs, stores the files in PostgreSQL and serves them
// through signed, expiring links.
//
// A job runs one COPY (SELECT …) TO STDOUT in a REPEATABLE READ snapshot:
// PostgreSQL formats every cell — canonical values, RFC 3339 instants, and
// the single quote that neutralises a cell a spreadsheet would run as a
// formula — so the Go side only prepends the header (and an optional
// byte-order mark), hashes, counts rows for progress and cuts the stream
// into 1 MiB chunks that a second connection inserts while the COPY goes
// on. The chunks commit together with the export's success and its audit
// event, so a failed or killed run leaves no partial file, and a retried
// job starts over cleanly. Nothing holds more than a few chunks in memory,
// however many rows the export has.
//
// Columns are chosen per role: ADMIN exports every column, OPERATOR every
// column but template fields marked sensitive, VIEWER only what is not
// personal (card ID, validity, status, template fields not marked personal
// or sensitive). Security answers and questions, and photos, are never
// exported. The file's headers and value forms are the ones the import
// reads, so a file exported and imported back in SYNC mode changes nothing.
package exports
