//go:build linux

package osdp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/osdp"
	"github.com/lintel/lintel/readers/osdp/osdptest"
	"github.com/stretchr/testify/require"
)

// recorder keeps every event a bus emits, so tests can count them.
type recorder struct {
	mu     sync.Mutex
	events []osdp.Event
}

func (r *recorder) all() []osdp.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]osdp.Event(nil), r.events...)
}

func eventsOf[T osdp.Event](r *recorder) []T {
	var out []T
	for _, ev := range r.all() {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits for an event of type T that matches, or fails the test.
func waitFor[T osdp.Event](t *testing.T, r *recorder, within time.Duration, match func(T) bool) T {
	t.Helper()
	var found T
	require.Eventually(t, func() bool {
		for _, e := range eventsOf[T](r) {
			if match == nil || match(e) {
				found = e
				return true
			}
		}
		return false
	}, within, 5*time.Millisecond, "no matching %T within %v; events: %+v", found, within, r.all())
	return found
}

func online(addr byte) func(osdp.StatusChange) bool {
	return func(s osdp.StatusChange) bool { return s.Addr == addr && s.Online }
}

// testBus is a running Bus and what it reported.
type testBus struct {
	*osdp.Bus
	events *recorder
	stop   func() error // ends Run and returns what it returned
}

// runBus starts a Bus on port and stops it when the test ends (before the
// line closes, as cleanups run last-registered first).
func runBus(t *testing.T, cfg osdp.Config, port io.ReadWriter) *testBus {
	t.Helper()
	bus, err := osdp.New(cfg)
	require.NoError(t, err)
	tb := &testBus{Bus: bus, events: &recorder{}}
	drained := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case ev := <-bus.Events():
				tb.events.mu.Lock()
				tb.events.events = append(tb.events.events, ev)
				tb.events.mu.Unlock()
			case <-quit:
				return
			}
		}
	}()
	tb.stop = tb.start(t, port)
	t.Cleanup(func() {
		if err := tb.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v after its context ended, want context.Canceled", err)
		}
		close(quit)
		<-drained
	})
	return tb
}

// start runs the bus on port and returns a function that stops it.
func (tb *testBus) start(t *testing.T, port io.ReadWriter) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Run(ctx, port) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(2 * time.Second):
				t.Errorf("Run did not return within 2 s of its context ending")
			}
		})
		return err
	}
}

func pdStatus(t *testing.T, bus *osdp.Bus, addr byte) osdp.PDStatus {
	t.Helper()
	for _, p := range bus.Snapshot().PDs {
		if p.Addr == addr {
			return p
		}
	}
	t.Fatalf("no PD 0x%02X in snapshot", addr)
	return osdp.PDStatus{}
}

func TestCardPresentedAtAReaderArrivesWithItsCanonicalCardID(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	presented := time.Now()
	pd.PresentCard(bits(h10301))
	read := waitFor[osdp.CardRead](t, bus.events, 2*time.Second, nil)
	require.Equal(t, byte(1), read.Addr)
	require.Equal(t, byte(0), read.Raw.Reader)
	require.Equal(t, bits(h10301), read.Raw.Bits)
	require.WithinDuration(t, presented, read.At, 500*time.Millisecond, "a card read reaches the CP within a few polls")
	id, err := osdp.CardFromRaw(read.Raw, cardid.Wiegand26)
	require.NoError(t, err)
	require.Equal(t, "123:4567", id)
}

func TestKeysPressedAtAReaderArriveAsDigits(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	pd.PressKeys("1234#")
	keys := waitFor[osdp.Keypad](t, bus.events, 2*time.Second, nil)
	require.Equal(t, osdp.Keypad{Addr: 1, Reader: 0, Digits: "1234#", At: keys.At}, keys)
}

