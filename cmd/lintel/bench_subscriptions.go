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
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	// ServerCPUSeconds is the server's CPU time (user + system) from the
	// import's start to the last subscriber's final event: the fan-outs,
	// the kernel's work on their writes, and the import job's own share.
	ServerCPUSeconds float64 `json:"serverCpuSeconds"`
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
// Its socket is read by its wsClients' loop; the fields below fd belong to
// that loop until it has stopped (or closed done).
type benchSubscriber struct {
	fd       int
	done     chan struct{} // closed when the final event came, or the connection ended
	firstMsg chan struct{}

	partial  []byte   // the start of a frame not yet whole
	fragment []byte   // a fragmented message's frames so far
	raw      [][]byte // messages, as received
	at       []time.Time
	got      []progressKey // raw, decoded
	err      error
	ended    bool
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
	clients, err := newWSClients()
	if err != nil {
		return nil, err
	}
	defer clients.close()
	subs := make([]*benchSubscriber, subscribers)
	serverAddr := strings.TrimPrefix(srv.base, "http://")
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for i := range subs {
		g.Go(func() error {
			s, err := clients.subscribeProgress(gctx, serverAddr, api.token, imp.ID)
			if err != nil {
				return fmt.Errorf("subscriber %d: %w", i, err)
			}
			subs[i] = s
			return nil
		})
	}
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
	cpuBefore, err := srv.cpuTime()
	if err != nil {
		stopListening()
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
	cpuAfter, err := srv.cpuTime()
	if err != nil {
		stopListening()
		return nil, err
	}
	res.ServerCPUSeconds = (cpuAfter - cpuBefore).Seconds()
	// The subscribers' copy of the last event may overtake the bench's own.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if evs := seen(); len(evs) > 0 && evs[len(evs)-1].key.final() {
			break
		}
	}
	evs := stopListening()
	clients.stop() // what the subscribers received is theirs to read now
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

// wsClients are the subscribers' graphql-transport-ws connections, read
// by one goroutine. The subscribers share the machine with the server
// they measure, and the less they do on arrival, the less they delay it: a
// coder/websocket connection per subscriber costs a goroutine woken, two
// read syscalls and a few allocations per message, which at 10,000
// subscribers was a third of the machine's time during a fan-out. These
// sockets are outside Go's netpoller instead: one level-triggered epoll,
// one goroutine on its own thread, one read per readable socket; each
// message is kept with the time it was read and decoded only after the
// run. Only what the subscribers need is spoken: text messages from the
// server (unmasked, possibly fragmented), masked text messages to it, and
// the control frames.
type wsClients struct {
	epfd    int
	stopper [2]int // a pipe: a byte written to it stops the loop
	stopped chan struct{}
	stop    func()

	mu   sync.Mutex
	subs map[int32]*benchSubscriber // by descriptor
}

func newWSClients() (*wsClients, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	w := &wsClients{epfd: epfd, stopped: make(chan struct{}), subs: map[int32]*benchSubscriber{}}
	if err := syscall.Pipe2(w.stopper[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.stopper[0], &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(w.stopper[0])}); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	var once sync.Once
	w.stop = func() {
		once.Do(func() { _, _ = syscall.Write(w.stopper[1], []byte{0}) })
		<-w.stopped
	}
	go w.loop()
	return w, nil
}

// close stops the loop and closes every connection (without a close
// handshake: the server sees them go, as it would a client's network).
func (w *wsClients) close() {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for fd := range w.subs {
		_ = syscall.Close(int(fd))
	}
	w.subs = nil
	_ = syscall.Close(w.stopper[0])
	_ = syscall.Close(w.stopper[1])
	_ = syscall.Close(w.epfd)
}

// readBatchPause is how long the subscribers' loop pauses after reading
// a batch of messages.
const readBatchPause = 500 * time.Microsecond

