package accesslist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/readers/gateway/internal/binfmt"
)

// ErrCorrupt is in the chain of Load's error when the file is not a whole,
// intact snapshot: the gateway should then start empty and sync in full.
var ErrCorrupt = errors.New("accesslist: the snapshot is damaged or incomplete")

// The snapshot format, version 1, little-endian throughout:
//
//	header  "LNTL-ACL" uint32(version)
//	body    cursor, revocation cursor, synced-at, organisation,
//	        keys, revoked credential IDs, entries (see encode)
//	footer  uint64(length of header and body) uint32(CRC-32C of header
//	        and body) "LEND"
//
// Strings are a uvarint length and the bytes; UUIDs are 16 raw bytes;
// times are zig-zag varint Unix microseconds. The footer comes last so that
// a file cut short anywhere has none.
const (
	snapshotMagic   = "LNTL-ACL"
	snapshotVersion = 1
	footerMagic     = "LEND"
	headerLen       = len(snapshotMagic) + 4
	footerLen       = 8 + 4 + len(footerMagic)
	// minEntryLen is the smallest encoded entry: two UUIDs, an empty
	// card ID, a status and no bounds.
	minEntryLen = 16 + 16 + 1 + 1 + 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	statusOther byte = iota // followed by the status string
	statusActive
	statusSuspended
	statusArchived
)

// snapshot is what Save copies out of the List under its read lock; the
// records it points at do not change afterwards.
type snapshot struct {
	cursor, revCursor string
	syncedAt          time.Time
	orgID             uuid.UUID
	keys              []credentials.PublicKey
	revoked           []uuid.UUID
	records           []*record
}

// Save writes the list to path atomically and durably: into a temporary
// file in the same directory, synced, then renamed over path, and the
// directory synced. A crash at any point leaves the previous snapshot (or
// none) at path; a temporary file a crash left behind is removed by the
// next Save. Decisions go on while it writes.
func (l *List) Save(path string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("accesslist: save %s: %w", path, err)
		}
	}()
	l.saveMu.Lock()
	defer l.saveMu.Unlock()

	l.mu.RLock()
	s := snapshot{cursor: l.cursor, revCursor: l.revCursor, syncedAt: l.syncedAt, orgID: l.orgID,
		keys: l.keys, revoked: slices.Collect(maps.Keys(l.revoked)), records: slices.Clone(l.idx.all)}
	l.mu.RUnlock()
	slices.SortFunc(s.revoked, compareUUID)

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmpPattern := base + ".tmp-*"
	if stale, _ := filepath.Glob(filepath.Join(dir, tmpPattern)); len(stale) > 0 {
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	f, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := s.encode(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return binfmt.SyncDir(dir)
}

// Load reads a snapshot written by Save. A missing file is an error
// wrapping fs.ErrNotExist; a truncated or damaged one wraps ErrCorrupt.
func Load(path string) (*List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("accesslist: load snapshot: %w", err)
	}
	l, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("accesslist: load snapshot %s: %w", path, err)
	}
	return l, nil
}

// countingWriter counts what reaches the file and checksums it.
type countingWriter struct {
	w   io.Writer
	n   uint64
	crc uint32
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += uint64(n)
	return n, err
}

func (s *snapshot) encode(w io.Writer) error {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	b := make([]byte, 0, 512)
	b = append(b, snapshotMagic...)
	b = binary.LittleEndian.AppendUint32(b, snapshotVersion)
	b = binfmt.AppendString(b, s.cursor)
	b = binfmt.AppendString(b, s.revCursor)
	if s.syncedAt.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, s.syncedAt.UnixMicro())
	}
	b = append(b, s.orgID[:]...)
	b = binary.AppendUvarint(b, uint64(len(s.keys)))
	for _, k := range s.keys {
		b = binfmt.AppendString(b, k.Kid)
		b = append(b, k.OrgID[:]...)
		b = binfmt.AppendString(b, string(k.Key))
		b = binfmt.AppendBool(b, k.Retired)
	}
	b = binary.AppendUvarint(b, uint64(len(s.revoked)))
	for _, id := range s.revoked {
		b = append(b, id[:]...)
		b = flushIfFull(bw, b)
	}
	b = binary.AppendUvarint(b, uint64(len(s.records)))
	for _, r := range s.records {
		b = append(b, r.id[:]...)
		b = append(b, r.template[:]...)
		b = binfmt.AppendString(b, r.card)
		switch r.status {
		case StatusActive:
			b = append(b, statusActive)
		case StatusSuspended:
			b = append(b, statusSuspended)
		case StatusArchived:
			b = append(b, statusArchived)
		default:
			b = append(b, statusOther)
			b = binfmt.AppendString(b, r.status)
		}
		b = append(b, r.bounds)
		if r.bounds&hasFrom != 0 {
			b = binary.AppendVarint(b, r.from)
		}
		if r.bounds&hasUntil != 0 {
			b = binary.AppendVarint(b, r.until)
		}
		b = flushIfFull(bw, b)
	}
	if _, err := bw.Write(b); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	footer := binary.LittleEndian.AppendUint64(nil, cw.n)
	footer = binary.LittleEndian.AppendUint32(footer, cw.crc)
	footer = append(footer, footerMagic...)
	_, err := w.Write(footer)
	return err
}

