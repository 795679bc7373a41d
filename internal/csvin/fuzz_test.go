package csvin_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/stretchr/testify/require"
)

var fuzzEncodings = []csvin.Encoding{csvin.EncodingAuto, csvin.UTF8, csvin.UTF16LE, csvin.UTF16BE, csvin.Windows1252, csvin.ISO8859_1, csvin.ISO8859_15}

var fuzzDelimiters = []rune{0, ',', ';', '\t', '|', ' ', ':'}

// fuzzOptions turns fuzzer numbers into valid Options; 0 always means the
// default, and the limits are small so that the fuzzer reaches them.
func fuzzOptions(enc, delim, headerRow uint8, maxCols, maxCell, maxRow uint16) csvin.Options {
	o := csvin.Options{
		Encoding:  fuzzEncodings[int(enc)%len(fuzzEncodings)],
		Delimiter: fuzzDelimiters[int(delim)%len(fuzzDelimiters)],
		HeaderRow: int(headerRow % 5),
	}
	if maxCols != 0 {
		o.MaxColumns = int(maxCols%64) + 1
	}
	if maxCell != 0 {
		o.MaxCellBytes = int(maxCell%256) + 1
	}
	if maxRow != 0 {
		o.MaxRowBytes = int(maxRow%1024) + 1
	}
	return o
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func isBlankCell(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' || r == '\u200B' }) == ""
}

// maxSeed bounds the size of a seed from the hostile corpus.
const maxSeed = 4 << 10

func FuzzReader(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "hostile", "*"))
	require.NoError(f, err)
	require.NotEmpty(f, files)
	for _, name := range files {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		if len(data) > maxSeed {
			// The large files' limits are tested in TestReader*; big seeds
			// make the fuzzer spend its time minimising.
			data = data[:maxSeed]
		}
		f.Add(data, uint8(0), uint8(0), uint8(0), uint16(0), uint16(0), uint16(0))
		f.Add(data, uint8(4), uint8(0), uint8(3), uint16(2), uint16(10), uint16(40))
	}
	for _, s := range []string{
		"a,b\n1,2\n", "a;b\r\n\"x;\"\"y\"\"\";z\r\n", "a\tb\n\n\n1\t2", "\"a\nb\",c\n1,2", "a,b\n\"unterminated",
		"a,b\n1,\"x\" y\n", "a,b,\n,,\n1,2,\n", "\xef\xbb\xbfa\rb\r", "\xff\xfea\x00,\x00b\x00\n\x001\x00",
	} {
		f.Add([]byte(s), uint8(0), uint8(0), uint8(0), uint16(0), uint16(0), uint16(0))
	}

	f.Fuzz(func(t *testing.T, data []byte, enc, delim, headerRow uint8, maxCols, maxCell, maxRow uint16) {
		opts := fuzzOptions(enc, delim, headerRow, maxCols, maxCell, maxRow)
		maxColumns := orDefault(opts.MaxColumns, csvin.DefaultMaxColumns)
		maxCellBytes := orDefault(opts.MaxCellBytes, csvin.DefaultMaxCellBytes)

		checkErr := func(err error) {
			var e *csvin.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not a *csvin.Error: %T %v", err, err)
			}
			if e.Line < 0 || e.Column < 0 || e.ByteOffset < -1 || e.ByteOffset >= int64(len(data)) || e.Reason == "" {
				t.Fatalf("malformed error %#v for %d bytes", e, len(data))
			}
		}
		checkCells := func(cells []string, what string) {
			if len(cells) > maxColumns {
				t.Fatalf("%s has %d cells, more than MaxColumns %d", what, len(cells), maxColumns)
			}
			for _, c := range cells {
				if len(c) > maxCellBytes {
					t.Fatalf("%s has a cell of %d bytes, more than MaxCellBytes %d", what, len(c), maxCellBytes)
				}
				if !utf8.ValidString(c) || strings.IndexByte(c, 0) >= 0 {
					t.Fatalf("%s has a cell that is not clean UTF-8: %q", what, c)
				}
			}
		}

		rd, err := csvin.NewReader(bytes.NewReader(data), opts)
		if err != nil {
			checkErr(err)
			return
		}
		checkCells(rd.Header(), "the header")
		if len(rd.Header()) == 0 || rd.HeaderLine() < 1 || (opts.HeaderRow > 0 && rd.HeaderLine() != opts.HeaderRow) {
			t.Fatalf("header %q on line %d", rd.Header(), rd.HeaderLine())
		}
		last := rd.HeaderLine()
		var rows [][]string
		var lines []int
		for {
			cells, line, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				checkErr(err)
				return
			}
			checkCells(cells, "a row")
			if line <= last {
				t.Fatalf("row on line %d after line %d", line, last)
			}
			last = line
			rows = append(rows, append([]string(nil), cells...))
			lines = append(lines, line)
		}

		if opts == (csvin.Options{}) {
			agreeWithEncodingCSV(t, data, rd.Delimiter(), rd.Header(), rows, lines)
		}
	})
}

