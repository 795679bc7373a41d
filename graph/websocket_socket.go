package graph

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// wsSocket is a subscription connection's socket. coder/websocket reads
// from it and writes its control frames (pong, close) to it; the
// transport's own messages, all text, are framed here and written
// directly. With thousands of subscribers, a fan-out is one write per
// subscriber, and coder/websocket's Write costs per call more than the
// framing itself: two channel-based locks, a context check, a header
// written byte by byte into a buffered writer, then the copy and the
// flush. Here a message is framed in the buffer it was built in and
// leaves in one write.
//
// The socket can also be corked, so that a subscription with several
// messages waiting (events that came close together, while the fan-out of
// the first was still under way) sends them in one write: the backlog
// grows exactly when events come faster than a fan-out, and coalescing
// then lets it catch up.
//
// Frames never interleave: every write, corked or not, is one whole frame
// or more, under mu. coder/websocket writes a control frame whole, in one
// flush of its buffered writer (it flushes after every final frame, and a
// control frame's at most 127 bytes).
type wsSocket struct {
	net.Conn

	mu      sync.Mutex
	corked  int
	held    []byte
	closing bool // a close frame went out: the protocol allows no more
}

// Write is coder/websocket's: a control frame.
func (s *wsSocket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == wsOpClose {
		s.closing = true
	}
	if s.corked > 0 {
		s.held = append(s.held, p...)
		return len(p), nil
	}
	return s.Conn.Write(p)
}

// writeFrame writes frame, made with frameText, unless a close frame went
// out before it.
func (s *wsSocket) writeFrame(frame []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return net.ErrClosed
	}
	if s.corked > 0 {
		s.held = append(s.held, frame...)
		return nil
	}
	_, err := s.Conn.Write(frame)
	return err
}

// cork holds writes until the matching uncork.
func (s *wsSocket) cork() {
	s.mu.Lock()
	s.corked++
	s.mu.Unlock()
}

// uncork writes what was held, in one write, when the last cork comes
// off. It blocks as a write does, on a client that does not read.
func (s *wsSocket) uncork() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.corked--; s.corked > 0 || len(s.held) == 0 {
		return
	}
	_, _ = s.Conn.Write(s.held) // an error ends the connection: its reader sees it
	if cap(s.held) > maxHeldBytes {
		s.held = nil // a burst: do not keep its room for the connection's life
	} else {
		s.held = s.held[:0]
	}
}

const maxHeldBytes = 8 << 10

// WebSocket framing (RFC 6455, section 5.2), as far as a server sending
// text needs it: one final frame per message, unmasked.
const (
	wsOpText  = 0x1
	wsOpClose = 0x8
	wsFinBit  = 0x80
	// wsFrameRoom is the room to leave in front of a message for its
	// frame header: the largest header a server's frame has.
	wsFrameRoom = 10
)

// frameText turns b, a text message preceded by wsFrameRoom bytes of
// room, into a frame: the header goes right before the message, and the
// frame is the slice of b from there.
func frameText(b []byte) []byte {
	n := len(b) - wsFrameRoom
	var header [wsFrameRoom]byte
	header[0] = wsFinBit | wsOpText
	size := 2
	switch {
	case n < 126:
		header[1] = byte(n)
	case n <= 0xffff:
		header[1] = 126
		binary.BigEndian.PutUint16(header[2:], uint16(n))
		size = 4
	default:
		header[1] = 127
		binary.BigEndian.PutUint64(header[2:], uint64(n))
		size = 10
	}
	start := wsFrameRoom - size
	copy(b[start:], header[:size])
	return b[start:]
}

// frameBuffers holds buffers to build framed messages in;
// maxPooledFrame keeps an occasional large one from staying.
var frameBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledFrame = 16 << 10

// writeText frames and writes a text message that build appends to the
// room it is given (a slice of wsFrameRoom bytes): a pooled buffer holds
// it, so that a fan-out allocates nothing per subscriber.
func (s *wsSocket) writeText(build func(room []byte) []byte) error {
	bp := frameBuffers.Get().(*[]byte)
	b := build(append((*bp)[:0], make([]byte, wsFrameRoom)...))
	err := s.writeFrame(frameText(b))
	if cap(b) <= maxPooledFrame {
		*bp = b
		frameBuffers.Put(bp)
	}
	return err
}

// socketHijacker hands coder/websocket's Accept the hijacked connection
// wrapped in a wsSocket.
type socketHijacker struct {
	http.ResponseWriter
	socket *wsSocket
}

func (h *socketHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	if brw.Writer.Buffered() > 0 {
		_ = conn.Close()
		return nil, nil, errors.New("hijack: response bytes still buffered")
	}
	h.socket = &wsSocket{Conn: conn}
	// net/http has flushed the response: its writer, which coder/websocket
	// writes its frames to, can be pointed at the socket.
	brw.Writer.Reset(h.socket)
	return h.socket, brw, nil
}
