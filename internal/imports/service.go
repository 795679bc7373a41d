package imports

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/csvin"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/templates"
)

// Config tunes imports.
type Config struct {
	// MaxFileBytes bounds an uploaded file.
	MaxFileBytes int64
	// JobTimeout bounds one run; it must stay below River's stuck-job
	// rescue interval.
	JobTimeout time.Duration
}

// DefaultConfig allows 512 MiB files (about two million short rows) and
// runs of up to 30 minutes.
func DefaultConfig() Config { return Config{MaxFileBytes: 512 << 20, JobTimeout: 30 * time.Minute} }

// Service runs imports, scoped to the caller's organisation.
type Service struct {
	db        *store.DB
	templates *templates.Service
	cfg       Config
	log       *slog.Logger
	river     *river.Client[*sql.Tx]
	// invitations sends the e-mail an import asks for; nil sends none.
	invitations Invitations
}

// Invitations is what an import needs of the invitation service: writing
// invitations and removal notices inside the import's transaction, and
// starting delivery after it commits.
type Invitations interface {
	InviteImported(ctx context.Context, tx pgx.Tx, org uuid.UUID, by *uuid.UUID, recordsSQL string) (int, error)
	NotifyRemoved(ctx context.Context, tx pgx.Tx, org uuid.UUID, recordsSQL string, deleted bool) (int, error)
	Kick(ctx context.Context)
}

// SetInvitations connects the invitation service.
func (s *Service) SetInvitations(inv Invitations) { s.invitations = inv }

// NewService returns an import service; call SetQueue before starting
// imports.
func NewService(db *store.DB, ts *templates.Service, cfg Config, log *slog.Logger) *Service {
	return &Service{db: db, templates: ts, cfg: cfg, log: log}
}

// SetQueue gives the service the River client that runs import jobs (the
// client needs the service's worker first, hence the two steps).
func (s *Service) SetQueue(c *river.Client[*sql.Tx]) { s.river = c }

// MaxFileBytes is the upload limit.
func (s *Service) MaxFileBytes() int64 { return s.cfg.MaxFileBytes }

