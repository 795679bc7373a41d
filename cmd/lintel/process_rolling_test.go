package main

// A rolling restart behind a load balancer: three replicas on one database
// are restarted one by one (SIGTERM, SIGTERM, then SIGKILL) while clients
// query, a writer changes a record, an import runs, and subscribers follow
// both over graphql-transport-ws.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/testdb"
)

// rollingLB is the test's load balancer. Like an L7 proxy it polls every
// replica's /readyz and sends each request to the next replica its checks
// last saw ready; a connection error also takes a replica out (passive
// health checking) until a check begun after that error sees it ready.
type rollingLB struct {
	bases []string

	mu     sync.Mutex
	ready  []bool
	downAt []time.Time
	gen    []int // which process of the replica: 0, then 1 after a restart
	next   int
}

func newRollingLB(bases []string) *rollingLB {
	n := len(bases)
	return &rollingLB{bases: bases, ready: make([]bool, n), downAt: make([]time.Time, n), gen: make([]int, n)}
}

// pick returns the next ready replica and its generation.
func (lb *rollingLB) pick() (replica, gen int, ok bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for k := range lb.bases {
		i := (lb.next + k) % len(lb.bases)
		if lb.ready[i] {
			lb.next = i + 1
			return i, lb.gen[i], true
		}
	}
	return 0, 0, false
}

func (lb *rollingLB) markDown(i int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.ready[i], lb.downAt[i] = false, time.Now()
}

func (lb *rollingLB) report(i int, started time.Time, ok bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if ok && started.Before(lb.downAt[i]) {
		return // a check older than the connection error that took it out
	}
	lb.ready[i] = ok
}

func (lb *rollingLB) isReady(i int) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.ready[i]
}

func (lb *rollingLB) generation(i int) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.gen[i]
}

func (lb *rollingLB) restarted(i int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.gen[i]++
}

// check polls replica i's /readyz every 50 ms until ctx ends.
func (lb *rollingLB) check(ctx context.Context, i int) {
	client := &http.Client{Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		start := time.Now()
		ok := false
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lb.bases[i]+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		lb.report(i, start, ok)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rollingAttempt is one request sent through the load balancer.
type rollingAttempt struct {
	client       int
	replica, gen int
	start, end   time.Time
	err          string // empty when it succeeded
	connection   bool   // err is a connection error (no HTTP response)
}

// rollingTraffic sends requests through the load balancer and keeps every
// attempt.
type rollingTraffic struct {
	lb    *rollingLB
	token string
	http  *http.Client

	mu       sync.Mutex
	attempts []rollingAttempt
}

// do sends one GraphQL request to the next ready replica (waiting for one
// while none is) and reports whether it succeeded without errors.
func (tr *rollingTraffic) do(client int, query string, variables vars) (*gqlResponse, bool) {
	res, a := tr.attempt(client, query, variables)
	return res, a.err == ""
}

func (tr *rollingTraffic) attempt(client int, query string, variables vars) (*gqlResponse, rollingAttempt) {
	i, gen, ok := tr.lb.pick()
	for wait := time.Now(); !ok; i, gen, ok = tr.lb.pick() {
		if time.Since(wait) > time.Minute {
			return nil, rollingAttempt{client: client, replica: -1, err: "no replica ready for a minute"}
		}
		time.Sleep(10 * time.Millisecond)
	}
	a := rollingAttempt{client: client, replica: i, gen: gen, start: time.Now()}
	res, err := tr.send(tr.lb.bases[i], query, variables)
	a.end = time.Now()
	if err != nil {
		a.err, a.connection = err.Error(), true
		tr.lb.markDown(i)
	} else if res.Status != http.StatusOK || len(res.Errors) > 0 {
		a.err = fmt.Sprintf("HTTP %d: %s", res.Status, res.Raw)
	}
	tr.mu.Lock()
	tr.attempts = append(tr.attempts, a)
	tr.mu.Unlock()
	return res, a
}

func (tr *rollingTraffic) send(base, query string, variables vars) (*gqlResponse, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tr.token)
	resp, err := tr.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &gqlResponse{Status: resp.StatusCode, Raw: string(b)}
	if err := json.Unmarshal(b, out); err != nil {
		out.Errors = append(out.Errors, gqlError{Message: "undecodable response: " + err.Error()})
	}
	return out, nil
}

// must runs a request of the test itself, which must succeed.
func (tr *rollingTraffic) must(t *testing.T, query string, variables vars) *gqlResponse {
	t.Helper()
	res, a := tr.attempt(-1, query, variables)
	require.Empty(t, a.err, "%s", query)
	return res
}

func (tr *rollingTraffic) snapshot() []rollingAttempt {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]rollingAttempt(nil), tr.attempts...)
}

