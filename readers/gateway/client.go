package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/lintel/lintel/internal/gqlws"
)

// client speaks GraphQL to the Lintel server as the gateway: queries and
// mutations over HTTP POST, subscriptions over graphql-transport-ws.
type client struct {
	endpoint string // …/graphql
	token    string
	http     *http.Client
}

func newClient(server, token string) *client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		// HTTP/1.1 only (a custom dialer turns HTTP/2 off): the
		// subscription shares this transport, and a WebSocket upgrade
		// needs HTTP/1.1.
	}
	return &client{endpoint: server + "/graphql", token: token, http: &http.Client{Transport: tr}}
}

// requestTimeout bounds one query; a full sync page of 20,000 records
// takes well under a second on a healthy server.
const requestTimeout = 30 * time.Second

// apiError is an error the server answered with.
type apiError struct {
	Code    string
	Message string
	// Fields are the paths of a VALIDATION_FAILED error, e.g.
	// "events[3].id".
	Fields []string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return "server: " + e.Message
	}
	return fmt.Sprintf("server: %s: %s", e.Code, e.Message)
}

// codeOf returns the server's error code in err, or "".
func codeOf(err error) string {
	var e *apiError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code   string `json:"code"`
			Fields []struct {
				Path string `json:"path"`
			} `json:"fields"`
		} `json:"extensions"`
	} `json:"errors"`
}

// do runs a query or mutation and decodes its data into out.
func (c *client) do(ctx context.Context, query string, vars map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json, application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("server answered %s with %d bytes that are not GraphQL", resp.Status, len(raw))
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		ae := &apiError{Code: e.Extensions.Code, Message: e.Message}
		for _, f := range e.Extensions.Fields {
			ae.Fields = append(ae.Fields, f.Path)
		}
		return ae
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("decoding the server's answer: %w", err)
	}
	return nil
}

// wsIdleTimeout is how long the subscription may stay silent: the server
// pings every 15 s, so three missed pings mean a dead connection that no
// FIN told us about (a cut cable, a NAT that forgot us).
const wsIdleTimeout = 45 * time.Second

// subscribe opens a graphql-transport-ws connection, subscribes to query
// and calls onReady once the subscription is sent and onNext for every
// result, until ctx ends or the connection fails.
func (c *client) subscribe(ctx context.Context, query string, onReady func(), onNext func(data json.RawMessage)) error {
	u := "ws" + strings.TrimPrefix(c.endpoint, "http")
	conn, err := gqlws.Dial(ctx, u, &http.Client{Transport: c.http.Transport}, c.token, 10*time.Second)
	if err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	defer conn.CloseNow()
	if err := conn.Subscribe(ctx, "1", query, nil); err != nil {
		return err
	}
	onReady()
	for {
		m, err := conn.Next(ctx, wsIdleTimeout)
		if err != nil {
			if ctx.Err() != nil {
				_ = conn.Close(websocket.StatusNormalClosure, "gateway stopping")
				return ctx.Err()
			}
			return err
		}
		switch m.Type {
		case "next":
			var r gqlResponse
			if err := json.Unmarshal(m.Payload, &r); err == nil && len(r.Errors) > 0 {
				e := r.Errors[0]
				return &apiError{Code: e.Extensions.Code, Message: e.Message}
			}
			onNext(r.Data)
		case "error":
			return fmt.Errorf("subscription refused: %s", m.Payload)
		case "complete":
			return errors.New("the server completed the subscription")
		}
	}
}

// eventIndex matches the event a validation error names.
var eventIndex = regexp.MustCompile(`^events\[(\d+)\]`)

// firstBadEvent returns the lowest event index a VALIDATION_FAILED error
// names, or -1.
func firstBadEvent(err error) int {
	var e *apiError
	if !errors.As(err, &e) || e.Code != "VALIDATION_FAILED" {
		return -1
	}
	first := -1
	for _, f := range e.Fields {
		if m := eventIndex.FindStringSubmatch(f); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && (first < 0 || i < first) {
				first = i
			}
		}
	}
	return first
}
