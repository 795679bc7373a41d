// Package store opens Lintel's PostgreSQL database: one pgx pool with bun on
// top of it, and applies the embedded schema migrations (Lintel's own and
// River's).
package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// DB bundles the single connection pool with the bun handle built on it.
// Everything in the process shares these: bun for queries, the pool for COPY,
// LISTEN and River.
type DB struct {
	Pool *pgxpool.Pool
	SQL  *sql.DB
	Bun  *bun.DB
}

// Options tunes the pool.
type Options struct {
	// MaxConns caps the pool; zero keeps pgx's default (max(4, cores)).
	MaxConns int32
	// Tracer, when set, sees every statement of the pool (benchmarks use
	// it to replay a request's SQL).
	Tracer pgx.QueryTracer
}

// Open connects to databaseURL and checks the connection.
func Open(ctx context.Context, databaseURL string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse database URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to database: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	return &DB{Pool: pool, SQL: sqlDB, Bun: bun.NewDB(sqlDB, pgdialect.New())}, nil
}

// Close releases every connection.
func (db *DB) Close() {
	_ = db.Bun.Close()
	db.Pool.Close()
}

// Ping reports whether the database answers; /readyz uses it.
func (db *DB) Ping(ctx context.Context) error {
	return db.Pool.Ping(ctx)
}

// Numbered turns bun's "?" placeholders into PostgreSQL's $1, $2…, for
// statements written for bun and sent through the pgx pool; q must have
// no "?" of its own (such as the jsonb ? operator).
func Numbered(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
