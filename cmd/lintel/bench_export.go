package main

// `lintel bench export`: times a CSV export of N records end to end — the
// job from start to a stored file — against a plain COPY (SELECT the same
// columns …) TO STDOUT on the same database, and reports peak memory.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/exports"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/templates"
)

const benchExportUsage = `usage: lintel bench export [--rows N] [--database-url URL] [--data-dir DIR]

Fills a template with N records and times, on the same database:
  (a) COPY (SELECT the same columns …) TO STDOUT, read and discarded: the physical limit
  (b) the design the export does not use: a COPY … (FORMAT csv) with values formatted
      and neutralised in SQL, read and discarded
  (c) the export's reading and writing: rows through pgx, neutralised and written as
      CSV in Go, discarded
  (d) the export itself: startExport → SUCCEEDED, the file stored in PostgreSQL
with each one's ratio to (a) and the peak RSS of this process and of PostgreSQL.
The target is (d) within 2× of (a) with a peak RSS under 256 MiB.

  --rows N            records to export (default 1000000)
  --database-url URL  PostgreSQL to use (env DATABASE_URL); the bench adds an organisation
                      "Bench export …" with its records, and leaves them there
  --data-dir DIR      data directory of the embedded PostgreSQL when no URL is given
                      (default: a temporary directory, removed afterwards)
`

// benchExportFields are the bench template's fields: every type, with
// values that need quoting and neutralising now and then.
var benchExportFields = []templates.Field{
	{Key: "first_name", Label: "First name", Type: templates.TypeText, Required: true},
	{Key: "last_name", Label: "Last name", Type: templates.TypeText},
	{Key: "title", Label: "Title", Type: templates.TypeText},
	{Key: "office", Label: "Office", Type: templates.TypeText},
	{Key: "grade", Label: "Grade", Type: templates.TypeNumber},
	{Key: "born", Label: "Born", Type: templates.TypeDate, Personal: true},
	{Key: "country", Label: "Country", Type: templates.TypeCountry},
	{Key: "department", Label: "Department", Type: templates.TypeSelect, Options: []string{"Sales", "Engineering", "Support", "R&D, Labs"}},
	{Key: "phone", Label: "Phone", Type: templates.TypePhone},
	{Key: "note", Label: "Note", Type: templates.TypeText},
}

// benchExportRecordsSQL fills the template the way one large import does:
// one transaction, so every record has the same created_at and a random
// ID (which is what the export's row order meets in real life).
const benchExportRecordsSQL = `INSERT INTO card_records (org_id, template_id, card_id, unique_identifier, unique_key, fields, barcode_value,
		recipient_email, valid_from, expires_at, status, search_text)
	SELECT $1, $2, (1000000 + i)::text, 'p' || i || '@bench.example', 'p' || i || '@bench.example',
		jsonb_strip_nulls(jsonb_build_object(
			'first_name', (ARRAY['Ada', 'Grace', 'Zoë', 'José', '=Eve', 'Ørjan', 'Mei-Ling', 'Анна'])[1 + i % 8],
			'last_name', (ARRAY['Lovelace', 'Hopper', 'O''Brien', 'Müller, jr.', 'Dijkstra', 'Turing', '山田', 'Hamilton'])[1 + (i / 8) % 8],
			'title', (ARRAY['Engineer', 'Analyst', 'Manager', 'Technician', 'Designer', '-'])[1 + i % 6],
			'office', 'Building ' || chr(65 + i % 6) || ', room ' || (100 + i % 400),
			'grade', ((i % 40) - 5)::text,
			'born', to_char(date '1950-01-01' + (i % 20000), 'YYYY-MM-DD'),
			'country', (ARRAY['CH', 'DE', 'FR', 'JP', 'BR', 'US'])[1 + i % 6],
			'department', (ARRAY['Sales', 'Engineering', 'Support', 'R&D, Labs'])[1 + i % 4],
			'phone', '+4144' || lpad((i % 10000000)::text, 7, '0'),
			'note', CASE i % 10 WHEN 0 THEN 'says "hi", twice' WHEN 1 THEN E'two\nlines' WHEN 2 THEN '@mention' END)),
		(1000000 + i)::text, 'p' || i || '@bench.example',
		CASE WHEN i % 3 = 0 THEN now() - interval '30 days' END, now() + interval '365 days',
		CASE WHEN i % 50 = 0 THEN 'SUSPENDED' ELSE 'ACTIVE' END, ''
	FROM generate_series(1, $3::int) AS i`

