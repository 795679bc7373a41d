package records

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestCursorsAreWhatEncodingJSONWrites(t *testing.T) {
	id := uuid.MustParse("0b6f5a54-2f4e-4a8e-9d6c-3c1d2e4f5a6b")
	for _, v := range []string{"2026-11-24T20:57:10.123456Z", "1000042", "p1@bench.example", `say "hi"`, "a\\b", "<&>", "Zoë", "line\nbreak", ""} {
		c := cursor{Field: OrderCardID, Value: v, ID: id}
		want, err := json.Marshal(c)
		require.NoError(t, err)
		got, err := base64.RawURLEncoding.DecodeString(encodeCursor(c))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), v)
		back, err := decodeCursor(encodeCursor(c), "after", OrderCardID)
		require.NoError(t, err)
		require.Equal(t, c, *back)
	}
}
