package store

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/uptrace/bun/migrate"

	"github.com/lintel/lintel/migrations"
)

// migrationLockKey is the advisory lock that serialises migrations when
// several replicas start at once.
const migrationLockKey = 0x4c696e74656c // "Lintel"

func (db *DB) migrator() (*migrate.Migrator, error) {
	return db.migratorFor(migrations.FS)
}

func (db *DB) migratorFor(fsys fs.FS) (*migrate.Migrator, error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(fsys); err != nil {
		return nil, fmt.Errorf("store: discover migrations: %w", err)
	}
	return migrate.NewMigrator(db.Bun, ms,
		migrate.WithTableName("lintel_migrations"),
		migrate.WithLocksTableName("lintel_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true)), nil
}

// withMigrationLock runs fn while holding a session advisory lock on a
// dedicated connection, so concurrent starts apply migrations once; the lock
// dies with the connection if the process does.
func (db *DB) withMigrationLock(ctx context.Context, fn func() error) error {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: acquire connection for migration lock: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("store: take migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}()
	return fn()
}

// MigrateUp applies River's migrations and then every unapplied Lintel
// migration. Each Lintel migration runs in its own transaction and is marked
// applied only after it succeeded.
func (db *DB) MigrateUp(ctx context.Context) error {
	return db.withMigrationLock(ctx, func() error {
		rm, err := rivermigrate.New(riverpgxv5.New(db.Pool), nil)
		if err != nil {
			return fmt.Errorf("store: river migrator: %w", err)
		}
		if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("store: migrate river schema: %w", err)
		}
		return db.applyMigrations(ctx, migrations.FS)
	})
}

func (db *DB) applyMigrations(ctx context.Context, fsys fs.FS) error {
	m, err := db.migratorFor(fsys)
	if err != nil {
		return err
	}
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("store: init migration tables: %w", err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// MigrateDown rolls back the last group of Lintel migrations.
func (db *DB) MigrateDown(ctx context.Context) (rolledBack []string, err error) {
	err = db.withMigrationLock(ctx, func() error {
		m, err := db.migrator()
		if err != nil {
			return err
		}
		if err := m.Init(ctx); err != nil {
			return fmt.Errorf("store: init migration tables: %w", err)
		}
		group, err := m.Rollback(ctx)
		if err != nil {
			return fmt.Errorf("store: roll back: %w", err)
		}
		for _, mg := range group.Migrations {
			rolledBack = append(rolledBack, mg.Name)
		}
		return nil
	})
	return rolledBack, err
}

// MigrationStatus writes one line per known migration: name and whether it
// is applied.
func (db *DB) MigrationStatus(ctx context.Context, w io.Writer) error {
	m, err := db.migrator()
	if err != nil {
		return err
	}
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("store: init migration tables: %w", err)
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return fmt.Errorf("store: migration status: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MIGRATION\tSTATUS")
	for _, mg := range ms {
		status := "pending"
		if mg.IsApplied() {
			status = fmt.Sprintf("applied (group %d, %s)", mg.GroupID, mg.MigratedAt.Format("2006-01-02 15:04:05"))
		}
		fmt.Fprintf(tw, "%s\t%s\n", mg.Name, status)
	}
	return tw.Flush()
}

// Migrate opens databaseURL, applies every migration and closes it; tests
// use it to prepare a template database.
func Migrate(ctx context.Context, databaseURL string) error {
	db, err := Open(ctx, databaseURL, Options{MaxConns: 4})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.MigrateUp(ctx)
}