// flushIfFull hands b to w once it holds a few entries; errors surface at
// the final Flush, as bufio.Writer keeps the first.
func flushIfFull(w *bufio.Writer, b []byte) []byte {
	if len(b) < 4096 {
		return b
	}
	_, _ = w.Write(b)
	return b[:0]
}

// decode reads a whole snapshot file. The checksum is checked before
// anything is parsed, so a damaged file is refused as such.
func decode(data []byte) (*List, error) {
	if len(data) < headerLen+footerLen {
		return nil, fmt.Errorf("%w: %d bytes is shorter than any snapshot", ErrCorrupt, len(data))
	}
	if string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: not an access-list snapshot", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(data[len(snapshotMagic):]); v != snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot format version %d, this gateway reads version %d", ErrCorrupt, v, snapshotVersion)
	}
	footer := data[len(data)-footerLen:]
	body := data[:len(data)-footerLen]
	if string(footer[12:]) != footerMagic {
		return nil, fmt.Errorf("%w: the file ends without its footer (truncated, %d bytes)", ErrCorrupt, len(data))
	}
	if n := binary.LittleEndian.Uint64(footer); n != uint64(len(body)) {
		return nil, fmt.Errorf("%w: the footer says %d bytes, the file holds %d", ErrCorrupt, n, len(body))
	}
	if sum := crc32.Checksum(body, castagnoli); sum != binary.LittleEndian.Uint32(footer[8:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	d := binfmt.NewDecoder(body[headerLen:])
	l := New()
	l.cursor = d.String()
	l.revCursor = d.String()
	if d.Bool() {
		l.syncedAt = time.UnixMicro(d.Varint()).UTC()
	}
	orgID := d.UUID()
	nkeys := d.Count(1 + 16 + 1 + 1)
	keys := make([]credentials.PublicKey, 0, nkeys)
	for range nkeys {
		k := credentials.PublicKey{Kid: d.String(), OrgID: d.UUID()}
		if key := d.String(); key != "" {
			k.Key = []byte(key)
		}
		k.Retired = d.Bool()
		keys = append(keys, k)
	}
	nrev := d.Count(16)
	revoked := make([]uuid.UUID, 0, nrev)
	for range nrev {
		revoked = append(revoked, d.UUID())
	}
	n := d.Count(minEntryLen)
	idx := newIndex(n)
	sl := newSlab(n)
	var e Entry
	for range n {
		if d.Err() != nil {
			break
		}
		e.RecordID, e.TemplateID, e.CardID = d.UUID(), d.UUID(), d.String()
		switch st := d.Byte(); st {
		case statusActive:
			e.Status = StatusActive
		case statusSuspended:
			e.Status = StatusSuspended
		case statusArchived:
			e.Status = StatusArchived
		case statusOther:
			e.Status = d.String()
		default:
			d.Fail("unknown status code %d", st)
		}
		r := sl.record(&e)
		r.bounds = d.Byte()
		if r.bounds&^(hasFrom|hasUntil) != 0 {
			d.Fail("unknown validity flags %#x", r.bounds)
		}
		if r.bounds&hasFrom != 0 {
			r.from = d.Varint()
		}
		if r.bounds&hasUntil != 0 {
			r.until = d.Varint()
		}
		idx.upsert(r)
	}
	if d.Err() == nil && d.Rest() != 0 {
		d.Fail("%d bytes after the last entry", d.Rest())
	}
	if d.Err() != nil {
		// The checksum matched, so this was written wrongly, not damaged.
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, d.Err())
	}
	l.idx, l.orgID, l.verifier.OrgID = idx, orgID, orgID
	l.keys = keys
	l.keySet.Replace(keys)
	l.revSet.Add(revoked...)
	for _, id := range revoked {
		l.revoked[id] = struct{}{}
	}
	return l, nil
}
