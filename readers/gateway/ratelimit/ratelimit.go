// Package ratelimit locks a door reader out after repeated denials: an
// unknown-card flood, or someone trying card after card, stops getting
// answers for a while, and the gateway reports it once as an alert.
//
// With New(5, 10*time.Second, 30*time.Second), the fifth denial within ten
// seconds locks the reader for thirty. Denials during a lockout neither
// count nor extend it; when it ends the count starts afresh.
package ratelimit

import (
	"slices"
	"sync"
	"time"
)

// Reason is the refusal a gateway reports for a reader locked out.
const Reason = "RATE_LIMITED"

// MaxReaders bounds the readers a Limiter remembers. Past it, readers
// with no recent denial are forgotten first.
const MaxReaders = 4096

// Limiter counts denials per reader. It is safe for concurrent use.
type Limiter struct {
	max             int
	window, lockout time.Duration

	mu      sync.Mutex
	readers map[string]*readerState
}

type readerState struct {
	// denials are the times of the recent denials: a ring of cap max,
	// oldest at head.
	denials     []time.Time
	head, n     int
	lockedUntil time.Time
	last        time.Time // the last denial
}

// New returns a Limiter that locks a reader out for lockout once it has
// had maxDenials denials within window. A limit, window or lockout of
// zero or less never locks.
func New(maxDenials int, window, lockout time.Duration) *Limiter {
	return &Limiter{max: maxDenials, window: window, lockout: lockout, readers: make(map[string]*readerState)}
}

func (l *Limiter) disabled() bool { return l.max <= 0 || l.window <= 0 || l.lockout <= 0 }

// Locked reports whether reader is locked out at now.
func (l *Limiter) Locked(reader string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.readers[reader]
	return r != nil && now.Before(r.lockedUntil)
}

// Denied records a denial at reader and reports whether it starts a
// lockout: true once per lockout, when the caller reports the alert.
func (l *Limiter) Denied(reader string, now time.Time) (justLocked bool) {
	if l.disabled() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.readers[reader]
	if r == nil {
		l.makeRoom(now)
		r = &readerState{denials: make([]time.Time, l.max)}
		l.readers[reader] = r
	}
	r.last = now
	if now.Before(r.lockedUntil) {
		return false
	}
	for r.n > 0 && now.Sub(r.denials[r.head]) >= l.window {
		r.head = (r.head + 1) % l.max
		r.n--
	}
	r.denials[(r.head+r.n)%l.max] = now
	r.n++
	if r.n < l.max {
		return false
	}
	r.lockedUntil = now.Add(l.lockout)
	r.head, r.n = 0, 0
	return true
}

// makeRoom forgets readers once MaxReaders are remembered: first those
// neither locked nor denied within the window; if that is not enough, the
// quarter of the others denied longest ago, readers locked out last of
// all. Forgetting many at once keeps a full table from costing a scan per
// denial.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.readers) < MaxReaders {
		return
	}
	type candidate struct {
		name   string
		locked bool
		last   time.Time
	}
	var busy []candidate
	for name, r := range l.readers {
		locked := now.Before(r.lockedUntil)
		if !locked && now.Sub(r.last) >= l.window {
			delete(l.readers, name)
			continue
		}
		busy = append(busy, candidate{name, locked, r.last})
	}
	if len(l.readers) < MaxReaders {
		return
	}
	slices.SortFunc(busy, func(a, b candidate) int {
		if a.locked != b.locked {
			if a.locked {
				return 1
			}
			return -1
		}
		return a.last.Compare(b.last)
	})
	for _, c := range busy[:len(busy)/4] {
		delete(l.readers, c.name)
	}
}
