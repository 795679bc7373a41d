package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the garbage collector's target for `lintel serve`
// (and the servers `lintel bench` runs) unless GOGC says otherwise. A
// server's live heap is small — tens of MB — while every request
// allocates its page and is done with it, so at Go's default of 100 the
// collector ran every few hundred requests and took a fifth of the CPU
// of a page of records. At 400 the heap may grow to five times what is
// live before a collection: some tens of MB more, for a third more
// requests per core (see the README's Performance section). GOMEMLIMIT,
// when set, still caps the heap.
const serverGCPercent = 400

// useServerGC applies serverGCPercent when the environment does not set
// GOGC.
func useServerGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}
