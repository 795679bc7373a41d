package outbox

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/sealer"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// testBundle is one test's database, outbox service and mail server.
type testBundle struct {
	t    *testing.T
	ctx  context.Context
	db   *store.DB
	svc  *Service
	mail *mailServer
	log  *syncBuffer
	org  uuid.UUID
}

type setupOptions struct {
	server mailServerOptions
	// noServer configures no SMTP server at all.
	noServer bool
	// config adjusts the server configuration the service is built from.
	config func(*config.Config)
	// service adjusts the service's configuration.
	service func(*Config)
}

func setup(t *testing.T, o setupOptions) *testBundle {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, testdb.URL(t), store.Options{MaxConns: 8})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	b := &testBundle{t: t, ctx: ctx, db: db, log: &syncBuffer{}, org: uuid.New()}
	b.exec(`INSERT INTO organisations (id, name) VALUES ($1, 'Café Zürich')`, b.org)

	c := &config.Config{SMTPTLS: "starttls", SMTPFrom: "Lintel <no-reply@lintel.test>"}
	if !o.noServer {
		b.mail = startMailServer(t, o.server)
		c.SMTPAddr, c.SMTPCAFile, c.SMTPUsername, c.SMTPPassword = b.mail.Addr, b.mail.CAFile, mailUser, mailPassword
		if o.server.implicitTLS {
			c.SMTPTLS = "tls"
		}
	}
	if o.config != nil {
		o.config(c)
	}
	cfg, err := ConfigFrom(c)
	require.NoError(t, err)
	cfg.Timeout = 5 * time.Second
	if o.service != nil {
		o.service(&cfg)
	}
	s, err := sealer.New(bytes.Repeat([]byte{42}, 32))
	require.NoError(t, err)
	b.svc = New(db, s, cfg, slog.New(slog.NewTextHandler(b.log, nil)))
	return b
}

func (b *testBundle) exec(q string, args ...any) {
	b.t.Helper()
	_, err := b.db.Pool.Exec(b.ctx, q, args...)
	require.NoError(b.t, err)
}

// row is a message as stored.
type row struct {
	Status        Status
	Attempts      int
	LastError     string
	Sealed        []byte
	NextAttemptIn time.Duration
	SentAt        *time.Time
}

func (b *testBundle) row(recipient string) row {
	b.t.Helper()
	var r row
	var next float64
	require.NoError(b.t, b.db.Pool.QueryRow(b.ctx, `SELECT status, attempts, last_error, sealed_secret,
			extract(epoch FROM next_attempt_at - now())::float8, sent_at
		FROM outbox_messages WHERE recipient = $1`, recipient).
		Scan(&r.Status, &r.Attempts, &r.LastError, &r.Sealed, &next, &r.SentAt))
	r.NextAttemptIn = time.Duration(next * float64(time.Second))
	return r
}

// makeDue makes every pending message due now.
func (b *testBundle) makeDue() {
	b.exec(`UPDATE outbox_messages SET next_attempt_at = now() - interval '1 second' WHERE status = 'PENDING'`)
}

func (b *testBundle) sendDue() int {
	b.t.Helper()
	n, err := b.svc.SendDue(b.ctx)
	require.NoError(b.t, err)
	return n
}

// write commits msgs in a transaction of their own.
func (b *testBundle) write(msgs ...Message) {
	b.t.Helper()
	require.NoError(b.t, pgx.BeginFunc(b.ctx, b.db.Pool, func(tx pgx.Tx) error {
		return b.svc.WritePgx(b.ctx, tx, msgs...)
	}))
}

// invitation is a rendered invitation to rcpt carrying link.
func (b *testBundle) invitation(rcpt, link string) Message {
	b.t.Helper()
	subject, text, html, err := RenderInvitation(InvitationData{Organisation: "Café Zürich", TemplateName: "Members",
		CardholderName: "Ada Lovelace", ExpiresAt: time.Date(2030, 5, 17, 9, 30, 0, 0, time.UTC)})
	require.NoError(b.t, err)
	rec := uuid.New()
	return Message{OrgID: b.org, Kind: KindInvitation, RecordID: &rec, Recipient: rcpt, Subject: subject, Text: text, HTML: html, Secret: link}
}

