package graph

// Subscriptions over graphql-transport-ws, built for many idle
// subscribers per replica. gqlgen's own WebSocket transport keeps four
// goroutines per subscription, one of them the net/http handler's with its
// deep stack; here the handler returns once the connection is upgraded, a
// connection is one shallow reader goroutine, pings come from one ticker
// for all connections, and a subscription whose resolver feeds it through
// events.Feed holds no goroutine at all: the feed wakes it when a value
// is ready and a short-lived goroutine marshals and writes it. Subscribers
// that would render an event identically share one rendering of it (see
// renderKey): with thousands of subscribers of one import, executing the
// selection set for each was a third of a fan-out.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/jsonquote"
)

const wsSubprotocol = "graphql-transport-ws"

// Close codes of graphql-transport-ws, and the standard ones used.
const (
	closeBadRequest        = websocket.StatusCode(4400)
	closeUnauthorized      = websocket.StatusCode(4401)
	closeForbidden         = websocket.StatusCode(4403)
	closeInitTimeout       = websocket.StatusCode(4408)
	closeSubscriberExists  = websocket.StatusCode(4409)
	closeTooManyInits      = websocket.StatusCode(4429)
	closeGoingAway         = websocket.StatusGoingAway
	closeNotAcceptable     = websocket.StatusCode(4406)
	wsDefaultInitTimeout   = 10 * time.Second
	wsDefaultPingInterval  = 15 * time.Second
	wsCloseReasonMaxLength = 120
)

// wsInitFunc authenticates a connection_init payload; the context it
// returns carries the caller for every operation of the connection.
type wsInitFunc func(ctx context.Context, payload map[string]any) (context.Context, error)

// wsTransport is the graphql.Transport for WebSocket upgrades.
type wsTransport struct {
	accept       websocket.AcceptOptions
	init         wsInitFunc
	initTimeout  time.Duration
	pingInterval time.Duration // a connection silent for two of these is closed
	readLimit    int64
	conns        *Websockets
}

func (t *wsTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func (t *wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	hijacker := &socketHijacker{ResponseWriter: w}
	ws, err := websocket.Accept(hijacker, r, &t.accept)
	if err != nil {
		return // Accept has answered
	}
	if ws.Subprotocol() != wsSubprotocol {
		_ = ws.Close(closeNotAcceptable, "subprotocol not acceptable: use "+wsSubprotocol)
		return
	}
	ws.SetReadLimit(t.readLimit)
	// The connection outlives this handler: it must not end with the
	// request's context, but it keeps its values (request ID, logger).
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &wsConn{t: t, ws: ws, socket: hijacker.socket, exec: exec, ctx: ctx, cancel: cancel, headers: r.Header, subs: map[string]*wsSub{}}
	if !t.conns.add(c) {
		_ = ws.Close(closeGoingAway, "server shutting down")
		cancel()
		return
	}
	c.initTimer = time.AfterFunc(t.initTimeout, func() {
		if !c.acked.Load() {
			c.close(closeInitTimeout, "connection initialisation timeout")
		}
	})
	go c.serve()
}

// wsConn is one connection.
type wsConn struct {
	t         *wsTransport
	ws        *websocket.Conn
	socket    *wsSocket // under ws
	exec      graphql.GraphExecutor
	ctx       context.Context // ends with the connection; carries the caller once acked (set before acked, by the reader)
	cancel    context.CancelFunc
	headers   http.Header
	initTimer *time.Timer
	acked     atomic.Bool
	alive     atomic.Bool // heard from since the last ping

	mu   sync.Mutex
	subs map[string]*wsSub
}

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (c *wsConn) serve() {
	defer c.end()
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		c.alive.Store(true)
		var m wsMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
			c.close(closeBadRequest, "invalid message")
			return
		}
		switch m.Type {
		case "connection_init":
			if c.acked.Load() {
				c.close(closeTooManyInits, "too many initialisation requests")
				return
			}
			if !c.initialise(m.Payload) {
				return
			}
		case "subscribe":
			if !c.acked.Load() {
				c.close(closeUnauthorized, "unauthorized")
				return
			}
			if !c.subscribe(m) {
				return
			}
		case "complete":
			c.stop(m.ID)
		case "ping":
			c.send(wsMessage{Type: "pong", Payload: m.Payload})
		case "pong":
		default:
			c.close(closeBadRequest, "unexpected message "+m.Type)
			return
		}
	}
}

