package accesslist_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/readers/gateway/accesslist"
)

func TestDecideCard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		entry  accesslist.Entry
		card   string
		now    time.Time
		reason string // "" = granted
	}{
		{name: "an active card without a validity window opens the door",
			entry: active("0042"), card: "0042", now: t0},
		{name: "a card no record holds is refused as unknown",
			entry: active("0042"), card: "0043", now: t0, reason: accesslist.UnknownCard},
		{name: "card IDs are matched exactly, as canonical forms",
			entry: active("04A1B2C3"), card: "04a1b2c3", now: t0, reason: accesslist.UnknownCard},
		{name: "a suspended record's card is refused as suspended",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.Status = accesslist.StatusSuspended }),
			card:  "0042", now: t0, reason: accesslist.Suspended},
		{name: "an archived record's card is refused as archived",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.Status = accesslist.StatusArchived }),
			card:  "0042", now: t0, reason: accesslist.Archived},
		{name: "an archived record is archived even outside its validity window",
			entry: with(active("0042"), func(e *accesslist.Entry) {
				e.Status, e.ExpiresAt = accesslist.StatusArchived, at(t0.Add(-time.Hour))
			}),
			card: "0042", now: t0, reason: accesslist.Archived},
		{name: "a status this gateway does not know keeps the door shut",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.Status = "PAUSED" }),
			card:  "0042", now: t0, reason: accesslist.Suspended},
		{name: "a card before its valid-from is refused as not yet valid",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.ValidFrom = at(t0.Add(time.Minute)) }),
			card:  "0042", now: t0, reason: accesslist.NotYetValid},
		{name: "a card opens from the instant it becomes valid",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.ValidFrom = at(t0) }),
			card:  "0042", now: t0},
		{name: "a card opens until just before its expiry",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.ExpiresAt = at(t0.Add(time.Microsecond)) }),
			card:  "0042", now: t0},
		{name: "a card is refused as expired from the instant it expires",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.ExpiresAt = at(t0) }),
			card:  "0042", now: t0, reason: accesslist.Expired},
		{name: "a card inside its window opens",
			entry: with(active("0042"), func(e *accesslist.Entry) {
				e.ValidFrom, e.ExpiresAt = at(t0.AddDate(0, -1, 0)), at(t0.AddDate(0, 1, 0))
			}),
			card: "0042", now: t0},
		{name: "the door's time zone does not matter",
			entry: with(active("0042"), func(e *accesslist.Entry) { e.ExpiresAt = at(t0) }),
			card:  "0042", now: t0.In(time.FixedZone("UTC+14", 14*3600)).Add(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := listOf(tt.entry).DecideCard(tt.card, tt.now)
			require.Equal(t, tt.card, d.CardID)
			if tt.reason == "" {
				requireGranted(t, d, tt.entry.RecordID)
				return
			}
			requireRefused(t, d, tt.reason)
			if tt.reason == accesslist.UnknownCard {
				require.Nil(t, d.RecordID)
			} else {
				require.Equal(t, tt.entry.RecordID, *d.RecordID)
			}
		})
	}
}

func TestACardUnderTwoTemplates(t *testing.T) {
	t.Parallel()
	state := func(s string) func(*accesslist.Entry) {
		return func(e *accesslist.Entry) { e.Status = s }
	}
	expired := func(e *accesslist.Entry) { e.ExpiresAt = at(t0.Add(-time.Hour)) }
	future := func(e *accesslist.Entry) { e.ValidFrom = at(t0.Add(time.Hour)) }
	tests := []struct {
		name   string
		first  func(*accesslist.Entry)
		second func(*accesslist.Entry)
		// winner is 0 or 1: whose record the decision names (-1: either).
		winner int
		reason string
	}{
		{name: "the door opens when the second record lets in and the first is archived",
			first: state(accesslist.StatusArchived), second: state(accesslist.StatusActive), winner: 1},
		{name: "the door opens when the first record lets in and the second is suspended",
			first: state(accesslist.StatusActive), second: state(accesslist.StatusSuspended), winner: 0},
		{name: "a suspended record explains the refusal better than an archived one",
			first: state(accesslist.StatusArchived), second: state(accesslist.StatusSuspended), winner: 1, reason: accesslist.Suspended},
		{name: "a record valid later explains the refusal better than an expired one",
			first: expired, second: future, winner: 1, reason: accesslist.NotYetValid},
		{name: "an expired record explains the refusal better than an archived one",
			first: expired, second: state(accesslist.StatusArchived), winner: 0, reason: accesslist.Expired},
		{name: "two archived records are refused as archived",
			first: state(accesslist.StatusArchived), second: state(accesslist.StatusArchived), winner: -1, reason: accesslist.Archived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			records := []accesslist.Entry{with(active("77:1234"), tt.first), with(active("77:1234"), tt.second)}
			d := listOf(records...).DecideCard("77:1234", t0)
			if tt.reason == "" {
				requireGranted(t, d, records[tt.winner].RecordID)
				return
			}
			requireRefused(t, d, tt.reason)
			if tt.winner >= 0 {
				require.Equal(t, records[tt.winner].RecordID, *d.RecordID)
			}
		})
	}
}

