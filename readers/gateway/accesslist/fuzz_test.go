package accesslist

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/credentials"
)

func encodeList(t testing.TB, l *List) []byte {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := snapshot{cursor: l.cursor, revCursor: l.revCursor, syncedAt: l.syncedAt, orgID: l.orgID, keys: l.keys,
		records: l.idx.all}
	for id := range l.revoked {
		s.revoked = append(s.revoked, id)
	}
	var buf bytes.Buffer
	require.NoError(t, s.encode(&buf))
	return buf.Bytes()
}

// sealed wraps body in a header and a footer that match it, so that the
// fuzzer reaches the parser behind the checksum.
func sealed(body []byte) []byte {
	b := append([]byte(snapshotMagic), 1, 0, 0, 0)
	b = append(b, body...)
	n := len(b)
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[:n], castagnoli))
	return append(b, footerMagic...)
}

// FuzzLoad checks that no file makes Load panic or allocate without
// bound, that whatever it accepts it saves again to a snapshot that loads
// to the same list, and that whatever it refuses it refuses as corrupt.
func FuzzLoad(f *testing.F) {
	l := New()
	from, until := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	l.ReplaceAll([]Entry{
		{RecordID: uuid.New(), TemplateID: uuid.New(), CardID: "0042", Status: StatusActive, ValidFrom: &from, ExpiresAt: &until},
		{RecordID: uuid.New(), TemplateID: uuid.New(), CardID: "0042", Status: StatusSuspended},
		{RecordID: uuid.New(), TemplateID: uuid.New(), CardID: "", Status: "OTHER"},
	}, "d:5")
	l.ApplyRevocations([]uuid.UUID{uuid.New()}, "r:1")
	l.SetKeys([]credentials.PublicKey{{Kid: "k1", Key: make([]byte, 32)}})
	full := encodeList(f, l)
	empty := encodeList(f, New())
	f.Add(full, false)
	f.Add(empty, false)
	f.Add(full[:len(full)-3], false)
	f.Add(full[headerLen:len(full)-footerLen], true)
	f.Add(empty[headerLen:len(empty)-footerLen], true)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, true)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			data = sealed(data)
		}
		got, err := decode(data)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		again, err := decode(encodeList(t, got))
		require.NoError(t, err)
		require.Equal(t, got.Entries(), again.Entries())
		require.Equal(t, got.Cursor(), again.Cursor())
		require.Equal(t, got.RevocationCursor(), again.RevocationCursor())
		require.Equal(t, got.SyncedAt(), again.SyncedAt())
		require.Equal(t, got.OrgID(), again.OrgID())
		require.Equal(t, got.keys, again.keys)
		require.Equal(t, got.revoked, again.revoked)
		for _, e := range got.Entries() {
			if e.CardID != "" {
				d := got.DecideCard(e.CardID, time.Now())
				require.NotEqual(t, UnknownCard, d.Reason)
			}
		}
	})
}
