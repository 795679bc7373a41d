package store_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func open(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), testdb.URL(t), store.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db
}

func TestAFailedMigrationIsNotMarkedAppliedAndLeavesNoTrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	fsys := fstest.MapFS{
		"20990101000001_good.tx.up.sql": {Data: []byte("CREATE TABLE probe_good (id int);")},
		"20990101000002_bad.tx.up.sql":  {Data: []byte("CREATE TABLE probe_bad (id int);\nSELECT no_such_function();")},
	}
	err := store.ApplyMigrations(db, ctx, fsys)
	require.ErrorContains(t, err, "20990101000002")
	require.ErrorContains(t, err, "no_such_function")

	var applied []string
	require.NoError(t, db.Bun.NewRaw(`SELECT name FROM lintel_migrations WHERE name LIKE '2099%' ORDER BY name`).Scan(ctx, &applied))
	require.Equal(t, []string{"20990101000001"}, applied)
	var badTable *string
	require.NoError(t, db.Bun.NewRaw(`SELECT to_regclass('probe_bad')::text`).Scan(ctx, &badTable))
	require.Nil(t, badTable, "the failed migration's transaction was rolled back")

	// Fixing the migration and running again applies just it.
	fsys["20990101000002_bad.tx.up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE probe_bad (id int);")}
	require.NoError(t, store.ApplyMigrations(db, ctx, fsys))
	applied = nil
	require.NoError(t, db.Bun.NewRaw(`SELECT name FROM lintel_migrations WHERE name LIKE '2099%' ORDER BY name`).Scan(ctx, &applied))
	require.Equal(t, []string{"20990101000001", "20990101000002"}, applied)
}

func TestMigratingDownAndUpAgainRestoresTheSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	require.NoError(t, db.MigrateUp(ctx), "migrating an up-to-date database is a no-op")
	rolled, err := db.MigrateDown(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, rolled)
	var table *string
	require.NoError(t, db.Bun.NewRaw(`SELECT to_regclass('card_records')::text`).Scan(ctx, &table))
	require.Nil(t, table)

	var status bytes.Buffer
	require.NoError(t, db.MigrationStatus(ctx, &status))
	require.Contains(t, status.String(), "pending")

	require.NoError(t, db.MigrateUp(ctx))
	require.NoError(t, db.Bun.NewRaw(`SELECT to_regclass('card_records')::text`).Scan(ctx, &table))
	require.NotNil(t, table)
	status.Reset()
	require.NoError(t, db.MigrationStatus(ctx, &status))
	require.NotContains(t, status.String(), "pending")
}

func TestTheAuditTrailIsAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	_, err := db.Pool.Exec(ctx, `INSERT INTO organisations (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'A')`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `INSERT INTO audit_events (org_id, actor_kind, action) VALUES ('00000000-0000-0000-0000-000000000001', 'SYSTEM', 'test')`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE audit_events SET action = 'forged'`)
	require.ErrorContains(t, err, "append-only")
	_, err = db.Pool.Exec(ctx, `DELETE FROM audit_events`)
	require.ErrorContains(t, err, "append-only")
	_, err = db.Pool.Exec(ctx, `TRUNCATE audit_events`)
	require.ErrorContains(t, err, "append-only")
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = 'test'`).Scan(&n))
	require.Equal(t, 1, n)
}
