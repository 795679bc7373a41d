package exports

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/requestid"
)

// JobArgs is the River job that writes an export's file.
type JobArgs struct {
	ExportID uuid.UUID `json:"export_id"`
	// RequestID is the request that asked for the export; the job's audit
	// event names it.
	RequestID string `json:"request_id,omitempty"`
}

// Kind names the job.
func (JobArgs) Kind() string { return "export" }

// Queue is the River queue exports run in, apart from the default queue:
// each running export holds two database connections for its whole run,
// so a burst of exports must not take every worker (and the pool) from
// imports and the API.
const Queue = "exports"

// QueueWorkers is how many exports one process runs at once.
const QueueWorkers = 2

// InsertOpts puts export jobs in their queue; a failed run is tried twice
// more.
func (JobArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue, MaxAttempts: 3} }

// Worker runs export jobs.
type Worker struct {
	river.WorkerDefaults[JobArgs]
	svc *Service
}

// NewWorker returns the export job worker.
func NewWorker(s *Service) *Worker { return &Worker{svc: s} }

// Timeout bounds one run (River's default minute is too short for a
// million rows on a busy server).
func (w *Worker) Timeout(*river.Job[JobArgs]) time.Duration { return w.svc.cfg.JobTimeout }

// NextRetry retries a failed run after a second per attempt so far:
// someone is usually waiting for the file, and River's default backoff
// (attempt⁴ seconds) would keep them waiting for minutes.
func (w *Worker) NextRetry(job *river.Job[JobArgs]) time.Time {
	return time.Now().Add(time.Duration(job.Attempt) * time.Second)
}

// Work writes the export's file once. It is idempotent: an export that has
// ended is left alone, and a run that died midway committed nothing, so
// running again starts over cleanly.
func (w *Worker) Work(ctx context.Context, job *river.Job[JobArgs]) error {
	s := w.svc
	ctx = requestid.With(ctx, job.Args.RequestID)
	var org uuid.UUID
	if err := s.db.Pool.QueryRow(ctx, `SELECT org_id FROM exports WHERE id = $1`, job.Args.ExportID).Scan(&org); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("exports: load job's export: %w", err)
	}
	e, err := s.get(ctx, s.db.Pool, org, job.Args.ExportID)
	if err != nil {
		return err
	}
	if e.Status != Queued && e.Status != Running {
		return nil
	}
	if _, err := s.db.Pool.Exec(ctx, `UPDATE exports SET status = 'RUNNING', started_at = COALESCE(started_at, now()), processed = 0,
			attempts = attempts + 1, updated_at = now() WHERE id = $1`, e.ID); err != nil {
		return fmt.Errorf("exports: mark running: %w", err)
	}
	e.Status, e.Processed = Running, 0
	s.announce(ctx, e)
	err = s.run(ctx, e)
	if err == nil {
		return nil
	}
	if ae, ok := apperr.As(err); ok {
		return s.fail(context.WithoutCancel(ctx), e, string(ae.Code), ae.Message)
	}
	// A run cut short by a shutdown is retried like any other: the export
	// stays RUNNING and another replica (or this one, restarted) redoes it.
	if job.Attempt < job.MaxAttempts {
		s.log.Warn("export run failed; River will retry", "export", e.ID, "attempt", job.Attempt, "err", err)
		return err
	}
	// The cause (a database error, a timeout) is for the log; the export
	// names the request so an operator can find it there.
	s.log.Error("export failed", "export", e.ID, "err", err, "request_id", job.Args.RequestID)
	return s.fail(context.WithoutCancel(ctx), e, string(apperr.Internal), "the export failed; no file was written (see the server log for export "+e.ID.String()+")")
}

