package credentials

import (
	"sync"

	"github.com/google/uuid"
)

// replayShards spreads the cache over this many locks; jtis are random, so
// any byte of one picks a shard evenly.
const replayShards = 64

// replayCache remembers, per credential, the newest code time accepted. A
// code is new when its time is later than that. Entries leave once their
// time is older than the code window could accept (the horizon), or, when
// a shard is full, oldest first.
type replayCache struct {
	perShard int
	shards   [replayShards]replayShard
}

type replayShard struct {
	mu     sync.Mutex
	newest map[uuid.UUID]int64
	// fifo holds every accepted (jti, ts) in the order accepted, from head
	// on; an item is live while newest[jti] is still its ts.
	fifo []replayItem
	head int
}

type replayItem struct {
	jti uuid.UUID
	ts  int64
}

func newReplayCache(limit int) *replayCache {
	c := &replayCache{perShard: max(limit/replayShards, 1)}
	for i := range c.shards {
		c.shards[i].newest = make(map[uuid.UUID]int64)
	}
	return c
}

// accept records that the code (jti, ts) was accepted and reports true, or
// reports false when it, or a newer code of jti, was accepted before.
// Codes with ts before horizon are stale anyway and are forgotten.
func (c *replayCache) accept(jti uuid.UUID, ts, horizon int64) bool {
	sh := &c.shards[jti[15]%replayShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Items are in about time order (accepted codes are all within the
	// window), so the stale ones are at the front.
	for sh.head < len(sh.fifo) && sh.fifo[sh.head].ts < horizon {
		sh.pop()
	}
	newest, seen := sh.newest[jti]
	if seen && ts <= newest {
		return false
	}
	if !seen {
		for len(sh.newest) >= c.perShard && sh.head < len(sh.fifo) {
			sh.pop()
		}
	}
	sh.newest[jti] = ts
	sh.fifo = append(sh.fifo, replayItem{jti, ts})
	sh.compact()
	return true
}

// pop drops the oldest item, and its entry when the item is live.
func (sh *replayShard) pop() {
	it := sh.fifo[sh.head]
	sh.head++
	if ts, ok := sh.newest[it.jti]; ok && ts == it.ts {
		delete(sh.newest, it.jti)
	}
}

// compact keeps the queue's memory proportional to the live entries.
func (sh *replayShard) compact() {
	if sh.head > 1024 && sh.head > len(sh.fifo)/2 {
		n := copy(sh.fifo, sh.fifo[sh.head:])
		clear(sh.fifo[n:])
		sh.fifo, sh.head = sh.fifo[:n], 0
	}
	// A credential whose codes are accepted again and again leaves dead
	// items behind its live one.
	if live := len(sh.newest); len(sh.fifo)-sh.head > 4*live+1024 {
		kept := sh.fifo[:0]
		for _, it := range sh.fifo[sh.head:] {
			if ts, ok := sh.newest[it.jti]; ok && ts == it.ts {
				kept = append(kept, it)
			}
		}
		clear(sh.fifo[len(kept):])
		sh.fifo, sh.head = kept, 0
	}
}

// len returns the number of credentials remembered.
func (c *replayCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.newest)
		sh.mu.Unlock()
	}
	return n
}
