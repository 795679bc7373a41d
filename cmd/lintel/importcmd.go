package main

// `lintel import`: a scriptable client of the GraphQL import API. It
// uploads a CSV file, fixes the mapping, previews, asks, starts, follows
// the progress subscription and fetches the per-row results.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"

	"github.com/lintel/lintel/internal/gqlws"
)

// stdin is where `lintel import` reads the answer to its confirmation
// prompt; tests replace it.
var stdin io.Reader = os.Stdin

// Exit codes of `lintel import`.
const (
	importExitFailure  = 1 // network, server or unexpected error
	importExitUsage    = 2 // bad flags or arguments, or a file/options the server refused to read
	importExitRefused  = 3 // invalid rows under ABORT, or the confirmation was declined
	importExitNotDone  = 4 // the import ran and ended FAILED or CANCELLED on the server
	importInvalidPage  = 500
	importPollInterval = time.Second
)

const importUsage = `usage: lintel import --server URL --template NAME_OR_ID [flags] FILE

Uploads a CSV file as an import of a template, previews it, asks for
confirmation, applies it and follows its progress.

  --server URL           Lintel's address, e.g. http://127.0.0.1:8080 (env LINTEL_SERVER)
  --token TOKEN          access token (env LINTEL_TOKEN); or log in with
  --email E --password P (env LINTEL_EMAIL, LINTEL_PASSWORD)
  --template NAME_OR_ID  the template to import into
  --mode upsert|sync     UPSERT (default) adds and updates; SYNC makes the file the whole truth
  --missing keep|archive|delete
                         what SYNC does to records missing from the file (default keep)
  --match card_id|unique_identifier
                         the key rows are matched by (default card_id)
  --overwrite overwrite|keep_existing
                         whether updates replace values or only fill empty ones (default overwrite)
  --invalid abort|skip   whether invalid rows stop the import (default abort; SYNC always aborts)
  --encoding E           the file's encoding when not UTF-8 (WINDOWS-1252, ISO-8859-1, UTF-16LE, …)
  --delimiter D          , ; | or tab (default detected)
  --header-row N         the line the header is on (default 1)
  --map "Header=field"   map the column with this header to a field key or attribute
                         (card_id, unique_identifier, barcode_value, recipient_email,
                         valid_from, expires_at); "Header=" imports the column nowhere.
                         Repeatable; other columns keep the proposed mapping.
  --yes, -y              apply without asking (a destructive SYNC is confirmed with the
                         archive and delete counts of the preview)
  --results FILE         write the per-row results CSV there (the preview's rows when
                         the import did not run)

The preview's counts and every invalid row (line, column, reason) go to
stdout; the prompt and the progress go to stderr. Interrupting a running
import asks the server to cancel it.

Exit codes:
  0  the import was applied
  1  failure: network, server or unexpected error
  2  usage error: bad flags, unknown template or --map header, or a file or
     options the server refused to read (encoding, delimiter, mapping)
  3  refused: invalid rows with --invalid abort, or the confirmation was declined
  4  the import ran but ended FAILED or CANCELLED on the server
`

// apiAccess is how a command reaches a running server: its URL and a
// token, or an operator's e-mail and password to log in with.
type apiAccess struct {
	server, token, email, password string
}

// bind registers the --server, --token, --email and --password flags,
// defaulting to their LINTEL_* environment variables.
func (a *apiAccess) bind(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&a.server, "server", getenv("LINTEL_SERVER"), "")
	fs.StringVar(&a.token, "token", getenv("LINTEL_TOKEN"), "")
	fs.StringVar(&a.email, "email", getenv("LINTEL_EMAIL"), "")
	fs.StringVar(&a.password, "password", getenv("LINTEL_PASSWORD"), "")
}

// repeatedFlag collects the values of a flag given several times, such as
// --map "Header=field" or --filter KEY=VALUE.
type repeatedFlag []string

func (r *repeatedFlag) String() string     { return strings.Join(*r, ", ") }
func (r *repeatedFlag) Set(v string) error { *r = append(*r, v); return nil }

// importArgs is a parsed `lintel import` command line.
type importArgs struct {
	apiAccess
	template, file        string
	options               map[string]any // ImportOptionsInput
	maps                  []mapSpec
	yes                   bool
	results               string
	syncMode, skipInvalid bool
}

