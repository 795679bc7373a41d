// Package imports brings card records in from CSV files: upload (streamed
// into the database in chunks), column mapping, a dry-run preview, and an
// atomic apply run as a River job.
//
// Both preview and apply use the same pipeline. The file is parsed and each
// row checked in Go (card IDs canonicalised, values checked against the
// template), then streamed with COPY into a temporary staging table. Every
// decision that depends on the stored records — matching, duplicates inside
// the file, identifiers taken by other records, locked fields, credential
// state RESET, overwrite policy, records missing from the file — is then
// made set-based in SQL into a plan table. The preview commits only the
// plan's per-row outcomes; the apply recomputes the plan inside its own
// transaction and executes it with a handful of set-based statements, so the
// whole import commits or nothing does, and edits made after the preview are
// seen rather than overwritten.
package imports
