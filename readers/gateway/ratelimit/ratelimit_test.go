package ratelimit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/readers/gateway/ratelimit"
)

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// step is one thing that happens at a reader, s seconds after t0: a
// denial (wanting justLocked) or a check of Locked.
type step struct {
	s      float64
	reader string
	deny   bool
	want   bool
}

func deny(s float64, justLocked bool) step {
	return step{s: s, reader: "front", deny: true, want: justLocked}
}
func locked(s float64, want bool) step { return step{s: s, reader: "front", want: want} }

func TestLimiter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{name: "four denials in ten seconds leave the reader working", max: 5, steps: []step{
			deny(0, false), deny(1, false), deny(2, false), deny(3, false), locked(3, false),
		}},
		{name: "the fifth denial within ten seconds locks the reader", max: 5, steps: []step{
			locked(0, false), deny(0, false), deny(2, false), deny(4, false), deny(6, false), deny(9.9, true), locked(9.9, true),
		}},
		{name: "the lockout lasts thirty seconds", max: 5, steps: []step{
			deny(0, false), deny(0, false), deny(0, false), deny(0, false), deny(0, true),
			locked(29.999, true), locked(30, false),
		}},
		{name: "denials spread wider than the window never lock", max: 5, steps: []step{
			deny(0, false), deny(3, false), deny(6, false), deny(9, false), deny(12, false), deny(15, false),
			deny(18, false), deny(21, false), locked(21, false),
		}},
		{name: "a denial exactly ten seconds old no longer counts", max: 3, steps: []step{
			deny(0, false), deny(5, false), deny(10, false), locked(10, false), deny(11, true),
		}},
		{name: "denials during a lockout neither extend it nor lock again", max: 2, steps: []step{
			deny(0, false), deny(1, true), deny(2, false), deny(20, false), deny(30, false), locked(30.9, true),
			locked(31, false),
		}},
		{name: "after a lockout the count starts afresh", max: 2, steps: []step{
			deny(0, false), deny(1, true), locked(31, false), deny(31, false), locked(31, false), deny(32, true),
		}},
		{name: "readers are limited separately", max: 2, steps: []step{
			deny(0, false), {s: 0, reader: "back", deny: true, want: false}, deny(1, true),
			{s: 1, reader: "back", want: false}, locked(1, true),
		}},
		{name: "a limit of one locks at the first denial", max: 1, steps: []step{
			locked(0, false), deny(0, true), locked(0, true),
		}},
		{name: "a limit of zero never locks", max: 0, steps: []step{
			deny(0, false), deny(0, false), deny(0, false), locked(0, false),
		}},
		{name: "a clock set back does not unlock early nor forget denials", max: 3, steps: []step{
			deny(100, false), deny(99, false), deny(98, true), locked(97, true),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := ratelimit.New(tt.max, 10*time.Second, 30*time.Second)
			for i, st := range tt.steps {
				now := t0.Add(time.Duration(st.s * float64(time.Second)))
				if st.deny {
					require.Equal(t, st.want, l.Denied(st.reader, now), "step %d: denial at %gs starts a lockout", i, st.s)
				} else {
					require.Equal(t, st.want, l.Locked(st.reader, now), "step %d: locked at %gs", i, st.s)
				}
			}
		})
	}
}

func TestAFloodFromManyGoroutinesStartsOneLockout(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(5, 10*time.Second, 30*time.Second)
	var lockouts atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				if l.Denied("front", t0) {
					lockouts.Add(1)
				}
				_ = l.Locked("front", t0)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), lockouts.Load())
	require.True(t, l.Locked("front", t0))
}

func TestALockedReaderStaysLockedWhileManyOthersComeAndGo(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(2, 10*time.Second, time.Hour)
	require.False(t, l.Denied("front", t0))
	require.True(t, l.Denied("front", t0))
	// Thousands of other readers each see a denial, more than the
	// limiter remembers at once, most of them within one window.
	for i := range 3 * ratelimit.MaxReaders {
		l.Denied(fmt.Sprint("noise-", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	require.True(t, l.Locked("front", t0.Add(59*time.Minute)))
}
