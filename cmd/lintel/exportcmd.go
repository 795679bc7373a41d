package main

// `lintel export`: a scriptable client of the GraphQL export API. It asks
// for an export of a template's records, follows it to the end with a
// progress bar and downloads the file through its signed link, checking
// its size and SHA-256.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Exit codes of `lintel export` (as for `lintel import`).
const (
	exportExitFailure = 1 // network, server or unexpected error
	exportExitUsage   = 2 // bad flags, unknown template, or columns or a filter the server refused
	exportExitFailed  = 4 // the export ran and ended FAILED on the server
)

// exportPollInterval is how often `lintel export` asks how far the job is.
const exportPollInterval = 200 * time.Millisecond

const exportUsage = `usage: lintel export --server URL --template NAME_OR_ID [flags] -o FILE

Exports a template's records as CSV through the API: the server writes the
file in a job, this command follows it and downloads the file. The file
imports back unchanged ("lintel import --mode sync" of it changes nothing).

  --server URL           Lintel's address, e.g. http://127.0.0.1:8080 (env LINTEL_SERVER)
  --token TOKEN          access token (env LINTEL_TOKEN); or log in with
  --email E --password P (env LINTEL_EMAIL, LINTEL_PASSWORD)
  --template NAME_OR_ID  the template to export
  --filter KEY=VALUE     which records, repeatable (all given must match):
                           status=active|suspended|archived
                           credential-state=not_invited|invited|active|reset|revoked|expired
                           search=TEXT (card ID, identifier, e-mail or any field, any case)
                           valid-at=TIME, expires-before=TIME, updated-since=TIME
                         TIME is RFC 3339 (2026-11-24T09:30:00Z) or a date (2026-11-24, UTC)
  --columns a,b,c        column keys in file order (default: every column you may export;
                         --list-columns shows them)
  --list-columns         print the columns you may export, and exit
  --bom                  start the file with a UTF-8 byte-order mark (for Excel)
  -o, --output FILE      where to write the file; "-" writes to stdout

Progress goes to stderr. A partial download never replaces FILE.

Exit codes:
  0  the file was written
  1  failure: network, server or unexpected error
  2  usage error: bad flags, unknown template, or columns or a filter the server
     refused (unknown, or not allowed for your role)
  4  the export ran but ended FAILED on the server
`

// exportArgs is a parsed `lintel export` command line.
type exportArgs struct {
	apiAccess
	template, output string
	filter           map[string]any // RecordFilter
	columns          []string       // nil: all
	bom, listColumns bool
}

func exportUsageError(format string, args ...any) error {
	return &exitError{code: exportExitUsage, err: fmt.Errorf(format, args...)}
}

// exportFilterKeys maps --filter keys to RecordFilter fields; enum values
// are upper-cased, times parsed.
var exportFilterKeys = map[string]string{
	"status": "status", "credential-state": "credentialState", "credential_state": "credentialState", "credentialstate": "credentialState",
	"search": "search", "valid-at": "validAt", "valid_at": "validAt", "validat": "validAt",
	"expires-before": "expiresBefore", "expires_before": "expiresBefore", "expiresbefore": "expiresBefore",
	"updated-since": "updatedSince", "updated_since": "updatedSince", "updatedsince": "updatedSince",
}

// exportFilterEnums are the values of the enum filters.
var exportFilterEnums = map[string][]string{
	"status":          {"ACTIVE", "SUSPENDED", "ARCHIVED"},
	"credentialState": {"NOT_INVITED", "INVITED", "ACTIVE", "RESET", "REVOKED", "EXPIRED"},
}

// exportTime reads a filter instant: RFC 3339, or a date (midnight UTC).
func exportTime(key, v string) (string, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.Format(time.RFC3339Nano), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	return "", exportUsageError("--filter %s=%q: not an instant (use RFC 3339, e.g. 2026-11-24T09:30:00Z, or a date 2026-11-24)", key, v)
}

