package lineproto_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/lineproto"
	"github.com/lintel/lintel/readers/serialport"
	"github.com/lintel/lintel/readers/serialport/ptytest"
	"github.com/stretchr/testify/require"
)

// pump reads the slave end of a fresh pseudo-terminal through
// serialport.Open and feeds decode until the test ends; the test plays the
// device on the returned master end.
func pump[T any](t *testing.T, feed func([]byte) []T) (master *os.File, out <-chan T) {
	t.Helper()
	master, path := ptytest.NewPair(t)
	port, err := serialport.Open(serialport.Config{Path: path, Baud: 9600})
	require.NoError(t, err)
	ch := make(chan T, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serialport.Pump(ctx, port, func(b []byte) {
			for _, v := range feed(b) {
				ch <- v
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		port.Close()
	})
	return master, ch
}

// writeSlowly writes s in pieces of size bytes with a pause between them,
// as a device at 9600 baud behind a USB adapter delivers it.
func writeSlowly(t *testing.T, w *os.File, s string, size int) {
	t.Helper()
	for len(s) > 0 {
		n := min(size, len(s))
		_, err := w.Write([]byte(s[:n]))
		require.NoError(t, err)
		s = s[n:]
		time.Sleep(2 * time.Millisecond)
	}
}

func receive[T any](t *testing.T, ch <-chan T, n int) []T {
	t.Helper()
	var got []T
	for len(got) < n {
		select {
		case v := <-ch:
			got = append(got, v)
		case <-time.After(3 * time.Second):
			t.Fatalf("received %d of %d within 3 s: %v", len(got), n, got)
		}
	}
	return got
}

func TestAWiegandConverterOnASerialLineYieldsCards(t *testing.T) {
	t.Parallel()
	d, err := lineproto.NewCardDecoder(lineproto.CardConfig{
		Line:   lineproto.LineConfig{Trim: true},
		Format: cardid.Wiegand34,
	})
	require.NoError(t, err)
	master, cards := pump(t, d.Feed)

	writeSlowly(t, master, "\xffBOOT\r\n0300-12345\r\n", 1)
	writeSlowly(t, master, "12/7\n00000000\r", 3)
	require.Equal(t, []lineproto.CardLine{
		{CardID: "300:12345", Raw: "0300-12345"},
		{CardID: "12:7", Raw: "12/7"},
		{CardID: "0:0", Raw: "00000000"},
	}, receive(t, cards, 3))
}

func TestAQRScannerOnASerialLineYieldsWalletCodes(t *testing.T) {
	t.Parallel()
	d, err := lineproto.NewTextDecoder(lineproto.TextConfig{Line: lineproto.LineConfig{Ending: lineproto.EndCR}})
	require.NoError(t, err)
	master, texts := pump(t, d.Feed)

	first, second := walletCode("x"), walletCode("y")
	writeSlowly(t, master, first+"\r"+"\x1b\x1b\r"+second+"\r", 200)
	require.Equal(t, []lineproto.TextLine{{Text: first}, {Text: second}}, receive(t, texts, 2))
}