func (w *wsClients) loop() {
	defer close(w.stopped)
	runtime.LockOSThread() // it blocks in epoll_wait: a thread of its own, not a P's
	defer runtime.UnlockOSThread()
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			panic(fmt.Sprintf("bench subscribers: epoll_wait: %v", err))
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == w.stopper[0] {
				return
			}
			w.mu.Lock()
			s := w.subs[ev.Fd]
			w.mu.Unlock()
			if s != nil && !s.ended {
				s.readable(w, buf)
			}
		}
		if n > 0 {
			// Read in batches: a loop waiting in epoll_wait is woken by the
			// kernel, on the server's time, for nearly every message of a
			// fan-out, which a client on another machine would not cost
			// it. A pause after each batch lets messages gather instead.
			// Their arrival times are the kernel's, which the pause does
			// not move (but see arrivedAt on two messages read at once).
			ts := syscall.NsecToTimespec(int64(readBatchPause))
			_ = syscall.Nanosleep(&ts, nil)
		}
	}
}

// subscribeProgress connects one subscriber, waits for the current state
// (the first message), and leaves it to the loop until the final event.
func (w *wsClients) subscribeProgress(ctx context.Context, addr, token, importID string) (*benchSubscriber, error) {
	fd, err := dialWebSocket(ctx, addr, "/graphql", "graphql-transport-ws")
	if err != nil {
		return nil, err
	}
	// Every read then tells when its bytes reached the socket.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	s := &benchSubscriber{fd: fd, done: make(chan struct{}), firstMsg: make(chan struct{})}
	w.mu.Lock()
	w.subs[int32(fd)] = s // closed with the others from now on
	w.mu.Unlock()
	var out []byte
	for _, msg := range []any{
		map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}},
		map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": subscriptionBenchQuery,
			"variables": map[string]any{"id": importID}}},
	} {
		b, _ := json.Marshal(msg)
		out = appendClientFrame(out, 0x1, b)
	}
	if err := writeSocket(fd, out); err != nil {
		return nil, err
	}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	select {
	case <-s.firstMsg:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("closed before the first message: %w", s.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialWebSocket opens a WebSocket to addr with Go's net package and hands
// back a duplicate of its descriptor, non-blocking and out of Go's
// netpoller (closing the original takes it out), for wsClients' epoll.
func dialWebSocket(ctx context.Context, addr, path, subprotocol string) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	challenge := base64.StdEncoding.EncodeToString(key)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n", path, addr, challenge, subprotocol); err != nil {
		return -1, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return -1, fmt.Errorf("websocket handshake: %w", err)
	}
	_ = resp.Body.Close()
	sum := sha1.Sum([]byte(challenge + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return -1, fmt.Errorf("websocket handshake: %s", resp.Status)
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return -1, errors.New("websocket handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != subprotocol:
		return -1, fmt.Errorf("websocket handshake: subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	case br.Buffered() > 0:
		return -1, errors.New("websocket handshake: the server spoke first")
	}
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, err
	}
	dup := -1
	if cerr := raw.Control(func(fd uintptr) {
		var r uintptr
		var errno syscall.Errno
		r, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			err = errno
			return
		}
		dup = int(r)
	}); cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	return dup, nil // shares the original's O_NONBLOCK
}

// writeSocket writes all of b to a non-blocking socket; the subscribers
// write little (init, subscribe, pongs), so a full send buffer is an error.
func writeSocket(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// appendClientFrame appends one final frame of opcode with payload,
// masked as a client's must be.
func appendClientFrame(b []byte, opcode byte, payload []byte) []byte {
	b = append(b, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// readable reads what the socket has (the loop is level-triggered: what
// one read leaves comes back at the next epoll_wait) and handles every
// whole frame in it.
func (s *benchSubscriber) readable(w *wsClients, buf []byte) {
	var oob [64]byte
	n, oobn, _, _, err := syscall.Recvmsg(s.fd, buf, oob[:], 0)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return
	case err != nil:
		s.end(w, fmt.Errorf("read: %w", err))
		return
	case n == 0:
		s.end(w, io.EOF)
		return
	}
	at := arrivedAt(oob[:oobn])
	data := buf[:n]
	if len(s.partial) > 0 {
		s.partial = append(s.partial, data...)
		data = s.partial
	}
	for !s.ended {
		size, first, payload, err := nextServerFrame(data)
		if err != nil {
			s.end(w, err)
			return
		}
		if size == 0 {
			break
		}
		data = data[size:]
		s.frame(w, first&0x80 != 0, first&0x0f, bytes.Clone(payload), at)
	}
	s.partial = append(s.partial[:0], data...)
}

// arrivedAt is when the bytes a read returned reached the socket: the
// kernel's receive timestamp (SO_TIMESTAMPNS) in the read's control
// messages, or now if there is none. It leaves out of the latency how long
// the message then waited for this loop (its pause, the scheduler), which
// a subscriber on another machine would not add to the server's delivery.
// For TCP it is the arrival of the newest data the read took (the kernel
// merges segments waiting in a socket, timestamp included), so a read
// that takes two messages dates the first no earlier than it came: the
// error can only add to the latency.
func arrivedAt(oob []byte) time.Time {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				return time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
			}
		}
	}
	return time.Now()
}

