package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/lintel/lintel/readers/gateway/eventqueue"
)

// maxBatch is how many events go to the server in one report; the server
// takes up to 1000.
const maxBatch = 500

// Shipper sends queued access events to the server in batches and
// removes them from the queue once the server has them. An event is
// removed only after the server confirmed it, and the server stores each
// event ID once, so every event arrives exactly once however often the
// gateway or the server stops in between.
type Shipper struct {
	queue   *eventqueue.Queue
	client  *client
	log     *slog.Logger
	metrics *metrics

	appended chan struct{} // an event was queued
	kick     chan struct{} // the server is reachable again
}

func newShipper(q *eventqueue.Queue, c *client, log *slog.Logger, m *metrics) *Shipper {
	return &Shipper{queue: q, client: c, log: log, metrics: m,
		appended: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
}

// Appended tells the shipper an event was queued.
func (s *Shipper) Appended() { notify(s.appended) }

// Kick makes the shipper try at once, even while it backs off.
func (s *Shipper) Kick() { notify(s.kick) }

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// idleRecheck is how often the queue is looked at without being told:
// a safety net, events are normally shipped when they are queued.
const idleRecheck = time.Minute

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) {
	b := backoff{min: 200 * time.Millisecond, max: 10 * time.Second}
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.appended:
			if failures > 0 {
				// The server is down: new events wait for the backoff.
				continue
			}
		case <-s.kick:
		case <-timer.C:
		}
		n, err := s.ship(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			wait := b.next()
			if failures == 1 {
				s.log.Warn("shipping access events failed; they wait in the queue", "err", err, "queued", s.queue.Len(), "retry_in", wait.Round(time.Millisecond))
			} else {
				s.log.Debug("shipping access events failed again", "err", err, "failures", failures, "queued", s.queue.Len(), "retry_in", wait.Round(time.Millisecond))
			}
			timer.Reset(wait)
			continue
		}
		if failures > 0 {
			s.log.Info("access events shipped again", "after_failures", failures, "shipped", n)
		}
		failures = 0
		b.reset()
		timer.Reset(idleRecheck)
	}
}

const reportEvents = `mutation($events: [AccessEventInput!]!) { reportAccessEvents(events: $events) }`

// ship sends queued events until the queue is empty or a report fails; it
// returns how many events the server confirmed.
func (s *Shipper) ship(ctx context.Context) (int, error) {
	shipped := 0
	limit := maxBatch
	for {
		evs, err := s.queue.Peek(limit)
		if err != nil {
			return shipped, err
		}
		if len(evs) == 0 {
			return shipped, nil
		}
		in := make([]map[string]any, len(evs))
		for i, e := range evs {
			in[i] = eventInput(e)
		}
		err = s.client.do(ctx, reportEvents, map[string]any{"events": in}, nil)
		if bad := firstBadEvent(err); bad > 0 {
			// Ship the good events before it first.
			limit = bad
			continue
		} else if bad == 0 {
			// The server will never take this event; keeping it would
			// stop every event behind it.
			s.metrics.eventsRejected.Inc()
			s.log.Error("the server refused an access event; dropped", "event", evs[0].ID, "reader", evs[0].ReaderID, "err", err)
			if err := s.queue.Ack(1); err != nil {
				return shipped, err
			}
			limit = maxBatch
			continue
		}
		if err != nil {
			return shipped, err
		}
		if err := s.queue.Ack(len(evs)); err != nil {
			return shipped, err
		}
		shipped += len(evs)
		s.metrics.eventsShipped.Add(float64(len(evs)))
		limit = maxBatch
	}
}

// eventInput is an event as an AccessEventInput.
func eventInput(e eventqueue.Event) map[string]any {
	in := map[string]any{"id": e.ID.String(), "readerId": e.ReaderID, "door": e.Door,
		"at": e.At.UTC().Format(time.RFC3339Nano), "kind": e.Kind}
	opt := func(k, v string) {
		if v != "" {
			in[k] = v
		}
	}
	opt("cardId", e.CardID)
	opt("decision", e.Decision)
	opt("reason", e.Reason)
	opt("detail", e.Detail)
	if e.RecordID != nil {
		in["recordId"] = e.RecordID.String()
	}
	return in
}