func TestBusIdentifiesEachReaderThenPollsWithSequenceNumbersInOSDPOrder(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	require.Eventually(t, func() bool { return len(pd.Received()) >= 9 }, 3*time.Second, 10*time.Millisecond)

	var codes, seqs []byte
	for _, r := range pd.Received()[:9] {
		codes = append(codes, r.Frame.Code)
		seqs = append(seqs, r.Frame.Seq)
	}
	p := byte(osdp.CmdPoll)
	require.Equal(t, []byte{osdp.CmdID, osdp.CmdCap, p, p, p, p, p, p, p}, codes)
	require.Equal(t, []byte{0, 1, 2, 3, 1, 2, 3, 1, 2}, seqs, "0 once to start, then 1, 2, 3 round")

	rec := pd.Received()
	gap := rec[8].At.Sub(rec[3].At) / 5
	require.InDelta(t, float64(osdp.DefaultPollInterval), float64(gap), float64(25*time.Millisecond), "mean poll interval")

	st := pdStatus(t, bus.Bus, 1)
	require.True(t, st.Online)
	require.WithinDuration(t, time.Now(), st.LastSeen, time.Second)
	require.NotNil(t, st.ID)
	require.Equal(t, pd.ID(), *st.ID, "the reader's identity is shown to the installer")
	require.NotEmpty(t, st.Caps)
	snap := bus.Snapshot()
	require.Equal(t, osdp.Stats{}, snap.Dropped, "a clean line drops nothing; mark bytes are not garbage")
	require.Zero(t, snap.Retransmits)
	require.Zero(t, snap.Unexpected)
	require.GreaterOrEqual(t, snap.FramesSent, uint64(9))
	require.GreaterOrEqual(t, snap.FramesReceived, uint64(8))
}

func TestGrantPulsesTheDoorOutputAndShowsGreenWithABeep(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	require.NoError(t, bus.Grant(1, 3*time.Second))
	require.Eventually(t, func() bool { return len(pd.Buzzers()) == 1 }, 2*time.Second, 5*time.Millisecond)

	require.Equal(t, []osdp.Output{{Number: 0, Control: osdp.OutTempOnThenResume, Timer: 30}}, pd.Outputs(),
		"a 3 s pulse the reader times itself")
	leds := pd.LEDs()
	require.Len(t, leds, 1)
	require.Equal(t, osdp.Green, leds[0].TempOnColor)
	require.Equal(t, uint16(30), leds[0].TempTimer)
	require.Equal(t, []osdp.Buzzer{osdp.BuzzerGrant()}, pd.Buzzers())

	var order []byte
	for _, r := range pd.Received() {
		if c := r.Frame.Code; c == osdp.CmdOut || c == osdp.CmdLED || c == osdp.CmdBuz {
			order = append(order, c)
		}
	}
	require.Equal(t, []byte{osdp.CmdOut, osdp.CmdLED, osdp.CmdBuz}, order, "the door first")
	require.Empty(t, eventsOf[osdp.Nak](bus.events))
	require.Empty(t, eventsOf[osdp.CommandFailed](bus.events))
}

func TestDenyFlashesRedAndBeepsThreeTimes(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	require.NoError(t, bus.Deny(1))
	require.Eventually(t, func() bool { return len(pd.Buzzers()) == 1 }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, []osdp.LED{osdp.LEDDeny()}, pd.LEDs())
	require.Equal(t, byte(3), pd.Buzzers()[0].Count)
	require.Empty(t, pd.Outputs(), "a denied door stays locked")
}

func TestRefusedCommandIsReportedAsNak(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	pd.Refuse(osdp.CmdOut, osdp.NakUnableToProcess)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	require.NoError(t, bus.Grant(1, time.Second))
	nak := waitFor[osdp.Nak](t, bus.events, 2*time.Second, nil)
	require.Equal(t, byte(1), nak.Addr)
	require.Equal(t, byte(osdp.CmdOut), nak.Command)
	require.Equal(t, osdp.NakUnableToProcess, nak.Code)
	require.Eventually(t, func() bool { return len(pd.Buzzers()) == 1 }, 2*time.Second, 5*time.Millisecond,
		"the LED and buzzer commands still go out")
}

