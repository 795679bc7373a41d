package main

// `lintel bench all`: every scenario on one database, one table: each row
// a figure, the limit it is compared with (measured in the same run on
// the same machine), the ratio and the target.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

const benchAllUsage = `usage: lintel bench all [flags]

Runs every scenario on one database and prints one table: each row a figure,
the limit it is compared with (measured in the same run), the ratio and the
target. The defaults are the full run (about 20 minutes on 2 cores); small
sizes make a smoke test. Between scenarios the database is vacuumed and
checkpointed, so that none is measured while PostgreSQL catches up on the
one before.

  import         a SYNC + ARCHIVE import of --import-rows rows through the API vs
                 (a) COPY of the file and (b) hand-written COPY + UPDATE/INSERT/archive;
                 again with --import-large-rows rows (0 skips it)
  export         startExport of --export-rows records vs COPY (SELECT …) TO STDOUT
  api            a page of 50 records with their template over GraphQL, --api-clients
                 concurrent clients for --api-duration, vs the same SQL through pgx
  subscriptions  --subscribers graphql-transport-ws subscribers of one import's progress
                 on one lintel serve process (a child process)
  credentials    issue and verify rates vs raw Ed25519 (--credentials-n operations)
  gateway        decision latency against --gateway-cards cards, full sync of
                 --gateway-sync records, revocation → door

  --only LIST                 scenarios to run, comma-separated (default: all of them)
  --smoke                     tiny sizes (those not given): checks that every scenario runs
  --import-rows N             (default 100000)
  --import-large-rows N       (default 1000000; 0 skips)
  --export-rows N             (default 1000000)
  --api-clients N             (default 32)
  --api-duration D            (default 10s)
  --api-records N             records in the listed template (default 1000)
  --api-replicas N            in-process servers the clients are spread over (default 1)
  --subscribers N             (default 10000)
  --subscription-rows N       rows of the watched import (default 10000)
  --credentials-n N           (default 2000)
  --gateway-cards N           (default 1000000)
  --gateway-sync N            (default 100000)
  --gateway-swipes N          (default 500)
  --gateway-revocations N     (default 20)
  --database-url URL          PostgreSQL to use (env DATABASE_URL); every scenario adds an
                              organisation "Bench …" and leaves it there
  --data-dir DIR              data directory of the embedded PostgreSQL when no URL is given
                              (default: a temporary directory, removed afterwards)
  --cpu-profile FILE          write this process's CPU profile (in-process servers included)
  --json FILE                 also write the table as JSON to FILE ("-": stdout, instead of the table)
`

// benchSmokeSizes are --smoke's sizes: every code path in well under a
// minute, figures meaningless.
var benchSmokeSizes = map[string]string{
	"import-rows": "2000", "import-large-rows": "0", "export-rows": "2000",
	"api-clients": "4", "api-duration": "1s", "api-records": "100",
	"subscribers": "100", "subscription-rows": "300", "credentials-n": "50",
	"gateway-cards": "10000", "gateway-sync": "200", "gateway-swipes": "10", "gateway-revocations": "3",
}

// benchAllScenarios are the scenario names --only accepts, in run order.
var benchAllScenarios = []string{"import", "export", "api", "subscriptions", "credentials", "gateway"}

// benchAllRow is one row of the table. Ratio is Figure / Limit.
type benchAllRow struct {
	Scenario  string   `json:"scenario"`
	Figure    float64  `json:"figure"`
	Unit      string   `json:"unit"`
	LimitName string   `json:"limitName,omitempty"`
	Limit     *float64 `json:"limit,omitempty"`
	Ratio     *float64 `json:"ratio,omitempty"`
	Target    string   `json:"target,omitempty"`
	Met       *bool    `json:"met,omitempty"`
}

// benchAllReport is the whole run.
type benchAllReport struct {
	Started         time.Time     `json:"started"`
	Seconds         float64       `json:"seconds"`
	Machine         string        `json:"machine"`
	CPUs            int           `json:"cpus"`
	GoVersion       string        `json:"goVersion"`
	PostgresVersion string        `json:"postgresVersion"`
	Database        string        `json:"database"`
	Options         benchAllOpts  `json:"options"`
	Rows            []benchAllRow `json:"rows"`
	Notes           []string      `json:"notes"`
}

