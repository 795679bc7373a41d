package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// A server collects garbage at serverGCPercent unless GOGC says otherwise.
func TestServersUseTheirGCTargetUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "")
	useServerGC()
	require.Equal(t, serverGCPercent, debug.SetGCPercent(100))

	t.Setenv("GOGC", "50")
	useServerGC()
	require.Equal(t, 100, debug.SetGCPercent(100), "an operator's GOGC stands")
}
