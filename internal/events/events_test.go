package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/store"
	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

type bundle struct {
	db     *store.DB
	broker *events.Broker
}

func setup(t *testing.T) *bundle {
	t.Helper()
	url := testdb.URL(t)
	db, err := store.Open(context.Background(), url, store.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	b := events.NewBroker(cfg, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, b.Connected, 5*time.Second, 10*time.Millisecond)
	return &bundle{db: db, broker: b}
}

func notify(t *testing.T, db *store.DB, ev events.Event, commit bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Bun.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, events.Notify(ctx, tx, ev))
	if commit {
		require.NoError(t, tx.Commit())
	} else {
		require.NoError(t, tx.Rollback())
	}
}

func receive(t *testing.T, ch <-chan *events.Event) (events.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			return events.Event{}, false
		}
		return *ev, true
	case <-time.After(3 * time.Second):
		t.Fatal("no event within 3 s")
		return events.Event{}, false
	}
}

func TestEventsReachSubscribersOnlyWhenTheirTransactionCommits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	org := uuid.New()
	ch := b.broker.Subscribe(t.Context(), org, "records:x")
	notify(t, b.db, events.Event{Org: org, Topic: "records:x", Kind: "ROLLED_BACK"}, false)
	notify(t, b.db, events.Event{Org: org, Topic: "records:x", Kind: "COMMITTED", ID: "1"}, true)
	ev, ok := receive(t, ch)
	require.True(t, ok)
	require.Equal(t, "COMMITTED", ev.Kind, "the rolled-back event never arrives")
	require.Equal(t, "1", ev.ID)
}

func TestEventsOfAnotherOrganisationOrTopicAreNotDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mine, theirs := uuid.New(), uuid.New()
	ch := b.broker.Subscribe(t.Context(), mine, "records:x")
	notify(t, b.db, events.Event{Org: theirs, Topic: "records:x", Kind: "THEIRS"}, true)
	notify(t, b.db, events.Event{Org: mine, Topic: "records:y", Kind: "OTHER_TOPIC"}, true)
	notify(t, b.db, events.Event{Org: mine, Topic: "records:x", Kind: "MINE"}, true)
	ev, _ := receive(t, ch)
	require.Equal(t, "MINE", ev.Kind)
}

func TestASlowSubscriberIsCutOffWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	b := events.NewBroker(&pgx.ConnConfig{}, testLogger(t))
	org := uuid.New()
	slow := b.Subscribe(t.Context(), org, "t")
	fast := b.Subscribe(t.Context(), org, "t")
	// Publish in bursts the reading subscriber keeps up with; the one that
	// never reads falls behind after its buffer fills.
	for burst := range 5 {
		start := time.Now()
		for i := range 200 {
			b.Publish(events.Event{Org: org, Topic: "t", ID: fmt.Sprint(burst*200 + i)})
		}
		require.Less(t, time.Since(start), time.Second, "publishing never waits for a subscriber")
		for i := range 200 {
			ev, ok := receive(t, fast)
			require.True(t, ok, "the reading subscriber stays subscribed")
			require.Equal(t, fmt.Sprint(burst*200+i), ev.ID, "events arrive in order")
		}
	}
	drained := 0
	for range slow {
		drained++
	}
	require.Equal(t, 256, drained, "the subscriber that did not read was closed once its buffer was full")
	require.Equal(t, int64(1), b.Dropped())
}

func TestAnEndedSubscriptionIsRemoved(t *testing.T) {
	t.Parallel()
	b := events.NewBroker(&pgx.ConnConfig{}, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx, uuid.New(), "t")
	require.Equal(t, 1, b.Subscribers())
	cancel()
	_, open := <-ch
	require.False(t, open)
	require.Eventually(t, func() bool { return b.Subscribers() == 0 }, time.Second, 5*time.Millisecond)
}

