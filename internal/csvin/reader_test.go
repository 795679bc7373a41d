package csvin_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/stretchr/testify/require"
)

// readCase reads one file of the hostile corpus.
type readCase struct {
	name      string
	file      string // in testdata/hostile
	opts      csvin.Options
	header    []string
	delimiter rune           // checked when not 0
	encoding  csvin.Encoding // checked when not ""
	rows      []row
	err       *wantError
}

func runReadCases(t *testing.T, cases []readCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := readings(t, hostile(t, tc.file), tc.opts)
			if tc.err != nil {
				requireError(t, got.err, *tc.err)
			} else {
				require.NoError(t, got.err)
			}
			require.Equal(t, tc.header, got.header, "header")
			require.Equal(t, tc.rows, got.rows, "rows")
			if tc.delimiter != 0 {
				require.Equal(t, string(tc.delimiter), string(got.delimiter), "delimiter")
			}
			if tc.encoding != "" {
				require.Equal(t, tc.encoding, got.encoding, "encoding")
			}
		})
	}
}

func TestReaderFormat(t *testing.T) {
	runReadCases(t, []readCase{
		{
			name: "a UTF-8 byte-order mark is stripped and CRLF line ends are read",
			file: "bom_crlf.csv", header: []string{"name", "email"}, delimiter: ',', encoding: csvin.UTF8,
			rows: []row{{2, []string{"Ada", "ada@example.com"}}, {3, []string{"Bob", "bob@example.com"}}},
		},
		{
			name: "LF line ends are read and the last line needs no line end",
			file: "lf.csv", header: []string{"name", "email"},
			rows: []row{{2, []string{"Ada", "ada@example.com"}}, {3, []string{"Bob", "bob@example.com"}}},
		},
		{
			name: "lone CR line ends of old Mac files are read",
			file: "lone_cr.csv", header: []string{"name", "email"},
			rows: []row{{2, []string{"Ada", "ada@example.com"}}, {3, []string{"Bob", "bob@example.com"}}},
		},
		{
			name: "CRLF, LF and lone CR may be mixed in one file",
			file: "mixed_line_ends.csv", header: []string{"a", "b"},
			rows: []row{{2, []string{"1", "2"}}, {3, []string{"3", "4"}}, {4, []string{"5", "6"}}},
		},
		{
			name: "quoted cells keep line breaks, doubled quotes and delimiters, and line numbers count the lines they span",
			file: "quoted.csv", header: []string{"id", "note", "city"},
			rows: []row{
				{2, []string{"1", "line one\nline two", "Zürich"}},
				{4, []string{"2", `He said "hi"`, "Basel, BS"}},
				{5, []string{"3", "a\nb\nc", "Bern"}},
				{8, []string{"4", "plain", "Genf"}},
			},
		},
		{
			name: "a trailing delimiter gives an empty last cell, in the header too",
			file: "trailing_delimiter.csv", header: []string{"name", "email", ""},
			rows: []row{{2, []string{"Ada", "ada@example.com", ""}}},
		},
		{
			name: "blank lines, white-space lines and rows of empty cells are skipped, before the header too",
			file: "blank_lines.csv", header: []string{"name", "email"},
			rows: []row{{5, []string{"Ada", "ada@example.com"}}, {10, []string{"Bob", "bob@example.com"}}},
		},
		{
			name: "the header may be on line 3, after lines that are skipped unparsed",
			file: "header_row_3.csv", opts: csvin.Options{HeaderRow: 3}, header: []string{"name", "email"}, delimiter: ';',
			rows: []row{{4, []string{"Ada", "ada@example.com"}}},
		},
		{
			name: "a header with only the header row gives no rows",
			file: "header_only.csv", header: []string{"name", "email"},
		},
		{
			name: "empty header cells are unnamed columns",
			file: "unnamed_columns.csv", header: []string{"name", "", "email"},
			rows: []row{{2, []string{"Ada", "x", "ada@example.com"}}},
		},
		{
			name: "rows with too few or too many cells are returned as they are",
			file: "ragged_rows.csv", header: []string{"a", "b", "c"},
			rows: []row{{2, []string{"1", "2"}}, {3, []string{"1", "2", "3", "4"}}},
		},
		{
			name: "a quote inside an unquoted cell is kept literally",
			file: "bare_quote.csv", header: []string{"name", "height"},
			rows: []row{{2, []string{"Ada", `5'10"`}}, {3, []string{`ab"c`, `x"y"`}}},
		},
		{
			name: "spaces after a closing quote are ignored",
			file: "spaces_after_quote.csv", header: []string{"name", "note"},
			rows: []row{{2, []string{"Ada", "x"}}},
		},
		{
			name: "cells that look like formulas are returned verbatim",
			file: "formulas.csv", header: []string{"name", "value"},
			rows: []row{
				{2, []string{"x", "=cmd|' /C calc'!A0"}},
				{3, []string{"y", "+1"}},
				{4, []string{"z", "-2"}},
				{5, []string{"w", "@SUM(1)"}},
				{6, []string{"v", "'=1+2"}},
			},
		},
		{
			name: "a row with more cells than the limit is an error",
			file: "too_many_cells.csv", opts: csvin.Options{MaxColumns: 3}, header: []string{"a", "b", "c"},
			rows: []row{{2, []string{"1", "2", "3"}}},
			err:  &wantError{3, 0, 12, "line 3: the row has 5 cells, at most 3 allowed"},
		},
		{
			name: "a header with 10000 columns is an error that says how many it has",
			file: "wide_header.csv",
			err:  &wantError{1, 0, 0, "line 1: the header has 10000 columns, at most 2000 allowed"},
		},
		{
			name: "a cell longer than the limit is an error at its line and column",
			file: "long_cell.csv", header: []string{"name", "note"},
			err: &wantError{2, 2, 14, "line 2, column 2: the cell is longer than 65536 bytes, the most allowed"},
		},
		{
			name: "a long cell is fine when the limit allows it",
			file: "long_cell.csv", opts: csvin.Options{MaxCellBytes: 70000}, header: []string{"name", "note"},
			rows: []row{{2, []string{"Ada", strings.Repeat("x", 70000)}}},
		},
		{
			name: "a quoted cell that runs on past the limit suggests a missing closing quote",
			file: "long_quoted_cell.csv", header: []string{"name", "note"},
			err: &wantError{2, 2, 14, "line 2, column 2: the cell is longer than 65536 bytes, the most allowed; perhaps its opening quote lacks a closing quote"},
		},
		{
			name: "a row longer than the limit is an error at its line",
			file: "long_row.csv", opts: csvin.Options{MaxRowBytes: 60}, header: []string{"a", "b", "c", "d", "e"},
			rows: []row{{2, []string{"0123456789", "0123456789", "0123456789", "0123456789", "0123456789"}}},
			err:  &wantError{3, 3, 65, "line 3, column 3: the row is longer than 60 bytes, the most allowed"},
		},
		{
			name: "a quote that is never closed is an error at the line where it opens",
			file: "unterminated_quote.csv", header: []string{"name", "note"},
			err: &wantError{2, 2, 14, "line 2, column 2: the quote that opens this cell is never closed (the file ends inside it)"},
		},
		{
			name: "text after a closing quote is an error that explains doubling quotes",
			file: "text_after_quote.csv", header: []string{"name", "note"},
			err: &wantError{2, 2, 24, `line 2, column 2: unexpected 'h' after the closing quote of the cell; a quote inside a quoted cell must be doubled ("")`},
		},
	})
}

