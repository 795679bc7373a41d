package exports

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/lintel/lintel/internal/templates"
)

// The file is written here rather than by encoding/csv because cells come
// from pgx as byte slices: writing them straight into the chunk buffer
// saves a string per cell, a million rows over. The output is byte for
// byte what encoding/csv writes (comma, LF line ends) for the cells after
// csvin.Neutralise; a test holds the two together.

// formulaStart marks the bytes a cell must start with for csvin.Neutralise
// to change it: a formula character, or a single quote that may precede
// one. Every other cell goes out untouched without a look at the rest.
var formulaStart = [256]bool{'=': true, '+': true, '-': true, '@': true, '\t': true, '\r': true, '\'': true}

// appendCell writes one cell, neutralised and quoted as needed.
func appendCell(buf, v []byte) []byte {
	if len(v) > 0 && formulaStart[v[0]] {
		v = []byte(csvin.Neutralise(string(v)))
	}
	if !needsQuotes(v) {
		return append(buf, v...)
	}
	buf = append(buf, '"')
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			buf = append(buf, v...)
			break
		}
		buf = append(buf, v[:i+1]...)
		buf = append(buf, '"')
		v = v[i+1:]
	}
	return append(buf, '"')
}

// needsQuotes is encoding/csv's rule: a cell with a comma, a quote or a
// line break, one starting with white space, and `\.` are quoted.
func needsQuotes(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	if len(v) == 2 && v[0] == '\\' && v[1] == '.' {
		return true
	}
	for _, c := range v {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			return true
		}
	}
	r, _ := utf8.DecodeRune(v)
	return unicode.IsSpace(r)
}

// appendRow writes one row and its line end.
func appendRow(buf []byte, cells [][]byte) []byte {
	for i, c := range cells {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCell(buf, c)
	}
	return append(buf, '\n')
}

// Querier runs a query; pools, connections and transactions all do.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// WriteRecords writes what an ADMIN's export of every column of t's
// records of org holds, without the header, to w, reading through q — the
// job's reading and writing without its storing, for `lintel bench
// export`. q's session must use DateStyle ISO (PostgreSQL's default). It
// returns the rows written.
func WriteRecords(ctx context.Context, q Querier, org uuid.UUID, t *templates.Template, w io.Writer) (int64, error) {
	rows, err := q.Query(ctx, RecordsSQL(org, t, ExportSQL))
	if err != nil {
		return 0, fmt.Errorf("exports: read rows: %w", err)
	}
	defer rows.Close()
	buf := make([]byte, 0, 1<<20+1<<17)
	var n int64
	for rows.Next() {
		buf = appendRow(buf, rows.RawValues())
		n++
		if len(buf) >= 1<<20 {
			if _, err := w.Write(buf); err != nil {
				return n, err
			}
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("exports: read rows: %w", err)
	}
	_, err = w.Write(buf)
	return n, err
}
