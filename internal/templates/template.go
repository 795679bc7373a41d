package templates

import (
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/cardid"
)

// FieldType is the kind of value a template field holds.
type FieldType string

// Field types.
const (
	TypeText    FieldType = "TEXT"
	TypeNumber  FieldType = "NUMBER"
	TypeDate    FieldType = "DATE"
	TypeEmail   FieldType = "EMAIL"
	TypePhone   FieldType = "PHONE"
	TypeCountry FieldType = "COUNTRY"
	TypeSelect  FieldType = "SELECT"
)

var fieldTypes = map[FieldType]bool{TypeText: true, TypeNumber: true, TypeDate: true, TypeEmail: true, TypePhone: true, TypeCountry: true, TypeSelect: true}

// Side is where on the card a field is printed.
type Side string

// Card sides.
const (
	Front Side = "FRONT"
	Back  Side = "BACK"
)

// Symbology is the barcode kind printed on the template's cards.
type Symbology string

// Barcode symbologies.
const (
	QR         Symbology = "QR"
	PDF417     Symbology = "PDF417"
	Code128    Symbology = "CODE128"
	Aztec      Symbology = "AZTEC"
	DataMatrix Symbology = "DATAMATRIX"
)

var symbologies = map[Symbology]bool{QR: true, PDF417: true, Code128: true, Aztec: true, DataMatrix: true}

// IdentifierKind says what a template's unique identifier is.
type IdentifierKind string

// Unique-identifier kinds.
const (
	IdentifierEmail    IdentifierKind = "EMAIL"
	IdentifierIDNumber IdentifierKind = "ID_NUMBER"
)

// Field is one value a card record of the template carries.
type Field struct {
	Key       string    `json:"key"`
	Label     string    `json:"label"`
	Type      FieldType `json:"type"`
	Required  bool      `json:"required"`
	Side      Side      `json:"side"`
	Options   []string  `json:"options,omitempty"`
	MaxLength int       `json:"maxLength"`
	// Personal marks personal data (hidden from VIEWER exports).
	Personal bool `json:"personal"`
	// Sensitive marks data only ADMINs may export.
	Sensitive bool `json:"sensitive"`
}

// Template describes a kind of card.
type Template struct {
	ID                   uuid.UUID
	OrgID                uuid.UUID
	Name                 string
	Description          string
	Fields               []Field
	Symbology            Symbology
	CardIDFormat         cardid.Format
	UniqueIdentifierKind IdentifierKind
	// DefaultValidityDays, when set, gives new records an expiry that many
	// days after their start.
	DefaultValidityDays *int
	Version             int
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Field returns the field with key, if any.
func (t *Template) Field(key string) (Field, bool) {
	for _, f := range t.Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// Input is what an administrator submits to create or replace a template.
type Input struct {
	Name                 string
	Description          string
	Fields               []Field
	Symbology            Symbology
	CardIDFormat         cardid.Format
	UniqueIdentifierKind IdentifierKind
	DefaultValidityDays  *int
}
