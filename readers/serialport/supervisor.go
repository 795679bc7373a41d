package serialport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// State is what happened to a supervised port, as reported to
// [Supervisor.OnEvent].
type State string

// The states a supervised port goes through.
const (
	// StateOpen: the port opened for the first time.
	StateOpen State = "OPEN"
	// StateOpenFailed: an attempt to open the port failed, typically
	// because the adapter is not plugged in; another follows after
	// Event.Retry.
	StateOpenFailed State = "OPEN_FAILED"
	// StateGone: the consumer stopped, normally because the device went
	// away; the port was closed and is reopened after Event.Retry.
	StateGone State = "GONE"
	// StateReopened: the port opened again after it had been open before.
	StateReopened State = "REOPENED"
)

// Event reports a change in a supervised port's state.
type Event struct {
	State State
	Path  string
	// Err is why the port failed to open (OPEN_FAILED) or what the
	// consumer returned (GONE, usually wrapping ErrPortGone).
	Err error
	// Attempt counts open attempts since the port was last open: 1 for an
	// OPEN or REOPENED that worked first time, n for the nth failure.
	Attempt int
	// Retry is how long the supervisor waits before the next open attempt
	// (OPEN_FAILED and GONE).
	Retry time.Duration
}

// Supervisor keeps a serial port open for a consumer across unplugging and
// replugging. The zero value needs only Config.
type Supervisor struct {
	// Config is the port to open; use a stable /dev/serial/by-id path so a
	// replugged adapter is found again.
	Config Config
	// OnEvent, if set, is called from Run on every state change, e.g. to
	// log it or to show the reader's status. It must not block.
	OnEvent func(Event)
	// MinBackoff (default 100 ms) is the wait before the first retry;
	// each further failure doubles it up to MaxBackoff (default 5 s), so
	// a missing adapter costs a few opens a second at first and one every
	// 5 s later, while a quick replug is picked up at once.
	MinBackoff, MaxBackoff time.Duration
	// HealthyAfter (default 1 minute) is how long a port must stay up for
	// the backoff to start again from MinBackoff: a flapping adapter keeps
	// backing off, one that fails once a day is reopened quickly.
	HealthyAfter time.Duration

	reopenAttempts atomic.Int64
}

// ReopenAttempts is the number of open attempts made after the first one,
// successful or not. A count that keeps rising points at a loose cable or a
// failing adapter.
func (s *Supervisor) ReopenAttempts() int64 { return s.reopenAttempts.Load() }

// Run opens the port and runs consume on it until consume returns, then
// closes the port and opens it again after a backoff, until ctx is done.
//
// consume gets a context that is cancelled when ctx is; it should return
// when a read fails (typically with ErrPortGone) or when its context is done.
// A consume that ignores its context still stops: the port is closed under
// it, so its next Read fails. Run returns ctx.Err() once ctx is done, within
// about one read timeout, or at once with an error if the configuration is
// invalid.
func (s *Supervisor) Run(ctx context.Context, consume func(ctx context.Context, p Port) error) error {
	cfg, err := s.Config.withDefaults()
	if err != nil {
		return err
	}
	minB, maxB, healthy := s.MinBackoff, s.MaxBackoff, s.HealthyAfter
	if minB <= 0 {
		minB = 100 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 5 * time.Second
	}
	maxB = max(maxB, minB)
	if healthy <= 0 {
		healthy = time.Minute
	}
	next := minB // the wait after the next failure
	backoff := func() time.Duration {
		d := next
		next = min(2*next, maxB)
		return d
	}
	emit := func(e Event) {
		if s.OnEvent != nil {
			e.Path = cfg.Path
			s.OnEvent(e)
		}
	}

	var (
		wait     time.Duration
		opened   bool // opened at least once
		failures int  // failed attempts since the port was last open
	)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if opened || failures > 0 {
			s.reopenAttempts.Add(1)
		}
		p, err := Open(cfg)
		if err != nil {
			failures++
			wait = backoff()
			emit(Event{State: StateOpenFailed, Err: err, Attempt: failures, Retry: wait})
			continue
		}
		state := StateOpen
		if opened {
			state = StateReopened
		}
		emit(Event{State: state, Attempt: failures + 1})
		opened, failures = true, 0

		start := time.Now()
		err = session(ctx, p, consume)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) >= healthy {
			next = minB
		}
		wait = backoff()
		emit(Event{State: StateGone, Err: err, Retry: wait})
	}
}

// session runs consume on p and closes p afterwards. If ctx ends first, p is
// closed under consume so that a consumer blocked in Read returns; Close
// itself waits for that Read, which the read timeout bounds.
func session(ctx context.Context, p Port, consume func(context.Context, Port) error) error {
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		<-sctx.Done()
		p.Close()
	})
	err := consume(sctx, p)
	cancel()
	wg.Wait()
	return err
}
