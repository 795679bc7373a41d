package exports

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/requestid"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/templates"
)

// Config tunes exports.
type Config struct {
	// Retention is how long a finished export's file is kept; zero keeps
	// it until the export is deleted.
	Retention time.Duration
	// LinkTTL is how long a download link works.
	LinkTTL time.Duration
	// JobTimeout bounds one run; it must stay below River's stuck-job
	// rescue interval.
	JobTimeout time.Duration
	// ChunkSize is how much of a file one stored chunk holds.
	ChunkSize int
}

// DefaultConfig keeps files a day, signs links for 15 minutes and lets a
// run take 30 minutes.
func DefaultConfig() Config {
	return Config{Retention: 24 * time.Hour, LinkTTL: 15 * time.Minute, JobTimeout: 30 * time.Minute, ChunkSize: 1 << 20}
}

// Service runs exports, scoped to the caller's organisation.
type Service struct {
	db        *store.DB
	templates *templates.Service
	cfg       Config
	links     *Links
	log       *slog.Logger
	river     *river.Client[*sql.Tx]
}

// NewService returns an export service whose download links are signed
// with linkKey (see DeriveLinkKey); call SetQueue before starting exports.
func NewService(db *store.DB, ts *templates.Service, cfg Config, linkKey []byte, log *slog.Logger) *Service {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultConfig().ChunkSize
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultConfig().LinkTTL
	}
	return &Service{db: db, templates: ts, cfg: cfg, links: NewLinks(linkKey, cfg.LinkTTL), log: log}
}

// SetQueue gives the service the River client that runs export jobs (the
// client needs the service's worker first, hence the two steps).
func (s *Service) SetQueue(c *river.Client[*sql.Tx]) { s.river = c }

// Links returns the service's link signer.
func (s *Service) Links() *Links { return s.links }

// Columns lists the columns the caller may export from template
// templateID, in file order: the default of StartRecords (VIEWER).
func (s *Service) Columns(ctx context.Context, templateID uuid.UUID) ([]Column, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, templateID, false)
	if err != nil {
		return nil, err
	}
	defs, _ := chooseColumns(t, p.Role, nil)
	return columnsOf(defs), nil
}

// StartInput is what a records export is asked for.
type StartInput struct {
	Filter records.Filter
	// Columns are column keys; nil means every column the caller may
	// export.
	Columns []string
	Options Options
	// FileName is the download's name; empty makes one from the template's
	// name and the time.
	FileName string
}

// StartRecords queues an export of template templateID's records matching
// the filter (VIEWER; the role decides the columns).
func (s *Service) StartRecords(ctx context.Context, templateID uuid.UUID, in StartInput) (*Export, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, templateID, false)
	if err != nil {
		return nil, err
	}
	var fs apperr.Fields
	checkRecordFilter(in.Filter, &fs)
	name := checkFileName(in.FileName, t.Name, &fs)
	if err := fs.Err(); err != nil {
		return nil, err
	}
	cols, err := chooseColumns(t, p.Role, in.Columns)
	if err != nil {
		return nil, err
	}
	filter, _ := json.Marshal(fromRecordFilter(in.Filter))
	return s.start(ctx, p, &t.ID, KindRecords, columnsOf(cols), filter, in.Options, name)
}

// StartAudit queues an export of the organisation's audit trail matching
// the filter (ADMIN).
func (s *Service) StartAudit(ctx context.Context, f auditlog.Filter, o Options, fileName string) (*Export, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, err
	}
	var fs apperr.Fields
	if err := f.Validate("filter"); err != nil {
		e, _ := apperr.As(err)
		fs = append(fs, e.Fields...)
	}
	name := checkFileName(fileName, "audit", &fs)
	if err := fs.Err(); err != nil {
		return nil, err
	}
	filter, _ := json.Marshal(f)
	return s.start(ctx, p, nil, KindAudit, auditColumns, filter, o, name)
}

