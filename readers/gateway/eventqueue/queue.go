package eventqueue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/lintel/lintel/readers/gateway/internal/binfmt"
)

// ErrClosed is returned by a Queue's methods after Close.
var ErrClosed = errors.New("eventqueue: the queue is closed")

// segmentBytes is the size past which appends go to a new segment: small
// enough that acknowledged events leave the disk soon, large enough that
// files are few.
const segmentBytes = 4 << 20

const segmentExt = ".seg"

// pos is a place in the queue: a byte offset in a segment.
type pos struct {
	seg uint64
	off int64
}

type segment struct {
	seq  uint64
	size int64 // bytes written, durable or not
}

// Queue is a durable FIFO of events. It is safe for concurrent use; Peek
// and Ack are meant for one shipper.
type Queue struct {
	dir      string
	segBytes int64

	mu   sync.Mutex
	cond sync.Cond // signalled when durable moves, err is set or the queue closes
	// segs are the segments from the acknowledged position on, in order;
	// the last is the one appended to.
	segs   []segment
	active *os.File
	// appended counts the records written since Open; durable, those of
	// them known to be on disk, which end at durableEnd.
	appended, durable uint64
	durableEnd        pos
	syncing           bool
	unacked           int
	acked             pos // the first unacknowledged record
	err               error
	closed            bool
	buf               []byte

	// syncMu is held while the active file is synced or replaced, so that
	// a roll never closes the file under a running fsync.
	syncMu sync.Mutex

	// rmu serialises the readers (Peek, Ack), which read segments
	// outside mu and delete the ones acknowledged.
	rmu     sync.Mutex
	ack     *ackFile
	dropped int64
}

// Open opens the queue in dir, creating dir if needed. It checks every
// record not yet acknowledged and drops a torn or damaged tail (see the
// package documentation); Dropped tells how many bytes went.
func Open(dir string) (*Queue, error) { return open(dir, segmentBytes) }

func open(dir string, segBytes int64) (q *Queue, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("eventqueue: open %s: %w", dir, err)
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ack, acked, err := openAckFile(filepath.Join(dir, ackFileName))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = ack.f.Close()
		}
	}()
	q = &Queue{dir: dir, segBytes: segBytes, ack: ack, acked: acked}
	q.cond.L = &q.mu

	seqs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for _, seq := range seqs {
		if seq < acked.seg {
			// Acknowledged before the last run could delete it.
			if err := os.Remove(q.segmentPath(seq)); err != nil {
				return nil, err
			}
			continue
		}
		size, count, dropped, err := q.recover(seq, acked)
		if err != nil {
			return nil, err
		}
		q.segs = append(q.segs, segment{seq: seq, size: size})
		q.unacked += count
		q.dropped += dropped
	}
	switch {
	case len(q.segs) == 0:
		seq := max(acked.seg, 1)
		if err := q.createSegment(seq); err != nil {
			return nil, err
		}
		q.acked = pos{seg: seq}
	case q.segs[0].seq != acked.seg:
		// The acknowledged segment is gone (emptied by hand?); the
		// next one starts where it ended.
		q.acked = pos{seg: q.segs[0].seq}
	case acked.off > q.segs[0].size:
		q.acked.off = q.segs[0].size
	}
	if q.active == nil {
		last := q.segs[len(q.segs)-1]
		if q.active, err = os.OpenFile(q.segmentPath(last.seq), os.O_RDWR, 0); err != nil {
			return nil, err
		}
	}
	last := q.segs[len(q.segs)-1]
	q.durableEnd = pos{last.seq, last.size}
	return q, nil
}

// recover checks the records of a segment, truncates it after the last
// whole one, and counts those from acked on.
func (q *Queue) recover(seq uint64, acked pos) (size int64, count int, dropped int64, err error) {
	path := q.segmentPath(seq)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, err
	}
	var ev Event
	off := 0
	for off < len(data) {
		n, err := readRecord(data[off:], &ev)
		if err != nil {
			break
		}
		if seq > acked.seg || int64(off) >= acked.off {
			count++
		}
		off += n
	}
	if off < len(data) {
		if err := truncate(path, int64(off)); err != nil {
			return 0, 0, 0, err
		}
	}
	return int64(off), count, int64(len(data) - off), nil
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || len(name) != 16 || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (q *Queue) segmentPath(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%016x%s", seq, segmentExt))
}

