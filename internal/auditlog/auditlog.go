// Package auditlog reads the audit trail that package audit writes: a
// filtered, keyset-paginated listing for administrators, the filter's SQL
// (shared with the CSV export of the trail), and the retention job, the
// only writer allowed to delete from the append-only table.
package auditlog

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/store"
)

// ActorKind is who caused an event.
type ActorKind string

// Actor kinds, as audit.Write records them.
const (
	ActorOperator ActorKind = "OPERATOR"
	ActorGateway  ActorKind = "GATEWAY"
	ActorSystem   ActorKind = "SYSTEM"
)

// Event is one entry of the audit trail.
type Event struct {
	ID         int64
	At         time.Time
	ActorKind  ActorKind
	ActorID    *uuid.UUID
	ActorLabel string
	Action     string
	TargetKind string
	TargetID   string
	RequestID  string
	// Details is the event's JSON object as stored.
	Details json.RawMessage
}

// Change is one changed value named in an event's details.
type Change struct {
	Field string
	Old   *string
	New   *string
}

// Changes lists the old and new values an event records: the entries of
// details.changes (record updates) and any top-level detail shaped
// {"old": …, "new": …} (such as a status transition), sorted by field.
// Values are shown as text; null stays nil.
func (e *Event) Changes() []Change {
	var top map[string]json.RawMessage
	if json.Unmarshal(e.Details, &top) != nil {
		return []Change{}
	}
	pairs := map[string]json.RawMessage{}
	if raw, ok := top["changes"]; ok {
		var nested map[string]json.RawMessage
		if json.Unmarshal(raw, &nested) == nil {
			maps.Copy(pairs, nested)
		}
	}
	for k, v := range top {
		if k != "changes" {
			pairs[k] = v
		}
	}
	out := []Change{}
	for _, field := range slices.Sorted(maps.Keys(pairs)) {
		var c map[string]json.RawMessage
		if json.Unmarshal(pairs[field], &c) != nil || len(c) != 2 {
			continue
		}
		oldV, okOld := c["old"]
		newV, okNew := c["new"]
		if !okOld || !okNew {
			continue
		}
		out = append(out, Change{Field: field, Old: text(oldV), New: text(newV)})
	}
	return out
}

// text renders a JSON value: a string as itself, null as nil, anything
// else as its JSON.
func text(raw json.RawMessage) *string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &s
	}
	t := string(raw)
	return &t
}

// Filter narrows the trail; zero values do not filter.
type Filter struct {
	// Actor is an operator's or gateway's ID, an operator's e-mail
	// (case-insensitive), or an actor kind (OPERATOR, GATEWAY, SYSTEM).
	Actor string `json:"actor,omitempty"`
	// Action is an action name ("record.update"), or a prefix ending in
	// "." or "*" ("record." matches every record action).
	Action string `json:"action,omitempty"`
	// Target is the ID of the object acted on.
	Target string     `json:"target,omitempty"`
	From   *time.Time `json:"from,omitempty"`
	To     *time.Time `json:"to,omitempty"`
}

// Validate checks the filter, naming each bad part under prefix.
func (f Filter) Validate(prefix string) error {
	var fs apperr.Fields
	for _, v := range []struct{ name, value string }{{"actor", f.Actor}, {"action", f.Action}, {"target", f.Target}} {
		if len(v.value) > 254 {
			fs.Add(prefix+"."+v.name, "must be at most 254 characters")
		}
	}
	if f.From != nil && f.To != nil && !f.To.After(*f.From) {
		fs.Add(prefix+".to", "must be after from")
	}
	return fs.Err()
}

