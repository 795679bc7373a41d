package graph

import (
	"encoding/json"

	"github.com/lintel/lintel/graph/model"
	"github.com/lintel/lintel/internal/auditlog"
	"github.com/lintel/lintel/internal/exports"
)

// exportOptions reads an options input: the file's settings and its name.
func exportOptions(in *model.ExportOptionsInput) (exports.Options, string) {
	if in == nil {
		return exports.Options{}, ""
	}
	return exports.Options{BOM: derefOr(in.Bom.Value(), false)}, derefOr(in.FileName.Value(), "")
}

func auditFilter(f *model.AuditEventFilter) auditlog.Filter {
	if f == nil {
		return auditlog.Filter{}
	}
	return auditlog.Filter{Actor: derefOr(f.Actor.Value(), ""), Action: derefOr(f.Action.Value(), ""), Target: derefOr(f.Target.Value(), ""),
		From: f.From.Value(), To: f.To.Value()}
}

func exportConnection(p *exports.ListPage, after *string) *model.ExportConnection {
	conn := &model.ExportConnection{PageInfo: &model.PageInfo{HasNextPage: p.HasNext, HasPreviousPage: after != nil}, Edges: []model.ExportEdge{}}
	for i, e := range p.Exports {
		conn.Edges = append(conn.Edges, model.ExportEdge{Cursor: p.Cursors[i], Node: e})
	}
	if n := len(p.Cursors); n > 0 {
		conn.PageInfo.StartCursor, conn.PageInfo.EndCursor = &p.Cursors[0], &p.Cursors[n-1]
	}
	return conn
}

func auditConnection(p *auditlog.Page, after *string) *model.AuditEventConnection {
	conn := &model.AuditEventConnection{PageInfo: &model.PageInfo{HasNextPage: p.HasNext, HasPreviousPage: after != nil}, Edges: []model.AuditEventEdge{}}
	for i := range p.Events {
		conn.Edges = append(conn.Edges, model.AuditEventEdge{Cursor: p.Cursors[i], Node: &p.Events[i]})
	}
	if n := len(p.Cursors); n > 0 {
		conn.PageInfo.StartCursor, conn.PageInfo.EndCursor = &p.Cursors[0], &p.Cursors[n-1]
	}
	return conn
}

// listComplexity prices a page: its size times what each element costs.
func listComplexity(child int, first *int, def int) int {
	n := def
	if first != nil {
		n = *first
	}
	return 1 + max(n, 1)*child
}

// exportComplexity prices the export and audit listings like records.
func exportComplexity(cfg *Config) {
	cfg.Complexity.Query.Exports = func(child int, _ *string, _ *exports.Kind, first *int, _ *string) int {
		return listComplexity(child, first, 20)
	}
	cfg.Complexity.Query.AuditEvents = func(child int, _ *model.AuditEventFilter, first *int, _ *string) int {
		return listComplexity(child, first, auditlog.DefaultPageSize)
	}
}

// decodeExportProgress decodes a progress event's data, once per event for
// all of its subscribers (events.Event.Decoded).
func decodeExportProgress(data json.RawMessage) (any, error) {
	p, err := exports.ParseProgress(data)
	return &p, err
}