// createSegment creates segment seq, makes its name durable, and appends
// to it from now on.
func (q *Queue) createSegment(seq uint64) error {
	f, err := os.OpenFile(q.segmentPath(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := binfmt.SyncDir(q.dir); err != nil {
		_ = f.Close()
		return err
	}
	if q.active != nil {
		_ = q.active.Close()
	}
	q.active = f
	q.segs = append(q.segs, segment{seq: seq})
	return nil
}

// Dropped returns the bytes Open discarded as a torn or damaged tail.
func (q *Queue) Dropped() int64 { return q.dropped }

// Append writes ev to the queue and returns once it is on disk. An event
// without an ID is given one. After a failed write or sync the queue
// refuses appends until it is reopened, which recovers what reached the
// disk.
func (q *Queue) Append(ev Event) error {
	if ev.ID == uuid.Nil {
		ev.ID = uuid.New()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.err != nil {
		return q.err
	}
	var err error
	if q.buf, err = appendRecord(q.buf[:0], &ev); err != nil {
		return err
	}
	last := &q.segs[len(q.segs)-1]
	if last.size > 0 && last.size+int64(len(q.buf)) > q.segBytes {
		if err := q.roll(); err != nil {
			return err
		}
		last = &q.segs[len(q.segs)-1]
	}
	if _, err := q.active.WriteAt(q.buf, last.size); err != nil {
		// A partial record would hide every later one: drop it, or stop.
		if terr := q.active.Truncate(last.size); terr != nil {
			q.fail(fmt.Errorf("eventqueue: write: %w", err))
		}
		return fmt.Errorf("eventqueue: write: %w", err)
	}
	last.size += int64(len(q.buf))
	q.appended++
	q.unacked++
	mine := q.appended
	for q.durable < mine && q.err == nil {
		if q.syncing {
			q.cond.Wait()
			continue
		}
		q.syncActive()
	}
	if q.durable < mine {
		return q.err
	}
	return nil
}

// syncActive syncs what has been written so far, releasing mu meanwhile
// so that more appends queue up for the next sync.
func (q *Queue) syncActive() {
	q.syncing = true
	target, end, f := q.appended, pos{q.segs[len(q.segs)-1].seq, q.segs[len(q.segs)-1].size}, q.active
	q.syncMu.Lock()
	q.mu.Unlock()
	err := f.Sync()
	q.syncMu.Unlock()
	q.mu.Lock()
	q.syncing = false
	if err != nil {
		q.fail(fmt.Errorf("eventqueue: sync: %w", err))
	} else if target > q.durable {
		q.durable, q.durableEnd = target, end
	}
	q.cond.Broadcast()
}

// roll syncs the active segment and starts the next one. mu is held.
func (q *Queue) roll() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	if err := q.active.Sync(); err != nil {
		q.fail(fmt.Errorf("eventqueue: sync: %w", err))
		return q.err
	}
	last := q.segs[len(q.segs)-1]
	q.durable, q.durableEnd = q.appended, pos{last.seq, last.size}
	q.cond.Broadcast()
	if err := q.createSegment(last.seq + 1); err != nil {
		return fmt.Errorf("eventqueue: new segment: %w", err)
	}
	return nil
}

// fail makes err stick: the file may hold what the kernel could not
// write, so appending on could lose events silently.
func (q *Queue) fail(err error) {
	if q.err == nil {
		q.err = err
	}
	q.cond.Broadcast()
}

// Len returns the number of events not yet acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unacked
}

// Peek returns up to max of the oldest unacknowledged events, in the
// order they were appended. It returns the same events until they are
// acknowledged.
func (q *Queue) Peek(max int) ([]Event, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	var out []Event
	_, err := q.scan(max, func(ev *Event) { out = append(out, *ev) })
	return out, err
}

// Ack marks the first n unacknowledged events (those Peek returned) as
// delivered, durably, and deletes the segments they emptied. If the
// gateway stops before Ack returns, they are delivered again.
func (q *Queue) Ack(n int) error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	if n < 0 {
		return fmt.Errorf("eventqueue: cannot acknowledge %d events", n)
	}
	if n == 0 {
		return nil
	}
	end, err := q.scan(n, nil)
	if err != nil {
		return err
	}
	if end.n < n {
		return fmt.Errorf("eventqueue: cannot acknowledge %d events: %d are on disk", n, end.n)
	}
	if err := q.ack.write(end.pos); err != nil {
		q.mu.Lock()
		q.fail(fmt.Errorf("eventqueue: acknowledge: %w", err))
		q.mu.Unlock()
		return fmt.Errorf("eventqueue: acknowledge: %w", err)
	}
	q.mu.Lock()
	q.acked = end.pos
	q.unacked -= n
	// The end of a full segment is the start of the next one.
	for i := 0; i+1 < len(q.segs) && q.acked.seg == q.segs[i].seq && q.acked.off >= q.segs[i].size; i++ {
		q.acked = pos{seg: q.segs[i+1].seq}
	}
	var done []uint64
	for len(q.segs) > 0 && q.segs[0].seq < q.acked.seg {
		done = append(done, q.segs[0].seq)
		q.segs = q.segs[1:]
	}
	q.mu.Unlock()
	for _, seq := range done {
		// A segment left behind is deleted by the next Open.
		_ = os.Remove(q.segmentPath(seq))
	}
	return nil
}

