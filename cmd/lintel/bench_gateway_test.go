package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/testdb"
)

func TestBenchGatewayPrintsEveryRowWithPositiveFigures(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "gateway", "--cards", "2000", "--sync", "200", "--swipes", "5", "--revocations", "3",
		"--database-url", url}, &stdout, &stderr, func(string) string { return "" })
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.NoError(t, err)
	out := stdout.String()
	require.Contains(t, out, "lintel bench gateway: 2000 cards, 200 records synced, 5 swipes per protocol, 3 revocations")

	cells := regexp.MustCompile(`\s{2,}`)
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		parts := cells.Split(strings.TrimSpace(line), -1)
		if len(parts) == 6 {
			rows[parts[0]] = parts[1:]
		}
	}
	require.Equal(t, []string{"n", "value", "p50", "p99", "target / rate"}, rows["measurement"], "the table has a header")
	number := regexp.MustCompile(`^(?:mean )?([0-9]+(?:\.[0-9]+)?) (?:ns/op|MiB|s|ms|µs)$`)
	positive := func(name, cell string) {
		m := number.FindStringSubmatch(cell)
		require.NotNil(t, m, "%s: %q is not a figure", name, cell)
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		require.Positive(t, v, "%s: %q", name, cell)
	}
	latencies := map[string]bool{benchGwDecision: true, benchGwOSDP: true, benchGwEM4100: true, benchGwASCII: true, benchGwRevocation: true}
	for _, name := range benchGatewayRows {
		row, ok := rows[name]
		require.True(t, ok, "no row for %q", name)
		n, err := strconv.Atoi(row[0])
		require.NoError(t, err, name)
		require.Positive(t, n, name)
		if name == benchGwSyncHeap || name == benchGwListHeap {
			// A heap difference can round to 0.0 MiB at tiny sizes; the
			// bytes per entry must still be there.
			require.Regexp(t, `^[0-9]+\.[0-9] MiB$`, row[1], name)
			require.Regexp(t, `^-?[0-9]+ B/(record|card)$`, row[4], name)
		} else {
			positive(name, row[1])
		}
		if latencies[name] {
			positive(name+" p50", row[2])
			positive(name+" p99", row[3])
		} else {
			require.Equal(t, "-", row[2], name)
		}
	}
	require.Equal(t, "2000", rows[benchGwDecision][0])
	require.Equal(t, "200", rows[benchGwSync][0])
	require.Equal(t, "5", rows[benchGwOSDP][0])
	require.Equal(t, "3", rows[benchGwRevocation][0])
	require.Regexp(t, `decision p99 [0-9.]+ (µs|ms|s): target < 1 ms (met|NOT met)`, out)
	require.Regexp(t, `revocation → door p99 [0-9.]+ (µs|ms|s): target < 1 s (met|NOT met)`, out)
}

func TestBenchGatewayRefusesBadArguments(t *testing.T) {
	t.Parallel()
	requireUsageError(t, nil, [][]string{
		{"bench", "gateway", "--cards", "0"},
		{"bench", "gateway", "--swipes", "0"},
		{"bench", "gateway", "--sync", "10"},
		{"bench", "gateway", "--revocations", "0"},
		{"bench", "gateway", "extra"},
	})
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"bench", "gateway", "-h"}, &stdout, &bytes.Buffer{}, func(string) string { return "" }))
	require.Contains(t, stdout.String(), "usage: lintel bench gateway")
}
