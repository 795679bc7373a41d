package gateways

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/credentials"
)

// Entry is what a door knows about one record: enough to decide alone.
type Entry struct {
	Version    int64
	RecordID   uuid.UUID
	TemplateID uuid.UUID
	CardID     string
	Status     string
	ValidFrom  *time.Time
	ExpiresAt  *time.Time
	// Removed: the card ID no longer belongs to the record (deleted, or
	// its card ID changed).
	Removed bool
}

// Page is a slice of the access list.
type Page struct {
	Entries []Entry
	// Full pages (from an empty cursor) list every record; once the last
	// full page is read, the gateway replaces its list with them.
	Full    bool
	Cursor  string
	HasMore bool
	// Version is the feed position the gateway holds once it has applied
	// this page (meaningful when HasMore is false).
	Version int64
	// Keys are the organisation's published credential issuing keys.
	Keys []credentials.PublicKey
}

// KeySource lists published issuing keys.
type KeySource interface {
	Published(ctx context.Context) ([]credentials.PublicKey, error)
}

// Cursors: "f:<version>:<last record id>" while a full sync pages through
// the records (version = the feed position it started at), then
// "d:<version>" for deltas.
func parseCursor(c string) (full bool, version int64, after uuid.UUID, err error) {
	bad := apperr.Validation(apperr.FieldError{Path: "since", Reason: "not a cursor returned by accessList"})
	parts := strings.Split(c, ":")
	switch {
	case len(parts) == 3 && parts[0] == "f":
		version, err = strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return false, 0, uuid.Nil, bad
		}
		if parts[2] != "" {
			if after, err = uuid.Parse(parts[2]); err != nil {
				return false, 0, uuid.Nil, bad
			}
		}
		return true, version, after, nil
	case len(parts) == 2 && parts[0] == "d":
		version, err = strconv.ParseInt(parts[1], 10, 64)
		if err != nil || version < 0 {
			return false, 0, uuid.Nil, bad
		}
		return false, version, uuid.Nil, nil
	}
	return false, 0, uuid.Nil, bad
}

// AccessList returns the next page of the organisation's access list for a
// gateway: everything from an empty cursor, then the changes since the
// cursor (GATEWAY).
func (s *Service) AccessList(ctx context.Context, keys KeySource, since string, first int) (*Page, error) {
	p, err := caller.Require(ctx, caller.RoleGateway)
	if err != nil {
		return nil, err
	}
	if first <= 0 {
		first = 5000
	}
	if first > 20000 {
		return nil, apperr.Validation(apperr.FieldError{Path: "first", Reason: "at most 20000"})
	}
	page := &Page{}
	full, version, after := true, int64(0), uuid.Nil
	if since == "" {
		// The feed position now: changes after it are replayed once the
		// full pages are read, so nothing committed meanwhile is missed.
		if err := s.db.Pool.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM access_list_changes WHERE org_id = $1`, p.OrgID).Scan(&version); err != nil {
			return nil, fmt.Errorf("gateways: read feed position: %w", err)
		}
	} else if full, version, after, err = parseCursor(since); err != nil {
		return nil, err
	}
	page.Full, page.Version = full, version
	if full {
		rows, err := s.db.Pool.Query(ctx, `SELECT id, template_id, card_id, status, valid_from, expires_at FROM card_records
			WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`, p.OrgID, after, first+1)
		if err != nil {
			return nil, fmt.Errorf("gateways: read records: %w", err)
		}
		for rows.Next() {
			var e Entry
			if err := rows.Scan(&e.RecordID, &e.TemplateID, &e.CardID, &e.Status, &e.ValidFrom, &e.ExpiresAt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("gateways: read records: %w", err)
			}
			e.Version = version
			page.Entries = append(page.Entries, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("gateways: read records: %w", err)
		}
		if len(page.Entries) > first {
			page.Entries, page.HasMore = page.Entries[:first], true
			page.Cursor = fmt.Sprintf("f:%d:%s", version, page.Entries[first-1].RecordID)
		} else {
			// The full list is read; the changes since its start follow.
			page.HasMore = true
			page.Cursor = fmt.Sprintf("d:%d", version)
		}
	} else {
		rows, err := s.db.Pool.Query(ctx, `SELECT version, record_id, template_id, card_id, status, valid_from, expires_at, removed
			FROM access_list_changes WHERE org_id = $1 AND version > $2 ORDER BY version LIMIT $3`, p.OrgID, version, first+1)
		if err != nil {
			return nil, fmt.Errorf("gateways: read changes: %w", err)
		}
		for rows.Next() {
			var e Entry
			if err := rows.Scan(&e.Version, &e.RecordID, &e.TemplateID, &e.CardID, &e.Status, &e.ValidFrom, &e.ExpiresAt, &e.Removed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("gateways: read changes: %w", err)
			}
			page.Entries = append(page.Entries, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("gateways: read changes: %w", err)
		}
		if len(page.Entries) > first {
			page.Entries, page.HasMore = page.Entries[:first], true
		}
		if n := len(page.Entries); n > 0 {
			page.Version = page.Entries[n-1].Version
		}
		page.Cursor = fmt.Sprintf("d:%d", page.Version)
	}
	all, err := keys.Published(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range all {
		if k.OrgID == p.OrgID {
			page.Keys = append(page.Keys, k)
		}
	}
	if _, err := s.db.Pool.Exec(ctx, `UPDATE gateways SET last_seen_at = now() WHERE id = $1`, p.OperatorID); err != nil {
		return nil, fmt.Errorf("gateways: note contact: %w", err)
	}
	return page, nil
}
