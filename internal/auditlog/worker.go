package auditlog

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/lintel/lintel/internal/store"
)

// PruneArgs is the periodic job that applies the audit retention.
type PruneArgs struct{}

// Kind names the job in River's table.
func (PruneArgs) Kind() string { return "audit_prune" }

// PruneWorker deletes audit events past their retention.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	db        *store.DB
	retention time.Duration
}

// NewPruneWorker returns the worker; a zero retention keeps every event.
func NewPruneWorker(db *store.DB, retention time.Duration) *PruneWorker {
	return &PruneWorker{db: db, retention: retention}
}

// Work prunes once.
func (w *PruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	_, err := Prune(ctx, w.db, w.retention)
	return err
}
