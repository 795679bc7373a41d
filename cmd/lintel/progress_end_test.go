package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/store"
)

// lostAfterCommit is a pgx tracer standing for a replica that dies the
// moment it has committed an import's or an export's end: an
// announcement of that end made afterwards, outside the transaction that
// recorded it, never reaches PostgreSQL (it fails as a cancelled
// statement). It can also hold an export at its start (exportStarts),
// so that a subscriber is listening before the export can end.
type lostAfterCommit struct {
	lost         atomic.Int64
	exportStarts chan struct{} // marking an export RUNNING waits until it is closed
}

func (h *lostAfterCommit) TraceQueryStart(ctx context.Context, conn *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	if strings.Contains(q.SQL, "UPDATE exports SET status = 'RUNNING'") {
		select {
		case <-h.exportStarts:
		case <-ctx.Done(): // the server stops
		}
	}
	if strings.Contains(q.SQL, "pg_notify") && conn.PgConn().TxStatus() == 'I' && len(q.Args) == 2 {
		payload := fmt.Sprint(q.Args[1])
		for _, end := range []string{`"phase":"DONE"`, `"status":"SUCCEEDED"`, `"status":"FAILED"`, `"status":"CANCELLED"`} {
			if strings.Contains(payload, end) {
				h.lost.Add(1)
				gone, cancel := context.WithCancel(ctx)
				cancel()
				return gone
			}
		}
	}
	return ctx
}

func (h *lostAfterCommit) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// An import's or an export's end is announced by the transaction that
// records it, so a subscriber hears the end even if the replica that ran
// the job dies right after its commit (what the rolling-restart test once
// caught: a replica killed between the commit and a separate announcement
// left subscribers at NOTIFYING for good).
func TestSubscribersHearAnEndEvenIfTheReplicaDiesAfterCommittingIt(t *testing.T) {
	t.Parallel()
	tracer := &lostAfterCommit{exportStarts: make(chan struct{})}
	s := newTestServerOn(t, nil, store.Options{MaxConns: 10, Tracer: tracer})
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(importTemplate)

	// follow subscribes, then runs start, and returns the messages of
	// subscription id until one satisfies last.
	follow := func(t *testing.T, query, field, id string, start func(), last func(map[string]any) bool) []map[string]any {
		conn := wsSubscribe(t, s.URL, admin.Token, "1", query, map[string]any{"id": id})
		defer conn.Close(websocket.StatusNormalClosure, "")
		var got []map[string]any
		next := func() map[string]any {
			msg, err := wsRead(t, conn, 15*time.Second)
			require.NoError(t, err, "after %v", got)
			require.Equal(t, "next", msg["type"], "message: %v (after %v)", msg, got)
			v := msg["payload"].(map[string]any)["data"].(map[string]any)[field].(map[string]any)
			got = append(got, v)
			return v
		}
		next() // the current state: the subscription is live
		start()
		for !last(next()) {
		}
		return got
	}
	importQuery := `subscription($id: ID!) { importProgress(id: $id) { phase outcome } }`
	ended := func(p map[string]any) bool { return p["phase"] == "DONE" }

	for _, c := range []struct{ name, csv, outcome string }{
		{"an import that succeeds", "Card ID,Email,First name\n1,a@acme.test,Ada\n2,b@acme.test,Bo\n", "SUCCEEDED"},
		{"an import refused for an invalid row", "Card ID,Email,First name\n3,c@acme.test,\n", "FAILED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := admin.createImport(tid, "f.csv", c.csv, nil).requireOK(t).str("createImport.id")
			got := follow(t, importQuery, "importProgress", id, func() {
				admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
			}, ended)
			require.Equal(t, c.outcome, got[len(got)-1]["outcome"], "%v", got)
		})
	}
	t.Run("an export", func(t *testing.T) {
		id := admin.startExport(tid, nil, nil, nil).requireOK(t).str("startExport.id")
		got := follow(t, `subscription($id: ID!) { exportProgress(id: $id) { status rowCount } }`, "exportProgress", id,
			func() { close(tracer.exportStarts) },
			func(p map[string]any) bool { return p["status"] != "QUEUED" && p["status"] != "RUNNING" })
		require.Equal(t, "SUCCEEDED", got[len(got)-1]["status"], "%v", got)
		require.Equal(t, 2.0, got[len(got)-1]["rowCount"], "the two records the first import created")
	})
	require.Zero(t, tracer.lost.Load(), "an end was announced after its commit")
}