// rollingConn is one subscriber connection and what arrived on it.
type rollingConn struct {
	replica, gen int
	subscribedAt time.Time // when the subscribe messages went out
	msgs         map[string][]map[string]any
	firstAt      map[string]time.Time
	protocol     []string // error or complete messages
	closed       bool
	closedAt     time.Time
	closeCode    websocket.StatusCode
	closeErr     string
	closedByTest bool
}

// rollingSubscriber keeps one set of subscriptions open: when its
// connection closes it reconnects to the next ready replica and subscribes
// again.
type rollingSubscriber struct {
	mu       sync.Mutex
	conns    []*rollingConn
	dialErrs []rollingAttempt
}

func (s *rollingSubscriber) last() *rollingConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		return nil
	}
	return s.conns[len(s.conns)-1]
}

// lastOf returns the last payload of subscription id on c.
func (s *rollingSubscriber) lastOf(c *rollingConn, id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil || len(c.msgs[id]) == 0 {
		return nil
	}
	return c.msgs[id][len(c.msgs[id])-1]
}

const (
	rollingProgressQuery = `subscription($id: ID!) { importProgress(id: $id) { phase outcome processed total counts { create update unchanged invalid } } }`
	rollingChangeQuery   = `subscription($t: ID!) { recordChanged(templateId: $t) { kind recordId record { version field(key: "first_name") } } }`
)

// run connects (first to replica first, then wherever the load balancer
// says) until ctx ends.
func (s *rollingSubscriber) run(ctx context.Context, lb *rollingLB, token string, subs map[string]map[string]any, first int) {
	for ctx.Err() == nil {
		i, gen, ok := first, 0, true
		if first >= 0 {
			gen, first = lb.generation(first), -1
		} else if i, gen, ok = lb.pick(); !ok {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		start := time.Now()
		conn, err := rollingWSConnect(ctx, lb.bases[i], token)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.dialErrs = append(s.dialErrs, rollingAttempt{replica: i, gen: gen, start: start, end: time.Now(), err: err.Error()})
			s.mu.Unlock()
			lb.markDown(i)
			continue
		}
		c := &rollingConn{replica: i, gen: gen, subscribedAt: time.Now(), msgs: map[string][]map[string]any{}, firstAt: map[string]time.Time{}}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.follow(ctx, conn, c, subs)
	}
}

