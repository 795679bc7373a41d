package outbox

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
)

// HiddenLink shows where a message's link goes, in listings.
const HiddenLink = "(link hidden)"

// Item is one message as listings show it: never with its link.
type Item struct {
	ID        uuid.UUID
	Kind      Kind
	RecordID  *uuid.UUID
	Recipient string
	Subject   string
	// Text is the plain-text body, its link shown as HiddenLink.
	Text      string
	Status    Status
	Attempts  int
	LastError string
	CreatedAt time.Time
	SentAt    *time.Time
}

// Page is one page of messages, newest first.
type Page struct {
	Items []Item
	// EndCursor, passed as List's after, continues after the last item;
	// empty when HasNext is false.
	EndCursor string
	HasNext   bool
}

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

const itemColumns = `id, kind, record_id, recipient, subject, text_body, status, attempts, last_error, created_at, sent_at`

func scanItem(row pgx.Row, extra ...any) (Item, error) {
	var it Item
	err := row.Scan(append([]any{&it.ID, &it.Kind, &it.RecordID, &it.Recipient, &it.Subject, &it.Text, &it.Status,
		&it.Attempts, &it.LastError, &it.CreatedAt, &it.SentAt}, extra...)...)
	it.Text = strings.ReplaceAll(it.Text, LinkMarker, HiddenLink)
	return it, err
}

// List returns the e-mail of the caller's organisation, newest first
// (ADMIN).
func (s *Service) List(ctx context.Context, first int, after string) (*Page, error) {
	p, err := caller.Require(ctx, caller.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if first == 0 {
		first = DefaultPageSize
	}
	if first < 0 || first > MaxPageSize {
		return nil, apperr.Validation(apperr.FieldError{Path: "first", Reason: fmt.Sprintf("must be between 1 and %d", MaxPageSize)})
	}
	q := `SELECT ` + itemColumns + ` FROM outbox_messages WHERE org_id = $1`
	args := []any{p.OrgID}
	if after != "" {
		at, id, ok := decodeCursor(after)
		if !ok {
			return nil, apperr.New(apperr.Invalid, "after: not a cursor of this listing")
		}
		q += ` AND (created_at, id) < ($2, $3)`
		args = append(args, at, id)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, first+1)
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) { return scanItem(r) })
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	page := &Page{Items: items}
	if len(items) > first {
		page.Items, page.HasNext = items[:first], true
	}
	if page.HasNext {
		last := page.Items[len(page.Items)-1]
		page.EndCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

func encodeCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeCursor(c string) (time.Time, uuid.UUID, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.Nil, false
	}
	at, id, ok := strings.Cut(string(raw), "|")
	t, err1 := time.Parse(time.RFC3339Nano, at)
	u, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, uuid.Nil, false
	}
	return t, u, true
}

// Entry is one message in the operator's view of every organisation's
// outbox.
type Entry struct {
	Item
	OrgID        uuid.UUID
	Organisation string
	// Link is the message's unsealed link, when asked for and the message
	// is HELD or PENDING.
	Link string
}

// RecentOptions select what Recent lists.
type RecentOptions struct {
	// Status, when set, lists only messages with it.
	Status Status
	// Limit caps the list (default 50).
	Limit int
	// Links unseals the links of HELD and PENDING messages; the service
	// needs the master key.
	Links bool
}

// Recent lists the newest messages of every organisation. It checks no
// caller: it is for `lintel outbox`, run on the server with its database
// and master key.
func (s *Service) Recent(ctx context.Context, o RecentOptions) ([]Entry, error) {
	if o.Status != "" && !o.Status.Valid() {
		return nil, apperr.New(apperr.Invalid, "unknown status %q (PENDING, HELD, SENT, FAILED or CANCELLED)", o.Status)
	}
	if o.Limit <= 0 {
		o.Limit = DefaultPageSize
	}
	if o.Links && s.sealer == nil {
		return nil, fmt.Errorf("outbox: links need the master key")
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT m.`+strings.ReplaceAll(itemColumns, ", ", ", m.")+`, m.org_id, o.name,
			CASE WHEN $3 AND m.status IN ('HELD', 'PENDING') THEN m.sealed_secret END
		FROM outbox_messages m JOIN organisations o ON o.id = m.org_id
		WHERE $1 = '' OR m.status = $1
		ORDER BY m.created_at DESC, m.id DESC LIMIT $2`, string(o.Status), o.Limit, o.Links)
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var sealed []byte
		var err error
		e.Item, err = scanItem(r, &e.OrgID, &e.Organisation, &sealed)
		if err != nil || sealed == nil {
			return e, err
		}
		link, err := s.open(e.ID, sealed)
		if err != nil {
			return e, fmt.Errorf("message %s to %s: %w", e.ID, e.Recipient, err)
		}
		e.Link = string(link)
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	return entries, nil
}