func TestTwoReadersOnOneBusBothReportAndOnlyTheGrantedDoorOpens(t *testing.T) {
	t.Parallel()
	pd1, pd2 := osdptest.NewPD(1), osdptest.NewPD(2)
	line := osdptest.NewLine(t, pd1, pd2)
	bus := runBus(t, osdp.Config{Addrs: []byte{2, 1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))
	waitFor(t, bus.events, 2*time.Second, online(2))

	pd1.PresentCard(bits(h10301))
	pd2.PresentCard(bits("0000000000111101100010001110101111"))
	at1 := waitFor(t, bus.events, 2*time.Second, func(c osdp.CardRead) bool { return c.Addr == 1 })
	at2 := waitFor(t, bus.events, 2*time.Second, func(c osdp.CardRead) bool { return c.Addr == 2 })
	require.Len(t, at1.Raw.Bits, 26)
	require.Len(t, at2.Raw.Bits, 34)

	require.NoError(t, bus.Grant(2, 5*time.Second))
	require.Eventually(t, func() bool { return len(pd2.Outputs()) == 1 }, 2*time.Second, 5*time.Millisecond)
	require.Empty(t, pd1.Outputs())
	for _, r := range append(pd1.Received(), pd2.Received()...) {
		require.False(t, r.Repeat, "no retransmissions on a clean bus")
	}
	snap := bus.Snapshot()
	require.Len(t, snap.PDs, 2)
	require.Equal(t, byte(1), snap.PDs[0].Addr)
	require.True(t, snap.PDs[0].Online && snap.PDs[1].Online)
}

func TestSilentReaderGoesOfflineAndComesBackOnline(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	const offlineAfter = 800 * time.Millisecond
	bus := runBus(t, osdp.Config{Addrs: []byte{1}, OfflineAfter: offlineAfter, OfflineRetry: 200 * time.Millisecond}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))
	require.Eventually(t, func() bool { return len(pd.Commands(osdp.CmdPoll)) > 0 }, time.Second, 5*time.Millisecond)

	pd.SetSilent(true)
	silenced := time.Now()
	off := waitFor(t, bus.events, 3*time.Second, func(s osdp.StatusChange) bool { return !s.Online })
	require.Equal(t, byte(1), off.Addr)
	require.GreaterOrEqual(t, off.At.Sub(silenced), offlineAfter-osdp.DefaultPollInterval, "not before the reader was silent that long")
	require.False(t, pdStatus(t, bus.Bus, 1).Online)
	require.ErrorIs(t, bus.Grant(1, time.Second), osdp.ErrOffline, "a door that cannot open is known at once")

	ids := len(pd.Commands(osdp.CmdID))
	pd.SetSilent(false)
	back := waitFor(t, bus.events, 2*time.Second, func(s osdp.StatusChange) bool { return s.Online && s.At.After(off.At) })
	require.Equal(t, byte(1), back.Addr)
	require.Eventually(t, func() bool { return len(pd.Commands(osdp.CmdCap)) >= 2 }, time.Second, 5*time.Millisecond,
		"capabilities are asked for again: the reader may have been replaced")
	require.Greater(t, len(pd.Commands(osdp.CmdID)), ids)
	require.True(t, pdStatus(t, bus.Bus, 1).Online)
	require.NoError(t, bus.Grant(1, time.Second))
}

func TestLostReplyIsRetransmittedWithTheSameSequenceNumberAndTheCardReadOnce(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	pd.DropNext(1)
	pd.PresentCard(bits(h10301))
	waitFor[osdp.CardRead](t, bus.events, 3*time.Second, nil)

	rec := pd.Received()
	repeats := 0
	for i := 1; i < len(rec); i++ {
		if rec[i].Repeat {
			repeats++
			require.Equal(t, rec[i-1].Frame, rec[i].Frame, "the same command, same sequence number")
			require.NotZero(t, rec[i].Frame.Seq)
		}
	}
	require.Equal(t, 1, repeats)
	time.Sleep(300 * time.Millisecond) // a few more polls
	require.Len(t, eventsOf[osdp.CardRead](bus.events), 1, "the PD resent its reply; the card is reported once")
	snap := bus.Snapshot()
	require.Equal(t, uint64(1), snap.Retransmits)
	require.Equal(t, uint64(1), snap.Timeouts)
	require.Empty(t, eventsOf[osdp.StatusChange](bus.events)[1:], "one lost reply does not make a reader offline")
}

func TestLineNoiseAndABadCRCAreDroppedCountedAndTheNextGoodFrameRead(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	pd.SendGarbage([]byte{0x00, 0x13, 0x37, 0xFE})
	pd.CorruptNext(1)
	pd.PresentCard(bits(h10301))
	read := waitFor[osdp.CardRead](t, bus.events, 3*time.Second, nil)
	require.Equal(t, bits(h10301), read.Raw.Bits)
	require.Equal(t, osdp.Stats{Garbage: 4, BadCRC: 1}, bus.Snapshot().Dropped)
}

func TestTruncatedReplyIsDroppedAndTheRepeatedReplyRead(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	pd.TruncateNext(1)
	pd.PresentCard(bits(h10301))
	read := waitFor[osdp.CardRead](t, bus.events, 3*time.Second, nil)
	require.Equal(t, bits(h10301), read.Raw.Bits)
	snap := bus.Snapshot()
	require.Equal(t, osdp.Stats{Truncated: 1}, snap.Dropped)
	require.Equal(t, uint64(1), snap.Retransmits)
}

func TestReaderThatAnswersWithChecksumsIsUnderstood(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	pd.UseChecksum(true)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	pd.PresentCard(bits(h10301))
	read := waitFor[osdp.CardRead](t, bus.events, 2*time.Second, nil)
	require.Equal(t, bits(h10301), read.Raw.Bits)
	for _, r := range pd.Received() {
		require.False(t, r.Frame.Checksum, "we always send CRC-16")
	}
}

