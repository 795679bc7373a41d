package gateways

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/events"
)

// Event kinds and decisions as gateways report them.
const (
	KindCard   = "CARD"
	KindCode   = "CODE"
	KindKeypad = "KEYPAD"
	KindAlert  = "ALERT"

	Granted = "GRANTED"
	Denied  = "DENIED"
)

// MaxBatch is the most events one report may carry.
const MaxBatch = 1000

// AccessEvent is a decision at a door (or an alert) reported by a gateway.
type AccessEvent struct {
	ID         uuid.UUID
	GatewayID  uuid.UUID
	ReaderID   string
	Door       string
	At         time.Time
	Kind       string
	CardID     string
	RecordID   *uuid.UUID
	Decision   *string
	Reason     string
	Detail     string
	ReceivedAt time.Time
}

// TopicEvents is the event topic of an organisation's access events.
func TopicEvents(org uuid.UUID) string { return "access-events:" + org.String() }

// TopicAccessList is the event topic telling an organisation's gateways
// that the access list (or the revocations) changed.
func TopicAccessList(org uuid.UUID) string { return "access:" + org.String() }

// Report stores a batch of access events from the calling gateway
// (GATEWAY). Events are keyed by the gateway's own IDs, so a batch sent
// again after a lost answer stores nothing twice; it returns how many were
// new.
func (s *Service) Report(ctx context.Context, evs []AccessEvent) (int, error) {
	p, err := caller.Require(ctx, caller.RoleGateway)
	if err != nil {
		return 0, err
	}
	if len(evs) > MaxBatch {
		return 0, apperr.Validation(apperr.FieldError{Path: "events", Reason: fmt.Sprintf("at most %d events per report", MaxBatch)})
	}
	var fs apperr.Fields
	for i, e := range evs {
		path := fmt.Sprintf("events[%d]", i)
		switch e.Kind {
		case KindCard, KindCode, KindKeypad, KindAlert:
		default:
			fs.Add(path+".kind", "unknown kind %q", e.Kind)
		}
		if e.Decision != nil && *e.Decision != Granted && *e.Decision != Denied {
			fs.Add(path+".decision", "must be GRANTED or DENIED")
		}
		if e.ID == uuid.Nil {
			fs.Add(path+".id", "is required")
		}
		if strings.TrimSpace(e.ReaderID) == "" || len(e.ReaderID) > 100 || len(e.Door) > 200 || len(e.CardID) > 200 || len(e.Reason) > 100 || len(e.Detail) > 1000 {
			fs.Add(path, "readerId is required; readerId, door, cardId, reason and detail must be at most 100, 200, 200, 100 and 1000 characters")
		}
		if e.At.After(time.Now().Add(time.Hour)) {
			fs.Add(path+".at", "is more than an hour in the future")
		}
	}
	if err := fs.Err(); err != nil {
		return 0, err
	}
	inserted := 0
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, e := range evs {
			batch.Queue(`INSERT INTO access_events (id, org_id, gateway_id, reader_id, door, at, kind, card_id, record_id, decision, reason, detail)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING RETURNING id`,
				e.ID, p.OrgID, p.OperatorID, e.ReaderID, e.Door, e.At, e.Kind, e.CardID, e.RecordID, e.Decision, e.Reason, e.Detail)
		}
		res := tx.SendBatch(ctx, batch)
		var fresh []uuid.UUID
		for range evs {
			var id uuid.UUID
			err := res.QueryRow().Scan(&id)
			if err == pgx.ErrNoRows {
				continue
			}
			if err != nil {
				res.Close()
				return fmt.Errorf("gateways: store events: %w", err)
			}
			fresh = append(fresh, id)
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("gateways: store events: %w", err)
		}
		inserted = len(fresh)
		for _, id := range fresh {
			if err := events.NotifyPgx(ctx, tx, events.Event{Org: p.OrgID, Topic: TopicEvents(p.OrgID), Kind: "ACCESS", ID: id.String()}); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE gateways SET last_seen_at = now() WHERE id = $1`, p.OperatorID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return inserted, nil
}

// ReaderState is a reader's state as its gateway sees it.
type ReaderState struct {
	GatewayID  uuid.UUID  `bun:"gateway_id"`
	ReaderID   string     `bun:"reader_id"`
	Door       string     `bun:"door"`
	Protocol   string     `bun:"protocol"`
	Online     bool       `bun:"online"`
	LastSeenAt *time.Time `bun:"last_seen_at"`
	UpdatedAt  time.Time  `bun:"updated_at"`
}

// Heartbeat records the calling gateway's readers and the access-list
// version it holds (GATEWAY). A reader that goes offline or comes back is
// announced to access-event subscribers (a READERS event).
func (s *Service) Heartbeat(ctx context.Context, readers []ReaderState, version *int64) error {
	p, err := caller.Require(ctx, caller.RoleGateway)
	if err != nil {
		return err
	}
	if len(readers) > 256 {
		return apperr.Validation(apperr.FieldError{Path: "readers", Reason: "at most 256 readers"})
	}
	return pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE gateways SET last_seen_at = now(), synced_version = COALESCE($2, synced_version) WHERE id = $1`, p.OperatorID, version); err != nil {
			return fmt.Errorf("gateways: heartbeat: %w", err)
		}
		for _, r := range readers {
			if _, err := tx.Exec(ctx, `INSERT INTO gateway_readers (gateway_id, reader_id, org_id, door, protocol, online, last_seen_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (gateway_id, reader_id) DO UPDATE SET door = EXCLUDED.door, protocol = EXCLUDED.protocol, online = EXCLUDED.online,
					last_seen_at = EXCLUDED.last_seen_at, updated_at = now()`, p.OperatorID, r.ReaderID, p.OrgID, r.Door, r.Protocol, r.Online, r.LastSeenAt); err != nil {
				return fmt.Errorf("gateways: reader state: %w", err)
			}
		}
		return events.NotifyPgx(ctx, tx, events.Event{Org: p.OrgID, Topic: TopicEvents(p.OrgID), Kind: "READERS", ID: p.OperatorID.String()})
	})
}

