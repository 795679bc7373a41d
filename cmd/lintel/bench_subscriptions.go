package main

// The "subscriptions" scenario of `lintel bench all`: many
// graphql-transport-ws subscribers of one import's progress on one
// `lintel serve` process (a child process, so that its memory is its own):
// does every subscriber receive every event, how long after the event's
// NOTIFY, and what does a subscriber cost the server?

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/imports"
	"github.com/lintel/lintel/internal/store"
)

// subscriptionBenchResult is what the subscriptions scenario measured.
type subscriptionBenchResult struct {
	Subscribers    int          `json:"subscribers"`
	ImportRows     int          `json:"importRows"`
	Events         int          `json:"events"`   // progress events of the import (NOTIFYs seen)
	Expected       int          `json:"expected"` // subscribers × events
	Delivered      int          `json:"delivered"`
	ConnectSeconds float64      `json:"connectSeconds"` // all subscribers connected and subscribed
	P50ms          float64      `json:"p50Ms"`
	P99ms          float64      `json:"p99Ms"`
	MaxMs          float64      `json:"maxMs"`
	ServerIdle     serverMemory `json:"serverIdle"`
	ServerWith     serverMemory `json:"serverSubscribed"`
	BytesPerSub    float64      `json:"serverRssBytesPerSubscriber"`  // RSS after a GC, per subscriber
	LivePerSub     float64      `json:"serverLiveBytesPerSubscriber"` // Go heap in use + stacks after a GC, per subscriber
	PerEvent       []string     `json:"perEvent"`                     // each event: when it was published, its delivery p50 and max
}

// subscriptionBenchQuery is what each subscriber asks for.
const subscriptionBenchQuery = `subscription($id: ID!) { importProgress(id: $id) { phase outcome processed total } }`

// progressKey identifies a progress event by what changes between events.
type progressKey struct {
	Phase     *string `json:"phase"`
	Outcome   *string `json:"outcome"`
	Processed int     `json:"processed"`
}

func (k progressKey) String() string {
	return fmt.Sprintf("%s/%s/%d", derefString(k.Phase), derefString(k.Outcome), k.Processed)
}

func (k progressKey) final() bool {
	return k.Outcome != nil && *k.Outcome != "RUNNING"
}

// benchSubscriber is one subscriber's connection and what it received.
type benchSubscriber struct {
	conn     *websocket.Conn
	raw      [][]byte // messages, as received
	at       []time.Time
	got      []progressKey // raw, decoded
	done     chan struct{}
	err      error
	firstMsg chan struct{}
}

