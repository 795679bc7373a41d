package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/caller"
)

func TestHostileRequestsAreRefusedWithSpecificErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, map[string]string{"LINTEL_MAX_QUERY_DEPTH": "4", "LINTEL_MAX_BODY": "64KiB", "LINTEL_MAX_QUERY_COMPLEXITY": "1000"})
	c := s.operator(s.org("Acme"), "admin@acme.test", caller.RoleAdmin)
	tid := c.createTemplate(staffTemplate)

	t.Run("a query nested deeper than the limit", func(t *testing.T) {
		res := c.do(`query($t: ID!) { records(templateId: $t) { edges { node { template { fields { key } } } } } }`, vars{"t": tid})
		e := res.requireCode(t, "QUERY_TOO_DEEP")
		require.Contains(t, e.Message, "at most 4")
	})
	t.Run("a query costing more than the complexity limit", func(t *testing.T) {
		// 500 records × 3 fields each costs 1501; 300 costs 901.
		c.do(`query($t: ID!) { records(templateId: $t, first: 500) { edges { node { cardId } } } }`, vars{"t": tid}).requireCode(t, "COMPLEXITY_LIMIT_EXCEEDED")
		c.do(`query($t: ID!) { records(templateId: $t, first: 300) { edges { node { cardId } } } }`, vars{"t": tid}).requireOK(t)
	})
	t.Run("a body over the limit gets 413", func(t *testing.T) {
		big := `{"query":"{ me { email } }","variables":{"pad":"` + strings.Repeat("x", 100<<10) + `"}}`
		req, _ := http.NewRequest(http.MethodPost, c.URL, strings.NewReader(big))
		req.Header.Set("Content-Type", "application/json")
		res := c.post(req)
		require.Equal(t, http.StatusRequestEntityTooLarge, res.Status)
		res.requireCode(t, "PAYLOAD_TOO_LARGE")
	})
	t.Run("a chunked body over the limit is cut off too", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte(`{"query":"{ me { email } }","variables":{"pad":"`))
			for range 200 {
				if _, err := pw.Write([]byte(strings.Repeat("y", 1024))); err != nil {
					return
				}
			}
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, c.URL, pr)
		req.Header.Set("Content-Type", "application/json")
		res := c.post(req)
		require.Equal(t, http.StatusRequestEntityTooLarge, res.Status)
		res.requireCode(t, "PAYLOAD_TOO_LARGE")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, c.URL, strings.NewReader(`{"query": "{ me`))
		req.Header.Set("Content-Type", "application/json")
		res := c.post(req)
		require.Equal(t, http.StatusBadRequest, res.Status)
		require.NotEmpty(t, res.Errors)
	})
	t.Run("a syntax error names its location", func(t *testing.T) {
		res := c.do(`{ me { email }`, nil)
		e := res.requireCode(t, "GRAPHQL_PARSE_FAILED")
		require.NotEmpty(t, e.Message)
	})
	t.Run("an unknown field is a validation error", func(t *testing.T) {
		c.do(`{ me { password } }`, nil).requireCode(t, "GRAPHQL_VALIDATION_FAILED")
	})
	t.Run("a malformed ID is NOT_FOUND naming the argument", func(t *testing.T) {
		e := c.do(`mutation { suspendRecord(id: "../../etc/passwd") { id } }`, nil).requireCode(t, "NOT_FOUND")
		require.Contains(t, e.Message, "id")
	})
}

func TestAnAliasBombIsRefusedByComplexity(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	c := s.operator(s.org("Acme"), "viewer@acme.test", caller.RoleViewer)
	var b strings.Builder
	b.WriteString("{")
	for i := range 3000 {
		fmt.Fprintf(&b, " a%d: templates { id name description fields { key label type required side options maxLength } }", i)
	}
	b.WriteString("}")
	c.do(b.String(), nil).requireCode(t, "COMPLEXITY_LIMIT_EXCEEDED")
}

func TestGraphQLOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	c := s.operator(s.org("Acme"), "viewer@acme.test", caller.RoleViewer)

	get := func(query string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, c.URL+"?query="+url.QueryEscape(query), nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Accept", "application/graphql-response+json")
		resp, err := c.http.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp, body
	}
	t.Run("a query over GET answers with application/graphql-response+json", func(t *testing.T) {
		resp, body := get(`{ me { email } }`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/graphql-response+json")
		require.Equal(t, "viewer@acme.test", body["data"].(map[string]any)["me"].(map[string]any)["email"])
	})
	t.Run("a mutation over GET is refused", func(t *testing.T) {
		resp, body := get(`mutation { logout(refreshToken: "x") }`)
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
		require.NotEmpty(t, body["errors"])
	})
	t.Run("POST answers with application/graphql-response+json", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, c.URL, strings.NewReader(`{"query":"{ me { email } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := c.http.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Contains(t, resp.Header.Get("Content-Type"), "application/graphql-response+json")
	})
	t.Run("introspection is on with the default (auto) only for the embedded database", func(t *testing.T) {
		// The test server uses DATABASE_URL, so auto means off.
		c.do(`{ __schema { types { name } } }`, nil).requireCode(t, "GRAPHQL_VALIDATION_FAILED")
	})
}

func TestIntrospectionWhenEnabled(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, map[string]string{"LINTEL_INTROSPECTION": "on"})
	c := s.operator(s.org("Acme"), "viewer@acme.test", caller.RoleViewer)
	res := c.do(`{ __type(name: "CardRecord") { description fields { name description } } }`, nil).requireOK(t)
	require.NotEmpty(t, res.str("__type.description"))
	for _, f := range res.get("__type.fields").([]any) {
		require.NotEmpty(t, f.(map[string]any)["description"], "field %v has a description", f.(map[string]any)["name"])
	}
}

// wsDial opens a graphql-transport-ws connection with the given Origin.
func wsDial(t *testing.T, base, origin string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h,
	})
}

func wsSend(t *testing.T, conn *websocket.Conn, msg any) {
	t.Helper()
	b, _ := json.Marshal(msg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, b))
}

// wsRead reads the next message that is not a ping, answering pings.
// wsSubscribe opens a graphql-transport-ws connection to base as the
// holder of token, waits for the ack, and subscribes with query and
// variables under id; the connection is closed when t ends.
func wsSubscribe(t *testing.T, base, token, id, query string, variables map[string]any) *websocket.Conn {
	t.Helper()
	conn, _, err := wsDial(t, base, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseNow() })
	wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	ack, err := wsRead(t, conn, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "connection_ack", ack["type"])
	wsSend(t, conn, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": variables}})
	return conn
}

func wsRead(t *testing.T, conn *websocket.Conn, timeout time.Duration) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		if m["type"] == "ping" {
			wsSend(t, conn, map[string]any{"type": "pong"})
			continue
		}
		return m, nil
	}
}

func TestSubscriptions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, map[string]string{"LINTEL_ALLOWED_ORIGINS": "console.example.com"})
	acme := s.org("Acme")
	admin := s.operator(acme, "admin@acme.test", caller.RoleAdmin)
	viewer := s.operator(acme, "viewer@acme.test", caller.RoleViewer)
	other := s.operator(s.org("Other"), "admin@other.test", caller.RoleAdmin)
	tid := admin.createTemplate(staffTemplate)

	subscribe := func(t *testing.T, token, templateID string) *websocket.Conn {
		return wsSubscribe(t, s.URL, token, "1", `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId record { cardId version status } } }`,
			map[string]any{"t": templateID})
	}

	t.Run("a viewer sees every change to the template's records in order", func(t *testing.T) {
		conn := subscribe(t, viewer.Token, tid)
		time.Sleep(200 * time.Millisecond) // let the subscription register
		next := func(kind, status, rid string) {
			t.Helper()
			msg, err := wsRead(t, conn, 5*time.Second)
			require.NoError(t, err)
			require.Equal(t, "next", msg["type"], "message: %v", msg)
			change := msg["payload"].(map[string]any)["data"].(map[string]any)["recordChanged"].(map[string]any)
			require.Equal(t, kind, change["kind"])
			require.Equal(t, rid, change["recordId"])
			// The record is loaded when the event is delivered: its state now.
			require.Equal(t, status, change["record"].(map[string]any)["status"])
		}
		rid := admin.addRecord(tid, "1001", "sub@acme.test", "Sub")
		next("CREATED", "ACTIVE", rid)
		admin.do(`mutation($id: ID!) { suspendRecord(id: $id) { id } }`, vars{"id": rid}).requireOK(t)
		next("UPDATED", "SUSPENDED", rid)
	})
	t.Run("another organisation's template cannot be watched", func(t *testing.T) {
		conn := subscribe(t, other.Token, tid)
		msg, err := wsRead(t, conn, 5*time.Second)
		require.NoError(t, err)
		require.Contains(t, []string{"error", "next"}, msg["type"], "message: %v", msg)
		require.Contains(t, fmt.Sprint(msg["payload"]), "code:NOT_FOUND")
		require.NotContains(t, fmt.Sprint(msg["payload"]), "recordId")
	})
	t.Run("a bad token in connection_init closes the socket with 4403", func(t *testing.T) {
		conn, _, err := wsDial(t, s.URL, "")
		require.NoError(t, err)
		defer conn.CloseNow()
		wsSend(t, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer forged"}})
		_, err = wsRead(t, conn, 5*time.Second)
		require.Error(t, err)
		require.Equal(t, websocket.StatusCode(4403), websocket.CloseStatus(err), "err: %v", err)
	})
	t.Run("a page from a foreign origin cannot open a socket", func(t *testing.T) {
		_, resp, err := wsDial(t, s.URL, "https://evil.example.net")
		require.Error(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("a console on an allowed origin can", func(t *testing.T) {
		conn, _, err := wsDial(t, s.URL, "https://console.example.com")
		require.NoError(t, err)
		conn.CloseNow()
	})
}