// agreeWithEncodingCSV requires that where encoding/csv reads the same
// plain UTF-8 input (no CR, no NUL, no BOM) without error, with the
// delimiter the Reader detected, the results agree: the header is the first
// record that is not a blank line, blank records are skipped, and the line
// numbers match. It reports whether it compared anything.
func agreeWithEncodingCSV(t *testing.T, data []byte, delim rune, gotHeader []string, rows [][]string, lines []int) bool {
	t.Helper()
	if !utf8.Valid(data) || bytes.ContainsAny(data, "\r\x00") || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return false
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	var want [][]string
	var wantLines []int
	var header []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false // encoding/csv is stricter about quotes
		}
		blank := true
		for _, c := range rec {
			blank = blank && isBlankCell(c)
		}
		if header == nil {
			if len(rec) == 1 && blank {
				continue
			}
			header = rec
			continue
		}
		if blank {
			continue
		}
		line, _ := cr.FieldPos(0)
		want = append(want, rec)
		wantLines = append(wantLines, line)
	}
	require.Len(t, gotHeader, len(header))
	for i := range header {
		require.Equal(t, strings.TrimFunc(header[i], func(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' || r == '\u200B' }), gotHeader[i])
	}
	require.Equal(t, want, rows)
	require.Equal(t, wantLines, lines)
	return true
}

func FuzzProposeMapping(f *testing.F) {
	for _, s := range []string{
		"Card No.,Employee ID,Vorname,Nachname,E-Mail,Telephone,Country code,Start date,Valid until,Barcode,Notes",
		"Email,Email,email,E-mail address,Mail",
		"Prénom,  CARD_NUMBER ,Favourite colour,,",
		"name first,first name,FirstName,first_name",
		"\xff\xfe,\u0301\u0301,ß,İ,ǅ",
	} {
		f.Add(s, "team")
	}
	for _, name := range []string{"duplicate_header.csv", "unnamed_columns.csv", "semicolon.csv", "quoted.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", "hostile", name))
		require.NoError(f, err)
		f.Add(string(data), "x")
	}
	f.Fuzz(func(t *testing.T, headerLine, synonyms string) {
		header := strings.Split(headerLine, ",")
		targets := append(csvin.CommonTargets(), csvin.Target{Key: "custom", Label: "Custom", Synonyms: strings.Split(synonyms, ",")})
		got := csvin.ProposeMapping(header, targets)
		if len(got) != len(header) {
			t.Fatalf("%d proposals for %d columns", len(got), len(header))
		}
		keys := map[string]bool{"": true}
		for _, tg := range targets {
			keys[tg.Key] = true
		}
		used := map[string]bool{}
		for i, p := range got {
			if p.Column != i || p.Header != header[i] {
				t.Fatalf("proposal %d is %+v", i, p)
			}
			if !keys[p.Key] {
				t.Fatalf("unknown key %q", p.Key)
			}
			if (p.Key == "") != (p.Confidence == 0) || p.Confidence < 0 || p.Confidence > 1 {
				t.Fatalf("proposal %+v", p)
			}
			if p.Key != "" {
				if used[p.Key] {
					t.Fatalf("key %q proposed twice", p.Key)
				}
				used[p.Key] = true
			}
		}
		require.Equal(t, got, csvin.ProposeMapping(header, targets), "deterministic")
	})
}

func TestReaderAgreesWithEncodingCSV(t *testing.T) {
	// Random files over a small alphabet hit quoting corner cases often.
	const alphabet = "ab ,;\t\"\n\"é"
	rng := rand.New(rand.NewPCG(1, 2))
	compared := 0
	for range 10000 {
		n := rng.IntN(60)
		var b strings.Builder
		for range n {
			b.WriteString(string([]rune(alphabet)[rng.IntN(utf8.RuneCountInString(alphabet))]))
		}
		data := []byte(b.String())
		rd, err := csvin.NewReader(bytes.NewReader(data), csvin.Options{})
		if err != nil {
			continue
		}
		var rows [][]string
		var lines []int
		for {
			var cells []string
			var line int
			cells, line, err = rd.Next()
			if err != nil {
				break
			}
			rows = append(rows, append([]string(nil), cells...))
			lines = append(lines, line)
		}
		if err != io.EOF {
			continue
		}
		if agreeWithEncodingCSV(t, data, rd.Delimiter(), rd.Header(), rows, lines) {
			compared++
		}
	}
	require.Greater(t, compared, 500, "enough files compared")
}
