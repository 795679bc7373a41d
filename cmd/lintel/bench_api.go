package main

// The "api" scenario of `lintel bench all`: a console's most common read —
// a page of 50 records with their template — over GraphQL by many
// concurrent clients, against the very SQL statements that request runs,
// replayed straight through pgx at the same concurrency.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/requestid"
	"github.com/lintel/lintel/internal/store"
)

// apiBenchQuery is the page a console asks for: 50 records, each with its
// fields and its template.
const apiBenchQuery = `query Page($t: ID!) {
  records(templateId: $t, first: 50) {
    edges { cursor node { id cardId uniqueIdentifier status validFrom expiresAt version updatedAt
      fields { key label value } template { id name symbology } } }
    pageInfo { hasNextPage endCursor }
  }
}`

// apiBenchOpts are the api scenario's sizes.
type apiBenchOpts struct {
	clients  int           // concurrent clients
	duration time.Duration // how long each side runs
	records  int           // records the template holds
	replicas int           // in-process servers the clients are spread over
}

// apiThroughput is one side's figures.
type apiThroughput struct {
	Requests  int     `json:"requests"`
	PerSecond float64 `json:"requestsPerSecond"`
	P50ms     float64 `json:"p50Ms"`
	P99ms     float64 `json:"p99Ms"`
}

// apiBenchResult is what the api scenario measured.
type apiBenchResult struct {
	Clients  int           `json:"clients"`
	Seconds  float64       `json:"seconds"`
	Replicas int           `json:"replicas"`
	GraphQL  apiThroughput `json:"graphql"`
	Raw      apiThroughput `json:"rawPgx"`
	Ratio    float64       `json:"ratio"`
	// Statements is the SQL one GraphQL request ran, as the raw side
	// replays it.
	Statements []string `json:"statements"`
}

// sqlRecorder is a pgx tracer that keeps the statements run for one
// request, recognised by its X-Request-ID.
type sqlRecorder struct {
	requestID string
	mu        sync.Mutex
	seen      []recordedQuery
}

// recordedQuery is one statement as the server sent it.
type recordedQuery struct {
	SQL  string
	Args []any
}

func (r *sqlRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	if requestid.From(ctx) == r.requestID {
		r.mu.Lock()
		r.seen = append(r.seen, recordedQuery{SQL: q.SQL, Args: q.Args})
		r.mu.Unlock()
	}
	return ctx
}

