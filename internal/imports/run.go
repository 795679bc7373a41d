package imports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/revocation"
	"github.com/lintel/lintel/internal/store"
)

// TopicFor is the event topic of an import's progress.
func TopicFor(id uuid.UUID) string { return "import:" + id.String() }

// Progress is one progress report of a running import.
type Progress struct {
	ImportID  uuid.UUID `json:"importId"`
	Phase     *Phase    `json:"phase"`
	Outcome   *Outcome  `json:"outcome"`
	Processed int       `json:"processed"`
	Total     int       `json:"total"`
	Counts    *Counts   `json:"counts,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// ProgressOf is an import's current progress.
func ProgressOf(imp *Import) Progress {
	return Progress{ImportID: imp.ID, Phase: imp.Phase, Outcome: imp.Outcome, Processed: imp.Processed, Total: imp.Total, Counts: imp.Counts, Error: imp.ErrorMessage}
}

// ParseProgress decodes a progress event's data.
func ParseProgress(data json.RawMessage) (Progress, error) {
	var p Progress
	err := json.Unmarshal(data, &p)
	return p, err
}

// publish stores and announces progress. It runs outside the import's
// transaction (on the pool), so subscribers see progress while the
// transaction is still open.
func (s *Service) publish(ctx context.Context, imp *Import) {
	counts, _ := json.Marshal(imp.Counts)
	if imp.Counts == nil {
		counts = nil
	}
	if _, err := s.db.Pool.Exec(ctx, `UPDATE imports SET phase = $2, processed = $3, total = $4, counts = COALESCE($5, counts), updated_at = now() WHERE id = $1`,
		imp.ID, imp.Phase, imp.Processed, imp.Total, counts); err != nil {
		s.log.Warn("import progress not stored", "import", imp.ID, "err", err)
	}
	s.announce(ctx, imp)
}

func (s *Service) announce(ctx context.Context, imp *Import) {
	if err := announceOn(ctx, s.db.Pool, imp); err != nil {
		s.log.Warn("import progress not announced", "import", imp.ID, "err", err)
	}
}

// announceOn sends imp's progress on db. On a transaction PostgreSQL
// delivers it at the commit: an import's end is announced by the
// transaction that records it, so no subscriber can miss a recorded end
// (a process killed, or a job's context ended, between a commit and a
// separate announcement would leave them at the previous phase for good).
func announceOn(ctx context.Context, db events.Execer, imp *Import) error {
	data, _ := json.Marshal(ProgressOf(imp))
	return events.NotifyPgx(ctx, db, events.Event{Org: imp.OrgID, Topic: TopicFor(imp.ID), Kind: "PROGRESS", ID: imp.ID.String(), Data: data})
}

// PreviewResult is a dry run's outcome.
type PreviewResult struct {
	Import *Import
	Counts Counts
}

// Preview runs the import without changing any record and keeps every
// row's outcome for the caller to page through (OPERATOR).
func (s *Service) Preview(ctx context.Context, id uuid.UUID) (*PreviewResult, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	imp, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	if imp.Outcome != nil && *imp.Outcome == Running {
		return nil, apperr.New(apperr.FailedPrecondition, "import %s is running", id)
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, imp.TemplateID, false)
	if err != nil {
		return nil, err
	}
	if err := checkMapping(t, imp.Header, imp.Mapping); err != nil {
		return nil, err
	}
	var counts Counts
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// Taken before the plan reads any record (see savePlan).
		var snapshot string
		if err := tx.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&snapshot); err != nil {
			return fmt.Errorf("imports: take a snapshot: %w", err)
		}
		if _, err := stage(ctx, tx, openFile(ctx, s.db.Pool, id), imp, t, nil); err != nil {
			return err
		}
		pl := newPlanner(imp, t)
		if err := pl.buildPlan(ctx, tx, false); err != nil {
			return err
		}
		if counts, err = countPlan(ctx, tx); err != nil {
			return err
		}
		if err := savePhotoReport(ctx, tx, id); err != nil {
			return err
		}
		if err := pl.saveRows(ctx, tx, "PREVIEW"); err != nil {
			return err
		}
		if err := savePlan(ctx, tx, imp, t, snapshot); err != nil {
			return err
		}
		c, _ := json.Marshal(counts)
		if _, err := tx.Exec(ctx, `UPDATE imports SET preview_counts = $2, previewed_at = now() WHERE id = $1`, id, string(c)); err != nil {
			return fmt.Errorf("imports: record preview: %w", err)
		}
		// The run joins these rows to find edits made since; fresh
		// statistics keep that join a hash join.
		_, err := tx.Exec(ctx, `ANALYZE import_rows`)
		return err
	})
	if err != nil {
		return nil, err
	}
	imp, err = s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	return &PreviewResult{Import: imp, Counts: counts}, nil
}

// Confirm repeats the destructive counts the caller saw in the preview.
type Confirm struct {
	Archive int `json:"archive"`
	Delete  int `json:"delete"`
}

// destructive reports whether the import may archive or delete records.
func (o Options) destructive() bool { return o.Mode == Sync && o.MissingAction != Keep }

// Start queues the import to run (OPERATOR). A destructive SYNC must have
// been previewed and confirmed with the counts the preview showed. Only one
// import per template runs at a time.
func (s *Service) Start(ctx context.Context, id uuid.UUID, confirm *Confirm) (*Import, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.Bun.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("imports: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	imp, err := s.get(ctx, sqlRow{tx.Tx}, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	if imp.Outcome != nil && (*imp.Outcome == Running || *imp.Outcome == Succeeded) {
		return nil, apperr.New(apperr.FailedPrecondition, "import %s is already %s", id, map[Outcome]string{Running: "running", Succeeded: "applied"}[*imp.Outcome])
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, imp.TemplateID, false)
	if err != nil {
		return nil, err
	}
	if err := checkMapping(t, imp.Header, imp.Mapping); err != nil {
		return nil, err
	}
	if imp.Options.destructive() {
		if imp.PreviewCounts == nil || imp.PreviewedAt == nil || imp.PreviewedAt.Before(imp.UpdatedAt.Add(-time.Second)) {
			return nil, apperr.New(apperr.FailedPrecondition, "a SYNC that archives or deletes records must be previewed before it starts")
		}
		want := Confirm{Archive: imp.PreviewCounts.Archive, Delete: imp.PreviewCounts.Delete}
		if confirm == nil || *confirm != want {
			e := apperr.New(apperr.FailedPrecondition, "confirm that this import archives %d and deletes %d record(s)", want.Archive, want.Delete)
			e.Extra = map[string]any{"archive": want.Archive, "delete": want.Delete}
			return nil, e
		}
	}
	conf, _ := json.Marshal(confirm)
	_, err = tx.Tx.ExecContext(ctx, `UPDATE imports SET outcome = 'RUNNING', phase = 'QUEUED', processed = 0, total = row_count, counts = NULL,
		cancel_requested = false, error_code = NULL, error_message = NULL, started_at = now(), finished_at = NULL, updated_at = now(),
		timings = '{}', confirm = $2::jsonb WHERE id = $1`, id, string(conf))
	if err != nil {
		if _, ok := store.UniqueViolation(err); ok {
			var other string
			_ = s.db.Pool.QueryRow(ctx, `SELECT id FROM imports WHERE template_id = $1 AND outcome = 'RUNNING'`, imp.TemplateID).Scan(&other)
			e := apperr.New(apperr.Conflict, "another import of this template is running (%s): wait for it or cancel it", other)
			e.Extra = map[string]any{"runningImportId": other}
			return nil, e
		}
		return nil, fmt.Errorf("imports: mark queued: %w", err)
	}
	if _, err := s.river.InsertTx(ctx, tx.Tx, JobArgs{ImportID: id}, &river.InsertOpts{MaxAttempts: 3}); err != nil {
		return nil, fmt.Errorf("imports: queue job: %w", err)
	}
	if err := audit.Write(ctx, tx, audit.Event{OrgID: imp.OrgID, Action: "import.start", TargetKind: "import", TargetID: id.String(),
		Details: map[string]any{"options": imp.Options, "confirm": confirm}}); err != nil {
		return nil, err
	}
	// QUEUED is announced by this transaction, so it reaches subscribers
	// before anything the job (which can start at the commit) announces.
	queued, running := PhaseQueued, Running
	data, _ := json.Marshal(Progress{ImportID: id, Phase: &queued, Outcome: &running, Total: imp.RowCount})
	if err := events.Notify(ctx, tx, events.Event{Org: imp.OrgID, Topic: TopicFor(id), Kind: "PROGRESS", ID: id.String(), Data: data}); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("imports: commit start: %w", err)
	}
	return s.get(ctx, s.db.Pool, p.OrgID, id)
}

// Cancel stops an import (OPERATOR): a queued or running one rolls back at
// its next check, leaving every record as it was; a draft is simply closed.
func (s *Service) Cancel(ctx context.Context, id uuid.UUID) (*Import, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	imp, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	var stmt, what string
	switch {
	case imp.Outcome == nil || *imp.Outcome == Failed:
		stmt, what = `UPDATE imports SET outcome = 'CANCELLED', finished_at = now(), updated_at = now() WHERE id = $1`, "closed"
	case *imp.Outcome == Running:
		stmt, what = `UPDATE imports SET cancel_requested = true, updated_at = now() WHERE id = $1`, "requested"
	default:
		return nil, apperr.New(apperr.FailedPrecondition, "import %s has already ended (%s)", id, *imp.Outcome)
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stmt, id); err != nil {
			return fmt.Errorf("imports: cancel: %w", err)
		}
		return s.audit(ctx, tx, imp, "import.cancel", map[string]any{"cancel": what})
	})
	if err != nil {
		return nil, err
	}
	return s.get(ctx, s.db.Pool, p.OrgID, id)
}

// JobArgs is the River job that runs an import.
type JobArgs struct {
	ImportID uuid.UUID `json:"import_id"`
}

// Kind names the job.
func (JobArgs) Kind() string { return "import" }

// Worker runs import jobs.
type Worker struct {
	river.WorkerDefaults[JobArgs]
	svc *Service
}

// NewWorker returns the import job worker.
func NewWorker(s *Service) *Worker { return &Worker{svc: s} }

// Timeout bounds one run (River's default minute is far too short).
func (w *Worker) Timeout(*river.Job[JobArgs]) time.Duration { return w.svc.cfg.JobTimeout }

// errCancelled stops a run that was asked to stop.
var errCancelled = errors.New("import cancelled")

// Work runs the import once. It is idempotent: an import that is no longer
// RUNNING (finished, or cancelled before it started) is left alone, and a
// run that died midway committed nothing, so running again is safe.
func (w *Worker) Work(ctx context.Context, job *river.Job[JobArgs]) error {
	s := w.svc
	var org uuid.UUID
	if err := s.db.Pool.QueryRow(ctx, `SELECT org_id FROM imports WHERE id = $1`, job.Args.ImportID).Scan(&org); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("imports: load job's import: %w", err)
	}
	imp, err := s.get(ctx, s.db.Pool, org, job.Args.ImportID)
	if err != nil {
		return err
	}
	if imp.Outcome == nil || *imp.Outcome != Running {
		return nil
	}
	if imp.CancelRequested {
		return s.finish(ctx, imp, Cancelled, "CANCELLED", "cancelled before it started")
	}
	err = s.run(ctx, imp)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errCancelled):
		return s.finish(ctx, imp, Cancelled, "CANCELLED", "cancelled; no record was changed")
	}
	if e, ok := apperr.As(err); ok {
		return s.finish(ctx, imp, Failed, string(e.Code), e.Error())
	}
	if job.Attempt < job.MaxAttempts && ctx.Err() == nil {
		s.log.Warn("import run failed; River will retry", "import", imp.ID, "attempt", job.Attempt, "err", err)
		return err
	}
	s.log.Error("import failed", "import", imp.ID, "err", err)
	return s.finish(context.WithoutCancel(ctx), imp, Failed, string(apperr.Internal), "the import failed and no record was changed: "+err.Error())
}

func (s *Service) finish(ctx context.Context, imp *Import, o Outcome, code, msg string) error {
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE imports SET outcome = $2, phase = 'DONE', error_code = $3, error_message = $4, finished_at = now(), updated_at = now() WHERE id = $1`,
			imp.ID, o, code, msg); err != nil {
			return fmt.Errorf("imports: record outcome: %w", err)
		}
		action := map[Outcome]string{Failed: "import.fail", Cancelled: "import.cancelled"}[o]
		if err := s.audit(ctx, tx, imp, action, map[string]any{"fileName": imp.FileName, "sha256": fmt.Sprintf("%x", imp.FileSHA256), "code": code, "reason": msg}); err != nil {
			return err
		}
		done := PhaseDone
		imp.Outcome, imp.Phase, imp.ErrorCode, imp.ErrorMessage = &o, &done, code, msg
		return announceOn(ctx, tx, imp)
	})
}

