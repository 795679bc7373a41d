package csvin

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteExample writes an example CSV file for an import: the header line
// and, when example is not empty, one example row with as many cells as
// the header. The file is UTF-8 without a byte-order mark, comma-separated,
// with CRLF line ends (RFC 4180); cells are quoted when they contain a
// comma, a quote, a line break or start with a space. Every cell goes
// through Neutralise first, so a label or value that starts like a formula
// ("=", "+", "-", "@") is written with a leading single quote; an import
// can undo it with Unneutralise.
func WriteExample(w io.Writer, header []string, example []string) error {
	if len(header) == 0 {
		return fmt.Errorf("csvin: example file: no columns")
	}
	if len(example) > 0 && len(example) != len(header) {
		return fmt.Errorf("csvin: example file: %d example cells for %d columns", len(example), len(header))
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	for _, row := range [][]string{header, example} {
		if len(row) == 0 {
			continue
		}
		out := make([]string, len(row))
		for i, c := range row {
			if !utf8.ValidString(c) || strings.IndexByte(c, 0) >= 0 {
				return fmt.Errorf("csvin: example file: cell %d (%q) is not valid text", i+1, c)
			}
			out[i] = Neutralise(c)
		}
		if err := cw.Write(out); err != nil {
			return fmt.Errorf("csvin: example file: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("csvin: example file: %w", err)
	}
	return nil
}
