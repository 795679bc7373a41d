package accesslist

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/credentials"
)

// Audience is the aud every wallet credential names. It must match
// invitations.Audience, which the server issues credentials with; it is
// repeated here so that the gateway does not import the server's packages.
const Audience = "lintel-access"

// Record statuses, as the server sends them.
const (
	StatusActive    = "ACTIVE"
	StatusSuspended = "SUSPENDED"
	StatusArchived  = "ARCHIVED"
)

// Reasons a door is refused; Decision.Reason is one of them, or "" when
// the door opens. The credential reasons are those of
// internal/credentials, spelled the same.
const (
	UnknownCard  = "UNKNOWN_CARD"
	Suspended    = "SUSPENDED"
	Archived     = "ARCHIVED"
	NotYetValid  = "NOT_YET_VALID"
	Expired      = "EXPIRED"
	Revoked      = "REVOKED"
	BadSignature = "BAD_SIGNATURE"
	StaleCode    = "STALE_CODE"
	Replayed     = "REPLAYED"
)

// Entry is what the gateway knows about one record.
type Entry struct {
	RecordID   uuid.UUID
	TemplateID uuid.UUID
	// CardID is the canonical card ID; a record without one can still be
	// let in by its wallet code.
	CardID string
	// Status is ACTIVE, SUSPENDED or ARCHIVED. Any other value refuses
	// the door (as SUSPENDED): a gateway older than its server fails
	// closed.
	Status    string
	ValidFrom *time.Time
	ExpiresAt *time.Time
}

// Change is one entry of a delta page.
type Change struct {
	Entry
	// Removed: this card ID no longer belongs to the record (the record
	// was deleted, or its card ID changed).
	Removed bool
}

// Decision is the answer at the door.
type Decision struct {
	Granted bool
	// Reason is "" when granted, else one of UnknownCard, Suspended,
	// Archived, NotYetValid, Expired, Revoked, BadSignature, StaleCode,
	// Replayed.
	Reason string
	// RecordID is the record decided on, when one is known. It must not
	// be written through.
	RecordID *uuid.UUID
	CardID   string
	// Detail explains a refusal for the operator.
	Detail string
}

// List is the access list in memory, indexed by card ID and by record. It
// is safe for concurrent use: readers decide while the sync goroutine
// applies pages.
type List struct {
	mu        sync.RWMutex
	idx       *index
	cursor    string
	revCursor string
	syncedAt  time.Time
	keys      []credentials.PublicKey
	revoked   map[uuid.UUID]struct{}
	orgID     uuid.UUID

	keySet  *credentials.StaticKeySet
	revSet  *credentials.RevocationSet
	codeMu  sync.Mutex // serialises code checks: verifier.Now reads codeNow
	codeNow time.Time
	// verifier lives as long as the List, so that its replay cache
	// catches a code shown twice at any door of this gateway.
	verifier *credentials.Verifier

	saveMu sync.Mutex
}

// New returns an empty list: every card is unknown until the first sync.
func New() *List {
	l := &List{idx: newIndex(0), revoked: make(map[uuid.UUID]struct{}),
		keySet: credentials.NewStaticKeySet(), revSet: credentials.NewRevocationSet()}
	l.verifier = credentials.NewVerifier(l.keySet, l.revSet, Audience)
	l.verifier.Now = func() time.Time { return l.codeNow }
	return l
}

// ReplaceAll makes entries the whole list, as read by a full sync, and
// holds cursor. The new index is built before it is swapped in, so
// decisions go on against the old one meanwhile. When a record appears
// twice, the later entry wins.
func (l *List) ReplaceAll(entries []Entry, cursor string) {
	idx := newIndex(len(entries))
	slab := newSlab(len(entries))
	for i := range entries {
		idx.upsert(slab.record(&entries[i]))
	}
	l.mu.Lock()
	l.idx, l.cursor, l.syncedAt = idx, cursor, time.Now()
	l.mu.Unlock()
}

// Apply applies the changes of a delta page, in feed order, and holds
// cursor. A removal takes the record off the list only while the card ID
// it names is still the record's: after "card A removed, card B added"
// arrives in any order, the record has card B.
func (l *List) Apply(changes []Change, cursor string) {
	// Records are built before the lock is taken, so doors wait for the
	// map updates only.
	recs := make([]*record, len(changes))
	slab := newSlab(len(changes))
	for i := range changes {
		if !changes[i].Removed {
			recs[i] = slab.record(&changes[i].Entry)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range changes {
		if c := &changes[i]; c.Removed {
			l.idx.removePair(c.RecordID, c.CardID)
		} else {
			l.idx.upsert(recs[i])
		}
	}
	l.cursor, l.syncedAt = cursor, time.Now()
}

// ApplyRevocations revokes credentials, as read from the revocation feed,
// and holds cursor.
func (l *List) ApplyRevocations(credentialIDs []uuid.UUID, cursor string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revSet.Add(credentialIDs...)
	for _, id := range credentialIDs {
		l.revoked[id] = struct{}{}
	}
	l.revCursor, l.syncedAt = cursor, time.Now()
}

// SetKeys makes keys the organisation's issuing keys that wallet
// credentials are checked against.
func (l *List) SetKeys(keys []credentials.PublicKey) {
	keys = cloneKeys(keys)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = keys
	l.keySet.Replace(keys)
}

// SetOrgID names the gateway's organisation: only credentials of that
// organisation are let in. Keys read from the published JWKS do not say
// whose they are, so a gateway should set it; uuid.Nil (the default)
// trusts the keys alone.
func (l *List) SetOrgID(id uuid.UUID) {
	l.mu.Lock()
	l.orgID = id
	l.mu.Unlock()
	l.codeMu.Lock()
	l.verifier.OrgID = id
	l.codeMu.Unlock()
}

// OrgID returns the organisation set with SetOrgID.
func (l *List) OrgID() uuid.UUID {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.orgID
}

// Cursor returns the access-list cursor held; "" means never synced.
func (l *List) Cursor() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cursor
}

// RevocationCursor returns the revocation-feed cursor held.
func (l *List) RevocationCursor() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.revCursor
}

