package accesslist

import (
	"time"

	"github.com/google/uuid"
)

// record is an Entry as the index holds it. Everything but next and slot
// is written once, before the record is published, so a Decision may
// point at its id after the lock is released.
type record struct {
	id, template uuid.UUID
	card         string
	status       string
	// from and until are Unix microseconds (the server's precision),
	// meaningful when bounds says so.
	from, until int64
	bounds      uint8

	// Guarded by List.mu.
	next *record // another record with the same card ID
	slot int     // position in index.all
}

const (
	hasFrom uint8 = 1 << iota
	hasUntil
)

// refusal returns why r does not open a door at t (Unix microseconds), or
// "" when it does.
func (r *record) refusal(t int64) string {
	switch r.status {
	case StatusActive:
	case StatusArchived:
		return Archived
	default:
		return Suspended
	}
	if r.bounds&hasFrom != 0 && t < r.from {
		return NotYetValid
	}
	if r.bounds&hasUntil != 0 && t >= r.until {
		return Expired
	}
	return ""
}

func (r *record) detail(reason string) string {
	switch reason {
	case Archived:
		return "the record is archived"
	case Suspended:
		if r.status != StatusSuspended {
			return "the record's status " + r.status + " is unknown to this gateway"
		}
		return "the record is suspended"
	case NotYetValid:
		return "the record is valid from " + time.UnixMicro(r.from).UTC().Format(time.RFC3339)
	case Expired:
		return "the record expired at " + time.UnixMicro(r.until).UTC().Format(time.RFC3339)
	}
	return ""
}

func (r *record) entry() Entry {
	e := Entry{RecordID: r.id, TemplateID: r.template, CardID: r.card, Status: r.status}
	if r.bounds&hasFrom != 0 {
		t := time.UnixMicro(r.from).UTC()
		e.ValidFrom = &t
	}
	if r.bounds&hasUntil != 0 {
		t := time.UnixMicro(r.until).UTC()
		e.ExpiresAt = &t
	}
	return e
}

// internStatus shares one string among the records of a status.
func internStatus(s string) string {
	switch s {
	case StatusActive:
		return StatusActive
	case StatusSuspended:
		return StatusSuspended
	case StatusArchived:
		return StatusArchived
	}
	return s
}

// slab allocates the records of one page or sync in chunks: a million
// records are a few hundred allocations instead of a million.
type slab struct {
	chunk []record
	size  int
}

const slabChunk = 4096

func newSlab(n int) *slab { return &slab{size: min(max(n, 1), slabChunk)} }

func (s *slab) record(e *Entry) *record {
	if len(s.chunk) == 0 {
		s.chunk = make([]record, s.size)
	}
	r := &s.chunk[0]
	s.chunk = s.chunk[1:]
	r.id, r.template, r.card, r.status = e.RecordID, e.TemplateID, e.CardID, internStatus(e.Status)
	if e.ValidFrom != nil {
		r.from, r.bounds = e.ValidFrom.UnixMicro(), r.bounds|hasFrom
	}
	if e.ExpiresAt != nil {
		r.until, r.bounds = e.ExpiresAt.UnixMicro(), r.bounds|hasUntil
	}
	return r
}

// index finds records by card ID and by record ID. Records sharing a card
// ID (one per template) are chained through next.
type index struct {
	byCard map[string]*record
	byID   map[uuid.UUID]*record
	// all lists every record, so that a snapshot copies a slice, not a
	// map, while it holds the read lock.
	all []*record
}

func newIndex(n int) *index {
	return &index{byCard: make(map[string]*record, n), byID: make(map[uuid.UUID]*record, n),
		all: make([]*record, 0, n)}
}

// upsert makes r the record of its ID, dropping the previous version and
// its card ID.
func (x *index) upsert(r *record) {
	if old := x.byID[r.id]; old != nil {
		x.remove(old)
	}
	x.byID[r.id] = r
	r.slot = len(x.all)
	x.all = append(x.all, r)
	if r.card != "" {
		r.next = x.byCard[r.card]
		x.byCard[r.card] = r
	}
}

// removePair drops the record if it still has cardID.
func (x *index) removePair(id uuid.UUID, cardID string) {
	if r := x.byID[id]; r != nil && r.card == cardID {
		x.remove(r)
	}
}

func (x *index) remove(r *record) {
	delete(x.byID, r.id)
	last := x.all[len(x.all)-1]
	x.all[r.slot], last.slot = last, r.slot
	x.all[len(x.all)-1] = nil
	x.all = x.all[:len(x.all)-1]
	if r.card == "" {
		return
	}
	head := x.byCard[r.card]
	if head == r {
		if r.next == nil {
			delete(x.byCard, r.card)
		} else {
			x.byCard[r.card] = r.next
		}
		return
	}
	for p := head; p != nil; p = p.next {
		if p.next == r {
			p.next = r.next
			return
		}
	}
}
