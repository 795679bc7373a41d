package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"
)

// SendArgs is the job that sends the due e-mail (SendDue).
type SendArgs struct{}

// Kind names the job in River's table.
func (SendArgs) Kind() string { return "outbox_send" }

// InsertOpts keep at most one send job queued or running: one run sends
// everything due, so more would only wait for each other's locks. Finished
// jobs do not count, so a kick after a run always queues a new one.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}},
	}
}

// SendInterval is how often the periodic job looks for due e-mail: retries
// whose time has come, and messages whose Kick was lost (a crash between
// commit and kick).
const SendInterval = 30 * time.Second

// PeriodicJob returns the job that runs the send job every SendInterval,
// and once at start.
func PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(SendInterval), func() (river.JobArgs, *river.InsertOpts) {
		return SendArgs{}, nil
	}, &river.PeriodicJobOpts{RunOnStart: true})
}

// Worker runs SendDue.
type Worker struct {
	river.WorkerDefaults[SendArgs]
	svc *Service
}

// NewWorker returns the send worker.
func NewWorker(s *Service) *Worker { return &Worker{svc: s} }

// Timeout lets a run send for longer than River's default minute; SendDue
// stops in time for the deadline.
func (w *Worker) Timeout(*river.Job[SendArgs]) time.Duration { return w.svc.cfg.JobTimeout }

// Work sends what is due.
//
// A Kick while this job runs adds no job (see InsertOpts), and River marks
// a finished job completed a little after Work returns. A message
// committed after our last look, whose Kick came before that mark, would
// then wait for the periodic job. So the job marks itself completed first,
// from which moment every Kick queues a new job, and then looks once more.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	sent, trouble, err := w.svc.drain(ctx)
	if err != nil || trouble {
		w.logSent(ctx, sent)
		return err
	}
	tx, err := w.svc.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: complete the send job: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("outbox: complete the send job: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: complete the send job: %w", err)
	}
	more, _, err := w.svc.drain(ctx)
	w.logSent(ctx, sent+more)
	return err
}

func (w *Worker) logSent(ctx context.Context, sent int) {
	if sent > 0 {
		w.svc.log.InfoContext(ctx, "e-mail sent", "count", sent)
	}
}
