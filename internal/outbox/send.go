package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// due is a message claimed for sending.
type due struct {
	id                 uuid.UUID
	recipient, subject string
	text, html         string
	sealed             []byte
	attempts           int
}

// SendDue sends the messages that are due, until none is left, and returns
// how many it sent. Without an SMTP server it holds them instead (HELD, and
// logged with their links). A failed delivery is recorded on its message,
// not returned; the error is for trouble with the database.
//
// Several replicas may run it at once: each message is claimed with FOR
// UPDATE SKIP LOCKED in a transaction of its own that lasts for that
// message's SMTP exchange only. The row lock keeps every other sender off
// the message while it is sent, and since it commits with the message's
// new status, a crash mid-send leaves the message PENDING for the next run.
// A transaction per message (rather than per batch) means a slow or dying
// SMTP server holds one lock and one connection for at most one message's
// timeout, and every message sent is recorded at once. The SMTP connection,
// unlike the transaction, is reused across messages.
func (s *Service) SendDue(ctx context.Context) (sent int, err error) {
	sent, _, err = s.drain(ctx)
	return sent, err
}

// drain is SendDue; trouble says it stopped because the SMTP server (or
// its configuration) refused to take any message.
func (s *Service) drain(ctx context.Context) (sent int, trouble bool, err error) {
	if s.cfg.Addr == "" {
		return 0, false, s.holdDue(ctx)
	}
	// Messages held while no SMTP server was configured (on this replica or
	// another) go out now that one is.
	if _, err := s.db.Pool.Exec(ctx, `UPDATE outbox_messages SET status = 'PENDING', next_attempt_at = now() WHERE status = 'HELD'`); err != nil {
		return 0, false, fmt.Errorf("outbox: release held messages: %w", err)
	}
	var sess *session
	defer func() {
		if sess != nil {
			sess.close()
		}
	}()
	for {
		// Stop between messages rather than be cut off in the middle of
		// one: the next run takes the rest.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < s.cfg.Timeout+5*time.Second {
			return sent, false, nil
		}
		out, err := s.sendNext(ctx, &sess)
		switch {
		case err != nil:
			return sent, false, err
		case out == nothingDue:
			return sent, false, nil
		case out == delivered:
			sent++
		case out == serverTrouble:
			// The server (or the configuration) refuses every message
			// alike: trying all due ones now would only spend their
			// attempts. The periodic job comes back soon.
			return sent, true, nil
		}
	}
}

// outcome is what became of one claimed message.
type outcome int

const (
	nothingDue outcome = iota
	delivered
	notDelivered
	// serverTrouble: connecting, TLS or AUTH failed.
	serverTrouble
)

