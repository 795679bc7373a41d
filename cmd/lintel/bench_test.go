package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/testdb"
)

func TestBenchImportPrintsEveryScenarioAndLeavesTheExpectedRecords(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "import", "--rows", "2000", "--database-url", url}, &stdout, &stderr, func(string) string { return "" })
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.NoError(t, err)

	// Every scenario has a row: seconds, rows/s, two ratios, two peaks.
	cells := regexp.MustCompile(`\s{2,}`)
	rows := map[string][]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		parts := cells.Split(strings.TrimSpace(line), -1)
		if len(parts) == 7 {
			rows[parts[0]] = parts[1:]
		}
	}
	require.Contains(t, rows, "scenario", "the table has a header")
	for _, name := range benchScenarios {
		row, ok := rows[name]
		require.True(t, ok, "no row for %q", name)
		for i, cell := range row[:4] {
			v, err := strconv.ParseFloat(strings.TrimSuffix(cell, "×"), 64)
			require.NoError(t, err, "%s column %d: %q", name, i+2, cell)
			require.Positive(t, v, "%s column %d", name, i+2)
		}
		for _, cell := range row[4:] {
			require.Regexp(t, `^[1-9][0-9]* MiB$`, cell, "%s: a peak RSS", name)
		}
	}
	require.Equal(t, "1.00×", rows[benchCopy][2], "(a) against itself")
	require.Equal(t, "1.00×", rows[benchSQL][3], "(b) against itself")
	require.Contains(t, stdout.String(), "steady state: 500 created, 750 updated, 750 unchanged, 500 archived")

	// The records: the import's template and baseline (b)'s both hold the
	// 2,000 starting records plus 500 new ones, 500 of them archived.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, name := range []string{benchTemplateMain, benchTemplateSQL} {
		var total, archived, changed int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.status = 'ARCHIVED'),
				count(*) FILTER (WHERE r.fields ->> 'title' LIKE '% II')
			FROM card_records r JOIN card_templates t ON t.id = r.template_id WHERE t.name = $1`, name).Scan(&total, &archived, &changed))
		require.Equal(t, 2500, total, name)
		require.Equal(t, 2000/4, archived, name)
		require.Equal(t, 750, changed, name)
	}
	var imports int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM imports WHERE outcome = 'SUCCEEDED'`).Scan(&imports))
	require.Equal(t, 2, imports, "the first import and the steady-state import")
}

func TestBenchReportAsJSONAndUsage(t *testing.T) {
	t.Parallel()
	pg := int64(64 << 20)
	r := &benchReport{Rows: 8, Mode: "SYNC + ARCHIVE", Scenarios: []benchResult{
		{Scenario: benchCopy, Seconds: 0.5, RowsPerSec: 16, VsCopy: 1, VsSQL: 0.25, PeakRSS: 32 << 20, PostgresPeak: &pg},
		{Scenario: benchSQL, Seconds: 2, RowsPerSec: 4, VsCopy: 4, VsSQL: 1, PeakRSS: 32 << 20},
	}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	sc := back["scenarios"].([]any)
	require.Equal(t, benchCopy, sc[0].(map[string]any)["scenario"])
	require.Equal(t, float64(64<<20), sc[0].(map[string]any)["postgresPeakRssBytes"])
	require.Nil(t, sc[1].(map[string]any)["postgresPeakRssBytes"], "unknown is null")
	var out bytes.Buffer
	printBenchReport(&out, r)
	require.Contains(t, out.String(), "n/a")

	requireUsageError(t, nil, [][]string{{"bench"}, {"bench", "export", "--rows", "0"}, {"bench", "import", "--rows", "3"}, {"bench", "import", "extra"}})
}

// requireUsageError runs lintel with prefix and each of args and requires
// exit code 2 (a usage error) every time.
func requireUsageError(t *testing.T, prefix []string, args [][]string) {
	t.Helper()
	for _, a := range args {
		a = append(slices.Clone(prefix), a...)
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), a, &stdout, &stderr, func(string) string { return "" })
		var ee *exitError
		require.ErrorAs(t, err, &ee, "%v", a)
		require.Equal(t, 2, ee.code, "%v", a)
	}
}
