package pgembed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configures Start.
type Options struct {
	// DataDir holds the cluster and its bookkeeping (see the package doc);
	// it is created if missing and made absolute.
	DataDir string
	// BinDir is the directory with postgres and initdb; empty means discover
	// (see FindBinDir).
	BinDir string
	// Logger receives lifecycle messages; nil discards them. PostgreSQL's
	// own output always goes to DataDir/pg.log.
	Logger *slog.Logger
	// Port is the TCP port on 127.0.0.1; 0 picks a free one on each start.
	Port int
	// Settings are extra server parameters (postgres -c name=value), e.g.
	// fsync=off for throwaway test clusters; with fsync=off initdb also
	// skips syncing. listen_addresses, port and unix_socket_directories are
	// always set by this package and cannot be overridden.
	Settings map[string]string
}

// Server is a running PostgreSQL owned by this process.
type Server struct {
	log        *slog.Logger
	settings   map[string]string
	dataDir    string
	clusterDir string
	binDir     string
	account    *account // nil: postgres runs as the current user
	password   string
	port       int

	lock    *os.File
	logFile *os.File
	pm      *postmaster

	stopOnce sync.Once
	stopErr  error
}

const (
	superuser       = "lintel"
	defaultDatabase = "lintel"
	startTimeout    = 60 * time.Second // includes crash recovery after kill -9
)

// pdeathsig is the postmaster's parent-death signal: SIGQUIT is PostgreSQL's
// immediate shutdown, which also takes the backends down. A variable only so
// tests can simulate a lost signal and produce a real orphan.
var pdeathsig = syscall.SIGQUIT

// Start brings up the cluster in opts.DataDir, creating it on first use, and
// returns once it accepts connections. ctx bounds the start only; the server
// runs until Stop (or until this process dies).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgembed: Options.DataDir is empty")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgembed: data directory: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	if err := mkdirData(dataDir); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:        log,
		settings:   opts.Settings,
		dataDir:    dataDir,
		clusterDir: filepath.Join(dataDir, "pg"),
		account:    acct,
		lock:       lock,
	}
	ok := false
	defer func() {
		if !ok {
			s.abort()
		}
	}()

	if acct != nil {
		if err := acct.makeReachable(dataDir); err != nil {
			return nil, err
		}
	}
	s.logFile, err = os.OpenFile(s.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgembed: open log: %w", err)
	}
	if s.binDir, err = s.resolveBinDir(opts.BinDir); err != nil {
		return nil, err
	}
	if err := clearStalePostmaster(s.clusterDir, log); err != nil {
		return nil, err
	}
	if err := s.ensureCluster(ctx); err != nil {
		return nil, err
	}
	if err := s.launch(ctx, opts.Port); err != nil {
		return nil, err
	}
	ok = true
	log.Info("postgres started", "data_dir", s.clusterDir, "port", s.port, "pid", s.pid(), "bin_dir", s.binDir)
	return s, nil
}

// URL returns a postgres:// URL for database ("" means "lintel") that logs
// in as the cluster's superuser over TCP on 127.0.0.1.
func (s *Server) URL(database string) string {
	if database == "" {
		database = defaultDatabase
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Stop shuts PostgreSQL down with a fast shutdown (SIGINT: active sessions
// are disconnected, a checkpoint is written), waits for it to exit and
// releases the data directory. Calling it again returns the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.pm != nil {
			s.stopErr = s.pm.stop(s.log)
		}
		s.release()
		s.log.Info("postgres stopped", "data_dir", s.clusterDir, "err", s.stopErr)
	})
	return s.stopErr
}

// abort cleans up after a failed Start.
func (s *Server) abort() {
	if s.pm != nil {
		s.pm.kill()
	}
	s.release()
}

func (s *Server) release() {
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	if s.lock != nil {
		_ = s.lock.Close() // drops the flock
	}
}

func (s *Server) pid() int { return s.pm.cmd.Process.Pid }

func (s *Server) logPath() string { return filepath.Join(s.dataDir, "pg.log") }