// fileError turns a CSV reading error into a VALIDATION_FAILED error on
// "file" that names line, column and byte.
func fileError(err error) error {
	var ce *csvin.Error
	if errors.As(err, &ce) {
		return apperr.Validation(apperr.FieldError{Path: "file", Reason: ce.Error()})
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	return fmt.Errorf("imports: read file: %w", err)
}

// targets lists what columns can map to: the record's attributes and the
// template's fields.
func targets(t *templates.Template) []csvin.Target {
	out := []csvin.Target{
		{Key: AttrCardID, Label: "Card ID", Synonyms: csvin.CommonSynonyms[AttrCardID]},
		{Key: AttrUniqueIdentifier, Label: "Unique identifier", Synonyms: csvin.CommonSynonyms[AttrUniqueIdentifier]},
		{Key: AttrBarcodeValue, Label: "Barcode value", Synonyms: csvin.CommonSynonyms[AttrBarcodeValue]},
		{Key: AttrRecipientEmail, Label: "Recipient e-mail", Synonyms: csvin.CommonSynonyms[AttrRecipientEmail]},
		{Key: AttrValidFrom, Label: "Valid from", Synonyms: csvin.CommonSynonyms[AttrValidFrom]},
		{Key: AttrExpiresAt, Label: "Expires at", Synonyms: csvin.CommonSynonyms[AttrExpiresAt]},
		{Key: AttrPhoto, Label: "Photo", Synonyms: []string{"picture", "image", "photo file", "photo file name", "file name"}},
	}
	if t.UniqueIdentifierKind == templates.IdentifierEmail {
		// An "E-mail" column of an e-mail-keyed template is its identifier.
		out[1].Synonyms = append(slices.Clone(out[1].Synonyms), "email", "e-mail", "e-mail address", "email address")
		out[3].Synonyms = []string{"recipient", "recipient email", "send to"}
	}
	for _, f := range t.Fields {
		out = append(out, csvin.Target{Key: f.Key, Label: f.Label, Synonyms: csvin.CommonSynonyms[f.Key]})
	}
	return out
}

func isTarget(t *templates.Template, name string) bool {
	if slices.Contains(attributes, name) || name == AttrPhoto {
		return true
	}
	_, ok := t.Field(name)
	return ok
}

// FileSettings says how to read a file; zero values detect.
type FileSettings struct {
	Encoding  string
	Delimiter string
	HeaderRow int
}

// sniffed is what a full pass over the file learned.
type sniffed struct {
	header    []string
	delimiter string
	encoding  string
	rows      int
}

// sniff reads the whole stored file once: it fixes delimiter and encoding,
// counts rows, and finds file-level problems (encoding, NUL bytes, huge
// cells) before anyone previews.
func sniff(ctx context.Context, db rowQuerier, id uuid.UUID, fs FileSettings) (*sniffed, error) {
	opts := csvin.Options{HeaderRow: fs.HeaderRow}
	if fs.Encoding != "" {
		enc, err := csvin.ParseEncoding(fs.Encoding)
		if err != nil {
			return nil, apperr.Validation(apperr.FieldError{Path: "options.encoding", Reason: err.Error()})
		}
		opts.Encoding = enc
	}
	if fs.Delimiter != "" {
		switch fs.Delimiter {
		case ",", ";", "\t", "|":
			opts.Delimiter = rune(fs.Delimiter[0])
		case "TAB", "tab", `\t`:
			opts.Delimiter = '\t'
		default:
			return nil, apperr.Validation(apperr.FieldError{Path: "options.delimiter", Reason: `must be ",", ";", "|" or a tab`})
		}
	}
	if fs.HeaderRow < 0 || fs.HeaderRow > 1000 {
		return nil, apperr.Validation(apperr.FieldError{Path: "options.headerRow", Reason: "must be between 1 and 1000"})
	}
	rd, err := csvin.NewReader(openFile(ctx, db, id), opts)
	if err != nil {
		return nil, fileError(err)
	}
	out := &sniffed{header: slices.Clone(rd.Header()), delimiter: string(rd.Delimiter()), encoding: string(rd.Encoding())}
	for {
		_, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fileError(err)
		}
		out.rows++
	}
}