func TestReaderDelimiter(t *testing.T) {
	runReadCases(t, []readCase{
		{
			name: "semicolons are detected even when cells hold decimal commas",
			file: "semicolon.csv", header: []string{"Name", "Betrag", "Stadt"}, delimiter: ';',
			rows: []row{{2, []string{"Müller", "1,50", "Zürich"}}, {3, []string{"Meier", "2,75", "Bern"}}},
		},
		{
			name: "tabs are detected even when cells hold commas",
			file: "tab.csv", header: []string{"name", "email", "city"}, delimiter: '\t',
			rows: []row{{2, []string{"Ada", "ada@example.com", "Zürich, ZH"}}},
		},
		{
			name: "a file without any delimiter has one column and the delimiter ','",
			file: "single_column.csv", header: []string{"email"}, delimiter: ',',
			rows: []row{{2, []string{"ada@example.com"}}, {3, []string{"bob@example.com"}}},
		},
		{
			name: "an Excel sep= line names the delimiter and is skipped",
			file: "excel_sep_line.csv", header: []string{"name", "note"}, delimiter: ';',
			rows: []row{{3, []string{"Ada", "a,b,c,d"}}},
		},
		{
			name: "a given delimiter is used as it is",
			file: "semicolon.csv", opts: csvin.Options{Delimiter: ','}, header: []string{"Name;Betrag;Stadt"}, delimiter: ',',
			rows: []row{{2, []string{"Müller;1", "50;Zürich"}}, {3, []string{"Meier;2", "75;Bern"}}},
		},
	})

	inline := []struct {
		name, data string
		want       rune
	}{
		{"commas inside quotes do not count", "a;b;c\n\"1,2,3,4\";x;y\n\"5,6,7,8\";z;w\n", ';'},
		{"the delimiter consistent across lines wins over the more frequent one", "a,b;c;d;e\n1,2;3\n4,5;6;7;8;9\n", ','},
		{"among equally consistent delimiters the one giving more columns wins", "a;b;c,d\n1;2;3,4\n", ';'},
		{"a header-only file is detected from the header", "a\tb\tc\n", '\t'},
		{"a delimiter absent from the header is not chosen", "name\n1;2\n3;4\n", ','},
	}
	for _, tc := range inline {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := csvin.NewReader(strings.NewReader(tc.data), csvin.Options{})
			require.NoError(t, err)
			require.Equal(t, string(tc.want), string(rd.Delimiter()))
		})
	}
}

