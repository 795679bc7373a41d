package serialport_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintel/lintel/readers/serialport"
	"github.com/lintel/lintel/readers/serialport/ptytest"
	"github.com/stretchr/testify/require"
)

// open opens path through serialport.Open and closes it when the test ends.
func open(t *testing.T, cfg serialport.Config) serialport.Port {
	t.Helper()
	p, err := serialport.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// readUntil reads p until it has received want or the deadline passes.
func readUntil(t *testing.T, p serialport.Port, want []byte, within time.Duration) {
	t.Helper()
	var got []byte
	buf := make([]byte, 64)
	deadline := time.Now().Add(within)
	for !bytes.Equal(got, want) && time.Now().Before(deadline) {
		n, err := p.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	require.Equal(t, want, got)
}

// readErr reads p until Read fails and returns the error and how long it
// took.
func readErr(t *testing.T, p serialport.Port, within time.Duration) (time.Duration, error) {
	t.Helper()
	buf := make([]byte, 64)
	start := time.Now()
	for time.Since(start) < within {
		if _, err := p.Read(buf); err != nil {
			return time.Since(start), err
		}
	}
	t.Fatalf("Read still returned no error after %v", within)
	return 0, nil
}

func TestBytesFromTheReaderArriveUnchangedAndRepliesReachIt(t *testing.T) {
	t.Parallel()
	master, path := ptytest.NewPair(t)
	p := open(t, serialport.Config{Path: path})

	// Every byte value, including CR, LF, NUL and the control characters
	// that a cooked tty would translate or swallow.
	frame := make([]byte, 256)
	for i := range frame {
		frame[i] = byte(i)
	}
	_, err := master.Write(frame)
	require.NoError(t, err)
	readUntil(t, p, frame, 2*time.Second)

	_, err = p.Write([]byte("beep\r\n"))
	require.NoError(t, err)
	got := make([]byte, 6)
	_, err = master.Read(got)
	require.NoError(t, err)
	require.Equal(t, "beep\r\n", string(got))
}

func TestAQuietLineReadsNothingAfterTheReadTimeoutWithoutAnError(t *testing.T) {
	t.Parallel()
	_, path := ptytest.NewPair(t)
	p := open(t, serialport.Config{Path: path, ReadTimeout: 200 * time.Millisecond})

	buf := make([]byte, 16)
	for range 2 {
		start := time.Now()
		n, err := p.Read(buf)
		took := time.Since(start)
		require.NoError(t, err, "a timeout is not an error")
		require.Zero(t, n)
		require.GreaterOrEqual(t, took, 180*time.Millisecond)
		require.Less(t, took, time.Second)
	}
}

func TestUnpluggingTheAdapterReportsPortGone(t *testing.T) {
	t.Parallel()
	master, path := ptytest.NewPair(t)
	p := open(t, serialport.Config{Path: ptytest.Link(t, path)})

	require.NoError(t, master.Close())
	took, err := readErr(t, p, 2*time.Second)
	require.ErrorIs(t, err, serialport.ErrPortGone)
	require.Less(t, took, time.Second)

	_, err = p.Write([]byte("x"))
	require.ErrorIs(t, err, serialport.ErrPortGone, "writing to an unplugged adapter")
}

// udev can re-create the by-id symlink for a replugged adapter before the
// old port's next read: the path is fine again, but the open port is not.
func TestAPortIsGoneEvenWhenItsPathAlreadyPointsAtAReplacement(t *testing.T) {
	t.Parallel()
	master, path := ptytest.NewPair(t)
	link := ptytest.Link(t, path)
	p := open(t, serialport.Config{Path: link})

	_, newPath := ptytest.NewPair(t)
	ptytest.Relink(t, link, newPath)
	require.NoError(t, master.Close())

	took, err := readErr(t, p, 2*time.Second)
	require.ErrorIs(t, err, serialport.ErrPortGone)
	require.Contains(t, err.Error(), "hung up")
	require.Less(t, took, time.Second)
}

func TestCloseDuringAPendingReadEndsTheReadWithinTheReadTimeout(t *testing.T) {
	t.Parallel()
	_, path := ptytest.NewPair(t)
	p := open(t, serialport.Config{Path: path, ReadTimeout: 500 * time.Millisecond})

	result := make(chan error, 1)
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := p.Read(buf); err != nil {
				result <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the read block in the kernel
	start := time.Now()
	require.NoError(t, p.Close())
	require.Less(t, time.Since(start), time.Second, "Close waits at most one read timeout")
	select {
	case err := <-result:
		require.ErrorIs(t, err, os.ErrClosed)
	case <-time.After(time.Second):
		t.Fatal("Read still blocked after Close")
	}
	require.NoError(t, p.Close(), "closing twice")
}

func TestOpenReportsWhatIsWrongWithTheDevice(t *testing.T) {
	t.Parallel()
	_, path := ptytest.NewPair(t)
	regular := filepath.Join(t.TempDir(), "ttyUSB0")
	require.NoError(t, os.WriteFile(regular, nil, 0o600))

	tests := []struct {
		name string
		cfg  serialport.Config
		is   error  // the error wraps this, if set
		msg  string // the message contains this
	}{
		{"an adapter that is not plugged in is not found",
			serialport.Config{Path: filepath.Join(t.TempDir(), "usb-missing")}, os.ErrNotExist, "no such file"},
		{"a regular file is not a serial port",
			serialport.Config{Path: regular}, nil, "not a character device"},
		{"an unsupported baud rate is refused",
			serialport.Config{Path: path, Baud: 12345}, nil, "baud"},
		{"no path at all is a configuration error",
			serialport.Config{}, nil, "no device path"},
		{"a negative read timeout is refused",
			serialport.Config{Path: path, ReadTimeout: -time.Second}, nil, "read timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := serialport.Open(tt.cfg)
			require.Error(t, err)
			require.Nil(t, p)
			if tt.is != nil {
				require.True(t, errors.Is(err, tt.is), "%v does not wrap %v", err, tt.is)
			}
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}
