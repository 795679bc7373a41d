// Package events carries change notifications between Lintel processes
// through PostgreSQL LISTEN/NOTIFY. Writers call Notify inside the
// transaction of the change, so an event is delivered if and only if the
// change commits; every process runs one Broker holding a dedicated LISTEN
// connection and fans events out to its local subscribers.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

// Channel is the one PostgreSQL notification channel Lintel uses.
const Channel = "lintel_events"

// Event is a small notice that something changed; subscribers load the
// current state themselves (so a payload never exceeds NOTIFY's 8 kB and
// never carries data the subscriber may not see).
//
// A received event is shared by every subscriber of this process: they
// must not change it.
type Event struct {
	Org   uuid.UUID       `json:"org"`
	Topic string          `json:"topic"`
	Kind  string          `json:"kind"`
	ID    string          `json:"id,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`

	shared *sharedState // set by Publish
}

// sharedState is what the subscribers of one published event compute once
// for all of them.
type sharedState struct {
	decodeOnce sync.Once
	decoded    any
	decodeErr  error

	mu      sync.Mutex
	results map[any]*sharedResult
}

// sharedResult is one of Shared's results.
type sharedResult struct {
	once  sync.Once
	value any
}

// Decoded returns decode(Data), computed once per published event however
// many subscribers ask — with thousands of subscribers of one topic,
// decoding per subscriber would dominate the fan-out. decode must be the
// same for every caller of one event (one per topic kind), and the value
// it returns is shared: treat it as read-only.
func (e *Event) Decoded(decode func(json.RawMessage) (any, error)) (any, error) {
	if e.shared == nil {
		return decode(e.Data)
	}
	e.shared.decodeOnce.Do(func() { e.shared.decoded, e.shared.decodeErr = decode(e.Data) })
	return e.shared.decoded, e.shared.decodeErr
}

// Shared returns what compute returns for key, computed once per published
// event and key however many subscribers ask: the first caller computes it,
// callers with the same key meanwhile wait for it, and later ones get it
// at once. It lets subscribers that would derive the same thing from the
// event (a rendered message, say) derive it once; key must therefore
// capture everything besides the event that the result depends on. The
// results live as long as the event: until every subscriber is done with
// it. The value returned is shared: treat it as read-only. For an event
// never published (made by hand), compute runs on every call.
func (e *Event) Shared(key any, compute func() any) any {
	if e.shared == nil {
		return compute()
	}
	e.shared.mu.Lock()
	r := e.shared.results[key]
	if r == nil {
		if e.shared.results == nil {
			e.shared.results = map[any]*sharedResult{}
		}
		r = &sharedResult{}
		e.shared.results[key] = r
	}
	e.shared.mu.Unlock()
	r.once.Do(func() { r.value = compute() })
	return r.value
}

// Execer runs a statement: a pgx pool, connection or transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// NotifyPgx is Notify for code that holds a pgx transaction (or, outside a
// transaction, for immediate delivery).
func NotifyPgx(ctx context.Context, db Execer, ev Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("events: encode: %w", err)
	}
	if _, err := db.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, string(payload)); err != nil {
		return fmt.Errorf("events: notify %s: %w", ev.Topic, err)
	}
	return nil
}

// Notify queues ev on db; PostgreSQL delivers it when the transaction
// commits and drops it when it rolls back.
func Notify(ctx context.Context, db bun.IDB, ev Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("events: encode: %w", err)
	}
	if _, err := db.NewRaw(`SELECT pg_notify(?, ?)`, Channel, string(payload)).Exec(ctx); err != nil {
		return fmt.Errorf("events: notify %s: %w", ev.Topic, err)
	}
	return nil
}

// subscriberBuffer is how many undelivered events a subscriber may hold;
// one that falls further behind is cut off rather than slowing anyone.
// The buffer holds pointers (2 KiB), not events (22 KiB): a server holds
// one per subscription, tens of thousands of them.
const subscriberBuffer = 256