func (s *Service) cancelRequested(ctx context.Context, id uuid.UUID) bool {
	var c bool
	_ = s.db.Pool.QueryRow(ctx, `SELECT cancel_requested FROM imports WHERE id = $1`, id).Scan(&c)
	return c
}

// run executes the import in one transaction.
func (s *Service) run(ctx context.Context, imp *Import) error {
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, imp.OrgID, imp.TemplateID, false)
	if err != nil {
		return err
	}
	timings := map[string]float64{}
	phase := func(ph Phase) time.Time {
		p := ph
		imp.Phase = &p
		s.publish(ctx, imp)
		return time.Now()
	}
	var counts Counts
	var refused *apperr.Error
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		start := phase(PhaseParsing)
		// From the plan to the commit no one else writes this template's
		// records: edits are refused (records take the template row FOR
		// SHARE NOWAIT), so the plan cannot go stale under us.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM card_templates WHERE id = $1 FOR UPDATE`, t.ID); err != nil {
			return fmt.Errorf("imports: lock template: %w", err)
		}
		pl := newPlanner(imp, t)
		restoreStart := time.Now()
		reused, err := restorePlan(ctx, tx, imp, t)
		if err != nil {
			return err
		}
		if reused {
			pl.steps[StepRestorePlan] = time.Since(restoreStart).Seconds()
		}
		if reused {
			imp.Processed = imp.RowCount
			timings["parsing"] = 0
			start = phase(PhaseValidating)
			if err := pl.exec(ctx, tx, "tune transaction", `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'`); err != nil {
				return err
			}
			if err := pl.findMissing(ctx, tx); err != nil {
				return err
			}
		} else {
			cancelled := false
			rows, err := stage(ctx, tx, openFile(ctx, s.db.Pool, imp.ID), imp, t, func(n int) {
				imp.Processed = n
				s.publish(ctx, imp)
				if s.cancelRequested(ctx, imp.ID) {
					cancelled = true
				}
			})
			if err != nil {
				return err
			}
			if cancelled || s.cancelRequested(ctx, imp.ID) {
				return errCancelled
			}
			imp.Processed = rows
			timings["parsing"] = time.Since(start).Seconds()

			start = phase(PhaseValidating)
			if err := pl.buildPlan(ctx, tx, imp.PreviewedAt != nil); err != nil {
				return err
			}
		}
		if err := dropSavedPlan(ctx, tx, imp.ID); err != nil {
			return err
		}
		if counts, err = countPlan(ctx, tx); err != nil {
			return err
		}
		imp.Counts = &counts
		timings["validating"] = time.Since(start).Seconds()
		if s.cancelRequested(ctx, imp.ID) {
			return errCancelled
		}
		refused = s.refusal(imp, counts)
		if refused == nil {
			start = phase(PhaseApplying)
			if err := s.endCredentials(ctx, tx, imp); err != nil {
				return err
			}
			if err := pl.apply(ctx, tx); err != nil {
				return err
			}
			if imp.Options.SendInvitations && s.invitations != nil {
				if _, err := s.invitations.InviteImported(ctx, tx, imp.OrgID, nil, `SELECT create_id FROM import_plan WHERE outcome = 'CREATE'`); err != nil {
					return err
				}
			}
			timings["applying"] = time.Since(start).Seconds()
		}
		start = phase(PhaseNotifying)
		// From here on this transaction writes the import's row, so no more
		// progress is published from outside it (that would wait on it).
		if err := savePhotoReport(ctx, tx, imp.ID); err != nil {
			return err
		}
		if err := pl.saveRows(ctx, tx, "RESULT"); err != nil {
			return err
		}
		if refused != nil {
			// The rows say why; nothing else changes.
			return s.commitRefusal(ctx, tx, imp, counts, refused)
		}
		if s.cancelRequested(ctx, imp.ID) {
			return errCancelled
		}
		timings["notifying"] = time.Since(start).Seconds()
		for step, secs := range pl.steps {
			timings["step: "+step] = secs
		}
		c, _ := json.Marshal(counts)
		tm, _ := json.Marshal(timings)
		if _, err := tx.Exec(ctx, `UPDATE imports SET outcome = 'SUCCEEDED', phase = 'DONE', processed = $2, counts = $3, timings = timings || $4::jsonb,
				finished_at = now(), updated_at = now(), attempts = attempts + 1 WHERE id = $1`, imp.ID, imp.Processed, string(c), string(tm)); err != nil {
			return fmt.Errorf("imports: record success: %w", err)
		}
		if err := s.audit(ctx, tx, imp, "import.apply", map[string]any{"fileName": imp.FileName, "sha256": fmt.Sprintf("%x", imp.FileSHA256),
			"options": imp.Options, "counts": counts}); err != nil {
			return err
		}
		if err := events.NotifyPgx(ctx, tx, events.Event{Org: imp.OrgID, Topic: records.TopicFor(t.ID), Kind: records.ChangeBulk, ID: imp.ID.String()}); err != nil {
			return err
		}
		succeeded, done := Succeeded, PhaseDone
		imp.Outcome, imp.Phase = &succeeded, &done
		return announceOn(ctx, tx, imp)
	})
	if err != nil {
		return err
	}
	if refused == nil && s.invitations != nil && (imp.Options.SendInvitations || imp.Options.NotifyRemoved) {
		s.invitations.Kick(ctx)
	}
	return nil
}