func TestReaderEncodings(t *testing.T) {
	latin := []row{{2, []string{"José", "Gießen", "5 €"}}}
	runReadCases(t, []readCase{
		{
			name: "Latin-1 bytes in a file read as UTF-8 are an error at the first bad byte with a hint",
			file: "windows1252.csv", header: []string{"name", "city", "price"},
			err: &wantError{2, 1, 19, "line 2, column 1: invalid UTF-8 at byte 19 (0xE9); name the file's encoding (e.g. WINDOWS-1252) to transcode it"},
		},
		{
			name: "Latin-1 bytes in the header are an error on line 1",
			file: "latin1_in_header.csv",
			err:  &wantError{1, 1, 2, "line 1, column 1: invalid UTF-8 at byte 2 (0xE9); name the file's encoding (e.g. WINDOWS-1252) to transcode it"},
		},
		{
			name: "a file named WINDOWS-1252 reads é, ß and €",
			file: "windows1252.csv", opts: csvin.Options{Encoding: csvin.Windows1252}, encoding: csvin.Windows1252,
			header: []string{"name", "city", "price"}, rows: latin,
		},
		{
			name: "a file named ISO-8859-1 reads the same, € included",
			file: "windows1252.csv", opts: csvin.Options{Encoding: csvin.ISO8859_1}, encoding: csvin.ISO8859_1,
			header: []string{"name", "city", "price"}, rows: latin,
		},
		{
			name: "a file named ISO-8859-15 has € at 0xA4",
			file: "iso8859_15.csv", opts: csvin.Options{Encoding: csvin.ISO8859_15},
			header: []string{"name", "price"}, rows: []row{{2, []string{"José", "5 €"}}},
		},
		{
			name: "UTF-16LE with a byte-order mark is detected",
			file: "utf16le_bom.csv", encoding: csvin.UTF16LE,
			header: []string{"name", "city"}, rows: []row{{2, []string{"José", "Zürich"}}},
		},
		{
			name: "UTF-16BE with a byte-order mark is detected, surrogate pairs included",
			file: "utf16be_bom.csv", encoding: csvin.UTF16BE,
			header: []string{"name", "city"}, rows: []row{{2, []string{"José", "Zürich 😀"}}},
		},
		{
			name: "a byte-order mark wins over the named encoding",
			file: "utf16le_bom.csv", opts: csvin.Options{Encoding: csvin.Windows1252}, encoding: csvin.UTF16LE,
			header: []string{"name", "city"}, rows: []row{{2, []string{"José", "Zürich"}}},
		},
		{
			name: "UTF-16LE without a byte-order mark is an error about NUL bytes that names UTF-16LE",
			file: "utf16le_no_bom.csv",
			err:  &wantError{1, 1, 1, "line 1, column 1: NUL byte at byte 1 — the file looks like UTF-16LE without a byte-order mark; name its encoding (UTF-16LE) to read it"},
		},
		{
			name: "UTF-16LE without a byte-order mark reads when named",
			file: "utf16le_no_bom.csv", opts: csvin.Options{Encoding: csvin.UTF16LE},
			header: []string{"name", "city"}, rows: []row{{2, []string{"José", "Zürich"}}},
		},
		{
			name: "a UTF-8 file named UTF-16LE is an error",
			file: "lf.csv", opts: csvin.Options{Encoding: csvin.UTF16LE},
			err: &wantError{0, 0, -1, "the file does not look like UTF-16LE (it has no byte-order mark and no NUL bytes, and reads as UTF-8); leave the encoding unnamed or name the right one"},
		},
		{
			name: "an unpaired UTF-16 surrogate is an error at its byte",
			file: "utf16le_unpaired_surrogate.csv", header: []string{"name"},
			err: &wantError{2, 1, 14, "line 2, column 1: invalid UTF-16 at byte 14: unpaired surrogate 0xD800"},
		},
		{
			name: "a UTF-16 file with an odd number of bytes is an error",
			file: "utf16le_odd_length.csv", header: []string{"name"},
			err: &wantError{2, 1, 14, "line 2, column 1: the file ends in the middle of a UTF-16 character at byte 14 (it has an odd number of bytes)"},
		},
		{
			name: "UTF-32 is refused",
			file: "utf32le_bom.csv",
			err:  &wantError{0, 0, 0, "the file is UTF-32, which is not supported; save it as UTF-8"},
		},
		{
			name: "a UTF-8 file that ends inside a character is an error at that character",
			file: "truncated_utf8.csv", header: []string{"name"},
			err: &wantError{2, 1, 6, "line 2, column 1: invalid UTF-8 at byte 6 (0xC3); name the file's encoding (e.g. WINDOWS-1252) to transcode it"},
		},
		{
			name: "a NUL byte in a UTF-8 file is an error at its line and byte",
			file: "nul.csv", header: []string{"name", "email"},
			err: &wantError{2, 2, 16, "line 2, column 2: NUL byte at byte 16 — is this a binary or UTF-16 file?"},
		},
		{
			name: "a NUL byte in a WINDOWS-1252 file is an error too",
			file: "nul.csv", opts: csvin.Options{Encoding: csvin.Windows1252}, header: []string{"name", "email"},
			err: &wantError{2, 2, 16, "line 2, column 2: NUL byte at byte 16 — is this a binary or UTF-16 file?"},
		},
	})
}

