package serialport_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lintel/lintel/readers/serialport"
	"github.com/lintel/lintel/readers/serialport/ptytest"
	"github.com/stretchr/testify/require"
)

// supervised runs a Supervisor in the background for one test, pumping what
// it reads into data and its events into events.
type supervised struct {
	sup    *serialport.Supervisor
	data   chan string
	events chan serialport.Event
	cancel context.CancelFunc
	done   chan error
}

func startSupervisor(t *testing.T, sup *serialport.Supervisor, consume func(context.Context, serialport.Port) error) *supervised {
	t.Helper()
	s := &supervised{sup: sup, data: make(chan string, 100), events: make(chan serialport.Event, 100), done: make(chan error, 1)}
	sup.OnEvent = func(e serialport.Event) { s.events <- e }
	if consume == nil {
		consume = func(ctx context.Context, p serialport.Port) error {
			return serialport.Pump(ctx, p, func(b []byte) {
				if len(b) > 0 {
					s.data <- string(b)
				}
			})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- sup.Run(ctx, consume) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

func (s *supervised) nextEvent(t *testing.T) serialport.Event {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(3 * time.Second):
		t.Fatal("no supervisor event within 3 s")
		return serialport.Event{}
	}
}

// waitFor skips events until one in state, failing on any state not in
// allowed.
func (s *supervised) waitFor(t *testing.T, state serialport.State, allowed ...serialport.State) serialport.Event {
	t.Helper()
	for {
		e := s.nextEvent(t)
		if e.State == state {
			return e
		}
		require.Contains(t, allowed, e.State, "unexpected event %+v while waiting for %s", e, state)
	}
}

func (s *supervised) receive(t *testing.T, want string) {
	t.Helper()
	var got string
	deadline := time.After(3 * time.Second)
	for got != want {
		select {
		case d := <-s.data:
			got += d
		case <-deadline:
			t.Fatalf("received %q, want %q", got, want)
		}
	}
}

func (s *supervised) stop(t *testing.T) error {
	t.Helper()
	start := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		require.Less(t, time.Since(start), time.Second, "Run takes too long to stop")
		s.done <- err // for Cleanup
		return err
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func TestAReplugAdapterIsReopenedAndDataFlowsAgain(t *testing.T) {
	t.Parallel()
	master, path := ptytest.NewPair(t)
	link := ptytest.Link(t, path)
	s := startSupervisor(t, &serialport.Supervisor{Config: serialport.Config{Path: link}}, nil)

	e := s.waitFor(t, serialport.StateOpen)
	require.Equal(t, link, e.Path)
	require.Equal(t, 1, e.Attempt)
	_, err := master.Write([]byte("before"))
	require.NoError(t, err)
	s.receive(t, "before")

	// The adapter's next life gets another device node (allocated now so
	// that the kernel cannot hand out the old number again).
	master2, path2 := ptytest.NewPair(t)
	require.NotEqual(t, path, path2)

	// Unplug: the adapter's tty hangs up and udev removes its by-id link.
	unplugged := time.Now()
	require.NoError(t, master.Close())
	require.NoError(t, os.Remove(link))
	e = s.waitFor(t, serialport.StateGone)
	require.Less(t, time.Since(unplugged), time.Second, "the loss is noticed within a second")
	require.ErrorIs(t, e.Err, serialport.ErrPortGone)
	require.Equal(t, 100*time.Millisecond, e.Retry)

	// Let a reopen attempt fail while it is unplugged.
	e = s.waitFor(t, serialport.StateOpenFailed)
	require.ErrorIs(t, e.Err, os.ErrNotExist)
	require.Equal(t, 1, e.Attempt)

	// Plug back in: the by-id link follows the adapter to its new node.
	ptytest.Relink(t, link, path2)
	e = s.waitFor(t, serialport.StateReopened, serialport.StateOpenFailed)
	require.GreaterOrEqual(t, e.Attempt, 2)
	_, err = master2.Write([]byte("after"))
	require.NoError(t, err)
	s.receive(t, "after")
	require.GreaterOrEqual(t, s.sup.ReopenAttempts(), int64(2))

	require.ErrorIs(t, s.stop(t), context.Canceled)
}

func TestAnAdapterPluggedInAfterStartIsPickedUpWithBackoff(t *testing.T) {
	t.Parallel()
	link := filepath.Join(t.TempDir(), "usb-Reader-if00-port0")
	s := startSupervisor(t, &serialport.Supervisor{
		Config:     serialport.Config{Path: link},
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond,
	}, nil)

	var retries []time.Duration
	for i := 1; i <= 4; i++ {
		e := s.waitFor(t, serialport.StateOpenFailed)
		require.Equal(t, i, e.Attempt)
		retries = append(retries, e.Retry)
	}
	require.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}, retries)

	master, path := ptytest.NewPair(t)
	require.NoError(t, os.Symlink(path, link))
	e := s.waitFor(t, serialport.StateOpen, serialport.StateOpenFailed)
	require.Greater(t, e.Attempt, 4, "the first successful open is still OPEN, after the failed attempts")
	_, err := master.Write([]byte("hello"))
	require.NoError(t, err)
	s.receive(t, "hello")
}

func TestAFlappingPortBacksOffButAHealthyOneIsReopenedQuickly(t *testing.T) {
	t.Parallel()
	_, path := ptytest.NewPair(t)
	// How long each session keeps the port: four flaps, one healthy
	// session, one more flap.
	stays := make(chan time.Duration, 10)
	for _, d := range []time.Duration{0, 0, 0, 0, 0, 200 * time.Millisecond, 0} {
		stays <- d
	}
	errFlap := errors.New("reader stopped answering")
	consume := func(ctx context.Context, p serialport.Port) error {
		select {
		case d := <-stays:
			time.Sleep(d)
			return errFlap
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := startSupervisor(t, &serialport.Supervisor{
		Config:       serialport.Config{Path: path},
		MinBackoff:   5 * time.Millisecond,
		MaxBackoff:   40 * time.Millisecond,
		HealthyAfter: 150 * time.Millisecond,
	}, consume)

	s.waitFor(t, serialport.StateOpen)
	var retries []time.Duration
	for range 7 {
		e := s.waitFor(t, serialport.StateGone, serialport.StateReopened)
		require.ErrorIs(t, e.Err, errFlap)
		retries = append(retries, e.Retry)
	}
	ms := time.Millisecond
	require.Equal(t, []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 40 * ms, 5 * ms, 10 * ms}, retries,
		"doubling to the cap while flapping, back to the start after a healthy session")
}

func TestStoppingEndsRunEvenWhenTheConsumerIgnoresItsContext(t *testing.T) {
	t.Parallel()
	_, path := ptytest.NewPair(t)
	readErr := make(chan error, 1)
	stubborn := func(_ context.Context, p serialport.Port) error {
		buf := make([]byte, 8)
		for {
			if _, err := p.Read(buf); err != nil {
				readErr <- err
				return err
			}
		}
	}
	s := startSupervisor(t, &serialport.Supervisor{Config: serialport.Config{Path: path, ReadTimeout: 500 * time.Millisecond}}, stubborn)
	s.waitFor(t, serialport.StateOpen)
	time.Sleep(50 * time.Millisecond)

	require.ErrorIs(t, s.stop(t), context.Canceled)
	require.ErrorIs(t, <-readErr, os.ErrClosed)
}

func TestStoppingWhileWaitingToRetryIsImmediate(t *testing.T) {
	t.Parallel()
	s := startSupervisor(t, &serialport.Supervisor{
		Config:     serialport.Config{Path: filepath.Join(t.TempDir(), "absent")},
		MinBackoff: time.Hour,
	}, nil)
	s.waitFor(t, serialport.StateOpenFailed)
	require.ErrorIs(t, s.stop(t), context.Canceled)
}

func TestAnInvalidConfigurationStopsRunAtOnce(t *testing.T) {
	t.Parallel()
	sup := &serialport.Supervisor{Config: serialport.Config{ReadTimeout: time.Second}}
	err := sup.Run(context.Background(), func(context.Context, serialport.Port) error { return nil })
	require.ErrorContains(t, err, "no device path")
}