// mapSpec is one --map: the column headed header goes to field ("" = none).
type mapSpec struct{ header, field string }

func usageError(format string, args ...any) error {
	return &exitError{code: importExitUsage, err: fmt.Errorf(format, args...)}
}

// enumFlag turns a lower-case choice into its GraphQL enum value.
func enumFlag(name, v string, allowed map[string]string) (string, error) {
	if e, ok := allowed[strings.ToLower(strings.TrimSpace(v))]; ok {
		return e, nil
	}
	choices := make([]string, 0, len(allowed))
	for k := range allowed {
		choices = append(choices, k)
	}
	slices.Sort(choices)
	return "", usageError("--%s: %q is not one of %s", name, v, strings.Join(choices, ", "))
}

func parseImportArgs(args []string, stderr io.Writer, getenv func(string) string) (*importArgs, error) {
	fs := flag.NewFlagSet("lintel import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := &importArgs{options: map[string]any{}}
	a.apiAccess.bind(fs, getenv)
	fs.StringVar(&a.template, "template", "", "")
	mode := fs.String("mode", "", "")
	missing := fs.String("missing", "", "")
	match := fs.String("match", "", "")
	overwrite := fs.String("overwrite", "", "")
	invalid := fs.String("invalid", "", "")
	encoding := fs.String("encoding", "", "")
	delimiter := fs.String("delimiter", "", "")
	headerRow := fs.Int("header-row", 0, "")
	var maps repeatedFlag
	fs.Var(&maps, "map", "")
	fs.BoolVar(&a.yes, "yes", false, "")
	fs.BoolVar(&a.yes, "y", false, "")
	fs.StringVar(&a.results, "results", "", "")

	// Flags may follow the file name: parse, take a positional, parse on.
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, importUsage)
				return nil, &exitError{code: 0, err: err}
			}
			return nil, usageError("%v (see lintel import -h)", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}
	switch {
	case len(positional) == 0:
		return nil, usageError("name the CSV file to import (see lintel import -h)")
	case len(positional) > 1:
		return nil, usageError("one file at a time, got %d: %s", len(positional), strings.Join(positional, " "))
	}
	a.file = positional[0]
	if a.server == "" {
		return nil, usageError("--server is required (or LINTEL_SERVER)")
	}
	if a.template == "" {
		return nil, usageError("--template is required")
	}
	if a.token == "" && (a.email == "" || a.password == "") {
		return nil, usageError("give --token (or LINTEL_TOKEN), or --email and --password (or LINTEL_EMAIL and LINTEL_PASSWORD)")
	}
	set := func(key, flagName, v string, allowed map[string]string) error {
		if v == "" {
			return nil
		}
		e, err := enumFlag(flagName, v, allowed)
		if err != nil {
			return err
		}
		a.options[key] = e
		return nil
	}
	for _, s := range []struct {
		key, flag, v string
		allowed      map[string]string
	}{
		{"mode", "mode", *mode, map[string]string{"upsert": "UPSERT", "sync": "SYNC"}},
		{"missingAction", "missing", *missing, map[string]string{"keep": "KEEP", "archive": "ARCHIVE", "delete": "DELETE"}},
		{"matchOn", "match", *match, map[string]string{"card_id": "CARD_ID", "unique_identifier": "UNIQUE_IDENTIFIER"}},
		{"overwrite", "overwrite", *overwrite, map[string]string{"overwrite": "OVERWRITE", "keep_existing": "KEEP_EXISTING"}},
		{"invalidRows", "invalid", *invalid, map[string]string{"abort": "ABORT", "skip": "SKIP_INVALID", "skip_invalid": "SKIP_INVALID"}},
	} {
		if err := set(s.key, s.flag, s.v, s.allowed); err != nil {
			return nil, err
		}
	}
	a.syncMode = a.options["mode"] == "SYNC"
	a.skipInvalid = a.options["invalidRows"] == "SKIP_INVALID"
	if *missing != "" && !a.syncMode {
		return nil, usageError("--missing only applies with --mode sync")
	}
	if a.syncMode && a.skipInvalid {
		return nil, usageError("--invalid skip cannot be used with --mode sync: a SYNC always aborts on invalid rows")
	}
	if *encoding != "" {
		a.options["encoding"] = *encoding
	}
	if *delimiter != "" {
		switch d := *delimiter; strings.ToLower(d) {
		case ",", ";", "|":
			a.options["delimiter"] = d
		case "tab", `\t`, "\t":
			a.options["delimiter"] = "\t"
		default:
			return nil, usageError(`--delimiter must be ",", ";", "|" or tab, not %q`, d)
		}
	}
	if *headerRow != 0 {
		if *headerRow < 1 {
			return nil, usageError("--header-row must be 1 or more")
		}
		a.options["headerRow"] = *headerRow
	}
	for _, m := range maps {
		i := strings.LastIndexByte(m, '=')
		if i <= 0 {
			return nil, usageError(`--map %q: write "Header=field" (or "Header=" for no field)`, m)
		}
		a.maps = append(a.maps, mapSpec{header: m[:i], field: strings.TrimSpace(m[i+1:])})
	}
	return a, nil
}