func TestReaderRefusesFiles(t *testing.T) {
	runReadCases(t, []readCase{
		{
			name: "an empty file is an error",
			file: "empty.csv",
			err:  &wantError{0, 0, -1, "the file is empty"},
		},
		{
			name: "a file with only a byte-order mark is empty",
			file: "bom_only.csv",
			err:  &wantError{0, 0, -1, "the file is empty"},
		},
		{
			name: "a file of blank lines has no header",
			file: "only_blank_lines.csv",
			err:  &wantError{0, 0, -1, "the file has no header row: it contains only blank lines"},
		},
		{
			name: "a header row that is blank on the line named is an error",
			file: "blank_lines.csv", opts: csvin.Options{HeaderRow: 2},
			err: &wantError{2, 0, -1, "line 2: the header row is blank"},
		},
		{
			name: "a header row beyond the end of the file is an error",
			file: "short_file_header_row.csv", opts: csvin.Options{HeaderRow: 5},
			err: &wantError{0, 0, -1, "the header should be on line 5, but the file has only 2 lines"},
		},
		{
			name: "a header row just past the last line is an error",
			file: "short_file_header_row.csv", opts: csvin.Options{HeaderRow: 3},
			err: &wantError{0, 0, -1, "the header should be on line 3, but the file has only 2 lines"},
		},
		{
			name: "a repeated header name is an error naming both columns",
			file: "duplicate_header.csv",
			err:  &wantError{1, 0, -1, `line 1: column 4 "Email" repeats column 2`},
		},
		{
			name: "header names are compared ignoring case and surrounding spaces",
			file: "duplicate_header_case.csv",
			err:  &wantError{1, 0, -1, `line 1: column 4 "EMAIL" repeats column 2 ("Email")`},
		},
		{
			name: "a header without any name is an error",
			file: "empty_header.csv",
			err:  &wantError{1, 0, -1, "line 1: the header row has no column names"},
		},
		{
			name: "a PNG image is refused before any row",
			file: "png.bin",
			err:  &wantError{0, 0, 0, "this is not a CSV file: it looks like a PNG image"},
		},
		{
			name: "an Excel workbook is refused with a hint to export CSV",
			file: "xlsx.bin",
			err:  &wantError{0, 0, 0, "this is not a CSV file: it looks like a ZIP archive (an Excel .xlsx or OpenDocument .ods workbook is one); export the sheet as CSV"},
		},
		{
			name: "other binary data is an error in the first line that calls it binary",
			file: "binary_noise.bin",
			err:  &wantError{1, 1, 7, "line 1, column 1: invalid UTF-8 at byte 7 (0xFE); the file has control characters at its start and looks binary, not like CSV text"},
		},
	})
}