type scanEnd struct {
	pos pos // after the last record read
	n   int
}

// scan reads up to max durable unacknowledged records, in order, handing
// each to fn (when not nil). rmu is held.
func (q *Queue) scan(max int, fn func(*Event)) (scanEnd, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return scanEnd{}, ErrClosed
	}
	at, limit, segs := q.acked, q.durableEnd, slices.Clone(q.segs)
	q.mu.Unlock()

	end := scanEnd{pos: at}
	for _, s := range segs {
		if end.n >= max || s.seq > limit.seg {
			break
		}
		if s.seq < at.seg {
			continue
		}
		from, to := int64(0), s.size
		if s.seq == at.seg {
			from = at.off
		}
		if s.seq == limit.seg {
			to = limit.off
		}
		if from >= to {
			continue
		}
		if err := q.scanSegment(s.seq, from, to, max, fn, &end); err != nil {
			return end, err
		}
	}
	return end, nil
}

func (q *Queue) scanSegment(seq uint64, from, to int64, max int, fn func(*Event), end *scanEnd) error {
	f, err := os.Open(q.segmentPath(seq))
	if err != nil {
		return fmt.Errorf("eventqueue: read: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, from, to-from), 64<<10)
	var ev Event
	var target *Event
	if fn != nil {
		target = &ev
	}
	var rec []byte
	off := from
	for off < to && end.n < max {
		rec = slices.Grow(rec[:0], recordHeader)[:recordHeader]
		if _, err := io.ReadFull(r, rec); err != nil {
			return q.damaged(seq, off, err)
		}
		n := binary.LittleEndian.Uint32(rec)
		if n > MaxEventSize {
			return q.damaged(seq, off, errTorn)
		}
		rec = slices.Grow(rec, int(n))[:recordHeader+int(n)]
		if _, err := io.ReadFull(r, rec[recordHeader:]); err != nil {
			return q.damaged(seq, off, err)
		}
		if _, err := readRecord(rec, target); err != nil {
			return q.damaged(seq, off, err)
		}
		if fn != nil {
			fn(&ev)
		}
		off += int64(len(rec))
		end.n++
		end.pos = pos{seq, off}
	}
	return nil
}

// damaged reports bytes that Open checked and that nothing rewrites, yet
// do not read back.
func (q *Queue) damaged(seq uint64, off int64, err error) error {
	return fmt.Errorf("eventqueue: segment %016x does not read back at byte %d: %w", seq, off, err)
}

// Close syncs and closes the queue; appends waiting for a sync return
// once it is done.
func (q *Queue) Close() error {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	q.syncMu.Lock()
	err := q.active.Sync()
	if cerr := q.active.Close(); err == nil {
		err = cerr
	}
	q.syncMu.Unlock()
	if err == nil {
		q.durable = q.appended
	} else {
		q.fail(fmt.Errorf("eventqueue: close: %w", err))
	}
	q.cond.Broadcast()
	if cerr := q.ack.f.Close(); err == nil {
		err = cerr
	}
	return err
}
