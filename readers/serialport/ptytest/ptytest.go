// Package ptytest gives reader tests a real serial line: a pseudo-terminal
// pair whose slave end is opened through serialport.Open (so the real
// serial library and kernel tty code run) while the test plays the reader
// on the master end.
//
// Closing the master hangs the slave up exactly as unplugging a USB-serial
// adapter does, and [Link]/[Relink] imitate the udev /dev/serial/by-id
// symlink that follows the adapter to its new /dev/ttyUSBn.
package ptytest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lintel/lintel/readers/serialport/ptypair"
)

// NewPair opens a pseudo-terminal pair and returns its master end and the
// path of its slave device (e.g. /dev/pts/7). The slave is put in raw mode
// and closed again, so the only user of the slave is whoever opens
// slavePath; the master is closed when the test ends (closing it earlier
// "unplugs" the device).
func NewPair(t testing.TB) (master *os.File, slavePath string) {
	t.Helper()
	master, slavePath, err := ptypair.Open()
	if err != nil {
		t.Fatalf("ptytest: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	return master, slavePath
}

// Link creates a symlink to target in a fresh temporary directory, named
// like a udev /dev/serial/by-id entry, and returns its path. Configure the
// port with this path to test replugging.
func Link(t testing.TB, target string) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "usb-Lintel_Test_Reader_0001-if00-port0")
	if err := os.Symlink(target, link); err != nil {
		t.Fatalf("ptytest: %v", err)
	}
	return link
}

// Relink points link at target, replacing it atomically as udev does when
// the adapter comes back under a new device node.
func Relink(t testing.TB, link, target string) {
	t.Helper()
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatalf("ptytest: %v", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatalf("ptytest: %v", err)
	}
}