// Create stores an uploaded file as a new import of template templateID,
// reads it once to check it and count its rows, and proposes a mapping.
func (s *Service) Create(ctx context.Context, templateID uuid.UUID, fileName string, file io.Reader, opts *Options, fs FileSettings) (*Import, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, templateID, false)
	if err != nil {
		return nil, err
	}
	o := DefaultOptions()
	if opts != nil {
		o = *opts
	}
	if err := checkOptions(t, &o); err != nil {
		return nil, err
	}
	fileName = strings.TrimSpace(fileName)
	if fileName == "" {
		fileName = "upload.csv"
	}
	id := uuid.New()
	var imp *Import
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO imports (id, org_id, template_id, created_by, created_by_email, file_name, file_size, file_sha256,
				encoding, delimiter, header_row, header, row_count, mapping, options)
			VALUES ($1, $2, $3, $4, $5, $6, 0, '', '', '', 1, '[]', 0, '[]', '{}')`,
			id, p.OrgID, t.ID, p.OperatorID, p.Email, fileName); err != nil {
			return fmt.Errorf("imports: insert: %w", err)
		}
		size, sum, err := storeFile(ctx, tx, id, file, s.cfg.MaxFileBytes)
		if err != nil {
			return err
		}
		if size == 0 {
			return apperr.Validation(apperr.FieldError{Path: "file", Reason: "the file is empty"})
		}
		sn, err := sniff(ctx, tx, id, fs)
		if err != nil {
			return err
		}
		mapping := proposeMapping(t, sn.header)
		headerRow := max(fs.HeaderRow, 1)
		if err := s.saveSettings(ctx, tx, id, sn, headerRow, mapping, o, size, sum); err != nil {
			return err
		}
		imp, err = s.get(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, imp, "import.create", map[string]any{"fileName": fileName, "size": size, "sha256": hex.EncodeToString(sum), "rows": sn.rows})
	})
	if err != nil {
		return nil, err
	}
	return imp, nil
}

func proposeMapping(t *templates.Template, header []string) []ColumnMapping {
	props := csvin.ProposeMapping(header, targets(t))
	out := make([]ColumnMapping, len(props))
	for i, pr := range props {
		out[i] = ColumnMapping{Column: pr.Column + 1, Header: pr.Header, Field: pr.Key, Confidence: pr.Confidence}
	}
	return out
}

func (s *Service) saveSettings(ctx context.Context, tx pgx.Tx, id uuid.UUID, sn *sniffed, headerRow int, mapping []ColumnMapping, o Options, size int64, sum []byte) error {
	header, _ := json.Marshal(sn.header)
	m, _ := json.Marshal(mapping)
	op, _ := json.Marshal(o)
	q := `UPDATE imports SET encoding = $2, delimiter = $3, header_row = $4, header = $5, row_count = $6, mapping = $7, options = $8, updated_at = now()`
	args := []any{id, sn.encoding, sn.delimiter, headerRow, string(header), sn.rows, string(m), string(op)}
	if sum != nil {
		q += `, file_size = $9, file_sha256 = $10`
		args = append(args, size, sum)
	}
	if _, err := tx.Exec(ctx, q+` WHERE id = $1`, args...); err != nil {
		return fmt.Errorf("imports: save settings: %w", err)
	}
	return nil
}

// checkOptions validates options against the template and applies the
// rules that are not choices (SYNC always aborts on invalid rows).
func checkOptions(t *templates.Template, o *Options) error {
	var fs apperr.Fields
	if o.Mode == "" {
		o.Mode = Upsert
	}
	if o.Mode != Upsert && o.Mode != Sync {
		fs.Add("options.mode", "must be UPSERT or SYNC")
	}
	if o.MissingAction == "" {
		o.MissingAction = Keep
	}
	if !slices.Contains([]MissingAction{Keep, Archive, Delete}, o.MissingAction) {
		fs.Add("options.missingAction", "must be KEEP, ARCHIVE or DELETE")
	}
	if o.MatchOn == "" {
		o.MatchOn = MatchCardID
	}
	if o.MatchOn != MatchCardID && o.MatchOn != MatchUniqueIdentifier {
		fs.Add("options.matchOn", "must be CARD_ID or UNIQUE_IDENTIFIER")
	}
	if o.Overwrite == "" {
		o.Overwrite = OverwriteAll
	}
	if o.Overwrite != OverwriteAll && o.Overwrite != KeepExisting {
		fs.Add("options.overwrite", "must be OVERWRITE or KEEP_EXISTING")
	}
	if o.InvalidRows == "" || o.Mode == Sync {
		o.InvalidRows = Abort
	}
	if o.InvalidRows != Abort && o.InvalidRows != SkipInvalid {
		fs.Add("options.invalidRows", "must be ABORT or SKIP_INVALID")
	}
	for i, f := range o.UpdateFields {
		if !isTarget(t, f) {
			fs.Add(fmt.Sprintf("options.updateFields[%d]", i), "%q is neither a field of the template nor an attribute", f)
		}
	}
	if o.CardIDFormat != "" && !o.CardIDFormat.Valid() {
		fs.Add("options.cardIdFormat", "unknown card-ID format %q", o.CardIDFormat)
	}
	if o.DefaultValidFrom != nil && o.DefaultExpiresAt != nil && !o.DefaultExpiresAt.After(*o.DefaultValidFrom) {
		fs.Add("options.defaultExpiresAt", "must be after defaultValidFrom")
	}
	return fs.Err()
}

// checkMapping validates a mapping against the file's header and the
// template: each column at most once, each target at most once, and both
// keys mapped (a record cannot be created without them).
func checkMapping(t *templates.Template, header []string, mapping []ColumnMapping) error {
	var fs apperr.Fields
	seenCol := map[int]bool{}
	seenTarget := map[string]int{}
	for i, m := range mapping {
		path := fmt.Sprintf("mapping[%d]", i)
		if m.Column < 1 || m.Column > len(header) {
			fs.Add(path+".column", "the file has columns 1 to %d", len(header))
			continue
		}
		if seenCol[m.Column] {
			fs.Add(path+".column", "column %d is mapped twice", m.Column)
		}
		seenCol[m.Column] = true
		if m.Field == "" {
			continue
		}
		if !isTarget(t, m.Field) {
			fs.Add(path+".field", "%q is neither a field of template %q nor an attribute (%s)", m.Field, t.Name, strings.Join(attributes, ", "))
			continue
		}
		if prev, dup := seenTarget[m.Field]; dup {
			fs.Add(path+".field", "%q is already mapped from column %d", m.Field, prev)
		}
		seenTarget[m.Field] = m.Column
	}
	for _, key := range []string{AttrCardID, AttrUniqueIdentifier} {
		if _, ok := seenTarget[key]; !ok {
			fs.Add("mapping", "no column is mapped to %s", key)
		}
	}
	return fs.Err()
}

// Update changes an import's file settings, mapping or options before it
// runs. Changing how the file is read re-reads it and proposes a new
// mapping unless one is given.
func (s *Service) Update(ctx context.Context, id uuid.UUID, mapping []ColumnMapping, opts *Options, fs *FileSettings) (*Import, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	var imp *Import
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		cur, err := s.getForUpdate(ctx, tx, p.OrgID, id)
		if err != nil {
			return err
		}
		if cur.Outcome != nil && *cur.Outcome == Running {
			return apperr.New(apperr.FailedPrecondition, "import %s is running: settings can no longer change", id)
		}
		if cur.Outcome != nil && *cur.Outcome == Succeeded {
			return apperr.New(apperr.FailedPrecondition, "import %s has already been applied", id)
		}
		t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, cur.TemplateID, false)
		if err != nil {
			return err
		}
		sn := &sniffed{header: cur.Header, delimiter: cur.Delimiter, encoding: cur.Encoding, rows: cur.RowCount}
		headerRow := cur.HeaderRow
		newMapping := cur.Mapping
		if fs != nil {
			if sn, err = sniff(ctx, tx, id, *fs); err != nil {
				return err
			}
			headerRow = max(fs.HeaderRow, 1)
			if !slices.Equal(sn.header, cur.Header) {
				newMapping = proposeMapping(t, sn.header)
			}
		}
		if mapping != nil {
			newMapping = completeMapping(sn.header, mapping)
		}
		o := cur.Options
		if opts != nil {
			o = *opts
		}
		if err := checkOptions(t, &o); err != nil {
			return err
		}
		if err := checkMapping(t, sn.header, newMapping); err != nil && mapping != nil {
			return err
		}
		if err := s.saveSettings(ctx, tx, id, sn, headerRow, newMapping, o, 0, nil); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE imports SET previewed_at = NULL, preview_counts = NULL, outcome = NULL, phase = NULL WHERE id = $1`, id); err != nil {
			return fmt.Errorf("imports: reset preview: %w", err)
		}
		if imp, err = s.get(ctx, tx, p.OrgID, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, imp, "import.update", map[string]any{"mapping": mappingTargets(newMapping), "options": o,
			"encoding": sn.encoding, "delimiter": sn.delimiter, "headerRow": headerRow})
	})
	return imp, err
}