type benchAllOpts struct {
	Only               []string      `json:"scenarios"`
	ImportRows         int           `json:"importRows"`
	ImportLargeRows    int           `json:"importLargeRows"`
	ExportRows         int           `json:"exportRows"`
	APIClients         int           `json:"apiClients"`
	APIDuration        time.Duration `json:"apiDurationNs"`
	APIRecords         int           `json:"apiRecords"`
	APIReplicas        int           `json:"apiReplicas"`
	Subscribers        int           `json:"subscribers"`
	SubscriptionRows   int           `json:"subscriptionRows"`
	CredentialsN       int           `json:"credentialsN"`
	GatewayCards       int           `json:"gatewayCards"`
	GatewaySync        int           `json:"gatewaySync"`
	GatewaySwipes      int           `json:"gatewaySwipes"`
	GatewayRevocations int           `json:"gatewayRevocations"`
}

func benchAll(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("lintel bench all", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o benchAllOpts
	only := fs.String("only", strings.Join(benchAllScenarios, ","), "")
	fs.IntVar(&o.ImportRows, "import-rows", 100_000, "")
	fs.IntVar(&o.ImportLargeRows, "import-large-rows", 1_000_000, "")
	fs.IntVar(&o.ExportRows, "export-rows", 1_000_000, "")
	fs.IntVar(&o.APIClients, "api-clients", 32, "")
	fs.DurationVar(&o.APIDuration, "api-duration", 10*time.Second, "")
	fs.IntVar(&o.APIRecords, "api-records", 1000, "")
	fs.IntVar(&o.APIReplicas, "api-replicas", 1, "")
	fs.IntVar(&o.Subscribers, "subscribers", 10_000, "")
	fs.IntVar(&o.SubscriptionRows, "subscription-rows", 10_000, "")
	fs.IntVar(&o.CredentialsN, "credentials-n", 2000, "")
	fs.IntVar(&o.GatewayCards, "gateway-cards", 1_000_000, "")
	fs.IntVar(&o.GatewaySync, "gateway-sync", 100_000, "")
	fs.IntVar(&o.GatewaySwipes, "gateway-swipes", 500, "")
	fs.IntVar(&o.GatewayRevocations, "gateway-revocations", 20, "")
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "")
	dataDir := fs.String("data-dir", "", "")
	jsonOut := fs.String("json", "", "")
	cpuProfile := fs.String("cpu-profile", "", "")
	smoke := fs.Bool("smoke", false, "")
	if help, err := parseBenchFlags(fs, args, stdout, benchAllUsage); help || err != nil {
		return err
	}
	if *smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range benchSmokeSizes {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); !slices.Contains(benchAllScenarios, s) {
			return &exitError{code: 2, err: fmt.Errorf("--only: unknown scenario %q (known: %s)", s, strings.Join(benchAllScenarios, ", "))}
		}
		o.Only = append(o.Only, s)
	}
	for _, c := range []struct {
		name string
		v    int
		min  int
	}{{"import-rows", o.ImportRows, 8}, {"import-large-rows", o.ImportLargeRows, 0}, {"export-rows", o.ExportRows, 1},
		{"api-clients", o.APIClients, 1}, {"api-records", o.APIRecords, 1}, {"api-replicas", o.APIReplicas, 1},
		{"subscribers", o.Subscribers, 1}, {"subscription-rows", o.SubscriptionRows, 1}, {"credentials-n", o.CredentialsN, 1},
		{"gateway-cards", o.GatewayCards, 1}, {"gateway-swipes", o.GatewaySwipes, 1}, {"gateway-revocations", o.GatewayRevocations, 1}} {
		if c.v < c.min {
			return &exitError{code: 2, err: fmt.Errorf("--%s must be at least %d", c.name, c.min)}
		}
	}
	if o.ImportLargeRows > 0 && o.ImportLargeRows < 8 {
		return &exitError{code: 2, err: errors.New("--import-large-rows must be 0 or at least 8")}
	}
	if o.GatewaySync < 2*o.GatewayRevocations+20 {
		return &exitError{code: 2, err: fmt.Errorf("--gateway-sync must be at least %d (2 × --gateway-revocations + 20)", 2*o.GatewayRevocations+20)}
	}
	if o.APIDuration <= 0 {
		return &exitError{code: 2, err: errors.New("--api-duration must be positive")}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	report, err := runBenchAll(ctx, o, *dbURL, *dataDir, getenv, stderr)
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if *jsonOut == "-" {
			_, err = stdout.Write(b)
			return err
		}
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	printBenchAll(stdout, report)
	return nil
}

