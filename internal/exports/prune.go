package exports

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/lintel/lintel/internal/audit"
)

// PruneExpired deletes the files of exports past their retention and marks
// those exports EXPIRED, each with its audit event in the same
// transaction. It returns how many files went.
func (s *Service) PruneExpired(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE exports SET status = 'EXPIRED', updated_at = now()
			WHERE status = 'SUCCEEDED' AND expires_at <= now() RETURNING id, org_id, file_name, expires_at`)
		if err != nil {
			return fmt.Errorf("exports: expire: %w", err)
		}
		type gone struct {
			id, org uuid.UUID
			name    string
			at      time.Time
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gone, error) {
			var g gone
			return g, r.Scan(&g.id, &g.org, &g.name, &g.at)
		})
		if err != nil {
			return fmt.Errorf("exports: expire: %w", err)
		}
		for _, g := range list {
			if _, err := tx.Exec(ctx, `DELETE FROM export_chunks WHERE export_id = $1`, g.id); err != nil {
				return fmt.Errorf("exports: delete file of %s: %w", g.id, err)
			}
			if err := audit.WritePgx(ctx, tx, audit.Event{OrgID: g.org, Action: "export.expire", TargetKind: "export", TargetID: g.id.String(),
				Details: map[string]any{"fileName": g.name, "expiredAt": g.at}}); err != nil {
				return err
			}
		}
		n = len(list)
		return nil
	})
	return n, err
}

// PruneArgs is the periodic job that deletes expired export files.
type PruneArgs struct{}

// Kind names the job in River's table.
func (PruneArgs) Kind() string { return "export_prune" }

// PruneWorker runs PruneExpired.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	svc *Service
}

// NewPruneWorker returns the worker.
func NewPruneWorker(s *Service) *PruneWorker { return &PruneWorker{svc: s} }

// Work prunes once.
func (w *PruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	_, err := w.svc.PruneExpired(ctx)
	return err
}
