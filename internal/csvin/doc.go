// Package csvin ("CSV in") reads user-supplied CSV files for bulk import
// robustly, streaming them (one read buffer and one row in memory, however
// large the file), and reports every problem with the file as an *[Error]
// that names the line, the column and, where it helps, the byte offset.
//
// # Format
//
// [Reader] reads RFC 4180 CSV with these allowances:
//
//   - Lines end with CRLF, LF or a lone CR (old Mac files); all three may
//     be mixed. Line numbers count physical lines of the original file, so
//     a quoted cell spanning three lines advances them by two.
//   - A quoted cell may hold delimiters, line breaks (returned as "\n",
//     whatever the file used) and doubled quotes ("" for one "). Spaces
//     between a closing quote and the next delimiter are ignored; any other
//     text there is an error ("a quote inside a quoted cell must be
//     doubled").
//   - A quote inside an unquoted cell (ab"c) is kept literally, like
//     encoding/csv's LazyQuotes for that case. A quote opens a quoted cell
//     only as the cell's first character (so ` "a,b"` is two cells).
//   - Rows with any number of cells are returned as they are, a trailing
//     delimiter giving an empty last cell; comparing the count with the
//     header is the importer's job. Rows whose cells are all empty or white
//     space (blank lines, a line of just delimiters) are skipped.
//   - Cells are returned verbatim: not trimmed, and cells that look like
//     spreadsheet formulas (=, +, -, @) are not altered. See [Neutralise]
//     and [Unneutralise].
//
// # Header
//
// The header is on line [Options].HeaderRow; lines before it are skipped.
// With HeaderRow 0 it is the first line that is not blank (blank lines
// before it are skipped). Header cells are trimmed of white space,
// byte-order marks and zero-width spaces. Empty header cells are allowed
// (unnamed columns); a header with no name at all is an error, and so is a
// name that appears twice, compared case-insensitively after trimming.
//
// # Delimiter
//
// Unless given, the delimiter is detected among ',', ';' and tab from the
// first 20 records (at most 16 KiB) after the preamble: for each candidate
// the delimiters outside quotes are counted per record, and the one whose
// count in most records matches its count in the header wins (then the one
// giving more columns, then ',' before ';' before tab). A file without any
// of them has one column and the delimiter ','. A first line "sep=;" (Excel
// writes one to name the delimiter) names the delimiter, unless Options
// name another, and is skipped; it is only looked for with HeaderRow 0.
//
// # Encodings
//
// UTF-8 is the default; a leading UTF-8 byte-order mark is stripped. A
// UTF-16 byte-order mark selects UTF-16LE or UTF-16BE, and a byte-order
// mark wins over a named encoding. Other encodings must be named
// ([Options].Encoding, see [ParseEncoding]): UTF-16LE/BE without a BOM,
// WINDOWS-1252, ISO-8859-1 (decoded as WINDOWS-1252, its superset, as web
// browsers do, so '€' in a "Latin-1" file reads right) and ISO-8859-15.
// Input that is not valid in its encoding is an error at the first bad
// byte, never replaced with U+FFFD: in a UTF-8 file that is not UTF-8 the
// error says where and suggests naming the encoding. NUL bytes are refused
// in every encoding (a NUL in a file assumed UTF-8 usually means UTF-16
// without a BOM, and the error says so when the first bytes look like it).
// Files that start like a binary format people upload by mistake (ZIP,
// hence .xlsx/.ods, old .xls, PDF, images, gzip) are refused up front.
//
// [Error].ByteOffset is the offset in the original file. For errors about
// the encoding it is always known; for other errors (a quote never closed,
// a cell too long) it is known in UTF-8 files and -1 in transcoded ones,
// whose line and column still locate the problem.
//
// # Limits
//
// [Options] bound the columns per row (2000), the bytes per cell (64 KiB)
// and per row (1 MiB). Crossing a limit is an error as soon as it happens,
// without reading the rest of the row or file. A header with too many
// columns is counted to the end (within the row limit) so that the error
// can say how many it has.
//
// # Errors
//
// Every problem with the file's content is an *[Error]; failures of the
// underlying io.Reader are returned wrapped (errors.Is/As see them). Errors
// are final: after one, [Reader.Next] keeps returning it. Problems that
// concern single rows' values (missing cells, bad e-mail addresses) are not
// the reader's business.
//
// # Mapping and example files
//
// [ProposeMapping] proposes which column holds which attribute from the
// header names, with [CommonSynonyms] for the built-in attributes, and
// [WriteExample] writes an example file for users to start from.
package csvin