func parseExportArgs(args []string, stderr io.Writer, getenv func(string) string) (*exportArgs, error) {
	fs := flag.NewFlagSet("lintel export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := &exportArgs{filter: map[string]any{}}
	a.apiAccess.bind(fs, getenv)
	fs.StringVar(&a.template, "template", "", "")
	var filters repeatedFlag
	fs.Var(&filters, "filter", "")
	columns := fs.String("columns", "", "")
	fs.BoolVar(&a.listColumns, "list-columns", false, "")
	fs.BoolVar(&a.bom, "bom", false, "")
	fs.StringVar(&a.output, "o", "", "")
	fs.StringVar(&a.output, "output", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, exportUsage)
			return nil, &exitError{code: 0, err: err}
		}
		return nil, exportUsageError("%v (see lintel export -h)", err)
	}
	if fs.NArg() > 0 {
		return nil, exportUsageError("unexpected argument %q (the file is given with -o)", fs.Arg(0))
	}
	switch {
	case a.server == "":
		return nil, exportUsageError("--server is required (or LINTEL_SERVER)")
	case a.template == "":
		return nil, exportUsageError("--template is required")
	case a.token == "" && (a.email == "" || a.password == ""):
		return nil, exportUsageError("give --token (or LINTEL_TOKEN), or --email and --password (or LINTEL_EMAIL and LINTEL_PASSWORD)")
	case a.output == "" && !a.listColumns:
		return nil, exportUsageError("-o FILE is required (\"-o -\" writes to stdout)")
	}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		key, known := exportFilterKeys[strings.ToLower(strings.TrimSpace(k))]
		if !ok || !known {
			return nil, exportUsageError("--filter %q: use KEY=VALUE with KEY one of status, credential-state, search, valid-at, expires-before, updated-since", f)
		}
		if _, dup := a.filter[key]; dup {
			return nil, exportUsageError("--filter %s is given twice", k)
		}
		switch key {
		case "status", "credentialState":
			e := strings.ToUpper(strings.TrimSpace(v))
			if !slices.Contains(exportFilterEnums[key], e) {
				return nil, exportUsageError("--filter %s=%q: must be one of %s", k, v, strings.ToLower(strings.Join(exportFilterEnums[key], ", ")))
			}
			a.filter[key] = e
		case "search":
			a.filter[key] = v
		default:
			t, err := exportTime(k, strings.TrimSpace(v))
			if err != nil {
				return nil, err
			}
			a.filter[key] = t
		}
	}
	if *columns != "" {
		for _, c := range strings.Split(*columns, ",") {
			if c = strings.TrimSpace(c); c != "" {
				a.columns = append(a.columns, c)
			}
		}
		if len(a.columns) == 0 {
			return nil, exportUsageError("--columns names no column")
		}
	}
	return a, nil
}

// exportState is the part of an Export the command reads.
type exportState struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	FileName    string  `json:"fileName"`
	Processed   int     `json:"processed"`
	Total       *int    `json:"total"`
	RowCount    *int    `json:"rowCount"`
	Size        *int64  `json:"size"`
	SHA256      *string `json:"sha256"`
	DownloadURL *string `json:"downloadUrl"`
	ErrorCode   *string `json:"errorCode"`
	Error       *string `json:"error"`
}

const exportSelection = `{ id status fileName processed total rowCount size sha256 downloadUrl errorCode error }`

func (s *exportState) done() bool { return s.Status != "QUEUED" && s.Status != "RUNNING" }