// notice is a rendered removal notice to rcpt.
func (b *testBundle) notice(rcpt string) Message {
	b.t.Helper()
	subject, text, html, err := RenderRemoved(RemovedData{Organisation: "Café Zürich", TemplateName: "Members"})
	require.NoError(b.t, err)
	return Message{OrgID: b.org, Kind: KindRemoved, Recipient: rcpt, Subject: subject, Text: text, HTML: html}
}

// linkInClear counts stored rows that show link anywhere.
func (b *testBundle) linkInClear(link string) int {
	b.t.Helper()
	var n int
	require.NoError(b.t, b.db.Pool.QueryRow(b.ctx, `SELECT count(*) FROM outbox_messages m WHERE strpos(m::text, $1) > 0`, link).Scan(&n))
	return n
}

// parsed is a received message taken apart.
type parsed struct {
	header      mail.Header
	subject     string
	text, html  string
	partHeaders []map[string][]string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	var p parsed
	p.header = m.Header
	p.subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mediaType)
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		p.partHeaders = append(p.partHeaders, part.Header)
		require.Equal(t, "quoted-printable", part.Header.Get("Content-Transfer-Encoding"))
		raw, err := io.ReadAll(quotedprintable.NewReader(part))
		require.NoError(t, err)
		require.NotRegexp(t, "[^\r]\n", string(raw), "lines end in CRLF")
		body := strings.ReplaceAll(string(raw), "\r\n", "\n")
		switch part.Header.Get("Content-Type") {
		case "text/plain; charset=utf-8":
			p.text = body
		case "text/html; charset=utf-8":
			p.html = body
		default:
			t.Fatalf("unexpected part %q", part.Header.Get("Content-Type"))
		}
	}
	return p
}

func TestAnInvitationArrivesWithItsLinkAndTheLinkIsThenErased(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	link := "https://lintel.test/invite?t=tok-3141&lang=de"
	b.write(b.invitation("ada@example.org", link))
	require.Zero(t, b.linkInClear(link), "the link is stored sealed only")
	require.NotEmpty(t, b.row("ada@example.org").Sealed)

	require.Equal(t, 1, b.sendDue())

	got, err := b.mail.messageTo("ada@example.org")
	require.NoError(t, err)
	require.Equal(t, "no-reply@lintel.test", got.From)
	m := parse(t, got.Data)
	require.Equal(t, `"Lintel" <no-reply@lintel.test>`, m.header.Get("From"))
	require.Equal(t, "<ada@example.org>", m.header.Get("To"))
	require.Equal(t, "Your Members card from Café Zürich", m.subject)
	require.True(t, strings.HasPrefix(m.header.Get("Subject"), "=?utf-8?q?"), "a non-ASCII subject is RFC 2047 encoded: %q", m.header.Get("Subject"))
	date, err := m.header.Date()
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), date, time.Minute)
	require.Regexp(t, `^<[0-9a-f-]{36}@lintel\.test>$`, m.header.Get("Message-ID"))
	require.Equal(t, "1.0", m.header.Get("MIME-Version"))
	require.Len(t, m.partHeaders, 2, "a text and an HTML part")

	require.Contains(t, m.text, "Hello Ada Lovelace,")
	require.Contains(t, m.text, "\n"+link+"\n")
	require.Contains(t, m.text, "one phone only, until Friday 17 May 2030, 09:30 UTC")
	require.NotContains(t, m.text, LinkMarker)
	require.Contains(t, m.html, `href="https://lintel.test/invite?t=tok-3141&amp;lang=de"`, "the link is HTML-escaped in the HTML part")
	require.NotContains(t, m.html, link, "the raw & never appears in HTML")
	require.NotContains(t, m.html, LinkMarker)
	require.Contains(t, m.html, "<strong>Café Zürich</strong>")

	r := b.row("ada@example.org")
	require.Equal(t, StatusSent, r.Status)
	require.Nil(t, r.Sealed, "the sealed link is erased once sent")
	require.NotNil(t, r.SentAt)
	require.Equal(t, 1, r.Attempts)
	require.Zero(t, b.linkInClear(link))
	require.Zero(t, b.sendDue(), "a sent message is not sent again")
	require.Len(t, b.mail.received(), 1)
}

