package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
)

// LinkMarker stands in a message's bodies for its Secret, which replaces it
// only when the message is sent (HTML-escaped in the HTML body).
const LinkMarker = "[[link]]"

// Kind says why a message is sent.
type Kind string

// The kinds of message.
const (
	// KindInvitation carries an invitation link to set up a mobile card.
	KindInvitation Kind = "INVITATION"
	// KindRemoved tells a cardholder their card was withdrawn.
	KindRemoved Kind = "REMOVED"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindInvitation || k == KindRemoved }

// Status is where a message stands.
type Status string

// The statuses of a message.
const (
	// StatusPending waits to be sent (again, after a temporary failure, once
	// its next attempt is due).
	StatusPending Status = "PENDING"
	// StatusHeld was not sent because no SMTP server is configured.
	StatusHeld Status = "HELD"
	// StatusSent was accepted by the SMTP server.
	StatusSent Status = "SENT"
	// StatusFailed was refused for good, or failed too many times.
	StatusFailed Status = "FAILED"
	// StatusCancelled was superseded before it was sent.
	StatusCancelled Status = "CANCELLED"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusHeld, StatusSent, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Message is an e-mail to write into the outbox.
type Message struct {
	OrgID     uuid.UUID
	Kind      Kind
	RecordID  *uuid.UUID
	Recipient string
	Subject   string
	// Text and HTML are the two renderings of the body (see
	// RenderInvitation, RenderRemoved); both may hold LinkMarker.
	Text, HTML string
	// Secret replaces LinkMarker when the message is sent. It is sealed
	// with the master key and never stored in clear.
	Secret string
}

// writeChunk bounds how many messages one INSERT carries: a 10,000-row
// import's invitations take a handful of statements, and no single
// statement's parameters grow without limit.
const writeChunk = 2000

const insertSQL = `INSERT INTO outbox_messages (id, org_id, kind, record_id, recipient, subject, text_body, html_body, sealed_secret)
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[])`

// Write inserts msgs through db, which should be the transaction of the
// change that causes them: the e-mail then exists if and only if the change
// commits. Call Kick after the commit. Many messages go in a few multi-row
// statements.
func (s *Service) Write(ctx context.Context, db bun.IDB, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	// bun interpolates its ? placeholders into the query text; going to
	// the database/sql handle under it keeps the arrays as bound
	// parameters, which pgx sends in binary.
	var sqlExec interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
	switch x := db.(type) {
	case bun.Tx:
		sqlExec = x.Tx
	case *bun.Tx:
		sqlExec = x.Tx
	case *bun.DB:
		sqlExec = x.DB
	case bun.Conn:
		sqlExec = x.Conn
	default:
		return fmt.Errorf("outbox: write through %T is not supported", db)
	}
	return s.write(msgs, func(args ...any) error {
		_, err := sqlExec.ExecContext(ctx, insertSQL, args...)
		return err
	})
}

// WritePgx is Write for code that holds a pgx transaction.
func (s *Service) WritePgx(ctx context.Context, tx pgx.Tx, msgs ...Message) error {
	return s.write(msgs, func(args ...any) error {
		_, err := tx.Exec(ctx, insertSQL, args...)
		return err
	})
}

func (s *Service) write(msgs []Message, exec func(args ...any) error) error {
	for i := range msgs {
		if err := s.check(&msgs[i]); err != nil {
			if len(msgs) == 1 {
				return err
			}
			if e, ok := apperr.As(err); ok {
				return apperr.New(e.Code, "e-mail %d of %d: %s", i+1, len(msgs), e.Message)
			}
			return fmt.Errorf("e-mail %d of %d: %w", i+1, len(msgs), err)
		}
	}
	for start := 0; start < len(msgs); start += writeChunk {
		chunk := msgs[start:min(start+writeChunk, len(msgs))]
		n := len(chunk)
		ids, orgs, records := make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		kinds, rcpts, subjects, texts, htmls := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sealed := make([][]byte, n)
		for i, m := range chunk {
			id := uuid.New()
			ids[i] = pgtype.UUID{Bytes: id, Valid: true}
			orgs[i] = pgtype.UUID{Bytes: m.OrgID, Valid: true}
			if m.RecordID != nil {
				records[i] = pgtype.UUID{Bytes: *m.RecordID, Valid: true}
			}
			kinds[i], rcpts[i], subjects[i], texts[i], htmls[i] = string(m.Kind), m.Recipient, m.Subject, m.Text, m.HTML
			if m.Secret != "" {
				sealed[i] = s.sealer.Seal([]byte(m.Secret), id[:])
			}
		}
		if err := exec(ids, orgs, kinds, records, rcpts, subjects, texts, htmls, sealed); err != nil {
			return fmt.Errorf("outbox: write %d e-mail: %w", n, err)
		}
	}
	return nil
}

// check refuses a message that could not be sent as meant.
func (s *Service) check(m *Message) error {
	switch {
	case m.OrgID == uuid.Nil:
		return errors.New("outbox: message without an organisation")
	case !m.Kind.Valid():
		return fmt.Errorf("outbox: unknown kind %q", m.Kind)
	case !PlausibleAddress(m.Recipient):
		return apperr.New(apperr.Invalid, "%q is not a plausible e-mail address", m.Recipient)
	case strings.TrimSpace(m.Subject) == "":
		return errors.New("outbox: message without a subject")
	case strings.IndexFunc(m.Subject, unicode.IsControl) >= 0:
		// A line break in a header would let the subject add headers.
		return errors.New("outbox: the subject holds control characters")
	case strings.Contains(m.Subject, LinkMarker):
		return errors.New("outbox: the link marker belongs in the body, not the subject")
	}
	hasMarker := strings.Contains(m.Text, LinkMarker) || strings.Contains(m.HTML, LinkMarker)
	if m.Secret != "" {
		if s.sealer == nil {
			return errors.New("outbox: no master key to seal the message's link")
		}
		if !hasMarker {
			return errors.New("outbox: the message has a link but its body has no place for it")
		}
	} else if hasMarker {
		return errors.New("outbox: the body has a link marker but the message has no link")
	}
	return nil
}

// PlausibleAddress reports whether s is a bare e-mail address a message
// could be delivered to: local@domain, the domain with at least one dot, no
// display name, comment or line break.
func PlausibleAddress(s string) bool {
	if len(s) > 254 || s != strings.TrimSpace(s) || strings.ContainsAny(s, "<>\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if local == "" || len(local) > 64 || !strings.Contains(domain, ".") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
	}
	return true
}

// CancelForRecord marks the unsent messages of kind about record recordID
// CANCELLED and erases their secrets, through db (the transaction that
// supersedes them, e.g. a resent invitation). A message being sent at that
// moment is waited for: it is either sent or cancelled, never both.
func (s *Service) CancelForRecord(ctx context.Context, db bun.IDB, recordID uuid.UUID, kind Kind) error {
	if _, err := db.NewRaw(`UPDATE outbox_messages SET status = 'CANCELLED', sealed_secret = NULL
		WHERE record_id = ? AND kind = ? AND status IN ('PENDING', 'HELD')`, recordID, kind).Exec(ctx); err != nil {
		return fmt.Errorf("outbox: cancel e-mail of record %s: %w", recordID, err)
	}
	return nil
}
