package pgembed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tests run real PostgreSQL processes. fsync=off only trades durability
// across an OS crash; killing processes (what the tests do) loses nothing.
var testSettings = map[string]string{"fsync": "off"}

func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		t.Skipf("no local PostgreSQL: %v", err)
	}
}

// testDataDir returns a data directory below a fresh 0755 directory: when
// the tests run as root, postgres runs as another user that must be able to
// reach it, and t.TempDir() parents are 0700.
func testDataDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "pgembed-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(base, "data")
}

func startServer(t *testing.T, dataDir string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := Start(ctx, Options{DataDir: dataDir, Settings: testSettings, Logger: log})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func execSQL(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryString(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// processesIn lists live processes whose working directory is dir: the
// postmaster and every backend chdir into the cluster directory.
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == dir && inspectPid(pid, dir) != procZombie {
			pids = append(pids, pid)
		}
	}
	return pids
}

func assertNoProcessesIn(t *testing.T, dir string) {
	t.Helper()
	if pids := processesIn(dir); len(pids) > 0 {
		t.Errorf("processes still running in %s: %v", dir, pids)
	}
}

func TestRestartKeepsData(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dataDir := testDataDir(t)

	s := startServer(t, dataDir)
	if u := s.URL(""); !strings.Contains(u, "@127.0.0.1:") || !strings.Contains(u, "/lintel?") {
		t.Errorf("URL(\"\") = %s, want TCP on 127.0.0.1 to database lintel", u)
	}
	execSQL(t, s.URL(""), "CREATE TABLE marker (v text)")
	execSQL(t, s.URL(""), "INSERT INTO marker VALUES ('kept')")
	if got := queryString(t, s.URL(""), "SELECT current_setting('listen_addresses')"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}

	if fi, err := os.Stat(filepath.Join(dataDir, "pg-password")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pg-password: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(dataDir, "lintel.lock")); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lintel.lock = %q, want our pid %d", b, os.Getpid())
	}
	if os.Geteuid() == 0 {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
				t.Errorf("postgres runs as root: %s", line)
			}
		}
	}

	clusterDir := filepath.Join(dataDir, "pg")
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	assertNoProcessesIn(t, clusterDir)

	s = startServer(t, dataDir)
	if got := queryString(t, s.URL(""), "SELECT v FROM marker"); got != "kept" {
		t.Errorf("after restart: marker = %q, want kept", got)
	}
}

// A lock this process released is still held while a child being started
// holds a copy of its descriptor (between fork and exec; here a child that
// keeps it on purpose for a moment): taking the lock again waits for it
// rather than calling the directory in use by this very process.
func TestALockReleasedButStillHeldByAStartingChildIsWaitedFor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "0.3")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Wait() }()
	_ = f.Close()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("the lock was released: %v", err)
	}
	_ = again.Close()
}

func TestSecondStartFails(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dataDir := testDataDir(t)
	s := startServer(t, dataDir)

	s2, err := Start(context.Background(), Options{DataDir: dataDir, Settings: testSettings})
	if err == nil {
		_ = s2.Stop()
		t.Fatal("second Start on the same data directory succeeded")
	}
	if !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("err = %v, want ErrDataDirInUse", err)
	}
	want := fmt.Sprintf("data directory %s is in use by another lintel process (pid %d)", dataDir, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to contain %q", err, want)
	}
	// The failed attempt must not have disturbed the running server.
	if got := queryString(t, s.URL(""), "SELECT 'alive'"); got != "alive" {
		t.Errorf("first server: %q", got)
	}
}

// TestStalePostmasterPid kills the postmaster itself, leaving a
// postmaster.pid that names a dead process: PostgreSQL must cope with it on
// the next start, and crash recovery must keep the committed row.
func TestStalePostmasterPid(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dataDir := testDataDir(t)
	clusterDir := filepath.Join(dataDir, "pg")
	s := startServer(t, dataDir)
	execSQL(t, s.URL(""), "CREATE TABLE marker (v text)")
	execSQL(t, s.URL(""), "INSERT INTO marker VALUES ('survived')")

	pid := s.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.pm.done
	if err := s.Stop(); err == nil {
		t.Error("Stop after postgres died reported no error")
	}
	if got := postmasterPidFromFile(clusterDir); got != pid {
		t.Fatalf("postmaster.pid names %d, want the killed %d", got, pid)
	}
	if st := inspectPid(pid, clusterDir); st != procGone {
		t.Fatalf("killed postmaster state %v, want gone", st)
	}

	s = startServer(t, dataDir)
	if got := queryString(t, s.URL(""), "SELECT v FROM marker"); got != "survived" {
		t.Errorf("marker = %q, want survived", got)
	}
}

