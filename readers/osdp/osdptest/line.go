//go:build linux

package osdptest

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Line is a pseudo-terminal standing in for an RS-485 line with PDs on it.
// Its terminal end, in raw mode, is the CP's port, as /dev/ttyUSB0 would
// be; the PDs are served on the master end.
type Line struct {
	// Port is the CP's end. Like github.com/tarm/serial with a read
	// timeout, a read on a silent line returns (0, io.EOF) after 100 ms, and
	// it takes no read deadlines.
	Port io.ReadWriter
}

// serialPort hides the terminal's SetReadDeadline so the CP uses the
// timeout-as-EOF reads a serial library gives.
type serialPort struct{ f *os.File }

func (p serialPort) Read(b []byte) (int, error)  { return p.f.Read(b) }
func (p serialPort) Write(b []byte) (int, error) { return p.f.Write(b) }

// NewLine opens a pseudo-terminal, serves pds on it and closes it when the
// test ends. Stop whatever uses Port first: register its cleanup after
// calling NewLine.
func NewLine(t testing.TB, pds ...*PD) *Line {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening pseudo-terminal: %v", err)
	}
	// Fd puts the terminal in blocking mode, which the read timeout needs:
	// a non-blocking read on a silent line fails with EAGAIN, and Go then
	// waits for data however long it takes.
	if err := makeRaw(int(tty.Fd())); err != nil {
		_ = ptmx.Close()
		_ = tty.Close()
		t.Fatalf("setting pseudo-terminal to raw mode: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ptmx, pds...) }()
	t.Cleanup(func() {
		cancel()
		// Closing the terminal end makes reads on the master end fail,
		// which stops Serve.
		_ = tty.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Errorf("PD simulator did not stop after the line closed")
		}
		_ = ptmx.Close()
	})
	return &Line{Port: serialPort{tty}}
}

// makeRaw sets the terminal to what a serial port for OSDP needs: 8 data
// bits, no echo, no line editing or byte translation (0x0D and 0x11 are
// ordinary bytes in a frame), and reads that return what has arrived or,
// after 100 ms of silence, nothing.
func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8 | unix.CLOCAL | unix.CREAD
	tio.Cc[unix.VMIN] = 0
	tio.Cc[unix.VTIME] = 1 // tenths of a second
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}