// subscriber is one subscription: deliver hands it an event without
// blocking (false: its buffer is full), end closes it.
type subscriber struct {
	org     uuid.UUID
	deliver func(*Event) bool
	end     func()
}

// Broker listens for events and delivers them to this process's
// subscribers.
type Broker struct {
	connConfig *pgx.ConnConfig
	log        *slog.Logger

	mu     sync.Mutex
	topics map[string]map[*subscriber]struct{}

	connected atomic.Bool
	dropped   atomic.Int64
}

// NewBroker returns a broker that listens with its own connection made from
// connConfig (not a pool connection: LISTEN needs a connection for itself).
func NewBroker(connConfig *pgx.ConnConfig, log *slog.Logger) *Broker {
	return &Broker{connConfig: connConfig.Copy(), log: log, topics: map[string]map[*subscriber]struct{}{}}
}

// Connected reports whether the LISTEN connection is up (for /readyz).
func (b *Broker) Connected() bool { return b.connected.Load() }

// Dropped counts subscribers cut off for falling behind.
func (b *Broker) Dropped() int64 { return b.dropped.Load() }

// Run listens until ctx ends, reconnecting with backoff when the database
// goes away.
func (b *Broker) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.listen(ctx)
		b.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("event listener disconnected; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (b *Broker) listen(ctx context.Context) error {
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(connectCtx, b.connConfig)
	cancel()
	if err != nil {
		return fmt.Errorf("events: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("events: listen: %w", err)
	}
	b.connected.Store(true)
	b.log.Debug("event listener connected")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("events: wait: %w", err)
		}
		var ev Event
		if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
			b.log.Warn("ignoring malformed event", "payload", n.Payload, "err", err)
			continue
		}
		b.Publish(ev)
	}
}

// Publish delivers ev to this process's subscribers of its topic and
// organisation without ever blocking: a subscriber whose buffer is full is
// closed, and must resubscribe and reload. All of them receive the same
// *Event.
func (b *Broker) Publish(e Event) {
	ev := &e
	ev.shared = &sharedState{}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.topics[ev.Topic] {
		if s.org != ev.Org {
			continue
		}
		if !s.deliver(ev) {
			b.dropped.Add(1)
			delete(b.topics[ev.Topic], s)
			s.end()
		}
	}
}

// Subscribe returns a channel of the events of topic in organisation org.
// The channel is closed when ctx ends or when the subscriber falls behind.
func (b *Broker) Subscribe(ctx context.Context, org uuid.UUID, topic string) <-chan *Event {
	ch := make(chan *Event, subscriberBuffer)
	var once sync.Once
	b.add(ctx, topic, &subscriber{
		org: org,
		deliver: func(ev *Event) bool {
			select {
			case ch <- ev:
				return true
			default:
				return false
			}
		},
		end: func() { once.Do(func() { close(ch) }) },
	})
	return ch
}

// add registers s until ctx ends.
func (b *Broker) add(ctx context.Context, topic string, s *subscriber) {
	b.mu.Lock()
	if b.topics[topic] == nil {
		b.topics[topic] = map[*subscriber]struct{}{}
	}
	b.topics[topic][s] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.topics[topic], s)
		if len(b.topics[topic]) == 0 {
			delete(b.topics, topic)
		}
		b.mu.Unlock()
		s.end()
	})
}

// Feed is a subscription whose events are converted, by the publisher, to
// the values a subscriber wants and sent straight to its channel: no
// goroutine per subscription sits between the broker and the consumer (a
// server holds tens of thousands of subscriptions). Its channel starts
// with a first value — the current state, read after subscribing so that
// no change falls in between — and the events that arrived meanwhile.
type Feed[T any] struct {
	ch      chan T
	convert func(*Event) (v T, ok, last bool)
	cancel  context.CancelFunc
	notify  func(from *Event) // see Notify

	mu          sync.Mutex
	started     bool
	closed      bool
	pending     []pendingValue[T]
	pendingLast bool // nothing comes after pending: a last value, or the broker ended the feed
}

