package jobs

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func TestHousekeepingDeletesOnlyWhatHasExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(ctx, testdb.URL(t), store.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, q, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO organisations (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'A')`)
	exec(`INSERT INTO operators (id, org_id, email, role, password_hash) VALUES ('00000000-0000-0000-0000-0000000000aa', '00000000-0000-0000-0000-000000000001', 'a@a.test', 'ADMIN', 'x')`)
	exec(`INSERT INTO card_templates (id, org_id, name, symbology, card_id_format) VALUES ('00000000-0000-0000-0000-0000000000bb', '00000000-0000-0000-0000-000000000001', 'T', 'QR', 'DECIMAL')`)
	for _, tok := range []struct {
		hash    string
		expires string
		revoked any
	}{{"live", "1 day", nil}, {"expired", "-1 hour", nil}, {"revoked long ago", "1 day", "-2 days"}, {"revoked just now", "1 day", "0 seconds"}} {
		var revoked any
		if tok.revoked != nil {
			revoked = tok.revoked
		}
		exec(`INSERT INTO refresh_tokens (family_id, operator_id, org_id, token_hash, expires_at, revoked_at)
			VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000aa', '00000000-0000-0000-0000-000000000001', $1, now() + $2::interval, now() + $3::interval)`,
			[]byte(tok.hash), tok.expires, revoked)
	}
	for _, imp := range []struct {
		name    string
		outcome string
		ended   string
	}{{"old.csv", "SUCCEEDED", "-40 days"}, {"recent.csv", "FAILED", "-1 day"}, {"running.csv", "RUNNING", "-40 days"}} {
		exec(`INSERT INTO imports (org_id, template_id, file_name, file_size, file_sha256, encoding, delimiter, header_row, header, row_count, mapping, options, outcome, finished_at, created_at)
			VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000bb', $1, 0, '', 'UTF-8', ',', 1, '[]', 0, '[]', '{}', $2, now() + $3::interval, now() + $3::interval)`,
			imp.name, imp.outcome, imp.ended)
	}

	w := &pruneSessionsWorker{db: db, importRetention: 30 * 24 * time.Hour}
	require.NoError(t, w.Work(ctx, &river.Job[PruneSessionsArgs]{}))

	var tokens, imports []string
	rows, err := db.Pool.Query(ctx, `SELECT convert_from(token_hash, 'UTF8') FROM refresh_tokens ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tokens = append(tokens, s)
	}
	require.Equal(t, []string{"live", "revoked just now"}, tokens)
	rows, err = db.Pool.Query(ctx, `SELECT file_name FROM imports ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		imports = append(imports, s)
	}
	require.Equal(t, []string{"recent.csv", "running.csv"}, imports, "only finished imports past retention go")
}
