package pgembed

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procState classifies the process a postmaster.pid file names.
type procState int

const (
	procGone       procState = iota // no such process
	procZombie                      // exited but not reaped (its new parent does not reap)
	procPostmaster                  // a live postgres working in this cluster directory
	procUnrelated                   // a live process that is not a postgres of this cluster (pid reused)
	procUnknown                     // a postgres we may not inspect
)

// inspectPid looks at /proc to decide what pid is. A postmaster chdirs into
// its data directory, so "postgres whose cwd is clusterDir" identifies it
// without trusting the command line.
func inspectPid(pid int, clusterDir string) procState {
	proc := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return procGone
	}
	// Field 3 (state) follows the parenthesised command name, which may
	// itself contain spaces or parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		if f := strings.Fields(string(stat[i+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			return procZombie
		}
	}
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil {
		return procGone
	}
	if c := strings.TrimSpace(string(comm)); c != "postgres" && c != "postmaster" {
		return procUnrelated
	}
	cwd, err := os.Readlink(proc + "/cwd")
	if errors.Is(err, fs.ErrNotExist) {
		return procGone
	}
	if err != nil {
		// Another user's postgres (we are not root). It is almost certainly
		// not ours, but removing the pid file of a live postmaster would be
		// disastrous, so leave the decision to PostgreSQL.
		return procUnknown
	}
	if sameDir(cwd, clusterDir) {
		return procPostmaster
	}
	return procUnrelated
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// postmasterPidFromFile returns the pid on the first line of
// clusterDir/postmaster.pid, or 0 if there is no usable file.
func postmasterPidFromFile(clusterDir string) int {
	b, err := os.ReadFile(filepath.Join(clusterDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	if pid < 0 { // a standalone backend writes its pid negated
		pid = -pid
	}
	return pid
}

// clearStalePostmaster runs after Start holds the data directory lock, so
// any postmaster still running on the cluster belongs to a lintel process
// that died without taking it along (its parent-death signal was lost). It
// is stopped with an immediate shutdown (SIGQUIT; WAL replay makes that
// safe), then SIGKILL if it does not go away.
//
// A postmaster.pid naming a process that no longer exists is left alone:
// PostgreSQL detects that itself and replaces the file. But PostgreSQL only
// asks kill(pid, 0), which also succeeds for a zombie or an unrelated process
// that reused the pid; it would then refuse to start, so in those cases the
// file is removed here.
func clearStalePostmaster(clusterDir string, log *slog.Logger) error {
	pid := postmasterPidFromFile(clusterDir)
	if pid == 0 || pid == os.Getpid() {
		return nil
	}
	pidFile := filepath.Join(clusterDir, "postmaster.pid")
	switch state := inspectPid(pid, clusterDir); state {
	case procGone, procUnknown:
		return nil
	case procZombie, procUnrelated:
		log.Warn("removing stale postmaster.pid", "pid", pid, "zombie", state == procZombie)
		if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgembed: remove stale %s: %w", pidFile, err)
		}
		return nil
	}

	log.Warn("stopping postgres left behind by a previous lintel process", "pid", pid, "data_dir", clusterDir)
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		if err := syscall.Kill(pid, step.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("pgembed: stop orphaned postgres (pid %d): %w", pid, err)
		}
		for deadline := time.Now().Add(step.wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			switch inspectPid(pid, clusterDir) {
			case procGone, procUnknown:
				return nil
			case procZombie, procUnrelated:
				_ = os.Remove(pidFile)
				return nil
			}
		}
	}
	return fmt.Errorf("pgembed: orphaned postgres (pid %d) in %s did not exit after SIGKILL", pid, clusterDir)
}