// benchExportResult is one row of the table.
type benchExportResult struct {
	name       string
	seconds    float64
	bytes      int64
	rows       int64
	peak       int64
	postgres   *int64
	vsBaseline float64
}

func benchExport(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("lintel bench export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rows := fs.Int("rows", 1_000_000, "")
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "")
	dataDir := fs.String("data-dir", "", "")
	if help, err := parseBenchFlags(fs, args, stdout, benchExportUsage); help || err != nil {
		return err
	}
	if *rows < 1 {
		return &exitError{code: 2, err: errors.New("--rows must be at least 1")}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, "bench: "+format+"\n", args...) }
	r, err := runExportBench(ctx, *rows, *dbURL, *dataDir, getenv, logf)
	if err != nil {
		return err
	}
	printExportBench(stdout, r)
	return nil
}

// exportBenchReport is what `lintel bench export` measured.
type exportBenchReport struct {
	rows            int
	postgresVersion string
	database        string
	results         []benchExportResult // (a) … (d)
	notes           []string
	organisation    string // where the records are left; "" when they were thrown away
}

// exportBenchTarget: (d) within 2× of (a), peak RSS under 256 MiB.
const (
	exportBenchMaxRatio = 2.0
	exportBenchMaxRSS   = 256 << 20
)

// runExportBench fills a template with rows records and times the four
// ways of reading them out.
func runExportBench(ctx context.Context, rows int, dbURL, dataDir string, getenv func(string) string, logf func(string, ...any)) (*exportBenchReport, error) {
	kept := dbURL != "" || dataDir != "" // the records outlive the bench
	cfg, where, cleanup, err := benchConfig("lintel bench export", dbURL, dataDir, getenv)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	report := &exportBenchReport{rows: rows, database: where}
	logf("opening the database (%s)", where)
	db, err := openDatabase(ctx, cfg, quietLogger())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.Pool.QueryRow(ctx, `SHOW server_version`).Scan(&report.postgresVersion); err != nil {
		return nil, err
	}
	benchMasterKey(cfg)
	a, err := newApp(ctx, cfg, db.DB, quietLogger())
	if err != nil {
		return nil, err
	}
	defer a.stop()

	orgName := "Bench export " + time.Now().UTC().Format("2006-01-02 15:04:05.000")
	org, err := auth.NewService(db.Bun, nil, auth.DefaultConfig()).CreateOrganisation(ctx, orgName)
	if err != nil {
		return nil, err
	}
	logf("writing %d records", rows)
	start := time.Now()
	as, tmpl, err := benchFilledTemplate(ctx, db.DB, org, "Bench export", rows)
	if err != nil {
		return nil, err
	}
	logf("records written in %.1fs", time.Since(start).Seconds())

	meter := newPeakMeter(db.Pool, db.embedded != nil || localDatabase(db.Pool))
	measure := func(name string, fn func() (bytes, rows int64, err error)) (benchExportResult, error) {
		_, _ = db.Pool.Exec(ctx, `CHECKPOINT`)
		meter.reset(ctx)
		t0 := time.Now()
		n, r, err := fn()
		if err != nil {
			return benchExportResult{}, fmt.Errorf("%s: %w", name, err)
		}
		res := benchExportResult{name: name, seconds: time.Since(t0).Seconds(), bytes: n, rows: r}
		res.peak, res.postgres = meter.read(ctx)
		return res, nil
	}
	copyOut := func(sql string) (int64, int64, error) {
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			return 0, 0, err
		}
		defer conn.Release()
		cw := &countingWriter{}
		tag, err := conn.Conn().PgConn().CopyTo(ctx, cw, `COPY (`+sql+`) TO STDOUT (FORMAT csv)`)
		return cw.n, tag.RowsAffected(), err
	}
	rawSQL := exports.RecordsSQL(org, tmpl, exports.RawSQL)
	logf("warming up (one untimed COPY)")
	if _, _, err := copyOut(rawSQL); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}

	var results []benchExportResult
	for _, sc := range []struct {
		name string
		fn   func() (int64, int64, error)
	}{
		{"(a) COPY (SELECT the same columns …) TO STDOUT", func() (int64, int64, error) { return copyOut(rawSQL) }},
		{"(b) alternative: COPY csv, neutralised in SQL, discarded", func() (int64, int64, error) {
			return copyOut(exports.RecordsSQL(org, tmpl, exports.NeutralisedSQL))
		}},
		{"(c) export's pgx rows → Go CSV writer, discarded", func() (int64, int64, error) {
			cw := &countingWriter{}
			n, err := exports.WriteRecords(ctx, db.Pool, org, tmpl, cw)
			return cw.n, n, err
		}},
		{"(d) export: startExport → SUCCEEDED, file stored", func() (int64, int64, error) {
			return runBenchExport(as, a.exports, tmpl.ID)
		}},
	} {
		logf("%s", sc.name)
		r, err := measure(sc.name, sc.fn)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	for i := range results {
		results[i].vsBaseline = results[i].seconds / results[0].seconds
		if results[i].rows != int64(rows) {
			return nil, fmt.Errorf("%s produced %d rows, not %d", results[i].name, results[i].rows, rows)
		}
	}

	report.results = results
	report.notes = meter.notes()
	if kept {
		report.organisation = orgName
	}
	return report, nil
}