// resolveBinDir picks the binaries. For an existing cluster the major
// version must match PG_VERSION (a cluster cannot be opened by another major
// release), so a newer installation appearing first in the search order does
// not break it.
func (s *Server) resolveBinDir(explicit string) (string, error) {
	want := ""
	if b, err := os.ReadFile(filepath.Join(s.clusterDir, "PG_VERSION")); err == nil {
		want = strings.TrimSpace(string(b))
	}
	if explicit != "" {
		dir, err := filepath.Abs(explicit)
		if err != nil {
			return "", fmt.Errorf("pgembed: BinDir: %w", err)
		}
		if !hasBinaries(dir) {
			return "", fmt.Errorf("pgembed: BinDir %s does not contain postgres and initdb", dir)
		}
		if want != "" {
			if got, err := binMajor(dir); err != nil {
				return "", err
			} else if got != want {
				return "", fmt.Errorf("pgembed: cluster %s was created by PostgreSQL %s but BinDir %s holds PostgreSQL %s", s.clusterDir, want, dir, got)
			}
		}
		return dir, nil
	}

	candidates := systemDiscovery().candidates()
	if dl := filepath.Join(s.dataDir, "pgbin", "bin"); hasBinaries(dl) {
		candidates = append(candidates, dl)
	}
	if len(candidates) == 0 {
		return downloadBinaries(s.dataDir, want, s.logFile, s.log)
	}
	if want == "" {
		return candidates[0], nil
	}
	var found []string
	for _, dir := range candidates {
		got, err := binMajor(dir)
		if err != nil {
			found = append(found, fmt.Sprintf("%s (%v)", dir, err))
			continue
		}
		if got == want {
			return dir, nil
		}
		found = append(found, fmt.Sprintf("%s (PostgreSQL %s)", dir, got))
	}
	return "", fmt.Errorf("pgembed: cluster %s was created by PostgreSQL %s, but only found %s; install PostgreSQL %s, set BinDir, or upgrade the cluster with pg_upgrade",
		s.clusterDir, want, strings.Join(found, ", "), want)
}

// ensureCluster runs initdb on first use and loads the superuser password.
func (s *Server) ensureCluster(ctx context.Context) error {
	_, err := os.Stat(filepath.Join(s.clusterDir, "PG_VERSION"))
	initialized := err == nil
	if !initialized {
		// An empty pg directory (made by hand) is fine; anything else is not
		// ours to overwrite.
		if entries, err := os.ReadDir(s.clusterDir); err == nil && len(entries) > 0 {
			return fmt.Errorf("pgembed: %s exists but is not a PostgreSQL cluster (no PG_VERSION); move it away", s.clusterDir)
		}
		_ = os.Remove(s.clusterDir)
	}
	if s.password, err = s.loadPassword(!initialized); err != nil {
		return err
	}
	if !initialized {
		if err := s.initdb(ctx); err != nil {
			return err
		}
	}
	if s.account != nil {
		return s.account.chownTree(s.clusterDir)
	}
	return nil
}

// loadPassword reads DataDir/pg-password, creating it if create is set.
func (s *Server) loadPassword(create bool) (string, error) {
	path := filepath.Join(s.dataDir, "pg-password")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pgembed: read superuser password: %w", err)
	}
	if !create {
		return "", fmt.Errorf("pgembed: %s is missing or empty, but the cluster in %s needs the superuser password it held", path, s.clusterDir)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("pgembed: generate password: %w", err)
	}
	pw := hex.EncodeToString(raw) // URL-safe, no quoting needed anywhere
	// Write then rename, so a crash never leaves a truncated password.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pgembed: write superuser password: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("pgembed: write superuser password: %w", err)
	}
	return pw, nil
}

// initdb creates the cluster in a scratch directory and renames it into
// place, so an interrupted initdb never leaves a half-made DataDir/pg that
// a later start would mistake for a cluster.
func (s *Server) initdb(ctx context.Context) error {
	tmp := s.clusterDir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	// initdb reads the password from a file; it runs as the server account,
	// so the file is handed to it and removed right after.
	pwFile := filepath.Join(s.dataDir, "pg-password.initdb")
	_ = os.Remove(pwFile)
	if err := os.WriteFile(pwFile, []byte(s.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	defer os.Remove(pwFile)
	if s.account != nil {
		for _, p := range []string{tmp, pwFile} {
			if err := os.Chown(p, int(s.account.uid), int(s.account.gid)); err != nil {
				return fmt.Errorf("pgembed: hand %s to %s: %w", p, s.account, err)
			}
		}
	}

	args := []string{
		"-D", tmp,
		"-U", superuser,
		"--pwfile=" + pwFile,
		"--auth-host=scram-sha-256",
		"--auth-local=scram-sha-256",
		"--encoding=UTF8",
		// Code-point sorting (fast, stable) with Unicode character classes, so
		// lower() and ILIKE fold "Ä" as well as "A".
		"--lc-collate=C",
		"--lc-ctype=C.UTF-8",
		"--lc-messages=C",
		"--lc-monetary=C",
		"--lc-numeric=C",
		"--lc-time=C",
	}
	if s.settings["fsync"] == "off" {
		args = append(args, "--no-sync") // the server will not fsync either
	}
	s.log.Info("initializing PostgreSQL cluster", "data_dir", s.clusterDir, "bin_dir", s.binDir)
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"), args...)
	cmd.Dir = s.dataDir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.account.credential()}
	off := s.logSize()
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("pgembed: initdb: %w%s", err, s.logTail(off))
	}
	if err := os.Rename(tmp, s.clusterDir); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	return nil
}

