package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMemoryIsBoundedHoweverManyReadersAreDenied(t *testing.T) {
	t.Parallel()
	l := New(5, 10*time.Second, 30*time.Second)
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i := range 5 * MaxReaders {
		// All within one window: nobody is idle, so the oldest go.
		l.Denied(fmt.Sprint("reader-", i), t0.Add(time.Duration(i)*time.Microsecond))
		require.LessOrEqual(t, len(l.readers), MaxReaders)
	}
	_, newest := l.readers[fmt.Sprint("reader-", 5*MaxReaders-1)]
	require.True(t, newest)
}