// ---------------------------------------------------------------------------
// GraphQL over HTTP

// apiClient speaks Lintel's GraphQL API.
type apiClient struct {
	endpoint *url.URL // …/graphql
	token    string
	http     *http.Client
}

// apiError is one GraphQL error.
type apiError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// code is extensions.code.
func (e apiError) code() string { s, _ := e.Extensions["code"].(string); return s }

// detail is the message with the field reasons of a VALIDATION_FAILED.
func (e apiError) detail() string {
	msg := e.Message
	fields, _ := e.Extensions["fields"].([]any)
	for _, f := range fields {
		m, _ := f.(map[string]any)
		path, _ := m["path"].(string)
		reason, _ := m["reason"].(string)
		msg += fmt.Sprintf("\n  %s: %s", path, reason)
	}
	return msg
}

// apiErrors is a response's error list; its first error speaks for it.
type apiErrors []apiError

func (es apiErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.detail()
		if c := e.code(); c != "" {
			parts[i] += " (" + c + ")"
		}
	}
	return strings.Join(parts, "; ")
}

func (es apiErrors) code() string {
	if len(es) == 0 {
		return ""
	}
	return es[0].code()
}

// errorCode is the GraphQL error code of err, if it is a server's refusal.
func errorCode(err error) string {
	var es apiErrors
	if errors.As(err, &es) {
		return es.code()
	}
	return ""
}

// newAPIClient accepts the server's base address or its /graphql URL.
func newAPIClient(server, token string) (*apiClient, error) {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--server %q: give an http:// or https:// address", server)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/graphql") + "/graphql"
	u.RawQuery, u.Fragment = "", ""
	return &apiClient{endpoint: u, token: token, http: &http.Client{}}, nil
}

