package eventqueue_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/readers/gateway/eventqueue"
)

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 123456789, time.UTC)

// swipe is the i-th card event at the front door.
func swipe(i int) eventqueue.Event {
	record := uuid.New()
	return eventqueue.Event{ID: uuid.New(), ReaderID: "front-1", Door: "Front door", At: t0.Add(time.Duration(i) * time.Second),
		Kind: "CARD", CardID: fmt.Sprint(10000 + i), RecordID: &record, Decision: "GRANTED"}
}

func swipes(n int) []eventqueue.Event {
	evs := make([]eventqueue.Event, n)
	for i := range evs {
		evs[i] = swipe(i)
	}
	return evs
}

func open(t testing.TB, dir string) *eventqueue.Queue {
	t.Helper()
	q, err := eventqueue.Open(dir)
	require.NoError(t, err)
	return q
}

func appendAll(t testing.TB, q *eventqueue.Queue, evs []eventqueue.Event) {
	t.Helper()
	for _, ev := range evs {
		require.NoError(t, q.Append(ev))
	}
}

func peekAll(t testing.TB, q *eventqueue.Queue) []eventqueue.Event {
	t.Helper()
	evs, err := q.Peek(1 << 30)
	require.NoError(t, err)
	return evs
}

func TestEventsAreDeliveredInOrderUntilAcknowledged(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir())
	defer q.Close()
	evs := swipes(10)
	appendAll(t, q, evs)
	require.Equal(t, 10, q.Len())

	first, err := q.Peek(3)
	require.NoError(t, err)
	require.Equal(t, evs[:3], first)
	again, err := q.Peek(3)
	require.NoError(t, err)
	require.Equal(t, first, again, "peeking does not consume")

	require.NoError(t, q.Ack(3))
	require.Equal(t, 7, q.Len())
	require.Equal(t, evs[3:], peekAll(t, q))

	require.NoError(t, q.Ack(7))
	require.Zero(t, q.Len())
	require.Empty(t, peekAll(t, q))
}

func TestEveryFieldComesBackAsAppended(t *testing.T) {
	t.Parallel()
	record := uuid.New()
	tests := []struct {
		name string
		ev   eventqueue.Event
	}{
		{name: "a granted card with its record", ev: eventqueue.Event{ID: uuid.New(), ReaderID: "osdp-0", Door: "Loading bay",
			At: t0, Kind: "CARD", CardID: "123:45678", RecordID: &record, Decision: "GRANTED"}},
		{name: "a refused wallet code with its reason and detail", ev: eventqueue.Event{ID: uuid.New(), ReaderID: "qr-2",
			Door: "Tür Süd — Eingang", At: t0.Add(-time.Hour), Kind: "CODE", Decision: "DENIED", Reason: "STALE_CODE",
			Detail: "the code is 31s old (at most 30s)"}},
		{name: "an alert without card or decision", ev: eventqueue.Event{ID: uuid.New(), ReaderID: "front-1",
			At: time.Date(2040, 2, 29, 23, 59, 59, 999999999, time.UTC), Kind: "ALERT", Reason: "RATE_LIMITED",
			Detail: "5 denials in 10s"}},
		{name: "an event with nothing but its ID", ev: eventqueue.Event{ID: uuid.New()}},
	}
	dir := t.TempDir()
	q := open(t, dir)
	for _, tt := range tests {
		require.NoError(t, q.Append(tt.ev))
	}
	require.NoError(t, q.Close())
	got := peekAll(t, open(t, dir))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.ev, got[i])
		})
	}
}

func TestTimesComeBackInUTC(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir())
	defer q.Close()
	at := time.Date(2026, 11, 24, 10, 0, 0, 5, time.FixedZone("CET", 3600))
	require.NoError(t, q.Append(eventqueue.Event{ID: uuid.New(), At: at}))
	got := peekAll(t, q)
	require.True(t, got[0].At.Equal(at))
	require.Equal(t, time.UTC, got[0].At.Location())
}

func TestAnEventWithoutAnIDIsGivenOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir)
	require.NoError(t, q.Append(eventqueue.Event{Kind: "ALERT"}))
	got := peekAll(t, q)
	require.NotEqual(t, uuid.Nil, got[0].ID)
	require.NoError(t, q.Close())
	require.Equal(t, got, peekAll(t, open(t, dir)), "the ID is kept, so a retry is recognised")
}

func TestAnOversizedEventIsRefused(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir())
	defer q.Close()
	err := q.Append(eventqueue.Event{ID: uuid.New(), Detail: string(make([]byte, eventqueue.MaxEventSize))})
	require.ErrorContains(t, err, "at most")
	require.Zero(t, q.Len())
	require.NoError(t, q.Append(swipe(1)), "the queue goes on")
}

func TestEventsSurviveARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	evs := swipes(20)
	q := open(t, dir)
	appendAll(t, q, evs[:12])
	require.NoError(t, q.Ack(5))
	require.NoError(t, q.Close())

	q = open(t, dir)
	require.Equal(t, 7, q.Len())
	require.Equal(t, evs[5:12], peekAll(t, q), "acknowledged events are not delivered again")
	appendAll(t, q, evs[12:])
	require.Equal(t, 15, q.Len())
	require.NoError(t, q.Close())

	q = open(t, dir)
	defer q.Close()
	require.Equal(t, 15, q.Len())
	require.Equal(t, evs[5:], peekAll(t, q))
}