func (s *Service) start(ctx context.Context, p *caller.Principal, templateID *uuid.UUID, kind Kind, cols []Column, filter []byte, o Options, fileName string) (*Export, error) {
	if s.river == nil {
		return nil, errors.New("exports: no job queue")
	}
	id := uuid.New()
	colsJSON, _ := json.Marshal(cols)
	opts, _ := json.Marshal(o)
	keys := make([]string, len(cols))
	for i, c := range cols {
		keys[i] = c.Key
	}
	err := s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`INSERT INTO exports (id, org_id, kind, template_id, created_by, created_by_email, role, filter, columns, options, file_name, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'QUEUED')`,
			id, p.OrgID, kind, templateID, p.OperatorID, p.Email, p.Role, string(filter), string(colsJSON), string(opts), fileName).Exec(ctx); err != nil {
			return fmt.Errorf("exports: insert: %w", err)
		}
		details := map[string]any{"kind": kind, "fileName": fileName, "filter": json.RawMessage(filter), "columns": keys, "options": o}
		if templateID != nil {
			details["template"] = *templateID
		}
		if err := audit.Write(ctx, tx, audit.Event{OrgID: p.OrgID, Action: "export.start", TargetKind: "export", TargetID: id.String(), Details: details}); err != nil {
			return err
		}
		_, err := s.river.InsertTx(ctx, tx.Tx, JobArgs{ExportID: id, RequestID: requestid.From(ctx)}, nil)
		if err != nil {
			return fmt.Errorf("exports: queue job: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	s.announce(ctx, e)
	return s.withLink(p, e), nil
}

func checkRecordFilter(f records.Filter, fs *apperr.Fields) {
	if f.Status != nil && !slices.Contains([]records.Status{records.Active, records.Suspended, records.Archived}, *f.Status) {
		fs.Add("filter.status", "unknown status %q", *f.Status)
	}
	if f.CredentialState != nil && !slices.Contains([]records.CredentialState{records.NotInvited, records.Invited, records.CredentialActive,
		records.CredentialReset, records.CredentialRevoked, records.CredentialExpired}, *f.CredentialState) {
		fs.Add("filter.credentialState", "unknown credential state %q", *f.CredentialState)
	}
	if len(f.Search) > 200 {
		fs.Add("filter.search", "must be at most 200 characters")
	}
}

// checkFileName validates a requested download name, or makes one from
// base and the time.
func checkFileName(name, base string, fs *apperr.Fields) string {
	name = strings.TrimSpace(name)
	if name == "" {
		var b strings.Builder
		for _, r := range base {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case unicode.IsSpace(r) || r == '.':
				b.WriteRune('-')
			}
		}
		stem := strings.Trim(b.String(), "-")
		if stem == "" {
			stem = "export"
		}
		return stem + "-" + time.Now().UTC().Format("20060102-150405") + ".csv"
	}
	switch {
	case utf8.RuneCountInString(name) > 200:
		fs.Add("options.fileName", "must be at most 200 characters")
	case strings.ContainsAny(name, `/\`) || strings.IndexFunc(name, unicode.IsControl) >= 0 || name == "." || name == "..":
		fs.Add("options.fileName", "must be a plain file name (no path separators or control characters)")
	}
	return name
}

const exportColumns = `id, org_id, kind, template_id, created_by_email, role, filter, columns, options, file_name, status, processed, total,
	row_count, file_size, file_sha256, error_code, error_message, created_at, started_at, finished_at, expires_at`

func scanExport(row pgx.Row) (*Export, error) {
	var e Export
	var filter, cols, opts, sum []byte
	var total, rows, size *int64
	var processed int64
	if err := row.Scan(&e.ID, &e.OrgID, &e.Kind, &e.TemplateID, &e.CreatedBy, &e.Role, &filter, &cols, &opts, &e.FileName, &e.Status,
		&processed, &total, &rows, &size, &sum, &e.ErrorCode, &e.Error, &e.CreatedAt, &e.StartedAt, &e.FinishedAt, &e.FileExpiresAt); err != nil {
		return nil, err
	}
	e.Processed = int(processed)
	e.Total, e.RowCount, e.Size = intPtr(total), intPtr(rows), intPtr(size)
	if sum != nil {
		h := hex.EncodeToString(sum)
		e.SHA256 = &h
	}
	if err := json.Unmarshal(cols, &e.Columns); err != nil {
		return nil, fmt.Errorf("exports: decode columns of %s: %w", e.ID, err)
	}
	_ = json.Unmarshal(opts, &e.Options)
	switch e.Kind {
	case KindRecords:
		var f recordFilter
		if err := json.Unmarshal(filter, &f); err != nil {
			return nil, fmt.Errorf("exports: decode filter of %s: %w", e.ID, err)
		}
		rf := f.filter()
		e.RecordFilter = &rf
	case KindAudit:
		var f auditlog.Filter
		if err := json.Unmarshal(filter, &f); err != nil {
			return nil, fmt.Errorf("exports: decode filter of %s: %w", e.ID, err)
		}
		e.AuditFilter = &f
	}
	return &e, nil
}

func intPtr(p *int64) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

// rowQuerier reads one row; pools, connections and transactions all do.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Service) get(ctx context.Context, db rowQuerier, org, id uuid.UUID) (*Export, error) {
	e, err := scanExport(db.QueryRow(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = $1 AND org_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.NotFoundf("export %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("exports: load %s: %w", id, err)
	}
	return e, nil
}

// visible reports whether p may see e at all: audit trail exports are for
// ADMINs only.
func visible(p *caller.Principal, e *Export) bool {
	return e.Kind != KindAudit || p.Allows(caller.RoleAdmin)
}

// withLink gives e a download link for p when there is a file and p holds
// at least the role the export's columns were chosen for (an OPERATOR may
// see that an ADMIN exported sensitive fields, not download them).
func (s *Service) withLink(p *caller.Principal, e *Export) *Export {
	if e.Status == Succeeded && p.Allows(e.Role) {
		u, exp := s.links.link(e.ID, e.OrgID, e.FileExpiresAt)
		e.DownloadURL, e.DownloadURLExpiresAt = &u, &exp
	}
	return e
}

// Get returns one export of the caller's organisation (VIEWER; audit trail
// exports ADMIN), with a download link when the caller may have one.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Export, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	e, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	if !visible(p, e) {
		return nil, apperr.NotFoundf("export %s not found", id)
	}
	return s.withLink(p, e), nil
}

// ListPage is a page of exports, newest first.
type ListPage struct {
	Exports []*Export
	Cursors []string
	HasNext bool
}

// List returns the organisation's exports, newest first (VIEWER; audit
// trail exports are listed to ADMINs only).
func (s *Service) List(ctx context.Context, templateID *uuid.UUID, kind *Kind, first int, after string) (*ListPage, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	if first == 0 {
		first = 20
	}
	if first < 0 || first > 200 {
		return nil, apperr.Validation(apperr.FieldError{Path: "first", Reason: "must be between 1 and 200"})
	}
	q := `SELECT ` + exportColumns + ` FROM exports WHERE org_id = $1 AND ($2::uuid IS NULL OR template_id = $2)
		AND ($3::text IS NULL OR kind = $3) AND (kind <> 'AUDIT' OR $4)`
	args := []any{p.OrgID, templateID, kind, p.Allows(caller.RoleAdmin)}
	if after != "" {
		at, id, ok := strings.Cut(after, "|")
		t, err1 := time.Parse(time.RFC3339Nano, at)
		u, err2 := uuid.Parse(id)
		if !ok || err1 != nil || err2 != nil {
			return nil, apperr.Validation(apperr.FieldError{Path: "after", Reason: "is not a cursor of this listing"})
		}
		q += ` AND (created_at, id) < ($5, $6)`
		args = append(args, t, u)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, first+1)
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("exports: list: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Export, error) { return scanExport(r) })
	if err != nil {
		return nil, fmt.Errorf("exports: list: %w", err)
	}
	page := &ListPage{Exports: list}
	if len(list) > first {
		page.Exports, page.HasNext = list[:first], true
	}
	for _, e := range page.Exports {
		s.withLink(p, e)
		page.Cursors = append(page.Cursors, e.CreatedAt.UTC().Format(time.RFC3339Nano)+"|"+e.ID.String())
	}
	return page, nil
}

// Watch returns the export's progress now and a channel of its progress
// reports from whichever replica runs it, until ctx ends (VIEWER; audit
// trail exports ADMIN).
func (s *Service) Watch(ctx context.Context, broker *events.Broker, id uuid.UUID) (Progress, <-chan *events.Event, error) {
	e, err := s.Get(ctx, id)
	if err != nil {
		return Progress{}, nil, err
	}
	// Subscribe before reading the current state so no report falls
	// between the two.
	ch := broker.Subscribe(ctx, e.OrgID, TopicFor(id))
	if e, err = s.Get(ctx, id); err != nil {
		return Progress{}, nil, err
	}
	return ProgressOf(e), ch, nil
}

// announce tells subscribers where the export stands.
func (s *Service) announce(ctx context.Context, e *Export) {
	if err := announceOn(ctx, s.db.Pool, e); err != nil {
		s.log.Warn("export progress not announced", "export", e.ID, "err", err)
	}
}

// announceOn sends e's progress on db. On a transaction PostgreSQL
// delivers it at the commit: an export's end is announced by the
// transaction that records it, so no subscriber can miss a recorded end
// (a process killed between a commit and a separate announcement would
// leave them waiting on a running export for good).
func announceOn(ctx context.Context, db events.Execer, e *Export) error {
	data, _ := json.Marshal(ProgressOf(e))
	return events.NotifyPgx(ctx, db, events.Event{Org: e.OrgID, Topic: TopicFor(e.ID), Kind: "PROGRESS", ID: e.ID.String(), Data: data})
}
