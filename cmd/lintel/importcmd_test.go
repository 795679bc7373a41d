package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

// importCLI runs `lintel import` in-process against a test server.
type importCLI struct {
	t   *testing.T
	s   *testServer
	env map[string]string
}

type importCLIResult struct {
	stdout, stderr string
	code           int
	err            error
}

func newImportCLI(t *testing.T) (*importCLI, *gqlClient, string) {
	t.Helper()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)
	return &importCLI{t: t, s: s, env: map[string]string{"LINTEL_TOKEN": admin.Token}}, admin, tid
}

// file writes a CSV file into the test's directory and returns its path.
func (c *importCLI) file(name, content string) string {
	c.t.Helper()
	p := filepath.Join(c.t.TempDir(), name)
	require.NoError(c.t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func (c *importCLI) run(args ...string) importCLIResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	full := append([]string{"import", "--server", c.s.URL}, args...)
	err := run(ctx, full, &stdout, &stderr, func(k string) string { return c.env[k] })
	res := importCLIResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
	if err != nil {
		res.code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			res.code = ee.code
		}
	}
	c.t.Logf("lintel %s → exit %d\nstdout:\n%s\nstderr:\n%s\nerr: %v", strings.Join(full, " "), res.code, res.stdout, res.stderr, err)
	return res
}

func fieldOf(rec map[string]any, key string) any {
	return rec["fields"].(map[string]any)[key]
}

func TestImportCommandUpsertsWithYes(t *testing.T) {
	t.Parallel()
	cli, admin, _ := newImportCLI(t)
	file := cli.file("members.csv", "Card ID,Email,First name,Country\n1,ada@acme.test,Ada,CH\n2,bo@acme.test,Bo,DEU\n")

	res := cli.run("--template", "Members", "--yes", file)
	require.Equal(t, 0, res.code, res.err)
	require.Regexp(t, `(?m)^Preview:\n\s+create:\s+2$`, res.stdout)
	require.Contains(t, res.stdout, "SUCCEEDED")
	require.Regexp(t, `(?m)^Result:\n\s+create:\s+2$`, res.stdout)
	require.Contains(t, res.stderr, "progress:", "progress goes to stderr as plain lines when it is not a terminal")

	tid := admin.do(`{ templates { id } }`, nil).requireOK(t).str("templates.0.id")
	recs := admin.recordsByCard(tid)
	require.Len(t, recs, 2)
	require.Equal(t, "Ada", fieldOf(recs["1"], "first_name"))
	require.Equal(t, "DE", fieldOf(recs["2"], "country"), "values are stored canonical")

	t.Run("again with a change: one update, one unchanged, found by template ID", func(t *testing.T) {
		changed := cli.file("members2.csv", "Card ID,Email,First name,Country\n1,ada@acme.test,Ada,CH\n2,bo@acme.test,Bob,DE\n")
		res := cli.run("--template", tid, "-y", changed)
		require.Equal(t, 0, res.code, res.err)
		require.Regexp(t, `(?m)^\s+update:\s+1$`, res.stdout)
		require.Regexp(t, `(?m)^\s+unchanged:\s+1$`, res.stdout)
		require.Equal(t, "Bob", fieldOf(admin.recordsByCard(tid)["2"], "first_name"))
	})
}

func TestImportCommandMapRenamesColumns(t *testing.T) {
	t.Parallel()
	cli, admin, tid := newImportCLI(t)
	// "First name" would map by itself; --map takes the field for the
	// "Nickname" column instead, and "Vorname" goes nowhere.
	file := cli.file("renamed.csv", "Card ID,Email,First name,Nickname,Land\n7,ada@acme.test,Augusta Ada,Ada,CH\n")

	res := cli.run("--template", "members", "--map", "Nickname=first_name", "--map", "land=country", "--yes", file)
	require.Equal(t, 0, res.code, res.err)
	require.Regexp(t, `(?m)^\s+3\s+First name\s+→ \(not imported\)$`, res.stdout)
	require.Regexp(t, `(?m)^\s+4\s+Nickname\s+→ first_name$`, res.stdout)
	require.Regexp(t, `(?m)^\s+5\s+Land\s+→ country$`, res.stdout)
	rec := admin.recordsByCard(tid)["7"]
	require.Equal(t, "Ada", fieldOf(rec, "first_name"))
	require.Equal(t, "CH", fieldOf(rec, "country"))

	t.Run("an unknown header is a usage error naming the headers", func(t *testing.T) {
		res := cli.run("--template", "Members", "--map", "Surname=last_name", "--yes", file)
		require.Equal(t, 2, res.code)
		require.ErrorContains(t, res.err, `no column headed "Surname"`)
		require.ErrorContains(t, res.err, `"Nickname"`)
	})
	t.Run("an unknown field is refused by the server as a usage error", func(t *testing.T) {
		res := cli.run("--template", "Members", "--map", "Land=nationality", "--yes", file)
		require.Equal(t, 2, res.code)
		require.ErrorContains(t, res.err, "nationality")
	})
	n := admin.do(`query($t: ID!) { records(templateId: $t) { totalCount } }`, vars{"t": tid}).requireOK(t).num("records.totalCount")
	require.Equal(t, 1, n)
	h := admin.do(`query($t: ID) { imports(templateId: $t) { edges { node { outcome } } } }`, vars{"t": tid}).requireOK(t)
	require.Equal(t, "CANCELLED", h.str("imports.edges.0.node.outcome"), "an abandoned draft is closed")
}

func TestImportCommandRefusesInvalidRows(t *testing.T) {
	t.Parallel()
	cli, admin, tid := newImportCLI(t)
	file := cli.file("bad.csv", "Card ID,Email,First name\n1,ok@acme.test,Ok\n2x,bad@acme.test,Bad\n3,not-an-email,Bad\n")
	results := filepath.Join(t.TempDir(), "preview.csv")

	res := cli.run("--template", "Members", "--yes", "--results", results, file)
	require.Equal(t, 3, res.code, res.err)
	require.ErrorContains(t, res.err, "2 invalid row(s)")
	require.Regexp(t, `(?m)^\s+invalid:\s+2$`, res.stdout)
	require.Regexp(t, `(?m)^\s+line 3: column 1 "Card ID": bad card ID`, res.stdout)
	require.Regexp(t, `(?m)^\s+line 4: column 2 "Email": bad e-mail "not-an-email"`, res.stdout)
	require.Empty(t, admin.recordsByCard(tid), "nothing is imported")
	csv, err := os.ReadFile(results)
	require.NoError(t, err)
	require.Contains(t, string(csv), "3,bad@acme.test,INVALID", "--results holds the preview's rows")

	t.Run("with --invalid skip the valid rows are imported", func(t *testing.T) {
		res := cli.run("--template", "Members", "--yes", "--invalid", "skip", file)
		require.Equal(t, 0, res.code, res.err)
		require.Len(t, admin.recordsByCard(tid), 1)
	})
}

func TestImportCommandPagesThroughEveryInvalidRow(t *testing.T) {
	t.Parallel()
	cli, _, _ := newImportCLI(t)
	var b strings.Builder
	b.WriteString("Card ID,Email,First name\n")
	for i := range importInvalidPage + 20 {
		b.WriteString("x" + strings.Repeat("9", i%5+1) + ",e@acme.test,N\n")
	}
	res := cli.run("--template", "Members", "--yes", cli.file("many.csv", b.String()))
	require.Equal(t, 3, res.code, res.err)
	require.Contains(t, res.stdout, "Invalid rows (520):")
	require.Contains(t, res.stdout, "line 521: ")
}

// Not parallel: it swaps the package's stdin.
func TestImportCommandAsksBeforeApplying(t *testing.T) {
	cli, admin, tid := newImportCLI(t)
	admin.addRecord(tid, "1", "one@acme.test", "One")
	file := cli.file("f.csv", "Card ID,Email,First name\n1,one@acme.test,Changed\n2,two@acme.test,Two\n")
	withStdin := func(answer string) {
		old := stdin
		stdin = strings.NewReader(answer)
		t.Cleanup(func() { stdin = old })
	}

	withStdin("n\n")
	res := cli.run("--template", "Members", file)
	require.Equal(t, 3, res.code, res.err)
	require.Contains(t, res.stderr, "Create 1, update 1 record(s). Apply? [y/N]")
	recs := admin.recordsByCard(tid)
	require.Len(t, recs, 1, "declining changes nothing")
	require.Equal(t, "One", fieldOf(recs["1"], "first_name"))
	require.Equal(t, 1.0, recs["1"]["version"])

	withStdin("") // no answer at all declines too
	require.Equal(t, 3, cli.run("--template", "Members", file).code)

	withStdin("y\n")
	res = cli.run("--template", "Members", file)
	require.Equal(t, 0, res.code, res.err)
	require.Len(t, admin.recordsByCard(tid), 2)
}