func TestAMessageWhoseTransactionRollsBackIsNeverSent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	ctx := b.ctx
	tx, err := b.db.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, b.svc.Write(ctx, tx, b.invitation("ada@example.org", "https://lintel.test/i/1")))
	require.NoError(t, tx.Rollback())

	ptx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, b.svc.WritePgx(ctx, ptx, b.notice("bo@example.org")))
	require.NoError(t, ptx.Rollback(ctx))

	require.Zero(t, b.sendDue())
	require.Empty(t, b.mail.received())
	var n int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n))
	require.Zero(t, n)
}

func TestATemporaryRefusalIsRetriedOnceDue(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	b.mail.refuseRecipient("ada@example.org", &smtpError451)
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/1"))

	require.Zero(t, b.sendDue())
	r := b.row("ada@example.org")
	require.Equal(t, StatusPending, r.Status)
	require.Equal(t, 1, r.Attempts)
	require.Contains(t, r.LastError, "451")
	require.Contains(t, r.LastError, "mailbox busy")
	require.InDelta(t, 30, r.NextAttemptIn.Seconds(), 5, "the first retry waits BaseRetry")
	require.NotNil(t, r.Sealed, "the link is kept for the retry")

	require.Zero(t, b.sendDue(), "not retried before it is due")
	require.Equal(t, 1, b.mail.rcptCount("ada@example.org"))

	b.mail.refuseRecipient("ada@example.org", nil)
	b.makeDue()
	require.Equal(t, 1, b.sendDue())
	r = b.row("ada@example.org")
	require.Equal(t, StatusSent, r.Status)
	require.Equal(t, 2, r.Attempts)
	require.Empty(t, r.LastError)
	m, err := b.mail.messageTo("ada@example.org")
	require.NoError(t, err)
	require.Contains(t, parse(t, m.Data).text, "https://lintel.test/i/1")
}

func TestAMessageRefusedTemporarilyTooOftenFails(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{service: func(c *Config) { c.MaxAttempts = 3 }})
	b.mail.refuseRecipient("ada@example.org", &smtpError451)
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/1"))
	var waits []float64
	for range 3 {
		require.Zero(t, b.sendDue())
		waits = append(waits, b.row("ada@example.org").NextAttemptIn.Seconds())
		b.makeDue()
	}
	require.InDelta(t, 30, waits[0], 5)
	require.InDelta(t, 60, waits[1], 5, "the wait doubles")
	r := b.row("ada@example.org")
	require.Equal(t, StatusFailed, r.Status)
	require.Equal(t, 3, r.Attempts)
	require.Nil(t, r.Sealed)
	require.Zero(t, b.sendDue())
	require.Equal(t, 3, b.mail.rcptCount("ada@example.org"))
}

func TestAPermanentRefusalFailsTheMessageAndTheOthersGoOn(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	b.mail.refuseRecipient("nobody@example.org", &smtpError550)
	b.write(b.invitation("nobody@example.org", "https://lintel.test/i/1"))
	b.write(b.notice("bo@example.org"))

	require.Equal(t, 1, b.sendDue())
	r := b.row("nobody@example.org")
	require.Equal(t, StatusFailed, r.Status)
	require.Equal(t, 1, r.Attempts)
	require.Contains(t, r.LastError, "550")
	require.Contains(t, r.LastError, "no such mailbox")
	require.Nil(t, r.Sealed)
	require.Equal(t, StatusSent, b.row("bo@example.org").Status, "the next message goes through after a refusal")
	m, err := b.mail.messageTo("bo@example.org")
	require.NoError(t, err)
	require.Contains(t, parse(t, m.Data).text, "has been withdrawn")

	b.exec(`UPDATE outbox_messages SET next_attempt_at = now() - interval '1 hour'`)
	require.Zero(t, b.sendDue())
	require.Equal(t, 1, b.mail.rcptCount("nobody@example.org"), "a failed message is not retried")
}

