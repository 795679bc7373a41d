package cardid_test

import (
	"testing"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/stretchr/testify/require"
)

// requireCardError checks that err is an *cardid.Error for input with
// exactly the given reason.
func requireCardError(t testing.TB, err error, input, reason string) {
	t.Helper()
	var e *cardid.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, input, e.Input, "Error.Input")
	require.Equal(t, reason, e.Reason, "Error.Reason")
}
