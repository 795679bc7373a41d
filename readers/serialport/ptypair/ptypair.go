// Package ptypair opens a pseudo-terminal pair that behaves like a serial
// line: the slave end in raw mode, so bytes pass through unchanged. Tests
// (through ptytest) and `lintel bench gateway` play a reader on the master
// end while the gateway opens the slave's path as its serial port.
package ptypair

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Open returns the master end and the path of the slave device (e.g.
// /dev/pts/7). The slave is put in raw mode and closed again, so its only
// user is whoever opens slavePath; closing the master "unplugs" it.
func Open() (master *os.File, slavePath string, err error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, "", fmt.Errorf("ptypair: open a pseudo-terminal: %w", err)
	}
	if err := makeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return nil, "", fmt.Errorf("ptypair: raw mode on %s: %w", slave.Name(), err)
	}
	slavePath = slave.Name()
	if err := slave.Close(); err != nil {
		master.Close()
		return nil, "", fmt.Errorf("ptypair: close %s: %w", slavePath, err)
	}
	return master, slavePath, nil
}

// makeRaw is cfmakeraw(3): no echo, no line editing, no CR/LF translation,
// 8-bit characters, so bytes pass through the line unchanged.
func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}