// launch starts postgres and waits until it accepts connections, retrying
// the two failures that are races rather than errors: a picked free port
// taken by someone else before postgres bound it, and backends of a killed
// postmaster still attached to its shared memory.
func (s *Server) launch(ctx context.Context, fixedPort int) error {
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		s.port = fixedPort
		if s.port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			s.port = p
		}
		off := s.logSize()
		err := s.spawn()
		if err == nil {
			err = s.waitReady(ctx, deadline)
		}
		if err == nil {
			return nil
		}
		if s.pm != nil {
			s.pm.kill()
			s.pm = nil
		}
		tail := s.logTail(off)
		retry := attempt < 10 && ctx.Err() == nil && time.Now().Before(deadline) &&
			((fixedPort == 0 && strings.Contains(tail, "could not create any TCP/IP sockets")) ||
				strings.Contains(tail, "pre-existing shared memory block"))
		if !retry {
			return fmt.Errorf("pgembed: start postgres: %w%s", err, tail)
		}
		s.log.Warn("postgres failed to start, retrying", "attempt", attempt, "err", err)
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
}

// postmaster supervises the postgres child process.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, valid once done is closed
}

func (s *Server) spawn() error {
	args := []string{"-D", s.clusterDir}
	keys := make([]string, 0, len(s.settings))
	for k := range s.settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+s.settings[k])
	}
	// Last, so they win over Settings: TCP on loopback only, no unix socket.
	args = append(args,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(s.port),
		"-c", "unix_socket_directories=",
	)
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), args...)
	cmd.Dir = s.clusterDir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C in lintel's terminal must not reach
		// postgres directly; lintel decides how it shuts down.
		Setpgid:    true,
		Pdeathsig:  pdeathsig,
		Credential: s.account.credential(),
	}

	pm := &postmaster{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the *thread* that forked the
		// child exits, not the process. Go may retire a thread whose
		// goroutine exits while locked to it, so fork from a thread this
		// goroutine holds until the postmaster is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		pm.err = cmd.Wait()
		close(pm.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	s.pm = pm
	return nil
}

// waitReady returns once postmaster.pid reports our postmaster "ready" and a
// connection succeeds. Checking the pid file first means a connection can
// never reach some other server that happened to grab the same port.
func (s *Server) waitReady(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !s.pidFileReady() {
		select {
		case <-s.pm.done:
			return fmt.Errorf("postgres exited during startup: %s", describeExit(s.pm.err))
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}

	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 5 * time.Second
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			defer conn.Close(context.WithoutCancel(ctx))
			return ensureDatabase(ctx, conn, defaultDatabase)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57P03" { // 57P03: cannot_connect_now
			return fmt.Errorf("connect to postgres: %w", err)
		}
		select {
		case <-s.pm.done:
			return fmt.Errorf("postgres exited during startup: %s", describeExit(s.pm.err))
		case <-ctx.Done():
			return fmt.Errorf("connect to postgres: %w", err)
		case <-tick.C:
		}
	}
}

// pidFileReady reports whether postmaster.pid names our process and has
// reached status "ready" (line 8, written once connections are accepted).
func (s *Server) pidFileReady() bool {
	b, err := os.ReadFile(filepath.Join(s.clusterDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 &&
		strings.TrimSpace(lines[0]) == strconv.Itoa(s.pid()) &&
		strings.TrimSpace(lines[7]) == "ready"
}

func ensureDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// stop performs a fast shutdown, escalating to immediate shutdown and
// SIGKILL if postgres hangs.
func (pm *postmaster) stop(log *slog.Logger) error {
	select {
	case <-pm.done:
		return fmt.Errorf("pgembed: postgres had already exited: %s", describeExit(pm.err))
	default:
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, time.Minute}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}} {
		_ = pm.cmd.Process.Signal(step.sig)
		select {
		case <-pm.done:
			if step.sig != syscall.SIGINT {
				return fmt.Errorf("pgembed: postgres ignored fast shutdown; stopped it with %v", step.sig)
			}
			if pm.err != nil {
				return fmt.Errorf("pgembed: postgres shutdown: %s", describeExit(pm.err))
			}
			return nil
		case <-time.After(step.wait):
			log.Warn("postgres still running after signal", "signal", step.sig, "waited", step.wait)
		}
	}
	return errors.New("pgembed: postgres did not exit even after SIGKILL")
}

// kill is for failed starts: immediate shutdown, then SIGKILL.
func (pm *postmaster) kill() {
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGKILL} {
		_ = pm.cmd.Process.Signal(sig)
		select {
		case <-pm.done:
			return
		case <-time.After(5 * time.Second):
		}
	}
	<-pm.done
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// childEnv is the environment for initdb and postgres: PG* variables
// (PGDATA, PGPORT, PGOPTIONS, ...) would silently change what they do, and
// LC_ALL=C keeps their messages in English, which launch matches on.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgembed: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) logSize() int64 {
	fi, err := os.Stat(s.logPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail formats what PostgreSQL logged since offset (at most the last
// 4 KiB) for inclusion in an error.
func (s *Server) logTail(offset int64) string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	if size := s.logSize(); size-offset > max {
		offset = size - max
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	text := strings.TrimSpace(string(b))
	if text == "" {
		return ""
	}
	return fmt.Sprintf("\n--- %s ---\n%s", s.logPath(), text)
}
