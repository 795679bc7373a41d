package testdb

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// checkFresh asserts the database is migrated and untouched by other tests,
// then marks it: a table that already existed would mean sharing.
func checkFresh(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	var migrations int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM lintel_migrations").Scan(&migrations); err != nil {
		t.Fatalf("lintel_migrations: %v", err)
	}
	if migrations == 0 {
		t.Error("lintel_migrations is empty: database not migrated")
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE isolation_probe (owner text)"); err != nil {
		t.Fatalf("database already used by another test: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO isolation_probe VALUES ($1)", t.Name()); err != nil {
		t.Fatal(err)
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	a := connect(t, URL(t))
	b := connect(t, URL(t))
	checkFresh(t, a)
	checkFresh(t, b)

	var nameA, nameB string
	_ = a.QueryRow(context.Background(), "SELECT current_database()").Scan(&nameA)
	_ = b.QueryRow(context.Background(), "SELECT current_database()").Scan(&nameB)
	if nameA == nameB || nameA == env.template {
		t.Errorf("databases %q and %q (template %q) are not distinct", nameA, nameB, env.template)
	}
}

func TestParallel(t *testing.T) {
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			checkFresh(t, connect(t, URL(t)))
		})
	}
}

func TestDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		conn := connect(t, URL(t))
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		// conn is deliberately still open when the cleanup drops the
		// database: WITH (FORCE) has to deal with it.
	})
	var exists bool
	err := env.admin.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test finished", name)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/x"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=x"},
	} {
		if got, err := withDatabase(tc.base, "x"); err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
}