// fail records that the export ended without a file, with its audit event.
func (s *Service) fail(ctx context.Context, e *Export, code, msg string) error {
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE exports SET status = 'FAILED', error_code = $2, error_message = $3, finished_at = now(), updated_at = now()
				WHERE id = $1`, e.ID, code, msg); err != nil {
			return fmt.Errorf("exports: record failure: %w", err)
		}
		if err := audit.WritePgx(ctx, tx, audit.Event{OrgID: e.OrgID, Action: "export.fail", TargetKind: "export", TargetID: e.ID.String(),
			Details: map[string]any{"fileName": e.FileName, "code": code, "reason": msg}}); err != nil {
			return err
		}
		e.Status, e.ErrorCode, e.Error = Failed, &code, &msg
		return announceOn(ctx, tx, e)
	})
}

// statementFor builds the statement of e's export as things are now.
func (s *Service) statementFor(ctx context.Context, e *Export) (*statement, []Column, error) {
	if e.Kind == KindAudit {
		return auditStatement(e.OrgID, *e.AuditFilter), auditColumns, nil
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, e.OrgID, *e.TemplateID, false)
	if err != nil {
		return nil, nil, err
	}
	defs := reapply(t, e.Role, e.Columns)
	if len(defs) == 0 {
		return nil, nil, apperr.New(apperr.FailedPrecondition, "none of the export's columns can be exported any more (the template changed)")
	}
	var b binder
	st := recordStatement(e.OrgID, t.ID, t.CardIDFormat, *e.RecordFilter, defs, b.bind, false)
	st.args = b.args
	return st, columnsOf(defs), nil
}

// run writes the file: one connection reads the rows in a consistent
// snapshot and this goroutine writes them as CSV, while a second
// connection stores the chunks in the transaction that finally marks the
// export SUCCEEDED.
func (s *Service) run(ctx context.Context, e *Export) error {
	st, cols, err := s.statementFor(ctx, e)
	if err != nil {
		return err
	}
	save, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("exports: begin: %w", err)
	}
	defer func() { _ = save.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := save.Exec(ctx, `DELETE FROM export_chunks WHERE export_id = $1`, e.ID); err != nil {
		return fmt.Errorf("exports: clear chunks: %w", err)
	}
	sink := newSink(ctx, save, e.ID, s.cfg.ChunkSize)
	var n int64
	readErr := pgx.BeginTxFunc(ctx, s.db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The instant format relies on ISO output. JIT compiling the
		// formatting expressions costs more than it saves. The count and
		// the rows see the same snapshot, so the progress total is exact.
		if _, err := tx.Exec(ctx, `SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL jit = off`); err != nil {
			return fmt.Errorf("exports: set up: %w", err)
		}
		var total int64
		if err := tx.QueryRow(ctx, st.countSQL, st.args...).Scan(&total); err != nil {
			return fmt.Errorf("exports: count rows: %w", err)
		}
		t := int(total)
		e.Total = &t
		s.publish(ctx, e)
		if err := sink.header(cols, e.Options.BOM); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, st.selectSQL, st.args...)
		if err != nil {
			return fmt.Errorf("exports: read rows: %w", err)
		}
		defer rows.Close()
		last := time.Now()
		for rows.Next() {
			if err := sink.row(rows.RawValues()); err != nil {
				return err
			}
			n++
			if n%4096 == 0 && time.Since(last) >= 500*time.Millisecond {
				last = time.Now()
				e.Processed = int(n)
				s.publish(ctx, e)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("exports: read rows: %w", err)
		}
		return nil
	})
	size, sum, err := sink.close()
	if readErr != nil {
		return readErr
	}
	if err != nil {
		return err
	}
	var expires any
	if s.cfg.Retention > 0 {
		expires = time.Now().Add(s.cfg.Retention)
	}
	colsJSON, _ := json.Marshal(cols)
	if _, err := save.Exec(ctx, `UPDATE exports SET status = 'SUCCEEDED', processed = $2, total = $2, row_count = $2, file_size = $3, file_sha256 = $4,
			columns = $5, finished_at = now(), expires_at = $6, updated_at = now() WHERE id = $1`, e.ID, n, size, sum, string(colsJSON), expires); err != nil {
		return fmt.Errorf("exports: record success: %w", err)
	}
	keys := make([]string, len(cols))
	for i, c := range cols {
		keys[i] = c.Key
	}
	details := map[string]any{"kind": e.Kind, "fileName": e.FileName, "sha256": fmt.Sprintf("%x", sum), "size": size, "rows": n,
		"columns": keys, "options": e.Options, "startedBy": e.CreatedBy}
	if e.RecordFilter != nil {
		details["filter"] = fromRecordFilter(*e.RecordFilter)
		details["template"] = e.TemplateID
	} else {
		details["filter"] = e.AuditFilter
	}
	if err := audit.WritePgx(ctx, save, audit.Event{OrgID: e.OrgID, Action: "export.complete", TargetKind: "export", TargetID: e.ID.String(),
		Details: details}); err != nil {
		return err
	}
	done, err := s.get(ctx, save, e.OrgID, e.ID)
	if err != nil {
		return err
	}
	if err := announceOn(ctx, save, done); err != nil {
		return err
	}
	if err := save.Commit(ctx); err != nil {
		return fmt.Errorf("exports: commit: %w", err)
	}
	return nil
}

// publish stores and announces progress, from outside the transaction
// that will commit the file, so subscribers see it while the job runs.
func (s *Service) publish(ctx context.Context, e *Export) {
	if _, err := s.db.Pool.Exec(ctx, `UPDATE exports SET processed = $2, total = $3, updated_at = now() WHERE id = $1`, e.ID, e.Processed, e.Total); err != nil {
		s.log.Warn("export progress not stored", "export", e.ID, "err", err)
	}
	s.announce(ctx, e)
}

// sink turns rows into the file: it writes them as CSV into a buffer,
// and hands each full buffer (a chunk) to a goroutine that inserts it on
// the storing transaction while the rows keep coming. A few buffers
// circulate between the two, so memory stays bounded whatever the
// export's size, and a slow insert slows the reading down instead of
// piling data up.
type sink struct {
	ctx    context.Context
	size   int
	cur    []byte
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	failed atomic.Pointer[error]
	hash   hash.Hash
	bytes  int64
}

// sinkBuffers is how many chunk buffers circulate: one being filled, one
// being inserted, and two queued between them.
const sinkBuffers = 4

func newSink(ctx context.Context, tx pgx.Tx, id uuid.UUID, size int) *sink {
	k := &sink{ctx: ctx, size: size, full: make(chan []byte, sinkBuffers-2), free: make(chan []byte, sinkBuffers), done: make(chan struct{}), hash: sha256.New()}
	for range sinkBuffers - 1 {
		k.free <- make([]byte, 0, size+size/8)
	}
	k.cur = make([]byte, 0, size+size/8)
	go func() {
		defer close(k.done)
		seq := 0
		for chunk := range k.full {
			if k.failed.Load() == nil {
				if _, err := tx.Exec(ctx, `INSERT INTO export_chunks (export_id, seq, data) VALUES ($1, $2, $3)`, id, seq, chunk); err != nil {
					err = fmt.Errorf("exports: store chunk %d: %w", seq, err)
					k.failed.Store(&err)
				}
				seq++
			}
			k.free <- chunk[:0]
		}
	}()
	return k
}

func (k *sink) err() error {
	if p := k.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// header writes the optional byte-order mark and the header line; header
// cells are neutralised like values (a field label may start with "=").
func (k *sink) header(cols []Column, bom bool) error {
	if bom {
		k.cur = append(k.cur, "\ufeff"...)
	}
	cells := make([][]byte, len(cols))
	for i, c := range cols {
		cells[i] = []byte(c.Header)
	}
	return k.row(cells)
}

// row writes one row; a nil cell (SQL NULL) is written empty.
func (k *sink) row(cells [][]byte) error {
	k.cur = appendRow(k.cur, cells)
	if len(k.cur) >= k.size {
		k.ship()
	}
	return k.err()
}

// ship hands the current buffer to the inserter and takes a free one,
// waiting for the inserter when all are in use.
func (k *sink) ship() {
	k.hash.Write(k.cur)
	k.bytes += int64(len(k.cur))
	k.full <- k.cur
	select {
	case k.cur = <-k.free:
	case <-k.ctx.Done():
		k.cur = make([]byte, 0, k.size)
	}
}

// close stores the last chunk, waits for every insert, and returns the
// file's size and SHA-256.
func (k *sink) close() (int64, []byte, error) {
	if len(k.cur) > 0 && k.err() == nil && k.ctx.Err() == nil {
		k.hash.Write(k.cur)
		k.bytes += int64(len(k.cur))
		k.full <- k.cur
		k.cur = nil
	}
	close(k.full)
	<-k.done
	if err := k.err(); err != nil {
		return 0, nil, err
	}
	if err := k.ctx.Err(); err != nil {
		return 0, nil, err
	}
	return k.bytes, k.hash.Sum(nil), nil
}