func TestApply(t *testing.T) {
	t.Parallel()

	t.Run("a removed card ID no longer opens", func(t *testing.T) {
		t.Parallel()
		e := active("0042")
		l := listOf(e, active("0043"))
		l.Apply([]accesslist.Change{{Entry: e, Removed: true}}, "d:2")
		requireRefused(t, l.DecideCard("0042", t0), accesslist.UnknownCard)
		require.True(t, l.DecideCard("0043", t0).Granted)
		require.Equal(t, 1, l.Len())
		require.Equal(t, "d:2", l.Cursor())
	})

	t.Run("a changed card ID opens in place of the old one", func(t *testing.T) {
		t.Parallel()
		old := active("0042")
		l := listOf(old)
		changed := with(old, func(e *accesslist.Entry) { e.CardID = "0099" })
		// As the server's feed sends it: the old pair removed, then the
		// record with its new card.
		l.Apply([]accesslist.Change{{Entry: old, Removed: true}, {Entry: changed}}, "d:3")
		requireRefused(t, l.DecideCard("0042", t0), accesslist.UnknownCard)
		requireGranted(t, l.DecideCard("0099", t0), old.RecordID)
		require.Equal(t, 1, l.Len())
	})

	t.Run("an upsert alone replaces the record's previous card ID", func(t *testing.T) {
		t.Parallel()
		old := active("0042")
		l := listOf(old)
		l.Apply([]accesslist.Change{{Entry: with(old, func(e *accesslist.Entry) { e.CardID = "0099" })}}, "d:3")
		requireRefused(t, l.DecideCard("0042", t0), accesslist.UnknownCard)
		requireGranted(t, l.DecideCard("0099", t0), old.RecordID)
	})

	t.Run("removing a card ID the record no longer has leaves its new card working", func(t *testing.T) {
		t.Parallel()
		old := active("0042")
		l := listOf(old)
		l.Apply([]accesslist.Change{
			{Entry: with(old, func(e *accesslist.Entry) { e.CardID = "0099" })},
			{Entry: old, Removed: true},
		}, "d:4")
		requireGranted(t, l.DecideCard("0099", t0), old.RecordID)
		requireRefused(t, l.DecideCard("0042", t0), accesslist.UnknownCard)
	})

	t.Run("a record suspended on the server is refused at the next swipe", func(t *testing.T) {
		t.Parallel()
		e := active("0042")
		l := listOf(e)
		l.Apply([]accesslist.Change{{Entry: with(e, func(e *accesslist.Entry) { e.Status = accesslist.StatusSuspended })}}, "d:5")
		requireRefused(t, l.DecideCard("0042", t0), accesslist.Suspended)
		l.Apply([]accesslist.Change{{Entry: e}}, "d:6")
		requireGranted(t, l.DecideCard("0042", t0), e.RecordID)
	})

	t.Run("removing one of two records sharing a card leaves the other deciding", func(t *testing.T) {
		t.Parallel()
		a, b := active("0042"), with(active("0042"), func(e *accesslist.Entry) { e.Status = accesslist.StatusSuspended })
		l := listOf(a, b)
		l.Apply([]accesslist.Change{{Entry: a, Removed: true}}, "d:7")
		requireRefused(t, l.DecideCard("0042", t0), accesslist.Suspended)
		require.Equal(t, b.RecordID, *l.DecideCard("0042", t0).RecordID)
		l.Apply([]accesslist.Change{{Entry: a}}, "d:8")
		requireGranted(t, l.DecideCard("0042", t0), a.RecordID)
	})

	t.Run("a new record's card opens", func(t *testing.T) {
		t.Parallel()
		l := accesslist.New()
		e := active("0042")
		l.Apply([]accesslist.Change{{Entry: e}}, "d:9")
		requireGranted(t, l.DecideCard("0042", t0), e.RecordID)
		got, ok := l.Lookup(e.RecordID)
		require.True(t, ok)
		require.Equal(t, e, got)
	})
}

