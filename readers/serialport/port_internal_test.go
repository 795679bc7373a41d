package serialport

import (
	"os"
	"testing"
	"time"

	"github.com/lintel/lintel/readers/serialport/ptytest"
	"github.com/stretchr/testify/require"
)

func TestReadTimeoutsAreRoundedToWhatTheKernelCanDo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"unset means 100 ms", 0, 100 * time.Millisecond},
		{"a tenth of a second is kept", 100 * time.Millisecond, 100 * time.Millisecond},
		{"less than a tenth becomes a tenth", time.Millisecond, 100 * time.Millisecond},
		{"150 ms is rounded up, never down", 150 * time.Millisecond, 200 * time.Millisecond},
		{"whole seconds are kept", 2 * time.Second, 2 * time.Second},
		{"more than 25.5 s is capped", time.Minute, 25500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Config{Path: "/dev/ttyUSB0", ReadTimeout: tt.in}.withDefaults()
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.ReadTimeout)
			require.Equal(t, DefaultBaud, cfg.Baud)
		})
	}
}

// Without the hang-up probe, the only sign of a dead port whose path points
// at a live replacement is reads that return nothing at once.
func TestWithoutTheProbeRepeatedInstantEmptyReadsMeanTheLineIsDead(t *testing.T) {
	t.Parallel()
	master, path := ptytest.NewPair(t)
	link := ptytest.Link(t, path)
	pi, err := Open(Config{Path: link, ReadTimeout: time.Second})
	require.NoError(t, err)
	p := pi.(*port)
	t.Cleanup(func() { p.Close() })
	p.mu.Lock()
	closeFD(p.probe)
	p.probe = -1
	p.mu.Unlock()

	_, newPath := ptytest.NewPair(t)
	ptytest.Relink(t, link, newPath)
	require.NoError(t, master.Close())

	buf := make([]byte, 8)
	start := time.Now()
	for i := 1; i < fastEOFLimit; i++ {
		n, err := p.Read(buf)
		require.NoError(t, err, "read %d: one instant empty read could be a fluke", i)
		require.Zero(t, n)
	}
	_, err = p.Read(buf)
	require.ErrorIs(t, err, ErrPortGone)
	require.Contains(t, err.Error(), "returned nothing before the timeout")
	require.Less(t, time.Since(start), 500*time.Millisecond, "well before even one read timeout")
}

func TestAPortWhosePathIsRemovedIsGone(t *testing.T) {
	t.Parallel()
	_, path := ptytest.NewPair(t)
	link := ptytest.Link(t, path)
	p, err := Open(Config{Path: link})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })

	require.NoError(t, os.Remove(link))
	_, err = p.Read(make([]byte, 8))
	require.ErrorIs(t, err, ErrPortGone)
	require.Contains(t, err.Error(), "device node vanished")
}
