package imports

import (
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/cardid"
)

// Mode says how the file relates to the stored records.
type Mode string

// Import modes.
const (
	// Upsert adds new records and updates existing ones.
	Upsert Mode = "UPSERT"
	// Sync makes the file the whole truth: records missing from it get the
	// MissingAction.
	Sync Mode = "SYNC"
)

// MissingAction is what SYNC does to records absent from the file.
type MissingAction string

// Missing-record actions.
const (
	Keep    MissingAction = "KEEP"
	Archive MissingAction = "ARCHIVE"
	// Delete removes records already archived and archives the others.
	Delete MissingAction = "DELETE"
)

// MatchOn is the key rows are matched to records by.
type MatchOn string

// Match keys.
const (
	MatchCardID           MatchOn = "CARD_ID"
	MatchUniqueIdentifier MatchOn = "UNIQUE_IDENTIFIER"
)

// Overwrite says what an update does with values the record already has.
type Overwrite string

// Overwrite policies.
const (
	OverwriteAll Overwrite = "OVERWRITE"
	// KeepExisting fills only values the record does not have yet.
	KeepExisting Overwrite = "KEEP_EXISTING"
)

// InvalidRows says what invalid rows do to the import.
type InvalidRows string

// Invalid-row policies.
const (
	// Abort refuses the whole import when any row is invalid (always in SYNC).
	Abort InvalidRows = "ABORT"
	// SkipInvalid imports the valid rows and reports the others.
	SkipInvalid InvalidRows = "SKIP_INVALID"
)

// Options are an import's settings.
type Options struct {
	Mode          Mode          `json:"mode"`
	MissingAction MissingAction `json:"missingAction"`
	MatchOn       MatchOn       `json:"matchOn"`
	Overwrite     Overwrite     `json:"overwrite"`
	// UpdateFields limits updates of existing records to these field keys
	// and attribute names; nil updates everything mapped.
	UpdateFields     []string      `json:"updateFields"`
	CardIDFormat     cardid.Format `json:"cardIdFormat,omitempty"`
	DefaultValidFrom *time.Time    `json:"defaultValidFrom,omitempty"`
	DefaultExpiresAt *time.Time    `json:"defaultExpiresAt,omitempty"`
	InvalidRows      InvalidRows   `json:"invalidRows"`
	// SendInvitations invites created records that have a recipient
	// e-mail once the import commits.
	SendInvitations bool `json:"sendInvitations,omitempty"`
	// NotifyRemoved e-mails the cardholders of records the import
	// archives or deletes.
	NotifyRemoved bool `json:"notifyRemoved,omitempty"`
}

// DefaultOptions is an UPSERT on card ID that overwrites.
func DefaultOptions() Options {
	return Options{Mode: Upsert, MissingAction: Keep, MatchOn: MatchCardID, Overwrite: OverwriteAll, InvalidRows: Abort}
}

// Column mapping targets that are the record's own attributes; any other
// target is a template field key.
const (
	AttrCardID           = "card_id"
	AttrUniqueIdentifier = "unique_identifier"
	AttrBarcodeValue     = "barcode_value"
	AttrRecipientEmail   = "recipient_email"
	AttrValidFrom        = "valid_from"
	AttrExpiresAt        = "expires_at"
)

var attributes = []string{AttrCardID, AttrUniqueIdentifier, AttrBarcodeValue, AttrRecipientEmail, AttrValidFrom, AttrExpiresAt}

// ColumnMapping maps one file column to a target ("" = none).
type ColumnMapping struct {
	Column     int     `json:"column"` // 1-based
	Header     string  `json:"header"`
	Field      string  `json:"field"`
	Confidence float64 `json:"confidence"`
}

// Phase is where a running import is.
type Phase string

// Phases.
const (
	PhaseQueued     Phase = "QUEUED"
	PhaseParsing    Phase = "PARSING"
	PhaseValidating Phase = "VALIDATING"
	PhaseApplying   Phase = "APPLYING"
	PhaseNotifying  Phase = "NOTIFYING"
	PhaseDone       Phase = "DONE"
)

// Outcome is how a started import ended (or RUNNING).
type Outcome string

// Outcomes.
const (
	Running   Outcome = "RUNNING"
	Succeeded Outcome = "SUCCEEDED"
	Failed    Outcome = "FAILED"
	Cancelled Outcome = "CANCELLED"
)

// RowOutcome is what a row (or a missing record) does.
type RowOutcome string

// Row outcomes.
const (
	RowCreate    RowOutcome = "CREATE"
	RowUpdate    RowOutcome = "UPDATE"
	RowUnchanged RowOutcome = "UNCHANGED"
	RowArchive   RowOutcome = "ARCHIVE"
	RowDelete    RowOutcome = "DELETE"
	RowInvalid   RowOutcome = "INVALID"
	// RowSkipped: the record's credential is being reset, so it is left alone.
	RowSkipped RowOutcome = "SKIPPED"
	// RowConflict: the record changed after the preview; it is left as edited.
	RowConflict RowOutcome = "CONFLICT"
)

// Counts tallies outcomes.
type Counts struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Unchanged int `json:"unchanged"`
	Archive   int `json:"archive"`
	Delete    int `json:"delete"`
	Invalid   int `json:"invalid"`
	Skipped   int `json:"skipped"`
	Conflict  int `json:"conflict"`
}

// Import is one CSV import and its history.
type Import struct {
	ID              uuid.UUID
	OrgID           uuid.UUID
	TemplateID      uuid.UUID
	CreatedBy       string
	FileName        string
	FileSize        int64
	FileSHA256      []byte
	Encoding        string
	Delimiter       string
	HeaderRow       int
	Header          []string
	RowCount        int
	Mapping         []ColumnMapping
	Options         Options
	Phase           *Phase
	Outcome         *Outcome
	Processed       int
	Total           int
	Counts          *Counts
	PreviewCounts   *Counts
	PreviewedAt     *time.Time
	ErrorCode       string
	ErrorMessage    string
	Timings         map[string]float64 // seconds per phase
	CreatedAt       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
	UpdatedAt       time.Time
	CancelRequested bool
	// Confirm holds the destructive counts confirmed at start.
	Confirm *Confirm
	// Photos says how uploaded photos matched rows (nil without photos).
	Photos *PhotoReport
}

// FieldError is one problem of a row.
type FieldError struct {
	Column int    `json:"column,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// FieldChange is one changed value of an update.
type FieldChange struct {
	Field string  `json:"field"`
	Old   *string `json:"old"`
	New   *string `json:"new"`
}

// Row is the outcome of one line (or, with Line 0, of a record missing
// from the file).
type Row struct {
	Line       int
	Outcome    RowOutcome
	Key        string
	RecordID   *uuid.UUID
	Changed    []string
	Diff       []FieldChange
	Errors     []FieldError
	CardIDRead string
}