// nextServerFrame parses the frame at the start of b: its size (0 when b
// does not hold all of it yet), its first byte (FIN and opcode) and its
// payload, which points into b.
func nextServerFrame(b []byte) (size int, first byte, payload []byte, err error) {
	if len(b) < 2 {
		return 0, 0, nil, nil
	}
	if b[1]&0x80 != 0 {
		return 0, 0, nil, errors.New("a masked frame from the server")
	}
	head, n := 2, int(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, 0, nil, nil
		}
		head, n = 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, 0, nil, nil
		}
		l := binary.BigEndian.Uint64(b[2:])
		if l > 16<<20 {
			return 0, 0, nil, fmt.Errorf("a %d-byte frame", l)
		}
		head, n = 10, int(l)
	}
	if len(b) < head+n {
		return 0, 0, nil, nil
	}
	return head + n, b[0], b[head : head+n], nil
}

// frame handles one frame, whose payload it may keep.
func (s *benchSubscriber) frame(w *wsClients, fin bool, opcode byte, payload []byte, now time.Time) {
	switch opcode {
	case 0x8: // close
		code := 0
		if len(payload) >= 2 {
			code = int(binary.BigEndian.Uint16(payload))
		}
		s.end(w, fmt.Errorf("closed by the server: %d %s", code, payload[min(2, len(payload)):]))
		return
	case 0x9: // ping
		if err := writeSocket(s.fd, appendClientFrame(nil, 0xA, payload)); err != nil {
			s.end(w, err)
		}
		return
	case 0xA: // pong
		return
	case 0x0: // continuation
		s.fragment = append(s.fragment, payload...)
	case 0x1:
		s.fragment = payload
	default:
		s.end(w, fmt.Errorf("unexpected frame opcode %d", opcode))
		return
	}
	if !fin {
		return
	}
	data := s.fragment
	s.fragment = nil
	switch {
	case bytes.Contains(data, []byte(`"type":"next"`)):
		s.raw, s.at = append(s.raw, data), append(s.at, now)
		if len(s.raw) == 1 {
			close(s.firstMsg)
		} else if bytes.Contains(data, []byte(`"outcome":"`)) && !bytes.Contains(data, []byte(`"outcome":"RUNNING"`)) {
			s.end(w, nil) // the final event
		}
	case bytes.Contains(data, []byte(`"type":"ping"`)):
		if err := writeSocket(s.fd, appendClientFrame(nil, 0x1, []byte(`{"type":"pong"}`))); err != nil {
			s.end(w, err)
		}
	case bytes.Contains(data, []byte(`"type":"connection_ack"`)), bytes.Contains(data, []byte(`"type":"pong"`)):
	default:
		s.end(w, fmt.Errorf("unexpected message: %.200s", data))
	}
}

// end stops reading s: err is why (nil: the final event came). The
// socket stays open until wsClients.close, as a subscriber that is done
// would keep it.
func (s *benchSubscriber) end(w *wsClients, err error) {
	s.ended, s.err = true, err
	_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, s.fd, nil)
	close(s.done)
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

// cpuTime is the CPU time (user + system) the server has used so far,
// from /proc/PID/stat, in clock ticks of 1/100 s (USER_HZ, which Linux
// fixes at 100 for every architecture Go runs on).
func (s *benchServer) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU time: %w", err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold anything: state, ppid, …; utime and stime are the 12th and 13th.
	i := bytes.LastIndexByte(b, ')')
	var fields []string
	if i >= 0 {
		fields = strings.Fields(string(b[i+1:]))
	}
	if len(fields) < 13 {
		return 0, fmt.Errorf("server CPU time: unexpected /proc stat %q", b)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
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
