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
)

func TestBenchCredentialsPrintsEveryRowWithPositiveFigures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "credentials", "--n", "20", "--symbology", "pdf417"}, &stdout, &stderr, func(string) string { return "" })
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.NoError(t, err)
	out := stdout.String()
	require.Contains(t, out, "lintel bench credentials: n=20, PDF417 barcode 600 px")

	cells := regexp.MustCompile(`\s{2,}`)
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		parts := cells.Split(strings.TrimSpace(line), -1)
		if len(parts) == 3 {
			rows[parts[0]] = parts[1:]
		}
	}
	require.Equal(t, []string{"ns/op", "ops/s"}, rows["operation"], "the table has a header")
	for _, name := range benchCredentialRows {
		row, ok := rows[strings.TrimSpace(name)]
		require.True(t, ok, "no row for %q", name)
		ns, err := strconv.ParseFloat(row[0], 64)
		require.NoError(t, err, "%s: ns/op %q", name, row[0])
		perSec, err := strconv.ParseFloat(row[1], 64)
		require.NoError(t, err, "%s: ops/s %q", name, row[1])
		require.Positive(t, ns, name)
		require.Positive(t, perSec, name)
		require.InEpsilon(t, 1e9/ns, perSec, 0.01, "%s: ops/s is 1e9 / ns/op", name)
	}
	// Verifying a code costs at least the two signature checks it runs.
	verify, _ := strconv.ParseFloat(rows[strings.TrimSpace(benchCredVerify)][0], 64)
	ed, _ := strconv.ParseFloat(rows[benchCredEdVerify][0], 64)
	require.Greater(t, verify, ed)

	for _, re := range []string{
		`verify code = \d+\.\d\d× \(Ed25519 verify \+ P-256 verify\)`,
		`issue JWT = \d+\.\d\d× ed25519\.Sign`,
		`issue, all cores = \d+\.\d\d× issue, 1 core \(\d+ cores\)`,
	} {
		m := regexp.MustCompile(re).FindString(out)
		require.NotEmpty(t, m, "no line matching %s", re)
		ratio, err := strconv.ParseFloat(regexp.MustCompile(`\d+\.\d\d`).FindString(m), 64)
		require.NoError(t, err)
		require.Positive(t, ratio, m)
	}
}

func TestBenchCredentialsRefusesBadArguments(t *testing.T) {
	t.Parallel()
	requireUsageError(t, nil, [][]string{
		{"bench", "credentials", "--n", "0"},
		{"bench", "credentials", "--symbology", "EAN13"},
		{"bench", "credentials", "--rows", "5"},
		{"bench", "credentials", "extra"},
	})
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"bench", "credentials", "-h"}, &stdout, &bytes.Buffer{}, func(string) string { return "" }))
	require.Contains(t, stdout.String(), "usage: lintel bench credentials")
}