func (c *apiClient) send(req *http.Request, out any) error {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/graphql-response+json, application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors apiErrors       `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("the server answered HTTP %d: %s", resp.StatusCode, firstLine(string(body)))
	}
	if len(r.Errors) > 0 {
		return r.Errors
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server answered HTTP %d", resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// do runs a query or mutation and decodes its data into out.
func (c *apiClient) do(ctx context.Context, query string, variables map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.send(req, out)
}

// upload runs an operation whose variable fileVar is the file at path,
// following the GraphQL multipart request specification. The file is
// streamed: the request body is written through a pipe as it is sent.
func (c *apiClient) upload(ctx context.Context, query string, variables map[string]any, fileVar, path string, out any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	variables[fileVar] = nil
	ops, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if err := mw.WriteField("operations", string(ops)); err != nil {
				return err
			}
			if err := mw.WriteField("map", `{"0":["variables.`+fileVar+`"]}`); err != nil {
				return err
			}
			part, err := mw.CreateFormFile("0", filepath.Base(path))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err) // nil: a clean end of the body
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), pr)
	if err != nil {
		pr.Close()
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	err = c.send(req, out)
	pr.Close() // stops the writer if the server answered before reading everything
	return err
}

// get fetches a path relative to the server with the token.
func (c *apiClient) get(ctx context.Context, ref string) (*http.Response, error) {
	u, err := c.endpoint.Parse(ref)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", u.Path, resp.StatusCode, firstLine(string(b)))
	}
	return resp, nil
}

// ---------------------------------------------------------------------------
// The import API

type importCounts struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Unchanged int `json:"unchanged"`
	Archive   int `json:"archive"`
	Delete    int `json:"delete"`
	Invalid   int `json:"invalid"`
	Skipped   int `json:"skipped"`
	Conflict  int `json:"conflict"`
}

const countsSelection = `{ create update unchanged archive delete invalid skipped conflict }`

type columnMapping struct {
	Column int     `json:"column"`
	Header string  `json:"header"`
	Field  *string `json:"field"`
}

type importOptions struct {
	Mode          string `json:"mode"`
	MissingAction string `json:"missingAction"`
	MatchOn       string `json:"matchOn"`
	InvalidRows   string `json:"invalidRows"`
}

type phaseTiming struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
}

// importState is the part of an Import the command reads.
type importState struct {
	ID         string          `json:"id"`
	FileName   string          `json:"fileName"`
	Encoding   string          `json:"encoding"`
	Delimiter  string          `json:"delimiter"`
	Header     []string        `json:"header"`
	RowCount   int             `json:"rowCount"`
	Mapping    []columnMapping `json:"mapping"`
	Options    importOptions   `json:"options"`
	Phase      *string         `json:"phase"`
	Outcome    *string         `json:"outcome"`
	Processed  int             `json:"processed"`
	Total      int             `json:"total"`
	Counts     *importCounts   `json:"counts"`
	ErrorCode  *string         `json:"errorCode"`
	Error      *string         `json:"error"`
	ResultsURL string          `json:"resultsUrl"`
	Timings    []phaseTiming   `json:"timings"`
}

const importSelection = `{ id fileName encoding delimiter header rowCount mapping { column header field }
	options { mode missingAction matchOn invalidRows } phase outcome processed total counts ` + countsSelection + `
	errorCode error resultsUrl timings { phase seconds } }`

type rowError struct {
	Column *int    `json:"column"`
	Field  *string `json:"field"`
	Reason string  `json:"reason"`
}

type invalidRow struct {
	Line   int        `json:"line"`
	Key    string     `json:"key"`
	Errors []rowError `json:"errors"`
}

type previewPage struct {
	Counts      importCounts `json:"counts"`
	InvalidRows struct {
		Edges []struct {
			Node invalidRow `json:"node"`
		} `json:"edges"`
		PageInfo struct {
			HasNextPage bool    `json:"hasNextPage"`
			EndCursor   *string `json:"endCursor"`
		} `json:"pageInfo"`
	} `json:"invalidRows"`
}

// progress is one importProgress report.
type progress struct {
	Phase     *string       `json:"phase"`
	Outcome   *string       `json:"outcome"`
	Processed int           `json:"processed"`
	Total     int           `json:"total"`
	Counts    *importCounts `json:"counts"`
	Error     *string       `json:"error"`
}

func (p progress) done() bool { return p.Outcome != nil && *p.Outcome != "RUNNING" }

func (c *apiClient) login(ctx context.Context, email, password string) (string, error) {
	var out struct {
		Login struct {
			AccessToken string `json:"accessToken"`
		} `json:"login"`
	}
	if err := c.do(ctx, `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
		map[string]any{"e": email, "p": password}, &out); err != nil {
		return "", fmt.Errorf("log in as %s: %w", email, err)
	}
	return out.Login.AccessToken, nil
}

type templateRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// resolveTemplate finds a template by ID or (case-insensitively) by name.
func (c *apiClient) resolveTemplate(ctx context.Context, nameOrID string) (*templateRef, error) {
	var out struct {
		Templates []templateRef `json:"templates"`
	}
	if err := c.do(ctx, `{ templates { id name } }`, nil, &out); err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	for _, t := range out.Templates {
		if t.ID == nameOrID {
			return &t, nil
		}
	}
	var found []templateRef
	for _, t := range out.Templates {
		if strings.EqualFold(strings.TrimSpace(t.Name), strings.TrimSpace(nameOrID)) {
			found = append(found, t)
		}
	}
	if len(found) == 1 {
		return &found[0], nil
	}
	names := make([]string, len(out.Templates))
	for i, t := range out.Templates {
		names[i] = strconv.Quote(t.Name)
	}
	if len(names) == 0 {
		return nil, usageError("no template named or with ID %q: the organisation has no templates", nameOrID)
	}
	return nil, usageError("no template named or with ID %q; the templates are %s", nameOrID, strings.Join(names, ", "))
}

