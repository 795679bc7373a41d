package pgembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrDataDirInUse matches (errors.Is) the error Start returns when another
// process, or another Server in this process, owns the data directory.
var ErrDataDirInUse = errors.New("pgembed: data directory is in use")

// InUseError is the error Start returns when the data directory's lock is
// held; PID is the owner's pid as written into the lock file (0 if unknown).
type InUseError struct {
	DataDir string
	PID     int
}

func (e *InUseError) Error() string {
	pid := "unknown"
	if e.PID > 0 {
		pid = strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("pgembed: data directory %s is in use by another lintel process (pid %s)", e.DataDir, pid)
}

func (e *InUseError) Unwrap() error { return ErrDataDirInUse }

// lockDataDir takes a non-blocking exclusive flock on dataDir/lintel.lock and
// writes our pid into it. flock rather than a pid file: the kernel drops it
// when the process dies, however it dies, so kill -9 never leaves a stale
// lock. The descriptor is close-on-exec (Go's default), so the postmaster
// never inherits the lock; an orphaned postmaster is dealt with separately.
//
// A lock this process has just released can still be held for a moment:
// a flock belongs to the open file description, and a child that another
// goroutine is starting (fork, then exec) holds a copy of every descriptor
// until its exec closes the close-on-exec ones. A failed Start followed at
// once by another (or a Stop and a restart) while the process starts other
// children would then find its own pid in the lock, so a lock that names
// this process is tried again for ownLockGrace before it is reported in
// use: long enough for any fork to reach its exec, short enough that a
// second Server in this process still fails fast.
func lockDataDir(dataDir string) (*os.File, error) {
	for deadline := time.Now().Add(ownLockGrace); ; time.Sleep(10 * time.Millisecond) {
		f, err := tryLockDataDir(dataDir)
		var inUse *InUseError
		if errors.As(err, &inUse) && inUse.PID == os.Getpid() && time.Now().Before(deadline) {
			continue
		}
		return f, err
	}
}

const ownLockGrace = time.Second

// tryLockDataDir is one attempt of lockDataDir.
func tryLockDataDir(dataDir string) (*os.File, error) {
	path := filepath.Join(dataDir, "lintel.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgembed: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := 0
			if b, rerr := os.ReadFile(path); rerr == nil {
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
			return nil, &InUseError{DataDir: dataDir, PID: pid}
		}
		return nil, fmt.Errorf("pgembed: lock %s: %w", path, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pgembed: write lock file: %w", err)
	}
	return f, nil
}