func TestEventsDeliveredButNotAcknowledgedBeforeACrashAreDeliveredAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	evs := swipes(6)
	crashed := open(t, dir)
	appendAll(t, crashed, evs)
	batch, err := crashed.Peek(4)
	require.NoError(t, err)
	// The server took the batch; the gateway lost power before Ack, so
	// crashed is never closed.
	_ = batch

	q := open(t, dir)
	defer q.Close()
	again, err := q.Peek(4)
	require.NoError(t, err)
	require.Equal(t, batch, again, "the same events with the same IDs, which the server stores once")
	require.Equal(t, 6, q.Len())
}

func TestAcknowledgingMoreThanIsQueuedFails(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir())
	defer q.Close()
	appendAll(t, q, swipes(2))
	require.ErrorContains(t, q.Ack(3), "2 are on disk")
	require.Error(t, q.Ack(-1))
	require.NoError(t, q.Ack(0))
	require.Equal(t, 2, q.Len())
}

func TestAClosedQueueRefusesWork(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir())
	require.NoError(t, q.Close())
	require.NoError(t, q.Close())
	require.ErrorIs(t, q.Append(swipe(1)), eventqueue.ErrClosed)
	_, err := q.Peek(1)
	require.ErrorIs(t, err, eventqueue.ErrClosed)
	require.ErrorIs(t, q.Ack(1), eventqueue.ErrClosed)
}

func TestDoorsAppendingAtOnceLoseNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, err := eventqueue.OpenWithSegmentSize(dir, 8<<10)
	require.NoError(t, err)
	const doors, each = 8, 300
	var wg sync.WaitGroup
	for d := range doors {
		wg.Go(func() {
			for i := range each {
				ev := swipe(i)
				ev.ReaderID = fmt.Sprint("door-", d)
				if !assert.NoError(t, q.Append(ev)) {
					return
				}
			}
		})
	}
	// The shipper delivers meanwhile.
	var shipped []eventqueue.Event
	wg.Go(func() {
		for len(shipped) < doors*each {
			batch, err := q.Peek(50)
			if !assert.NoError(t, err) || !assert.NoError(t, q.Ack(len(batch))) {
				return
			}
			shipped = append(shipped, batch...)
		}
	})
	wg.Wait()
	require.Zero(t, q.Len())
	require.NoError(t, q.Close())

	seen := map[uuid.UUID]bool{}
	next := map[string]int{}
	for _, ev := range shipped {
		require.False(t, seen[ev.ID], "event %s delivered twice", ev.ID)
		seen[ev.ID] = true
		require.Equal(t, fmt.Sprint(10000+next[ev.ReaderID]), ev.CardID, "a door's events stay in order")
		next[ev.ReaderID]++
	}
	require.Len(t, seen, doors*each)
	q = open(t, dir)
	defer q.Close()
	require.Zero(t, q.Len())
}

func TestAHundredThousandEvents(t *testing.T) {
	t.Parallel()
	const total, doors = 100_000, 100
	dir := t.TempDir()
	q, err := eventqueue.OpenWithSegmentSize(dir, 256<<10)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for d := range doors {
		wg.Go(func() {
			for i := range total / doors {
				ev := swipe(i)
				ev.ReaderID = fmt.Sprint("door-", d)
				if !assert.NoError(t, q.Append(ev)) {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, total, q.Len())
	segments, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Greater(t, len(segments), 20)

	// Ship half, restart, ship the rest.
	seen := make(map[uuid.UUID]bool, total)
	ship := func(q *eventqueue.Queue, n int) {
		for n > 0 {
			batch, err := q.Peek(min(1000, n))
			require.NoError(t, err)
			require.NotEmpty(t, batch)
			for _, ev := range batch {
				require.False(t, seen[ev.ID])
				seen[ev.ID] = true
			}
			require.NoError(t, q.Ack(len(batch)))
			n -= len(batch)
		}
	}
	ship(q, total/2)
	require.NoError(t, q.Close())
	q, err = eventqueue.OpenWithSegmentSize(dir, 256<<10)
	require.NoError(t, err)
	require.Equal(t, total/2, q.Len())
	ship(q, total/2)
	require.Len(t, seen, total)
	require.Zero(t, q.Len())
	empty, err := q.Peek(10)
	require.NoError(t, err)
	require.Empty(t, empty)

	// Delivered segments are gone; the one being appended to stays.
	segments, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Len(t, segments, 1)
	require.NoError(t, q.Close())
}

func TestAcknowledgedSegmentsAreDeletedAsTheShipperGoes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, err := eventqueue.OpenWithSegmentSize(dir, 1<<10)
	require.NoError(t, err)
	defer q.Close()
	appendAll(t, q, swipes(60))
	count := func() int {
		files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		return len(files)
	}
	before := count()
	require.Greater(t, before, 5)
	require.NoError(t, q.Ack(30))
	mid := count()
	require.Less(t, mid, before)
	require.Greater(t, mid, 1)
	require.NoError(t, q.Ack(30))
	require.Equal(t, 1, count())
	require.NoError(t, q.Append(swipe(61)))
	require.Equal(t, 1, q.Len())
}

func TestAPowerCutDuringAcknowledgementDeliversTheBatchAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	evs := swipes(5)
	q := open(t, dir)
	appendAll(t, q, evs)
	require.NoError(t, q.Ack(1))
	require.NoError(t, q.Ack(2))
	require.NoError(t, q.Close())

	// The last Ack's slot was torn: the previous acknowledgement counts.
	path := filepath.Join(dir, "acked")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, b, 64)
	b[0] ^= 0xff // generation 2 lives in slot 0
	require.NoError(t, os.WriteFile(path, b, 0o600))

	q = open(t, dir)
	defer q.Close()
	require.Equal(t, evs[1:], peekAll(t, q))
}
