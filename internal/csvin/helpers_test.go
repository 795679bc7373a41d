package csvin_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/stretchr/testify/require"
)

// row is a data row as Next returns it.
type row struct {
	line  int
	cells []string
}

// result is everything a Reader gives for one input.
type result struct {
	header     []string
	headerLine int
	delimiter  rune
	encoding   csvin.Encoding
	rows       []row
	err        error
}

// readAll reads data to the end or the first error.
func readAll(t testing.TB, src io.Reader, opts csvin.Options) result {
	t.Helper()
	rd, err := csvin.NewReader(src, opts)
	if err != nil {
		require.Nil(t, rd)
		return result{err: err}
	}
	res := result{header: rd.Header(), headerLine: rd.HeaderLine(), delimiter: rd.Delimiter(), encoding: rd.Encoding()}
	for {
		cells, line, err := rd.Next()
		if err == io.EOF {
			// Next keeps saying io.EOF.
			_, _, again := rd.Next()
			require.Equal(t, io.EOF, again)
			return res
		}
		if err != nil {
			require.Nil(t, cells)
			_, _, again := rd.Next()
			require.Equal(t, err, again, "errors are final")
			res.err = err
			return res
		}
		res.rows = append(res.rows, row{line, append([]string(nil), cells...)})
	}
}

// readings reads data whole and through readers that return few bytes at a
// time, to exercise every buffer boundary, and requires the same result.
func readings(t *testing.T, data []byte, opts csvin.Options) result {
	t.Helper()
	want := readAll(t, bytes.NewReader(data), opts)
	for _, r := range []io.Reader{
		iotest.OneByteReader(bytes.NewReader(data)),
		iotest.HalfReader(bytes.NewReader(data)),
		iotest.DataErrReader(bytes.NewReader(data)),
	} {
		got := readAll(t, r, opts)
		require.Equal(t, want, got)
	}
	return want
}

// hostile reads a file of the hostile corpus.
func hostile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "hostile", name))
	require.NoError(t, err)
	return data
}

// wantError is an expected *csvin.Error.
type wantError struct {
	line, column int
	offset       int64
	message      string // the whole Error() text
}

func requireError(t testing.TB, err error, want wantError) {
	t.Helper()
	require.Error(t, err)
	var e *csvin.Error
	require.True(t, errors.As(err, &e), "want *csvin.Error, got %T: %v", err, err)
	require.Equal(t, want.message, e.Error())
	require.Equal(t, want.line, e.Line, "line")
	require.Equal(t, want.column, e.Column, "column")
	require.Equal(t, want.offset, e.ByteOffset, "byte offset")
}