// mappingTargets is a mapping as the audit trail keeps it: header → target.
func mappingTargets(m []ColumnMapping) map[string]string {
	out := make(map[string]string, len(m))
	for _, c := range m {
		out[fmt.Sprintf("%d:%s", c.Column, c.Header)] = c.Field
	}
	return out
}

// completeMapping fills headers in and lists unmentioned columns as none.
func completeMapping(header []string, given []ColumnMapping) []ColumnMapping {
	out := make([]ColumnMapping, 0, len(header))
	byCol := map[int]ColumnMapping{}
	for _, m := range given {
		if _, dup := byCol[m.Column]; dup || m.Column < 1 || m.Column > len(header) {
			// Keep the bad entry so checkMapping reports it.
			out = append(out, m)
			continue
		}
		byCol[m.Column] = m
	}
	for i, h := range header {
		m, ok := byCol[i+1]
		if !ok {
			m = ColumnMapping{Column: i + 1}
		}
		m.Header = h
		m.Confidence = 1
		out = append(out, m)
	}
	return out
}

type importRow struct {
	ID              uuid.UUID
	OrgID           uuid.UUID
	TemplateID      uuid.UUID
	CreatedByEmail  string
	FileName        string
	FileSize        int64
	FileSHA256      []byte
	Encoding        string
	Delimiter       string
	HeaderRow       int
	Header          []byte
	RowCount        int
	Mapping         []byte
	Options         []byte
	Phase           *string
	Outcome         *string
	CancelRequested bool
	Processed       int
	Total           int
	Counts          []byte
	PreviewCounts   []byte
	PreviewedAt     *time.Time
	ErrorCode       *string
	ErrorMessage    *string
	Timings         []byte
	CreatedAt       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
	UpdatedAt       time.Time
	Confirm         []byte
	PhotoReport     []byte
}