// refusedExport turns the server's refusal of the columns, filter or
// options into a usage error; other errors stay failures.
func refusedExport(what string, err error) error {
	switch errorCode(err) {
	case "VALIDATION_FAILED", "INVALID_ARGUMENT", "FORBIDDEN", "NOT_FOUND", "GRAPHQL_VALIDATION_FAILED":
		// GRAPHQL_VALIDATION_FAILED: a value the schema refuses, such as an
		// unknown status.
		return &exitError{code: exportExitUsage, err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	a, err := parseExportArgs(args, stderr, getenv)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == 0 {
			return nil // -h
		}
		return err
	}
	c, err := newAPIClient(a.server, a.token)
	if err != nil {
		return &exitError{code: exportExitUsage, err: err}
	}
	if c.token == "" {
		if c.token, err = c.login(ctx, a.email, a.password); err != nil {
			return err
		}
	}
	tmpl, err := c.resolveTemplate(ctx, a.template)
	if err != nil {
		return err
	}
	if a.listColumns {
		var out struct {
			ExportColumns []struct{ Key, Header string } `json:"exportColumns"`
		}
		if err := c.do(ctx, `query($t: ID!) { exportColumns(templateId: $t) { key header } }`, map[string]any{"t": tmpl.ID}, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tHEADER")
		for _, col := range out.ExportColumns {
			fmt.Fprintf(tw, "%s\t%s\n", col.Key, col.Header)
		}
		return tw.Flush()
	}

	vars := map[string]any{"t": tmpl.ID, "o": map[string]any{"bom": a.bom}}
	if len(a.filter) > 0 {
		vars["f"] = a.filter
	}
	if a.columns != nil {
		vars["c"] = a.columns
	}
	var started struct {
		StartExport exportState `json:"startExport"`
	}
	if err := c.do(ctx, `mutation($t: ID!, $f: RecordFilter, $c: [String!], $o: ExportOptionsInput) {
		startExport(templateId: $t, filter: $f, columns: $c, options: $o) `+exportSelection+` }`, vars, &started); err != nil {
		return refusedExport("export "+tmpl.Name, err)
	}
	began := time.Now()
	view := &progressView{w: stderr, tty: isTerminal(stderr)}
	e := &started.StartExport
	for !e.done() {
		select {
		case <-ctx.Done():
			view.end()
			return ctx.Err()
		case <-time.After(exportPollInterval):
		}
		var out struct {
			Export *exportState `json:"export"`
		}
		if err := c.do(ctx, `query($id: ID!) { export(id: $id) `+exportSelection+` }`, map[string]any{"id": e.ID}, &out); err != nil {
			view.end()
			return fmt.Errorf("follow export %s: %w", e.ID, err)
		}
		if out.Export == nil {
			view.end()
			return fmt.Errorf("export %s disappeared", e.ID)
		}
		e = out.Export
		total := 0
		if e.Total != nil {
			total = *e.Total
		}
		status := e.Status
		view.report(progress{Phase: &status, Processed: e.Processed, Total: total})
	}
	view.end()
	if e.Status != "SUCCEEDED" {
		return &exitError{code: exportExitFailed, err: fmt.Errorf("export %s ended %s: %s", e.ID, e.Status, derefString(e.Error))}
	}
	if e.DownloadURL == nil || e.Size == nil || e.SHA256 == nil {
		return fmt.Errorf("export %s has no download link for you", e.ID)
	}
	if err := downloadExport(ctx, c, e, a.output, stdout); err != nil {
		return err
	}
	where := a.output
	if where == "-" {
		where = "stdout"
	}
	fmt.Fprintf(stderr, "exported %d rows (%d bytes, sha256 %s) of %q to %s in %.1fs\n",
		derefInt(e.RowCount), *e.Size, *e.SHA256, tmpl.Name, where, time.Since(began).Seconds())
	return nil
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// downloadExport fetches the file and checks its size and digest. A file
// is written under a temporary name and renamed when complete, so a broken
// download leaves no partial file behind.
func downloadExport(ctx context.Context, c *apiClient, e *exportState, output string, stdout io.Writer) error {
	resp, err := c.get(ctx, *e.DownloadURL)
	if err != nil {
		return fmt.Errorf("download export %s: %w", e.ID, err)
	}
	defer resp.Body.Close()
	var w io.Writer = stdout
	var tmp *os.File
	if output != "-" {
		if tmp, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*"); err != nil {
			return &exitError{code: exportExitUsage, err: err}
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return fmt.Errorf("download export %s: %w", e.ID, err)
	}
	if n != *e.Size || hex.EncodeToString(h.Sum(nil)) != *e.SHA256 {
		return fmt.Errorf("download export %s: got %d bytes that do not match the export's %d bytes and SHA-256", e.ID, n, *e.Size)
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), output)
}