func runSubscriptionBench(ctx context.Context, subscribers, rows int, dbURL, masterKey string, logf func(string, ...any)) (*subscriptionBenchResult, error) {
	db, err := store.Open(ctx, dbURL, store.Options{MaxConns: 4})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	srv, err := startBenchServer(ctx, dbURL, masterKey)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	_, api, err := benchAdmin(ctx, db, srv.base, "Bench subscriptions")
	if err != nil {
		return nil, err
	}
	tpl, err := createBenchTemplate(ctx, api, "Bench subscriptions")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lintel-bench-subs-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "import.csv")
	if err := writeBenchCSV(file, rows); err != nil {
		return nil, err
	}
	imp, err := api.createImport(ctx, tpl, file, map[string]any{"mode": "SYNC", "missingAction": "ARCHIVE"})
	if err != nil {
		return nil, err
	}
	if _, _, err := api.preview(ctx, imp.ID); err != nil {
		return nil, err
	}

	res := &subscriptionBenchResult{Subscribers: subscribers, ImportRows: rows}
	time.Sleep(500 * time.Millisecond) // let the server settle after the preview
	if res.ServerIdle, err = srv.memory(ctx); err != nil {
		return nil, err
	}
	logf("subscriptions: connecting %d subscribers", subscribers)
	subs := make([]*benchSubscriber, subscribers)
	wsURL := "ws" + strings.TrimPrefix(srv.base, "http") + "/graphql"
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for i := range subs {
		g.Go(func() error {
			s, err := subscribeProgress(gctx, ctx, wsURL, api.token, imp.ID)
			if err != nil {
				return fmt.Errorf("subscriber %d: %w", i, err)
			}
			subs[i] = s
			return nil
		})
	}
	defer func() {
		for _, s := range subs {
			if s != nil {
				_ = s.conn.CloseNow()
			}
		}
	}()
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	time.Sleep(time.Second) // pending writes land
	if res.ServerWith, err = srv.memory(ctx); err != nil {
		return nil, err
	}
	res.BytesPerSub = float64(res.ServerWith.RSS-res.ServerIdle.RSS) / float64(subscribers)
	res.LivePerSub = float64(res.ServerWith.live()-res.ServerIdle.live()) / float64(subscribers)
	logf("subscriptions: %d subscribed in %.1fs; server RSS %s → %s", subscribers, res.ConnectSeconds, mib(res.ServerIdle.RSS), mib(res.ServerWith.RSS))

	// The reference clock: this process's own LISTEN connection notes when
	// each of the import's events was published.
	seen, stopListening, err := listenForTopic(ctx, dbURL, imports.TopicFor(uuid.MustParse(imp.ID)))
	if err != nil {
		return nil, err
	}
	if err := api.startImport(ctx, imp.ID, map[string]any{"archive": 0, "delete": 0}); err != nil {
		stopListening()
		return nil, err
	}
	waitAll := time.After(2*time.Minute + time.Duration(subscribers)*time.Millisecond)
	for _, s := range subs {
		select {
		case <-s.done:
		case <-waitAll:
		case <-ctx.Done():
			stopListening()
			return nil, ctx.Err()
		}
	}
	// The subscribers' copy of the last event may overtake the bench's own.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if evs := seen(); len(evs) > 0 && evs[len(evs)-1].key.final() {
			break
		}
	}
	evs := stopListening()
	res.Events = len(evs)
	res.Expected = len(evs) * subscribers
	for _, s := range subs {
		if err := s.decode(); err != nil {
			return nil, fmt.Errorf("a subscriber received: %w", err)
		}
	}
	var lat []time.Duration
	perEvent := make([][]time.Duration, len(evs))
	for _, s := range subs {
		for k, ev := range evs {
			if k+1 < len(s.got) && s.got[k+1].String() == ev.key.String() {
				res.Delivered++
				d := max(0, s.at[k+1].Sub(ev.at))
				lat = append(lat, d)
				perEvent[k] = append(perEvent[k], d)
			}
		}
	}
	for k, ev := range evs {
		d := perEvent[k]
		slices.Sort(d)
		if len(d) > 0 {
			res.PerEvent = append(res.PerEvent, fmt.Sprintf("%s at +%.0f ms: p50 %.0f ms, max %.0f ms", ev.key, float64(ev.at.Sub(evs[0].at).Microseconds())/1e3,
				float64(d[len(d)/2].Microseconds())/1e3, float64(d[len(d)-1].Microseconds())/1e3))
		}
	}
	if len(evs) == 0 || !evs[len(evs)-1].key.final() {
		return nil, fmt.Errorf("the import did not finish while subscribed (%d events seen)", len(evs))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		res.P50ms, res.P99ms, res.MaxMs = ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)]), ms(lat[len(lat)-1])
	}
	return res, nil
}

// subscribeProgress connects one subscriber, waits for the current state
// (the first message), then reads on in the background until the final
// event. dialCtx bounds the set-up, ctx the subscriber's life.
func subscribeProgress(dialCtx, ctx context.Context, wsURL, token, importID string) (*benchSubscriber, error) {
	conn, _, err := websocket.Dial(dialCtx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	s := &benchSubscriber{conn: conn, done: make(chan struct{}), firstMsg: make(chan struct{})}
	send := func(msg any) error {
		b, _ := json.Marshal(msg)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if err := send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		return nil, err
	}
	if err := send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": subscriptionBenchQuery,
		"variables": map[string]any{"id": importID}}}); err != nil {
		return nil, err
	}
	go s.read(send)
	select {
	case <-s.firstMsg:
		return s, nil
	case <-s.done:
		_ = conn.CloseNow()
		return nil, fmt.Errorf("closed before the first message: %w", s.err)
	case <-dialCtx.Done():
		_ = conn.CloseNow()
		return nil, dialCtx.Err()
	}
}

// read keeps each message with the time it arrived and decodes them only
// after the run: the subscribers share the machine with the server, and
// the less they do on arrival, the less they delay it. Reading without a
// deadline spares a timer per message; the connection is closed at the end.
func (s *benchSubscriber) read(send func(any) error) {
	defer close(s.done)
	for {
		_, data, err := s.conn.Read(context.Background())
		if err != nil {
			s.err = err
			return
		}
		now := time.Now()
		switch {
		case bytes.Contains(data, []byte(`"type":"next"`)):
			s.raw, s.at = append(s.raw, data), append(s.at, now)
			if len(s.raw) == 1 {
				close(s.firstMsg)
			} else if bytes.Contains(data, []byte(`"outcome":"`)) && !bytes.Contains(data, []byte(`"outcome":"RUNNING"`)) {
				return // the final event
			}
		case bytes.Contains(data, []byte(`"type":"ping"`)):
			_ = send(map[string]any{"type": "pong"})
		case bytes.Contains(data, []byte(`"type":"connection_ack"`)), bytes.Contains(data, []byte(`"type":"pong"`)):
		default:
			s.err = fmt.Errorf("unexpected message: %.200s", data)
			return
		}
	}
}