const importColumns = `id, org_id, template_id, created_by_email, file_name, file_size, file_sha256, encoding, delimiter, header_row, header,
	row_count, mapping, options, phase, outcome, cancel_requested, processed, total, counts, preview_counts, previewed_at, error_code,
	error_message, timings, created_at, started_at, finished_at, updated_at, confirm, photo_report`

func scanImport(row pgx.Row) (*Import, error) {
	var r importRow
	if err := row.Scan(&r.ID, &r.OrgID, &r.TemplateID, &r.CreatedByEmail, &r.FileName, &r.FileSize, &r.FileSHA256, &r.Encoding,
		&r.Delimiter, &r.HeaderRow, &r.Header, &r.RowCount, &r.Mapping, &r.Options, &r.Phase, &r.Outcome, &r.CancelRequested,
		&r.Processed, &r.Total, &r.Counts, &r.PreviewCounts, &r.PreviewedAt, &r.ErrorCode, &r.ErrorMessage, &r.Timings,
		&r.CreatedAt, &r.StartedAt, &r.FinishedAt, &r.UpdatedAt, &r.Confirm, &r.PhotoReport); err != nil {
		return nil, err
	}
	imp := &Import{ID: r.ID, OrgID: r.OrgID, TemplateID: r.TemplateID, CreatedBy: r.CreatedByEmail, FileName: r.FileName,
		FileSize: r.FileSize, FileSHA256: r.FileSHA256, Encoding: r.Encoding, Delimiter: r.Delimiter, HeaderRow: r.HeaderRow,
		RowCount: r.RowCount, Processed: r.Processed, Total: r.Total, PreviewedAt: r.PreviewedAt, CreatedAt: r.CreatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, UpdatedAt: r.UpdatedAt, CancelRequested: r.CancelRequested}
	_ = json.Unmarshal(r.Header, &imp.Header)
	_ = json.Unmarshal(r.Mapping, &imp.Mapping)
	_ = json.Unmarshal(r.Options, &imp.Options)
	_ = json.Unmarshal(r.Timings, &imp.Timings)
	if r.Phase != nil {
		ph := Phase(*r.Phase)
		imp.Phase = &ph
	}
	if r.Outcome != nil {
		o := Outcome(*r.Outcome)
		imp.Outcome = &o
	}
	if r.Counts != nil {
		imp.Counts = &Counts{}
		_ = json.Unmarshal(r.Counts, imp.Counts)
	}
	if r.PreviewCounts != nil {
		imp.PreviewCounts = &Counts{}
		_ = json.Unmarshal(r.PreviewCounts, imp.PreviewCounts)
	}
	if r.Confirm != nil && string(r.Confirm) != "null" {
		imp.Confirm = &Confirm{}
		_ = json.Unmarshal(r.Confirm, imp.Confirm)
	}
	if r.PhotoReport != nil {
		imp.Photos = &PhotoReport{}
		_ = json.Unmarshal(r.PhotoReport, imp.Photos)
	}
	if r.ErrorCode != nil {
		imp.ErrorCode = *r.ErrorCode
	}
	if r.ErrorMessage != nil {
		imp.ErrorMessage = *r.ErrorMessage
	}
	return imp, nil
}

