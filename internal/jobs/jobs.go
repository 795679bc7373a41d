// Package jobs runs Lintel's background work on River, with jobs stored in
// the same PostgreSQL. Each capability registers its workers here; this
// package owns the client's wiring and the housekeeping jobs.
package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	"github.com/lintel/lintel/internal/imports"
	"github.com/lintel/lintel/internal/store"
)

// Client is the River client type Lintel uses.
type Client = river.Client[*sql.Tx]

// Config tunes the client.
type Config struct {
	MaxWorkers int
	// RescueStuckJobsAfter is how long a job may run before another process
	// takes it over (its process presumably died). Must exceed every job's
	// timeout.
	RescueStuckJobsAfter time.Duration
	// ImportRetention deletes finished imports (file, rows, results) this
	// long after they ended; zero keeps them forever.
	ImportRetention time.Duration
}

// NewClient builds the River client over the shared pool. The driver gets a
// pgx listener so job notifications (new work, cancellation) reach every
// process instead of waiting for the next poll.
func NewClient(db *store.DB, log *slog.Logger, cfg Config, register ...func(*river.Workers) error) (*Client, error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &pruneSessionsWorker{db: db, importRetention: cfg.ImportRetention}); err != nil {
		return nil, fmt.Errorf("jobs: register prune worker: %w", err)
	}
	for _, r := range register {
		if err := r(workers); err != nil {
			return nil, fmt.Errorf("jobs: register worker: %w", err)
		}
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 10
	}
	if cfg.RescueStuckJobsAfter <= 0 {
		cfg.RescueStuckJobsAfter = time.Hour
	}
	client, err := river.NewClient[*sql.Tx](riverdatabasesql.NewWithPgxListener(db.SQL, db.Pool), &river.Config{
		Logger: log,
		// Jobs without their own timeout get a minute, or less when stuck
		// jobs are rescued sooner (River requires timeout < rescue).
		JobTimeout:           min(time.Minute, cfg.RescueStuckJobsAfter/2),
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}},
		Workers:              workers,
		RescueStuckJobsAfter: cfg.RescueStuckJobsAfter,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
				return PruneSessionsArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: new river client: %w", err)
	}
	return client, nil
}

// PruneSessionsArgs asks for expired and long-revoked refresh tokens, and
// imports past their retention, to be deleted.
type PruneSessionsArgs struct{}

// Kind names the job in River's table.
func (PruneSessionsArgs) Kind() string { return "prune_sessions" }

type pruneSessionsWorker struct {
	river.WorkerDefaults[PruneSessionsArgs]
	db              *store.DB
	importRetention time.Duration
}

// Work deletes refresh tokens that can no longer be used (revoked ones are
// kept a day so reuse detection can still name them) and imports past
// their retention.
func (w *pruneSessionsWorker) Work(ctx context.Context, _ *river.Job[PruneSessionsArgs]) error {
	_, err := w.db.Pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at < now() OR revoked_at < now() - interval '1 day'`)
	if err != nil {
		return fmt.Errorf("jobs: prune refresh tokens: %w", err)
	}
	if _, err := imports.PruneSavedPlans(ctx, w.db.Pool); err != nil {
		return err
	}
	if w.importRetention > 0 {
		if _, err := w.db.Pool.Exec(ctx, `WITH gone AS (DELETE FROM imports WHERE outcome <> 'RUNNING' AND COALESCE(finished_at, created_at) < now() - $1::interval RETURNING id)
			DELETE FROM import_rows WHERE import_id IN (SELECT id FROM gone)`,
			w.importRetention.String()); err != nil {
			return fmt.Errorf("jobs: prune imports: %w", err)
		}
	}
	return nil
}
