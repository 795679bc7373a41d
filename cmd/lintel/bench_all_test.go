package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/testdb"
)

// TestBenchAllSmokeRunsEveryScenario runs the real binary (the
// subscriptions scenario starts `lintel serve` as a child process) at the
// --smoke sizes, as .ci/run does, and reads its JSON.
func TestBenchAllSmokeRunsEveryScenario(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, procBinary(t), "bench", "all", "--smoke", "--json", out)
	cmd.Env = procEnv(map[string]string{"DATABASE_URL": testdb.URL(t)})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s", stdout.String())
	require.NoError(t, err, "stderr:\n%s", stderr.String())

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var report benchAllReport
	require.NoError(t, json.Unmarshal(data, &report))
	require.Equal(t, benchAllScenarios, report.Options.Only)
	require.Equal(t, 100, report.Options.Subscribers, "--smoke sizes")
	require.NotEmpty(t, report.PostgresVersion)

	rows := map[string]benchAllRow{}
	for _, r := range report.Rows {
		require.NotContains(t, rows, r.Scenario+" vs "+r.LimitName, "one row per scenario and limit")
		rows[r.Scenario+" vs "+r.LimitName] = r
		require.Contains(t, stdout.String(), r.Scenario, "the table prints every row of the JSON")
	}
	positive := func(key string) benchAllRow {
		t.Helper()
		r, ok := rows[key]
		require.True(t, ok, "no row %q in %v", key, report.Rows)
		require.Positive(t, r.Figure, key)
		if r.Limit != nil {
			require.Positive(t, *r.Limit, key)
			require.InDelta(t, r.Figure / *r.Limit, *r.Ratio, 1e-9, "%s: the ratio is figure / limit", key)
		}
		return r
	}
	positive("import 2,000 rows: total vs (b) hand-written SQL")
	positive("import 2,000 rows: total vs (a) COPY into a bare table")
	positive("import 2,000 rows: preview vs (b) hand-written SQL")
	positive("export 2,000 records: startExport → file stored vs COPY (SELECT …) TO STDOUT")
	api := positive("api: page of 50 records + template, 4 clients vs the same SQL through pgx")
	require.NotNil(t, api.Met, "the api row has a target")
	subs := positive("subscriptions: 100 subscribers, events received vs subscribers × events published")
	require.Equal(t, *subs.Limit, subs.Figure, "every subscriber received every event")
	require.GreaterOrEqual(t, subs.Figure, 100*5.0, "at least five progress events each (QUEUED … DONE)")
	require.True(t, *subs.Met)
	positive("subscriptions: p99 NOTIFY → subscriber vs ")
	positive("credentials: verify a wallet code vs Ed25519 + P-256 verify")
	positive("credentials: issue JWT (Ed25519) vs ed25519.Sign")
	positive("gateway: revocation → door denied, p99 vs ")
	positive("gateway: full sync of 200 records vs ")
	require.Contains(t, rows, "gateway: decision p99 (10,000 cards) vs ")
	require.True(t, strings.Contains(stdout.String(), "limit (same run)"), "the table has its header")
}

func TestBenchAllRefusesBadArguments(t *testing.T) {
	t.Parallel()
	requireUsageError(t, []string{"bench", "all"}, [][]string{
		{"--only", "import,nope"},
		{"--subscribers", "0"},
		{"--import-large-rows", "3"},
		{"--api-duration", "0s"},
		{"--gateway-sync", "10"},
		{"extra"},
	})
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"bench", "all", "-h"}, &stdout, &stdout, func(string) string { return "" }))
	require.Contains(t, stdout.String(), "--subscribers N")
}