func (c *wsConn) initialise(payload json.RawMessage) bool {
	p := map[string]any{}
	if len(payload) > 0 && string(payload) != "null" {
		if err := json.Unmarshal(payload, &p); err != nil {
			c.close(closeBadRequest, "connection_init payload is not an object")
			return false
		}
	}
	ctx, err := c.t.init(c.ctx, p)
	if err != nil {
		c.close(closeForbidden, err.Error())
		return false
	}
	c.ctx = ctx // only the reader goroutine uses c.ctx before the acknowledgement
	c.acked.Store(true)
	c.initTimer.Stop()
	c.send(wsMessage{Type: "connection_ack"})
	return true
}

// subscribe registers the operation and starts it on a goroutine of its
// own, so that the resolvers' deep call chains never grow the reader's
// stack, which lives as long as the connection.
func (c *wsConn) subscribe(m wsMessage) bool {
	if m.ID == "" {
		c.close(closeBadRequest, "subscribe without an id")
		return false
	}
	c.mu.Lock()
	if _, dup := c.subs[m.ID]; dup {
		c.mu.Unlock()
		c.close(closeSubscriberExists, "subscriber for "+m.ID+" already exists")
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	s := &wsSub{c: c, id: m.ID, ctx: ctx, life: ctx, cancel: cancel}
	c.subs[m.ID] = s
	c.mu.Unlock()
	go s.start(m.Payload)
	return true
}

// stop is the client's complete: it wants no more messages for id.
func (c *wsConn) stop(id string) {
	c.mu.Lock()
	s := c.subs[id]
	delete(c.subs, id)
	c.mu.Unlock()
	if s != nil {
		s.stopped.Store(true)
		s.cancel()
	}
}

// finished forgets a subscription that has ended on the server's side.
func (c *wsConn) finished(s *wsSub) {
	c.mu.Lock()
	if c.subs[s.id] == s {
		delete(c.subs, s.id)
	}
	c.mu.Unlock()
	s.cancel()
}

// send writes a message. It may block on a slow client, so it runs on the
// goroutine that produced the message, never on the reader's or a shared
// one.
func (c *wsConn) send(m wsMessage) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	c.write(b)
}

// write writes one text message. Every path that ends c.ctx closes the
// connection (close, end), and closing it unblocks a write in progress.
func (c *wsConn) write(b []byte) {
	_ = c.socket.writeText(func(room []byte) []byte { return append(room, b...) })
}

// close ends the connection with code and reason.
func (c *wsConn) close(code websocket.StatusCode, reason string) {
	if len(reason) > wsCloseReasonMaxLength {
		reason = strings.ToValidUTF8(reason[:wsCloseReasonMaxLength], "")
	}
	_ = c.ws.Close(code, reason)
	c.cancel()
}

// end runs when the reader stops: every subscription ends with it.
func (c *wsConn) end() {
	c.initTimer.Stop()
	c.cancel()
	_ = c.ws.CloseNow()
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*wsSub{}
	c.mu.Unlock()
	for _, s := range subs {
		s.cancel()
	}
	c.t.conns.remove(c)
}