func (r *sqlRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// runAPIBench sets up a template with o.records records on one or more
// in-process servers and runs both sides for o.duration each.
func runAPIBench(ctx context.Context, o apiBenchOpts, dbURL string, getenv func(string) string, logf func(string, ...any)) (*apiBenchResult, error) {
	cfg, _, cleanup, err := benchConfig("lintel bench all", dbURL, "", getenv)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	benchMasterKey(cfg)
	recorder := &sqlRecorder{requestID: "bench-api-" + requestid.New()}
	var bases []string
	var first *store.DB
	for i := range o.replicas {
		opts := store.Options{MaxConns: int32(cfg.DBMaxConns)}
		if i == 0 {
			opts.Tracer = recorder
		}
		db, err := store.Open(ctx, dbURL, opts)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if i == 0 {
			first = db
		}
		base, stop, err := serveInProcess(ctx, cfg, db)
		if err != nil {
			return nil, err
		}
		defer stop()
		bases = append(bases, base)
	}

	org, api, err := benchAdmin(ctx, first, bases[0], "Bench api")
	if err != nil {
		return nil, err
	}
	_, tmpl, err := benchFilledTemplate(ctx, first, org, "Bench api", o.records)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"query": apiBenchQuery, "variables": map[string]any{"t": tmpl.ID}})
	if err != nil {
		return nil, err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.clients, DialContext: (&net.Dialer{}).DialContext}}
	defer client.CloseIdleConnections()
	// post sends the page query and reads the answer into buf (each client
	// reuses its own, so reading 50 KB answers does not load the machine's
	// collector: the raw side reads without allocating either).
	post := func(ctx context.Context, base, requestID string, buf *bytes.Buffer) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+api.token)
		if requestID != "" {
			req.Header.Set("X-Request-ID", requestID)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		buf.Reset()
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			return nil, err
		}
		data := buf.Bytes()
		if resp.StatusCode != http.StatusOK || bytes.Contains(data, []byte(`"errors"`)) {
			return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
		}
		return data, nil
	}

	// One request, checked in full and with its SQL recorded.
	var page struct {
		Data struct {
			Records struct {
				Edges []struct {
					Node struct {
						Template struct{ ID string } `json:"template"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"records"`
		} `json:"data"`
	}
	data, err := post(ctx, bases[0], recorder.requestID, &bytes.Buffer{})
	if err != nil {
		return nil, fmt.Errorf("the page query: %w", err)
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, fmt.Errorf("the page query: %w", err)
	}
	edges := page.Data.Records.Edges
	if want := min(50, o.records); len(edges) != want || edges[0].Node.Template.ID != tmpl.ID.String() {
		return nil, fmt.Errorf("the page query returned %d records (want %d) or the wrong template", len(edges), want)
	}
	recorder.mu.Lock()
	statements := slices.Clone(recorder.seen)
	recorder.mu.Unlock()
	if len(statements) == 0 {
		return nil, errors.New("the page query ran no SQL: nothing to replay")
	}
	res := &apiBenchResult{Clients: o.clients, Seconds: o.duration.Seconds(), Replicas: o.replicas}
	for _, q := range statements {
		res.Statements = append(res.Statements, q.SQL)
	}

	buffers := make([]bytes.Buffer, o.clients)
	graphqlOnce := func(ctx context.Context, worker, i int) error {
		_, err := post(ctx, bases[(worker+i)%len(bases)], "", &buffers[worker])
		return err
	}
	// The raw side: its own pool of the server's size, every statement of
	// the request in turn, with the same parameters, every row read
	// (undecoded: the limit).
	poolCfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	poolCfg.MaxConns = int32(cfg.DBMaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	rawOnce := func(ctx context.Context, _, _ int) error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		for _, q := range statements {
			rows, err := conn.Query(ctx, q.SQL, q.Args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				_ = rows.RawValues()
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	// The sides take turns, a quarter of the duration each time, so that
	// what drifts on a shared machine (autovacuum after a large import,
	// other tenants' CPU) weighs on both alike.
	warm := min(time.Second, o.duration)
	sides := []struct {
		name    string
		fn      func(context.Context, int, int) error
		out     *apiThroughput
		lat     []time.Duration
		elapsed time.Duration
	}{{name: "raw pgx", fn: rawOnce, out: &res.Raw}, {name: "GraphQL", fn: graphqlOnce, out: &res.GraphQL}}
	for i := range sides {
		if _, _, err := hammer(ctx, o.clients, warm, sides[i].fn); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", sides[i].name, err)
		}
	}
	logf("api: raw pgx and GraphQL, %d clients, %s each, in %d turns (after a %s warm-up)", o.clients, o.duration, apiTurns, warm)
	for range apiTurns {
		for i := range sides {
			lat, elapsed, err := hammer(ctx, o.clients, o.duration/apiTurns, sides[i].fn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sides[i].name, err)
			}
			sides[i].lat = append(sides[i].lat, lat...)
			sides[i].elapsed += elapsed
		}
	}
	for _, side := range sides {
		t, err := throughput(side.lat, side.elapsed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", side.name, err)
		}
		*side.out = t
	}
	res.Ratio = res.GraphQL.PerSecond / res.Raw.PerSecond
	return res, nil
}

// apiTurns is how many turns each side of the api scenario takes.
const apiTurns = 4

// hammer runs fn from clients goroutines, back to back, for d, and
// returns each request's latency and the time it all took; any error stops
// the run.
func hammer(ctx context.Context, clients int, d time.Duration, fn func(ctx context.Context, worker, i int) error) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([][]time.Duration, clients)
	errs := make([]error, clients)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := fn(ctx, w, i); err != nil {
					if ctx.Err() == nil {
						errs[w] = err
						cancel()
					}
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	return slices.Concat(lat...), elapsed, nil
}

// throughput sums up requests that took elapsed in all.
func throughput(lat []time.Duration, elapsed time.Duration) (apiThroughput, error) {
	if len(lat) == 0 {
		return apiThroughput{}, errors.New("no request finished")
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e6
	}
	return apiThroughput{Requests: len(lat), PerSecond: float64(len(lat)) / elapsed.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99)}, nil
}

// serveInProcess runs a Lintel server (app and HTTP) on db, on a free
// local port; stop ends both.
func serveInProcess(ctx context.Context, cfg *config.Config, db *store.DB) (base string, stop func(), err error) {
	a, err := newApp(ctx, cfg, db, quietLogger())
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.stop()
		return "", nil, err
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); a.stop() }, nil
}

// benchAdmin makes an organisation named prefix + the time, with an
// administrator logged in through the API at base.
func benchAdmin(ctx context.Context, db *store.DB, base, prefix string) (uuid.UUID, *apiClient, error) {
	authSvc := auth.NewService(db.Bun, nil, auth.DefaultConfig())
	org, err := authSvc.CreateOrganisation(ctx, prefix+" "+time.Now().UTC().Format("2006-01-02 15:04:05.000"))
	if err != nil {
		return uuid.Nil, nil, err
	}
	email := "bench-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "") + "@bench.example"
	password := auth.RandomPassword()
	if _, err := authSvc.CreateOperator(ctx, auth.NewOperator{OrgID: org, Email: email, Name: "lintel bench", Role: caller.RoleAdmin, Password: password}); err != nil {
		return uuid.Nil, nil, err
	}
	api, err := newAPIClient(base, "")
	if err != nil {
		return uuid.Nil, nil, err
	}
	if api.token, err = api.login(ctx, email, password); err != nil {
		return uuid.Nil, nil, err
	}
	return org, api, nil
}
