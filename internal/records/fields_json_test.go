package records

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeFieldsReadsWhatEncodingJSONReads(t *testing.T) {
	for _, raw := range []string{
		`{}`, ` { } `, `{"first_name": "Ada", "last_name": "Lovelace"}`,
		`{"city":"Zürich","note":"日本語"}`,
		`{"quote": "say \"hi\"", "path": "a\\b", "nl": "one\ntwo", "u": "\u00e9"}`,
		`{"dup": "a", "dup": "b"}`,
		`{"empty": ""}`,
		`{"note": "says \"hi\", twice", "lines": "two\nlines\tand\\more\/"}`,
	} {
		got, err := decodeFields([]byte(raw))
		require.NoError(t, err, raw)
		var want map[string]string
		require.NoError(t, json.Unmarshal([]byte(raw), &want))
		require.Equal(t, want, got, raw)
	}
	// What is not an object of strings is refused, as encoding/json refuses it.
	for _, raw := range []string{`[]`, `{"n": 1}`, `{"a": "b"`, `{"a" "b"}`, `{"a": "b"} x`, ``} {
		_, err := decodeFields([]byte(raw))
		require.Error(t, err, raw)
	}
}

// FuzzDecodeFields checks that the direct path never disagrees with
// encoding/json on anything it accepts.
func FuzzDecodeFields(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": "b", "c": "d"}`, `{"a":"\u00e9"}`, "{\"a\": \"\xff\"}", `{"a": 1}`, ` {"x" : "y" } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := decodeFlatStrings(raw)
		if !ok {
			return
		}
		var want map[string]string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", raw, err)
		}
		require.Equal(t, want, got)
	})
}