func TestCursorsAndSyncTime(t *testing.T) {
	t.Parallel()
	l := accesslist.New()
	require.Empty(t, l.Cursor(), "a list never synced has no cursor")
	require.Empty(t, l.RevocationCursor())
	require.True(t, l.SyncedAt().IsZero())
	require.Zero(t, l.Len())

	before := time.Now()
	l.ReplaceAll([]accesslist.Entry{active("1"), active("2")}, "d:10")
	require.Equal(t, "d:10", l.Cursor())
	require.Equal(t, 2, l.Len())
	require.False(t, l.SyncedAt().Before(before))

	l.ApplyRevocations([]uuid.UUID{uuid.New()}, "r:3")
	require.Equal(t, "r:3", l.RevocationCursor())
	require.Equal(t, "d:10", l.Cursor())

	// An empty delta page still moves the cursor and the sync time.
	synced := l.SyncedAt()
	time.Sleep(time.Millisecond)
	l.Apply(nil, "d:11")
	require.Equal(t, "d:11", l.Cursor())
	require.True(t, l.SyncedAt().After(synced))
}

func TestReplaceAllSwapsTheWholeListAtOnce(t *testing.T) {
	t.Parallel()
	const cards = 2000
	// Two versions of the same cards: every card active under one set of
	// records, then suspended under another. A door must see one version
	// or the other, never a card missing half-way through the swap.
	ids := make([]string, cards)
	for i := range ids {
		ids[i] = uuid.NewString()[:8]
	}
	build := func(status string) ([]accesslist.Entry, map[uuid.UUID]bool) {
		es := make([]accesslist.Entry, cards)
		set := make(map[uuid.UUID]bool, cards)
		for i := range es {
			es[i] = with(active(ids[i]), func(e *accesslist.Entry) { e.Status = status })
			set[es[i].RecordID] = true
		}
		return es, set
	}
	open, openSet := build(accesslist.StatusActive)
	shut, shutSet := build(accesslist.StatusSuspended)

	l := listOf(open...)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var decided atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				d := l.DecideCard(ids[i%cards], t0)
				switch {
				case d.Granted:
					assert.True(t, openSet[*d.RecordID])
				case d.Reason == accesslist.Suspended:
					assert.True(t, shutSet[*d.RecordID])
				default:
					assert.Fail(t, "a door saw a half-built list", "card %s: %s", ids[i%cards], d.Reason)
					return
				}
				decided.Add(1)
			}
		})
	}
	for i := range 40 {
		if i%2 == 0 {
			l.ReplaceAll(shut, "d:shut")
		} else {
			l.ReplaceAll(open, "d:open")
		}
		require.Equal(t, cards, l.Len())
	}
	stop.Store(true)
	wg.Wait()
	require.Positive(t, decided.Load())
}

func TestDecisionsDuringDeltaPages(t *testing.T) {
	t.Parallel()
	stable := active("0001")
	l := listOf(stable)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				d := l.DecideCard("0001", t0)
				if !assert.True(t, d.Granted) || !assert.Equal(t, stable.RecordID, *d.RecordID) {
					return
				}
				_ = l.DecideCard("0002", t0)
				_ = l.Entries()
			}
		})
	}
	churn := active("0002")
	for i := range 500 {
		l.Apply([]accesslist.Change{{Entry: churn, Removed: i%2 == 1}}, "d:x")
	}
	stop.Store(true)
	wg.Wait()
}

func TestGrantingACardDoesNotAllocate(t *testing.T) {
	e := active("0042")
	l := listOf(e, active("0043"))
	allocs := testing.AllocsPerRun(1000, func() {
		if !l.DecideCard("0042", t0).Granted {
			t.Fatal("refused")
		}
		_ = l.DecideCard("9999", t0)
	})
	require.Zero(t, allocs)
}