func printExportBench(w io.Writer, r *exportBenchReport) {
	results := r.results
	fmt.Fprintf(w, "\nlintel bench export: %d rows, PostgreSQL %s (%s), %d CPUs, Go %s\n", r.rows, r.postgresVersion, r.database, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(w, "file: %.1f MB (%.0f bytes/row)\n\n", float64(results[3].bytes)/1e6, float64(results[3].bytes)/float64(r.rows))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	pad := padColumn("scenario", results, func(res benchExportResult) string { return res.name })
	fmt.Fprintf(tw, "%s\twall s\trows/s\tvs (a)\tpeak RSS lintel\tpeak RSS postgres\t\n", pad("scenario"))
	for _, res := range results {
		pg := "n/a"
		if res.postgres != nil {
			pg = mib(*res.postgres)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.0f\t%.2f×\t%s\t%s\t\n", pad(res.name), res.seconds, float64(res.rows)/res.seconds, res.vsBaseline, mib(res.peak), pg)
	}
	_ = tw.Flush()
	d := results[3]
	verdict := "met"
	if d.vsBaseline > exportBenchMaxRatio || d.peak >= exportBenchMaxRSS {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "\ntarget (d) within 2× of (a), peak RSS under 256 MiB: %s (%.2f×, %s)\n", verdict, d.vsBaseline, mib(d.peak))
	for _, n := range r.notes {
		fmt.Fprintln(w, "note:", n)
	}
	if r.organisation != "" {
		fmt.Fprintf(w, "note: the records are left in organisation %q\n", r.organisation)
	}
}

// benchFilledTemplate makes a template with benchExportFields in org and
// n records in it, written the way one large import writes them, and
// returns it with a context acting as the organisation's administrator.
func benchFilledTemplate(ctx context.Context, db *store.DB, org uuid.UUID, name string, n int) (context.Context, *templates.Template, error) {
	as := caller.WithPrincipal(ctx, &caller.Principal{OperatorID: uuid.New(), OrgID: org, Role: caller.RoleAdmin, Email: "bench@bench.example"})
	tmpl, err := templates.NewService(db).Create(as, templates.Input{Name: name, Fields: benchExportFields,
		Symbology: templates.QR, CardIDFormat: "DECIMAL", UniqueIdentifierKind: templates.IdentifierEmail})
	if err != nil {
		return nil, nil, fmt.Errorf("create the template: %w", err)
	}
	if _, err := db.Pool.Exec(ctx, benchExportRecordsSQL, org, tmpl.ID, n); err != nil {
		return nil, nil, fmt.Errorf("write the records: %w", err)
	}
	// The steady state: hint bits set, statistics as autovacuum keeps them.
	if _, err := db.Pool.Exec(ctx, `VACUUM (ANALYZE) card_records`); err != nil {
		return nil, nil, fmt.Errorf("vacuum: %w", err)
	}
	return as, tmpl, nil
}

// countingWriter discards what it is given and counts it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// runBenchExport starts an export of every column of template tid and
// waits for its file.
func runBenchExport(ctx context.Context, svc *exports.Service, tid uuid.UUID) (int64, int64, error) {
	e, err := svc.StartRecords(ctx, tid, exports.StartInput{})
	if err != nil {
		return 0, 0, err
	}
	for e.Status == exports.Queued || e.Status == exports.Running {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if e, err = svc.Get(ctx, e.ID); err != nil {
			return 0, 0, err
		}
	}
	if e.Status != exports.Succeeded || e.Size == nil || e.RowCount == nil {
		return 0, 0, fmt.Errorf("the export ended %s: %s", e.Status, derefString(e.Error))
	}
	return int64(*e.Size), int64(*e.RowCount), nil
}
