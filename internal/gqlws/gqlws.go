// Package gqlws is the client side of graphql-transport-ws that Lintel's
// own programs share (the import command's progress, the gateway's
// access-list subscription): dial, connection_init with a bearer token,
// subscribe, and read messages while answering the server's pings.
package gqlws

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Subprotocol is the protocol's WebSocket subprotocol.
const Subprotocol = "graphql-transport-ws"

// writeTimeout bounds every message sent.
const writeTimeout = 10 * time.Second

// Message is one protocol message.
type Message struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// Conn is an acknowledged connection.
type Conn struct {
	ws *websocket.Conn
}

// Dial connects to url (ws:// or wss://), sends connection_init with
// token and waits up to ackTimeout for connection_ack. httpClient may be
// nil.
func Dial(ctx context.Context, url string, httpClient *http.Client, token string, ackTimeout time.Duration) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: httpClient, Subprotocols: []string{Subprotocol}})
	cancel()
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	c := &Conn{ws: ws}
	if err := c.Send(ctx, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		c.CloseNow()
		return nil, err
	}
	m, err := c.Next(ctx, ackTimeout)
	if err != nil {
		c.CloseNow()
		return nil, fmt.Errorf("waiting for connection_ack: %w", err)
	}
	if m.Type != "connection_ack" {
		c.CloseNow()
		return nil, fmt.Errorf("expected connection_ack, got %s", m.Type)
	}
	return c, nil
}

// Send writes msg as JSON.
func (c *Conn) Send(ctx context.Context, msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

// Subscribe starts operation id.
func (c *Conn) Subscribe(ctx context.Context, id, query string, variables map[string]any) error {
	payload := map[string]any{"query": query}
	if variables != nil {
		payload["variables"] = variables
	}
	return c.Send(ctx, map[string]any{"id": id, "type": "subscribe", "payload": payload})
}

// Next returns the next message other than a ping, which it answers; idle
// is how long it waits for any message (the server pings every 15 s, so
// a longer silence is a dead link).
func (c *Conn) Next(ctx context.Context, idle time.Duration) (Message, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, idle)
		_, b, err := c.ws.Read(rctx)
		cancel()
		if err != nil {
			return Message{}, err
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			return Message{}, fmt.Errorf("subscription message is not JSON: %w", err)
		}
		if m.Type != "ping" {
			return m, nil
		}
		if err := c.Send(ctx, map[string]any{"type": "pong"}); err != nil {
			return Message{}, err
		}
	}
}

// Close closes the connection with code and reason.
func (c *Conn) Close(code websocket.StatusCode, reason string) error { return c.ws.Close(code, reason) }

// CloseNow drops the connection.
func (c *Conn) CloseNow() { _ = c.ws.CloseNow() }