func TestStartTLSModeRefusesAServerWithoutSTARTTLS(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{server: mailServerOptions{noTLS: true}})
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/secret-token"))

	require.Zero(t, b.sendDue())
	r := b.row("ada@example.org")
	require.Equal(t, StatusPending, r.Status)
	require.Equal(t, 1, r.Attempts)
	require.Contains(t, r.LastError, "does not offer STARTTLS: refusing to send in clear")
	require.Zero(t, b.mail.mailCommands())
	wire := b.mail.wireBytes()
	require.Contains(t, wire, "EHLO")
	require.NotContains(t, wire, "AUTH", "the password never crossed in clear")
	require.NotContains(t, wire, "ada@example.org")
	require.NotContains(t, wire, "secret-token")
}

func TestAWrongPasswordSendsNothingAndSpendsOneAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{config: func(c *config.Config) { c.SMTPPassword = "wrong" }})
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/1"))
	b.write(b.invitation("bo@example.org", "https://lintel.test/i/2"))

	require.Zero(t, b.sendDue())
	require.Empty(t, b.mail.received())
	require.Zero(t, b.mail.mailCommands())
	first, second := b.row("ada@example.org"), b.row("bo@example.org")
	require.Equal(t, StatusPending, first.Status)
	require.Equal(t, 1, first.Attempts)
	require.Contains(t, first.LastError, "AUTH PLAIN as lintel")
	require.Contains(t, first.LastError, "535")
	require.Equal(t, 0, second.Attempts, "a server refusing everyone does not use up every message's attempts")
}

func TestARefusedSenderKeepsTheMailPending(t *testing.T) {
	t.Parallel()
	// The server wants AUTH, the configuration has no user name: MAIL FROM
	// is refused with a 5xx, which is no reason to give the message up.
	b := setup(t, setupOptions{config: func(c *config.Config) { c.SMTPUsername, c.SMTPPassword = "", "" }})
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/1"))
	b.write(b.invitation("bo@example.org", "https://lintel.test/i/2"))

	require.Zero(t, b.sendDue())
	first := b.row("ada@example.org")
	require.Equal(t, StatusPending, first.Status)
	require.Equal(t, 1, first.Attempts)
	require.Contains(t, first.LastError, "MAIL FROM <no-reply@lintel.test>: 502")
	require.NotNil(t, first.Sealed)
	require.Equal(t, 0, b.row("bo@example.org").Attempts)
	require.Empty(t, b.mail.received())
}

func TestAnUntrustedCertificateSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{config: func(c *config.Config) { c.SMTPCAFile = "" }})
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/1"))

	require.Zero(t, b.sendDue())
	r := b.row("ada@example.org")
	require.Equal(t, StatusPending, r.Status)
	require.Contains(t, r.LastError, "certificate")
	require.Zero(t, b.mail.mailCommands())
}

func TestImplicitTLSDelivers(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{server: mailServerOptions{implicitTLS: true}})
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/tls-link"))
	require.Equal(t, 1, b.sendDue())
	_, err := b.mail.messageTo("ada@example.org")
	require.NoError(t, err)
	require.NotContains(t, b.mail.wireBytes(), "ada@example.org", "everything crossed encrypted")
}

func TestWithoutSMTPMessagesAreHeldAndTheLinkIsLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noServer: true})
	link := "https://lintel.test/invite?t=dev-link"
	b.write(b.invitation("ada@example.org", link), b.notice("bo@example.org"))

	require.Zero(t, b.sendDue())
	log := b.log.String()
	require.Contains(t, log, "level=INFO")
	require.Contains(t, log, `msg="e-mail held in the outbox (no SMTP server configured)"`)
	require.Contains(t, log, "to=ada@example.org")
	require.Contains(t, log, `subject="Your Members card from Café Zürich"`)
	require.Contains(t, log, "link="+`"`+link+`"`)
	require.Contains(t, log, "to=bo@example.org")
	require.Equal(t, 1, strings.Count(log, "link="), "only the invitation has a link")

	r := b.row("ada@example.org")
	require.Equal(t, StatusHeld, r.Status)
	require.NotNil(t, r.Sealed, "a held link is kept (sealed) for lintel outbox --links")
	require.Zero(t, b.linkInClear(link))
	require.Equal(t, StatusHeld, b.row("bo@example.org").Status)

	entries, err := b.svc.Recent(b.ctx, RecentOptions{Links: true})
	require.NoError(t, err)
	links := map[string]string{}
	for _, e := range entries {
		links[e.Recipient] = e.Link
	}
	require.Equal(t, map[string]string{"ada@example.org": link, "bo@example.org": ""}, links)

	require.Zero(t, b.sendDue())
	require.Equal(t, 2, strings.Count(b.log.String(), "e-mail held"), "held messages are logged once")
}

func TestConcurrentSendersSendEachMessageOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	const n = 40
	var msgs []Message
	for i := range n {
		msgs = append(msgs, b.invitation(recipient(i), "https://lintel.test/i/"+recipient(i)))
	}
	b.write(msgs...)

	results := make(chan int, 3)
	for range 3 {
		go func() {
			sent, err := b.svc.SendDue(b.ctx)
			if err != nil {
				t.Error(err)
			}
			results <- sent
		}()
	}
	total := 0
	for range 3 {
		total += <-results
	}
	require.Equal(t, n, total)
	require.Len(t, b.mail.received(), n)
	for i := range n {
		require.Equal(t, 1, b.mail.rcptCount(recipient(i)), "message %d", i)
		m, err := b.mail.messageTo(recipient(i))
		require.NoError(t, err)
		require.Contains(t, parse(t, m.Data).text, "https://lintel.test/i/"+recipient(i), "each message carries its own link")
	}
}

func recipient(i int) string {
	return "holder" + strings.Repeat("x", i%3) + uuid.NewSHA1(uuid.Nil, []byte{byte(i)}).String()[:8] + "@example.org"
}

func TestCancelledMessagesAreNotSentAndLoseTheirLink(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	inv := b.invitation("ada@example.org", "https://lintel.test/i/old")
	removed := b.notice("ada.removed@example.org")
	removed.RecordID = inv.RecordID
	b.write(inv, removed)

	tx, err := b.db.Bun.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	require.NoError(t, b.svc.CancelForRecord(b.ctx, tx, *inv.RecordID, KindInvitation))
	require.NoError(t, tx.Commit())

	require.Equal(t, 1, b.sendDue())
	r := b.row("ada@example.org")
	require.Equal(t, StatusCancelled, r.Status)
	require.Nil(t, r.Sealed)
	require.Zero(t, b.mail.rcptCount("ada@example.org"))
	require.Equal(t, StatusSent, b.row("ada.removed@example.org").Status, "only the kind asked for is cancelled")
}

func TestWriteRefusesMessagesThatCannotBeSentAsMeant(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noServer: true})
	good := b.invitation("ada@example.org", "https://lintel.test/i/1")
	for _, c := range []struct {
		name   string
		change func(*Message)
	}{
		{"a recipient that is not an address", func(m *Message) { m.Recipient = "not-an-address" }},
		{"a recipient with a display name", func(m *Message) { m.Recipient = "Ada <ada@example.org>" }},
		{"a recipient without a domain dot", func(m *Message) { m.Recipient = "ada@localhost" }},
		{"a recipient smuggling a header", func(m *Message) { m.Recipient = "ada@example.org\r\nBcc: eve@example.org" }},
		{"an empty recipient", func(m *Message) { m.Recipient = "" }},
		{"a subject with a line break", func(m *Message) { m.Subject = "Hi\r\nBcc: eve@example.org" }},
		{"a link without a place in the body", func(m *Message) {
			m.Text = strings.ReplaceAll(m.Text, LinkMarker, "")
			m.HTML = strings.ReplaceAll(m.HTML, LinkMarker, "")
		}},
		{"a marker without a link", func(m *Message) { m.Secret = "" }},
		{"an unknown kind", func(m *Message) { m.Kind = "SPAM" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := good
			c.change(&m)
			err := pgx.BeginFunc(b.ctx, b.db.Pool, func(tx pgx.Tx) error { return b.svc.WritePgx(b.ctx, tx, good, m) })
			require.Error(t, err)
			require.Contains(t, err.Error(), "e-mail 2 of 2")
		})
	}
	var n int
	require.NoError(t, b.db.Pool.QueryRow(b.ctx, `SELECT count(*) FROM outbox_messages`).Scan(&n))
	require.Zero(t, n, "nothing of a refused batch is written")
}

