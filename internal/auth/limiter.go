package auth

import (
	"sync"
	"time"
)

// AddressLimiter counts failures (logins, invitation guesses) per client address in a fixed window.
// It is per process: a replica set multiplies the allowance by its size,
// which the per-account lockout (stored in the database) bounds anyway.
type AddressLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	seen   map[string]*addrWindow
	swept  time.Time
}

type addrWindow struct {
	start    time.Time
	failures int
}

func NewAddressLimiter(max int, window time.Duration) *AddressLimiter {
	return &AddressLimiter{max: max, window: window, seen: map[string]*addrWindow{}}
}

// blockedFor returns how long addr must wait, or 0.
func (l *AddressLimiter) BlockedFor(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.seen[addr]
	if !ok || l.max <= 0 {
		return 0
	}
	left := w.start.Add(l.window).Sub(time.Now())
	if left <= 0 {
		delete(l.seen, addr)
		return 0
	}
	if w.failures >= l.max {
		return left
	}
	return 0
}

func (l *AddressLimiter) Fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.swept) > l.window {
		for a, w := range l.seen {
			if now.Sub(w.start) > l.window {
				delete(l.seen, a)
			}
		}
		l.swept = now
	}
	w, ok := l.seen[addr]
	if !ok || now.Sub(w.start) > l.window {
		w = &addrWindow{start: now}
		l.seen[addr] = w
	}
	w.failures++
}