// endCredentials revokes the credentials of the records the import
// archives or deletes and, when asked, tells their cardholders, before the
// records change (deleted ones must still be readable).
func (s *Service) endCredentials(ctx context.Context, tx pgx.Tx, imp *Import) error {
	if imp.Options.Mode != Sync || imp.Options.MissingAction == Keep {
		return nil
	}
	for _, removal := range []struct {
		outcome, reason string
		deleted         bool
	}{{"ARCHIVE", revocation.Archived, false}, {"DELETE", revocation.Deleted, true}} {
		sel := `SELECT id FROM import_missing WHERE outcome = '` + removal.outcome + `'`
		if _, err := revocation.Records(ctx, revocation.Pgx(tx), imp.OrgID, sel, removal.reason, string(records.CredentialRevoked)); err != nil {
			return err
		}
		// Deleted records were archived before (and told then).
		if imp.Options.NotifyRemoved && !removal.deleted && s.invitations != nil {
			if _, err := s.invitations.NotifyRemoved(ctx, tx, imp.OrgID, sel, removal.deleted); err != nil {
				return err
			}
		}
	}
	return nil
}

// refusal says why a planned import must not be applied, or nil.
func (s *Service) refusal(imp *Import, c Counts) *apperr.Error {
	if c.Invalid > 0 && imp.Options.InvalidRows == Abort {
		return apperr.New(apperr.ValidationFailed, "%d invalid row(s): nothing was imported (see the results, or choose SKIP_INVALID)", c.Invalid)
	}
	if imp.Options.destructive() && imp.Confirm != nil && (c.Archive != imp.Confirm.Archive || c.Delete != imp.Confirm.Delete) {
		e := apperr.New(apperr.FailedPrecondition, "the records changed since the preview: this import would now archive %d and delete %d record(s), not the %d and %d confirmed; nothing was changed",
			c.Archive, c.Delete, imp.Confirm.Archive, imp.Confirm.Delete)
		e.Extra = map[string]any{"archive": c.Archive, "delete": c.Delete}
		return e
	}
	return nil
}

func (s *Service) commitRefusal(ctx context.Context, tx pgx.Tx, imp *Import, c Counts, why *apperr.Error) error {
	cj, _ := json.Marshal(c)
	if _, err := tx.Exec(ctx, `UPDATE imports SET outcome = 'FAILED', phase = 'DONE', counts = $2, error_code = $3, error_message = $4,
			finished_at = now(), updated_at = now(), attempts = attempts + 1 WHERE id = $1`, imp.ID, string(cj), string(why.Code), why.Error()); err != nil {
		return fmt.Errorf("imports: record refusal: %w", err)
	}
	if err := s.audit(ctx, tx, imp, "import.refused", map[string]any{"reason": why.Error(), "counts": c}); err != nil {
		return err
	}
	failed, done := Failed, PhaseDone
	imp.Outcome, imp.Phase, imp.ErrorCode, imp.ErrorMessage = &failed, &done, string(why.Code), why.Error()
	return announceOn(ctx, tx, imp)
}

// sqlRow adapts a database/sql transaction to rowQuerier.
type sqlRow struct{ tx *sql.Tx }

func (q sqlRow) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	return q.tx.QueryRowContext(ctx, query, args...)
}
