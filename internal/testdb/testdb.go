// Package testdb gives every test its own freshly migrated PostgreSQL
// database.
//
// A test binary uses it like this:
//
//	func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		url := testdb.URL(t) // empty, migrated, private to this test
//		...
//	}
//
// The first URL call in a test binary starts one PostgreSQL for the whole
// binary (internal/pgembed, in a temporary directory, fsync off) or, if
// TEST_DATABASE_URL is set, uses that server instead; it must let the user
// CREATE DATABASE and be PostgreSQL 13 or later (DROP DATABASE ... WITH
// (FORCE)). It then creates a template database and applies all migrations
// to it once. Every URL call clones the template with CREATE DATABASE ...
// TEMPLATE, which copies files instead of re-running migrations, and drops
// the clone when the test ends.
//
// All names carry a random suffix per test binary, so binaries running in
// parallel (go test ./...) never collide, even on a shared
// TEST_DATABASE_URL server. A binary killed before Main returns leaves its
// databases behind on such a server (lintel_template_* and test_*), and its
// temporary cluster directory in os.TempDir().
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel/lintel/internal/pgembed"
	"github.com/lintel/lintel/internal/store"
)

// EnvURL names the environment variable that points the tests at an
// existing server instead of an embedded one.
const EnvURL = "TEST_DATABASE_URL"

// serverSettings make the throwaway cluster fast: nothing in it has to
// survive a machine crash.
var serverSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
}

var (
	mainRunning atomic.Bool

	setupOnce sync.Once
	env       *environment
	setupErr  error

	// createMu serialises CREATE DATABASE ... TEMPLATE: PostgreSQL refuses
	// to copy a template while another session uses it, and a concurrent
	// CREATE DATABASE counts as such a session.
	createMu sync.Mutex
	seq      atomic.Int64
)

// environment is the per-binary state, built on the first URL call.
type environment struct {
	server   *pgembed.Server // nil with TEST_DATABASE_URL
	tmpDir   string          // the embedded cluster's DataDir
	baseURL  string          // maintenance database on the server
	admin    *pgxpool.Pool   // connected to baseURL, for CREATE/DROP DATABASE
	suffix   string          // random, unique to this test binary
	template string
}

// Main runs the tests and then tears down what URL set up: the template
// database and, for the embedded server, the whole cluster. Call it from
// TestMain as os.Exit(testdb.Main(m)). Nothing starts unless a test calls
// URL, so packages whose tests are filtered out stay fast.
func Main(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	mainRunning.Store(false)
	if env != nil {
		if err := env.close(); err != nil {
			fmt.Fprintf(os.Stderr, "testdb: cleanup: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// URL returns the connection URL of a fresh database for this test, created
// from the migrated template database and dropped at test cleanup. Safe for
// parallel tests.
func URL(t testing.TB) string {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("testdb: the package needs `func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }`")
	}
	setupOnce.Do(func() { env, setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("testdb: %v", setupErr)
	}

	name := fmt.Sprintf("test_%s_%d", env.suffix, seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := env.createFromTemplate(ctx, name); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: a test that leaked a connection must not keep its
		// database alive.
		if _, err := env.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(env.baseURL, name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return u
}

func setup() (_ *environment, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	raw := make([]byte, 6)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	e := &environment{suffix: hex.EncodeToString(raw)}
	e.template = "lintel_template_" + e.suffix
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()

	if e.baseURL = os.Getenv(EnvURL); e.baseURL == "" {
		// The cluster may run as the postgres user (when tests run as
		// root), which has to reach the directory: hence 0755, not
		// MkdirTemp's 0700.
		if e.tmpDir, err = os.MkdirTemp("", "lintel-testdb-*"); err != nil {
			return nil, err
		}
		if err := os.Chmod(e.tmpDir, 0o755); err != nil {
			return nil, err
		}
		e.server, err = pgembed.Start(ctx, pgembed.Options{DataDir: e.tmpDir, Settings: serverSettings})
		if err != nil {
			return nil, fmt.Errorf("start embedded PostgreSQL: %w", err)
		}
		e.baseURL = e.server.URL("postgres")
	}

	cfg, err := pgxpool.ParseConfig(e.baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvURL, err)
	}
	cfg.MaxConns = 4
	if e.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+quote(e.template)); err != nil {
		return nil, fmt.Errorf("create template database: %w", err)
	}
	templateURL, err := withDatabase(e.baseURL, e.template)
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx, templateURL); err != nil {
		return nil, fmt.Errorf("migrate template database %s: %w", e.template, err)
	}
	return e, nil
}

// createFromTemplate clones the template. PostgreSQL refuses while another
// session is connected to the template (SQLSTATE 55006); within this binary
// createMu prevents that, but the migration's own connections may still be
// closing right after setup, so that error is retried for a while.
func (e *environment) createFromTemplate(ctx context.Context, name string) error {
	createMu.Lock()
	defer createMu.Unlock()
	sql := "CREATE DATABASE " + quote(name) + " TEMPLATE " + quote(e.template)
	for {
		_, err := e.admin.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			if err != nil {
				return fmt.Errorf("create database %s: %w", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create database %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *environment) close() error {
	var errs []error
	if e.admin != nil {
		// Only an external server keeps the template; an embedded cluster
		// is deleted as a whole below.
		if e.server == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(e.template)+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop template database: %w", err))
			}
			cancel()
		}
		e.admin.Close()
	}
	if e.server != nil {
		if err := e.server.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.tmpDir != "" {
		if err := os.RemoveAll(e.tmpDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }

// withDatabase returns base pointed at database name. base is a URL
// (postgres://...) or a keyword/value string (host=... user=...), where a
// later dbname= overrides an earlier one.
func withDatabase(base, name string) (string, error) {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvURL, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return base + " dbname=" + name, nil
}