// follow subscribes on conn and records what arrives until it closes.
func (s *rollingSubscriber) follow(ctx context.Context, conn *websocket.Conn, c *rollingConn, subs map[string]map[string]any) {
	defer conn.CloseNow()
	write := func(msg any) error {
		b, _ := json.Marshal(msg)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	var err error
	for id, payload := range subs {
		if err = write(map[string]any{"id": id, "type": "subscribe", "payload": payload}); err != nil {
			break
		}
	}
	for err == nil {
		var b []byte
		if _, b, err = conn.Read(ctx); err != nil {
			break
		}
		var m struct {
			ID      string          `json:"id"`
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(b, &m) != nil {
			s.mu.Lock()
			c.protocol = append(c.protocol, "undecodable: "+string(b))
			s.mu.Unlock()
			continue
		}
		switch m.Type {
		case "ping":
			err = write(map[string]any{"type": "pong"})
		case "next":
			var p struct {
				Data   map[string]map[string]any `json:"data"`
				Errors []any                     `json:"errors"`
			}
			_ = json.Unmarshal(m.Payload, &p)
			s.mu.Lock()
			if len(p.Errors) > 0 || len(p.Data) != 1 {
				c.protocol = append(c.protocol, string(b))
			}
			for _, v := range p.Data {
				if len(c.msgs[m.ID]) == 0 {
					c.firstAt[m.ID] = time.Now()
				}
				c.msgs[m.ID] = append(c.msgs[m.ID], v)
			}
			s.mu.Unlock()
		default: // error, complete: the subscription ended on a live connection
			s.mu.Lock()
			c.protocol = append(c.protocol, string(b))
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	c.closed, c.closedAt, c.closeCode, c.closeErr, c.closedByTest = true, time.Now(), websocket.CloseStatus(err), err.Error(), ctx.Err() != nil
	s.mu.Unlock()
}

// rollingWSConnect opens a graphql-transport-ws connection and waits for
// its acknowledgement.
func rollingWSConnect(ctx context.Context, base, token string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, strings.Replace(base, "http://", "ws://", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
	})
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	if err := conn.Write(dctx, websocket.MessageText, b); err != nil {
		conn.CloseNow()
		return nil, err
	}
	_, b, err = conn.Read(dctx)
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	var ack struct{ Type string }
	if json.Unmarshal(b, &ack) != nil || ack.Type != "connection_ack" {
		conn.CloseNow()
		return nil, fmt.Errorf("expected connection_ack, got %s", b)
	}
	return conn, nil
}

// rollingPhaseRank orders import progress: phase first, then rows read.
func rollingPhaseRank(p map[string]any) float64 {
	order := map[any]int{nil: 0, "QUEUED": 1, "PARSING": 2, "VALIDATING": 3, "APPLYING": 4, "NOTIFYING": 5, "DONE": 6}
	rank, ok := order[p["phase"]]
	if !ok {
		rank = -1
	}
	processed, _ := p["processed"].(float64)
	return float64(rank)*1e9 + processed
}

func TestProcessRollingRestartLosesNoRequestAndSubscribersCatchUp(t *testing.T) {
	t.Parallel()
	testStart := time.Now()
	// A drain well above the load balancer's 50 ms checks; a grace that
	// lets an import running on a stopping replica finish there.
	env := map[string]string{"DATABASE_URL": testdb.URL(t), "LINTEL_SHUTDOWN_DRAIN": "2s", "LINTEL_SHUTDOWN_GRACE": "30s"}
	names := []string{"replica A", "replica B", "replica C"}
	reps := make([]*procServer, len(names))
	for i := range reps {
		reps[i] = procStart(t, names[i], env)
	}
	bases := make([]string, len(reps))
	for i, p := range reps {
		p.waitServing()
		procWaitReady(t, p)
		bases[i] = p.Base
	}
	const pw = "rolling restart password"
	procMustRun(t, env, "operator", "create", "--email", "admin@acme.test", "--role", "ADMIN", "--org", "Acme", "--password", pw)
	admin := reps[0].login("admin@acme.test", pw)
	members := admin.createTemplate(importTemplate) // imported into
	staff := admin.createTemplate(staffTemplate)    // the writer's record (imports lock their template)
	rid := admin.addRecord(staff, "1", "watched@acme.test", "v0")
	const rows = 1500
	var importIDs [3]string
	for k := range importIDs {
		importIDs[k] = admin.createImport(members, fmt.Sprintf("i%d.csv", k+1), bigImportFile(rows, fmt.Sprintf("I%d", k+1)), nil).
			requireOK(t).str("createImport.id")
	}

	lb := newRollingLB(bases)
	tr := &rollingTraffic{lb: lb, token: admin.Token, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: time.Minute}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var background sync.WaitGroup
	for i := range bases {
		background.Go(func() { lb.check(ctx, i) })
	}
	for i := range bases {
		require.Eventually(t, func() bool { return lb.isReady(i) }, 30*time.Second, 20*time.Millisecond, "%s ready", names[i])
	}

	// Two subscribers per replica, each following the three imports and
	// the writer's template on one connection.
	subs := map[string]map[string]any{"r": {"query": rollingChangeQuery, "variables": vars{"t": staff}}}
	for k, id := range importIDs {
		subs[fmt.Sprintf("i%d", k+1)] = map[string]any{"query": rollingProgressQuery, "variables": vars{"id": id}}
	}
	subscribers := make([]*rollingSubscriber, 2*len(reps))
	for n := range subscribers {
		s := &rollingSubscriber{}
		subscribers[n] = s
		background.Go(func() { s.run(ctx, lb, admin.Token, subs, n%len(reps)) })
	}
	require.Eventually(t, func() bool {
		for _, s := range subscribers {
			c := s.last()
			for _, id := range []string{"i1", "i2", "i3"} {
				if s.lastOf(c, id) == nil {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every subscriber has the imports' current state")

	// Eight clients reading, and a writer changing the record, all through
	// the load balancer until stopped.
	var stopTraffic atomic.Bool
	defer stopTraffic.Store(true) // should the test end early
	var traffic sync.WaitGroup
	for c := range 8 {
		traffic.Go(func() {
			for !stopTraffic.Load() {
				tr.do(c, `query($t: ID!) { me { email } records(templateId: $t, first: 5) { edges { node { id version } } } }`, vars{"t": staff})
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	const writer = 8
	const updateMutation = `mutation($id: ID!, $v: Int!, $name: String!) { updateRecord(id: $id, version: $v, input: {fields: [{key: "first_name", value: $name}]}) { version } }`
	const recordQuery = `query($id: ID!) { record(id: $id) { version field(key: "first_name") } }`
	var written atomic.Int64
	traffic.Go(func() {
		version := 1
		for n := 1; !stopTraffic.Load(); n++ {
			if res, ok := tr.do(writer, updateMutation, vars{"id": rid, "v": version, "name": fmt.Sprintf("v%d", n)}); ok {
				version = res.num("updateRecord.version")
				written.Add(1)
			} else {
				// Lost with a killed replica, perhaps after its commit:
				// read the version again.
				for !stopTraffic.Load() {
					if res, ok := tr.do(writer, recordQuery, vars{"id": rid}); ok {
						version = res.num("record.version")
						break
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	var startCalledAt, doneSeenAt [3]time.Time
	var final [3]map[string]any
	startImport := func(k int) {
		t.Helper()
		startCalledAt[k] = time.Now()
		tr.must(t, `mutation($id: ID!) { startImport(id: $id) { id } }`, vars{"id": importIDs[k]})
	}
	waitImport := func(k int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			res := tr.must(t, `query($id: ID!) { import(id: $id) { phase outcome processed total counts { create update unchanged invalid } } }`, vars{"id": importIDs[k]})
			if o := res.str("import.outcome"); o != "" && o != "RUNNING" {
				require.Equal(t, "SUCCEEDED", o, res.Raw)
				doneSeenAt[k], final[k] = time.Now(), res.get("import").(map[string]any)
				return
			}
			require.True(t, time.Now().Before(deadline), "import %d did not finish: %s", k+1, res.Raw)
			time.Sleep(100 * time.Millisecond)
		}
	}

	// restart stops replica i with sig, waits for the process to exit and
	// starts it again on the same port.
	var sigAt, backAt [3]time.Time
	restart := func(i int, sig syscall.Signal) {
		t.Helper()
		old := reps[i]
		sigAt[i] = time.Now()
		old.signal(sig)
		if sig == syscall.SIGTERM {
			// Draining: /readyz refuses at once, requests are still answered.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				resp, body := procGet(t, old.Base+"/readyz", nil)
				if resp.StatusCode == http.StatusServiceUnavailable {
					require.Contains(t, body, "shutting down")
					break
				}
				require.True(t, time.Now().Before(deadline), "%s: /readyz still %d 5 s after SIGTERM", old.name, resp.StatusCode)
			}
			direct := &gqlClient{t: t, URL: old.Base + "/graphql", http: http.DefaultClient, Token: admin.Token}
			require.Equal(t, "admin@acme.test", direct.do(`{ me { email } }`, nil).requireOK(t).str("me.email"), "a draining replica still answers")
			require.Equal(t, 0, old.wait(60*time.Second), "%s: exit code after SIGTERM", old.name)
		} else {
			require.Equal(t, -1, old.wait(10*time.Second), "%s: killed", old.name)
		}
		lb.restarted(i)
		reps[i] = procStartAt(t, old.name, old.addr, env)
		reps[i].waitServing()
		require.Eventually(t, func() bool { return lb.isReady(i) }, 30*time.Second, 20*time.Millisecond, "%s ready again", old.name)
		backAt[i] = time.Now()
	}

	// A and B restart gracefully while an import runs (maybe on them);
	// C is killed.
	startImport(0)
	restart(0, syscall.SIGTERM)
	waitImport(0)
	startImport(1)
	restart(1, syscall.SIGTERM)
	waitImport(1)
	restart(2, syscall.SIGKILL)
	// A last import, and a last change, that every subscriber must hear
	// on the connection it ended up with.
	startImport(2)
	waitImport(2)
	stopTraffic.Store(true)
	traffic.Wait()
	current := tr.must(t, recordQuery, vars{"id": rid})
	last := tr.must(t, updateMutation, vars{"id": rid, "v": current.num("record.version"), "name": "final"})
	finalVersion := float64(last.num("updateRecord.version"))
	require.Eventually(t, func() bool {
		for _, s := range subscribers {
			c := s.last()
			if r := s.lastOf(c, "r"); r == nil || fmt.Sprint(r["record"]) != fmt.Sprint(map[string]any{"version": finalVersion, "field": "final"}) {
				return false
			}
			if p := s.lastOf(c, "i3"); p == nil || p["phase"] != "DONE" {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every subscriber hears the last import end and the last change")
	cancel()
	background.Wait()
	// Stop the replicas together (each drains 2 s).
	for _, p := range reps {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range reps {
		require.Equal(t, 0, p.wait(60*time.Second), "%s: exit code", p.name)
	}

	// --- Requests: none failed but those on C when it was killed.
	attempts := tr.snapshot()
	failedBy := map[int]int{}
	for _, a := range attempts {
		if a.err == "" {
			continue
		}
		failedBy[a.client]++
		require.NotEqual(t, -1, a.replica, a.err)
		// (A pick between the kill and the next check may already count
		// the replacement process, which is not listening yet.)
		require.True(t, a.replica == 2 && a.connection && !a.end.Before(sigAt[2]) && a.start.Before(backAt[2]),
			"only requests in flight to the killed replica C may fail; client %d's request to %s (process %d), %v–%v after the start, failed: %s",
			a.client, names[a.replica], a.gen, a.start.Sub(testStart), a.end.Sub(testStart), a.err)
		require.Contains(t, a.err, bases[2], "a connection error to C")
	}
	for client, n := range failedBy {
		require.Equal(t, 1, n, "client %d lost more than one request", client)
	}
	okDuring := func(i int) int {
		n := 0
		for _, a := range attempts {
			if a.err == "" && a.start.After(sigAt[i]) && a.end.Before(backAt[i]) {
				n++
			}
		}
		return n
	}
	for i := range reps {
		require.GreaterOrEqual(t, okDuring(i), 10, "requests were answered while %s was out", names[i])
		served := 0
		for _, a := range attempts {
			if a.err == "" && a.replica == i && a.gen == 1 {
				served++
			}
		}
		require.Positive(t, served, "the restarted %s takes traffic again", names[i])
	}
	require.Positive(t, written.Load(), "the writer changed the record")

	// --- Subscribers: closed cleanly by a stopping replica, reconnected,
	// caught up, and still following.
	exactDone := 0
	for n, s := range subscribers {
		s.mu.Lock()
		for _, d := range s.dialErrs {
			require.True(t, d.replica == 2 && !d.end.Before(sigAt[2]) && d.start.Before(backAt[2]),
				"subscriber %d could not connect to %s (process %d): %s", n, names[d.replica], d.gen, d.err)
		}
		require.GreaterOrEqual(t, len(s.conns), 2, "subscriber %d was moved off its replica", n)
		prev := map[string]map[string]any{}
		for j, c := range s.conns {
			where := fmt.Sprintf("subscriber %d, connection %d (%s process %d)", n, j, names[c.replica], c.gen)
			require.Empty(t, c.protocol, "%s: a subscription failed on a live connection", where)
			require.True(t, c.closed, where)
			if j < len(s.conns)-1 {
				require.False(t, c.closedByTest, where)
				require.Equal(t, 0, c.gen, "%s: only a restart closes a connection", where)
				require.False(t, c.closedAt.Before(sigAt[c.replica]), "%s: closed before its replica stopped: %s", where, c.closeErr)
				if c.replica != 2 {
					require.Equal(t, websocket.StatusGoingAway, c.closeCode, "%s: a stopping replica closes with 1001 going away: %s", where, c.closeErr)
				}
			} else {
				require.True(t, c.closedByTest, "%s: the last connection lasts until the end: %s", where, c.closeErr)
			}
			for k := range importIDs {
				id := fmt.Sprintf("i%d", k+1)
				msgs := c.msgs[id]
				if len(msgs) == 0 {
					// Only a connection to C cut by the kill before the
					// first message can have none.
					require.True(t, c.replica == 2 && c.gen == 0 && j < len(s.conns)-1, "%s: no message for import %d", where, k+1)
					continue
				}
				first := msgs[0]
				switch {
				case !doneSeenAt[k].IsZero() && c.subscribedAt.After(doneSeenAt[k]):
					// Subscribed after it ended: the final state first.
					require.Equal(t, final[k], first, "%s: import %d's first message is its final state", where, k+1)
					if j > 0 {
						exactDone++
					}
				case c.firstAt[id].Before(startCalledAt[k]):
					require.Nil(t, first["phase"], "%s: import %d not started yet: %v", where, k+1, first)
				default:
					if first["phase"] == "DONE" {
						require.Equal(t, final[k], first, "%s: import %d's first message is its final state", where, k+1)
					}
					if p := prev[id]; p != nil {
						require.GreaterOrEqual(t, rollingPhaseRank(first), rollingPhaseRank(p),
							"%s: import %d's first message %v is older than what the previous connection saw (%v)", where, k+1, first, p)
					}
				}
				prev[id] = msgs[len(msgs)-1]
			}
		}
		lastConn := s.conns[len(s.conns)-1]
		for k := range importIDs {
			id := fmt.Sprintf("i%d", k+1)
			require.Equal(t, final[k], lastConn.msgs[id][len(lastConn.msgs[id])-1], "subscriber %d ends with import %d's final state", n, k+1)
		}
		// The last import started after every restart: the last connection
		// followed it live, and heard the last change of the record.
		require.GreaterOrEqual(t, len(lastConn.msgs["i3"]), 2, "subscriber %d followed the last import", n)
		rec := lastConn.msgs["r"][len(lastConn.msgs["r"])-1]["record"].(map[string]any)
		require.Equal(t, finalVersion, rec["version"], "subscriber %d", n)
		require.Equal(t, "final", rec["field"], "subscriber %d", n)
		s.mu.Unlock()
	}
	require.GreaterOrEqual(t, exactDone, 4, "reconnections after an import ended got its final state (B's and C's subscribers at least)")
	t.Logf("%d requests (%d clients lost one in flight to the killed replica), %d record changes, %d subscriber connections (%d caught up on an ended import); %v",
		len(attempts), len(failedBy), written.Load(), func() int {
			n := 0
			for _, s := range subscribers {
				n += len(s.conns)
			}
			return n
		}(), exactDone, time.Since(testStart).Round(time.Second))
}