func (s *Service) get(ctx context.Context, db rowQuerier, org, id uuid.UUID) (*Import, error) {
	imp, err := scanImport(db.QueryRow(ctx, `SELECT `+importColumns+` FROM imports WHERE id = $1 AND org_id = $2`, id, org))
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("import %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("imports: load %s: %w", id, err)
	}
	return imp, nil
}

func (s *Service) getForUpdate(ctx context.Context, tx pgx.Tx, org, id uuid.UUID) (*Import, error) {
	imp, err := scanImport(tx.QueryRow(ctx, `SELECT `+importColumns+` FROM imports WHERE id = $1 AND org_id = $2 FOR UPDATE`, id, org))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.NotFoundf("import %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("imports: load %s: %w", id, err)
	}
	return imp, nil
}

// Get returns one import of the caller's organisation (VIEWER).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Import, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, s.db.Pool, p.OrgID, id)
}

// ListPage is a page of import history.
type ListPage struct {
	Imports []*Import
	Cursors []string
	HasNext bool
}

// List returns the import history, newest first (VIEWER).
func (s *Service) List(ctx context.Context, templateID *uuid.UUID, first int, after string) (*ListPage, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	if first <= 0 {
		first = 20
	}
	if first > 200 {
		return nil, apperr.New(apperr.Invalid, "first must be at most 200")
	}
	q := `SELECT ` + importColumns + ` FROM imports WHERE org_id = $1 AND ($2::uuid IS NULL OR template_id = $2)`
	args := []any{p.OrgID, templateID}
	if after != "" {
		at, id, err := decodeListCursor(after)
		if err != nil {
			return nil, err
		}
		q += ` AND (created_at, id) < ($3, $4)`
		args = append(args, at, id)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, first+1)
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("imports: list: %w", err)
	}
	defer rows.Close()
	out := &ListPage{}
	for rows.Next() {
		imp, err := scanImport(rows)
		if err != nil {
			return nil, fmt.Errorf("imports: list: %w", err)
		}
		out.Imports = append(out.Imports, imp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("imports: list: %w", err)
	}
	if len(out.Imports) > first {
		out.Imports, out.HasNext = out.Imports[:first], true
	}
	for _, imp := range out.Imports {
		out.Cursors = append(out.Cursors, imp.CreatedAt.UTC().Format(time.RFC3339Nano)+"|"+imp.ID.String())
	}
	return out, nil
}

func decodeListCursor(c string) (time.Time, uuid.UUID, error) {
	at, id, ok := strings.Cut(c, "|")
	t, err1 := time.Parse(time.RFC3339Nano, at)
	u, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, uuid.Nil, apperr.New(apperr.Invalid, "after: not a cursor of this listing")
	}
	return t, u, nil
}

func (s *Service) audit(ctx context.Context, tx pgx.Tx, imp *Import, action string, details map[string]any) error {
	return audit.WritePgx(ctx, tx, audit.Event{OrgID: imp.OrgID, Action: action, TargetKind: "import", TargetID: imp.ID.String(), Details: details})
}