const (
	helperEnvDir         = "PGEMBED_HELPER_DATADIR"
	helperEnvNoPdeathsig = "PGEMBED_HELPER_NO_PDEATHSIG"
)

// TestHelperProcess is not a test: TestKillOwner runs the test binary again
// with only this function selected, to play a lintel process that gets
// killed with SIGKILL while owning a server.
func TestHelperProcess(t *testing.T) {
	dataDir := os.Getenv(helperEnvDir)
	if dataDir == "" {
		t.Skip("helper process for TestKillOwner")
	}
	if os.Getenv(helperEnvNoPdeathsig) == "1" {
		pdeathsig = 0
	}
	s, err := Start(context.Background(), Options{DataDir: dataDir, Settings: testSettings})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: Start:", err)
		os.Exit(3)
	}
	conn, err := pgx.Connect(context.Background(), s.URL(""))
	if err == nil {
		_, err = conn.Exec(context.Background(), "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('committed before kill -9')")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: write row:", err)
		os.Exit(3)
	}
	fmt.Printf("PGEMBED_READY %d\n", s.pid())
	time.Sleep(time.Hour) // until killed
}

func TestKillOwner(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	for _, tc := range []struct {
		name        string
		noPdeathsig bool
	}{
		// The normal case: the kernel sends the postmaster SIGQUIT when its
		// owner dies.
		{"parent-death signal", false},
		// The signal was lost: a live orphaned postmaster remains, and the
		// next Start has to find and stop it.
		{"orphaned postmaster", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dataDir := testDataDir(t)
			clusterDir := filepath.Join(dataDir, "pg")

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnvDir+"="+dataDir)
			if tc.noPdeathsig {
				cmd.Env = append(cmd.Env, helperEnvNoPdeathsig+"=1")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			ready := make(chan int, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "PGEMBED_READY" {
						pid, _ := strconv.Atoi(f[1])
						ready <- pid
						return
					}
				}
				close(ready)
			}()
			var oldPid int
			select {
			case pid, ok := <-ready:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("helper exited before it was ready:\n%s", stderr.String())
				}
				oldPid = pid
				t.Cleanup(func() {
					if inspectPid(oldPid, clusterDir) == procPostmaster {
						_ = syscall.Kill(oldPid, syscall.SIGKILL)
					}
				})
			case <-time.After(time.Minute):
				t.Fatalf("helper not ready after a minute:\n%s", stderr.String())
			}

			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()

			if tc.noPdeathsig {
				if st := inspectPid(oldPid, clusterDir); st != procPostmaster {
					t.Fatalf("expected an orphaned postmaster %d, state %v", oldPid, st)
				}
			} else {
				// Without any help from us the postmaster must go away.
				deadline := time.Now().Add(10 * time.Second)
				for inspectPid(oldPid, clusterDir) == procPostmaster {
					if time.Now().After(deadline) {
						t.Fatalf("postmaster %d still running 10s after its owner was killed", oldPid)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}

			s := startServer(t, dataDir)
			if got := queryString(t, s.URL(""), "SELECT v FROM marker"); got != "committed before kill -9" {
				t.Errorf("marker = %q", got)
			}
			if st := inspectPid(oldPid, clusterDir); st == procPostmaster {
				t.Errorf("old postmaster %d still running", oldPid)
			}
			if err := s.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
			assertNoProcessesIn(t, clusterDir)
		})
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dataDir := testDataDir(t)
	_, err := Start(context.Background(), Options{
		DataDir:  dataDir,
		Settings: map[string]string{"fsync": "off", "shared_buffers": "nonsense"},
	})
	if err == nil {
		t.Fatal("Start with an invalid setting succeeded")
	}
	// The error must carry PostgreSQL's own explanation from pg.log.
	if !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
		t.Errorf("error lacks the log tail: %v", err)
	}
	// And the failed start must have released the data directory.
	s := startServer(t, dataDir)
	_ = s.Stop()
}

func TestUnreachableDataDirAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("privilege drop only happens as root")
	}
	requireBinaries(t)
	// t.TempDir() is below a 0700 directory owned by root, so the postgres
	// user cannot reach anything in it; Start must say so up front.
	dataDir := filepath.Join(t.TempDir(), "data")
	_, err := Start(context.Background(), Options{DataDir: dataDir})
	if err == nil || !strings.Contains(err.Error(), "is not searchable by it") {
		t.Fatalf("err = %v, want an explanation about directory permissions", err)
	}
}