func TestReaderNext(t *testing.T) {
	t.Run("the returned slice is reused but its strings stay valid", func(t *testing.T) {
		rd, err := csvin.NewReader(strings.NewReader("a,b\n1,2\n3,4\n"), csvin.Options{})
		require.NoError(t, err)
		first, _, err := rd.Next()
		require.NoError(t, err)
		one, two := first[0], first[1]
		second, _, err := rd.Next()
		require.NoError(t, err)
		require.Equal(t, []string{"3", "4"}, second)
		require.Equal(t, "1", one)
		require.Equal(t, "2", two)
		require.Equal(t, []string{"a", "b"}, rd.Header(), "the header is not overwritten")
	})
	t.Run("an error is returned with the line it is on", func(t *testing.T) {
		rd, err := csvin.NewReader(bytes.NewReader(hostile(t, "nul.csv")), csvin.Options{})
		require.NoError(t, err)
		cells, line, err := rd.Next()
		require.Nil(t, cells)
		require.Equal(t, 2, line)
		require.Error(t, err)
	})
	t.Run("the header line is reported", func(t *testing.T) {
		rd, err := csvin.NewReader(bytes.NewReader(hostile(t, "blank_lines.csv")), csvin.Options{})
		require.NoError(t, err)
		require.Equal(t, 3, rd.HeaderLine())
	})
	t.Run("header cells lose spaces, byte-order marks and zero-width spaces", func(t *testing.T) {
		rd, err := csvin.NewReader(strings.NewReader(" name\t,\ufeffemail\u200b,\"city \"\n"), csvin.Options{})
		require.NoError(t, err)
		require.Equal(t, []string{"name", "email", "city"}, rd.Header())
	})
	t.Run("data cells are not trimmed", func(t *testing.T) {
		res := readAll(t, strings.NewReader("a,b\n x , y\n"), csvin.Options{})
		require.Equal(t, []row{{2, []string{" x ", " y"}}}, res.rows)
	})
	t.Run("a quote after leading spaces is literal text, not an opening quote", func(t *testing.T) {
		res := readAll(t, strings.NewReader("a,b\n1, \"x,y\"\n"), csvin.Options{})
		require.NoError(t, res.err)
		require.Equal(t, []row{{2, []string{"1", ` "x`, `y"`}}}, res.rows)
	})
	t.Run("the byte offset counts the byte-order mark", func(t *testing.T) {
		res := readAll(t, strings.NewReader("\xEF\xBB\xBFa\n\xE9"), csvin.Options{})
		requireError(t, res.err, wantError{2, 1, 5, "line 2, column 1: invalid UTF-8 at byte 5 (0xE9); name the file's encoding (e.g. WINDOWS-1252) to transcode it"})
	})
	t.Run("a delimiter other than comma, semicolon and tab can be named", func(t *testing.T) {
		res := readAll(t, strings.NewReader("a|b\n1|\"x|y\"\n"), csvin.Options{Delimiter: '|'})
		require.NoError(t, res.err)
		require.Equal(t, []row{{2, []string{"1", "x|y"}}}, res.rows)
	})
	t.Run("a space delimiter is not mistaken for spaces after a closing quote", func(t *testing.T) {
		res := readAll(t, strings.NewReader("a b c\n\"1\" 2 3\n"), csvin.Options{Delimiter: ' '})
		require.NoError(t, res.err)
		require.Equal(t, []row{{2, []string{"1", "2", "3"}}}, res.rows)
	})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless repeats a byte forever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestReaderLimitsStream(t *testing.T) {
	t.Run("a 1 MB cell is an error without reading the rest of the file", func(t *testing.T) {
		src := &countingReader{r: io.MultiReader(strings.NewReader("name,note\nAda,"), endless('x'))}
		rd, err := csvin.NewReader(src, csvin.Options{})
		require.NoError(t, err)
		_, _, err = rd.Next()
		requireError(t, err, wantError{2, 2, 14, "line 2, column 2: the cell is longer than 65536 bytes, the most allowed"})
		require.Less(t, src.n, int64(200<<10), "read only about the limit and a buffer")
	})
	t.Run("a 1 MB quoted cell is an error without reading the rest of the file", func(t *testing.T) {
		src := &countingReader{r: io.MultiReader(strings.NewReader("name,note\nAda,\""), endless('\n'))}
		rd, err := csvin.NewReader(src, csvin.Options{MaxCellBytes: 1 << 20, MaxRowBytes: 2 << 20})
		require.NoError(t, err)
		_, _, err = rd.Next()
		requireError(t, err, wantError{2, 2, 14, "line 2, column 2: the cell is longer than 1048576 bytes, the most allowed; perhaps its opening quote lacks a closing quote"})
		require.Less(t, src.n, int64(1<<20+200<<10))
	})
	t.Run("a row longer than the limit is an error without reading the rest of the file", func(t *testing.T) {
		src := &countingReader{r: io.MultiReader(strings.NewReader("a,b\n1,"), endless(','))}
		rd, err := csvin.NewReader(src, csvin.Options{MaxColumns: 1 << 30})
		require.NoError(t, err)
		_, _, err = rd.Next()
		requireError(t, err, wantError{2, 1048577, 4, "line 2, column 1048577: the row is longer than 1048576 bytes, the most allowed"})
		require.Less(t, src.n, int64(1<<20+200<<10))
	})
	t.Run("a header that goes on past the row limit gives a lower bound of its columns", func(t *testing.T) {
		src := io.MultiReader(strings.NewReader("a"), endless(','))
		_, err := csvin.NewReader(src, csvin.Options{})
		requireError(t, err, wantError{1, 0, 0, "line 1: the header has at least 1048577 columns, at most 2000 allowed"})
	})
}

func TestReaderIO(t *testing.T) {
	boom := errors.New("boom")
	t.Run("a read error while sniffing is returned wrapped", func(t *testing.T) {
		_, err := csvin.NewReader(iotest.ErrReader(boom), csvin.Options{})
		require.ErrorIs(t, err, boom)
		var e *csvin.Error
		require.False(t, errors.As(err, &e))
	})
	t.Run("a read error in a row is returned wrapped with the line", func(t *testing.T) {
		src := io.MultiReader(strings.NewReader(strings.Repeat("a,b\n", 1000)), iotest.ErrReader(boom))
		rd, err := csvin.NewReader(src, csvin.Options{})
		require.NoError(t, err)
		var last error
		for {
			_, _, err := rd.Next()
			if err != nil {
				last = err
				break
			}
		}
		require.ErrorIs(t, last, boom)
		require.Contains(t, last.Error(), "line 1001")
	})
	t.Run("a reader that returns nothing forever is an error, not a hang", func(t *testing.T) {
		_, err := csvin.NewReader(io.MultiReader(strings.NewReader(strings.Repeat("a", 600)), zeroReader{}), csvin.Options{})
		require.Error(t, err)
	})
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestOptions(t *testing.T) {
	cases := []struct {
		name string
		opts csvin.Options
		want string
	}{
		{"an unknown encoding is refused", csvin.Options{Encoding: "EBCDIC"}, `csvin: unknown encoding "EBCDIC"`},
		{"a quote delimiter is refused", csvin.Options{Delimiter: '"'}, `csvin: delimiter '"' not allowed: it must be an ASCII character other than '"', CR and LF`},
		{"a line-feed delimiter is refused", csvin.Options{Delimiter: '\n'}, `csvin: delimiter '\n' not allowed: it must be an ASCII character other than '"', CR and LF`},
		{"a non-ASCII delimiter is refused", csvin.Options{Delimiter: '§'}, `csvin: delimiter '§' not allowed: it must be an ASCII character other than '"', CR and LF`},
		{"a negative header row is refused", csvin.Options{HeaderRow: -1}, "csvin: header row -1: must be 1 or more (or 0 for the first non-blank line)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := csvin.NewReader(strings.NewReader("a,b\n"), tc.opts)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestParseEncoding(t *testing.T) {
	cases := []struct {
		in   string
		want csvin.Encoding
	}{
		{"", csvin.EncodingAuto}, {"auto", csvin.EncodingAuto},
		{"utf8", csvin.UTF8}, {"UTF-8", csvin.UTF8}, {" utf_8 ", csvin.UTF8},
		{"utf-16le", csvin.UTF16LE}, {"UTF16LE", csvin.UTF16LE}, {"utf-16", csvin.UTF16LE}, {"UTF-16BE", csvin.UTF16BE},
		{"latin1", csvin.ISO8859_1}, {"Latin-1", csvin.ISO8859_1}, {"iso-8859-1", csvin.ISO8859_1}, {"ISO_8859-1", csvin.ISO8859_1},
		{"cp1252", csvin.Windows1252}, {"windows-1252", csvin.Windows1252}, {"Windows1252", csvin.Windows1252},
		{"iso-8859-15", csvin.ISO8859_15}, {"latin9", csvin.ISO8859_15},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q reads as %q", tc.in, tc.want), func(t *testing.T) {
			got, err := csvin.ParseEncoding(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("an unknown name is an error listing the known ones", func(t *testing.T) {
		_, err := csvin.ParseEncoding("koi8-r")
		require.EqualError(t, err, `csvin: unknown encoding "koi8-r"; known: UTF-8, UTF-16LE, UTF-16BE, WINDOWS-1252, ISO-8859-1, ISO-8859-15`)
	})
	t.Run("every listed encoding parses as itself", func(t *testing.T) {
		for _, e := range csvin.Encodings() {
			got, err := csvin.ParseEncoding(string(e))
			require.NoError(t, err)
			require.Equal(t, e, got)
		}
	})
}

func TestError(t *testing.T) {
	cases := []struct {
		name string
		err  csvin.Error
		want string
	}{
		{"line and column prefix the reason", csvin.Error{Line: 12, Column: 3, ByteOffset: 1234, Reason: "invalid UTF-8 at byte 1234 (0xE9)"}, "line 12, column 3: invalid UTF-8 at byte 1234 (0xE9)"},
		{"a line alone prefixes the reason", csvin.Error{Line: 4, ByteOffset: -1, Reason: "the header row is blank"}, "line 4: the header row is blank"},
		{"an error about the whole file is just the reason", csvin.Error{ByteOffset: -1, Reason: "the file is empty"}, "the file is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.err.Error())
		})
	}
}