// decode turns the messages received into progress keys.
func (s *benchSubscriber) decode() error {
	for _, data := range s.raw {
		var msg struct {
			Payload struct {
				Data struct {
					ImportProgress progressKey `json:"importProgress"`
				} `json:"data"`
				Errors []apiError `json:"errors"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			return err
		}
		if len(msg.Payload.Errors) > 0 {
			return errors.New(msg.Payload.Errors[0].Message)
		}
		s.got = append(s.got, msg.Payload.Data.ImportProgress)
	}
	return nil
}

// publishedEvent is one NOTIFY as the bench's own listener saw it.
type publishedEvent struct {
	key progressKey
	at  time.Time
}

// listenForTopic collects the events of topic until stop is called,
// which returns them in order; seen returns those so far.
func listenForTopic(ctx context.Context, dbURL, topic string) (seen, stop func() []publishedEvent, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+events.Channel); err != nil {
		_ = conn.Close(ctx)
		return nil, nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var got []publishedEvent
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			n, err := conn.WaitForNotification(lctx)
			if err != nil {
				return
			}
			at := time.Now()
			var ev events.Event
			if json.Unmarshal([]byte(n.Payload), &ev) != nil || ev.Topic != topic {
				continue
			}
			var k progressKey
			if json.Unmarshal(ev.Data, &k) != nil {
				continue
			}
			mu.Lock()
			got = append(got, publishedEvent{key: k, at: at})
			mu.Unlock()
		}
	}()
	seen = func() []publishedEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	var once sync.Once
	stop = func() []publishedEvent {
		once.Do(func() {
			cancel()
			<-finished
			_ = conn.Close(context.Background())
		})
		return seen()
	}
	return seen, stop, nil
}

// benchServer is a `lintel serve` child process.
type benchServer struct {
	cmd    *exec.Cmd
	base   string
	debug  string // its --debug-addr
	exited atomic.Bool
}

// freeLocalAddr is a local address no one listens on (a moment ago).
func freeLocalAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serverMemory is a server process's memory after a garbage collection.
type serverMemory struct {
	RSS       int64 `json:"rssBytes"`
	HeapInuse int64 `json:"heapInuseBytes"`
	Stack     int64 `json:"stackBytes"`
}

func (m serverMemory) live() int64 { return m.HeapInuse + m.Stack }

// memory forces a garbage collection in the server (the heap profile's
// gc=1), so that garbage waiting for collection does not count, and reads
// its Go memory statistics and its RSS.
func (s *benchServer) memory(ctx context.Context) (serverMemory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.debug+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return serverMemory{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return serverMemory{}, fmt.Errorf("the server's memory statistics: %w", err)
	}
	defer resp.Body.Close()
	m := serverMemory{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			m.HeapInuse, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			m.Stack, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return serverMemory{}, err
	}
	m.RSS = procStatus(strconv.Itoa(s.cmd.Process.Pid), "VmRSS:")
	return m, nil
}

// startBenchServer runs this executable's `serve` on dbURL, on a free local
// port, and waits until it is ready.
func startBenchServer(ctx context.Context, dbURL, masterKey string) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeLocalAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LINTEL_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// No drain on stop: no load balancer needs telling. The debug listener
	// lets the bench force a GC before it reads the server's memory (and
	// anyone profile it: LINTEL_DEBUG_ADDR picks its address).
	debugAddr := os.Getenv("LINTEL_DEBUG_ADDR")
	if debugAddr == "" {
		if debugAddr, err = freeLocalAddr(); err != nil {
			return nil, err
		}
	}
	cmd.Env = append(cmd.Env, "DATABASE_URL="+dbURL, "LINTEL_MASTER_KEY="+masterKey, "LINTEL_ADDR="+addr, "LINTEL_LOG_LEVEL=warn",
		"LINTEL_SHUTDOWN_DRAIN=0", "LINTEL_DEBUG_ADDR="+debugAddr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	s := &benchServer{cmd: cmd, base: "http://" + addr, debug: "http://" + debugAddr}
	var tail []string
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			tail = append(tail[max(0, len(tail)-19):], sc.Text())
			mu.Unlock()
		}
		_ = cmd.Wait()
		s.exited.Store(true)
	}()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && !s.exited.Load() {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.stop()
	mu.Lock()
	defer mu.Unlock()
	return nil, fmt.Errorf("%s serve did not become ready:\n%s", exe, strings.Join(tail, "\n"))
}

func (s *benchServer) stop() {
	if !s.exited.Load() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		for i := 0; i < 100 && !s.exited.Load(); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = s.cmd.Process.Kill()
	}
}