// wsSub is one operation of a connection.
type wsSub struct {
	c       *wsConn
	id      string
	ctx     context.Context
	life    context.Context // s.ctx before gqlgen wrapped it: as cheap to ask whether it ended
	cancel  context.CancelFunc
	stopped atomic.Bool // the client sent complete: send nothing more

	// Driven by a feed (see streamDriver). queue[head:] holds, for each
	// value the feed announced (and for its close) not yet handled, the
	// event it came from (nil if none); running makes one goroutine at a
	// time handle them, in order; ready is set once responses is.
	responses graphql.ResponseHandler
	skip      func() bool              // drops the feed's next value (events.Feed.Skip)
	shareKey  unique.Handle[renderKey] // zero: render every value for this subscription alone
	mu        sync.Mutex               // guards what follows
	queue     []*events.Event          // kept between wakes: one allocation per subscription, not per event
	head      int
	ready     bool
	running   bool
}

func (s *wsSub) start(payload json.RawMessage) {
	var params graphql.RawParams
	if err := json.Unmarshal(payload, &params); err != nil {
		s.sendErrors(gqlerror.List{{Message: "invalid subscribe payload: " + err.Error()}})
		s.c.finished(s)
		return
	}
	params.Headers = s.c.headers
	ctx := graphql.StartOperationTrace(s.ctx)
	rc, errs := s.c.exec.CreateOperationContext(ctx, &params)
	if errs != nil {
		resp := s.c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			s.sendErrors(resp.Errors)
		} else {
			s.next(resp)
			s.complete()
		}
		s.c.finished(s)
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	driver := &streamDriver{sub: s}
	if rc.Operation != nil && rc.Operation.Operation == ast.Subscription {
		ctx = context.WithValue(ctx, streamDriverKey{}, driver)
	}
	responses, ctx := s.c.exec.DispatchOperation(ctx, rc)
	if driver.attached.Load() {
		s.mu.Lock()
		s.responses, s.ctx = responses, ctx
		s.shareKey = renderKeyOf(ctx, rc)
		s.ready = true
		start := s.startLocked()
		s.mu.Unlock()
		if start {
			go s.drain()
		}
		return
	}
	// A query, a mutation, or a stream without a feed: read it here.
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		s.next(resp)
	}
	s.complete()
	s.c.finished(s)
}

// wake is the feed's Notify: a value converted from event from (or the
// close) is in the channel.
func (s *wsSub) wake(from *events.Event) {
	s.mu.Lock()
	s.queue = append(s.queue, from)
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		go s.drain()
	}
}

// startLocked reports whether a drain is to start now, and if so marks it
// running; s.mu is held.
func (s *wsSub) startLocked() bool {
	if !s.ready || s.running || s.head == len(s.queue) {
		return false
	}
	s.running = true
	return true
}

