// Package records keeps card records: one per cardholder per template, with
// values checked against the template, canonical card IDs, security answers
// kept only as argon2id hashes, a status and credential-state lifecycle,
// locked fields, photos and optimistic concurrency.
package records

import (
	"time"

	"github.com/google/uuid"
)

// Status is a record's lifecycle state.
type Status string

// Record statuses.
const (
	Active    Status = "ACTIVE"
	Suspended Status = "SUSPENDED"
	Archived  Status = "ARCHIVED"
)

// CredentialState is where a record's mobile credential stands.
type CredentialState string

// Credential states.
const (
	NotInvited        CredentialState = "NOT_INVITED"
	Invited           CredentialState = "INVITED"
	CredentialActive  CredentialState = "ACTIVE"
	CredentialReset   CredentialState = "RESET"
	CredentialRevoked CredentialState = "REVOKED"
	CredentialExpired CredentialState = "EXPIRED"
)

// Record is one cardholder's card under a template.
type Record struct {
	ID                uuid.UUID
	OrgID             uuid.UUID
	TemplateID        uuid.UUID
	CardID            string
	UniqueIdentifier  string
	Fields            map[string]string
	BarcodeValue      string
	RecipientEmail    string
	SecurityQuestions []string
	ValidFrom         *time.Time
	ExpiresAt         *time.Time
	Status            Status
	CredentialState   CredentialState
	LockedFields      []string
	HasPhoto          bool
	Version           int
	CreatedAt         time.Time
	UpdatedAt         time.Time
	ArchivedAt        *time.Time
}

// SecurityQuestion is a question the cardholder answers before installing
// a credential; the answer is only ever stored hashed.
type SecurityQuestion struct {
	Question string
	Answer   string
}

// Photo is an uploaded cardholder picture.
type Photo struct {
	// Data is the file as uploaded; its type is recognised from content.
	Data []byte
}

// Input describes a new record.
type Input struct {
	CardID            string
	UniqueIdentifier  string
	Fields            map[string]string
	BarcodeValue      string
	RecipientEmail    string
	SecurityQuestions []SecurityQuestion
	ValidFrom         *time.Time
	ExpiresAt         *time.Time
}

// Optional is a patch value that may be absent (Set false), or set —
// possibly to its zero value, which clears the attribute.
type Optional[T any] struct {
	Set   bool
	Value T
}

// Some returns a set Optional.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// Patch changes some attributes of a record; absent ones stay as they are.
// In Fields, an empty string clears the value.
type Patch struct {
	CardID            Optional[string]
	UniqueIdentifier  Optional[string]
	Fields            map[string]string
	BarcodeValue      Optional[string]
	RecipientEmail    Optional[string]
	SecurityQuestions Optional[[]SecurityQuestion]
	ValidFrom         Optional[*time.Time]
	ExpiresAt         Optional[*time.Time]
}

// Attribute names for lockable built-in attributes; template field keys can
// be locked as well.
var lockableAttributes = map[string]bool{
	"card_id": true, "unique_identifier": true, "barcode_value": true, "recipient_email": true,
	"valid_from": true, "expires_at": true, "photo": true, "security_questions": true,
}
