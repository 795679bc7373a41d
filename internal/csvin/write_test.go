package csvin_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lintel/lintel/internal/csvin"
	"github.com/stretchr/testify/require"
)

func TestWriteExample(t *testing.T) {
	t.Run("quotes cells that need it and reads back through the Reader", func(t *testing.T) {
		header := []string{"Card ID", "Name, full", `Nick "the" name`, "Notes"}
		example := []string{"0012345", "Lovelace, Ada", `"Countess"`, "line one\nline two"}
		var b bytes.Buffer
		require.NoError(t, csvin.WriteExample(&b, header, example))
		require.Equal(t, "Card ID,\"Name, full\",\"Nick \"\"the\"\" name\",Notes\r\n"+
			"0012345,\"Lovelace, Ada\",\"\"\"Countess\"\"\",\"line one\r\nline two\"\r\n", b.String())
		res := readAll(t, &b, csvin.Options{})
		require.NoError(t, res.err)
		require.Equal(t, header, res.header)
		require.Equal(t, []row{{2, example}}, res.rows)
	})
	t.Run("writes UTF-8 without a byte-order mark", func(t *testing.T) {
		var b bytes.Buffer
		require.NoError(t, csvin.WriteExample(&b, []string{"Prénom"}, []string{"Zoë"}))
		require.Equal(t, "Prénom\r\nZoë\r\n", b.String())
	})
	t.Run("neutralises cells that look like formulas", func(t *testing.T) {
		var b bytes.Buffer
		require.NoError(t, csvin.WriteExample(&b, []string{"=Label", "phone"}, []string{"@x", "+41 79 000 00 00"}))
		require.Equal(t, "'=Label,phone\r\n'@x,'+41 79 000 00 00\r\n", b.String())
	})
	t.Run("writes only the header without an example", func(t *testing.T) {
		var b bytes.Buffer
		require.NoError(t, csvin.WriteExample(&b, []string{"a", "b"}, nil))
		require.Equal(t, "a,b\r\n", b.String())
	})
	t.Run("an example of another length than the header is an error", func(t *testing.T) {
		err := csvin.WriteExample(&bytes.Buffer{}, []string{"a", "b"}, []string{"1"})
		require.EqualError(t, err, "csvin: example file: 1 example cells for 2 columns")
	})
	t.Run("no columns is an error", func(t *testing.T) {
		require.Error(t, csvin.WriteExample(&bytes.Buffer{}, nil, nil))
	})
	t.Run("a NUL byte or invalid UTF-8 is an error", func(t *testing.T) {
		require.Error(t, csvin.WriteExample(&bytes.Buffer{}, []string{"a\x00"}, nil))
		require.Error(t, csvin.WriteExample(&bytes.Buffer{}, []string{"a"}, []string{"\xff"}))
	})
	t.Run("a write error is returned", func(t *testing.T) {
		err := csvin.WriteExample(failWriter{}, []string{strings.Repeat("a", 10000)}, nil)
		require.Error(t, err)
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }
