package main

// `lintel bench import`: times a SYNC import end to end through the API of
// an in-process server and compares it with two baselines on the same
// database: a plain COPY of the file, and hand-written set-based SQL that
// makes the same changes.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel/lintel/internal/config"
)

const benchUsage = `usage: lintel bench all [--only LIST] [sizes…] [--json FILE]   (every scenario, one table; see lintel bench all -h)
       lintel bench import [--rows N] [--database-url URL] [--data-dir DIR] [--json]
       lintel bench export [--rows N]   (see lintel bench export -h)
       lintel bench credentials [--n N] [--symbology QR]   (no database; see lintel bench credentials -h)
       lintel bench gateway [--cards N] [--sync N] [--swipes N]   (door gateway; see lintel bench gateway -h)

Times a SYNC + ARCHIVE import of N rows through the GraphQL API of an
in-process server, and two baselines on the same database: (a) a COPY of the
same file into an unindexed table, (b) hand-written COPY into a temporary
table + set-based UPDATE/INSERT/archive statements in one transaction, on a
second copy of the same starting records. Also times the first import into an
empty template (all creates).

  --rows N            rows in the file, and records the template holds before (default 100000)
  --database-url URL  PostgreSQL to use (env DATABASE_URL); the bench adds an organisation
                      "Bench …" with its templates and records, and leaves them there
  --data-dir DIR      data directory of the embedded PostgreSQL when no URL is given
                      (default: a temporary directory, removed afterwards)
  --json              print the results as JSON
`

// benchValidityDays is the templates' default validity: new records expire
// that many days after they are created.
const benchValidityDays = 365

// benchSeed fixes the dataset.
const benchSeed = 20261124

// Scenario names, in table order.
const (
	benchCopy         = "(a) COPY into an unindexed table"
	benchSQL          = "(b) hand-written SQL: COPY + UPDATE/INSERT/archive"
	benchCreate       = "import: createImport (upload + sniff)"
	benchPreview      = "import: preview"
	benchApply        = "import: apply (start → SUCCEEDED)"
	benchTotal        = "import: total (create + preview + apply)"
	benchFirstApply   = "first import, empty template (all creates): apply"
	benchFirstTotal   = "first import, empty template (all creates): total"
	benchTemplateMain = "Bench: import"
	benchTemplateSQL  = "Bench: baseline (b)"
)

var benchScenarios = []string{benchCopy, benchSQL, benchCreate, benchPreview, benchApply, benchTotal, benchFirstApply, benchFirstTotal}

// benchResult is one row of the table.
type benchResult struct {
	Scenario     string  `json:"scenario"`
	Seconds      float64 `json:"seconds"`
	RowsPerSec   float64 `json:"rowsPerSecond"`
	VsCopy       float64 `json:"ratioVsCopy"`
	VsSQL        float64 `json:"ratioVsHandWrittenSql"`
	PeakRSS      int64   `json:"peakRssBytes"`
	PostgresPeak *int64  `json:"postgresPeakRssBytes"` // nil: not measurable
}