// pendingValue is a value kept until Start, with the event it came from.
type pendingValue[T any] struct {
	v    T
	from *Event
}

// NewFeed subscribes to topic in org until ctx ends. convert turns an
// event into a value (ok false skips the event; last true ends the feed
// after the value); it runs on the broker's goroutine and must not block.
// Call Start or StartWith once to get the channel.
func NewFeed[T any](ctx context.Context, b *Broker, org uuid.UUID, topic string, convert func(*Event) (v T, ok, last bool)) *Feed[T] {
	ctx, cancel := context.WithCancel(ctx)
	f := &Feed[T]{ch: make(chan T, subscriberBuffer+1), convert: convert, cancel: cancel}
	b.add(ctx, topic, &subscriber{org: org, deliver: f.deliver, end: f.end})
	return f
}

// Notify makes the feed call fn after each value it puts in the channel
// and after closing it, so that a consumer can read exactly when there is
// something to read instead of parking a goroutine on the channel. fn gets
// the event the value was converted from, so that consumers of one event
// can share work through Event.Shared; it gets nil for StartWith's first
// value and for the close. The calls come in channel order, one at a time.
// fn must not block. Call Notify before Start.
func (f *Feed[T]) Notify(fn func(from *Event)) { f.notify = fn }

func (f *Feed[T]) notified(from *Event) {
	if f.notify != nil {
		f.notify(from)
	}
}

// Skip drops the next value from the channel, for a consumer that Notify
// told of it and that has handled it without reading it (with a result
// shared by the event's other subscribers). It reports whether there was a
// value to drop. Only the channel's one reader may call it.
func (f *Feed[T]) Skip() bool {
	select {
	case _, ok := <-f.ch:
		return ok
	default:
		return false
	}
}

// Start sends what arrived since NewFeed and returns the channel. It is
// closed when the feed ends: its context, a last value, or falling behind
// (a consumer that leaves the buffer full when an event comes).
func (f *Feed[T]) Start() <-chan T { return f.start(nil, false) }

// StartWith is Start with first sent before anything else; last ends the
// feed after first.
func (f *Feed[T]) StartWith(first T, last bool) <-chan T { return f.start(&first, last) }

func (f *Feed[T]) start(first *T, last bool) <-chan T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		if first != nil {
			f.ch <- *first // the channel is empty and holds one more than pending can
			f.notified(nil)
		}
		for _, p := range f.pending {
			f.ch <- p.v
			f.notified(p.from)
		}
		f.pending, f.started = nil, true
		if last || f.pendingLast {
			f.finish()
		}
	}
	return f.ch
}

func (f *Feed[T]) deliver(ev *Event) bool {
	v, ok, last := f.convert(ev)
	if !ok {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed, f.pendingLast:
		return true // ended: the broker drops it soon
	case !f.started:
		if len(f.pending) == subscriberBuffer {
			return false
		}
		f.pending = append(f.pending, pendingValue[T]{v: v, from: ev})
		f.pendingLast = last
		return true
	default:
		select {
		case f.ch <- v:
			f.notified(ev)
		default:
			return false
		}
	}
	if last {
		f.finish()
	}
	return true
}

// finish closes the channel after a last value and unsubscribes; f.mu is
// held.
func (f *Feed[T]) finish() {
	f.closed = true
	close(f.ch)
	f.notified(nil)
	f.cancel()
}

// end is the broker ending the feed (its context, or falling behind).
// Before Start the channel stays open, so that Start still hands over the
// first value and what was kept, then closes it.
func (f *Feed[T]) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
	case !f.started:
		f.pendingLast = true
	default:
		f.closed = true
		close(f.ch)
		f.notified(nil)
	}
}

// Subscribers counts this process's current subscribers (for metrics).
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, subs := range b.topics {
		n += len(subs)
	}
	return n
}