func (c *apiClient) createImport(ctx context.Context, templateID, path string, options map[string]any) (*importState, error) {
	var out struct {
		CreateImport importState `json:"createImport"`
	}
	vars := map[string]any{"t": templateID}
	if len(options) > 0 {
		vars["o"] = options
	}
	err := c.upload(ctx, `mutation($t: ID!, $f: Upload!, $o: ImportOptionsInput) { createImport(templateId: $t, file: $f, options: $o) `+importSelection+` }`,
		vars, "f", path, &out)
	if err != nil {
		return nil, err
	}
	return &out.CreateImport, nil
}

func (c *apiClient) updateMapping(ctx context.Context, id string, mapping []map[string]any) (*importState, error) {
	var out struct {
		UpdateImport importState `json:"updateImport"`
	}
	err := c.do(ctx, `mutation($id: ID!, $m: [ColumnMappingInput!]) { updateImport(id: $id, mapping: $m) `+importSelection+` }`,
		map[string]any{"id": id, "m": mapping}, &out)
	if err != nil {
		return nil, err
	}
	return &out.UpdateImport, nil
}

// preview runs the dry run and pages through every invalid row.
func (c *apiClient) preview(ctx context.Context, id string) (importCounts, []invalidRow, error) {
	var rows []invalidRow
	var counts importCounts
	var after *string
	for {
		var out struct {
			PreviewImport previewPage `json:"previewImport"`
		}
		err := c.do(ctx, `query($id: ID!, $first: Int, $after: String) { previewImport(id: $id, invalidFirst: $first, invalidAfter: $after) {
				counts `+countsSelection+`
				invalidRows { edges { node { line key errors { column field reason } } } pageInfo { hasNextPage endCursor } } } }`,
			map[string]any{"id": id, "first": importInvalidPage, "after": after}, &out)
		if err != nil {
			return counts, nil, err
		}
		p := out.PreviewImport
		if after == nil {
			counts = p.Counts
		}
		for _, e := range p.InvalidRows.Edges {
			rows = append(rows, e.Node)
		}
		if !p.InvalidRows.PageInfo.HasNextPage || p.InvalidRows.PageInfo.EndCursor == nil {
			return counts, rows, nil
		}
		after = p.InvalidRows.PageInfo.EndCursor
	}
}

func (c *apiClient) startImport(ctx context.Context, id string, confirm map[string]any) error {
	vars := map[string]any{"id": id}
	if confirm != nil {
		vars["c"] = confirm
	}
	return c.do(ctx, `mutation($id: ID!, $c: ImportConfirmInput) { startImport(id: $id, confirm: $c) { id } }`, vars, nil)
}

func (c *apiClient) cancelImport(ctx context.Context, id string) error {
	return c.do(ctx, `mutation($id: ID!) { cancelImport(id: $id) { id } }`, map[string]any{"id": id}, nil)
}

