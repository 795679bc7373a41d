package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/outbox"
	"github.com/lintel/lintel/internal/sealer"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

// outboxKey is the master key of the outbox command's tests.
var outboxKey = bytes.Repeat([]byte{0x5a}, 32)

// outboxCLI runs `lintel outbox` in-process against its own database.
type outboxCLI struct {
	t   *testing.T
	env map[string]string
}

func (c *outboxCLI) run(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"outbox"}, args...), &stdout, &stderr, func(k string) string { return c.env[k] })
	c.t.Logf("lintel outbox %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String(), err
}

// exitCode is the process exit code err stands for.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

// lineOf returns the one output line that mentions s.
func lineOf(t *testing.T, out, s string) string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			found = append(found, l)
		}
	}
	require.Len(t, found, 1, "lines mentioning %q", s)
	return found[0]
}

func TestOutboxCommandListsEveryOrganisationsMailWithHeldLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.URL(t)
	db, err := store.Open(ctx, url, store.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	seal, err := sealer.New(outboxKey)
	require.NoError(t, err)
	// No SMTP server: sending holds the messages, as on a developer's
	// machine.
	svc := outbox.New(db, seal, outbox.Config{}, quietLogger())
	acme, globex := uuid.New(), uuid.New()
	_, err = db.Pool.Exec(ctx, `INSERT INTO organisations (id, name) VALUES ($1, 'Acme'), ($2, 'Globex')`, acme, globex)
	require.NoError(t, err)
	write := func(org uuid.UUID, rcpt, link string) {
		t.Helper()
		var subject, text, html string
		var err error
		if link != "" {
			subject, text, html, err = outbox.RenderInvitation(outbox.InvitationData{Organisation: "Acme", TemplateName: "Staff", ExpiresAt: time.Now().Add(time.Hour)})
		} else {
			subject, text, html, err = outbox.RenderRemoved(outbox.RemovedData{Organisation: "Globex", TemplateName: "Visitors", Deleted: true})
		}
		require.NoError(t, err)
		kind := outbox.KindInvitation
		if link == "" {
			kind = outbox.KindRemoved
		}
		require.NoError(t, svc.Write(ctx, db.Bun, outbox.Message{OrgID: org, Kind: kind, Recipient: rcpt, Subject: subject, Text: text, HTML: html, Secret: link}))
	}
	write(acme, "ada@acme.test", "https://lintel.test/wallet/invite/ada-token")
	write(globex, "bo@globex.test", "")
	_, err = svc.SendDue(ctx)
	require.NoError(t, err)
	write(acme, "cy@acme.test", "https://lintel.test/wallet/invite/cy-token")
	write(acme, "dan@acme.test", "https://lintel.test/wallet/invite/dan-token")
	_, err = db.Pool.Exec(ctx, `UPDATE outbox_messages SET status = 'FAILED', sealed_secret = NULL, attempts = 1,
		last_error = E'RCPT TO <dan@acme.test>: 550 5.1.1 no such\tmailbox' WHERE recipient = 'dan@acme.test'`)
	require.NoError(t, err)

	cli := &outboxCLI{t: t, env: map[string]string{"DATABASE_URL": url, "LINTEL_MASTER_KEY": base64.StdEncoding.EncodeToString(outboxKey)}}

	t.Run("every organisation's mail, newest first, with the links of held and pending invitations", func(t *testing.T) {
		out, err := cli.run("--links")
		require.NoError(t, err)
		require.Regexp(t, `^TIME\s+STATUS\s+KIND\s+ORGANISATION\s+RECIPIENT\s+SUBJECT\s+ATTEMPTS\s+LAST ERROR\s+LINK\n`, out)
		require.Regexp(t, `(?s)dan@acme.test.*cy@acme.test.*bo@globex.test.*ada@acme.test`, out)
		require.Regexp(t, `HELD\s+INVITATION\s+Acme\s+ada@acme.test\s+Your Staff card from Acme\s+0\s+-\s+https://lintel.test/wallet/invite/ada-token$`,
			lineOf(t, out, "ada@acme.test"))
		require.Regexp(t, `PENDING\s+INVITATION\s+Acme\s+cy@acme.test\s+.*https://lintel.test/wallet/invite/cy-token$`, lineOf(t, out, "cy@acme.test"))
		require.Regexp(t, `HELD\s+REMOVED\s+Globex\s+bo@globex.test\s+Your Visitors card from Globex has been withdrawn\s+0\s+-\s+-$`,
			lineOf(t, out, "bo@globex.test"))
		require.Regexp(t, `FAILED\s+INVITATION\s+Acme\s+dan@acme.test\s+.*\s+1\s+RCPT TO <dan@acme.test>: 550 5.1.1 no such mailbox\s+-$`,
			lineOf(t, out, "dan@acme.test"), "a sent or failed message's link is gone, and the error fits on its line")
		require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s`, lineOf(t, out, "ada@acme.test"))
	})
	t.Run("without --links no link is shown", func(t *testing.T) {
		out, err := cli.run()
		require.NoError(t, err)
		require.NotContains(t, out, "LINK")
		require.NotContains(t, out, "token")
		require.Len(t, regexp.MustCompile(`(?m)^\d{4}-`).FindAllString(out, -1), 4)
	})
	t.Run("--status and --limit narrow the list", func(t *testing.T) {
		out, err := cli.run("--status", "held")
		require.NoError(t, err)
		require.Contains(t, out, "ada@acme.test")
		require.Contains(t, out, "bo@globex.test")
		require.NotContains(t, out, "cy@acme.test")
		require.NotContains(t, out, "dan@acme.test")

		out, err = cli.run("--limit=1")
		require.NoError(t, err)
		require.Contains(t, out, "dan@acme.test")
		require.NotContains(t, out, "cy@acme.test")

		out, err = cli.run("--status=CANCELLED")
		require.NoError(t, err)
		require.Equal(t, "no CANCELLED e-mail in the outbox\n", out)
	})
	t.Run("bad flags are usage errors", func(t *testing.T) {
		_, err := cli.run("--status", "lost")
		require.Equal(t, 2, exitCode(err))
		require.ErrorContains(t, err, `"lost" is not PENDING, HELD, SENT, FAILED or CANCELLED`)
		_, err = cli.run("--limit", "0")
		require.Equal(t, 2, exitCode(err))
		_, err = cli.run("stray")
		require.Equal(t, 2, exitCode(err))
	})
	t.Run("links need the master key that sealed them", func(t *testing.T) {
		other := &outboxCLI{t: t, env: map[string]string{"DATABASE_URL": url, "LINTEL_MASTER_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))}}
		_, err := other.run("--links")
		require.ErrorContains(t, err, "wrong master key")
		noKey := &outboxCLI{t: t, env: map[string]string{"DATABASE_URL": url}}
		_, err = noKey.run("--links")
		require.Equal(t, 2, exitCode(err))
		require.ErrorContains(t, err, "LINTEL_MASTER_KEY")
		out, err := noKey.run()
		require.NoError(t, err, "listing without links needs no master key")
		require.Contains(t, out, "ada@acme.test")
	})
}