// drain handles every value the feed has announced, in order, then
// returns; the next wake starts it again. Values that were waiting
// together leave in one write (see wsSocket).
func (s *wsSub) drain() {
	for {
		s.mu.Lock()
		waiting := len(s.queue) - s.head
		if waiting == 0 {
			s.queue, s.head = s.queue[:0], 0
			if cap(s.queue) > 4 {
				s.queue = nil // it fell behind once: do not keep the room for it
			}
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if waiting > 1 {
			s.c.socket.cork()
		}
		goOn := true
		for range waiting {
			s.mu.Lock()
			from := s.queue[s.head]
			s.queue[s.head] = nil // the event and what it shares go when every subscriber is done with it
			s.head++
			s.mu.Unlock()
			if goOn = s.handle(from); !goOn {
				break
			}
		}
		if waiting > 1 {
			s.c.socket.uncork()
		}
		if !goOn {
			return // running stays set: nothing is scheduled again
		}
	}
}

// handle sends the feed's next value, converted from event from (nil: not
// from an event, or the close), and reports whether the subscription goes
// on. The first subscriber to handle an event renders it; those with the
// same renderKey write what it rendered instead of executing the
// selection set again.
func (s *wsSub) handle(from *events.Event) bool {
	var resp *graphql.Response
	if from != nil && s.shareKey != (unique.Handle[renderKey]{}) && s.life.Err() == nil {
		renderedHere := false
		shared, _ := from.Shared(s.shareKey, func() any {
			renderedHere = true
			resp = s.responses(s.ctx)
			if resp == nil || !dataOnly(resp) {
				return nil // errors and extensions are each subscriber's own
			}
			return sharedData(bytes.Clone(resp.Data)) // gqlgen reuses the buffer behind Data
		}).(sharedData)
		if !renderedHere {
			if shared == nil {
				resp = s.responses(s.ctx)
			} else {
				if s.skip() {
					s.nextData(shared)
				}
				return true
			}
		}
	} else {
		resp = s.responses(s.ctx)
	}
	if resp == nil { // the feed closed, or the subscription ended: it is over
		s.complete()
		s.c.finished(s)
		return false
	}
	s.next(resp)
	return true
}

// sharedData is the data of a response rendered once for every subscriber
// with the same renderKey.
type sharedData []byte

func (s *wsSub) next(resp *graphql.Response) {
	if s.stopped.Load() {
		return
	}
	_ = s.c.socket.writeText(func(room []byte) []byte { return appendNext(room, s.id, resp) })
}

// nextData writes a next message carrying data and nothing else, built
// and framed in place (see wsSocket.writeText).
func (s *wsSub) nextData(data []byte) {
	if s.stopped.Load() {
		return
	}
	_ = s.c.socket.writeText(func(room []byte) []byte { return appendNextData(room, s.id, data) })
}

// dataOnly reports whether resp is data and nothing else, the common case.
func dataOnly(resp *graphql.Response) bool {
	return len(resp.Errors) == 0 && len(resp.Extensions) == 0 && resp.Label == "" && resp.Path == nil && resp.HasNext == nil && len(resp.Data) > 0
}

// appendNext appends the next message for id carrying resp to b. The
// common case — data and nothing else — is put together around gqlgen's
// already compact JSON: encoding it with encoding/json would compact it
// twice more (the response, then the message), which at thousands of
// subscribers is a good part of a fan-out.
func appendNext(b []byte, id string, resp *graphql.Response) []byte {
	if dataOnly(resp) {
		return appendNextData(b, id, resp.Data)
	}
	payload, _ := json.Marshal(resp)
	m, _ := json.Marshal(wsMessage{ID: id, Type: "next", Payload: payload})
	return append(b, m...)
}

// appendNextData appends the next message for id carrying data to b.
func appendNextData(b []byte, id string, data []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonquote.Append(b, id)
	b = append(b, `,"type":"next","payload":{"data":`...)
	b = append(b, data...)
	return append(b, "}}"...)
}

func (s *wsSub) complete() {
	if s.stopped.Load() || s.c.ctx.Err() != nil {
		return
	}
	s.c.send(wsMessage{ID: s.id, Type: "complete"})
}

func (s *wsSub) sendErrors(errs gqlerror.List) {
	b, err := json.Marshal(errs)
	if err != nil {
		return
	}
	s.c.send(wsMessage{ID: s.id, Type: "error", Payload: b})
}

// streamDriver lets a subscription resolver that reads from an
// events.Feed hand the waking over to the transport (driveFeed).
type streamDriver struct {
	sub      *wsSub
	attached atomic.Bool
}

type streamDriverKey struct{}

// driveFeed makes feed wake the subscription that asked for it, when the
// transport supports it; without it gqlgen reads the channel as usual.
//
// Subscribers of one event with the same renderKey then share one
// rendering of it, so feed's values must depend on nothing but the event
// and what renderKey holds (the operation, its variables, the caller's
// organisation and role): a convert function that keeps state of its own
// per subscription, or reads anything else, must not be driven.
func driveFeed[T any](ctx context.Context, feed *events.Feed[T]) {
	d, _ := ctx.Value(streamDriverKey{}).(*streamDriver)
	if d == nil || !d.attached.CompareAndSwap(false, true) {
		return
	}
	d.sub.skip = feed.Skip
	feed.Notify(d.sub.wake)
}

// renderKey is everything a subscription's rendering of an event depends
// on besides the event: two subscribers with equal keys would write
// byte-identical data for it, so one renders and the other reuses it.
// The document and its variables fix the selection and the arguments;
// the caller's organisation and role fix what the resolvers may read and
// show (every domain service scopes by organisation and checks the role;
// none of them reads differently for two operators alike in both).
type renderKey struct {
	query         string
	operationName string
	variables     string // canonical JSON: encoding/json sorts map keys
	org           uuid.UUID
	role          caller.Role
}

// renderKeyOf is the renderKey of an operation, interned: subscribers
// with equal keys hold one copy of it, and Event.Shared compares and
// hashes a pointer instead of the query text. It is the zero handle when
// the rendering must not be shared (no caller, or variables that do not
// encode).
func renderKeyOf(ctx context.Context, rc *graphql.OperationContext) unique.Handle[renderKey] {
	p := caller.From(ctx)
	if p == nil {
		return unique.Handle[renderKey]{}
	}
	vars, err := json.Marshal(rc.Variables)
	if err != nil {
		return unique.Handle[renderKey]{}
	}
	return unique.Make(renderKey{query: rc.RawQuery, operationName: rc.OperationName, variables: string(vars), org: p.OrgID, role: p.Role})
}

// Websockets holds a server's subscription connections: it pings them,
// and closes them when the server shuts down.
type Websockets struct {
	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	closing bool
	ticking bool
	open    sync.WaitGroup
}

// NewWebsockets returns a registry to pass in Options.
func NewWebsockets() *Websockets { return &Websockets{conns: map[*wsConn]struct{}{}} }

func (w *Websockets) add(c *wsConn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return false
	}
	w.conns[c] = struct{}{}
	w.open.Add(1)
	if !w.ticking && c.t.pingInterval > 0 {
		w.ticking = true
		go w.ping(c.t.pingInterval)
	}
	return true
}