func (c *apiClient) getImport(ctx context.Context, id string) (*importState, error) {
	var out struct {
		Import *importState `json:"import"`
	}
	if err := c.do(ctx, `query($id: ID!) { import(id: $id) `+importSelection+` }`, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	if out.Import == nil {
		return nil, fmt.Errorf("import %s not found", id)
	}
	return out.Import, nil
}

// downloadResults writes the import's results CSV to path (through a
// temporary file, so a failed download leaves no half file behind).
func (c *apiClient) downloadResults(ctx context.Context, resultsURL, path string) error {
	resp, err := c.get(ctx, resultsURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("download results: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ---------------------------------------------------------------------------
// Progress over graphql-transport-ws

// errSubscriptionEnded means the stream stopped before the import ended.
var errSubscriptionEnded = errors.New("progress subscription ended early")

// followProgress subscribes to importProgress and calls report with every
// report until the import has ended; it returns the last report.
func (c *apiClient) followProgress(ctx context.Context, id string, report func(progress)) (progress, error) {
	var last progress
	wsURL := *c.endpoint
	wsURL.Scheme = map[string]string{"http": "ws", "https": "wss"}[c.endpoint.Scheme]
	// The server pings every 15 s; a minute of silence is a dead link.
	conn, err := gqlws.Dial(ctx, wsURL.String(), nil, c.token, time.Minute)
	if err != nil {
		return last, fmt.Errorf("open the progress subscription: %w", err)
	}
	defer conn.CloseNow()
	if err := conn.Subscribe(ctx, "1", `subscription($id: ID!) { importProgress(id: $id) { phase outcome processed total error counts `+countsSelection+` } }`,
		map[string]any{"id": id}); err != nil {
		return last, err
	}
	for {
		m, err := conn.Next(ctx, time.Minute)
		if err != nil {
			return last, fmt.Errorf("progress subscription: %w", err)
		}
		switch m.Type {
		case "next":
			var p struct {
				Data *struct {
					ImportProgress progress `json:"importProgress"`
				} `json:"data"`
				Errors apiErrors `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return last, fmt.Errorf("bad progress report: %w", err)
			}
			if len(p.Errors) > 0 {
				return last, p.Errors
			}
			if p.Data == nil {
				continue
			}
			last = p.Data.ImportProgress
			report(last)
			if last.done() {
				_ = conn.Send(ctx, map[string]any{"id": "1", "type": "complete"})
				_ = conn.Close(websocket.StatusNormalClosure, "")
				return last, nil
			}
		case "error":
			var es apiErrors
			_ = json.Unmarshal(m.Payload, &es)
			return last, es
		case "complete":
			return last, errSubscriptionEnded
		}
	}
}

// pollProgress follows the import by querying it, for when the
// subscription is not available.
func (c *apiClient) pollProgress(ctx context.Context, id string, report func(progress)) (progress, error) {
	for {
		imp, err := c.getImport(ctx, id)
		if err != nil {
			return progress{}, err
		}
		p := progress{Phase: imp.Phase, Outcome: imp.Outcome, Processed: imp.Processed, Total: imp.Total, Counts: imp.Counts, Error: imp.Error}
		report(p)
		if p.done() {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(importPollInterval):
		}
	}
}

// progressView prints progress to stderr: a redrawn bar on a terminal,
// plain lines (only when something changed) otherwise.
type progressView struct {
	w    io.Writer
	tty  bool
	last string
	drew bool
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (v *progressView) report(p progress) {
	phase := "QUEUED"
	if p.Phase != nil {
		phase = *p.Phase
	}
	pct := 0
	if p.Total > 0 {
		pct = min(100, p.Processed*100/p.Total)
	}
	line := fmt.Sprintf("%-10s %d/%d rows (%d%%)", phase, p.Processed, p.Total, pct)
	if line == v.last {
		return
	}
	v.last = line
	if v.tty {
		const width = 30
		filled := pct * width / 100
		fmt.Fprintf(v.w, "\r[%s%s] %s\x1b[K", strings.Repeat("#", filled), strings.Repeat(".", width-filled), line)
		v.drew = true
		return
	}
	fmt.Fprintln(v.w, "progress:", line)
}

func (v *progressView) end() {
	if v.drew {
		fmt.Fprintln(v.w)
		v.drew = false
	}
}

// ---------------------------------------------------------------------------
// The command

// resolveMapping applies --map specs to the current mapping and returns
// the complete mapping for updateImport (unlisted columns would map to
// none). A field taken by a --map is taken away from the column the
// proposal gave it to.
func resolveMapping(header []string, current []columnMapping, specs []mapSpec) ([]map[string]any, error) {
	target := map[int]string{}
	for _, m := range current {
		if m.Field != nil {
			target[m.Column] = *m.Field
		}
	}
	explicit := map[int]bool{}
	for _, s := range specs {
		col, err := findColumn(header, s.header)
		if err != nil {
			return nil, err
		}
		if explicit[col] {
			return nil, usageError("--map: column %d (%q) is mapped twice", col, header[col-1])
		}
		explicit[col] = true
		if s.field != "" {
			for c, f := range target {
				if f == s.field && c != col && !explicit[c] {
					delete(target, c)
				}
			}
		}
		target[col] = s.field
	}
	out := make([]map[string]any, 0, len(header))
	for col := 1; col <= len(header); col++ {
		m := map[string]any{"column": col}
		if f := target[col]; f != "" {
			m["field"] = f
		}
		out = append(out, m)
	}
	return out, nil
}

// findColumn returns the 1-based column headed h: an exact match, or else
// one that differs only in case and surrounding spaces.
func findColumn(header []string, h string) (int, error) {
	var exact, loose []int
	for i, name := range header {
		if name == h {
			exact = append(exact, i+1)
		} else if strings.EqualFold(strings.TrimSpace(name), strings.TrimSpace(h)) {
			loose = append(loose, i+1)
		}
	}
	for _, found := range [][]int{exact, loose} {
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		default:
			return 0, usageError("--map: the header %q is in more than one column (%v)", h, found)
		}
	}
	quoted := make([]string, len(header))
	for i, name := range header {
		quoted[i] = strconv.Quote(name)
	}
	return 0, usageError("--map: the file has no column headed %q; its headers are %s", h, strings.Join(quoted, ", "))
}

// refusedByServer turns the server's refusal to read the file or accept the
// options or mapping into a usage error; other errors stay failures.
func refusedByServer(what string, err error) error {
	switch errorCode(err) {
	case "VALIDATION_FAILED", "INVALID_ARGUMENT":
		return &exitError{code: importExitUsage, err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func printMapping(w io.Writer, imp *importState) {
	fmt.Fprintln(w, "Columns:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range imp.Mapping {
		target := "(not imported)"
		if m.Field != nil && *m.Field != "" {
			target = *m.Field
		}
		fmt.Fprintf(tw, "  %d\t%s\t→ %s\n", m.Column, m.Header, target)
	}
	_ = tw.Flush()
}

func printCounts(w io.Writer, title string, c importCounts) {
	fmt.Fprintln(w, title)
	kvs := []struct {
		k string
		v int
	}{{"create", c.Create}, {"update", c.Update}, {"unchanged", c.Unchanged}, {"archive", c.Archive},
		{"delete", c.Delete}, {"invalid", c.Invalid}, {"skipped", c.Skipped}, {"conflict", c.Conflict}}
	width := 1
	for _, kv := range kvs {
		width = max(width, len(strconv.Itoa(kv.v)))
	}
	for _, kv := range kvs {
		fmt.Fprintf(w, "  %-10s %*d\n", kv.k+":", width, kv.v)
	}
}

func printInvalidRows(w io.Writer, header []string, rows []invalidRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "Invalid rows (%d):\n", len(rows))
	for _, r := range rows {
		for _, e := range r.Errors {
			where := ""
			if e.Column != nil && *e.Column > 0 {
				where = fmt.Sprintf("column %d", *e.Column)
				if *e.Column <= len(header) && header[*e.Column-1] != "" {
					where += fmt.Sprintf(" %q", header[*e.Column-1])
				}
				where += ": "
			}
			fmt.Fprintf(w, "  line %d: %s%s\n", r.Line, where, e.Reason)
		}
		if len(r.Errors) == 0 {
			fmt.Fprintf(w, "  line %d: invalid\n", r.Line)
		}
	}
}

// confirm asks on stderr and reads the answer from stdin; anything but
// y or yes (including no input at all) declines.
func confirm(stderr io.Writer, question string) bool {
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	a, err := parseImportArgs(args, stderr, getenv)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == 0 {
			return nil // -h
		}
		return err
	}
	if fi, err := os.Stat(a.file); err != nil {
		return usageError("%v", err)
	} else if fi.IsDir() {
		return usageError("%s is a directory, not a CSV file", a.file)
	}
	c, err := newAPIClient(a.server, a.token)
	if err != nil {
		return err
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

	started := time.Now()
	imp, err := c.createImport(ctx, tmpl.ID, a.file, a.options)
	if err != nil {
		return refusedByServer("upload "+a.file, err)
	}
	id := imp.ID
	ran := false
	defer func() {
		// A draft this command created and did not run is closed, so the
		// history shows it was abandoned.
		if !ran {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = c.cancelImport(cctx, id)
		}
	}()
	fmt.Fprintf(stdout, "Import %s into template %q: %s, %d rows, %s, delimiter %q (uploaded in %.1fs)\n",
		id, tmpl.Name, imp.FileName, imp.RowCount, imp.Encoding, imp.Delimiter, time.Since(started).Seconds())
	if len(a.maps) > 0 {
		mapping, err := resolveMapping(imp.Header, imp.Mapping, a.maps)
		if err != nil {
			return err
		}
		if imp, err = c.updateMapping(ctx, id, mapping); err != nil {
			return refusedByServer("--map", err)
		}
	}
	printMapping(stdout, imp)

	counts, invalid, err := c.preview(ctx, id)
	if err != nil {
		return refusedByServer("preview", err)
	}
	printCounts(stdout, "Preview:", counts)
	printInvalidRows(stdout, imp.Header, invalid)
	writeResults := func() error {
		if a.results == "" {
			return nil
		}
		if err := c.downloadResults(ctx, imp.ResultsURL, a.results); err != nil {
			return fmt.Errorf("write results to %s: %w", a.results, err)
		}
		fmt.Fprintf(stdout, "Results written to %s\n", a.results)
		return nil
	}

	if counts.Invalid > 0 && imp.Options.InvalidRows != "SKIP_INVALID" {
		if err := writeResults(); err != nil {
			fmt.Fprintln(stderr, "lintel:", err)
		}
		hint := " (fix them, or import the valid rows with --invalid skip)"
		if imp.Options.Mode == "SYNC" {
			hint = " (fix them: a SYNC imports only a file without invalid rows)"
		}
		return &exitError{code: importExitRefused, err: fmt.Errorf("refused: %d invalid row(s), nothing was imported%s", counts.Invalid, hint)}
	}
	destructive := imp.Options.Mode == "SYNC" && imp.Options.MissingAction != "KEEP"
	if !a.yes {
		q := fmt.Sprintf("Create %d, update %d", counts.Create, counts.Update)
		if destructive {
			q += fmt.Sprintf(", ARCHIVE %d and DELETE %d", counts.Archive, counts.Delete)
		}
		if counts.Invalid > 0 {
			q += fmt.Sprintf(" and skip %d invalid row(s)", counts.Invalid)
		}
		q += " record(s). Apply?"
		if !confirm(stderr, q) {
			if err := writeResults(); err != nil {
				fmt.Fprintln(stderr, "lintel:", err)
			}
			return &exitError{code: importExitRefused, err: errors.New("not confirmed: nothing was imported")}
		}
	}
	var confirmCounts map[string]any
	if destructive {
		confirmCounts = map[string]any{"archive": counts.Archive, "delete": counts.Delete}
	}
	if err := c.startImport(ctx, id, confirmCounts); err != nil {
		return fmt.Errorf("start import %s: %w", id, err)
	}
	ran = true
	runStart := time.Now()

	view := &progressView{w: stderr, tty: isTerminal(stderr)}
	_, err = c.followProgress(ctx, id, view.report)
	if err != nil && ctx.Err() == nil {
		// Without the subscription (a proxy, an old server, a cut-off
		// subscriber), poll.
		_, err = c.pollProgress(ctx, id, view.report)
	}
	view.end()
	finalCtx := ctx
	if ctx.Err() != nil {
		// Interrupted: ask the server to stop, then report how it ended.
		fmt.Fprintf(stderr, "interrupted: asking the server to cancel import %s\n", id)
		var cancel context.CancelFunc
		finalCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := c.cancelImport(finalCtx, id); err != nil {
			fmt.Fprintln(stderr, "lintel: cancel:", err)
		}
		_, err = c.pollProgress(finalCtx, id, view.report)
		view.end()
	}
	if err != nil {
		return fmt.Errorf("follow import %s: %w", id, err)
	}
	final, err := c.getImport(finalCtx, id)
	if err != nil {
		return err
	}
	outcome := derefString(final.Outcome)
	fmt.Fprintf(stdout, "Import %s %s in %.1fs\n", id, outcome, time.Since(runStart).Seconds())
	if final.Counts != nil {
		printCounts(stdout, "Result:", *final.Counts)
	}
	if a.results != "" {
		if err := c.downloadResults(finalCtx, final.ResultsURL, a.results); err != nil {
			return fmt.Errorf("write results to %s: %w", a.results, err)
		}
		fmt.Fprintf(stdout, "Results written to %s\n", a.results)
	}
	if outcome != "SUCCEEDED" {
		msg := derefString(final.Error)
		if msg == "" {
			msg = "no reason given"
		}
		return &exitError{code: importExitNotDone, err: fmt.Errorf("import %s %s: %s", id, outcome, msg)}
	}
	if final.Counts != nil && final.Counts.Conflict > 0 {
		fmt.Fprintf(stderr, "note: %d record(s) changed after the preview and were left as edited (outcome CONFLICT in the results)\n", final.Counts.Conflict)
	}
	return nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