// benchReport is everything the bench prints.
type benchReport struct {
	Rows            int                           `json:"rows"`
	Mode            string                        `json:"mode"`
	Database        string                        `json:"database"`
	PostgresVersion string                        `json:"postgresVersion"`
	CPUs            int                           `json:"cpus"`
	FileBytes       int64                         `json:"fileBytes"`
	GenerateSeconds float64                       `json:"generateSeconds"`
	Scenarios       []benchResult                 `json:"scenarios"`
	Expected        importCounts                  `json:"expectedCounts"`
	Counts          map[string]importCounts       `json:"counts"`
	ServerTimings   map[string]map[string]float64 `json:"serverPhaseSeconds"`
	Organisation    string                        `json:"organisation"`
	Notes           []string                      `json:"notes"`
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && args[0] == "all" {
		return benchAll(ctx, args[1:], stdout, stderr, getenv)
	}
	if len(args) > 0 && args[0] == "export" {
		return benchExport(ctx, args[1:], stdout, getenv)
	}
	if len(args) > 0 && args[0] == "gateway" {
		return benchGateway(ctx, args[1:], stdout, stderr, getenv)
	}
	if len(args) > 0 && args[0] == "credentials" {
		return benchCredentials(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stderr, benchUsage)
		return &exitError{code: 2, err: errors.New(`bench needs a subject: all, import, export, credentials or gateway`)}
	}
	fs := flag.NewFlagSet("lintel bench import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rows := fs.Int("rows", 100000, "")
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "")
	dataDir := fs.String("data-dir", "", "")
	asJSON := fs.Bool("json", false, "")
	if help, err := parseBenchFlags(fs, args[1:], stderr, benchUsage); help || err != nil {
		return err
	}
	if *rows < 8 {
		return &exitError{code: 2, err: errors.New("--rows must be at least 8")}
	}
	report, err := runImportBench(ctx, *rows, *dbURL, *dataDir, getenv, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	printBenchReport(stdout, report)
	return nil
}

// runImportBench runs the import scenarios with a file of rows rows.
func runImportBench(ctx context.Context, rows int, dbURL, dataDir string, getenv func(string) string, stderr io.Writer) (*benchReport, error) {
	b := &bench{n: rows, stderr: stderr, report: &benchReport{Rows: rows, Mode: "SYNC + ARCHIVE", CPUs: runtime.NumCPU(),
		Counts: map[string]importCounts{}, ServerTimings: map[string]map[string]float64{}}}
	if err := b.run(ctx, dbURL, dataDir, getenv); err != nil {
		return nil, err
	}
	return b.report, nil
}

// parseBenchFlags parses a bench command's flags; on -h it prints usage to
// w and reports help. Stray arguments are a usage error.
func parseBenchFlags(fs *flag.FlagSet, args []string, w io.Writer, usage string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(w, usage)
			return true, nil
		}
		return false, &exitError{code: 2, err: fmt.Errorf("%v (see %s -h)", err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return false, &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return false, nil
}

// bench is one run of `lintel bench import`.
type bench struct {
	n      int
	stderr io.Writer
	report *benchReport
	dir    string // temporary files
	db     *database
	api    *apiClient
	meter  *peakMeter
	org    uuid.UUID
	tplA   string // imports: first, then steady state
	tplB   string // baseline (b)
	// The dataset.
	firstFile, steadyFile string
	expectFirst, expect   importCounts
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context, dbURL, dataDir string, getenv func(string) string) (err error) {
	if b.dir, err = os.MkdirTemp("", "lintel-bench-*"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)

	start := time.Now()
	if err := b.generate(); err != nil {
		return fmt.Errorf("generate the dataset: %w", err)
	}
	b.report.GenerateSeconds = time.Since(start).Seconds()
	if fi, err := os.Stat(b.steadyFile); err == nil {
		b.report.FileBytes = fi.Size()
	}
	b.logf("dataset: %d rows, %.1f MB, generated in %.2fs", b.n, float64(b.report.FileBytes)/1e6, b.report.GenerateSeconds)

	cfg, where, cleanup, err := benchConfig("lintel bench import", dbURL, dataDir, getenv)
	if err != nil {
		return err
	}
	defer cleanup()
	b.report.Database = where
	b.logf("opening the database (%s)", b.report.Database)
	if b.db, err = openDatabase(ctx, cfg, quietLogger()); err != nil {
		return err
	}
	defer b.db.Close()
	if err := b.db.Pool.QueryRow(ctx, `SHOW server_version`).Scan(&b.report.PostgresVersion); err != nil {
		return err
	}
	b.meter = newPeakMeter(b.db.Pool, b.db.embedded != nil || localDatabase(b.db.Pool))
	b.report.Notes = append(b.report.Notes, b.meter.notes()...)

	benchMasterKey(cfg)
	base, stop, err := serveInProcess(ctx, cfg, b.db.DB)
	if err != nil {
		return err
	}
	defer stop()
	if err := b.setup(ctx, base); err != nil {
		return fmt.Errorf("set up: %w", err)
	}

	b.logf("first import into an empty template (%d creates)", b.n)
	first, err := b.importFile(ctx, "first", b.tplA, b.firstFile, b.expectFirst)
	if err != nil {
		return err
	}
	b.logf("copying the %d starting records for baseline (b)", b.n)
	if err := b.copyRecords(ctx); err != nil {
		return err
	}
	b.logf("steady-state SYNC import")
	steady, err := b.importFile(ctx, "steady", b.tplA, b.steadyFile, b.expect)
	if err != nil {
		return err
	}
	b.logf("baseline (a): COPY")
	copyRes, err := b.baselineCopy(ctx)
	if err != nil {
		return fmt.Errorf("baseline (a): %w", err)
	}
	b.logf("baseline (b): hand-written SQL")
	sqlRes, err := b.baselineSQL(ctx)
	if err != nil {
		return fmt.Errorf("baseline (b): %w", err)
	}
	if err := b.verify(ctx); err != nil {
		return err
	}

	results := []benchResult{copyRes, sqlRes, steady[0], steady[1], steady[2], steady[3], first[2], first[3]}
	for i := range results {
		r := &results[i]
		r.RowsPerSec = float64(b.n) / r.Seconds
		r.VsCopy = r.Seconds / copyRes.Seconds
		r.VsSQL = r.Seconds / sqlRes.Seconds
	}
	b.report.Scenarios = results
	return nil
}

// ---------------------------------------------------------------------------
// The dataset

var benchHeader = []string{"Card ID", "Email", "First name", "Last name", "Title", "Office", "Grade", "Born", "Country", "Department"}

var (
	benchFirstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "Niklaus", "Hedy", "Linus", "Sophie", "John"}
	benchLastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie", "Perlman", "Wirth", "Lamarr", "Torvalds", "Wilson", "Backus"}
	benchTitles     = []string{"Engineer", "Analyst", "Manager", "Technician", "Designer", "Consultant", "Director", "Assistant"}
	benchCountries  = []string{"CH", "DE", "FR", "IT", "AT", "GB", "US", "NL", "BE", "ES", "SE", "PL"}
	benchDepts      = []string{"Sales", "Engineering", "Support", "Finance", "Operations"}
)

// benchPerson is one cardholder's values.
type benchPerson struct {
	first, last, title, office, born, country, dept string
	grade                                           int
}

func benchPeople(n int) []benchPerson {
	r := rand.New(rand.NewPCG(benchSeed, 1))
	out := make([]benchPerson, n)
	for i := range out {
		out[i] = benchPerson{
			first:   benchFirstNames[r.IntN(len(benchFirstNames))],
			last:    benchLastNames[r.IntN(len(benchLastNames))],
			title:   benchTitles[r.IntN(len(benchTitles))],
			office:  fmt.Sprintf("Building %c room %d", 'A'+r.IntN(6), 100+r.IntN(400)),
			born:    fmt.Sprintf("%04d-%02d-%02d", 1950+r.IntN(55), 1+r.IntN(12), 1+r.IntN(28)),
			country: benchCountries[r.IntN(len(benchCountries))],
			dept:    benchDepts[r.IntN(len(benchDepts))],
			grade:   1 + r.IntN(20),
		}
	}
	return out
}

// benchCardID is the card ID of bench record i: the import files' first
// column, and the records SQL's numbering (where one record in 50 is
// suspended).
func benchCardID(i int) string { return strconv.Itoa(1_000_000 + i) }

// appendBenchRow writes record i's CSV line (no value needs quoting).
func appendBenchRow(buf []byte, i int, p benchPerson) []byte {
	buf = strconv.AppendInt(buf, int64(1_000_000+i), 10)
	buf = append(buf, ",p"...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, "@bench.example,"...)
	for _, v := range []string{p.first, p.last, p.title, p.office} {
		buf = append(buf, v...)
		buf = append(buf, ',')
	}
	buf = strconv.AppendInt(buf, int64(p.grade), 10)
	for _, v := range []string{p.born, p.country, p.dept} {
		buf = append(buf, ',')
		buf = append(buf, v...)
	}
	return append(buf, '\n')
}

// generate writes the two files: the first import (records 0..n-1) and the
// steady-state file: the first 3/4 of the records again, every other one
// of them changed, plus n/4 new ones, in a shuffled order; the last 1/4
// of the records are missing from it.
func (b *bench) generate() error {
	n := b.n
	matched := n * 3 / 4
	added := n - matched
	people := benchPeople(n + added)
	write := func(name string, lines func(emit func(i int, p benchPerson))) (string, error) {
		path := filepath.Join(b.dir, name)
		return path, writeBenchFile(path, lines)
	}
	var err error
	if b.firstFile, err = write("first.csv", func(emit func(int, benchPerson)) {
		for i := range n {
			emit(i, people[i])
		}
	}); err != nil {
		return err
	}
	order := rand.New(rand.NewPCG(benchSeed, 2)).Perm(matched + added)
	if b.steadyFile, err = write("steady.csv", func(emit func(int, benchPerson)) {
		for _, k := range order {
			i := k
			if k >= matched {
				i = n + (k - matched) // a new record
			}
			p := people[i]
			if i < matched && i%2 == 0 {
				p.title += " II"
				p.grade++
			}
			emit(i, p)
		}
	}); err != nil {
		return err
	}
	b.expectFirst = importCounts{Create: n}
	b.expect = importCounts{Create: added, Update: (matched + 1) / 2, Unchanged: matched / 2, Archive: n - matched}
	b.report.Expected = b.expect
	return nil
}

// writeBenchFile writes a CSV of the bench's columns at path with the rows
// lines emits.
func writeBenchFile(path string, lines func(emit func(i int, p benchPerson))) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, _ = w.WriteString(strings.Join(benchHeader, ",") + "\n")
	buf := make([]byte, 0, 256)
	lines(func(i int, p benchPerson) {
		buf = appendBenchRow(buf[:0], i, p)
		_, _ = w.Write(buf)
	})
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeBenchCSV writes a file of n new cardholders.
func writeBenchCSV(path string, n int) error {
	people := benchPeople(n)
	return writeBenchFile(path, func(emit func(int, benchPerson)) {
		for i, p := range people {
			emit(i, p)
		}
	})
}

// ---------------------------------------------------------------------------
// Setup

var benchTemplateFields = []map[string]any{
	{"key": "first_name", "label": "First name", "type": "TEXT", "required": true},
	{"key": "last_name", "label": "Last name", "type": "TEXT"},
	{"key": "title", "label": "Title", "type": "TEXT"},
	{"key": "office", "label": "Office", "type": "TEXT"},
	{"key": "grade", "label": "Grade", "type": "NUMBER"},
	{"key": "born", "label": "Born", "type": "DATE"},
	{"key": "country", "label": "Country", "type": "COUNTRY"},
	{"key": "department", "label": "Department", "type": "SELECT", "options": benchDepts},
}

func (b *bench) setup(ctx context.Context, base string) (err error) {
	if b.org, b.api, err = benchAdmin(ctx, b.db.DB, base, "Bench"); err != nil {
		return err
	}
	if err := b.db.Pool.QueryRow(ctx, `SELECT name FROM organisations WHERE id = $1`, b.org).Scan(&b.report.Organisation); err != nil {
		return err
	}
	if b.tplA, err = createBenchTemplate(ctx, b.api, benchTemplateMain); err != nil {
		return err
	}
	b.tplB, err = createBenchTemplate(ctx, b.api, benchTemplateSQL)
	return err
}

// createBenchTemplate makes a template with the bench's columns as fields.
func createBenchTemplate(ctx context.Context, api *apiClient, name string) (string, error) {
	var out struct {
		CreateTemplate struct {
			ID string `json:"id"`
		} `json:"createTemplate"`
	}
	err := api.do(ctx, `mutation($in: TemplateInput!) { createTemplate(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"name": name, "symbology": "QR", "cardIdFormat": "DECIMAL", "uniqueIdentifierKind": "EMAIL", "fields": benchTemplateFields,
		"defaultValidityDays": benchValidityDays,
	}}, &out)
	if err != nil {
		return "", fmt.Errorf("create template %q: %w", name, err)
	}
	return out.CreateTemplate.ID, nil
}

// copyRecords gives template B the records template A holds now (the
// starting records of the steady state), then refreshes the statistics.
func (b *bench) copyRecords(ctx context.Context) error {
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO card_records (org_id, template_id, card_id, unique_identifier, unique_key, fields,
			barcode_value, recipient_email, valid_from, expires_at, status, version, search_text, created_at, updated_at)
		SELECT org_id, $2, card_id, unique_identifier, unique_key, fields, barcode_value, recipient_email, valid_from, expires_at,
			status, version, search_text, created_at, updated_at
		FROM card_records WHERE template_id = $1`, b.tplA, b.tplB)
	if err != nil {
		return fmt.Errorf("copy the starting records: %w", err)
	}
	// The steady state: statistics as autovacuum would have them.
	if _, err := b.db.Pool.Exec(ctx, `ANALYZE card_records`); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Measuring

// prepare levels the field before a timed scenario: a checkpoint (so none
// falls into the measurement by chance) and fresh peak-memory counters.
func (b *bench) prepare(ctx context.Context) {
	_, _ = b.db.Pool.Exec(ctx, `CHECKPOINT`)
	b.meter.reset(ctx)
}

// measure times fn and reads the peaks after it.
func (b *bench) measure(ctx context.Context, name string, fn func() error) (benchResult, error) {
	b.prepare(ctx)
	start := time.Now()
	if err := fn(); err != nil {
		return benchResult{}, fmt.Errorf("%s: %w", name, err)
	}
	r := benchResult{Scenario: name, Seconds: time.Since(start).Seconds()}
	r.PeakRSS, r.PostgresPeak = b.meter.read(ctx)
	return r, nil
}

// combine is the row of several consecutive scenarios.
func combine(name string, parts ...benchResult) benchResult {
	r := benchResult{Scenario: name}
	for _, p := range parts {
		r.Seconds += p.Seconds
		r.PeakRSS = max(r.PeakRSS, p.PeakRSS)
		if p.PostgresPeak != nil {
			v := *p.PostgresPeak
			if r.PostgresPeak != nil {
				v = max(v, *r.PostgresPeak)
			}
			r.PostgresPeak = &v
		}
	}
	return r
}

// importFile runs create, preview and apply of file into template tpl
// through the API and returns the rows create, preview, apply, total.
func (b *bench) importFile(ctx context.Context, label, tpl, file string, want importCounts) ([]benchResult, error) {
	names := map[string][4]string{
		"steady": {benchCreate, benchPreview, benchApply, benchTotal},
		"first":  {"first import: create", "first import: preview", benchFirstApply, benchFirstTotal},
	}[label]
	var id string
	create, err := b.measure(ctx, names[0], func() error {
		imp, err := b.api.createImport(ctx, tpl, file, map[string]any{"mode": "SYNC", "missingAction": "ARCHIVE"})
		if err != nil {
			return err
		}
		for _, m := range imp.Mapping {
			if m.Field == nil {
				return fmt.Errorf("column %q did not map by itself", m.Header)
			}
		}
		id = imp.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	var counts importCounts
	preview, err := b.measure(ctx, names[1], func() error {
		var err error
		counts, _, err = b.api.preview(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if counts != want {
		return nil, fmt.Errorf("%s import: the preview counts %+v, expected %+v", label, counts, want)
	}
	var final *importState
	apply, err := b.measure(ctx, names[2], func() error {
		if err := b.api.startImport(ctx, id, map[string]any{"archive": counts.Archive, "delete": counts.Delete}); err != nil {
			return err
		}
		for {
			imp, err := b.api.getImport(ctx, id)
			if err != nil {
				return err
			}
			if imp.Outcome != nil && *imp.Outcome != "RUNNING" {
				final = imp
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if derefString(final.Outcome) != "SUCCEEDED" {
		return nil, fmt.Errorf("%s import ended %s: %s", label, derefString(final.Outcome), derefString(final.Error))
	}
	if final.Counts == nil || *final.Counts != want {
		return nil, fmt.Errorf("%s import: counts %+v, expected %+v", label, final.Counts, want)
	}
	b.report.Counts[label] = *final.Counts
	timings := map[string]float64{}
	for _, t := range final.Timings {
		timings[t.Phase] = t.Seconds
	}
	b.report.ServerTimings[label] = timings
	return []benchResult{create, preview, apply, combine(names[3], create, preview, apply)}, nil
}

// copyFile streams the steady-state file to a COPY … FROM STDIN.
func (b *bench) copyFile(ctx context.Context, conn *pgx.Conn, sql string) (int64, error) {
	f, err := os.Open(b.steadyFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tag, err := conn.PgConn().CopyFrom(ctx, bufio.NewReaderSize(f, 1<<20), sql)
	return tag.RowsAffected(), err
}

const benchColumns = `card_id text, email text, first_name text, last_name text, title text, office text, grade text, born text, country text, department text`

// baselineCopy is (a): the file into an unindexed table of text columns.
func (b *bench) baselineCopy(ctx context.Context) (benchResult, error) {
	conn, err := b.db.Pool.Acquire(ctx)
	if err != nil {
		return benchResult{}, err
	}
	defer conn.Release()
	table := "bench_copy_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := conn.Exec(ctx, `CREATE TABLE `+table+` (`+benchColumns+`)`); err != nil {
		return benchResult{}, err
	}
	defer func() { _, _ = b.db.Pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+table) }()
	return b.measure(ctx, benchCopy, func() error {
		n, err := b.copyFile(ctx, conn.Conn(), `COPY `+table+` FROM STDIN (FORMAT csv, HEADER true)`)
		if err == nil && n != int64(b.n) {
			err = fmt.Errorf("COPY read %d rows, not %d", n, b.n)
		}
		return err
	})
}

// benchSearchText is the search text of a record with card ID c, unique
// identifier u, recipient r and fields f, as the import writes it.
func benchSearchText(c, u, r, f string) string {
	return `lower(` + c + `) || ' ' || lower(` + u + `) || ' ' || lower(` + r + `) || ' ' ||
		COALESCE((SELECT string_agg(lower(value), ' ' ORDER BY key) FROM jsonb_each_text(` + f + `)) || ' ', '')`
}

// benchRowsSQL turns staged text into canonical values (the file's values
// are canonical already, so this is only the shape).
const benchRowsSQL = `SELECT s.card_id, lower(s.email) AS uid, jsonb_build_object('first_name', s.first_name, 'last_name', s.last_name,
		'title', s.title, 'office', s.office, 'grade', s.grade, 'born', s.born, 'country', s.country, 'department', s.department) AS fields
	FROM bench_stage s`

// baselineSQL is (b): what a person would write by hand for the same SYNC,
// on template B, in one transaction.
func (b *bench) baselineSQL(ctx context.Context) (benchResult, error) {
	conn, err := b.db.Pool.Acquire(ctx)
	if err != nil {
		return benchResult{}, err
	}
	defer conn.Release()
	var updated, created, archived int64
	res, err := b.measure(ctx, benchSQL, func() error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE bench_stage (`+benchColumns+`) ON COMMIT DROP`); err != nil {
				return err
			}
			if _, err := b.copyFile(ctx, tx.Conn(), `COPY bench_stage FROM STDIN (FORMAT csv, HEADER true)`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ANALYZE bench_stage`); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `WITH n AS (`+benchRowsSQL+`)
				UPDATE card_records r SET unique_identifier = n.uid, unique_key = n.uid, fields = n.fields,
					status = CASE WHEN r.status = 'ARCHIVED' THEN 'ACTIVE' ELSE r.status END,
					archived_at = CASE WHEN r.status = 'ARCHIVED' THEN NULL ELSE r.archived_at END,
					search_text = `+benchSearchText("r.card_id", "n.uid", "r.recipient_email", "n.fields")+`,
					version = r.version + 1, updated_at = now()
				FROM n WHERE r.template_id = $1 AND r.card_id = n.card_id
					AND (r.fields <> n.fields OR r.unique_identifier <> n.uid OR r.status = 'ARCHIVED')`, b.tplB)
			if err != nil {
				return fmt.Errorf("update: %w", err)
			}
			updated = tag.RowsAffected()
			tag, err = tx.Exec(ctx, `WITH n AS (`+benchRowsSQL+`)
				INSERT INTO card_records (org_id, template_id, card_id, unique_identifier, unique_key, fields, barcode_value, recipient_email,
					expires_at, search_text)
				SELECT $2, $1, n.card_id, n.uid, n.uid, n.fields, n.card_id, n.uid, now() + $3::int * interval '1 day',
					`+benchSearchText("n.card_id", "n.uid", "n.uid", "n.fields")+`
				FROM n WHERE NOT EXISTS (SELECT 1 FROM card_records r WHERE r.template_id = $1 AND r.card_id = n.card_id)`, b.tplB, b.org, benchValidityDays)
			if err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			created = tag.RowsAffected()
			tag, err = tx.Exec(ctx, `UPDATE card_records r SET status = 'ARCHIVED', archived_at = now(), version = r.version + 1, updated_at = now()
				WHERE r.template_id = $1 AND r.status <> 'ARCHIVED' AND NOT EXISTS (SELECT 1 FROM bench_stage s WHERE s.card_id = r.card_id)`, b.tplB)
			if err != nil {
				return fmt.Errorf("archive: %w", err)
			}
			archived = tag.RowsAffected()
			return nil
		})
	})
	if err != nil {
		return res, err
	}
	got := importCounts{Create: int(created), Update: int(updated), Unchanged: b.expect.Unchanged, Archive: int(archived)}
	if got != b.expect {
		return res, fmt.Errorf("the statements made %d updates, %d creates and %d archivals, expected %+v", updated, created, archived, b.expect)
	}
	return res, nil
}

// verify checks that the import and baseline (b) left the same records.
func (b *bench) verify(ctx context.Context) error {
	// Times differ between the two runs; the validity relative to the
	// creation does not.
	const cols = `card_id, unique_identifier, unique_key, fields, barcode_value, recipient_email, valid_from, expires_at - created_at, status,
		archived_at IS NULL, version, search_text`
	var differ int
	err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM (
			(SELECT `+cols+` FROM card_records WHERE template_id = $1 EXCEPT ALL SELECT `+cols+` FROM card_records WHERE template_id = $2)
			UNION ALL
			(SELECT `+cols+` FROM card_records WHERE template_id = $2 EXCEPT ALL SELECT `+cols+` FROM card_records WHERE template_id = $1)) d`,
		b.tplA, b.tplB).Scan(&differ)
	if err != nil {
		return fmt.Errorf("compare the results: %w", err)
	}
	if differ > 0 {
		var sample []string
		rows, err := b.db.Pool.Query(ctx, `(SELECT 'import:   ' || row(`+cols+`)::text FROM card_records WHERE template_id = $1
				EXCEPT ALL SELECT 'import:   ' || row(`+cols+`)::text FROM card_records WHERE template_id = $2 LIMIT 2)
			UNION ALL (SELECT 'baseline: ' || row(`+cols+`)::text FROM card_records WHERE template_id = $2
				EXCEPT ALL SELECT 'baseline: ' || row(`+cols+`)::text FROM card_records WHERE template_id = $1 LIMIT 2)`, b.tplA, b.tplB)
		if err == nil {
			sample, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		return fmt.Errorf("the import and baseline (b) left %d differing record(s), e.g.\n  %s", differ, strings.Join(sample, "\n  "))
	}
	var archived, total int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'ARCHIVED'), count(*) FROM card_records WHERE template_id = $1`,
		b.tplA).Scan(&archived, &total); err != nil {
		return err
	}
	if archived != b.expect.Archive || total != b.n+b.expect.Create {
		return fmt.Errorf("after the import the template holds %d records, %d archived; expected %d and %d", total, archived, b.n+b.expect.Create, b.expect.Archive)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Peak memory

// peakMeter reads peak resident set sizes (VmHWM) of this process and of
// the PostgreSQL processes serving the database, resetting them before
// each scenario where the kernel allows (writing 5 to clear_refs).
type peakMeter struct {
	pool       *pgxpool.Pool
	local      bool // PostgreSQL runs on this machine, so /proc shows it
	selfReset  bool
	pgReset    bool
	pgReadable bool
}

func newPeakMeter(pool *pgxpool.Pool, local bool) *peakMeter {
	m := &peakMeter{pool: pool, local: local}
	m.selfReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	if local {
		ctx := context.Background()
		pids := m.postgresPIDs(ctx)
		m.pgReadable = len(pids) > 0
		m.pgReset = m.pgReadable
		for _, pid := range pids {
			if os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0) != nil {
				m.pgReset = false
			}
		}
	}
	return m
}

func (m *peakMeter) notes() []string {
	var notes []string
	if m.selfReset {
		notes = append(notes, "peak RSS lintel: VmHWM of this process (server, job runner and client in one), reset before each scenario")
	} else {
		notes = append(notes, "peak RSS lintel: VmHWM of this process since it started (the kernel refused a reset)")
	}
	switch {
	case !m.local || !m.pgReadable:
		notes = append(notes, "peak RSS postgres: not measurable (the database is not a local process this one can see)")
	case m.pgReset:
		notes = append(notes, "peak RSS postgres: the largest VmHWM of any PostgreSQL backend or auxiliary process, reset before each scenario; it includes the shared buffers a process touched")
	default:
		notes = append(notes, "peak RSS postgres: the largest VmHWM of any PostgreSQL backend since it started (no permission to reset); it includes the shared buffers a process touched")
	}
	return notes
}

// postgresPIDs lists the server's processes that this machine's /proc
// shows as postgres.
func (m *peakMeter) postgresPIDs(ctx context.Context) []int {
	if !m.local {
		return nil
	}
	rows, err := m.pool.Query(ctx, `SELECT pid FROM pg_stat_activity`)
	if err != nil {
		return nil
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil
	}
	var out []int
	for _, pid := range pids {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			out = append(out, int(pid))
		}
	}
	return out
}

func (m *peakMeter) reset(ctx context.Context) {
	runtime.GC()
	debug.FreeOSMemory()
	if m.selfReset {
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	}
	if m.pgReset {
		for _, pid := range m.postgresPIDs(ctx) {
			_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
		}
	}
}

func (m *peakMeter) read(ctx context.Context) (self int64, pg *int64) {
	self = procStatus("self", "VmHWM:")
	if m.local && m.pgReadable {
		var peak int64
		for _, pid := range m.postgresPIDs(ctx) {
			peak = max(peak, procStatus(strconv.Itoa(pid), "VmHWM:"))
		}
		pg = &peak
	}
	return self, pg
}

// procStatus reads a kB field ("VmHWM:", "VmRSS:") of a process's
// /proc/<pid>/status ("self" for this process) in bytes, or 0.
func procStatus(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// localDatabase reports whether the pool's server listens on this machine.
func localDatabase(pool *pgxpool.Pool) bool {
	host := pool.Config().ConnConfig.Host
	return strings.HasPrefix(host, "/") || host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// ---------------------------------------------------------------------------
// Output

// padColumn returns a function that pads a name to the width of the
// longest of header and the rows' names: in a table whose columns a
// tabwriter aligns right, the first one then reads left-aligned.
func padColumn[T any](header string, rows []T, name func(T) string) func(string) string {
	width := utf8.RuneCountInString(header)
	for _, r := range rows {
		width = max(width, utf8.RuneCountInString(name(r)))
	}
	return func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) }
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func printBenchReport(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "lintel bench import: %d rows, %s, PostgreSQL %s (%s), %d CPUs, file %.1f MB\n",
		r.Rows, r.Mode, r.PostgresVersion, r.Database, r.CPUs, float64(r.FileBytes)/1e6)
	fmt.Fprintf(w, "steady state: %d created, %d updated, %d unchanged, %d archived (the template held %d records)\n\n",
		r.Expected.Create, r.Expected.Update, r.Expected.Unchanged, r.Expected.Archive, r.Rows)
	// Right-aligned columns; the scenario is padded so it reads left-aligned.
	pad := padColumn("scenario", r.Scenarios, func(s benchResult) string { return s.Scenario })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tseconds\trows/s\tvs (a)\tvs (b)\tpeak RSS lintel\tpeak RSS postgres\t\n", pad("scenario"))
	for _, s := range r.Scenarios {
		pg := "n/a"
		if s.PostgresPeak != nil {
			pg = mib(*s.PostgresPeak)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.0f\t%.2f×\t%.2f×\t%s\t%s\t\n", pad(s.Scenario), s.Seconds, s.RowsPerSec, s.VsCopy, s.VsSQL, mib(s.PeakRSS), pg)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, label := range []string{"steady", "first"} {
		t := r.ServerTimings[label]
		if t == nil {
			continue
		}
		var parts []string
		for _, ph := range []string{"parsing", "validating", "applying", "notifying"} {
			if v, ok := t[ph]; ok {
				parts = append(parts, fmt.Sprintf("%s %.3fs", ph, v))
			}
		}
		fmt.Fprintf(w, "server phases (%s import): %s\n", label, strings.Join(parts, ", "))
		var steps []string
		for k := range t {
			if strings.HasPrefix(k, "step: ") {
				steps = append(steps, k)
			}
		}
		sort.Slice(steps, func(i, j int) bool { return t[steps[i]] > t[steps[j]] })
		parts = parts[:0]
		for _, k := range steps {
			parts = append(parts, fmt.Sprintf("%s %.3fs", strings.TrimPrefix(k, "step: "), t[k]))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "  statements of the run (%s import): %s\n", label, strings.Join(parts, ", "))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "note: the records are left in organisation %q\n", r.Organisation)
}

// benchConfig is the configuration a bench command opens its database
// with: dbURL, or an embedded PostgreSQL in dataDir — by default a
// throwaway directory, removed by the returned cleanup. where says which,
// for the report.
func benchConfig(name, dbURL, dataDir string, getenv func(string) string) (cfg *config.Config, where string, cleanup func(), err error) {
	cleanup = func() {}
	where = "DATABASE_URL"
	if dbURL == "" {
		where = "embedded"
		if dataDir == "" {
			// The embedded PostgreSQL runs as an unprivileged user when we
			// are root: it must reach the directory.
			tmp, err := os.MkdirTemp("", "lintel-bench-pg-*")
			if err != nil {
				return nil, "", cleanup, err
			}
			cleanup = func() { _ = os.RemoveAll(tmp) }
			if err := os.Chmod(tmp, 0o755); err != nil {
				cleanup()
				return nil, "", func() {}, err
			}
			dataDir = filepath.Join(tmp, "data")
		}
	}
	cfgArgs := []string{"--database-url", dbURL}
	if dataDir != "" {
		cfgArgs = append(cfgArgs, "--data-dir", dataDir)
	}
	cfg, _, err = config.Load(name, cfgArgs, getenv)
	if err != nil {
		cleanup()
		return nil, "", func() {}, &exitError{code: 2, err: err}
	}
	return cfg, where, cleanup, nil
}