// Conditions returns the filter as an SQL condition on audit_events
// (unqualified column names) for org. bind turns a value into an SQL
// expression that yields it — a placeholder, or a reference to a setting —
// so no input is ever spliced into the statement.
func (f Filter) Conditions(org uuid.UUID, bind func(v any) string) string {
	conds := []string{"org_id = " + bind(org)}
	if a := strings.TrimSpace(f.Actor); a != "" {
		if id, err := uuid.Parse(a); err == nil {
			conds = append(conds, "actor_id = "+bind(id))
		} else if k := ActorKind(strings.ToUpper(a)); k == ActorOperator || k == ActorGateway || k == ActorSystem {
			conds = append(conds, "actor_kind = "+bind(string(k)))
		} else {
			conds = append(conds, "lower(actor_label) = "+bind(strings.ToLower(a)))
		}
	}
	if a := strings.TrimSpace(f.Action); a != "" {
		if prefix, ok := strings.CutSuffix(a, "*"); ok || strings.HasSuffix(a, ".") {
			if !ok {
				prefix = a
			}
			esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix)
			conds = append(conds, `action LIKE `+bind(esc+"%")+` ESCAPE '\'`)
		} else {
			conds = append(conds, "action = "+bind(a))
		}
	}
	if t := strings.TrimSpace(f.Target); t != "" {
		conds = append(conds, "target_id = "+bind(t))
	}
	if f.From != nil {
		conds = append(conds, "at >= "+bind(*f.From))
	}
	if f.To != nil {
		conds = append(conds, "at < "+bind(*f.To))
	}
	return strings.Join(conds, " AND ")
}

// Service reads the audit trail of the caller's organisation.
type Service struct {
	db *store.DB
}

// NewService returns an audit trail reader.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// Page is one page of events, newest first.
type Page struct {
	Events  []Event
	Cursors []string
	HasNext bool
}

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// List returns the organisation's events matching f, newest first (ADMIN).
func (s *Service) List(ctx context.Context, f Filter, first int, after string) (*Page, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := f.Validate("filter"); err != nil {
		return nil, err
	}
	if first == 0 {
		first = DefaultPageSize
	}
	if first < 0 || first > MaxPageSize {
		return nil, apperr.Validation(apperr.FieldError{Path: "first", Reason: fmt.Sprintf("must be between 1 and %d", MaxPageSize)})
	}
	var args []any
	bind := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	cond := f.Conditions(p.OrgID, bind)
	if after != "" {
		id, err := strconv.ParseInt(after, 10, 64)
		if err != nil || id <= 0 {
			return nil, apperr.Validation(apperr.FieldError{Path: "after", Reason: "is not a cursor of this listing"})
		}
		cond += " AND id < " + bind(id)
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, at, actor_kind, actor_id, actor_label, action, target_kind, target_id, request_id, details
		FROM audit_events WHERE `+cond+` ORDER BY id DESC LIMIT `+strconv.Itoa(first+1), args...)
	if err != nil {
		return nil, fmt.Errorf("auditlog: list: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		var kind string
		err := row.Scan(&e.ID, &e.At, &kind, &e.ActorID, &e.ActorLabel, &e.Action, &e.TargetKind, &e.TargetID, &e.RequestID, &e.Details)
		e.ActorKind = ActorKind(kind)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("auditlog: list: %w", err)
	}
	page := &Page{Events: events}
	if len(events) > first {
		page.Events, page.HasNext = events[:first], true
	}
	for _, e := range page.Events {
		page.Cursors = append(page.Cursors, strconv.FormatInt(e.ID, 10))
	}
	return page, nil
}

// Prune deletes the events older than retention, and records in the
// trail of every organisation it touched how many went (in the same
// transaction, so a prune is never silent). It is the one writer the
// table's append-only trigger lets delete: it sets lintel.audit_retention
// for its own transaction only.
func Prune(ctx context.Context, db *store.DB, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, nil
	}
	var total int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lintel.audit_retention = 'on'`); err != nil {
			return fmt.Errorf("auditlog: enable retention: %w", err)
		}
		rows, err := tx.Query(ctx, `WITH gone AS (DELETE FROM audit_events WHERE at < now() - $1::interval RETURNING org_id)
			SELECT org_id, count(*) FROM gone GROUP BY org_id`, retention.String())
		if err != nil {
			return fmt.Errorf("auditlog: prune: %w", err)
		}
		type orgCount struct {
			org uuid.UUID
			n   int64
		}
		counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orgCount, error) {
			var c orgCount
			return c, r.Scan(&c.org, &c.n)
		})
		if err != nil {
			return fmt.Errorf("auditlog: prune: %w", err)
		}
		for _, c := range counts {
			total += c.n
			details, _ := json.Marshal(map[string]any{"deleted": c.n, "retention": retention.String()})
			if _, err := tx.Exec(ctx, `INSERT INTO audit_events (org_id, actor_kind, actor_label, action, target_kind, details)
				VALUES ($1, 'SYSTEM', 'system', 'audit.prune', 'audit', $2)`, c.org, string(details)); err != nil {
				return fmt.Errorf("auditlog: record prune: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
