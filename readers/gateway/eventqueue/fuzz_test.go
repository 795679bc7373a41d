package eventqueue

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// FuzzOpen feeds Open a segment of arbitrary bytes, as a power cut or a
// failing disk might leave it. Open must keep the whole records before the
// first bad byte and nothing else, report the rest as dropped, and leave a
// queue that appends and reopens normally. With seal, the bytes are
// wrapped as one record with a correct length and checksum, so that the
// payload decoder is reached.
func FuzzOpen(f *testing.F) {
	record := uuid.New()
	var seed []byte
	for _, ev := range []Event{
		{ID: uuid.New(), ReaderID: "r1", Door: "Front", At: time.Unix(1795000000, 5), Kind: "CARD", CardID: "42", RecordID: &record, Decision: "GRANTED"},
		{ID: uuid.New(), Kind: "ALERT", Reason: "RATE_LIMITED"},
	} {
		var err error
		seed, err = appendRecord(seed, &ev)
		require.NoError(f, err)
	}
	f.Add(seed, false)
	f.Add(seed[:len(seed)-3], false)
	f.Add(seed[recordHeader:len(seed)/2], true)
	f.Add([]byte{}, false)
	f.Add(make([]byte, 64), false)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			if len(data) == 0 || len(data) > MaxEventSize {
				return
			}
			b := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
			b = binary.LittleEndian.AppendUint32(b, recordChecksum(b, data))
			data = append(b, data...)
		}
		dir := t.TempDir()
		seg := filepath.Join(dir, "0000000000000001.seg")
		require.NoError(t, os.WriteFile(seg, data, 0o600))
		q, err := open(dir, 1<<20)
		require.NoError(t, err)
		got, err := q.Peek(1 << 20)
		require.NoError(t, err)
		require.Len(t, got, q.Len())
		kept, err := os.ReadFile(seg)
		require.NoError(t, err)
		require.Equal(t, data[:len(kept)], kept, "what is kept is a prefix of what was there")
		require.Equal(t, int64(len(data)-len(kept)), q.Dropped())

		// The events kept read back the same once written anew.
		var rewritten []byte
		for i := range got {
			rewritten, err = appendRecord(rewritten, &got[i])
			require.NoError(t, err)
		}
		off := 0
		for i := range got {
			var ev Event
			n, err := readRecord(rewritten[off:], &ev)
			require.NoError(t, err)
			require.Equal(t, got[i], ev)
			off += n
		}

		// The queue goes on.
		extra := Event{ID: uuid.New(), Kind: "CARD"}
		require.NoError(t, q.Append(extra))
		require.NoError(t, q.Close())
		q, err = open(dir, 1<<20)
		require.NoError(t, err)
		defer q.Close()
		require.Zero(t, q.Dropped())
		again, err := q.Peek(1 << 20)
		require.NoError(t, err)
		require.Len(t, again, len(got)+1)
		require.Equal(t, extra.ID, again[len(got)].ID)
	})
}