func TestTenThousandInvitationsAreWrittenInOneGo(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noServer: true})
	const n = 10_000
	base := b.invitation("x@example.org", "")
	msgs := make([]Message, n)
	for i := range msgs {
		m := base
		m.Recipient = "holder" + uuid.NewString()[:13] + "@example.org"
		m.Secret = "https://lintel.test/i/" + m.Recipient
		msgs[i] = m
	}
	tx, err := b.db.Bun.BeginTx(b.ctx, nil)
	require.NoError(t, err)
	require.NoError(t, b.svc.Write(b.ctx, tx, msgs...))
	require.NoError(t, tx.Commit())

	var count, sealed, distinct int
	require.NoError(t, b.db.Pool.QueryRow(b.ctx, `SELECT count(*), count(sealed_secret), count(DISTINCT recipient)
		FROM outbox_messages WHERE status = 'PENDING'`).Scan(&count, &sealed, &distinct))
	require.Equal(t, n, count)
	require.Equal(t, n, sealed)
	require.Equal(t, n, distinct)

	entries, err := b.svc.Recent(b.ctx, RecentOptions{Limit: 20, Links: true})
	require.NoError(t, err)
	require.Len(t, entries, 20)
	for _, e := range entries {
		require.Equal(t, "https://lintel.test/i/"+e.Recipient, e.Link, "every message's link opens, and is its own")
	}
}

func TestConfigFromExplainsBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	for _, c := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"a CA file that is missing", config.Config{SMTPAddr: "mail.test:587", SMTPTLS: "starttls", SMTPCAFile: dir + "/missing.pem"}, dir + "/missing.pem"},
		{"a CA file without certificates", config.Config{SMTPAddr: "mail.test:587", SMTPTLS: "starttls", SMTPCAFile: notPEM}, notPEM + " holds no PEM certificate"},
		{"a password in clear to another machine", config.Config{SMTPAddr: "mail.test:25", SMTPTLS: "none", SMTPUsername: "u"}, "would send the password in clear"},
		{"an address without a port", config.Config{SMTPAddr: "mail.test", SMTPTLS: "starttls"}, "is not host:port"},
		{"an unknown TLS mode", config.Config{SMTPAddr: "mail.test:25", SMTPTLS: "maybe"}, "is not starttls, tls or none"},
		{"a bad From", config.Config{SMTPTLS: "starttls", SMTPFrom: "Lintel"}, "--smtp-from"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ConfigFrom(&c.cfg)
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := ConfigFrom(&config.Config{SMTPAddr: "127.0.0.1:25", SMTPTLS: "none", SMTPUsername: "u"})
	require.NoError(t, err, "AUTH to a loopback relay without TLS is allowed")
}

func TestMessagesHeldWithoutSMTPGoOutOnceAServerIsConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	s, err := sealer.New(bytes.Repeat([]byte{42}, 32))
	require.NoError(t, err)
	// A replica without SMTP settings (say, before they were rolled out)
	// holds the message...
	noSMTP := New(b.db, s, Config{}, slog.New(slog.NewTextHandler(&syncBuffer{}, nil)))
	link := "https://lintel.test/wallet/invite/held-link"
	b.write(b.invitation("ada@example.org", link))
	n, err := noSMTP.SendDue(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, StatusHeld, b.row("ada@example.org").Status)
	// ...and one with SMTP sends it, link and all.
	require.Equal(t, 1, b.sendDue())
	r := b.row("ada@example.org")
	require.Equal(t, StatusSent, r.Status)
	require.Nil(t, r.Sealed)
	got, err := b.mail.messageTo("ada@example.org")
	require.NoError(t, err)
	require.Contains(t, string(got.Data), "held-link")
}