func TestTheListenerReconnectsAfterTheConnectionIsKilled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	org := uuid.New()
	ch := b.broker.Subscribe(t.Context(), org, "t")
	_, err := b.db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !b.broker.Connected() }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, b.broker.Connected, 10*time.Second, 20*time.Millisecond)
	notify(t, b.db, events.Event{Org: org, Topic: "t", Kind: "AFTER"}, true)
	ev, _ := receive(t, ch)
	require.Equal(t, "AFTER", ev.Kind)
}

var _ bun.IDB = (*bun.DB)(nil)

// brokerWithSubscribers returns a broker (not listening) with n
// subscribers of one organisation's topic "t".
func brokerWithSubscribers(t *testing.T, n int) (*events.Broker, uuid.UUID, []<-chan *events.Event) {
	t.Helper()
	b := events.NewBroker(&pgx.ConnConfig{}, testLogger(t))
	org := uuid.New()
	subs := make([]<-chan *events.Event, n)
	for i := range subs {
		subs[i] = b.Subscribe(t.Context(), org, "t")
	}
	return b, org, subs
}

func TestAnEventIsDecodedOnceForAllItsSubscribers(t *testing.T) {
	t.Parallel()
	b, org, subs := brokerWithSubscribers(t, 50)
	var decodes atomic.Int32
	decode := func(data json.RawMessage) (any, error) {
		decodes.Add(1)
		var v struct{ N int }
		err := json.Unmarshal(data, &v)
		return v.N, err
	}
	for n := range 3 {
		b.Publish(events.Event{Org: org, Topic: "t", Data: json.RawMessage(fmt.Sprintf(`{"N": %d}`, n))})
	}
	var wg sync.WaitGroup
	for _, ch := range subs {
		wg.Go(func() {
			for n := range 3 {
				ev := <-ch
				v, err := ev.Decoded(decode)
				assert.NoError(t, err)
				assert.Equal(t, n, v, "each subscriber decodes every event, in order")
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(3), decodes.Load(), "three events, decoded once each for 50 subscribers")

	// An event never published (made by hand) decodes each time.
	ev := &events.Event{Data: json.RawMessage(`{"N": 7}`)}
	v, err := ev.Decoded(decode)
	require.NoError(t, err)
	require.Equal(t, 7, v)
}

func TestAFeedStartsWithTheCurrentStateThenWhatHappenedMeanwhileInOrder(t *testing.T) {
	t.Parallel()
	b := events.NewBroker(&pgx.ConnConfig{}, testLogger(t))
	org := uuid.New()
	id := func(ev *events.Event) (string, bool, bool) { return ev.ID, ev.Kind != "SKIP", ev.Kind == "LAST" }
	feed := events.NewFeed(t.Context(), b, org, "t", id)
	// Published after subscribing, before the current state is read.
	b.Publish(events.Event{Org: org, Topic: "t", ID: "1"})
	b.Publish(events.Event{Org: org, Topic: "t", ID: "x", Kind: "SKIP"})
	b.Publish(events.Event{Org: uuid.New(), Topic: "t", ID: "other org"})
	ch := feed.StartWith("current", false)
	b.Publish(events.Event{Org: org, Topic: "t", ID: "2"})
	b.Publish(events.Event{Org: org, Topic: "t", ID: "3", Kind: "LAST"})
	b.Publish(events.Event{Org: org, Topic: "t", ID: "after the end"})
	b.Publish(events.Event{Org: org, Topic: "t", ID: "another last", Kind: "LAST"})
	var got []string
	for v := range ch {
		got = append(got, v)
	}
	require.Equal(t, []string{"current", "1", "2", "3"}, got, "the channel closes after the last value")
	require.Eventually(t, func() bool { return b.Subscribers() == 0 }, 3*time.Second, 10*time.Millisecond, "a finished feed unsubscribes")
	require.Zero(t, b.Dropped())
}

func TestAFeedEndsWithItsContextOrWhenItsConsumerFallsBehind(t *testing.T) {
	t.Parallel()
	b := events.NewBroker(&pgx.ConnConfig{}, testLogger(t))
	org := uuid.New()
	id := func(ev *events.Event) (string, bool, bool) { return ev.ID, true, false }

	ctx, cancel := context.WithCancel(t.Context())
	ended := events.NewFeed(ctx, b, org, "t", id).Start()
	cancel()
	_, open := <-ended
	require.False(t, open, "the context's end closes the channel")

	slow := events.NewFeed(t.Context(), b, org, "t", id).Start()
	for i := range 300 {
		b.Publish(events.Event{Org: org, Topic: "t", ID: fmt.Sprint(i)})
	}
	n := 0
	for v := range slow {
		require.Equal(t, fmt.Sprint(n), v, "in order")
		n++
	}
	require.Equal(t, 257, n, "a consumer that never read was cut off once its buffer was full")
	require.Equal(t, int64(1), b.Dropped())

	// Before Start, a feed keeps up to the same number of events.
	early := events.NewFeed(t.Context(), b, org, "u", id)
	for i := range 300 {
		b.Publish(events.Event{Org: org, Topic: "u", ID: fmt.Sprint(i)})
	}
	n = 0
	for range early.StartWith("current", false) {
		n++
	}
	require.Equal(t, 1+256, n, "the current state and the 256 events it could hold")
	require.Equal(t, int64(2), b.Dropped())
}

func TestSubscribersOfAnEventComputeWhatTheyShareOncePerKey(t *testing.T) {
	t.Parallel()
	b, org, subs := brokerWithSubscribers(t, 50)
	b.Publish(events.Event{Org: org, Topic: "t", ID: "1"})
	var computed sync.Map // key → times
	var wg sync.WaitGroup
	for i, ch := range subs {
		wg.Go(func() {
			ev := <-ch
			key := fmt.Sprint("selection ", i%2)
			v := ev.Shared(key, func() any {
				n, _ := computed.LoadOrStore(key, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				time.Sleep(10 * time.Millisecond) // others with the key wait for it
				return key + " of event " + ev.ID
			})
			assert.Equal(t, key+" of event 1", v, "each key gets its own result")
		})
	}
	wg.Wait()
	for _, key := range []string{"selection 0", "selection 1"} {
		n, ok := computed.Load(key)
		require.True(t, ok)
		require.Equal(t, int32(1), n.(*atomic.Int32).Load(), "%s: computed once for its 25 subscribers", key)
	}

	// An event never published (made by hand) computes each time.
	ev := &events.Event{ID: "2"}
	calls := 0
	for range 2 {
		ev.Shared("k", func() any { calls++; return nil })
	}
	require.Equal(t, 2, calls)
}

func TestAFeedTellsItsConsumerWhichEventEachValueCameFrom(t *testing.T) {
	t.Parallel()
	b := events.NewBroker(&pgx.ConnConfig{}, testLogger(t))
	org := uuid.New()
	id := func(ev *events.Event) (string, bool, bool) { return ev.ID, true, ev.Kind == "LAST" }
	feed := events.NewFeed(t.Context(), b, org, "t", id)
	var mu sync.Mutex
	var from []string // the event each notification named, "-" for none
	feed.Notify(func(ev *events.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev == nil {
			from = append(from, "-")
			return
		}
		from = append(from, ev.ID)
	})
	b.Publish(events.Event{Org: org, Topic: "t", ID: "1"}) // kept until the start
	ch := feed.StartWith("current", false)
	b.Publish(events.Event{Org: org, Topic: "t", ID: "2"})
	require.True(t, feed.Skip(), "a value to drop")
	b.Publish(events.Event{Org: org, Topic: "t", ID: "3", Kind: "LAST"})
	var got []string
	for v := range ch {
		got = append(got, v)
	}
	require.Equal(t, []string{"1", "2", "3"}, got, "Skip dropped the first value in the channel, the current state")
	require.Equal(t, []string{"-", "1", "2", "3", "-"}, from, "in channel order: the current state, the events, the close")
	require.False(t, feed.Skip(), "nothing left to drop")
}