// Readers returns the readers of the organisation's gateways (VIEWER).
func (s *Service) Readers(ctx context.Context, gateway uuid.UUID) ([]ReaderState, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	var out []ReaderState
	if err := s.db.Bun.NewRaw(`SELECT gateway_id, reader_id, door, protocol, online, last_seen_at, updated_at FROM gateway_readers
		WHERE org_id = ? AND gateway_id = ? ORDER BY reader_id`, p.OrgID, gateway).Scan(ctx, &out); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("gateways: readers: %w", err)
	}
	return out, nil
}

// EventFilter narrows an access-event listing.
type EventFilter struct {
	GatewayID *uuid.UUID
	ReaderID  string
	Decision  string
	From, To  *time.Time
}

// EventPage is a page of access events, newest first.
type EventPage struct {
	Events    []AccessEvent
	EndCursor string
	HasNext   bool
}

type eventCursor struct {
	At time.Time `json:"at"`
	ID uuid.UUID `json:"id"`
}

// Events lists the organisation's access events, newest first (VIEWER).
func (s *Service) Events(ctx context.Context, f EventFilter, first int, after string) (*EventPage, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	if first <= 0 {
		first = 50
	}
	if first > 500 {
		return nil, apperr.Validation(apperr.FieldError{Path: "first", Reason: "at most 500"})
	}
	conds := []string{"org_id = $1"}
	args := []any{p.OrgID}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.GatewayID != nil {
		add("gateway_id = ?", *f.GatewayID)
	}
	if f.ReaderID != "" {
		add("reader_id = ?", f.ReaderID)
	}
	if f.Decision != "" {
		add("decision = ?", f.Decision)
	}
	if f.From != nil {
		add("at >= ?", *f.From)
	}
	if f.To != nil {
		add("at < ?", *f.To)
	}
	if after != "" {
		raw, err := base64.RawURLEncoding.DecodeString(after)
		var c eventCursor
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil {
			return nil, apperr.Validation(apperr.FieldError{Path: "after", Reason: "not a cursor returned by accessEvents"})
		}
		args = append(args, c.At, c.ID)
		conds = append(conds, fmt.Sprintf("(at, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, first+1)
	rows, err := s.db.Pool.Query(ctx, `SELECT id, gateway_id, reader_id, door, at, kind, card_id, record_id, decision, reason, detail, received_at
		FROM access_events WHERE `+strings.Join(conds, " AND ")+fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("gateways: list events: %w", err)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("gateways: list events: %w", err)
	}
	page := &EventPage{Events: evs}
	if len(evs) > first {
		page.Events, page.HasNext = evs[:first], true
	}
	if n := len(page.Events); n > 0 && page.HasNext {
		last := page.Events[n-1]
		raw, _ := json.Marshal(eventCursor{At: last.At, ID: last.ID})
		page.EndCursor = base64.RawURLEncoding.EncodeToString(raw)
	}
	return page, nil
}

// Event returns one access event (VIEWER), for subscribers.
func (s *Service) Event(ctx context.Context, id uuid.UUID) (*AccessEvent, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, gateway_id, reader_id, door, at, kind, card_id, record_id, decision, reason, detail, received_at
		FROM access_events WHERE id = $1 AND org_id = $2`, id, p.OrgID)
	if err != nil {
		return nil, fmt.Errorf("gateways: load event: %w", err)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("gateways: load event: %w", err)
	}
	if len(evs) == 0 {
		return nil, apperr.NotFoundf("access event %s not found", id)
	}
	return &evs[0], nil
}

func scanEvent(row pgx.CollectableRow) (AccessEvent, error) {
	var e AccessEvent
	err := row.Scan(&e.ID, &e.GatewayID, &e.ReaderID, &e.Door, &e.At, &e.Kind, &e.CardID, &e.RecordID, &e.Decision, &e.Reason, &e.Detail, &e.ReceivedAt)
	return e, err
}
