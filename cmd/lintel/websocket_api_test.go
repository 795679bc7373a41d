package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

// TestWebSocketProtocol covers graphql-transport-ws as our transport
// speaks it: the order of messages, the client's complete, queries over
// the socket, and the close codes of protocol mistakes.
func TestWebSocketProtocol(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	acme := s.org("Acme")
	admin := s.operator(acme, "admin@acme.test", caller.RoleAdmin)
	tid := admin.createTemplate(staffTemplate)

	dial := func(t *testing.T) *websocket.Conn {
		conn, _, err := wsDial(t, s.URL, "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.CloseNow() })
		return conn
	}
	initialised := func(t *testing.T) *websocket.Conn {
		conn := dial(t)
		wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + admin.Token}})
		ack, err := wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "connection_ack", ack["type"])
		return conn
	}
	watch := func(id string) map[string]any {
		return map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{
			"query":     `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId } }`,
			"variables": map[string]any{"t": tid},
		}}
	}
	closedWith := func(t *testing.T, conn *websocket.Conn, code websocket.StatusCode) {
		t.Helper()
		msg, err := wsRead(t, conn, 5*time.Second)
		require.Error(t, err, "expected a close, got %v", msg)
		require.Equal(t, code, websocket.CloseStatus(err), "err: %v", err)
	}

	t.Run("two subscriptions on one connection each get the change; after complete, one no longer does", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, watch("a"))
		wsSend(t, conn, watch("b"))
		time.Sleep(200 * time.Millisecond) // let both register
		rid := admin.addRecord(tid, "2001", "two@acme.test", "Two")
		got := map[string]string{}
		for range 2 {
			msg, err := wsRead(t, conn, 5*time.Second)
			require.NoError(t, err)
			require.Equal(t, "next", msg["type"], "message: %v", msg)
			got[msg["id"].(string)] = msg["payload"].(map[string]any)["data"].(map[string]any)["recordChanged"].(map[string]any)["recordId"].(string)
		}
		require.Equal(t, map[string]string{"a": rid, "b": rid}, got)

		wsSend(t, conn, map[string]any{"id": "a", "type": "complete"})
		time.Sleep(200 * time.Millisecond)
		admin.do(`mutation($id: ID!) { suspendRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
		msg, err := wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "b", msg["id"], "only the subscription still open hears of it: %v", msg)
		msg, err = wsRead(t, conn, 500*time.Millisecond)
		require.Error(t, err, "nothing more, not even a complete for a: %v", msg)
	})
	t.Run("a query over the socket gets next, then complete", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, map[string]any{"id": "q", "type": "subscribe", "payload": map[string]any{"query": `{ me { email } }`}})
		msg, err := wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "next", msg["type"])
		require.Equal(t, "admin@acme.test", msg["payload"].(map[string]any)["data"].(map[string]any)["me"].(map[string]any)["email"])
		msg, err = wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"id": "q", "type": "complete"}, msg)
	})
	t.Run("an invalid query is an error message with the problem, and the connection stays", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, map[string]any{"id": "bad", "type": "subscribe", "payload": map[string]any{"query": `subscription { noSuchField }`}})
		msg, err := wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "error", msg["type"], "message: %v", msg)
		require.Contains(t, msg["payload"].([]any)[0].(map[string]any)["message"], "noSuchField")
		wsSend(t, conn, map[string]any{"type": "ping"})
		msg, err = wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "pong", msg["type"])
	})
	t.Run("a subscription refused by its resolver is one error, then complete", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, map[string]any{"id": "nf", "type": "subscribe", "payload": map[string]any{
			"query":     `subscription($t: ID!) { recordChanged(templateId: $t) { kind } }`,
			"variables": map[string]any{"t": "00000000-0000-0000-0000-000000000001"},
		}})
		msg, err := wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "next", msg["type"], "message: %v", msg)
		require.Contains(t, fmt.Sprint(msg["payload"]), "code:NOT_FOUND")
		msg, err = wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"id": "nf", "type": "complete"}, msg)
		msg, err = wsRead(t, conn, 300*time.Millisecond)
		require.Error(t, err, "and nothing more: %v", msg)
	})
	t.Run("subscribe before connection_init closes with 4401", func(t *testing.T) {
		conn := dial(t)
		wsSend(t, conn, watch("a"))
		closedWith(t, conn, 4401)
	})
	t.Run("a second subscription with the same id closes with 4409", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, watch("same"))
		wsSend(t, conn, watch("same"))
		closedWith(t, conn, 4409)
	})
	t.Run("a second connection_init closes with 4429", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + admin.Token}})
		closedWith(t, conn, 4429)
	})
	t.Run("a message that is not graphql-transport-ws closes with 4400", func(t *testing.T) {
		conn := initialised(t)
		wsSend(t, conn, map[string]any{"type": "start", "id": "1"})
		closedWith(t, conn, 4400)
	})
	t.Run("a socket without the subprotocol is refused with 4406", func(t *testing.T) {
		ctx := t.Context()
		conn, _, err := websocket.Dial(ctx, "ws"+s.URL[len("http"):]+"/graphql", nil)
		require.NoError(t, err)
		defer conn.CloseNow()
		_, _, err = conn.Read(ctx)
		require.Equal(t, websocket.StatusCode(4406), websocket.CloseStatus(err), "err: %v", err)
	})
}

// TestSubscribersOfOneEventEachGetTheirOwnResult covers the fan-out's
// shared rendering (subscribers of one event with the same operation,
// variables, organisation and role share one rendering of it) as a client
// sees it: the same query gives the same data under each subscriber's own
// id, another selection or another role its own data, another
// organisation nothing of it, and every subscriber gets every change in
// order.
func TestSubscribersOfOneEventEachGetTheirOwnResult(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	acme := s.org("Acme")
	admin := s.operator(acme, "admin@acme.test", caller.RoleAdmin)
	viewer := s.operator(acme, "viewer@acme.test", caller.RoleViewer)
	globex := s.operator(s.org("Globex"), "admin@globex.test", caller.RoleAdmin)
	tid := admin.createTemplate(staffTemplate)
	globexTid := globex.createTemplate(staffTemplate)

	const ids = `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId } }`
	const aliased = `subscription($t: ID!) { recordChanged(templateId: $t) { id: recordId record { cardId status } } }`
	subscribe := func(t *testing.T, token, id, query, templateID string) *websocket.Conn {
		return wsSubscribe(t, s.URL, token, id, query, map[string]any{"t": templateID})
	}
	// next reads n next messages and returns their ids and data.
	next := func(t *testing.T, conn *websocket.Conn, n int) (gotIDs []string, data []any) {
		t.Helper()
		for range n {
			msg, err := wsRead(t, conn, 5*time.Second)
			require.NoError(t, err)
			require.Equal(t, "next", msg["type"], "message: %v", msg)
			payload := msg["payload"].(map[string]any)
			require.Nil(t, payload["errors"], "message: %v", msg)
			gotIDs = append(gotIDs, msg["id"].(string))
			data = append(data, payload["data"].(map[string]any)["recordChanged"])
		}
		return gotIDs, data
	}
	nothingMore := func(t *testing.T, conn *websocket.Conn) {
		t.Helper()
		msg, err := wsRead(t, conn, 300*time.Millisecond)
		require.Error(t, err, "nothing more, got %v", msg)
	}

	first := subscribe(t, admin.Token, "first", ids, tid)
	second := subscribe(t, admin.Token, "second", ids, tid)
	third := subscribe(t, admin.Token, "third", ids, tid)
	other := subscribe(t, admin.Token, "other", aliased, tid)
	asViewer := subscribe(t, viewer.Token, "viewer", ids, tid)
	elsewhere := subscribe(t, globex.Token, "elsewhere", ids, globexTid)
	time.Sleep(300 * time.Millisecond) // let all of them register

	var rids []string
	for i := range 4 {
		rids = append(rids, admin.addRecord(tid, fmt.Sprint(3001+i), fmt.Sprintf("p%d@acme.test", i), "P"))
	}
	want := make([]any, len(rids))
	wantAliased := make([]any, len(rids))
	for i, rid := range rids {
		want[i] = map[string]any{"kind": "CREATED", "recordId": rid}
		wantAliased[i] = map[string]any{"id": rid, "record": map[string]any{"cardId": fmt.Sprint(3001 + i), "status": "ACTIVE"}}
	}
	for _, c := range []struct {
		conn *websocket.Conn
		id   string
		want []any
	}{{first, "first", want}, {second, "second", want}, {third, "third", want}, {other, "other", wantAliased}, {asViewer, "viewer", want}} {
		gotIDs, data := next(t, c.conn, len(rids))
		require.Equal(t, []string{c.id, c.id, c.id, c.id}, gotIDs, "each subscriber's messages carry its own id")
		require.Equal(t, c.want, data, "%s: every change, in order, as its own query selects it", c.id)
	}

	// Globex's subscriber hears of Globex's change first: of Acme's, nothing.
	rid := globex.addRecord(globexTid, "9001", "g@globex.test", "G")
	gotIDs, data := next(t, elsewhere, 1)
	require.Equal(t, []string{"elsewhere"}, gotIDs)
	require.Equal(t, []any{map[string]any{"kind": "CREATED", "recordId": rid}}, data)
	// A read that times out closes the connection: these come last.
	for _, conn := range []*websocket.Conn{first, second, third, other, asViewer, elsewhere} {
		nothingMore(t, conn)
	}
}
