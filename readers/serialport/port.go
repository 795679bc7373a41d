package serialport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// ErrPortGone is reported by [Port.Read] when the device behind the port is
// gone: the adapter was unplugged, the device node vanished or the kernel
// hung the line up. The port will never deliver data again; close it and
// open the path anew (the [Supervisor] does this).
var ErrPortGone = errors.New("serial port gone")

// Port is an open serial port.
//
// Read returns (0, nil) when the read timeout passes without data, so a
// consumer can check its context between reads; it returns an error wrapping
// [ErrPortGone] once the device is gone, and [os.ErrClosed] after Close.
// Close may be called while a Read runs on another goroutine; it then waits
// for that Read to return, which the read timeout bounds. (tarm/serial puts
// the descriptor in blocking mode behind the Go runtime's back, so the
// runtime cannot interrupt the read; without a read timeout Close would hang
// until the reader sent a byte.)
type Port interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Config says which serial device to open and how.
type Config struct {
	// Path is the device node, preferably a stable udev name such as
	// /dev/serial/by-id/usb-FTDI_…-if00-port0 rather than /dev/ttyUSB0,
	// which changes when adapters are replugged.
	Path string
	// Baud is the line speed; 0 means 9600, what EM4100/RDM6300 modules
	// and most Wiegand converters use. Always 8 data bits, no parity, 1 stop
	// bit.
	Baud int
	// ReadTimeout bounds every read, and so how long shutdown and hang-up
	// detection can take. The kernel counts it in tenths of a second, so it
	// is rounded up to a multiple of 100 ms and capped at 25.5 s; 0 means
	// 100 ms.
	ReadTimeout time.Duration
}

// DefaultBaud and DefaultReadTimeout are used for a zero Config.Baud and
// Config.ReadTimeout.
const (
	DefaultBaud        = 9600
	DefaultReadTimeout = 100 * time.Millisecond
)

// maxReadTimeout is the largest timeout the kernel's VTIME (a byte of
// deciseconds) can express.
const maxReadTimeout = 255 * 100 * time.Millisecond

// fastEOFLimit is how many zero-byte reads in a row that return well before
// the read timeout make a port count as gone. With a read timeout set, a live
// tty only returns zero bytes once the timeout has passed; a hung-up tty
// returns zero bytes at once, forever.
const fastEOFLimit = 3

// withDefaults fills zero fields and normalises the read timeout to what the
// kernel will actually do.
func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		return c, errors.New("serial port: no device path configured")
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Baud < 0 {
		return c, fmt.Errorf("serial port %s: baud rate %d is negative", c.Path, c.Baud)
	}
	switch {
	case c.ReadTimeout < 0:
		return c, fmt.Errorf("serial port %s: read timeout %v is negative", c.Path, c.ReadTimeout)
	case c.ReadTimeout == 0:
		c.ReadTimeout = DefaultReadTimeout
	case c.ReadTimeout > maxReadTimeout:
		c.ReadTimeout = maxReadTimeout
	default:
		// tarm/serial truncates to whole deciseconds; round up instead so
		// a configured 150 ms never becomes a shorter 100 ms.
		const tick = 100 * time.Millisecond
		c.ReadTimeout = (c.ReadTimeout + tick - 1) / tick * tick
	}
	return c, nil
}

// Open opens the serial device cfg.Path in raw 8N1 mode with a read timeout.
// A missing device gives an error wrapping [os.ErrNotExist].
func Open(cfg Config) (Port, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Stat first: tarm/serial reports an unknown baud rate before it looks
	// at the path, and "no such device" is the more useful message when
	// both are wrong; it also catches a path that is not a device at all.
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("serial port %s: %w", cfg.Path, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("serial port %s: not a character device", cfg.Path)
	}
	sp, err := serial.OpenPort(&serial.Config{Name: cfg.Path, Baud: cfg.Baud, ReadTimeout: cfg.ReadTimeout})
	if err != nil {
		return nil, fmt.Errorf("serial port %s: %w", cfg.Path, err)
	}
	p := &port{cfg: cfg, sp: sp, probe: -1}
	// tarm/serial does not expose its descriptor. A second, never-read
	// descriptor on the same tty lets us ask the kernel whether the line was
	// hung up without touching the data stream. Without it (it should not
	// fail where the first open worked) we fall back on the other checks.
	if fd, err := unix.Open(cfg.Path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
		p.probe = fd
	}
	return p, nil
}

type port struct {
	cfg Config
	sp  *serial.Port

	mu       sync.Mutex // guards probe and closed against Close during Read
	probe    int
	closed   bool
	fastEOFs int // only touched by Read, which is not called concurrently
}

// Read implements [Port.Read]: see the Port documentation for what (0, nil)
// and the errors mean.
func (p *port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	start := time.Now()
	n, err := p.sp.Read(b)
	if n > 0 {
		p.fastEOFs = 0
		return n, nil
	}
	if p.isClosed() {
		return 0, fmt.Errorf("serial port %s: %w", p.cfg.Path, os.ErrClosed)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// EIO and friends: the driver gave up on the device.
		return 0, fmt.Errorf("%w: %s: %v", ErrPortGone, p.cfg.Path, err)
	}
	// (0, EOF) is a timeout or a hang-up; tell them apart.
	if time.Since(start) < p.cfg.ReadTimeout/2 {
		p.fastEOFs++
	} else {
		p.fastEOFs = 0
	}
	if why := p.gone(); why != "" {
		return 0, fmt.Errorf("%w: %s: %s", ErrPortGone, p.cfg.Path, why)
	}
	return 0, nil
}

// gone says why the port is dead, or "" if it looks alive.
func (p *port) gone() string {
	switch {
	case p.hungUp():
		return "line hung up"
	case !p.pathExists():
		return "device node vanished"
	case p.fastEOFs >= fastEOFLimit:
		return fmt.Sprintf("%d reads in a row returned nothing before the timeout", p.fastEOFs)
	}
	return ""
}

// hungUp asks the kernel, through the probe descriptor, whether the tty was
// hung up (as the USB-serial driver does on unplugging).
func (p *port) hungUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.probe < 0 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(p.probe)}}
	_, err := unix.Poll(fds, 0)
	return err == nil && fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

// pathExists reports whether the configured path still leads to a device:
// udev removes the node and its by-id link when the adapter goes.
func (p *port) pathExists() bool {
	_, err := os.Stat(p.cfg.Path)
	return err == nil
}

func (p *port) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Write sends b to the device; on an unplugged adapter it fails with an
// error wrapping [ErrPortGone].
func (p *port) Write(b []byte) (int, error) {
	n, err := p.sp.Write(b)
	if err != nil && !p.isClosed() {
		return n, fmt.Errorf("%w: %s: %v", ErrPortGone, p.cfg.Path, err)
	}
	return n, err
}

// Close releases the port. It is safe to call more than once and while a
// Read is pending, in which case it returns when that Read does.
func (p *port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.probe >= 0 {
		closeFD(p.probe)
		p.probe = -1
	}
	p.mu.Unlock()
	return p.sp.Close()
}

// Pump reads p until ctx is done or a read fails, and hands every chunk to
// feed. When the read timeout passes without data it calls feed with an
// empty slice, so decoders that expire half-received frames by time get a
// chance to. It returns the read error (wrapping [ErrPortGone] when the
// device went away) or ctx.Err().
func Pump(ctx context.Context, p Port, feed func([]byte)) error {
	buf := make([]byte, 512)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := p.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				// Closed under us because we are shutting down.
				return ctx.Err()
			}
			return err
		}
		feed(buf[:n])
	}
}

func closeFD(fd int) { unix.Close(fd) }
