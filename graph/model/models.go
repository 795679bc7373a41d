// Package model holds the GraphQL-only types: gqlgen generates most of them
// (models_gen.go); the hand-written ones here carry what their field
// resolvers need.
package model

import (
	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/imports"
	"github.com/lintel/lintel/internal/records"
)

// CardRecordConnection is a page of records. It remembers its query so
// totalCount runs only when a client asks for it.
type CardRecordConnection struct {
	Edges      []CardRecordEdge
	PageInfo   *PageInfo
	TemplateID uuid.UUID
	Filter     records.Filter
}

// RecordChange is one change event; the record is loaded only if asked for.
type RecordChange struct {
	Kind     RecordChangeKind
	RecordID string
}

// ImportPreview is a dry run's summary; samples and invalid rows are read
// only when asked for.
type ImportPreview struct {
	Import       *imports.Import
	Counts       *imports.Counts
	InvalidFirst *int
	InvalidAfter *string
}
