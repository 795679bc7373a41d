package pgembed

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fakeInstall creates dir with the given (empty, executable) files.
func fakeInstall(t *testing.T, dir string, files ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDiscoveryOrder(t *testing.T) {
	root := t.TempDir()
	// $PATH holds only a symlink to postgres (like Debian's /usr/local/bin
	// setups); initdb lives next to the real binary.
	real := fakeInstall(t, filepath.Join(root, "opt/pg17/bin"), "postgres", "initdb")
	pathDir := fakeInstall(t, filepath.Join(root, "usr/local/bin"))
	if err := os.Symlink(filepath.Join(real, "postgres"), filepath.Join(pathDir, "postgres")); err != nil {
		t.Fatal(err)
	}
	emptyPathDir := fakeInstall(t, filepath.Join(root, "bin"), "psql")
	pgConfigDir := fakeInstall(t, filepath.Join(root, "pgconfig/bin"), "postgres", "initdb")
	distro := filepath.Join(root, "usr/lib/postgresql")
	fakeInstall(t, filepath.Join(distro, "9.6/bin"), "postgres", "initdb")
	fakeInstall(t, filepath.Join(distro, "13/bin"), "postgres", "initdb")
	fakeInstall(t, filepath.Join(distro, "16/bin"), "postgres") // no initdb: skipped
	fakeInstall(t, filepath.Join(distro, "notaversion/bin"), "postgres", "initdb")

	d := discovery{
		pathEnv:    emptyPathDir + string(os.PathListSeparator) + pathDir,
		pgConfig:   func() (string, error) { return pgConfigDir, nil },
		distroRoot: distro,
	}
	want := []string{
		real,
		pgConfigDir,
		filepath.Join(distro, "13/bin"),
		filepath.Join(distro, "9.6/bin"), // numeric, not lexical, order
	}
	if got := d.candidates(); !reflect.DeepEqual(got, want) {
		t.Errorf("candidates:\n got %q\nwant %q", got, want)
	}

	// The same installation reached two ways is listed once.
	d.pgConfig = func() (string, error) { return real, nil }
	if got := d.candidates(); len(got) != 3 || got[0] != real {
		t.Errorf("duplicates not removed: %q", got)
	}

	// A non-executable postgres on $PATH is ignored.
	if err := os.Chmod(filepath.Join(real, "postgres"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.pgConfig = func() (string, error) { return "", errors.New("no pg_config") }
	if got := d.candidates(); len(got) != 2 || got[0] != filepath.Join(distro, "13/bin") {
		t.Errorf("with nothing usable on PATH: %q", got)
	}
}

func TestDiscoveryNothingFound(t *testing.T) {
	d := discovery{pathEnv: t.TempDir(), distroRoot: filepath.Join(t.TempDir(), "missing")}
	if got := d.candidates(); len(got) != 0 {
		t.Errorf("candidates = %q, want none", got)
	}
}

func TestParseMajor(t *testing.T) {
	for in, want := range map[string]string{
		"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": "15",
		"postgres (PostgreSQL) 18beta1\n":                        "18",
		"postgres (PostgreSQL) 9.6.24\n":                         "9.6",
	} {
		if got, err := parseMajor(in); err != nil || got != want {
			t.Errorf("parseMajor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := parseMajor("nonsense"); err == nil {
		t.Error("parseMajor(nonsense) succeeded")
	}
}