// Len returns the number of records known.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.idx.all)
}

// SyncedAt returns when the last page (of either feed) was applied, or the
// zero time if none was.
func (l *List) SyncedAt() time.Time {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.syncedAt
}

// Lookup returns the entry of a record.
func (l *List) Lookup(recordID uuid.UUID) (Entry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r := l.idx.byID[recordID]
	if r == nil {
		return Entry{}, false
	}
	return r.entry(), true
}

// Entries returns every entry, ordered by record ID.
func (l *List) Entries() []Entry {
	l.mu.RLock()
	all := slices.Clone(l.idx.all)
	l.mu.RUnlock()
	out := make([]Entry, len(all))
	for i, r := range all {
		out[i] = r.entry()
	}
	slices.SortFunc(out, func(a, b Entry) int { return compareUUID(a.RecordID, b.RecordID) })
	return out
}

// DecideCard decides for a canonical card ID read at a door. When the card
// ID belongs to several records (one per template), the door opens if any
// of them lets it; otherwise the refusal names the record closest to
// letting the holder in: NOT_YET_VALID (time will), then SUSPENDED (a
// resume will), EXPIRED, and ARCHIVED last.
func (l *List) DecideCard(cardID string, now time.Time) Decision {
	t := now.UnixMicro()
	l.mu.RLock()
	var best *record
	bestReason := ""
	for r := l.idx.byCard[cardID]; r != nil; r = r.next {
		reason := r.refusal(t)
		if reason == "" {
			l.mu.RUnlock()
			return Decision{Granted: true, RecordID: &r.id, CardID: cardID}
		}
		if best == nil || rank(reason) > rank(bestReason) {
			best, bestReason = r, reason
		}
	}
	l.mu.RUnlock()
	if best == nil {
		return Decision{Reason: UnknownCard, CardID: cardID, Detail: "no record has this card ID"}
	}
	return Decision{Reason: bestReason, RecordID: &best.id, CardID: cardID, Detail: best.detail(bestReason)}
}

// DecideCode decides for a rotating wallet code scanned at a door: the
// credential and code must verify (see credentials.Verifier.VerifyCode)
// with the list's keys, organisation and revocations, at now; then the
// record the credential names must be on the list and let in as a card
// would be. A code is accepted once for the List's life; code checks run
// one at a time (each takes about a tenth of a millisecond).
func (l *List) DecideCode(ctx context.Context, code string, now time.Time) Decision {
	l.codeMu.Lock()
	l.codeNow = now
	ver, err := l.verifier.VerifyCode(ctx, code)
	l.codeMu.Unlock()
	if err != nil {
		var rej *credentials.Rejection
		if errors.As(err, &rej) {
			return Decision{Reason: string(rej.Reason), Detail: rej.Detail}
		}
		// Static key and revocation sets do not fail; should one ever,
		// the door stays shut.
		return Decision{Reason: BadSignature, Detail: err.Error()}
	}
	recordID := ver.RecordID
	d := Decision{RecordID: &recordID, CardID: ver.CardID}
	l.mu.RLock()
	r := l.idx.byID[ver.RecordID]
	l.mu.RUnlock()
	if r == nil {
		d.Reason, d.Detail = UnknownCard, "the credential's record is not on the access list"
		return d
	}
	if reason := r.refusal(now.UnixMicro()); reason != "" {
		d.Reason, d.Detail = reason, r.detail(reason)
		return d
	}
	d.Granted = true
	return d
}

// rank orders refusals of the records sharing a card ID: the higher, the
// closer the record is to letting its holder in.
func rank(reason string) int {
	switch reason {
	case NotYetValid:
		return 4
	case Suspended:
		return 3
	case Expired:
		return 2
	case Archived:
		return 1
	}
	return 0
}

func cloneKeys(keys []credentials.PublicKey) []credentials.PublicKey {
	out := make([]credentials.PublicKey, len(keys))
	for i, k := range keys {
		k.Key = slices.Clone(k.Key)
		out[i] = k
	}
	return out
}

func compareUUID(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