func (w *Websockets) remove(c *wsConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.conns[c]; ok {
		delete(w.conns, c)
		w.open.Done()
	}
}

// ping sends every connection a graphql-transport-ws ping each interval
// and closes those not heard from since the one before; it stops when no
// connection is left.
func (w *Websockets) ping(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		if len(w.conns) == 0 {
			w.ticking = false
			w.mu.Unlock()
			return
		}
		conns := make([]*wsConn, 0, len(w.conns))
		for c := range w.conns {
			conns = append(conns, c)
		}
		w.mu.Unlock()
		for _, c := range conns {
			if !c.acked.Load() {
				continue // the init timeout sees to it
			}
			if !c.alive.Swap(false) {
				go c.close(websocket.StatusPolicyViolation, "no pong")
				continue
			}
			go c.send(wsMessage{Type: "ping"})
		}
	}
}

// CloseAll closes every open subscription connection, and any accepted
// from now on, with 1001 (going away: clients reconnect, through the load
// balancer, to another replica), and waits until they are gone or ctx
// ends.
func (w *Websockets) CloseAll(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	conns := make([]*wsConn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	for _, c := range conns {
		go c.close(closeGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { w.open.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// websocketInit authenticates connection_init: an access token (operator)
// or a gateway token in its Authorization (or token) field.
func websocketInit(verify tokenVerifier) wsInitFunc {
	return func(ctx context.Context, payload map[string]any) (context.Context, error) {
		token, _ := payload["Authorization"].(string)
		if token == "" {
			token, _ = payload["authorization"].(string)
		}
		if token == "" {
			token, _ = payload["token"].(string)
		}
		token = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(token), "Bearer "))
		if token == "" {
			return ctx, errors.New("connection_init must carry an Authorization access token")
		}
		p, err := verify(ctx, token)
		if err != nil {
			return ctx, fmt.Errorf("connection_init: %w", err)
		}
		return caller.WithPrincipal(ctx, p), nil
	}
}