// sendNext claims the next due message, sends it on *sess (connecting if
// need be) and records the outcome.
func (s *Service) sendNext(ctx context.Context, sess **session) (outcome, error) {
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return nothingDue, fmt.Errorf("outbox: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var m due
	err = tx.QueryRow(ctx, `SELECT id, recipient, subject, text_body, html_body, sealed_secret, attempts FROM outbox_messages
		WHERE status = 'PENDING' AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&m.id, &m.recipient, &m.subject, &m.text, &m.html, &m.sealed, &m.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nothingDue, nil
	}
	if err != nil {
		return nothingDue, fmt.Errorf("outbox: claim a message: %w", err)
	}

	fail := s.deliver(ctx, sess, &m)
	if fail != nil && ctx.Err() != nil {
		// Cut off (shutdown): not the message's fault, not an attempt. The
		// rollback leaves it PENDING.
		return notDelivered, ctx.Err()
	}
	// The outcome is recorded even if ctx ends now: a message the server
	// has accepted must not be sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.record(rctx, tx, &m, fail); err != nil {
		return notDelivered, err
	}
	if err := tx.Commit(rctx); err != nil {
		return notDelivered, fmt.Errorf("outbox: record the outcome of %s: %w", m.id, err)
	}
	switch {
	case fail == nil:
		return delivered, nil
	case fail.setup:
		s.log.WarnContext(ctx, "e-mail not sent: cannot use the SMTP server", "id", m.id, "err", fail.err)
		return serverTrouble, nil
	}
	s.log.WarnContext(ctx, "e-mail not sent", "id", m.id, "to", m.recipient, "permanent", fail.permanent, "err", fail.err)
	return notDelivered, nil
}

// deliver opens the message's secret, composes it and sends it.
func (s *Service) deliver(ctx context.Context, sess **session, m *due) *failure {
	var secret string
	if m.sealed != nil {
		plain, err := s.open(m.id, m.sealed)
		if err != nil {
			return &failure{err: err, permanent: true}
		}
		secret = string(plain)
	}
	if *sess == nil {
		ss, fail := s.dial(ctx)
		if fail != nil {
			return fail
		}
		*sess = ss
	}
	text, html := bodies(m.text, m.html, secret)
	data, err := compose(m.id, s.from, m.recipient, m.subject, text, html, time.Now())
	if err != nil {
		return &failure{err: fmt.Errorf("compose: %w", err), permanent: true}
	}
	broken, fail := (*sess).send(ctx, s.cfg.Timeout, s.from.Address, m.recipient, data)
	if broken {
		(*sess).close()
		*sess = nil
	}
	return fail
}

func (s *Service) open(id uuid.UUID, sealed []byte) ([]byte, error) {
	if s.sealer == nil {
		return nil, errors.New("no master key to open the message's link")
	}
	plain, err := s.sealer.Open(sealed, id[:])
	if err != nil {
		return nil, fmt.Errorf("the message's link: %w", err)
	}
	return plain, nil
}

// record writes the outcome of a delivery into the claimed row.
func (s *Service) record(ctx context.Context, tx pgx.Tx, m *due, fail *failure) error {
	var err error
	switch {
	case fail == nil:
		_, err = tx.Exec(ctx, `UPDATE outbox_messages SET status = 'SENT', sent_at = clock_timestamp(), sealed_secret = NULL,
			attempts = attempts + 1, last_error = '' WHERE id = $1`, m.id)
	case fail.permanent || m.attempts+1 >= s.cfg.MaxAttempts:
		_, err = tx.Exec(ctx, `UPDATE outbox_messages SET status = 'FAILED', sealed_secret = NULL,
			attempts = attempts + 1, last_error = $2 WHERE id = $1`, m.id, errorText(fail.err))
	default:
		_, err = tx.Exec(ctx, `UPDATE outbox_messages SET attempts = attempts + 1, last_error = $2,
			next_attempt_at = clock_timestamp() + make_interval(secs => $3) WHERE id = $1`,
			m.id, errorText(fail.err), s.backoff(m.attempts).Seconds())
	}
	if err != nil {
		return fmt.Errorf("outbox: record the outcome of %s: %w", m.id, err)
	}
	return nil
}

// backoff is the wait after a message's attempts+1-th failure:
// BaseRetry·2^attempts, at most MaxRetry.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.BaseRetry
	for range attempts {
		if d >= s.cfg.MaxRetry {
			break
		}
		d *= 2
	}
	return min(d, s.cfg.MaxRetry)
}

// errorText keeps last_error to a readable length.
func errorText(err error) string {
	msg := err.Error()
	if len(msg) <= 1000 {
		return msg
	}
	cut := 1000
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

// holdDue marks the due messages HELD and logs each, with its link, for a
// developer running without an SMTP server. The link stays sealed in the
// row for `lintel outbox --links`.
func (s *Service) holdDue(ctx context.Context) error {
	for {
		rows, err := s.db.Pool.Query(ctx, `UPDATE outbox_messages m SET status = 'HELD'
			FROM (SELECT id FROM outbox_messages WHERE status = 'PENDING' AND next_attempt_at <= now()
				ORDER BY next_attempt_at, id LIMIT 100 FOR UPDATE SKIP LOCKED) d
			WHERE m.id = d.id
			RETURNING m.id, m.kind, m.recipient, m.subject, m.sealed_secret`)
		if err != nil {
			return fmt.Errorf("outbox: hold e-mail: %w", err)
		}
		type held struct {
			id                       uuid.UUID
			kind, recipient, subject string
			sealed                   []byte
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (held, error) {
			var h held
			return h, r.Scan(&h.id, &h.kind, &h.recipient, &h.subject, &h.sealed)
		})
		if err != nil {
			return fmt.Errorf("outbox: hold e-mail: %w", err)
		}
		for _, h := range list {
			attrs := []any{"id", h.id, "kind", h.kind, "to", h.recipient, "subject", h.subject}
			if h.sealed != nil {
				if link, err := s.open(h.id, h.sealed); err != nil {
					attrs = append(attrs, "link_error", err.Error())
				} else {
					attrs = append(attrs, "link", string(link))
				}
			}
			s.log.InfoContext(ctx, "e-mail held in the outbox (no SMTP server configured)", attrs...)
		}
		if len(list) == 0 {
			return nil
		}
	}
}
