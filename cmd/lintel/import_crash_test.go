package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/testdb"
)

// bigImportFile has rows 1..n: rows up to keep match records named
// "Original", the others are new.
func bigImportFile(n int, name string) string {
	var b strings.Builder
	b.WriteString("Card ID,Email,First name\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,p%d@acme.test,%s %d\n", i, i, name, i)
	}
	return b.String()
}

func TestAnImportKilledMidApplyLeavesRecordsUntouchedAndIsFinishedByAnotherServer(t *testing.T) {
	t.Parallel()
	// Stuck jobs are handed over after 20 s instead of an hour.
	env := map[string]string{"DATABASE_URL": testdb.URL(t), "LINTEL_RESCUE_STUCK_JOBS_AFTER": "20s"}
	a := procServe(t, "server A", env)
	procWaitReady(t, a)
	const pw = "crash test password 1"
	procMustRun(t, env, "operator", "create", "--email", "admin@acme.test", "--role", "ADMIN", "--org", "Acme", "--password", pw)
	onA := a.login("admin@acme.test", pw)
	tid := onA.createTemplate(importTemplate)

	// 2,000 records exist before the import that will be killed.
	seed := onA.createImport(tid, "seed.csv", bigImportFile(2000, "Original"), nil).requireOK(t).str("createImport.id")
	onA.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": seed}).requireOK(t)
	require.Equal(t, "SUCCEEDED", onA.waitImport(seed).str("import.outcome"))

	const rows = 80000
	id := onA.createImport(tid, "big.csv", bigImportFile(rows, "Changed"), nil).requireOK(t).str("createImport.id")
	onA.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ph := onA.do(`query($id: ID!) { import(id: $id) { phase outcome } }`, vars{"id": id}).requireOK(t)
		require.Equal(t, "RUNNING", ph.str("import.outcome"), "the import must still be running when killed: %s", ph.Raw)
		if ph.str("import.phase") == "APPLYING" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the import never reached APPLYING")
		time.Sleep(5 * time.Millisecond)
	}
	a.signal(syscall.SIGKILL)
	a.wait(10 * time.Second)

	b := procServe(t, "server B", env)
	procWaitReady(t, b)
	onB := b.login("admin@acme.test", pw)
	count := func() (total, original int) {
		res := onB.do(`query($t: ID!) { all: records(templateId: $t) { totalCount } orig: records(templateId: $t, filter: {search: "original"}) { totalCount } }`, vars{"t": tid}).requireOK(t)
		return res.num("all.totalCount"), res.num("orig.totalCount")
	}
	total, original := count()
	require.Equal(t, 2000, total, "the killed import committed nothing")
	require.Equal(t, 2000, original, "no record was changed by the killed import")

	// River hands the stuck job to B, which runs it again from the start.
	done := onB.waitImportFor(id, 90*time.Second)
	total, original = count()
	switch done.str("import.outcome") {
	case "SUCCEEDED":
		require.Equal(t, rows, total)
		require.Equal(t, 0, original, "every matched record was updated once")
		require.Equal(t, rows-2000, done.num("import.counts.create"))
		require.Equal(t, 2000, done.num("import.counts.update"))
	case "FAILED":
		require.Equal(t, 2000, total)
		require.Equal(t, 2000, original)
	default:
		t.Fatalf("unexpected outcome: %s", done.Raw)
	}
	if done.str("import.outcome") == "FAILED" {
		return
	}
	var results int
	conn, err := pgx.Connect(t.Context(), env["DATABASE_URL"])
	require.NoError(t, err)
	defer conn.Close(t.Context())
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT count(*) FROM import_rows WHERE import_id = $1 AND kind = 'RESULT'`, id).Scan(&results))
	require.Equal(t, rows, results, "exactly one set of results is recorded")
}

// waitImportFor is waitImport with a longer deadline.
func (c *gqlClient) waitImportFor(id string, timeout time.Duration) *gqlResponse {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res := c.do(`query($id: ID!) { import(id: $id) { `+importFields+` } }`, vars{"id": id}).requireOK(c.t)
		if o := res.str("import.outcome"); o != "" && o != "RUNNING" {
			return res
		}
		require.True(c.t, time.Now().Before(deadline), "import %s did not finish: %s", id, res.Raw)
		time.Sleep(200 * time.Millisecond)
	}
}

func TestImportProgressIsPublishedPhaseByPhase(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	admin := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	viewer := s.operator(mustOrg(t, s, "admin@acme.test"), "viewer@acme.test", caller.RoleViewer)
	tid := admin.createTemplate(importTemplate)
	id := admin.createImport(tid, "p.csv", bigImportFile(20000, "P"), nil).requireOK(t).str("createImport.id")

	conn, _, err := wsDial(t, s.URL, "")
	require.NoError(t, err)
	defer conn.CloseNow()
	wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + viewer.Token}})
	ack, err := wsRead(t, conn, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "connection_ack", ack["type"])
	wsSend(t, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query":     `subscription($id: ID!) { importProgress(id: $id) { phase outcome processed total counts { create } } }`,
		"variables": map[string]any{"id": id},
	}})
	first, err := wsRead(t, conn, 5*time.Second)
	require.NoError(t, err)
	require.Nil(t, first["payload"].(map[string]any)["data"].(map[string]any)["importProgress"].(map[string]any)["phase"], "the current state comes first: not started")

	admin.do(`mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": id}).requireOK(t)
	var phases []string
	var last map[string]any
	for {
		msg, err := wsRead(t, conn, 30*time.Second)
		require.NoError(t, err)
		require.Equal(t, "next", msg["type"], "message: %v", msg)
		last = msg["payload"].(map[string]any)["data"].(map[string]any)["importProgress"].(map[string]any)
		ph, _ := last["phase"].(string)
		if len(phases) == 0 || phases[len(phases)-1] != ph {
			phases = append(phases, ph)
		}
		if ph == "DONE" {
			break
		}
	}
	require.Equal(t, []string{"QUEUED", "PARSING", "VALIDATING", "APPLYING", "NOTIFYING", "DONE"}, phases)
	require.Equal(t, "SUCCEEDED", last["outcome"])
	require.Equal(t, 20000.0, last["processed"])
	require.Equal(t, 20000.0, last["total"])
	require.Equal(t, 20000.0, last["counts"].(map[string]any)["create"])
}
