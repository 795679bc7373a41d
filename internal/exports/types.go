package exports

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/records"
)

// Kind is what an export contains.
type Kind string

// Export kinds.
const (
	// KindRecords is a template's card records.
	KindRecords Kind = "RECORDS"
	// KindAudit is the organisation's audit trail (ADMIN only).
	KindAudit Kind = "AUDIT"
)

// Status is where an export stands.
type Status string

// Export statuses.
const (
	Queued    Status = "QUEUED"
	Running   Status = "RUNNING"
	Succeeded Status = "SUCCEEDED"
	Failed    Status = "FAILED"
	// Expired: the file was deleted after the retention period.
	Expired Status = "EXPIRED"
)

// Options say how the file is written.
type Options struct {
	// BOM starts the file with a UTF-8 byte-order mark, which Excel needs
	// to read UTF-8.
	BOM bool `json:"bom"`
}

// Column is one column of an export file: the key it is asked for by and
// its header in the file.
type Column struct {
	Key    string `json:"key"`
	Header string `json:"header"`
}

// Export is one export and, once it ran, its file.
type Export struct {
	ID           uuid.UUID
	OrgID        uuid.UUID
	Kind         Kind
	TemplateID   *uuid.UUID
	CreatedBy    string
	Role         caller.Role
	Columns      []Column
	RecordFilter *records.Filter
	AuditFilter  *auditlog.Filter
	Options      Options
	FileName     string
	Status       Status
	Processed    int
	Total        *int
	RowCount     *int
	Size         *int
	// SHA256 is the file's hex digest.
	SHA256        *string
	ErrorCode     *string
	Error         *string
	CreatedAt     time.Time
	StartedAt     *time.Time
	FinishedAt    *time.Time
	FileExpiresAt *time.Time
	// DownloadURL is a signed link for the caller who loaded the export,
	// valid until DownloadURLExpiresAt; nil while there is no file or when
	// the caller's role is below the one the export was made for.
	DownloadURL          *string
	DownloadURLExpiresAt *time.Time
}

// TopicFor is the event topic of an export's progress.
func TopicFor(id uuid.UUID) string { return "export:" + id.String() }

// Progress is one progress report of an export.
type Progress struct {
	ExportID  uuid.UUID `json:"exportId"`
	Status    Status    `json:"status"`
	Processed int       `json:"processed"`
	Total     *int      `json:"total,omitempty"`
	RowCount  *int      `json:"rowCount,omitempty"`
	Size      *int      `json:"size,omitempty"`
	Error     *string   `json:"error,omitempty"`
}

// ProgressOf is an export's current progress.
func ProgressOf(e *Export) Progress {
	return Progress{ExportID: e.ID, Status: e.Status, Processed: e.Processed, Total: e.Total, RowCount: e.RowCount, Size: e.Size, Error: e.Error}
}

// ParseProgress decodes a progress event's data.
func ParseProgress(data json.RawMessage) (Progress, error) {
	var p Progress
	err := json.Unmarshal(data, &p)
	return p, err
}

// Done reports whether the export has ended.
func (p Progress) Done() bool { return p.Status != Queued && p.Status != Running }

// recordFilter is records.Filter as stored and audited.
type recordFilter struct {
	Status          *records.Status          `json:"status,omitempty"`
	CredentialState *records.CredentialState `json:"credentialState,omitempty"`
	Search          string                   `json:"search,omitempty"`
	ValidAt         *time.Time               `json:"validAt,omitempty"`
	ExpiresBefore   *time.Time               `json:"expiresBefore,omitempty"`
	UpdatedSince    *time.Time               `json:"updatedSince,omitempty"`
}

func fromRecordFilter(f records.Filter) recordFilter {
	return recordFilter{Status: f.Status, CredentialState: f.CredentialState, Search: f.Search, ValidAt: f.ValidAt,
		ExpiresBefore: f.ExpiresBefore, UpdatedSince: f.UpdatedSince}
}

func (f recordFilter) filter() records.Filter {
	return records.Filter{Status: f.Status, CredentialState: f.CredentialState, Search: f.Search, ValidAt: f.ValidAt,
		ExpiresBefore: f.ExpiresBefore, UpdatedSince: f.UpdatedSince}
}