// runBenchAll runs the chosen scenarios on one database: dbURL, or one
// embedded PostgreSQL started for the whole run.
func runBenchAll(ctx context.Context, o benchAllOpts, dbURL, dataDir string, getenv func(string) string, stderr io.Writer) (*benchAllReport, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	report := &benchAllReport{Started: time.Now().UTC(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Options: o, Machine: machineDescription()}
	cfg, where, cleanup, err := benchConfig("lintel bench all", dbURL, dataDir, getenv)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	report.Database = where
	db, err := openDatabase(ctx, cfg, quietLogger())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if db.embedded != nil {
		dbURL = db.embedded.URL("")
	}
	if err := db.Pool.QueryRow(ctx, `SHOW server_version`).Scan(&report.PostgresVersion); err != nil {
		return nil, err
	}
	// Every scenario, and the server child process, seal with one key.
	masterKey := getenv("LINTEL_MASTER_KEY")
	if masterKey == "" {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		masterKey = base64.StdEncoding.EncodeToString(k)
	}
	env := func(k string) string {
		if k == "LINTEL_MASTER_KEY" {
			return masterKey
		}
		return getenv(k)
	}
	add := func(r benchAllRow) { report.Rows = append(report.Rows, r) }
	started := time.Now()

	for i, scenario := range o.Only {
		if i > 0 {
			settleDatabase(ctx, db.Pool, logf)
		}
		t0 := time.Now()
		logf("== %s", scenario)
		switch scenario {
		case "import":
			for _, n := range []int{o.ImportRows, o.ImportLargeRows} {
				if n == 0 {
					continue
				}
				r, err := runImportBench(ctx, n, dbURL, "", env, stderr)
				if err != nil {
					return nil, fmt.Errorf("import %d rows: %w", n, err)
				}
				importRows(r, add)
			}
		case "export":
			r, err := runExportBench(ctx, o.ExportRows, dbURL, "", env, logf)
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			a, d := r.results[0], r.results[3]
			name := fmt.Sprintf("export %s records: startExport → file stored", count(o.ExportRows))
			add(compared(name, d.seconds, "s", "COPY (SELECT …) TO STDOUT", a.seconds, "≤ 2×", d.seconds <= exportBenchMaxRatio*a.seconds))
			add(targeted(fmt.Sprintf("export %s records: peak RSS lintel", count(o.ExportRows)), float64(d.peak)/(1<<20), "MiB", "< 256 MiB", d.peak < exportBenchMaxRSS))
		case "api":
			r, err := runAPIBench(ctx, apiBenchOpts{clients: o.APIClients, duration: o.APIDuration, records: o.APIRecords, replicas: o.APIReplicas}, dbURL, env, logf)
			if err != nil {
				return nil, fmt.Errorf("api: %w", err)
			}
			what := fmt.Sprintf("api: page of 50 records + template, %d clients", r.Clients)
			if r.Replicas > 1 {
				what += fmt.Sprintf(", %d replicas", r.Replicas)
			}
			add(compared(what, r.GraphQL.PerSecond, "req/s", "the same SQL through pgx", r.Raw.PerSecond, "≥ 0.40", r.GraphQL.PerSecond >= 0.40*r.Raw.PerSecond))
			add(compared("api: p50 latency", r.GraphQL.P50ms, "ms", "pgx p50", r.Raw.P50ms, "", true))
			add(compared("api: p99 latency", r.GraphQL.P99ms, "ms", "pgx p99", r.Raw.P99ms, "", true))
			report.Notes = append(report.Notes, fmt.Sprintf("api: %d GraphQL requests, %d raw; the raw side replays the %d statements one request ran: %s",
				r.GraphQL.Requests, r.Raw.Requests, len(r.Statements), summariseStatements(r.Statements)))
		case "subscriptions":
			r, err := runSubscriptionBench(ctx, o.Subscribers, o.SubscriptionRows, dbURL, masterKey, logf)
			if err != nil {
				return nil, fmt.Errorf("subscriptions: %w", err)
			}
			what := fmt.Sprintf("subscriptions: %s subscribers, events received", count(r.Subscribers))
			add(compared(what, float64(r.Delivered), "events", "subscribers × events published", float64(r.Expected), "all", r.Delivered == r.Expected))
			add(targeted("subscriptions: p99 NOTIFY → subscriber", r.P99ms, "ms", "< 250 ms", r.P99ms < 250))
			add(targeted("subscriptions: server memory (RSS) per subscriber", r.BytesPerSub/1000, "KB", "< 50 KB", r.BytesPerSub < 50_000))
			add(benchAllRow{Scenario: "subscriptions: of which Go heap + stacks", Figure: r.LivePerSub / 1000, Unit: "KB"})
			report.Notes = append(report.Notes, fmt.Sprintf("subscriptions: %d events of a %d-row import; delivery p50 %.1f ms, max %.1f ms; %d subscribers connected in %.1f s; server RSS %s idle → %s subscribed, both after a GC",
				r.Events, r.ImportRows, r.P50ms, r.MaxMs, r.Subscribers, r.ConnectSeconds, mib(r.ServerIdle.RSS), mib(r.ServerWith.RSS)))
			report.Notes = append(report.Notes, "subscriptions, per event: "+strings.Join(r.PerEvent, "; "))
			report.Notes = append(report.Notes, fmt.Sprintf("subscriptions: server CPU from the import's start to the last delivery %.2f s, %.1f µs per message delivered (the import's own work included)",
				r.ServerCPUSeconds, r.ServerCPUSeconds*1e6/float64(max(1, r.Delivered))))
		case "credentials":
			b, err := newCredentialBench("QR")
			if err != nil {
				return nil, err
			}
			r, err := b.run(ctx, o.CredentialsN)
			if err != nil {
				return nil, fmt.Errorf("credentials: %w", err)
			}
			perSec := func(row string) float64 { return 1e9 / r[row] }
			add(compared("credentials: issue JWT (Ed25519)", perSec(benchCredIssueJWT), "ops/s", "ed25519.Sign", perSec(benchCredEdSign), "", true))
			add(compared("credentials: issue JWT + QR PNG, all cores", perSec(benchCredIssueAll), "ops/s", "ed25519.Sign", perSec(benchCredEdSign), "", true))
			add(compared("credentials: verify a wallet code", perSec(benchCredVerify), "ops/s", "Ed25519 + P-256 verify",
				1e9/(r[benchCredEdVerify]+r[benchCredECDSAVerif]), "", true))
		case "gateway":
			b := &gatewayBench{o: gatewayBenchOpts{cards: o.GatewayCards, sync: o.GatewaySync, swipes: o.GatewaySwipes, revocations: o.GatewayRevocations},
				stderr: stderr, rows: map[string]gatewayBenchRow{}}
			if err := b.run(ctx, dbURL, "", env); err != nil {
				return nil, fmt.Errorf("gateway: %w", err)
			}
			ms := func(d *time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
			dec, rev, sync := b.rows[benchGwDecision], b.rows[benchGwRevocation], b.rows[benchGwSync]
			add(targeted(fmt.Sprintf("gateway: decision p99 (%s cards)", count(o.GatewayCards)), ms(dec.p99)*1000, "µs", "< 1 ms", *dec.p99 < time.Millisecond))
			add(targeted("gateway: revocation → door denied, p99", ms(rev.p99), "ms", "< 1 s", *rev.p99 < time.Second))
			add(benchAllRow{Scenario: fmt.Sprintf("gateway: full sync of %s records", count(o.GatewaySync)), Figure: float64(o.GatewaySync) / sync.seconds, Unit: "records/s"})
			for _, name := range []string{benchGwOSDP, benchGwEM4100} {
				add(benchAllRow{Scenario: "gateway: " + name + ", p99", Figure: ms(b.rows[name].p99), Unit: "ms"})
			}
		}
		logf("== %s done in %.1fs", scenario, time.Since(t0).Seconds())
	}
	report.Seconds = time.Since(started).Seconds()
	return report, nil
}

// importRows adds the rows of one import bench run.
func importRows(r *benchReport, add func(benchAllRow)) {
	by := map[string]benchResult{}
	for _, s := range r.Scenarios {
		by[s.Scenario] = s
	}
	a, b, total := by[benchCopy], by[benchSQL], by[benchTotal]
	n := count(r.Rows)
	add(compared(fmt.Sprintf("import %s rows: preview", n), by[benchPreview].Seconds, "s", "(b) hand-written SQL", b.Seconds, "", true))
	add(compared(fmt.Sprintf("import %s rows: apply", n), by[benchApply].Seconds, "s", "(b) hand-written SQL", b.Seconds, "", true))
	add(compared(fmt.Sprintf("import %s rows: total", n), total.Seconds, "s", "(b) hand-written SQL", b.Seconds, "≤ 2×", total.Seconds <= 2*b.Seconds))
	add(compared(fmt.Sprintf("import %s rows: total", n), total.Seconds, "s", "(a) COPY into a bare table", a.Seconds, "", true))
	add(benchAllRow{Scenario: fmt.Sprintf("import %s rows: peak RSS lintel", n), Figure: float64(total.PeakRSS) / (1 << 20), Unit: "MiB"})
	if total.PostgresPeak != nil {
		add(benchAllRow{Scenario: fmt.Sprintf("import %s rows: peak RSS PostgreSQL", n), Figure: float64(*total.PostgresPeak) / (1 << 20), Unit: "MiB"})
	}
}

// compared is a row with a limit; target "" means none.
func compared(name string, figure float64, unit, limitName string, limit float64, target string, met bool) benchAllRow {
	r := benchAllRow{Scenario: name, Figure: figure, Unit: unit, LimitName: limitName, Limit: &limit}
	if limit > 0 {
		ratio := figure / limit
		r.Ratio = &ratio
	}
	if target != "" {
		r.Target, r.Met = target, &met
	}
	return r
}

// targeted is a row with an absolute target.
func targeted(name string, figure float64, unit, target string, met bool) benchAllRow {
	return benchAllRow{Scenario: name, Figure: figure, Unit: unit, Target: target, Met: &met}
}

// count writes n with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// summariseStatements names each statement by its first words.
func summariseStatements(stmts []string) string {
	var out []string
	for _, s := range stmts {
		f := strings.Fields(s)
		from := slices.Index(f, "FROM")
		if from >= 0 && from+1 < len(f) {
			out = append(out, "SELECT … FROM "+strings.Trim(f[from+1], `"`))
		} else {
			out = append(out, strings.Join(f[:min(len(f), 4)], " ")+" …")
		}
	}
	return strings.Join(out, "; ")
}

// machineDescription is the CPU model and memory of this machine.
func machineDescription() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := procMemTotal()
	return fmt.Sprintf("%s, %d CPUs, %.0f GiB, %s/%s", model, runtime.NumCPU(), float64(mem)/(1<<30), runtime.GOOS, runtime.GOARCH)
}

// procMemTotal is the machine's memory in bytes, or 0.
func procMemTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

func printBenchAll(w io.Writer, r *benchAllReport) {
	fmt.Fprintf(w, "lintel bench all: %s; PostgreSQL %s (%s); Go %s; %.0f s\n\n", r.Machine, r.PostgresVersion, r.Database, r.GoVersion, r.Seconds)
	pad := padColumn("scenario", r.Rows, func(row benchAllRow) string { return row.Scenario })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tfigure\tlimit (same run)\t\tratio\ttarget\t\t\n", pad("scenario"))
	for _, row := range r.Rows {
		limit, limitName, ratio, target, met := "", "", "", row.Target, ""
		if row.Limit != nil {
			limit, limitName = fmtFigure(*row.Limit, row.Unit), row.LimitName
		}
		if row.Ratio != nil {
			ratio = fmt.Sprintf("%.2f×", *row.Ratio)
		}
		if row.Met != nil {
			met = metOrNot(*row.Met)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", pad(row.Scenario), fmtFigure(row.Figure, row.Unit), limit, limitName, ratio, target, met)
	}
	_ = tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// fmtFigure prints a figure with its unit, to a sensible precision.
func fmtFigure(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	case v >= 0.1:
		return fmt.Sprintf("%.2f %s", v, unit)
	default:
		return fmt.Sprintf("%.3f %s", v, unit)
	}
}

// settleDatabase leaves PostgreSQL with nothing to catch up on before the
// next scenario: the rows an earlier scenario wrote (a million-row import
// leaves a million dead row versions) are vacuumed and analysed, and
// their pages written out, now rather than by autovacuum and the
// checkpointer in the middle of the next measurement, whose figures
// would then depend on what ran before it. Failures (a role that may not
// CHECKPOINT on an external database) only lose the settling.
func settleDatabase(ctx context.Context, pool *pgxpool.Pool, logf func(string, ...any)) {
	start := time.Now()
	for _, stmt := range []string{"VACUUM (ANALYZE)", "CHECKPOINT"} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			logf("settling the database: %s: %v", stmt, err)
		}
	}
	logf("database settled (VACUUM, CHECKPOINT) in %.1fs", time.Since(start).Seconds())
}
