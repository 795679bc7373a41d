// Package graph is Lintel's GraphQL layer: gqlgen's generated executor,
// thin resolvers that parse arguments, call one internal service and
// convert its result, and the HTTP wiring of the GraphQL endpoint
// (transports, limits, error presenter, role directive, dataloaders).
package graph

//go:generate sh -c "cd .. && go tool gqlgen generate"

import (
	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/exports"
	"github.com/lintel/lintel/internal/gateways"
	"github.com/lintel/lintel/internal/imports"
	"github.com/lintel/lintel/internal/invitations"
	"github.com/lintel/lintel/internal/outbox"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

// Resolver holds the domain services the resolvers call.
type Resolver struct {
	Auth            *auth.Service
	TemplateService *templates.Service
	RecordService   *records.Service
	Events          *events.Broker
	ImportService   *imports.Service
	ExportService   *exports.Service
	AuditService    *auditlog.Service
	Invitations     *invitations.Service
	OutboxService   *outbox.Service
	GatewayService  *gateways.Service
	// IssuingKeys lists the published credential keys (for gateways).
	IssuingKeys gateways.KeySource
}
