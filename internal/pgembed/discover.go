package pgembed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinaries is returned by FindBinDir when no PostgreSQL installation
// with both postgres and initdb was found.
var ErrNoBinaries = errors.New("pgembed: no PostgreSQL binaries (postgres and initdb) found")

// FindBinDir returns the directory holding PostgreSQL's postgres and initdb
// executables. It looks, in this order, at $PATH, at `pg_config --bindir`
// and at /usr/lib/postgresql/*/bin (Debian/Ubuntu layout, highest version
// first).
func FindBinDir() (string, error) {
	dirs := systemDiscovery().candidates()
	if len(dirs) == 0 {
		return "", ErrNoBinaries
	}
	return dirs[0], nil
}

// discovery holds the inputs of the binary search so tests can point it at
// a fake file tree instead of the machine's installation.
type discovery struct {
	pathEnv    string                 // value of $PATH
	pgConfig   func() (string, error) // returns `pg_config --bindir`
	distroRoot string                 // "/usr/lib/postgresql"
}

func systemDiscovery() discovery {
	return discovery{
		pathEnv:    os.Getenv("PATH"),
		pgConfig:   runPgConfig,
		distroRoot: "/usr/lib/postgresql",
	}
}

// candidates lists every usable bin directory in preference order, without
// duplicates (symlinks are resolved, so /usr/local/bin/postgres pointing into
// /usr/lib/postgresql/15/bin counts once).
func (d discovery) candidates() []string {
	var out []string
	seen := map[string]bool{}
	add := func(dir string) {
		if dir == "" || !hasBinaries(dir) {
			return
		}
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			dir = r
		}
		if !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	}

	// $PATH: the first directory with an executable postgres, like
	// exec.LookPath. Distributions often put only symlinks on the PATH, and
	// initdb must sit next to the real postgres (it execs it), so prefer the
	// directory the symlink resolves to.
	for _, dir := range filepath.SplitList(d.pathEnv) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "postgres")
		if !isExecutable(p) {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && hasBinaries(filepath.Dir(real)) {
			add(filepath.Dir(real))
		} else {
			add(dir)
		}
		break
	}

	if d.pgConfig != nil {
		if dir, err := d.pgConfig(); err == nil {
			add(dir)
		}
	}

	if d.distroRoot != "" {
		for _, dir := range distroBinDirs(d.distroRoot) {
			add(dir)
		}
	}
	return out
}

// distroBinDirs returns root/<version>/bin for every version directory,
// highest version first (compared numerically: 13 > 9.6).
func distroBinDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type versioned struct {
		parts []int
		dir   string
	}
	var vs []versioned
	for _, e := range entries {
		parts, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		vs = append(vs, versioned{parts, filepath.Join(root, e.Name(), "bin")})
	}
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := vs[i].parts, vs[j].parts
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.dir
	}
	return out
}

func parseVersion(s string) ([]int, bool) {
	var parts []int
	for _, f := range strings.Split(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		parts = append(parts, n)
	}
	return parts, len(parts) > 0
}

func runPgConfig() (string, error) {
	p, err := exec.LookPath("pg_config")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--bindir").Output()
	if err != nil {
		return "", fmt.Errorf("pgembed: %s --bindir: %w", p, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// hasBinaries reports whether dir contains executable postgres and initdb.
func hasBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "postgres")) && isExecutable(filepath.Join(dir, "initdb"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// binMajor returns the major version of the postgres in binDir in the form
// PG_VERSION uses ("15", or "9.6" before version 10). `postgres -V` is
// answered before PostgreSQL's refusal to run as root, so it is safe to run
// it without dropping privileges.
func binMajor(binDir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "-V").Output()
	if err != nil {
		return "", fmt.Errorf("pgembed: %s -V: %w", filepath.Join(binDir, "postgres"), err)
	}
	return parseMajor(string(out))
}

func parseMajor(versionOutput string) (string, error) {
	m := versionRE.FindStringSubmatch(versionOutput)
	if m == nil {
		return "", fmt.Errorf("pgembed: cannot parse PostgreSQL version from %q", strings.TrimSpace(versionOutput))
	}
	if major, _ := strconv.Atoi(m[1]); major < 10 && m[2] != "" {
		return m[1] + "." + m[2], nil
	}
	return m[1], nil
}
