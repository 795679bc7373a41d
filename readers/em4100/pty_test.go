package em4100_test

import (
	"context"
	"testing"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/lintel/lintel/readers/serialport"
	"github.com/lintel/lintel/readers/serialport/ptytest"
	"github.com/stretchr/testify/require"
)

// TestAnRDM6300OnASerialLineOpensTheDoorOncePerPresentation plays an RDM6300
// on the master end of a pseudo-terminal: a fob held for half a second, line
// noise, a second fob. The decoder reads the slave end through
// serialport.Open.
func TestAnRDM6300OnASerialLineOpensTheDoorOncePerPresentation(t *testing.T) {
	t.Parallel()
	master, path := ptytest.NewPair(t)
	port, err := serialport.Open(serialport.Config{Path: path, Baud: 9600})
	require.NoError(t, err)
	t.Cleanup(func() { port.Close() })
	d, err := em4100.NewDecoder(em4100.Config{Format: cardid.Wiegand26})
	require.NoError(t, err)

	reads := make(chan em4100.Read, 10)
	ctx, cancel := context.WithCancel(context.Background())
	pumped := make(chan error, 1)
	go func() {
		pumped <- serialport.Pump(ctx, port, func(b []byte) {
			for _, r := range d.Feed(b) {
				reads <- r
			}
		})
	}()

	for range 5 {
		_, err := master.Write(em4100.Frame(0x1E009A4067))
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
	}
	_, err = master.Write([]byte("\x00\xff\r\n"))
	require.NoError(t, err)
	// The second fob's frame arrives in two pieces.
	frame := em4100.Frame(0x0400E3B1C2)
	_, err = master.Write(frame[:5])
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	_, err = master.Write(frame[5:])
	require.NoError(t, err)

	var got []string
	for len(got) < 2 {
		select {
		case r := <-reads:
			got = append(got, r.CardID)
		case <-time.After(3 * time.Second):
			t.Fatalf("read %v within 3 s, want two fobs", got)
		}
	}
	require.Equal(t, []string{"154:16487", "227:45506"}, got)

	cancel()
	require.ErrorIs(t, <-pumped, context.Canceled)
	st := d.Stats()
	require.Equal(t, em4100.Stats{Frames: 6, Reads: 2, Repeats: 4, Noise: 4}, st)
}