func TestImportCommandSyncArchivesMissingRecords(t *testing.T) {
	t.Parallel()
	cli, admin, tid := newImportCLI(t)
	for i, name := range []string{"One", "Two", "Three", "Four"} {
		admin.addRecord(tid, string(rune('1'+i)), strings.ToLower(name)+"@acme.test", name)
	}
	file := cli.file("sync.csv", "Card ID,Email,First name\n1,one@acme.test,One\n2,two@acme.test,Two\n5,five@acme.test,Five\n")

	res := cli.run("--template", "Members", "--mode", "sync", "--missing", "archive", "--yes", file)
	require.Equal(t, 0, res.code, res.err)
	require.Regexp(t, `(?m)^Preview:\n\s+create:\s+1\n\s+update:\s+0\n\s+unchanged:\s+2\n\s+archive:\s+2$`, res.stdout)
	recs := admin.recordsByCard(tid)
	require.Equal(t, "ACTIVE", recs["1"]["status"])
	require.Equal(t, "ARCHIVED", recs["3"]["status"])
	require.Equal(t, "ARCHIVED", recs["4"]["status"])
	require.Equal(t, "ACTIVE", recs["5"]["status"])

	t.Run("a SYNC cannot skip invalid rows", func(t *testing.T) {
		res := cli.run("--template", "Members", "--mode", "sync", "--invalid", "skip", "--yes", file)
		require.Equal(t, 2, res.code)
	})
}

func TestImportCommandWritesTheResultsCSV(t *testing.T) {
	t.Parallel()
	cli, _, _ := newImportCLI(t)
	// Log in with e-mail and password instead of a token.
	cli.env = map[string]string{"LINTEL_EMAIL": "admin@acme.test", "LINTEL_PASSWORD": testPassword}
	file := cli.file("r.csv", "Card ID;Email;First name\n10;ten@acme.test;Ten\n11;eleven@acme.test;Eleven\n")
	out := filepath.Join(t.TempDir(), "results.csv")

	res := cli.run("--template", "Members", file, "--yes", "--results", out, "--delimiter", ";")
	require.Equal(t, 0, res.code, res.err)
	require.Contains(t, res.stdout, "Results written to "+out)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Equal(t, "line,key,outcome,record_id,changed_fields,errors,card_id_read", lines[0])
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[1], "2,10,CREATE,"), lines[1])
	require.True(t, strings.HasPrefix(lines[2], "3,11,CREATE,"), lines[2])
}

func TestImportCommandUsageErrors(t *testing.T) {
	t.Parallel()
	cli, _, _ := newImportCLI(t)
	file := cli.file("ok.csv", "Card ID,Email,First name\n1,a@acme.test,A\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown template", []string{"--template", "Visitors", "--yes", file}, `no template named or with ID "Visitors"; the templates are "Members"`},
		{"no file", []string{"--template", "Members"}, "name the CSV file"},
		{"missing file", []string{"--template", "Members", filepath.Join(t.TempDir(), "nope.csv")}, "no such file"},
		{"bad mode", []string{"--template", "Members", "--mode", "merge", file}, `--mode: "merge" is not one of sync, upsert`},
		{"missing without sync", []string{"--template", "Members", "--missing", "archive", file}, "--missing only applies with --mode sync"},
		{"bad delimiter", []string{"--template", "Members", "--delimiter", ":", file}, "--delimiter"},
		{"unknown encoding", []string{"--template", "Members", "--encoding", "EBCDIC", "--yes", file}, "EBCDIC"},
		{"bad map", []string{"--template", "Members", "--map", "nothing", file}, `write "Header=field"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := cli.run(tc.args...)
			require.Equal(t, 2, res.code, res.err)
			require.ErrorContains(t, res.err, tc.want)
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		c := *cli
		c.env = nil
		res := c.run("--template", "Members", file)
		require.Equal(t, 2, res.code)
		require.ErrorContains(t, res.err, "--token")
	})
	t.Run("a bad token is a failure", func(t *testing.T) {
		c := *cli
		c.env = map[string]string{"LINTEL_TOKEN": "nonsense"}
		res := c.run("--template", "Members", file)
		require.Equal(t, 1, res.code)
		require.ErrorContains(t, res.err, "UNAUTHENTICATED")
	})
}