// brokenPort is a serial adapter that has been unplugged: writes fail.
type brokenPort struct{}

func (brokenPort) Read([]byte) (int, error)  { return 0, io.EOF }
func (brokenPort) Write([]byte) (int, error) { return 0, syscall.EIO }

func TestRunReturnsWhenThePortFailsAndRunsAgainOnANewPort(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus, err := osdp.New(osdp.Config{Addrs: []byte{1}})
	require.NoError(t, err)

	err = bus.Run(context.Background(), brokenPort{})
	require.ErrorIs(t, err, syscall.EIO, "the caller sees why and reopens the port")

	tb := &testBus{Bus: bus, events: &recorder{}}
	stop := tb.start(t, line.Port)
	defer func() { require.ErrorIs(t, stop(), context.Canceled) }()
	require.Eventually(t, func() bool { return pdStatus(t, bus, 1).Online }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, 0, int(pd.Received()[0].Frame.Seq), "a new run starts the sequence over")
	require.Equal(t, byte(osdp.CmdID), pd.Received()[0].Frame.Code)
}

func TestGrantQueuedWhileThePortIsDownExpiresInsteadOfOpeningTheDoorLate(t *testing.T) {
	t.Parallel()
	pd := osdptest.NewPD(1)
	line := osdptest.NewLine(t, pd)
	bus := runBus(t, osdp.Config{Addrs: []byte{1}, CommandExpiry: 300 * time.Millisecond}, line.Port)
	waitFor(t, bus.events, 2*time.Second, online(1))

	require.ErrorIs(t, bus.stop(), context.Canceled)
	require.NoError(t, bus.Grant(1, 3*time.Second))
	time.Sleep(400 * time.Millisecond)
	bus.stop = bus.start(t, line.Port)

	failed := waitFor[osdp.CommandFailed](t, bus.events, 2*time.Second, nil)
	require.ErrorIs(t, failed.Err, osdp.ErrExpired)
	require.Equal(t, byte(osdp.CmdOut), failed.Command)
	require.Len(t, eventsOf[osdp.CommandFailed](bus.events), 3, "output, LED and buzzer all expire")
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, pd.Outputs(), "the door did not open late")
}

func TestBusWorksThroughASerialDeviceServerOverTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pd := osdptest.NewPD(1)
	served := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		served <- conn
		_ = osdptest.Serve(context.Background(), conn, pd)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()

	bus, err := osdp.New(osdp.Config{Addrs: []byte{1}})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- bus.Run(context.Background(), conn) }()

	require.Eventually(t, func() bool { return pdStatus(t, bus, 1).Online }, 2*time.Second, 5*time.Millisecond)
	pd.PresentCard(bits(h10301))
	var read osdp.CardRead
	require.Eventually(t, func() bool {
		select {
		case ev := <-bus.Events():
			r, ok := ev.(osdp.CardRead)
			read = r
			return ok
		default:
			return false
		}
	}, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, bits(h10301), read.Raw.Bits)

	(<-served).Close() // the device server drops the connection
	select {
	case err := <-done:
		require.Error(t, err)
		require.NotErrorIs(t, err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after the device server closed the connection")
	}
}

func TestConfigRejectsWhatCannotWorkOnALine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  osdp.Config
		err  string
	}{
		{"no readers", osdp.Config{}, "no PD addresses"},
		{"the broadcast address", osdp.Config{Addrs: []byte{0x7F}}, "address 0x7F out of range 0x00-0x7E"},
		{"one address twice", osdp.Config{Addrs: []byte{1, 1}}, "0x01 configured twice"},
		{"polling too fast", osdp.Config{Addrs: []byte{1}, PollInterval: 20 * time.Millisecond}, "poll interval 20ms out of range 50ms-100ms"},
		{"polling too slow", osdp.Config{Addrs: []byte{1}, PollInterval: 150 * time.Millisecond}, "out of range"},
		{"negative retries", osdp.Config{Addrs: []byte{1}, Retries: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := osdp.New(tt.cfg)
			require.ErrorContains(t, err, tt.err)
		})
	}
	bus, err := osdp.New(osdp.Config{Addrs: []byte{1}})
	require.NoError(t, err)
	require.ErrorIs(t, bus.Grant(9, time.Second), osdp.ErrUnknownPD)
	require.ErrorIs(t, bus.Grant(1, time.Second), osdp.ErrOffline, "not heard from yet")
	require.ErrorContains(t, bus.Grant(1, 0), "pulse")
}
