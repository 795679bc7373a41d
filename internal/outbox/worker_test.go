package outbox

import (
	"bytes"
	"context"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/jobs"
)

// startJobs runs a River client with the send worker (and, if asked, the
// periodic job) against the bundle's database.
func (b *testBundle) startJobs(periodic bool) {
	b.t.Helper()
	client, err := jobs.NewClient(b.db, b.svc.log, jobs.Config{}, func(w *river.Workers) error {
		return river.AddWorkerSafely(w, NewWorker(b.svc))
	})
	require.NoError(b.t, err)
	if periodic {
		client.PeriodicJobs().Add(PeriodicJob())
	}
	b.svc.SetQueue(client)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(b.t, client.Start(ctx))
	b.t.Cleanup(func() {
		stopCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = client.Stop(stopCtx)
		cancel()
	})
}

func (b *testBundle) waitForStatus(rcpt string, want Status) {
	b.t.Helper()
	require.Eventually(b.t, func() bool { return b.row(rcpt).Status == want }, 15*time.Second, 50*time.Millisecond,
		"%s never became %s", rcpt, want)
}

func TestAKickSendsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	b.startJobs(false)
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/kicked"))
	b.svc.Kick(b.ctx)
	b.waitForStatus("ada@example.org", StatusSent)
	m, err := b.mail.messageTo("ada@example.org")
	require.NoError(t, err)
	require.Contains(t, parse(t, m.Data).text, "https://lintel.test/i/kicked")

	for i := range 5 {
		b.write(b.notice(recipient(i)))
		b.svc.Kick(b.ctx)
	}
	for i := range 5 {
		b.waitForStatus(recipient(i), StatusSent)
	}
	require.Len(t, b.mail.received(), 6, "each message once, however many kicks")
}

func TestThePeriodicJobSendsWhatNoKickAnnounced(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{})
	// Written before the server started, and never kicked: as after a
	// crash between commit and kick.
	b.write(b.invitation("ada@example.org", "https://lintel.test/i/forgotten"))
	b.startJobs(true)
	b.waitForStatus("ada@example.org", StatusSent)
}

func TestALongAccentedSubjectIsFoldedAndReadsBack(t *testing.T) {
	t.Parallel()
	subject := "Ihre neue Mitgliederkarte für den Verein Zürcher Überlandfahrer und Gäste ist bereit – äöü"
	from, err := mail.ParseAddress("Zürich Büro <no-reply@lintel.test>")
	require.NoError(t, err)
	data, err := compose(uuid.New(), from, "ada@example.org", subject, "text", "<p>html</p>", time.Now())
	require.NoError(t, err)
	head, _, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	require.True(t, ok)
	for _, line := range strings.Split(string(head), "\r\n") {
		require.LessOrEqual(t, len(line), 78, "header line %q", line)
	}
	m, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	got, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, subject, got)
	sender, err := m.Header.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, "Zürich Büro", sender[0].Name)
}
